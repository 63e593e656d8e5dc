using System;
using System.Collections.Generic;
using System.Globalization;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using static VfioMigration.Core.Conformance.DeviceScenarioCalls;
using static VfioMigration.Core.Native.VfioConstants;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// v2 migration steps the mtty scenarios share, each recorded under a label so that a difference names the
/// device and the moment: set a state, save a stopped device's whole stream, restore a stream.
/// </summary>
internal static class MttyScenarioCalls
{
    /// <summary>SET MIG_DEVICE_STATE; records "label: SET NAME" = result and data fd; returns the fd to close, if any.</summary>
    public static SafeFd? Set(VfioHost host, SafeFd device, ConformanceRecorder r, string label, VfioMigrationState state, bool record = true)
    {
        var set = Feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_SET, 8);
        StructBytes.Write(set, new vfio_device_feature_mig_state { device_state = (uint)state, data_fd = -1 }, 8);
        int rc = host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, set);
        int fd = rc < 0 ? -1 : StructBytes.Read<vfio_device_feature_mig_state>(set, 8).data_fd;
        if (record || rc < 0) r.Record($"{label}: SET {MigrationFsm.Name(state)}", rc < 0 ? ConformanceRecorder.Answer(rc) : $"0, data_fd {FdAnswer(fd)}");
        return fd >= 0 ? host.Adopt(fd, $"{device.Target} migration data") : null;
    }

    /// <summary>GET MIG_DEVICE_STATE: the state's name, or the errno's.</summary>
    public static string State(VfioHost host, SafeFd device)
    {
        var get = Feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, VFIO_DEVICE_FEATURE_GET, 8);
        int rc = host.TryIoctl(device, VfioIoctl.VFIO_DEVICE_FEATURE, get);
        return rc < 0 ? ConformanceRecorder.Answer(rc) : MigrationFsm.Name((VfioMigrationState)StructBytes.Read<vfio_device_feature_mig_state>(get, 8).device_state);
    }

    /// <summary>
    /// RUNNING → STOP → STOP_COPY, the stream read to its end, → STOP → RUNNING; records the stream's bytes
    /// (all of them: mtty's is 96) and returns it, or null when a step failed.
    /// </summary>
    public static byte[]? SaveStopped(VfioHost host, SafeFd device, ConformanceRecorder r, string label)
    {
        using (Set(host, device, r, label, VfioMigrationState.Stop, record: false)) { }
        var stream = new List<byte>();
        using (var data = Set(host, device, r, label, VfioMigrationState.StopCopy))
        {
            if (data is null) return null;
            var buffer = new byte[4096];
            long n;
            while ((n = host.TryRead(data, buffer)) > 0) stream.AddRange(buffer.AsSpan(0, (int)n).ToArray());
            if (n < 0) r.Record($"{label}: read stop-copy data", ConformanceRecorder.Answer(n));
        }
        using (Set(host, device, r, label, VfioMigrationState.Stop, record: false)) { }
        using (Set(host, device, r, label, VfioMigrationState.Running, record: false)) { }
        var bytes = stream.ToArray();
        r.Record($"{label}: stream ({bytes.Length} bytes)", Bytes(bytes));
        return bytes;
    }

    /// <summary>
    /// STOP → RESUMING, the pieces written one write() each (each answer recorded), → STOP (the load),
    /// recorded; returns whether the load succeeded. The device is left where the kernel left it.
    /// </summary>
    public static bool Restore(VfioHost host, SafeFd device, ConformanceRecorder r, string label, params byte[][] pieces)
    {
        if (State(host, device) != "STOP") using (Set(host, device, r, label, VfioMigrationState.Stop, record: false)) { }
        using (var data = Set(host, device, r, label, VfioMigrationState.Resuming, record: false))
        {
            if (data is null) return false;
            foreach (var piece in pieces)
                r.Record($"{label}: write {piece.Length.ToString(CultureInfo.InvariantCulture)} bytes", ConformanceRecorder.Answer(host.TryWrite(data, piece)));
            using (Set(host, device, r, label, VfioMigrationState.Stop)) { }
        }
        string state = State(host, device);
        r.Record($"{label}: state after the load", state);
        return state == "STOP";
    }
}
