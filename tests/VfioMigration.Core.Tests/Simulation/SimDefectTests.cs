using System;
using System.Buffers.Binary;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Simulation.Devices;
using VfioMigration.Core.Tests.Simulation.Devices;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation;

/// <summary>
/// Device defects: each one makes the device answer as a driver with that bug does, and the same calls on a
/// clean device answer as they always did. Devices are the v2 PCI example (all optional states, DMA
/// logging, 24 + 72 bytes of state), the lab's mtty, and the v1 example.
/// </summary>
public class SimDefectTests
{
    private const uint ERROR = VFIO_DEVICE_STATE_ERROR, STOP = VFIO_DEVICE_STATE_STOP, RUNNING = VFIO_DEVICE_STATE_RUNNING,
        STOP_COPY = VFIO_DEVICE_STATE_STOP_COPY, RESUMING = VFIO_DEVICE_STATE_RESUMING, RUNNING_P2P = VFIO_DEVICE_STATE_RUNNING_P2P,
        PRE_COPY = VFIO_DEVICE_STATE_PRE_COPY, PRE_COPY_P2P = VFIO_DEVICE_STATE_PRE_COPY_P2P;

    private static DeviceHarness Pci(params SimDefect[] defects) => Open(SimDeviceExamples.V2PciDevice(), defects);

    private static DeviceHarness Open(SimDeviceConfig device, params SimDefect[] defects)
    {
        device.Defects = new HashSet<SimDefect>(defects);
        return DeviceHarness.Open(SimDeviceExamples.Host(10, device), device.Name);
    }

    /// <summary>The lab's mtty (its state is mtty.c's register file) with the defects given.</summary>
    private static DeviceHarness Mtty(params SimDefect[] defects)
    {
        var lab = SimTopologies.Lab();
        lab.AllDevices.Single(d => d.Name == SimTopologies.LabMttyUuid).Defects = new HashSet<SimDefect>(defects);
        return DeviceHarness.Mtty(lab);
    }

    private static DeviceHarness Device(bool mtty, params SimDefect[] defects) => mtty ? Mtty(defects) : Pci(defects);

    /// <summary>One read() of up to <paramref name="count"/> bytes that must succeed: the bytes read.</summary>
    private static byte[] Read(DeviceHarness h, int fd, int count)
    {
        var buffer = new byte[count];
        long n = h.Kernel.Read(fd, buffer);
        Assert.True(n >= 0, $"read answered {Errno.Name((int)-n)}");
        return buffer.AsSpan(0, (int)n).ToArray();
    }

