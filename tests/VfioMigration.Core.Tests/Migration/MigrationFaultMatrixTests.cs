using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Vfio;
using Xunit;
using S = VfioMigration.Core.Migration.VfioMigrationState;

namespace VfioMigration.Core.Tests.Migration;

/// <summary>
/// docs/when-a-migration-fails.md as a matrix: each operation (Save, Start-VfioMigration to a device and to a
/// file, Restore) × phase (setup, pre-copy round k, switchover, stop-copy read, rename, destination load,
/// resume) × fault (a stop thrown by the progress callback as a stopped pipeline throws, an errno from the
/// kernel, a device falling into ERROR, short transfers, a destination that refuses, a target that appears).
/// Every case checks where both devices ended, which files are left, and what the user is told.
/// The disk-full and read-only cases need a small tmpfs: tests/Pester/MigrationSafety.Tests.ps1.
/// </summary>
public sealed class MigrationFaultMatrixTests : IDisposable
{
    private const string A = "7a3c0000-0000-4000-8000-00000000000a";   // the source: 3 MiB of state, 2 MiB in pre-copy
    private const string B = "7a3c0000-0000-4000-8000-00000000000b";   // a destination with VFIO_DEVICE_RESET
    private const string C = "7a3c0000-0000-4000-8000-00000000000c";   // a destination without it
    private readonly string _dir = Directory.CreateTempSubdirectory("vfiomig-matrix").FullName;
    private readonly SimulatedKernel _kernel;
    private readonly VfioContainer _container;

    public MigrationFaultMatrixTests()
    {
        var config = new SimHostConfiguration { Name = "fault matrix" };
        int group = 40;
        foreach (var (name, reset) in new[] { (A, true), (B, true), (C, false) })
        {
            config.Groups.Add(new SimGroupConfig
            {
                Number = group++,
                Devices =
                {
                    new SimDeviceConfig
                    {
                        Name = name, Bus = SimBus.Mdev, MdevType = "vgpu-t", Driver = "vgpu", Migration = SimMigrationProtocol.V2, Reset = reset,
                        MigrationFlags = VfioConstants.VFIO_MIGRATION_STOP_COPY | VfioConstants.VFIO_MIGRATION_P2P | VfioConstants.VFIO_MIGRATION_PRE_COPY,
                        Workload = new SimWorkload { StateSize = 3 << 20, InitialBytes = 2 << 20, Seed = group },
                    },
                },
            });
        }
        _kernel = new SimulatedKernel(config);
        _kernel.Clock.UseManualTime();
        _container = VfioContainer.Open(new VfioHost(_kernel));
        for (int g = 40; g < group; g++) _container.Attach(g);
        _container.SetIommu();
    }

