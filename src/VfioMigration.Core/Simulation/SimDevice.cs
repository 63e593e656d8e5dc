using System;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Simulation;

/// <summary>
/// A simulated device model: its configuration and its state, which lives as long as the host (not only
/// while a descriptor is open). SKELETON: device info, regions, IRQs, reset, the v1 region and the v2
/// state machine are being written.
/// </summary>
public sealed class SimDevice
{
    internal SimDevice(SimulatedKernel kernel, SimGroup group, SimDeviceConfig config)
    {
        Kernel = kernel;
        Group = group;
        Config = config;
    }

    internal SimulatedKernel Kernel { get; }

    internal SimGroup Group { get; }

    public SimDeviceConfig Config { get; }

    public string Name => Config.Name;

    internal void Tick() { }
    /// <summary>VFIO_GROUP_GET_DEVICE_FD: a new device file, or -errno.</summary>
    internal int Open(out SimFile? file)
    {
        file = new SimDeviceFile(Kernel, this);
        return 0;
    }
}

/// <summary>An open device descriptor.</summary>
internal sealed class SimDeviceFile : SimFile
{
    private readonly SimDevice _device;

    public SimDeviceFile(SimulatedKernel kernel, SimDevice device) : base(kernel) => _device = device;

    public override SimFileKind Kind => SimFileKind.Device;

    public override string Name => _device.Name;

    public override void Release() => _device.Group.OpenDevices--;
}
