using System;
using System.Security.Cryptography;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>
/// The simulated mtty holds mtty.c's device model: its UART registers and FIFO are written through its
/// I/O BARs (pwrite on the device fd) and its stream carries them in struct serial_port's layout.
/// </summary>
public sealed class MttyDeviceModelTests
{
    private const long Bar0 = 0, Bar1 = 1L << 40;
    private const int Port0 = 24, Port1 = 24 + 36; // stream offsets of the two port records

    private static void WriteRegister(DeviceHarness h, long bar, int register, byte value) =>
        Assert.Equal(1, h.Kernel.Pwrite(h.Device, new[] { value }, bar + register));

    private static byte ReadRegister(DeviceHarness h, long bar, int register)
    {
        var b = new byte[1];
        Assert.Equal(1, h.Kernel.Pread(h.Device, b, bar + register));
        return b[0];
    }

    /// <summary>Divisor 0x000c, 8N1, FIFO on, "hi" looped back, IER RDI|RLSI, MCR DTR|RTS|OUT2, scratch 0x5a.</summary>
    private static void ProgramPort0(DeviceHarness h)
    {
        WriteRegister(h, Bar0, 3, 0x83); // LCR: DLAB
        WriteRegister(h, Bar0, 0, 0x0c); // divisor LSB
        WriteRegister(h, Bar0, 1, 0x00); // divisor MSB
        WriteRegister(h, Bar0, 3, 0x03); // LCR: 8N1, DLAB off
        WriteRegister(h, Bar0, 2, 0xc7); // FCR: FIFO on, both cleared, trigger 14
        WriteRegister(h, Bar0, 1, 0x05); // IER
        WriteRegister(h, Bar0, 4, 0x0b); // MCR
        WriteRegister(h, Bar0, 7, 0x5a); // SCR
        WriteRegister(h, Bar0, 0, (byte)'h');
        WriteRegister(h, Bar0, 0, (byte)'i');
    }

    [Fact]
    public void AFreshMttySavesTheBytesTheRealDriverSaves()
    {
        using var h = DeviceHarness.Mtty();
        var stream = h.SaveStopped();
        Assert.Equal(96, stream.Length);
        // kernel-interface.md lab 12 (the real 6.12 kernel): all zero after the header but each port's FIFO size.
        Assert.Equal("78c2beb82258e830b08d6db4447b93042356afdf78b450f44dc15b94cef1d4c4", Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant());
        Assert.Equal(16, stream[57]);
        Assert.Equal(16, stream[93]);
    }

    [Fact]
    public void RegisterWritesThroughTheBarsReachTheStreamInSerialPortLayout()
    {
        using var h = DeviceHarness.Mtty();
        ProgramPort0(h);
        var p = h.SaveStopped().AsSpan(Port0, 36);
        Assert.Equal(new byte[] { 0, 0x05, 0, 0x03, 0x0b, 0, 0, 0x5a }, p.Slice(0, 8).ToArray()); // uart_reg[]
        Assert.Equal((byte)'h', p[8]);   // fifo[0]
        Assert.Equal((byte)'i', p[9]);   // fifo[1]
        Assert.Equal(2, p[24]);          // head
        Assert.Equal(0, p[25]);          // tail
        Assert.Equal(2, p[26]);          // count
        Assert.Equal(0, p[27]);          // dlab
        Assert.Equal(0, p[28]);          // overrun
        Assert.Equal(0x0c, p[30]);       // divisor, little-endian
        Assert.Equal(0x00, p[31]);
        Assert.Equal(0xc7, p[32]);       // fcr
        Assert.Equal(16, p[33]);         // max_fifo_size
        Assert.Equal(1, p[34]);          // intr_trigger_level: mtty.c sets 1 whatever the FCR asked
    }

    [Fact]
    public void ReadingTheRegistersAnswersAsMttyDoesAndReceivingTakesFromTheFifo()
    {
        using var h = DeviceHarness.Mtty();
        ProgramPort0(h);
        Assert.Equal(0x05, ReadRegister(h, Bar0, 1));      // IER
        Assert.Equal(0xc4, ReadRegister(h, Bar0, 2));      // IIR: RDI (2 >= trigger 1), bits 6-7
        Assert.Equal(0x01, ReadRegister(h, Bar0, 5));      // LSR: data ready
        Assert.Equal(0xb3, ReadRegister(h, Bar0, 6));      // MSR: DCD|DSR|CTS|DDSR|DCTS
        Assert.Equal((byte)'h', ReadRegister(h, Bar0, 0)); // RX
        Assert.Equal((byte)'i', ReadRegister(h, Bar0, 0));
        Assert.Equal(0x60, ReadRegister(h, Bar0, 5));      // LSR: empty
        Assert.Equal(0xc1, ReadRegister(h, Bar0, 2));      // IIR: no interrupt
        var p = h.SaveStopped().AsSpan(Port0, 36);
        Assert.Equal(2, p[24]);
        Assert.Equal(2, p[25]);
        Assert.Equal(0, p[26]);
    }

