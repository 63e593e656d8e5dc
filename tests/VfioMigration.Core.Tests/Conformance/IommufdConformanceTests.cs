using System;
using System.Linq;
using System.Text;
using VfioMigration.Core.Conformance;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Simulation;
using Xunit;

namespace VfioMigration.Core.Tests.Conformance;

/// <summary>
/// The simulated host configured like the reference iommufd kernel of docs/iommufd.md answers every step of the
/// iommufd scenarios as that kernel did (Core's Conformance/Reference/iommufd.txt, transcribed by hand).
/// </summary>
public class IommufdConformanceTests
{
    internal static IommufdTarget ReferenceTarget(SimulatedKernel kernel)
    {
        // The kernel's mtty logs nothing and accepts everything (mtty_log_*).
        kernel.FindDevice(SimTopologies.LabMttyUuid)!.DmaLogIsNoOp = true;
        kernel.Clock.UseManualTime();
        return new IommufdTarget
        {
            Host = new VfioHost(kernel),
            PciCdev = "/dev/vfio/devices/vfio0",
            MdevCdev = "/dev/vfio/devices/vfio2",
        };
    }

    /// <summary>The lab's iommufd host, its edu writing 64 guest pages a second (so the dirty scenario has writes).</summary>
    internal static SimHostConfiguration DirtyHost()
    {
        var c = SimTopologies.LabIommufd(dirtyTracking: true);
        c.AllDevices.First(d => d.Name == "0000:00:02.0").Workload.GuestDirtyPagesPerSecond = 64;
        return c;
    }

    [Theory]
    [InlineData("iommufd-vfio-pci")]
    [InlineData("iommufd-mdev")]
    public void TheSimulatedReferenceKernelAnswersAsTheRealOneDid(string scenario)
    {
        var actual = IommufdConformance.Run(ReferenceTarget(new SimulatedKernel(SimTopologies.LabIommufd())), new[] { scenario });
        var expected = IommufdConformance.Reference().Where(o => o.Scenario == scenario).ToList();

        Assert.NotEmpty(expected);
        var diff = ConformanceRunner.Compare(expected, actual);
        Assert.True(diff.Count == 0, Describe(diff, actual));
    }

    [Fact]
    public void TheReferenceCoversEveryScenarioAndEveryAnswerTheStudyRecorded()
    {
        var reference = IommufdConformance.Reference();
        Assert.Equal(IommufdConformance.Names, reference.Select(o => o.Scenario).Distinct());
        // The study's headline answers (docs/iommufd.md section 4).
        Assert.Contains(reference, o => o.Step == "IOMMU_HWPT_ALLOC DIRTY_TRACKING" && o.Answer == "EOPNOTSUPP");
        Assert.Contains(reference, o => o.Step == "IOMMU_HWPT_SET_DIRTY_TRACKING with the IOAS id" && o.Answer == "ENOENT");
        Assert.Contains(reference, o => o.Step == "mdev: IOMMU_GET_HW_INFO with its id" && o.Answer == "ENOENT");
    }

    [Fact]
    public void AVtdThatCanTrackGivesTheDirtyDomainTheReferenceKernelRefused()
    {
        var actual = IommufdConformance.Run(ReferenceTarget(new SimulatedKernel(SimTopologies.LabIommufd(dirtyTracking: true))), new[] { "iommufd-vfio-pci" });
        var diff = ConformanceRunner.Compare(IommufdConformance.Reference().Where(o => o.Scenario == "iommufd-vfio-pci").ToList(), actual);

        // The capability word, the DIRTY_TRACKING allocation (which then shifts the next object ids) differ; the refusals of non-dirty HWPTs stay.
        Assert.Contains(diff, d => d.Step == "IOMMU_HWPT_ALLOC DIRTY_TRACKING" && d.Left == "EOPNOTSUPP" && d.Right!.StartsWith("0 hwpt", StringComparison.Ordinal));
        Assert.Contains(diff, d => d.Step == "IOMMU_GET_HW_INFO" && d.Right!.EndsWith("capabilities 0x1", StringComparison.Ordinal));
        Assert.DoesNotContain(diff, d => d.Step == "auto hwpt: SET_DIRTY_TRACKING");
    }

    [Fact]
    public void OnAmdViTheHardwareInfoHasNoDataAndNoDirtyCapability()
    {
        var actual = IommufdConformance.Run(ReferenceTarget(new SimulatedKernel(SimTopologies.LabIommufd(model: SimIommuModel.AmdVi))), new[] { "iommufd-vfio-pci" });

        Assert.Equal("0 type 0 data_len 0 capabilities 0x0", actual.Single(o => o.Step == "IOMMU_GET_HW_INFO").Answer);
        Assert.Equal("EOPNOTSUPP", actual.Single(o => o.Step == "IOMMU_HWPT_ALLOC NEST_PARENT").Answer);
        Assert.Equal("EOPNOTSUPP", actual.Single(o => o.Step == "IOMMU_HWPT_ALLOC DIRTY_TRACKING").Answer);
    }

    private static string Describe(System.Collections.Generic.IReadOnlyList<(string Scenario, string Step, string? Left, string? Right)> diff,
        System.Collections.Generic.IReadOnlyList<Observation> actual)
    {
        var text = new StringBuilder("The simulator differs from docs/iommufd.md's reference kernel:\n");
        foreach (var d in diff) text.Append($"  {d.Scenario} | {d.Step}\n    reference: {d.Left ?? "(no such step)"}\n    simulated: {d.Right ?? "(no such step)"}\n");
        text.Append("Simulated run:\n");
        foreach (var o in actual) text.Append($"{o.Scenario} | {o.Step} | {o.Answer}\n");
        return text.ToString();
    }
}
