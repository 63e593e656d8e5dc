using System;
using System.IO;
using System.Linq;
using System.Threading;
using VfioMigration.Core;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Vfio;
using Xunit;
using S = VfioMigration.Core.Migration.VfioMigrationState;

namespace VfioMigration.Core.Tests.Migration;

/// <summary>Save-VfioDeviceState and Restore-VfioDeviceState underneath: the state file, both protocols, failures.</summary>
public sealed class DeviceStateTests : IDisposable
{
    private const string SourceV2 = "36e5c7cc-4871-4d03-91da-44479a60a911";
    private const string DestV2 = "36e5c7cc-4871-4d03-91da-44479a60a912";
    private const string SourceV1 = "5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51";
    private const string DestV1 = "5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b52";
    private readonly string _dir = Directory.CreateTempSubdirectory("vfiomig-state").FullName;
    private readonly SimulatedKernel _kernel;
    private readonly VfioContainer _container;

    public DeviceStateTests()
    {
        var config = new SimHostConfiguration { Name = "state tests" };
        int group = 20;
        foreach (var (name, protocol) in new[] { (SourceV2, SimMigrationProtocol.V2), (DestV2, SimMigrationProtocol.V2), (SourceV1, SimMigrationProtocol.V1), (DestV1, SimMigrationProtocol.V1) })
        {
            config.Groups.Add(new SimGroupConfig
            {
                Number = group++,
                Devices =
                {
                    new SimDeviceConfig
                    {
                        Name = name, Bus = SimBus.Mdev, MdevType = protocol == SimMigrationProtocol.V2 ? "mtty-2" : "vgpu-v1", Driver = protocol == SimMigrationProtocol.V2 ? "mtty" : "vgpu",
                        Migration = protocol,
                        MigrationFlags = Native.VfioConstants.VFIO_MIGRATION_STOP_COPY | Native.VfioConstants.VFIO_MIGRATION_P2P | Native.VfioConstants.VFIO_MIGRATION_PRE_COPY,
                        Workload = protocol == SimMigrationProtocol.V2 ? new SimWorkload { StateSize = 96, InitialBytes = 24, Seed = group } : new SimWorkload { StateSize = 3 << 20, InitialBytes = 1 << 20, Seed = group },
                    },
                },
            });
        }
        _kernel = new SimulatedKernel(config);
        _kernel.Clock.UseManualTime();
        _container = VfioContainer.Open(new VfioHost(_kernel));
        for (int g = 20; g < group; g++) _container.Attach(g);
        _container.SetIommu();
    }

