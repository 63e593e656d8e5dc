using System;
using System.Globalization;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Conformance;

/// <summary>Raw device calls the device scenarios share (opening a device the way vfiotest does, feature buffers).</summary>
internal static class DeviceScenarioCalls
{
    /// <summary>A container with the group attached and TYPE1v2 set, then the device fd (kernel-interface.md lab 7.1 "== group", GET_DEVICE_FD).</summary>
    public static SafeFd? OpenDevice(VfioHost host, int group, string device, ConformanceRecorder r, out SafeFd container, out SafeFd groupFd)
    {
        container = host.Open(VfioHost.ContainerPath);
        groupFd = host.Open($"/dev/vfio/{group.ToString(CultureInfo.InvariantCulture)}");
        r.Result("VFIO_GROUP_SET_CONTAINER", host.TryIoctl(groupFd, VfioIoctl.VFIO_GROUP_SET_CONTAINER, BitConverter.GetBytes(container.Number)));
        r.Result("VFIO_SET_IOMMU(TYPE1v2)", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));
        int fd = host.TryIoctl(groupFd, VfioIoctl.VFIO_GROUP_GET_DEVICE_FD, VfioHost.CString(device));
        r.Record("VFIO_GROUP_GET_DEVICE_FD", FdAnswer(fd));
        return fd >= 0 ? host.Adopt(fd, device) : null;
    }

    /// <summary>VFIO_DEVICE_GET_INFO with argsz 16 (the fields every kernel fills).</summary>
    public static void GetInfo(VfioHost host, SafeFd device, ConformanceRecorder r)
    {
        var info = StructBytes.Buffer(new vfio_device_info { argsz = (uint)StructBytes.SizeOf<vfio_device_info>() });
        r.Result("VFIO_DEVICE_GET_INFO", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_GET_INFO, info));
        var got = StructBytes.Read<vfio_device_info>(info);
        r.Record("device flags", Hex(got.flags));
        r.Record("num_regions", got.num_regions.ToString(CultureInfo.InvariantCulture));
        r.Record("num_irqs", got.num_irqs.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>A VFIO_DEVICE_FEATURE buffer: header (argsz = 8 + payload) and a zeroed payload.</summary>
    public static byte[] Feature(uint feature, uint ops, int payload)
    {
        var buffer = new byte[8 + payload];
        StructBytes.Write(buffer, new vfio_device_feature { argsz = (uint)buffer.Length, flags = feature | ops });
        return buffer;
    }

    /// <summary>"fd" for a new descriptor (its number depends on the host), -1, or the errno's name.</summary>
    public static string FdAnswer(long fd) => fd >= 0 ? "fd" : fd == -1 ? "-1" : Errno.Name((int)-fd);

    public static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>Bytes as kernel-interface.md (lab) prints them: "4e 2c 3e 8c".</summary>
    public static string Bytes(ReadOnlySpan<byte> bytes) =>
        string.Join(" ", bytes.ToArray().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
}
