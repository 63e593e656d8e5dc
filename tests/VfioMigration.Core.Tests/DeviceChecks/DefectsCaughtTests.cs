using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using VfioMigration.Core.DeviceChecks;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using Xunit;
using Xunit.Abstractions;

namespace VfioMigration.Core.Tests.DeviceChecks;

/// <summary>
/// The suite's proof: the simulator plays each named driver defect (the Defects key), and the suite must
/// catch every one with at least one failed check, the device back in RUNNING afterwards. The table
/// "Defects the suite catches" of docs/conformance.md must name a check that really catches each.
/// </summary>
public class DefectsCaughtTests
{
    private readonly ITestOutputHelper _output;

    public DefectsCaughtTests(ITestOutputHelper output) => _output = output;

    public static TheoryData<SimDefect> Defects()
    {
        var data = new TheoryData<SimDefect>();
        foreach (var d in Enum.GetValues<SimDefect>()) data.Add(d);
        return data;
    }

    /// <summary>A device that can have the defect: the v1 example for v1 defects, else the v2 PCI example with everything.</summary>
    private static SimDeviceConfig Defective(SimDefect defect, string name)
    {
        var device = defect.ToString().StartsWith("V1", StringComparison.Ordinal) ? SimDeviceExamples.V1Device(name) : SimDeviceExamples.V2PciDevice(name);
        device.Defects.Add(defect);
        return device;
    }

    /// <summary>The ids of the checks that fail on a device with <paramref name="defect"/>.</summary>
    internal static IReadOnlyList<string> CatchingChecks(SimDefect defect, out DeviceCheckReport report)
    {
        var device = Defective(defect, "0000:00:06.0");
        var clean = defect.ToString().StartsWith("V1", StringComparison.Ordinal) ? SimDeviceExamples.V1Device("0000:00:07.0") : SimDeviceExamples.V2PciDevice("0000:00:07.0");
        var (c, d, p) = CleanDevicesPassTests.Open(device, clean);
        using var _ = c;
        report = DeviceCheckSuite.Run(d, p, c);
        Assert.Equal(VfioMigrationState.Running, DeviceMigration.GetState(d));
        return report.Results.Where(r => r.Outcome == CheckOutcome.Failed).Select(r => r.Id).ToList();
    }

    [Theory]
    [MemberData(nameof(Defects))]
    public void EveryDefectIsCaughtByAtLeastOneCheckAndTheDeviceEndsRunning(SimDefect defect)
    {
        var caught = CatchingChecks(defect, out var report);
        foreach (var r in report.Results.Where(r => r.Outcome == CheckOutcome.Failed))
            _output.WriteLine(DeviceCheckReport.FailureText(r));
        Assert.True(caught.Count > 0, $"{defect} was not caught: {report.Passed} passed, {report.Skipped} skipped");
        _output.WriteLine($"{defect}: {string.Join(", ", caught)}");
    }

    private static string Root([CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", ".."));

    [Fact]
    public void TheDocsTableNamesEveryDefectWithACheckThatCatchesIt()
    {
        string doc = File.ReadAllText(Path.Combine(Root(), "docs", "conformance.md"));
        int start = doc.IndexOf("## Defects the suite catches", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/conformance.md has no section \"Defects the suite catches\"");
        var rows = Regex.Matches(doc[start..], @"^\| `(?<defect>\w+)` \| `(?<check>[\w.-]+)`", RegexOptions.Multiline)
            .ToDictionary(m => m.Groups["defect"].Value, m => m.Groups["check"].Value);
        Assert.Equal(Enum.GetNames<SimDefect>().OrderBy(n => n), rows.Keys.OrderBy(n => n));
        foreach (var (name, check) in rows)
        {
            var caught = CatchingChecks(Enum.Parse<SimDefect>(name), out _);
            Assert.True(caught.Contains(check), $"docs/conformance.md says {check} catches {name}; the checks that do: {string.Join(", ", caught)}");
        }
    }

    [Fact]
    public void TheDocsDescribeEveryCheckOfTheSuite()
    {
        string doc = File.ReadAllText(Path.Combine(Root(), "docs", "conformance.md"));
        foreach (var check in DeviceCheckSuite.Catalog)
            Assert.True(doc.Contains($"`{check.Id}`", StringComparison.Ordinal), $"docs/conformance.md does not describe {check.Id}");
    }
}
