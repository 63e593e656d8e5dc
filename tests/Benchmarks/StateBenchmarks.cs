using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Benchmarks;

/// <summary>P4: Save-VfioDeviceState throughput beside cat of the same number of bytes into a file.</summary>
internal static class StateBenchmarks
{
    private const string Device = "4d2b5c6e-7f80-4a1b-9c2d-3e4f5a6b7c8d";

    public static void P4(long stateBytes = 256L << 20)
    {
        string dir = Path.Combine(Path.GetTempPath(), "vfiomigration-bench");
        Directory.CreateDirectory(dir);
        string state = Path.Combine(dir, "p4.state");

        // The module's path with a device that hands out its stream at memory speed (a real device's own
        // speed is the device's business), then with the simulated device producing its stream.
        double fast = Save(state, stateBytes, fastDevice: true);
        double simulated = Save(state, stateBytes, fastDevice: false);

        string source = Path.Combine(dir, "p4.src"), copy = Path.Combine(dir, "p4.cat");
        var bytes = new byte[1 << 20];
        new Random(4).NextBytes(bytes);
        using (var f = File.Create(source)) for (long w = 0; w < stateBytes; w += bytes.Length) f.Write(bytes);
        double cat = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var t = Stopwatch.StartNew();
            Program.Run("sh", $"-c \"cat '{source}' > '{copy}' && sync '{copy}'\"");
            cat = Math.Min(cat, t.Elapsed.TotalSeconds);
        }
        double mib = stateBytes / 1048576.0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"P4: {mib:0} MiB of device state | Save-VfioDeviceState {mib / fast:0} MiB/s ({fast:0.000} s) | cat+sync {mib / cat:0} MiB/s ({cat:0.000} s) | ratio {cat / fast:0.00}x of cat | with the simulated device producing the stream: {mib / simulated:0} MiB/s"));
        File.Delete(source);
        File.Delete(copy);
        File.Delete(state);
    }

    private static double Save(string path, long stateBytes, bool fastDevice)
    {
        var config = new SimHostConfiguration
        {
            Name = "bench",
            Groups = new List<SimGroupConfig>
            {
                new() { Number = 1, Devices = { new SimDeviceConfig { Name = Device, Bus = SimBus.Mdev, MdevType = "bench", Migration = SimMigrationProtocol.V2,
                    MigrationFlags = VfioConstants.VFIO_MIGRATION_STOP_COPY, Workload = new SimWorkload { StateSize = stateBytes, InitialBytes = 0 } } } },
            },
        };
        var sim = new SimulatedKernel(config);
        sim.Clock.UseManualTime();
        IVfioKernel kernel = fastDevice ? new FastDataKernel(sim, stateBytes) : sim;
        using var container = VfioContainer.Open(new VfioHost(kernel));
        container.Attach(1);
        container.SetIommu();
        var device = container.GetDevice(Device);
        double best = double.MaxValue;
        for (int i = 0; i < (fastDevice ? 3 : 1); i++)
        {
            if (fastDevice) ((FastDataKernel)kernel).Rewind();
            var t = Stopwatch.StartNew();
            var r = DeviceState.Save(device, path, maxPreCopyRounds: 0, resume: true);
            best = Math.Min(best, t.Elapsed.TotalSeconds);
            if (r.TotalBytes != (ulong)stateBytes) throw new InvalidOperationException($"P4 saved {r.TotalBytes} bytes, not {stateBytes}.");
        }
        return best;
    }

    /// <summary>The simulated kernel, except that reads of a migration data fd copy from memory.</summary>
    private sealed class FastDataKernel : IVfioKernel
    {
        private readonly IVfioKernel _inner;
        private readonly byte[] _stream = new byte[1 << 20];
        private readonly long _size;
        private long _served;

        public FastDataKernel(IVfioKernel inner, long size)
        {
            _inner = inner;
            _size = size;
            new Random(1).NextBytes(_stream);
        }

        public void Rewind() => _served = 0;

        public HostKind Kind => _inner.Kind;
        public string Description => _inner.Description;
        public IHostFiles Files => _inner.Files;

        public IHostClock Clock => _inner.Clock;
        public int Open(string path, int flags) => _inner.Open(path, flags);
        public int Close(int fd) => _inner.Close(fd);
        public int Ioctl(int fd, uint request, Span<byte> arg) => _inner.Ioctl(fd, request, arg);
        public int Ioctl(int fd, uint request, ulong value) => _inner.Ioctl(fd, request, value);
        public long Pread(int fd, Span<byte> buffer, long offset) => _inner.Pread(fd, buffer, offset);
        public long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset) => _inner.Pwrite(fd, buffer, offset);

        public long Read(int fd, Span<byte> buffer)
        {
            int n = (int)Math.Min(Math.Min(buffer.Length, _stream.Length), _size - _served);
            _stream.AsSpan(0, n).CopyTo(buffer);
            _served += n;
            return n;
        }

        public long Write(int fd, ReadOnlySpan<byte> buffer) => _inner.Write(fd, buffer);
        public nint Mmap(nint length, long offset, int prot, int flags, int fd) => _inner.Mmap(length, offset, prot, flags, fd);
        public int Munmap(nint address, nint length) => _inner.Munmap(address, length);
        public int Poll(int fd, short events, int timeoutMs, out short revents) => _inner.Poll(fd, events, timeoutMs, out revents);
    }
}
