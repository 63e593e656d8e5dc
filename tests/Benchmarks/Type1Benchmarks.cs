using System;
using System.Collections.Generic;
using System.Globalization;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Benchmarks;

/// <summary>P2 (ioctls per Get-DirtyBitmap) and P3 (managed bytes per repeated query), on the simulated host.</summary>
internal static class Type1Benchmarks
{
    private const ulong GiB = 1UL << 30;

    public static void Run(string which)
    {
        if (which is "all" or "P2")
        {
            P2(mappings: 1024, mappingSize: GiB);        // 1 TiB: 32 MiB of bitmap
            P2(mappings: 16384, mappingSize: GiB);       // 16 TiB: 512 MiB of bitmap, twice the kernel's maximum per call
        }
        if (which is "all" or "P3") P3();
    }

    private static (VfioHost Host, VfioContainer Container) Guest(int mappings, ulong mappingSize, bool moduleOnly = false)
    {
        var config = new SimHostConfiguration
        {
            Name = "bench",
            Groups = new List<SimGroupConfig>
            {
                new() { Number = 1, Devices = { new SimDeviceConfig { Name = "0b3c0e1e-8f39-4a2e-9a54-000000000001", Bus = SimBus.Mdev, MdevType = "bench" } } },
            },
        };
        IVfioKernel kernel = new SimulatedKernel(config);
        var host = new VfioHost(moduleOnly ? new BitmapAnsweringKernel(kernel) : kernel);
        var container = VfioContainer.Open(host);
        container.Attach(1);
        container.SetIommu();
        for (int i = 0; i < mappings; i++) container.Map((ulong)i * mappingSize, mappingSize);
        container.StartDirtyTracking();
        return (host, container);
    }

    /// <summary>P2: GET_BITMAP calls for one read over N adjacent mappings = ceil(bitmap bytes / kernel maximum).</summary>
    private static void P2(int mappings, ulong mappingSize)
    {
        var (host, container) = Guest(mappings, mappingSize);
        using (container)
        {
            int calls = 0;
            host.Trace = r => { if (r.Operation == "VFIO_IOMMU_DIRTY_PAGES" && r.Detail?.StartsWith("GET_BITMAP", StringComparison.Ordinal) == true) calls++; };
            ulong size = (ulong)mappings * mappingSize;
            var bitmap = container.GetDirtyBitmap(0, size);
            host.Trace = null;
            ulong bitmapBytes = (bitmap.Pages + 63) / 64 * 8;
            ulong max = container.Info!.MaxDirtyBitmapSize;
            ulong expected = (bitmapBytes + max - 1) / max;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"P2: {mappings} adjacent mappings of {VfioMigration.Core.Vfio.Readable.Bytes(mappingSize)} ({VfioMigration.Core.Vfio.Readable.Bytes(size)}), bitmap {VfioMigration.Core.Vfio.Readable.Bytes(bitmapBytes)} -> {calls} GET_BITMAP ioctl(s); ceil(bitmap / {VfioMigration.Core.Vfio.Readable.Bytes(max)}) = {expected}; one per mapping would be {mappings}, one per page {bitmap.Pages}"));
            if ((ulong)calls != expected) throw new InvalidOperationException("P2 missed its target.");
        }
    }

    /// <summary>P3: managed bytes allocated by a repeated query beyond its output objects.</summary>
    private static void P3()
    {
        // The kernel answers GET_BITMAP without allocating, so the count is the module's own (a real
        // kernel's work does not land on the managed heap either).
        var (_, container) = Guest(mappings: 64, mappingSize: 16UL << 20, moduleOnly: true);   // 1 GiB in 64 mappings
        using (container)
        {
            ulong size = 64UL * (16UL << 20);
            for (int i = 0; i < 20; i++) container.GetDirtyBitmap(0, size);     // warm up, fill the pools
            const int queries = 200;
            var sample = container.GetDirtyBitmap(0, size);
            // What the output objects alone cost: the word array and the DirtyBitmap around it.
            long mark = GC.GetAllocatedBytesForCurrentThread();
            var words = new ulong[(sample.Pages + 63) / 64];
            GC.KeepAlive(new VfioMigration.Core.Dirty.DirtyBitmap(sample.Iova, sample.Size, sample.PageSize, words, sample.Scope, sample.HostKind, sample.Host, sample.Timestamp));
            long perOutput = GC.GetAllocatedBytesForCurrentThread() - mark;
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < queries; i++) container.GetDirtyBitmap(0, size);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            long output = perOutput * queries;
            double beyond = (allocated - output) / (double)queries;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"P3: {queries} queries of 1 GiB (64 mappings): {allocated / queries} bytes allocated per query, of which output {output / queries}; beyond the output {beyond:0} bytes per query (target <= 1024)"));
        }
    }

    /// <summary>The simulated kernel, except that GET_BITMAP is answered by setting every bit, with no allocation.</summary>
    private sealed class BitmapAnsweringKernel : IVfioKernel
    {
        private readonly IVfioKernel _inner;

        public BitmapAnsweringKernel(IVfioKernel inner) => _inner = inner;

        public HostKind Kind => _inner.Kind;
        public string Description => _inner.Description;
        public IHostFiles Files => _inner.Files;

        public IHostClock Clock => _inner.Clock;
        public int Open(string path, int flags) => _inner.Open(path, flags);
        public int Close(int fd) => _inner.Close(fd);

        public int Ioctl(int fd, uint request, Span<byte> arg)
        {
            if (request == VfioIoctl.VFIO_IOMMU_DIRTY_PAGES.Number && arg.Length >= 48
                && (StructBytes.Read<vfio_iommu_type1_dirty_bitmap>(arg).flags & VfioConstants.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP) != 0)
            {
                var get = StructBytes.Read<vfio_iommu_type1_dirty_bitmap_get>(arg, 8);
                Span<byte> ones = stackalloc byte[256];
                ones.Fill(0xff);
                for (ulong done = 0; done < get.bitmap.size; done += 256)
                    UserMemory.CopyToUser(get.bitmap.data + done, ones.Slice(0, (int)Math.Min(256, get.bitmap.size - done)));
                return 0;
            }
            return _inner.Ioctl(fd, request, arg);
        }

        public int Ioctl(int fd, uint request, ulong value) => _inner.Ioctl(fd, request, value);
        public long Pread(int fd, Span<byte> buffer, long offset) => _inner.Pread(fd, buffer, offset);
        public long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset) => _inner.Pwrite(fd, buffer, offset);
        public long Read(int fd, Span<byte> buffer) => _inner.Read(fd, buffer);
        public long Write(int fd, ReadOnlySpan<byte> buffer) => _inner.Write(fd, buffer);
        public nint Mmap(nint length, long offset, int prot, int flags, int fd) => _inner.Mmap(length, offset, prot, flags, fd);
        public int Munmap(nint address, nint length) => _inner.Munmap(address, length);
        public int Poll(int fd, short events, int timeoutMs, out short revents) => _inner.Poll(fd, events, timeoutMs, out revents);
    }
}
