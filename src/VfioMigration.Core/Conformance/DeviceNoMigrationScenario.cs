using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Conformance.DeviceScenarioCalls;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// A vfio-pci device without a migration driver (kernel-interface.md lab 7.1 "== Device info / migration", the edu device):
/// GET_DEVICE_FD, GET_INFO, and the MIGRATION feature answering ENOTTY to PROBE and GET.
/// </summary>
public sealed class DeviceNoMigrationScenario : ConformanceScenario
{
    public override string Name => "device-no-migration";

    public override bool AppliesTo(ConformanceTarget target) => target.IommuGroup is not null && target.IommuDevice is not null;

    public override void Run(ConformanceTarget target, ConformanceRecorder r)
    {
        var host = target.Host;
        using var opened = OpenDevice(host, target.IommuGroup!.Value, target.IommuDevice!, r);
        if (opened.Device is not { } device) return;
        GetInfo(host, device, r);
        var probe = Feature(VfioConstants.VFIO_DEVICE_FEATURE_MIGRATION, VfioConstants.VFIO_DEVICE_FEATURE_PROBE | VfioConstants.VFIO_DEVICE_FEATURE_GET, 8);
        r.Result("PROBE MIGRATION", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, probe));
        var get = Feature(VfioConstants.VFIO_DEVICE_FEATURE_MIGRATION, VfioConstants.VFIO_DEVICE_FEATURE_GET, 8);
        r.Result("GET MIGRATION", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, get));
    }
}
