using System;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>The workload model: deterministic from Seed and the simulated clock, active only while the device runs.</summary>
public class WorkloadTests
{
    private static SimDeviceConfig Busy(int seed = 1) => new()
    {
        Name = "0000:00:06.0", Migration = SimMigrationProtocol.V2, DmaLogging = true,
        MigrationFlags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
        Workload = new SimWorkload { StateSize = 16 * 1024, StateDirtyBytesPerSecond = 8192, GuestDirtyPagesPerSecond = 10, Seed = seed },
    };

    private static byte[] StateAfter(int seed, params double[] steps)
    {
        using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, Busy(seed)), "0000:00:06.0");
        foreach (double s in steps)
        {
            h.Advance(s);
            h.Model.Tick();
        }
        return h.Model.GetStateBytes();
    }

    [Fact]
    public void TheStateDependsOnTheRunningTimeNotOnHowOftenTheDeviceIsTicked()
    {
        var once = StateAfter(1, 1.0);
        var often = StateAfter(1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1);
        Assert.Equal(once, often);
        Assert.NotEqual(StateAfter(1), once); // it did change
    }

    [Fact]
    public void DifferentSeedsGiveDifferentDevices()
    {
        Assert.NotEqual(StateAfter(1), StateAfter(2));
        Assert.NotEqual(StateAfter(1, 1.0), StateAfter(2, 1.0));
    }

    [Fact]
    public void AClosedOrStoppedDeviceDoesNotChange()
    {
        var kernel = new SimulatedKernel(SimDeviceExamples.Host(10, Busy()));
        kernel.Clock.UseManualTime();
        var device = kernel.FindDevice("0000:00:06.0")!;
        var initial = device.GetStateBytes();
        kernel.Clock.Advance(TimeSpan.FromSeconds(5));
        device.Tick();
        Assert.Equal(initial, device.GetStateBytes()); // nobody opened it

        using var h = DeviceHarness.Open(kernel, "0000:00:06.0");
        h.MoveTo(VFIO_DEVICE_STATE_STOP);
        h.Advance(5);
        h.Model.Tick();
        Assert.Equal(initial, device.GetStateBytes());
        h.MoveTo(VFIO_DEVICE_STATE_RUNNING_P2P); // running, without P2P DMA: still changing
        h.Advance(1);
        h.Model.Tick();
        Assert.NotEqual(initial, device.GetStateBytes());
    }

    [Fact]
    public void GuestPageWritesFollowTheClockToo()
    {
        static int Logged(params double[] steps)
        {
            using var h = DeviceHarness.Open(SimDeviceExamples.Host(10, Busy()), "0000:00:06.0");
            ulong pageSize = 4096;
            Assert.Equal(0, h.Model.DmaLog!.Start(new[] { (0x10000000ul, 0x10000000ul) }, ref pageSize));
            foreach (double s in steps)
            {
                h.Advance(s);
                h.Model.Tick();
            }
            return h.Model.DmaLog.DirtyPages;
        }
        Assert.Equal(10, Logged(1.0)); // 10 pages/s into 65536 pages: no repeats with this seed
        Assert.Equal(Logged(1.0), Logged(0.25, 0.25, 0.25, 0.25));
        Assert.Equal(0, Logged(0.05));
    }
}
