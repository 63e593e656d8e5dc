using System;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using Xunit;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Tests.Simulation.Devices;

/// <summary>VFIO_DEVICE_FEATURE: the core's checks (vfio_ioctl_device_feature, vfio_check_feature) and dispatch.</summary>
public class DeviceFeatureTests
{
    private const uint GET = VFIO_DEVICE_FEATURE_GET, SET = VFIO_DEVICE_FEATURE_SET, PROBE = VFIO_DEVICE_FEATURE_PROBE;

    [Fact]
    public void AnArgszBelowTheHeaderIsEinvalAndABufferBelowItFaults()
    {
        using var h = DeviceHarness.Mtty();
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, GET, 8, argsz: 7).Rc);
        Assert.Equal(-Errno.EFAULT, h.Ioctl(VfioIoctl.VFIO_DEVICE_FEATURE.Number, new byte[4]));
    }

    [Fact]
    public void UnknownFlagBitsAreEinval()
    {
        using var h = DeviceHarness.Mtty();
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, GET | (1u << 19), 8).Rc);
    }

    [Fact]
    public void GetAndSetTogetherNeedProbe()
    {
        using var h = DeviceHarness.Mtty();
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, GET | SET, 8).Rc);
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, GET | SET | PROBE, 8).Rc);
    }

    [Fact]
    public void ProbeAnswersWhetherTheFeatureSupportsTheRequestedOps()
    {
        using var h = DeviceHarness.Mtty();
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, GET | PROBE, 0).Rc);
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, SET | PROBE, 0).Rc); // GET only
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, GET | SET | PROBE, 0).Rc);
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, PROBE, 0).Rc); // neither: supported at all
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, SET | PROBE, 0).Rc);
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, SET | PROBE, 0).Rc); // GET only
    }

    [Fact]
    public void WithoutProbeGetOrSetIsNeededAndThePayloadMustHoldTheFeaturesStruct()
    {
        using var h = DeviceHarness.Mtty();
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, 0, 8).Rc);
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, GET, 8, argsz: 15).Rc);
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, SET, 24, argsz: 31).Rc);
    }

    [Theory]
    [InlineData(VFIO_DEVICE_FEATURE_MIGRATION, GET)]
    [InlineData(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, GET)]
    [InlineData(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, GET)]
    [InlineData(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, SET)]
    [InlineData(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, SET)]
    [InlineData(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, GET)]
    public void MigrationAndLoggingFeaturesAreEnottyOnADeviceWithoutThem(uint feature, uint op)
    {
        using var h = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        Assert.Equal(-Errno.ENOTTY, h.Feature(feature, op, 32).Rc);
        Assert.Equal(-Errno.ENOTTY, h.Feature(feature, op | PROBE, 32).Rc);
    }

    [Fact]
    public void UnknownIdsAreEnottyFromVfioPciAndEinvalFromMtty()
    {
        using var edu = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        Assert.Equal(-Errno.ENOTTY, edu.Feature(42, GET, 8).Rc);
        Assert.Equal(-Errno.ENOTTY, edu.Feature(VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, SET, 16).Rc); // no SR-IOV
        using var mtty = DeviceHarness.Mtty();
        Assert.Equal(-Errno.EINVAL, mtty.Feature(42, GET, 8).Rc);
        Assert.Equal(-Errno.EINVAL, mtty.Feature(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, SET, 0).Rc);
    }

    [Fact]
    public void VfioPciLowPowerEntryCannotBeEnteredTwiceAndExitsAlways()
    {
        using var h = DeviceHarness.Open(SimTopologies.Lab(), "0000:00:02.0");
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, SET | PROBE, 0).Rc);
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, SET, 0).Rc);
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, SET, 0).Rc);
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, SET, 0).Rc);
        Assert.Equal(0, h.Feature(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, SET, 0).Rc);
        // WITH_WAKEUP needs an eventfd: a closed fd is EBADF, another kind of file EINVAL.
        Assert.Equal(-Errno.EBADF, h.Feature(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, SET, 8, b => BitConverter.TryWriteBytes(b.AsSpan(8), 999)).Rc);
        Assert.Equal(-Errno.EINVAL, h.Feature(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, SET, 8, b => BitConverter.TryWriteBytes(b.AsSpan(8), h.Device)).Rc);
    }

    [Fact]
    public void MigrationGetGivesTheFlagsAndMigDataSizeTheStateSize()
    {
        using var h = DeviceHarness.Mtty();
        var (rc, buffer) = h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, GET, 8);
        Assert.Equal((0, 7ul), (rc, StructBytes.Read<vfio_device_feature_migration>(buffer, 8).flags));
        (rc, buffer) = h.Feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, GET, 8);
        Assert.Equal((0, 96ul), (rc, StructBytes.Read<vfio_device_feature_mig_data_size>(buffer, 8).stop_copy_length));
    }

    [Fact]
    public void AV1DeviceHasNoV2MigrationFeature()
    {
        using var h = DeviceHarness.Open(Core.Simulation.Devices.SimDeviceExamples.LabWith(Core.Simulation.Devices.SimDeviceExamples.V1Device()), "0000:00:05.0");
        Assert.Equal(-Errno.ENOTTY, h.Feature(VFIO_DEVICE_FEATURE_MIGRATION, GET, 8).Rc);
    }
}
