using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Conformance;

/// <summary>Raw device calls the device scenarios share (opening a device the way vfiotest does, feature buffers).</summary>
internal static class DeviceScenarioCalls
{
    private const int ReadChunk = 4096;

    /// <summary>
    /// A container with the group attached and TYPE1v2 set, then the device fd (kernel-interface.md lab 7.1
    /// "== group", GET_DEVICE_FD). Disposing it closes the device first, as a VMM does, then the group and
    /// the container.
    /// </summary>
    public static OpenedDevice OpenDevice(VfioHost host, int group, string device, ConformanceRecorder r)
    {
        var container = host.Open(VfioHost.ContainerPath);
        var groupFd = host.Open($"/dev/vfio/{group.ToString(CultureInfo.InvariantCulture)}");
        r.Result("VFIO_GROUP_SET_CONTAINER", host.TryIoctl(groupFd, VfioIoctl.VFIO_GROUP_SET_CONTAINER, BitConverter.GetBytes(container.Number)));
        r.Result("VFIO_SET_IOMMU(TYPE1v2)", host.TryIoctlValue(container, VfioIoctl.VFIO_SET_IOMMU, VfioConstants.VFIO_TYPE1v2_IOMMU));
        int fd = host.TryIoctl(groupFd, VfioIoctl.VFIO_GROUP_GET_DEVICE_FD, VfioHost.CString(device));
        r.Record("VFIO_GROUP_GET_DEVICE_FD", FdAnswer(fd));
        return new OpenedDevice(container, groupFd, fd >= 0 ? host.Adopt(fd, device) : null);
    }

    /// <summary>A device a scenario opened with its group and container (Device null when GET_DEVICE_FD failed).</summary>
    public sealed record OpenedDevice(SafeFd Container, SafeFd Group, SafeFd? Device) : IDisposable
    {
        public void Dispose()
        {
            Device?.Dispose();
            Group.Dispose();
            Container.Dispose();
        }
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

    public static void GetState(VfioHost host, SafeFd device, ConformanceRecorder r, string when)
    {
        var get = Feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_GET, 8);
        r.Result($"GET MIG_DEVICE_STATE {when}", host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, get));
        r.Record($"device_state {when}", StructBytes.Read<vfio_device_feature_mig_state>(get, 8).device_state.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>SET MIG_DEVICE_STATE; records the result and the data fd ("fd" or -1); returns the fd to close, if any.</summary>
    public static SafeFd? SetState(VfioHost host, SafeFd device, ConformanceRecorder r, uint state, string name)
    {
        var set = Feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_SET, 8);
        StructBytes.Write(set, new vfio_device_feature_mig_state { device_state = state, data_fd = -1 }, 8);
        int rc = host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, set);
        r.Result($"SET MIG_DEVICE_STATE={name}", rc);
        if (rc < 0) return null;
        int fd = StructBytes.Read<vfio_device_feature_mig_state>(set, 8).data_fd;
        r.Record($"data_fd after {name}", FdAnswer(fd));
        return fd >= 0 ? host.Adopt(fd, $"{device.Target} migration data") : null;
    }

    /// <summary>Reads until read() answers 0 or an error; records the byte count and that last answer.</summary>
    public static void ReadToEnd(VfioHost host, SafeFd? data, ConformanceRecorder r, string phase, List<byte> stream)
    {
        if (data is null) return;
        var buffer = new byte[ReadChunk];
        long total = 0, n;
        while ((n = host.TryRead(data, buffer)) > 0)
        {
            stream.AddRange(buffer.AsSpan(0, (int)n).ToArray());
            total += n;
        }
        r.Record($"{phase} bytes read", total.ToString(CultureInfo.InvariantCulture));
        r.Record($"{phase} read at end", ConformanceRecorder.Answer(n));
    }
}
