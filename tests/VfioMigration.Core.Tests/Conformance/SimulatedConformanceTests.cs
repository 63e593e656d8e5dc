using System.Collections.Generic;
using System.Linq;
using System.Text;
using VfioMigration.Core.Conformance;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using Xunit;

namespace VfioMigration.Core.Tests.Conformance;

/// <summary>
/// The simulated lab host gives the real kernel's answers (kernel-interface.md (lab), transcribed in Expected/) to every
/// step of the container and type1 scenarios.
/// </summary>
public class SimulatedConformanceTests
{
    /// <summary>Every scenario of the suite, found by enumerating it: a new scenario without expected answers fails.</summary>
    public static TheoryData<string> AllScenarios => new(ConformanceRunner.Scenarios.Select(s => s.Name));

    internal static ConformanceTarget LabTarget(SimulatedKernel kernel) => new()
    {
        Host = new VfioHost(kernel),
        IommuGroup = 2,
        IommuDevice = "0000:00:02.0",
        MdevGroup = 7,
        MdevDevice = SimTopologies.LabMttyUuid,
        PeerMdevGroup = 8,
        PeerMdevDevice = SimTopologies.LabMttyPeerUuid,
    };

    [Theory]
    [MemberData(nameof(AllScenarios))]
    public void TheSimulatedLabAnswersEveryStepAsLinux612Did(string scenario)
    {
        var expected = ExpectedAnswers.Load(scenario);
        var actual = ConformanceRunner.Run(LabTarget(new SimulatedKernel(SimTopologies.Lab())), new[] { scenario });

        var diff = ConformanceRunner.Compare(expected, actual);

        Assert.True(diff.Count == 0, Describe(scenario, diff, actual));
    }

    [Theory]
    [MemberData(nameof(AllScenarios))]
    public void EveryScenarioHasExpectedAnswersThatNameTheKernelTheyCameFrom(string scenario)
    {
        Assert.True(ConformanceRunner.Scenarios.Single(s => s.Name == scenario).AppliesTo(LabTarget(new SimulatedKernel(SimTopologies.Lab()))),
            $"'{scenario}' does not apply to the lab's target, so the lab cannot observe it");
        Assert.NotEmpty(ExpectedAnswers.Load(scenario));
        Assert.StartsWith("6.12.", ExpectedAnswers.Kernel(scenario) ?? "(no kernel named: write the file with build.ps1 -Task LabExpected)");
    }

    [Fact]
    public void ComparingWithAMutatedExpectedListReportsExactlyTheChangedStep()
    {
        var expected = ExpectedAnswers.Load("dirty-mdev").ToList();
        int i = expected.FindIndex(o => o.Step == "GET_BITMAP A");
        Assert.Equal("bits 0/512", expected[i].Answer);
        expected[i] = expected[i] with { Answer = "bits 512/512" };    // what an IOMMU-backed container would say

        var actual = ConformanceRunner.Run(LabTarget(new SimulatedKernel(SimTopologies.Lab())), new[] { "dirty-mdev" });
        var diff = ConformanceRunner.Compare(expected, actual);

        var only = Assert.Single(diff);
        Assert.Equal(("dirty-mdev", "GET_BITMAP A", "bits 512/512", "bits 0/512"), (only.Scenario, only.Step, only.Left, only.Right));
    }

    [Fact]
    public void AKernelThatAnswersOneCallDifferentlyIsReportedAtThatStep()
    {
        // The 3rd DIRTY_PAGES call of dirty-iommu is the first GET_BITMAP after START ("GET_BITMAP A").
        var kernel = new SimulatedKernel(SimTopologies.Lab());
        kernel.Faults.FailIoctl(VfioIoctl.VFIO_IOMMU_DIRTY_PAGES.Name, 3, Errno.EIO);

        var actual = ConformanceRunner.Run(LabTarget(kernel), new[] { "dirty-iommu" });
        var diff = ConformanceRunner.Compare(ExpectedAnswers.Load("dirty-iommu"), actual);

        var only = Assert.Single(diff);
        Assert.Equal(("GET_BITMAP A", "bits 512/512", "EIO"), (only.Step, only.Left, only.Right));
    }

    [Fact]
    public void ALostStepIsReportedAsMissing()
    {
        var expected = ExpectedAnswers.Load("iommu-info");
        var actual = ConformanceRunner.Run(LabTarget(new SimulatedKernel(SimTopologies.Lab())), new[] { "iommu-info" }).ToList();
        actual.RemoveAt(actual.Count - 1);

        var diff = ConformanceRunner.Compare(expected, actual);

        var only = Assert.Single(diff);
        Assert.Equal(("mdev-only: IOVA_RANGE", "absent", (string?)null), (only.Step, only.Left, only.Right));
    }

    private static string Describe(string scenario, IReadOnlyList<(string Scenario, string Step, string? Left, string? Right)> diff,
        IReadOnlyList<Observation> actual)
    {
        var text = new StringBuilder($"Scenario '{scenario}' differs from Expected/{scenario}.txt (kernel-interface.md (lab)):\n");
        foreach (var d in diff)
            text.Append($"  {d.Step}\n    Linux 6.12 (expected): {d.Left ?? "(no such step)"}\n    simulated:             {d.Right ?? "(no such step)"}\n");
        text.Append("Simulated run, in the expected file's format:\n").Append(ExpectedAnswers.Format(actual));
        return text.ToString();
    }
}
