using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Xml.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.DeviceChecks;

/// <summary>Passed, failed and skipped checks of one area.</summary>
public sealed record DeviceCheckAreaSummary(string Area, int Passed, int Failed, int Skipped)
{
    public int Total => Passed + Failed + Skipped;
}

/// <summary>What Test-VfioDevice returns: the device, where it ran, and every check's result.</summary>
public sealed class DeviceCheckReport
{
    public required string Device { get; init; }

    public string? Peer { get; init; }

    /// <summary>The driver bound to the device (sysfs), e.g. vfio-pci, mlx5-vfio-pci, mtty.</summary>
    public required string Driver { get; init; }

    /// <summary>vendor:device for PCI, the mdev type for an mdev.</summary>
    public required string Model { get; init; }

    public required MigrationProtocol Protocol { get; init; }

    /// <summary>The migration flags the device claims (v2).</summary>
    public required string Flags { get; init; }

    /// <summary>The kernel release (/proc/sys/kernel/osrelease), or "simulated".</summary>
    public required string Kernel { get; init; }

    public required string Host { get; init; }

    public required HostKind HostKind { get; init; }

    public required DateTimeOffset Started { get; init; }

    public required TimeSpan Duration { get; init; }

    public required IReadOnlyList<DeviceCheckResult> Results { get; init; }

    public int Passed => Results.Count(r => r.Outcome == CheckOutcome.Passed);

    public int Failed => Results.Count(r => r.Outcome == CheckOutcome.Failed);

    public int Skipped => Results.Count(r => r.Outcome == CheckOutcome.Skipped);

    /// <summary>Failed checks whose rule is a must: what stops a driver from shipping.</summary>
    public int FailedMust => Results.Count(r => r.Outcome == CheckOutcome.Failed && r.Severity == CheckSeverity.Must);

    /// <summary>"Passed" when no check failed, else "Failed".</summary>
    public string Result => Failed == 0 ? "Passed" : "Failed";

    /// <summary>Counts per area, in the suite's order.</summary>
    public IReadOnlyList<DeviceCheckAreaSummary> Areas =>
        DeviceCheckSuite.Areas.Select(a => Results.Where(r => r.Area == a).ToList())
            .Where(rs => rs.Count > 0)
            .Select(rs => new DeviceCheckAreaSummary(rs[0].Area, rs.Count(r => r.Outcome == CheckOutcome.Passed), rs.Count(r => r.Outcome == CheckOutcome.Failed), rs.Count(r => r.Outcome == CheckOutcome.Skipped)))
            .ToList();