    [Fact]
    public void AFullFifoSetsOverrunAndAMultiByteWriteIsOneRegisterWritePerPiece()
    {
        using var h = DeviceHarness.Mtty();
        WriteRegister(h, Bar1, 2, 0x00); // FCR: FIFO off, so it holds one byte
        WriteRegister(h, Bar1, 0, 0x41);
        WriteRegister(h, Bar1, 0, 0x42);
        // An 8-byte write at offset 0 is two 4-byte pieces: TX gets byte 0, MCR (offset 4) byte 4.
        Assert.Equal(8, h.Kernel.Pwrite(h.Device, new byte[] { 0x43, 9, 9, 9, 0x03, 9, 9, 9 }, Bar1));
        var p = h.SaveStopped().AsSpan(Port1, 36);
        Assert.Equal(0x41, p[8]);
        Assert.Equal(1, p[26]);   // count
        Assert.Equal(1, p[28]);   // overrun
        Assert.Equal(1, p[33]);   // max_fifo_size with the FIFO off
        Assert.Equal(0x03, p[4]); // MCR
        Assert.Equal(0, p[1]);    // IER untouched by the bytes in between
    }

    [Fact]
    public void ARestoredStreamSetsThePortsOfASecondMtty()
    {
        var kernel = new SimulatedKernel(SimTopologies.Lab());
        using var source = DeviceHarness.Open(kernel, SimTopologies.LabMttyUuid);
        using var destination = DeviceHarness.Open(kernel, SimTopologies.LabMttyPeerUuid);
        ProgramPort0(source);
        var stream = source.SaveStopped();
        Assert.Equal(0, destination.Restore(stream));
        Assert.Equal(stream, destination.SaveStopped());
        destination.MoveTo(VFIO_DEVICE_STATE_RUNNING);
        Assert.Equal(0x5a, ReadRegister(destination, Bar0, 7));
        Assert.Equal((byte)'h', ReadRegister(destination, Bar0, 0));
    }

    [Fact]
    public void TheStopCopyStreamIsTheStateWhenTheDeviceStoppedNotAfter()
    {
        using var h = DeviceHarness.Mtty();
        h.MoveTo(VFIO_DEVICE_STATE_STOP);
        int fd = h.MoveTo(VFIO_DEVICE_STATE_STOP_COPY);
        WriteRegister(h, Bar0, 7, 0x77); // mtty does not refuse BAR writes in STOP_COPY
        var (bytes, _) = h.ReadAll(fd);
        Assert.Equal(0, bytes[Port0 + 7]);
    }

    [Fact]
    public void AStreamLongerThanTheStateIsENOMEMAndAShortOneFailsTheLoadLeavingTheDeviceResuming()
    {
        using var h = DeviceHarness.Mtty();
        var stream = h.SaveStopped();
        int fd = h.MoveTo(VFIO_DEVICE_STATE_RESUMING);
        Assert.Equal(-Errno.ENOMEM, h.Kernel.Write(fd, new byte[97]));
        Assert.Equal(60, h.Kernel.Write(fd, stream.AsSpan(0, 60)));
        Assert.Equal(-Errno.EINVAL, h.SetState(VFIO_DEVICE_STATE_STOP).Rc);
        Assert.Equal(VFIO_DEVICE_STATE_RESUMING, h.GetState());
        Assert.Equal(36, h.Kernel.Write(fd, stream.AsSpan(60)));
        Assert.Equal(0, h.SetState(VFIO_DEVICE_STATE_STOP).Rc);
    }

    [Fact]
    public void AnMttyWithAWorkloadOrAnUnknownTypeIsAConfigurationError()
    {
        var busy = SimTopologies.Lab();
        busy.Groups[2].Devices[0].Workload = new SimWorkload { StateSize = 1 << 20 };
        Assert.Contains("serial ports", Assert.Throws<FormatException>(() => new SimulatedKernel(busy)).Message);
        var unknown = SimTopologies.Lab();
        unknown.Groups[2].Devices[0].MdevType = "mtty-4";
        Assert.Contains("mtty-1 or mtty-2", Assert.Throws<FormatException>(() => new SimulatedKernel(unknown)).Message);
    }

    [Fact]
    public void TheModulesRegionAccessReachesTheRegistersAndNamesTheDeviceWhenTheDriverRefuses()
    {
        var kernel = new SimulatedKernel(SimTopologies.Lab());
        using var container = VfioMigration.Core.Vfio.VfioContainer.Open(new VfioMigration.Core.Kernel.VfioHost(kernel));
        container.Attach(7);
        container.SetIommu();
        var device = container.GetDevice(SimTopologies.LabMttyUuid);
        Assert.Equal(1, device.WriteRegion(0, 7, new byte[] { 0x5a }));
        Assert.Equal(new byte[] { 0x5a }, device.ReadRegion(0, 7, 1));
        Assert.Equal(0x5a, kernel.FindDevice(SimTopologies.LabMttyUuid)!.GetStateBytes()[Port0 + 7]);
        var e = Assert.Throws<VfioMigration.Core.Native.VfioNativeException>(() => device.WriteRegion(6, 0, new byte[] { 1 }));
        Assert.Equal(Errno.EFAULT, e.Errno);
        Assert.Contains(SimTopologies.LabMttyUuid, e.Message);
    }

    [Fact]
    public void AnMtty1SavesOnePortAndSizesItsStreamSo()
    {
        var config = SimTopologies.Lab();
        config.Groups[2].Devices[0].MdevType = "mtty-1";
        using var h = DeviceHarness.Mtty(config);
        var (rc, buffer) = h.Feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, VFIO_DEVICE_FEATURE_GET, 8);
        Assert.Equal(0, rc);
        Assert.Equal(60UL, StructBytes.Read<vfio_device_feature_mig_data_size>(buffer, 8).stop_copy_length);
        var stream = h.SaveStopped();
        Assert.Equal(60, stream.Length);
        Assert.Equal(1, stream[16]);
    }
}