    public void Dispose()
    {
        _container.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string FilePath(string name) => Path.Combine(_dir, name);

    [Fact]
    public void AV2SaveRunsPreCopyThenStopCopyIntoAVerifiedFileAndLeavesTheDeviceStopped()
    {
        var src = _container.GetDevice(SourceV2);
        var r = DeviceState.Save(src, FilePath("mtty.state"));
        Assert.Equal((24UL, 72UL, 96UL, 1), (r.PreCopyBytes, r.StopCopyBytes, r.TotalBytes, r.PreCopyRounds));
        Assert.Equal(S.Stop, r.FinalState);
        var contents = StateFile.Verify(FilePath("mtty.state"));
        Assert.Equal((96UL, MigrationProtocol.V2, "mtty-2"), (contents.TotalBytes, contents.Identity.Protocol, contents.Identity.Model));
        Assert.Empty(Directory.GetFiles(_dir, "*.partial"));
    }

    [Fact]
    public void SaveRestoreIntoASecondDeviceAndSaveAgainGiveTheSameBytes()
    {
        DeviceState.Save(_container.GetDevice(SourceV2), FilePath("a.state"), resume: true);
        var dest = _container.GetDevice(DestV2);
        var restored = DeviceState.Restore(dest, FilePath("a.state"), resume: true);
        Assert.Equal((96UL, S.Running), (restored.Bytes, restored.FinalState));
        DeviceState.Save(dest, FilePath("b.state"));
        Assert.Equal(96, Payload(FilePath("a.state")).Length);
        Assert.Equal(Payload(FilePath("a.state")), Payload(FilePath("b.state")));
        Assert.Equal(_kernel.FindDevice(SourceV2)!.GetStateBytes(), _kernel.FindDevice(DestV2)!.GetStateBytes());
    }

    [Fact]
    public void AV1SaveKeepsEachTransactionAsAChunkAndRestoresIntoAnotherV1Device()
    {
        var src = _container.GetDevice(SourceV1);
        var r = DeviceState.Save(src, FilePath("v1.state"), resume: true);
        Assert.Equal((ulong)(3 << 20), r.TotalBytes);
        Assert.True(r.PreCopyBytes > 0);
        var contents = StateFile.Verify(FilePath("v1.state"));
        Assert.True(contents.Chunks.Count > 1, "a 3 MiB state comes in window-sized transactions");
        var dest = _container.GetDevice(DestV1);
        Assert.Equal(S.Stop, DeviceState.Restore(dest, FilePath("v1.state")).FinalState);
        Assert.Equal(_kernel.FindDevice(SourceV1)!.GetStateBytes(), _kernel.FindDevice(DestV1)!.GetStateBytes());
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("append")]
    public void ADamagedFileIsRefusedBeforeTheDeviceMoves(string damage)
    {
        DeviceState.Save(_container.GetDevice(SourceV2), FilePath("d.state"), resume: true);
        var bytes = File.ReadAllBytes(FilePath("d.state"));
        bytes = damage switch
        {
            "flip" => bytes.Select((b, i) => i == bytes.Length / 2 ? (byte)(b ^ 0x40) : b).ToArray(),
            "truncate" => bytes[..^20],
            _ => bytes.Concat(new byte[] { 1, 2, 3 }).ToArray(),
        };
        File.WriteAllBytes(FilePath("d.state"), bytes);
        var dest = _container.GetDevice(DestV2);
        var e = Assert.Throws<VfioRuleException>(() => DeviceState.Restore(dest, FilePath("d.state")));
        Assert.Equal("StateFileInvalid", e.RuleId);
        Assert.Equal(S.Running, DeviceMigration.GetState(dest));
    }

    [Fact]
    public void AForeignFileIsRefusedNamingBothDevices()
    {
        DeviceState.Save(_container.GetDevice(SourceV2), FilePath("f.state"), resume: true);
        var v1 = _container.GetDevice(DestV1);
        var e = Assert.Throws<VfioRuleException>(() => DeviceState.Restore(v1, FilePath("f.state")));
        Assert.Equal("StateFileForeign", e.RuleId);
        Assert.Contains(SourceV2, e.Message);
        Assert.Contains(DestV1, e.Message);
        Assert.Equal(S.Running, DeviceMigration.GetState(v1));
    }

    [Fact]
    public void ACancelledSaveLeavesNoFileAndTheSourceRunning()
    {
        var src = _container.GetDevice(SourceV1);
        using var cancel = new CancellationTokenSource();
        var e = Assert.Throws<MigrationFailedException>(() =>
            DeviceState.Save(src, FilePath("c.state"), progress: p => { if (p.Moved > 0) cancel.Cancel(); }, cancel: cancel.Token));
        Assert.Equal((MigrationStatus.Cancelled, "Cancelled"), (e.Status, e.ErrorId));
        Assert.Equal(S.Running, e.SourceOutcome!.State);
        Assert.Contains("No state file was written", e.Message);
        Assert.False(File.Exists(FilePath("c.state")));
        Assert.Empty(Directory.GetFiles(_dir));
        Assert.Equal(S.Running, DeviceMigration.GetState(src));
    }

    [Fact]
    public void ADeviceThatFallsIntoErrorDuringSaveLeavesNoFileAndStaysInErrorForAReset()
    {
        var src = _container.GetDevice(SourceV2);
        _kernel.Faults.ErrorOnTransition(SourceV2, (uint)S.StopCopy);
        var e = Assert.Throws<MigrationFailedException>(() => DeviceState.Save(src, FilePath("e.state")));
        Assert.Equal(("DeviceInError", "switchover"), (e.ErrorId, e.Phase));
        Assert.IsType<MigrationTransitionException>(e.InnerException);
        Assert.Contains("left in ERROR", e.Message);
        Assert.Empty(Directory.GetFiles(_dir));
        Assert.Equal(S.Error, DeviceMigration.GetState(src));
    }

    [Fact]
    public void ShortReadsAndWritesStillMoveTheWholeState()
    {
        _kernel.Faults.ShortTransferBytes = 7;
        DeviceState.Save(_container.GetDevice(SourceV2), FilePath("s.state"), resume: true);
        Assert.Equal(96UL, StateFile.Verify(FilePath("s.state")).TotalBytes);
        DeviceState.Restore(_container.GetDevice(DestV2), FilePath("s.state"), resume: true);
        Assert.Equal(_kernel.FindDevice(SourceV2)!.GetStateBytes(), _kernel.FindDevice(DestV2)!.GetStateBytes());
    }

    private static byte[] Payload(string path) => StateFile.ReadStream(path);
}
