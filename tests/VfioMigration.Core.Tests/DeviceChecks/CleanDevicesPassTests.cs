using System;
using System.Linq;
using VfioMigration.Core.DeviceChecks;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using VfioMigration.Core.Vfio;
using Xunit;
using Xunit.Abstractions;

namespace VfioMigration.Core.Tests.DeviceChecks;

/// <summary>The conformance suite against the simulator's clean devices: nothing fails, the device ends RUNNING.</summary>
public class CleanDevicesPassTests
{
    private readonly ITestOutputHelper _output;

    public CleanDevicesPassTests(ITestOutputHelper output) => _output = output;

    public static TheoryData<string> Devices => new() { "v2-all", "v2-stop-copy-only", "v2-without-p2p", "v2-without-precopy", "v1", "mtty" };

    internal static SimDeviceConfig Config(string kind, string name) => kind switch
    {
        "v2-all" => SimDeviceExamples.V2PciDevice(name),
        "v2-stop-copy-only" => SimDeviceExamples.V2StopCopyOnly(name),
        "v2-without-p2p" => SimDeviceExamples.V2WithoutP2P(name),
        "v2-without-precopy" => SimDeviceExamples.V2WithoutPreCopy(name),
        "v1" => SimDeviceExamples.V1Device(name),
        "mtty" => SimTopologies.Lab().Groups.SelectMany(g => g.Devices).First(d => d.Name == (name == "0000:00:06.0" ? SimTopologies.LabMttyUuid : SimTopologies.LabMttyPeerUuid)),
        _ => throw new ArgumentException(kind),
    };

    internal static (VfioContainer Container, VfioDevice Device, VfioDevice Peer) Open(SimDeviceConfig device, SimDeviceConfig peer)
    {
        var kernel = new SimulatedKernel(SimDeviceExamples.Host(10, device, peer));
        var c = VfioContainer.Open(new VfioHost(kernel));
        c.Attach(10);
        c.Attach(11);
        c.SetIommu();
        return (c, c.GetDevice(device.Name), c.GetDevice(peer.Name));
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void EveryCheckPassesOrIsSkippedAndTheDeviceEndsRunning(string kind)
    {
        var device = Config(kind, "0000:00:06.0");
        var peer = Config(kind, "0000:00:07.0");
        var (c, d, p) = Open(device, peer);
        using var _ = c;
        var report = DeviceCheckSuite.Run(d, p, c);
        foreach (var r in report.Results)
            _output.WriteLine($"{r.Outcome,-8} {r.Id}: {r.Actual}{(r.Outcome == CheckOutcome.Failed ? "\n" + DeviceCheckReport.FailureText(r) : "")}");
        Assert.True(report.Failed == 0, string.Join("\n", report.Results.Where(r => r.Outcome == CheckOutcome.Failed).Select(DeviceCheckReport.FailureText)));
        Assert.True(report.Passed >= (kind == "v1" ? 4 : 15), $"only {report.Passed} checks ran");
        Assert.Equal(VfioMigrationState.Running, DeviceMigration.GetState(d));
        Assert.Equal(VfioMigrationState.Running, DeviceMigration.GetState(p));
    }
}