    private static ulong DataSize(DeviceHarness h)
    {
        var (rc, buffer) = h.Feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_GET, 8);
        Assert.Equal(0, rc);
        return StructBytes.Read<vfio_device_feature_mig_data_size>(buffer, 8).stop_copy_length;
    }

    [Fact]
    public void PrecopyInitialBytesGrowAddsWhatWasReadToInitialBytesWhileTheStreamStaysTheSame()
    {
        using var clean = Pci();
        using var bad = Pci(SimDefect.PrecopyInitialBytesGrow);
        int cleanFd = clean.MoveTo(PRE_COPY), badFd = bad.MoveTo(PRE_COPY);
        Assert.Equal((0, 24ul, 0ul), clean.PrecopyInfo(cleanFd));
        Assert.Equal((0, 24ul, 0ul), bad.PrecopyInfo(badFd));

        Assert.Equal(Read(clean, cleanFd, 10), Read(bad, badFd, 10));
        Assert.Equal((0, 14ul, 0ul), clean.PrecopyInfo(cleanFd));
        Assert.Equal((0, 34ul, 0ul), bad.PrecopyInfo(badFd));
        Assert.Equal(Read(clean, cleanFd, 100), Read(bad, badFd, 100));
        Assert.Equal((0, 0ul, 0ul), clean.PrecopyInfo(cleanFd));
        Assert.Equal((0, 48ul, 0ul), bad.PrecopyInfo(badFd)); // never 0: a VMM waiting for it never converges

        clean.MoveTo(STOP_COPY);
        bad.MoveTo(STOP_COPY);
        var (cleanStream, cleanLast) = clean.ReadAll(cleanFd);
        var (badStream, badLast) = bad.ReadAll(badFd);
        Assert.Equal(72, badStream.Length);
        Assert.Equal(cleanStream, badStream);
        Assert.Equal((0L, 0L), (cleanLast, badLast));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DataSizeUnderReportAnswersHalfTheStopCopyLengthWhileTheStreamKeepsItsLength(bool mtty)
    {
        using var clean = Device(mtty);
        using var bad = Device(mtty, SimDefect.DataSizeUnderReport);
        Assert.Equal(96ul, DataSize(clean));
        Assert.Equal(48ul, DataSize(bad));
        Assert.Equal(96, clean.SaveStopped().Length);
        Assert.Equal(96, bad.SaveStopped().Length);
    }

    [Fact]
    public void DataSizeUnderReportAnswersAtLeastOne()
    {
        var device = SimDeviceExamples.V2PciDevice();
        device.Workload = new SimWorkload { StateSize = 1, InitialBytes = 0 };
        using var bad = Open(device, SimDefect.DataSizeUnderReport);
        Assert.Equal(1ul, DataSize(bad));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StaleDataFdReadableKeepsAnEndedSavingFdAnsweringTheRestOfItsStreamAndThenTheStateAgain(bool mtty)
    {
        using var clean = Device(mtty);
        using var bad = Device(mtty, SimDefect.StaleDataFdReadable);
        var state = bad.Model.GetStateBytes();
        Assert.Equal(clean.Model.GetStateBytes(), state);

        // STOP_COPY → STOP: the clean fd is dead; the stale one goes on with its last 56 bytes, then from the start.
        foreach (var h in new[] { clean, bad })
            h.MoveTo(STOP);
        int cleanFd = clean.MoveTo(STOP_COPY), badFd = bad.MoveTo(STOP_COPY);
        Assert.Equal(state.Take(40), Read(clean, cleanFd, 40));
        Assert.Equal(state.Take(40), Read(bad, badFd, 40));
        Assert.Equal(-1, clean.MoveTo(STOP));
        Assert.Equal(-1, bad.MoveTo(STOP));
        Assert.Equal(-Errno.ENODEV, clean.Kernel.Read(cleanFd, new byte[200]));
        Assert.Equal(state.Skip(40).Concat(state).Concat(state.Take(48)), Read(bad, badFd, 200));
        Assert.Equal(state.Skip(48).Concat(state.Take(8)), Read(bad, badFd, 56));

        // PRE_COPY → RUNNING ends a pre-copy session the same way: the rest of the initial data, then the state.
        foreach (var h in new[] { clean, bad })
            h.MoveTo(RUNNING);
        cleanFd = clean.MoveTo(PRE_COPY);
        badFd = bad.MoveTo(PRE_COPY);
        Assert.Equal(state.Take(10), Read(clean, cleanFd, 10));
        Assert.Equal(state.Take(10), Read(bad, badFd, 10));
        clean.MoveTo(RUNNING);
        bad.MoveTo(RUNNING);
        Assert.Equal(-Errno.ENODEV, clean.Kernel.Read(cleanFd, new byte[100]));
        Assert.Equal(state.Skip(10).Take(14).Concat(state), Read(bad, badFd, 14 + 96));

        // PRE_COPY_P2P → RUNNING_P2P too; and the device's next session is its own.
        clean.MoveTo(RUNNING_P2P);
        bad.MoveTo(RUNNING_P2P);
        cleanFd = clean.MoveTo(PRE_COPY_P2P);
        badFd = bad.MoveTo(PRE_COPY_P2P);
        clean.MoveTo(RUNNING_P2P);
        bad.MoveTo(RUNNING_P2P);
        Assert.Equal(-Errno.ENODEV, clean.Kernel.Read(cleanFd, new byte[100]));
        Assert.Equal(state.Take(24).Concat(state.Take(10)), Read(bad, badFd, 34));
        bad.MoveTo(RUNNING);
        Assert.Equal(state, bad.SaveStopped());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ResumingAcceptsGarbageTakesAnyBytesAndLoadsNothing(bool mtty)
    {
        using var clean = Device(mtty);
        using var bad = Device(mtty, SimDefect.ResumingAcceptsGarbage);
        var before = bad.Model.GetStateBytes();
        var garbage = Enumerable.Repeat((byte)0xee, 30).ToArray();

        clean.MoveTo(STOP);
        int cleanFd = clean.MoveTo(RESUMING);
        Assert.Equal(-Errno.EFAULT, clean.Kernel.Write(cleanFd, garbage)); // the header does not match
        Assert.Equal(-Errno.EINVAL, clean.SetState(STOP).Rc); // and 30 bytes are not the state
        Assert.Equal(RESUMING, clean.GetState());

        bad.MoveTo(STOP);
        int badFd = bad.MoveTo(RESUMING);
        Assert.Equal(30, bad.Kernel.Write(badFd, garbage));
        Assert.Equal(1 << 20, bad.Kernel.Write(badFd, new byte[1 << 20])); // past any size the device takes
        Assert.Equal(0, bad.SetState(STOP).Rc);
        Assert.Equal(STOP, bad.GetState());
        Assert.Equal(before, bad.Model.GetStateBytes());

        // A good stream of other state: the clean device loads it, the defective one keeps its own.
        var other = before.ToArray();
        other[^1] ^= 0x5a;
        using var fresh = Device(mtty);
        Assert.Equal(0, fresh.Restore(other));
        Assert.Equal(other, fresh.Model.GetStateBytes());
        Assert.Equal(0, bad.Restore(other));
        Assert.Equal(before, bad.Model.GetStateBytes());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StateLostOnStopToRunningGivesTheDeviceAFreshStateEachTimeItStartsFromStop(bool mtty)
    {
        using var clean = Device(mtty);
        var first = clean.SaveStopped();
        clean.MoveTo(RUNNING);
        Assert.Equal(first, clean.SaveStopped());

        using var bad = Device(mtty, SimDefect.StateLostOnStopToRunning);
        var saved = bad.SaveStopped();
        Assert.Equal(first, saved);
        bad.MoveTo(RUNNING);
        var afterRestart = bad.SaveStopped();
        bad.MoveTo(RUNNING);
        var afterSecondRestart = bad.SaveStopped();
        Assert.Equal(saved.Length, afterRestart.Length);
        Assert.NotEqual(saved, afterRestart);
        Assert.NotEqual(afterRestart, afterSecondRestart);
        Assert.Equal(saved.Take(24), afterRestart.Take(24)); // the header is the device's kind, not its state

        // Deterministic: the same device on another host loses its state the same way.
        using var twin = Device(mtty, SimDefect.StateLostOnStopToRunning);
        twin.SaveStopped();
        twin.MoveTo(RUNNING);
        Assert.Equal(afterRestart, twin.SaveStopped());
    }

    [Fact]
    public void StateLostOnStopToRunningAlsoHitsADeviceWithoutP2PAndNotOtherArcs()
    {
        using var bad = Open(SimDeviceExamples.V2StopCopyOnly(), SimDefect.StateLostOnStopToRunning);
        var saved = bad.SaveStopped();
        Assert.Equal(0, bad.Restore(saved));
        Assert.Equal(saved, bad.SaveStopped()); // STOP ↔ STOP_COPY ↔ RESUMING keep it
        bad.MoveTo(RUNNING);
        Assert.NotEqual(saved, bad.SaveStopped());
    }

    [Fact]
    public void WrongErrnoForbiddenArcAnswersEpermWhereTheCoreAnswersEinvalAndNothingChanges()
    {
        using var clean = Pci();
        using var bad = Pci(SimDefect.WrongErrnoForbiddenArc);
        foreach (var (h, errno) in new[] { (clean, Errno.EINVAL), (bad, Errno.EPERM) })
        {
            Assert.Equal(-errno, h.SetState(ERROR).Rc);
            Assert.Equal(-errno, h.SetState(8).Rc);
            Assert.Equal(-errno, h.SetState(uint.MaxValue).Rc);
            Assert.Equal(RUNNING, h.GetState());
            h.MoveTo(STOP);
            int fd = h.MoveTo(STOP_COPY);
            Assert.Equal(-errno, h.SetState(PRE_COPY).Rc); // the path runs into ERROR
            Assert.Equal(STOP_COPY, h.GetState());
            Assert.Equal(96, h.ReadAll(fd).Bytes.Length);

            // An EINVAL that is not about the target stays EINVAL: a short stream on RESUMING → STOP.
            h.MoveTo(STOP);
            int resume = h.MoveTo(RESUMING);
            Assert.Equal(10, h.Kernel.Write(resume, new byte[10]));
            Assert.Equal(-Errno.EINVAL, h.SetState(STOP).Rc);
        }

        using var cleanWithoutPreCopy = Open(SimDeviceExamples.V2WithoutPreCopy());
        using var badWithoutPreCopy = Open(SimDeviceExamples.V2WithoutPreCopy(), SimDefect.WrongErrnoForbiddenArc);
        Assert.Equal(-Errno.EINVAL, cleanWithoutPreCopy.SetState(PRE_COPY).Rc);
        Assert.Equal(-Errno.EPERM, badWithoutPreCopy.SetState(PRE_COPY).Rc); // a state the device does not support
        Assert.Equal(RUNNING, badWithoutPreCopy.GetState());
    }

    [Fact]
    public void MissingArcRefusesRunningToStopAndRunningP2PToStopAndEveryPathThroughThem()
    {
        using var clean = Pci();
        Assert.Equal(-1, clean.MoveTo(STOP));
        clean.MoveTo(RUNNING_P2P);
        clean.MoveTo(STOP);

        using var bad = Pci(SimDefect.MissingArc);
        Assert.Equal(-Errno.EINVAL, bad.SetState(STOP).Rc); // RUNNING → RUNNING_P2P → STOP: the second arc is missing
        Assert.Equal(RUNNING, bad.GetState()); // the first arc was not taken either
        Assert.Equal(-Errno.EINVAL, bad.SetState(STOP_COPY).Rc);
        Assert.Equal(-Errno.EINVAL, bad.SetState(RESUMING).Rc);
        Assert.Equal(RUNNING, bad.GetState());
        bad.MoveTo(RUNNING_P2P);
        Assert.Equal(-Errno.EINVAL, bad.SetState(STOP).Rc);
        Assert.Equal(RUNNING_P2P, bad.GetState());

        // Other arcs into STOP are there: through pre-copy and stop-copy the device still stops.
        int fd = bad.MoveTo(PRE_COPY);
        bad.MoveTo(STOP_COPY);
        Assert.Equal(96, bad.ReadAll(fd).Bytes.Length);
        bad.MoveTo(STOP);
        bad.MoveTo(RUNNING);

        using var stopCopyOnly = Open(SimDeviceExamples.V2StopCopyOnly(), SimDefect.MissingArc);
        Assert.Equal(-Errno.EINVAL, stopCopyOnly.SetState(STOP).Rc);
        Assert.Equal(RUNNING, stopCopyOnly.GetState());
    }

    [Fact]
    public void P2PClaimedButRefusedAdvertisesP2PAndRefusesEveryArcIntoAP2PState()
    {
        using var clean = Pci();
        using var bad = Pci(SimDefect.P2PClaimedButRefused);
        var (rc, buffer) = bad.Feature(VFIO_DEVICE_FEATURE_MIGRATION, VFIO_DEVICE_FEATURE_GET, 8);
        Assert.Equal(0, rc);
        Assert.NotEqual(0ul, StructBytes.Read<vfio_device_feature_migration>(buffer, 8).flags & VFIO_MIGRATION_P2P);

        Assert.Equal(0, clean.SetState(RUNNING_P2P).Rc);
        Assert.Equal(-Errno.EINVAL, bad.SetState(RUNNING_P2P).Rc);
        Assert.Equal(-Errno.EINVAL, bad.SetState(STOP).Rc); // its path starts RUNNING → RUNNING_P2P
        Assert.Equal(RUNNING, bad.GetState());
        clean.MoveTo(RUNNING);

        clean.MoveTo(PRE_COPY);
        bad.MoveTo(PRE_COPY); // an arc that avoids the P2P states works
        Assert.Equal(0, clean.SetState(PRE_COPY_P2P).Rc);
        Assert.Equal(-Errno.EINVAL, bad.SetState(PRE_COPY_P2P).Rc);
        Assert.Equal(-Errno.EINVAL, bad.SetState(STOP_COPY).Rc); // PRE_COPY → PRE_COPY_P2P → STOP_COPY
        Assert.Equal(PRE_COPY, bad.GetState());
        Assert.Equal(0, clean.SetState(STOP_COPY).Rc);
        bad.MoveTo(RUNNING);
    }

    [Fact]
    public void DmaLogReportBeforeStartAnswersZeroAndLeavesTheBitmapWhileNoLogIsStarted()
    {
        const ulong Base = 0x10000000;
        using var clean = Pci();
        using var bad = Pci(SimDefect.DmaLogReportBeforeStart);
        using var bitmap = new NativeBuffer(8);

        int Report(DeviceHarness h)
        {
            bitmap.Span.Fill(0xa5);
            return h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, VFIO_DEVICE_FEATURE_GET, 32, b => StructBytes.Write(b,
                new vfio_device_feature_dma_logging_report { iova = Base, length = 64 * 4096, page_size = 4096, bitmap = bitmap.Address }, 8)).Rc;
        }

        int StartAndStop(DeviceHarness h, bool stop)
        {
            using var ranges = new NativeBuffer(16);
            StructBytes.Write(ranges.Span, new vfio_device_feature_dma_logging_range { iova = Base, length = 64 * 4096 });
            int rc = h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET, 24, b => StructBytes.Write(b,
                new vfio_device_feature_dma_logging_control { page_size = 4096, num_ranges = 1, ranges = ranges.Address }, 8)).Rc;
            Assert.Equal(0, rc);
            return stop ? h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, VFIO_DEVICE_FEATURE_SET, 0).Rc : 0;
        }

        Assert.Equal(-Errno.EINVAL, Report(clean));
        Assert.Equal(0, Report(bad));
        Assert.All(bitmap.Span.ToArray(), b => Assert.Equal(0xa5, b));

        // After START and STOP: no log again.
        Assert.Equal(0, StartAndStop(clean, stop: true));
        Assert.Equal(0, StartAndStop(bad, stop: true));
        Assert.Equal(-Errno.EINVAL, Report(clean));
        Assert.Equal(0, Report(bad));
        Assert.All(bitmap.Span.ToArray(), b => Assert.Equal(0xa5, b));

        // While a log runs, both report it (nothing dirty: bits are only ever set).
        Assert.Equal(0, StartAndStop(clean, stop: false));
        Assert.Equal(0, StartAndStop(bad, stop: false));
        Assert.Equal(0, Report(clean));
        Assert.Equal(0, Report(bad));
    }

    private const long V1Region = 9L << 40;
    private const long V1PendingBytes = V1Region + 8, V1DataOffset = V1Region + 16, V1DataSize = V1Region + 24;

    private static DeviceHarness V1(params SimDefect[] defects) => Open(SimDeviceExamples.V1Device(), defects);

    private static ulong Read64(DeviceHarness h, long offset)
    {
        var b = new byte[8];
        Assert.Equal(8, h.Kernel.Pread(h.Device, b, offset));
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    private static long WriteDeviceState(DeviceHarness h, uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return h.Kernel.Pwrite(h.Device, b, V1Region);
    }

    private static uint ReadDeviceState(DeviceHarness h)
    {
        var b = new byte[4];
        Assert.Equal(4, h.Kernel.Pread(h.Device, b, V1Region));
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    /// <summary>One data_offset / data_size / data cycle of the v1 saving loop: the chunk.</summary>
    private static byte[] V1Chunk(DeviceHarness h)
    {
        ulong offset = Read64(h, V1DataOffset);
        ulong size = Read64(h, V1DataSize);
        var chunk = new byte[size];
        Assert.Equal((long)size, h.Kernel.Pread(h.Device, chunk, V1Region + (long)offset));
        return chunk;
    }

    [Fact]
    public void V1PendingNeverZeroOffersZerosForEverOnceTheStopAndCopyStateIsRead()
    {
        const uint SAVING = VFIO_DEVICE_STATE_V1_SAVING, RUNNING_V1 = VFIO_DEVICE_STATE_V1_RUNNING;
        using var clean = V1();
        using var bad = V1(SimDefect.V1PendingNeverZero);
        var state = bad.Model.GetStateBytes();
        foreach (var h in new[] { clean, bad })
        {
            Assert.Equal(4, WriteDeviceState(h, SAVING));
            Assert.Equal(96ul, Read64(h, V1PendingBytes));
            Assert.Equal(state, V1Chunk(h));
        }
        Assert.Equal(0ul, Read64(clean, V1PendingBytes));
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(4096ul, Read64(bad, V1PendingBytes));
            var chunk = V1Chunk(bad);
            Assert.Equal(4096, chunk.Length);
            Assert.All(chunk, b => Assert.Equal(0, b));
        }

        // Pre-copy (_SAVING|_RUNNING) drains as it always did.
        using var preCopy = V1(SimDefect.V1PendingNeverZero);
        Assert.Equal(4, WriteDeviceState(preCopy, SAVING | RUNNING_V1));
        Assert.Equal(24ul, Read64(preCopy, V1PendingBytes));
        Assert.Equal(state.Take(24), V1Chunk(preCopy));
        Assert.Equal(0ul, Read64(preCopy, V1PendingBytes));
    }

    [Fact]
    public void PrecopyInfoOutsidePrecopyAnswersOnThePreCopyFdInStopCopy()
    {
        using var clean = Pci();
        using var bad = Pci(SimDefect.PrecopyInfoOutsidePrecopy);
        int cleanFd = clean.MoveTo(PRE_COPY), badFd = bad.MoveTo(PRE_COPY);
        Read(clean, cleanFd, 10);
        Read(bad, badFd, 10);
        Assert.Equal(clean.PrecopyInfo(cleanFd), bad.PrecopyInfo(badFd)); // in pre-copy: the same answer
        clean.MoveTo(STOP_COPY);
        bad.MoveTo(STOP_COPY);
        Assert.Equal(-Errno.EINVAL, clean.PrecopyInfo(cleanFd).Rc);
        Assert.Equal((0, 0ul, 86ul), bad.PrecopyInfo(badFd)); // 14 initial bytes unread and 72 of stop-copy
        Read(bad, badFd, 50);
        Assert.Equal((0, 0ul, 36ul), bad.PrecopyInfo(badFd));

        // Not on a stop-copy fd opened from STOP, nor once the device left STOP_COPY.
        bad.MoveTo(STOP);
        Assert.Equal(-Errno.EINVAL, bad.PrecopyInfo(badFd).Rc);
        int stopCopyFd = bad.MoveTo(STOP_COPY);
        Assert.Equal(-Errno.EINVAL, bad.PrecopyInfo(stopCopyFd).Rc);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void NoEndOfStreamAnswersEioWhereTheStreamEnds(bool mtty)
    {
        using var clean = Device(mtty);
        using var bad = Device(mtty, SimDefect.NoEndOfStream);
        foreach (var h in new[] { clean, bad })
            h.MoveTo(STOP);
        int cleanFd = clean.MoveTo(STOP_COPY), badFd = bad.MoveTo(STOP_COPY);
        var (cleanBytes, cleanLast) = clean.ReadAll(cleanFd);
        var (badBytes, badLast) = bad.ReadAll(badFd);
        Assert.Equal(cleanBytes, badBytes);
        Assert.Equal(0, cleanLast);
        Assert.Equal(-Errno.EIO, badLast);
        Assert.Equal(0, bad.Kernel.Read(badFd, Array.Empty<byte>())); // a read of nothing is not the end

        // The end of the pre-copy data there is for now, too.
        foreach (var h in new[] { clean, bad })
        {
            h.MoveTo(STOP);
            h.MoveTo(RUNNING);
        }
        cleanFd = clean.MoveTo(PRE_COPY);
        badFd = bad.MoveTo(PRE_COPY);
        (cleanBytes, cleanLast) = clean.ReadAll(cleanFd);
        (badBytes, badLast) = bad.ReadAll(badFd);
        Assert.Equal(24, badBytes.Length);
        Assert.Equal(cleanBytes, badBytes);
        Assert.Equal(0, cleanLast);
        Assert.Equal(-Errno.EIO, badLast);
    }

    [Fact]
    public void ForbiddenArcChangesStateStopsTheDeviceBeforeItAnswersEinval()
    {
        using var clean = Pci();
        int cleanFd = clean.MoveTo(PRE_COPY);
        Assert.Equal(-Errno.EINVAL, clean.SetState(ERROR).Rc);
        Assert.Equal(PRE_COPY, clean.GetState());
        Assert.Equal(24, clean.Kernel.Read(cleanFd, new byte[100]));

        using var bad = Pci(SimDefect.ForbiddenArcChangesState);
        int badFd = bad.MoveTo(PRE_COPY);
        Assert.Equal(-Errno.EINVAL, bad.SetState(ERROR).Rc);
        Assert.Equal(STOP, bad.GetState()); // through PRE_COPY → RUNNING, which ended the session
        Assert.Equal(-Errno.ENODEV, bad.Kernel.Read(badFd, new byte[100]));

        int stopCopyFd = bad.MoveTo(STOP_COPY);
        Assert.Equal(-Errno.EINVAL, bad.SetState(PRE_COPY).Rc); // STOP_COPY → PRE_COPY runs into ERROR
        Assert.Equal(STOP, bad.GetState());
        Assert.Equal(-Errno.ENODEV, bad.Kernel.Read(stopCopyFd, new byte[100]));

        bad.MoveTo(RUNNING);
        Assert.Equal(-Errno.EINVAL, bad.SetState(8).Rc);
        Assert.Equal(STOP, bad.GetState());
        Assert.Equal(-Errno.EINVAL, bad.SetState(ERROR).Rc); // already in STOP: nothing moves
        Assert.Equal(STOP, bad.GetState());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DataFdOnWrongArcReturnsAnEmptyReadableFdFromStopCopyToStop(bool mtty)
    {
        using var clean = Device(mtty);
        using var bad = Device(mtty, SimDefect.DataFdOnWrongArc);
        foreach (var h in new[] { clean, bad })
        {
            Assert.Equal(-1, h.MoveTo(STOP));
            h.ReadAll(h.MoveTo(STOP_COPY));
        }
        Assert.Equal((0, -1), clean.SetState(STOP));
        var (rc, fd) = bad.SetState(STOP);
        Assert.Equal(0, rc);
        Assert.True(fd >= 0, "a data fd where the UAPI documents -1");
        Assert.Equal(0, bad.Kernel.Read(fd, new byte[100]));
        Assert.Equal(-Errno.EINVAL, bad.PrecopyInfo(fd).Rc);
        Assert.Equal(STOP, bad.GetState());

        // The other arcs answer as before.
        Assert.Equal(-1, bad.MoveTo(RUNNING));
        int preCopyFd = bad.MoveTo(PRE_COPY);
        Assert.True(preCopyFd >= 0);
        Assert.Equal(-1, bad.MoveTo(RUNNING));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SaveNotRepeatableEndsEachStopCopyStreamWithACounterThatTheDeviceStillResumesFrom(bool mtty)
    {
        using var clean = Device(mtty);
        var cleanSave = clean.SaveStopped();
        Assert.Equal(cleanSave, clean.SaveStopped());

        using var bad = Device(mtty, SimDefect.SaveNotRepeatable);
        var first = bad.SaveStopped();
        var second = bad.SaveStopped();
        Assert.Equal(cleanSave.Length, first.Length);
        Assert.NotEqual(first, second);
        Assert.Equal(cleanSave[..^8], first[..^8]);
        Assert.Equal(cleanSave[..^8], second[..^8]);
        Assert.Equal(1ul, BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(first.Length - 8)));
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(second.AsSpan(second.Length - 8)));

        // RESUMING takes such a stream; the counter is not state, so the device keeps its own last bytes.
        var state = bad.Model.GetStateBytes();
        Assert.Equal(0, bad.Restore(first));
        Assert.Equal(state, bad.Model.GetStateBytes());

        // A stream that began in pre-copy carries the counter at its end too.
        bad.MoveTo(RUNNING);
        int fd = bad.MoveTo(PRE_COPY);
        var stream = Read(bad, fd, 4096).ToList();
        bad.MoveTo(STOP_COPY);
        stream.AddRange(bad.ReadAll(fd).Bytes);
        Assert.Equal(cleanSave.Length, stream.Count);
        Assert.Equal(3ul, BinaryPrimitives.ReadUInt64LittleEndian(stream.ToArray().AsSpan(stream.Count - 8)));
    }

    [Fact]
    public void V1InvalidStateAcceptedStoresSavingWithResuming()
    {
        const uint RUNNING_V1 = VFIO_DEVICE_STATE_V1_RUNNING, SAVING = VFIO_DEVICE_STATE_V1_SAVING, RESUMING_V1 = VFIO_DEVICE_STATE_V1_RESUMING;
        using var clean = V1();
        Assert.Equal(-Errno.EINVAL, WriteDeviceState(clean, SAVING | RESUMING_V1));
        Assert.Equal(-Errno.EINVAL, WriteDeviceState(clean, RUNNING_V1 | SAVING | RESUMING_V1));
        Assert.Equal(RUNNING_V1, ReadDeviceState(clean));

        using var bad = V1(SimDefect.V1InvalidStateAccepted);
        Assert.Equal(4, WriteDeviceState(bad, RUNNING_V1 | SAVING | RESUMING_V1));
        Assert.Equal(RUNNING_V1 | SAVING | RESUMING_V1, ReadDeviceState(bad));
        Assert.Equal(4, WriteDeviceState(bad, RUNNING_V1));
        Assert.Equal(4, WriteDeviceState(bad, SAVING | RESUMING_V1));
        Assert.Equal(SAVING | RESUMING_V1, ReadDeviceState(bad));
        // What it stored reads as the error state, which only a reset leaves.
        Assert.Equal(-Errno.EINVAL, WriteDeviceState(bad, RUNNING_V1));
        Assert.Equal(0, bad.Ioctl(VfioIoctl.VFIO_DEVICE_RESET.Number, default));
        Assert.Equal(RUNNING_V1, ReadDeviceState(bad));

        // _RESUMING with _RUNNING alone is still refused.
        Assert.Equal(-Errno.EINVAL, WriteDeviceState(bad, RUNNING_V1 | RESUMING_V1));
        Assert.Equal(-Errno.EINVAL, WriteDeviceState(clean, RUNNING_V1 | RESUMING_V1));
    }

    [Fact]
    public void AllDefectsTogetherLeaveAnotherDeviceOfTheHostClean()
    {
        var defective = SimDeviceExamples.V2PciDevice("0000:00:06.0");
        defective.Defects = new HashSet<SimDefect>(Enum.GetValues<SimDefect>().Where(d => !d.ToString().StartsWith("V1", StringComparison.Ordinal)));
        var kernel = new SimulatedKernel(SimDeviceExamples.Host(10, defective, SimDeviceExamples.V2PciDevice("0000:00:07.0")));
        using var other = DeviceHarness.Open(kernel, "0000:00:07.0");
        Assert.Equal(96ul, DataSize(other));
        var saved = other.SaveStopped();
        Assert.Equal(saved, other.SaveStopped());
        Assert.Equal(-Errno.EINVAL, other.SetState(ERROR).Rc);
        Assert.Equal(STOP, other.GetState());
    }

    // Configuration: the hashtable a .psd1 gives (SafeGetValue: Hashtable, object[] for @( ), strings, ints).

    private static Hashtable HostWith(Hashtable device) => new()
    {
        ["Name"] = "defects",
        ["Groups"] = new object[] { new Hashtable { ["Group"] = 2, ["Devices"] = new object[] { device } } },
    };

    private static Hashtable V2Device(object? defects, object? flags = null) => new()
    {
        ["Name"] = "0000:00:06.0",
        ["Migration"] = "V2",
        ["MigrationFlags"] = flags ?? new object[] { "STOP_COPY", "P2P", "PRE_COPY" },
        ["Defects"] = defects,
    };

    [Fact]
    public void DefectsAreReadFromTheConfigurationByNameWhateverTheirCase()
    {
        var config = SimHostConfiguration.FromDictionary(HostWith(V2Device(new object[] { "PrecopyInitialBytesGrow", "staledatafdreadable" })));
        var device = config.AllDevices.Single();
        Assert.Equal(new[] { SimDefect.PrecopyInitialBytesGrow, SimDefect.StaleDataFdReadable }, device.Defects.Order());
        Assert.Equal(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY, device.MigrationFlags);

        // One name, or names in one string; none at all is a clean device.
        Assert.Equal(new[] { SimDefect.MissingArc }, SimHostConfiguration.FromDictionary(HostWith(V2Device("MISSINGARC"))).AllDevices.Single().Defects);
        Assert.Equal(new[] { SimDefect.MissingArc, SimDefect.NoEndOfStream },
            SimHostConfiguration.FromDictionary(HostWith(V2Device("MissingArc, NoEndOfStream"))).AllDevices.Single().Defects.Order());
        Assert.Empty(SimHostConfiguration.FromDictionary(HostWith(V2Device(Array.Empty<object>()))).AllDevices.Single().Defects);
        var withoutKey = V2Device(null);
        withoutKey.Remove("Defects");
        Assert.Empty(SimHostConfiguration.FromDictionary(HostWith(withoutKey)).AllDevices.Single().Defects);
    }

    [Fact]
    public void AnUnknownDefectNameIsAnErrorThatNamesTheDeviceAndTheKnownDefects()
    {
        foreach (object defects in new object[] { new object[] { "MissingArc", "NoSuchBug" }, "3", "MissingArc,NoEndOfStream,Bogus" })
        {
            var e = Assert.Throws<FormatException>(() => SimHostConfiguration.FromDictionary(HostWith(V2Device(defects))));
            Assert.Contains("0000:00:06.0", e.Message);
            Assert.All(Enum.GetNames<SimDefect>(), name => Assert.Contains(name, e.Message));
        }
        Assert.Contains("'NoSuchBug'", Assert.Throws<FormatException>(() => SimHostConfiguration.FromDictionary(HostWith(V2Device(new object[] { "NoSuchBug" })))).Message);
        Assert.Contains("Defects", Assert.Throws<FormatException>(() => SimHostConfiguration.FromDictionary(HostWith(V2Device(new object[] { 3 })))).Message);
    }

    [Fact]
    public void ADefectOfACapabilityTheDeviceLacksIsAnError()
    {
        FormatException Refused(Hashtable device) => Assert.Throws<FormatException>(() => SimHostConfiguration.FromDictionary(HostWith(device)));

        var e = Refused(V2Device(new object[] { "P2PClaimedButRefused" }, flags: "STOP_COPY,PRE_COPY"));
        Assert.Contains("0000:00:06.0", e.Message);
        Assert.Contains("P2PClaimedButRefused", e.Message);
        Assert.Contains("P2P in MigrationFlags", e.Message);
        Assert.Contains("PRE_COPY in MigrationFlags", Refused(V2Device("PrecopyInitialBytesGrow", flags: "STOP_COPY,P2P")).Message);
        Assert.Contains("PRE_COPY in MigrationFlags", Refused(V2Device("PrecopyInfoOutsidePrecopy", flags: "STOP_COPY")).Message);
        Assert.Contains("DmaLogging", Refused(V2Device("DmaLogReportBeforeStart")).Message);

        var v1 = V2Device("MissingArc");
        v1["Migration"] = "V1";
        v1.Remove("MigrationFlags");
        Assert.Contains("Migration = 'V2'", Refused(v1).Message);
        v1["Defects"] = "V1PendingNeverZero";
        Assert.Equal(SimMigrationProtocol.V1, SimHostConfiguration.FromDictionary(HostWith(v1)).AllDevices.Single().Migration);
        Assert.Contains("Migration = 'V1'", Refused(V2Device("V1InvalidStateAccepted")).Message);

        var tiny = V2Device("SaveNotRepeatable");
        tiny["Workload"] = new Hashtable { ["StateSize"] = 30, ["InitialBytes"] = 24 };
        Assert.Contains("counter", Refused(tiny).Message);
        tiny["Defects"] = "StateLostOnStopToRunning";
        tiny["Workload"] = new Hashtable { ["StateSize"] = 24 };
        Assert.Contains("header", Refused(tiny).Message);

        // A configuration built in code is checked the same way when the host is made.
        var none = SimDeviceExamples.V2StopCopyOnly();
        none.Defects.Add(SimDefect.P2PClaimedButRefused);
        Assert.Contains("P2P in MigrationFlags", Assert.Throws<FormatException>(() => new SimulatedKernel(SimDeviceExamples.Host(10, none))).Message);
    }
}