    public void Dispose()
    {
        _container.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    public enum Op { Save, ToDevice, ToFile, Restore }

    /// <summary>One case: the operation, the step whose first progress report injects the fault, the fault, and what must hold after.</summary>
    public sealed record Case(Op Op, string Step, string Fault, string Id, string Phase, S Source, S? Destination, string Says, string Dest = B)
    {
        public override string ToString() => $"{Op} / {Step} / {Fault}";
    }

    private static readonly Case[] Cases =
    {
        // Save: device -> file.
        new(Op.Save, "setup", "stop", "Cancelled", "setup", S.Running, null, "No state file was written"),
        new(Op.Save, "setup", "refuse PRE_COPY", "TransitionFailed", "setup", S.Running, null, "back in RUNNING"),
        new(Op.Save, "pre-copy round 1", "stop", "Cancelled", "pre-copy round 1", S.Running, null, "moved back to RUNNING"),
        new(Op.Save, "pre-copy round 1", "EIO read", "SyscallFailed", "pre-copy round 1", S.Running, null, "EIO"),
        new(Op.Save, "pre-copy round 1", "error STOP_COPY", "DeviceInError", "switchover", S.Error, null, "left in ERROR"),
        new(Op.Save, "pre-copy round 1", "refuse STOP_COPY", "TransitionFailed", "switchover", S.Running, null, "moved back to RUNNING"),
        new(Op.Save, "stop-copy read", "EIO read", "SyscallFailed", "stop-copy read", S.Running, null, "moved back to RUNNING"),
        new(Op.Save, "stop-copy read", "stop", "Cancelled", "stop-copy read", S.Running, null, "No state file was written"),
        new(Op.Save, "stop-copy read", "cancel after last byte", "Cancelled", "stop-copy read", S.Running, null, "No state file was written"),
        new(Op.Save, "stop-copy read", "directory at target", "FileExists", "rename", S.Running, null, "appeared while it was written"),
        new(Op.Save, "stop-copy read", "short transfers", "", "completed", S.Stop, null, ""),
        new(Op.Save, "stop-copy read", "refuse RUNNING", "TransitionFailed", "resume", S.Running, null, "was written"),

        // Start-VfioMigration: device -> device.
        new(Op.ToDevice, "setup", "refuse RESUMING", "TransitionFailed", "setup", S.Running, S.Running, "moved back to RUNNING: it took no state"),
        new(Op.ToDevice, "setup", "stop", "Cancelled", "setup", S.Running, S.Running, "still in RUNNING: it took no state"),
        new(Op.ToDevice, "pre-copy round 1", "stop", "Cancelled", "pre-copy round 1", S.Running, S.Running, "reset (VFIO_DEVICE_RESET) to RUNNING"),
        new(Op.ToDevice, "pre-copy round 1", "EIO read", "SyscallFailed", "pre-copy round 1", S.Running, S.Running, "moved back to RUNNING"),
        new(Op.ToDevice, "pre-copy round 1", "EIO write", "DestinationRefused", "pre-copy round 1", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.ToDevice, "pre-copy round 1", "error STOP_COPY", "DeviceInError", "switchover", S.Error, S.Running, "left in ERROR"),
        new(Op.ToDevice, "stop-copy read", "EIO read", "SyscallFailed", "stop-copy read", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.ToDevice, "stop-copy read", "EIO write", "DestinationRefused", "stop-copy read", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.ToDevice, "stop-copy read", "stop", "Cancelled", "stop-copy read", S.Running, S.Running, "moved back to RUNNING"),
        new(Op.ToDevice, "stop-copy read", "cancel after last byte", "Cancelled", "stop-copy read", S.Running, S.Running, "reset (VFIO_DEVICE_RESET) to RUNNING"),
        new(Op.ToDevice, "stop-copy read", "refuse STOP", "DestinationRefused", "destination load", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.ToDevice, "stop-copy read", "error STOP", "DeviceInError", "destination load", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.ToDevice, "stop-copy read", "refuse RUNNING", "TransitionFailed", "resume", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.ToDevice, "stop-copy read", "refuse STOP", "DestinationRefused", "destination load", S.Running, S.Resuming, "offers no VFIO_DEVICE_RESET", C),
        new(Op.ToDevice, "pre-copy round 1", "stop", "Cancelled", "pre-copy round 1", S.Running, S.Resuming, "offers no VFIO_DEVICE_RESET", C),
        new(Op.ToDevice, "stop-copy read", "short transfers", "", "completed", S.Stop, S.Running, ""),

        // Start-VfioMigration -Path: device -> file.
        new(Op.ToFile, "pre-copy round 1", "stop", "Cancelled", "pre-copy round 1", S.Running, null, "No state file was written"),
        new(Op.ToFile, "pre-copy round 1", "error STOP_COPY", "DeviceInError", "switchover", S.Error, null, "No state file was written"),
        new(Op.ToFile, "stop-copy read", "EIO read", "SyscallFailed", "stop-copy read", S.Running, null, "No state file was written"),
        new(Op.ToFile, "stop-copy read", "cancel after last byte", "Cancelled", "stop-copy read", S.Running, null, "No state file was written"),
        new(Op.ToFile, "stop-copy read", "directory at target", "FileExists", "rename", S.Running, null, "appeared while it was written"),

        // Restore: file -> device.
        new(Op.Restore, "setup", "refuse RESUMING", "TransitionFailed", "setup", S.Running, S.Running, "moved back to RUNNING: it took no state"),
        new(Op.Restore, "destination load", "stop", "Cancelled", "destination load", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.Restore, "destination load", "EIO write", "DestinationRefused", "destination load", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.Restore, "destination load", "refuse STOP", "DestinationRefused", "destination load", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.Restore, "destination load", "error STOP", "DeviceInError", "destination load", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.Restore, "destination load", "refuse RUNNING", "TransitionFailed", "resume", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.Restore, "destination load", "file changed", "StateFileChanged", "destination load", S.Running, S.Running, "changed after it was verified"),
        new(Op.Restore, "destination load", "cancel after last byte", "Cancelled", "destination load", S.Running, S.Running, "reset (VFIO_DEVICE_RESET)"),
        new(Op.Restore, "destination load", "refuse STOP", "DestinationRefused", "destination load", S.Running, S.Resuming, "offers no VFIO_DEVICE_RESET", C),
        new(Op.Restore, "destination load", "short transfers", "", "completed", S.Running, S.Running, ""),
    };

    public static IEnumerable<object[]> All() => Cases.Select(c => new object[] { c });

    [Theory]
    [MemberData(nameof(All))]
    public void EveryExitLeavesBothDevicesNamedAndNoPartialFile(Case c)
    {
        var source = _container.GetDevice(A);
        var destination = _container.GetDevice(c.Dest);
        string target = Path.Combine(_dir, "target.state");
        string saved = Path.Combine(_dir, "saved.state");
        byte[] destinationBefore = _kernel.FindDevice(c.Dest)!.GetStateBytes();
        if (c.Op == Op.Restore) DeviceState.Save(source, saved, resume: true);

        using var cancel = new CancellationTokenSource();
        bool injected = false;
        void Inject(MigrationProgress p)
        {
            if (p.Step != c.Step || injected) return;
            if (c.Fault == "cancel after last byte")
            {
                // The last progress report of the stream: the whole state has been read.
                bool last = c.Op == Op.Restore ? p.Pending == 0 : p.Moved >= 3UL << 20;
                if (!last) return;
                injected = true;
                cancel.Cancel();
                return;
            }
            injected = true;
            switch (c.Fault)
            {
                case "stop": throw new InvalidOperationException("The pipeline has been stopped.");
                case "EIO read": _kernel.Faults.FailDataTransfer(A, saving: true, 1, Errno.EIO); break;
                case "EIO write": _kernel.Faults.FailDataTransfer(c.Dest, saving: false, 1, Errno.EIO); break;
                case "refuse PRE_COPY": _kernel.Faults.RefuseTransition(A, (uint)S.PreCopy, Errno.EIO); break;
                case "refuse STOP_COPY": _kernel.Faults.RefuseTransition(A, (uint)S.StopCopy, Errno.EIO); break;
                case "error STOP_COPY": _kernel.Faults.ErrorOnTransition(A, (uint)S.StopCopy); break;
                case "refuse RESUMING": _kernel.Faults.RefuseTransition(c.Dest, (uint)S.Resuming, Errno.EBUSY); break;
                case "refuse STOP": _kernel.Faults.RefuseTransition(c.Dest, (uint)S.Stop, Errno.EINVAL); break;
                case "error STOP": _kernel.Faults.ErrorOnTransition(c.Dest, (uint)S.Stop); break;
                case "refuse RUNNING": _kernel.Faults.RefuseTransition(c.Op == Op.Save ? A : c.Dest, (uint)S.Running, Errno.EIO); break;
                case "short transfers": _kernel.Faults.ShortTransferBytes = 4093; break;
                case "directory at target": Directory.CreateDirectory(target); break;
                case "file changed":
                    using (var f = new FileStream(saved, FileMode.Open, FileAccess.Write))
                    {
                        f.Position = f.Length - 100;   // inside the last chunk, which is not loaded yet
                        f.WriteByte(0x5a);
                    }
                    break;
                default: throw new ArgumentException(c.Fault);
            }
        }

        // "setup" faults that act before any progress report are set up front.
        if (c.Step == "setup" && c.Fault != "stop") Inject(new MigrationProgress("setup", MigrationPhase.PreCopy, 0, null));
        bool resume = c.Fault == "refuse RUNNING" || c.Op == Op.Restore && c.Fault == "short transfers";

        string id, phase, says;
        DeviceOutcome? src = null, dst = null;
        switch (c.Op)
        {
            case Op.ToDevice:
            case Op.ToFile:
            {
                var r = MigrationRunner.Run(source, c.Op == Op.ToDevice ? destination : null, c.Op == Op.ToFile ? target : null,
                    new MigrationOptions { Bandwidth = 1UL << 30, DowntimeLimit = TimeSpan.FromSeconds(1) }, Inject, cancel.Token);
                (id, phase, says, src, dst) = (r.ErrorId ?? "", r.FailedPhase ?? "completed", r.ErrorDescription ?? "", r.SourceOutcome, r.DestinationOutcome);
                Assert.Equal(c.Id == "" ? MigrationStatus.Completed : c.Id == "Cancelled" ? MigrationStatus.Cancelled : MigrationStatus.Failed, r.Status);
                Assert.Equal(r.SourceState, r.SourceOutcome.State);
                break;
            }
            default:
            {
                try
                {
                    if (c.Op == Op.Save) DeviceState.Save(source, target, maxPreCopyRounds: 2, resume: resume, progress: Inject, cancel: cancel.Token, replace: false);
                    else DeviceState.Restore(destination, saved, resume, Inject, cancel.Token);
                    (id, phase, says) = ("", "completed", "");
                }
                catch (MigrationFailedException e)
                {
                    (id, phase, says, src, dst) = (e.ErrorId, e.Phase, e.Message, e.SourceOutcome, e.DestinationOutcome);
                    Assert.Equal(c.Id == "Cancelled" ? MigrationStatus.Cancelled : MigrationStatus.Failed, e.Status);
                }
                break;
            }
        }

        Assert.True(injected || c.Step == "setup", $"the fault was never injected: no progress report named '{c.Step}'");
        Assert.Equal((c.Id, c.Phase), (id, phase));
        Assert.Contains(c.Says, says);

        // Both devices: where the case says, and what the message and the outcome objects say agree.
        if (c.Op != Op.Restore)
        {
            Assert.Equal(c.Source, DeviceMigration.GetState(source));
            if (src is not null)
            {
                Assert.Equal(c.Source, src.State);
                Assert.Contains($"{MigrationFsm.Name(c.Source)}", says == "" ? MigrationFsm.Name(c.Source) : says);
            }
        }
        if (c.Destination is { } d)
        {
            Assert.Equal(d, DeviceMigration.GetState(destination));
            if (dst is not null) Assert.Equal(d, dst.State);
        }
        _kernel.Faults.Clear();

        // Files: the complete one where the operation completed, never a partial or temporary one.
        var left = Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName).Where(n => n != "saved.state").OrderBy(n => n).ToArray();
        bool fileWritten = c.Id == "" && c.Op is Op.Save or Op.ToFile || c.Op == Op.Save && c.Fault == "refuse RUNNING";
        if (c.Fault == "directory at target") Assert.Equal(new[] { "target.state" }, left);           // the directory, untouched
        else if (fileWritten) Assert.Equal(new[] { "target.state" }, left);
        else Assert.Empty(left);
        if (fileWritten && c.Fault != "directory at target") Assert.Equal(3UL << 20, StateFile.Verify(target).TotalBytes);

        // A destination that completed holds the source's state; one that was reset holds none of the stream.
        if (c.Id == "" && c.Op is Op.ToDevice or Op.Restore)
            Assert.Equal(_kernel.FindDevice(A)!.GetStateBytes(), _kernel.FindDevice(c.Dest)!.GetStateBytes());
        if (c.Id != "" && c.Op is Op.ToDevice or Op.Restore && c.Destination == S.Running && c.Fault != "refuse RUNNING")
            Assert.Equal(destinationBefore, _kernel.FindDevice(c.Dest)!.GetStateBytes());
    }

