using System;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using VfioMigration.Core.Conformance;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Simulation;
using Xunit;

namespace VfioMigration.Core.Tests.Conformance;

/// <summary>
/// The device scenarios against the simulated lab give the answers the real lab gave (Expected/&lt;scenario&gt;.txt,
/// transcribed from kernel-interface.md lab 7.1 and 7.3).
/// </summary>
public class DeviceConformanceTests
{
    [Theory]
    [InlineData("device-no-migration")]
    [InlineData("migration-v2")]
    public void TheSimulatedLabAnswersAsTheRealLab(string scenario)
    {
        var observed = ConformanceRunner.Run(LabTarget(), new[] { scenario });
        var expected = ReadExpected(scenario);
        var diff = ConformanceRunner.Compare(expected, observed);
        Assert.True(diff.Count == 0, "Differences (step: expected / simulated):\n" +
            string.Join("\n", diff.Select(d => $"  {d.Step}: {d.Left ?? "(missing)"} / {d.Right ?? "(missing)"}")));
    }

    [Fact]
    public void EveryDeviceScenarioIsInTheSuiteAndHasAnExpectedFile()
    {
        var names = ConformanceRunner.Scenarios.Select(s => s.Name).ToHashSet();
        Assert.Contains("device-no-migration", names);
        Assert.Contains("migration-v2", names);
        Assert.True(File.Exists(ExpectedPath("device-no-migration")));
        Assert.True(File.Exists(ExpectedPath("migration-v2")));
    }

    [Fact]
    public void TheMigrationScenarioLeavesTheDeviceRunningAndCanRunTwice()
    {
        var target = LabTarget();
        var first = ConformanceRunner.Run(target, new[] { "migration-v2" });
        var second = ConformanceRunner.Run(target, new[] { "migration-v2" });
        Assert.Empty(ConformanceRunner.Compare(first, second));
    }

    [Theory]
    [InlineData("mtty-registers")]
    [InlineData("migration-v2-arcs")]
    public void TheMttyScenariosGiveTheDevicesBackAsTheyFoundThemAndCanRunTwice(string scenario)
    {
        var target = LabTarget();
        var first = ConformanceRunner.Run(target, new[] { scenario });
        var second = ConformanceRunner.Run(target, new[] { scenario });
        Assert.Empty(ConformanceRunner.Compare(first, second));
        Assert.DoesNotContain(first, o => o.Step == "unexpected failure");
    }

    private static ConformanceTarget LabTarget() => new()
    {
        Host = new VfioHost(new SimulatedKernel(SimTopologies.Lab())),
        IommuGroup = 2,
        IommuDevice = "0000:00:02.0",
        MdevGroup = 7,
        MdevDevice = SimTopologies.LabMttyUuid,
        PeerMdevGroup = 8,
        PeerMdevDevice = SimTopologies.LabMttyPeerUuid,
    };

    private static Observation[] ReadExpected(string scenario) => ExpectedAnswers.Load(scenario).ToArray();

    private static string ExpectedPath(string scenario, [CallerFilePath] string source = "") =>
        Path.Combine(Path.GetDirectoryName(source)!, "Expected", scenario + ".txt");
}