    public override string ToString() => $"{Device}: {Result} ({Passed} passed, {Failed} failed, {Skipped} skipped)";

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture);

    private string SuiteName => $"Test-VfioDevice {Device}";

    /// <summary>The failure text a CI shows: rule, what was expected, what the device did, and the calls.</summary>
    public static string FailureText(DeviceCheckResult r)
    {
        var text = new StringBuilder();
        text.AppendLine($"Rule ({r.Severity.ToString().ToLowerInvariant()}): {r.Rule}");
        text.AppendLine($"Source: {r.Source}");
        text.AppendLine($"Expected: {r.Expected}");
        text.AppendLine($"The device: {r.Actual}");
        if (r.Cleanup is not null) text.AppendLine($"Afterwards: {r.Cleanup}");
        if (r.Trace.Count > 0)
        {
            text.AppendLine("Calls (the failing one last):");
            foreach (string line in r.Trace.Skip(Math.Max(0, r.Trace.Count - 40))) text.AppendLine("  " + line);
        }
        return text.ToString();
    }

    /// <summary>JUnit XML as Jenkins, GitLab and GitHub's test reporters read it: one testsuite per area.</summary>
    public string ToJUnitXml()
    {
        var suites = new XElement("testsuites",
            new XAttribute("name", SuiteName), new XAttribute("tests", Results.Count), new XAttribute("failures", Failed),
            new XAttribute("errors", 0), new XAttribute("skipped", Skipped), new XAttribute("time", Seconds(Duration)));
        foreach (var area in Areas)
        {
            var suite = new XElement("testsuite",
                new XAttribute("name", area.Area), new XAttribute("tests", area.Total), new XAttribute("failures", area.Failed),
                new XAttribute("errors", 0), new XAttribute("skipped", area.Skipped),
                new XAttribute("time", Seconds(TimeSpan.FromTicks(Results.Where(r => r.Area == area.Area).Sum(r => r.Duration.Ticks)))),
                new XAttribute("timestamp", Started.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture)),
                new XAttribute("hostname", Host),
                new XElement("properties",
                    Property("device", Device), Property("peer", Peer ?? ""), Property("driver", Driver), Property("model", Model),
                    Property("protocol", Protocol.ToString()), Property("flags", Flags), Property("kernel", Kernel)));
            foreach (var r in Results.Where(r => r.Area == area.Area))
            {
                var testCase = new XElement("testcase", new XAttribute("name", r.Id), new XAttribute("classname", $"VfioMigration.{r.Area}"),
                    new XAttribute("time", Seconds(r.Duration)));
                if (r.Outcome == CheckOutcome.Failed)
                    testCase.Add(new XElement("failure", new XAttribute("message", $"expected {r.Expected}; the device {r.Actual}"), new XAttribute("type", r.Severity.ToString()), FailureText(r)));
                else if (r.Outcome == CheckOutcome.Skipped)
                    testCase.Add(new XElement("skipped", new XAttribute("message", r.Actual ?? "")));
                suite.Add(testCase);
            }
            suites.Add(suite);
        }
        return new XDocument(new XDeclaration("1.0", "utf-8", null), suites).Declaration + Environment.NewLine + suites;
    }

    private static XElement Property(string name, string value) => new("property", new XAttribute("name", name), new XAttribute("value", value));

    /// <summary>NUnit 2.5 XML (what Pester's NUnitXml writes and Azure DevOps reads): one test-suite per area.</summary>
    public string ToNUnitXml()
    {
        var root = new XElement("test-results",
            new XAttribute("name", SuiteName), new XAttribute("total", Results.Count), new XAttribute("errors", 0), new XAttribute("failures", Failed),
            new XAttribute("not-run", 0), new XAttribute("inconclusive", 0), new XAttribute("ignored", 0), new XAttribute("skipped", Skipped), new XAttribute("invalid", 0),
            new XAttribute("date", Started.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), new XAttribute("time", Started.ToString("HH:mm:ss", CultureInfo.InvariantCulture)),
            new XElement("environment", new XAttribute("machine-name", Host), new XAttribute("os-version", Kernel), new XAttribute("platform", "Linux"),
                new XAttribute("nunit-version", "2.5.8.0"), new XAttribute("clr-version", Environment.Version.ToString()), new XAttribute("cwd", "."),
                new XAttribute("user", Environment.UserName), new XAttribute("user-domain", "")),
            new XElement("culture-info", new XAttribute("current-culture", "en-US"), new XAttribute("current-uiculture", "en-US")));
        var top = new XElement("test-suite", new XAttribute("type", "TestFixture"), new XAttribute("name", SuiteName), new XAttribute("executed", "True"),
            new XAttribute("result", Result == "Passed" ? "Success" : "Failure"), new XAttribute("success", Failed == 0 ? "True" : "False"), new XAttribute("time", Seconds(Duration)));
        var results = new XElement("results");
        foreach (var area in Areas)
        {
            var cases = new XElement("results");
            foreach (var r in Results.Where(r => r.Area == area.Area))
            {
                var testCase = new XElement("test-case", new XAttribute("name", r.Id), new XAttribute("description", r.Rule),
                    new XAttribute("executed", r.Outcome == CheckOutcome.Skipped ? "False" : "True"),
                    new XAttribute("result", r.Outcome switch { CheckOutcome.Passed => "Success", CheckOutcome.Failed => "Failure", _ => "Ignored" }),
                    new XAttribute("time", Seconds(r.Duration)));
                if (r.Outcome != CheckOutcome.Skipped) testCase.Add(new XAttribute("success", r.Outcome == CheckOutcome.Passed ? "True" : "False"));
                if (r.Outcome == CheckOutcome.Failed)
                    testCase.Add(new XElement("failure", new XElement("message", new XCData($"expected {r.Expected}; the device {r.Actual}")), new XElement("stack-trace", new XCData(FailureText(r)))));
                else if (r.Outcome == CheckOutcome.Skipped)
                    testCase.Add(new XElement("reason", new XElement("message", new XCData(r.Actual ?? ""))));
                cases.Add(testCase);
            }
            results.Add(new XElement("test-suite", new XAttribute("type", "TestFixture"), new XAttribute("name", area.Area), new XAttribute("executed", "True"),
                new XAttribute("result", area.Failed == 0 ? "Success" : "Failure"), new XAttribute("success", area.Failed == 0 ? "True" : "False"),
                new XAttribute("time", Seconds(TimeSpan.FromTicks(Results.Where(r => r.Area == area.Area).Sum(r => r.Duration.Ticks)))), cases));
        }
        top.Add(results);
        root.Add(top);
        return new XDocument(new XDeclaration("1.0", "utf-8", "no"), root).Declaration + Environment.NewLine + root;
    }
}