    [Fact]
    public void ARestoreLoadsTheBytesItVerifiedEvenWhenAnotherFileIsRenamedOntoThePath()
    {
        var source = _container.GetDevice(A);
        var destination = _container.GetDevice(B);
        string path = Path.Combine(_dir, "race.state");
        string other = Path.Combine(_dir, "other.state");
        DeviceState.Save(source, path, resume: true);
        byte[] expected = _kernel.FindDevice(A)!.GetStateBytes();
        DeviceState.Save(_container.GetDevice(C), other, resume: true);   // a valid file of the same kind, other bytes
        bool swapped = false;
        var r = DeviceState.Restore(destination, path, resume: true, progress: _ =>
        {
            if (swapped) return;
            swapped = true;
            File.Move(other, path, overwrite: true);   // what any atomic writer does to the path meanwhile
        });
        Assert.True(swapped);
        Assert.Equal(S.Running, r.FinalState);
        Assert.Equal(expected, _kernel.FindDevice(B)!.GetStateBytes());
    }

    [Fact]
    public void AMigrationStoppedAfterThePointOfNoReturnCompletesAndSaysSo()
    {
        using var cancel = new CancellationTokenSource();
        var r = MigrationRunner.Run(_container.GetDevice(A), _container.GetDevice(B), null, new MigrationOptions { Bandwidth = 1UL << 30 },
            p => { if (p.Step == "destination load") { cancel.Cancel(); throw new InvalidOperationException("The pipeline has been stopped."); } }, cancel.Token);
        Assert.Equal(MigrationStatus.Completed, r.Status);
        Assert.True(r.StopAfterPointOfNoReturn);
        Assert.Equal((S.Stop, S.Running), (r.SourceState, r.DestinationState!.Value));
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void AStateFileIsCreatedOwnerOnly()
    {
        string path = Path.Combine(_dir, "mode.state");
        DeviceState.Save(_container.GetDevice(A), path, resume: true);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        var m = MigrationRunner.Run(_container.GetDevice(A), null, Path.Combine(_dir, "m.state"), new MigrationOptions { Bandwidth = 1UL << 30 });
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(m.FileWritten!));
    }

