using System.Linq;
using System.Text;
using VfioMigration.Core.Conformance;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Simulation;
using Xunit;

namespace VfioMigration.Core.Tests.Conformance;

/// <summary>
/// The simulated kernel's dirty-tracking IOMMU answers the iommufd dirty-bitmap steps as the real iommufd core
/// did over its IOMMUFD_TEST mock domain in the lab (Expected/iommufd-mock-dirty.txt, written from the lab's
/// mock-domain boot: tests/lab/iommufd/mock-harness.c).
/// </summary>
public class IommufdDirtyBitmapTests
{
    /// <summary>The lab's twin of the mock-domain boot: edu on its cdev behind a VT-d that tracks dirty pages.</summary>
    internal static IommufdDirtyTarget MockTwin(out SimulatedKernel kernel)
    {
        var config = SimTopologies.LabIommufd(dirtyTracking: true);
        kernel = new SimulatedKernel(config);
        kernel.Clock.UseManualTime();   // edu writes only what the scenario asks
        var edu = kernel.FindDevice("0000:00:02.0")!;
        return new IommufdDirtyTarget
        {
            Host = new VfioHost(kernel),
            Cdev = $"/dev/vfio/devices/vfio{config.CdevNumber(edu.Config)}",
            DeviceWrites = edu.DmaWrite,
        };
    }

    [Fact]
    public void TheSimulatedDirtyTrackingIommuAnswersTheMockDomainStepsAsTheRealIommufdCoreDid()
    {
        var expected = ExpectedAnswers.Load(IommufdDirtyBitmapScenario.Name);
        var actual = IommufdDirtyBitmapScenario.Run(MockTwin(out _));
        var diff = ConformanceRunner.Compare(expected, actual);
        var report = new StringBuilder();
        foreach (var (_, step, real, sim) in diff) report.AppendLine($"{step}: real {real ?? "(no step)"}, simulated {sim ?? "(no step)"}");
        Assert.True(diff.Count == 0, $"{diff.Count} of {expected.Count} steps differ from {ExpectedAnswers.Kernel(IommufdDirtyBitmapScenario.Name)}:\n{report}");
    }

    [Fact]
    public void ASimulatedDeviceWritesOnlyMappedPagesAndOnlyWhileItIsAttached()
    {
        var target = MockTwin(out var kernel);
        var edu = kernel.FindDevice("0000:00:02.0")!;
        Assert.Equal(-VfioMigration.Core.Native.Errno.ENODEV, edu.DmaWrite(0x1000000, 4096));
        var observations = IommufdDirtyBitmapScenario.Run(target);
        Assert.Contains(observations, o => o.Step == "GET_DIRTY_BITMAP NO_CLEAR" && o.Answer.StartsWith("0 bits=16 ", System.StringComparison.Ordinal));
    }
}