    [Fact]
    public void MigratingIntoAnExistingFileNeedsReplaceAndMovesNothingWithout()
    {
        string path = Path.Combine(_dir, "exists.state");
        File.WriteAllText(path, "keep me");
        var e = Assert.Throws<VfioRuleException>(() => MigrationRunner.Run(_container.GetDevice(A), null, path, new MigrationOptions()));
        Assert.Equal("FileExists", e.RuleId);
        Assert.Equal("keep me", File.ReadAllText(path));
        Assert.Equal(S.Running, DeviceMigration.GetState(_container.GetDevice(A)));
        var r = MigrationRunner.Run(_container.GetDevice(A), null, path, new MigrationOptions { Bandwidth = 1UL << 30 }, replace: true);
        Assert.Equal(MigrationStatus.Completed, r.Status);
        Assert.Equal(3UL << 20, StateFile.Verify(path).TotalBytes);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    [InlineData((1UL << 20) - 1)]
    public void ABandwidthBelowOneMiBPerSecondIsRefused(ulong bandwidth)
    {
        var e = Assert.Throws<VfioRuleException>(() =>
            MigrationRunner.Run(_container.GetDevice(A), _container.GetDevice(B), null, new MigrationOptions { Bandwidth = bandwidth }));
        Assert.Equal("BandwidthTooLow", e.RuleId);
        Assert.Equal((S.Running, S.Running), (DeviceMigration.GetState(_container.GetDevice(A)), DeviceMigration.GetState(_container.GetDevice(B))));
    }
}
