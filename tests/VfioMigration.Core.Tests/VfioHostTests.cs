using System;
using System.Collections.Generic;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using Xunit;

namespace VfioMigration.Core.Tests;

public class VfioHostTests
{
    [Fact]
    public void RealIoctlOnDevNullComesOutAsTheModulesExceptionNamingTheOperation()
    {
        var host = new VfioHost(LinuxKernel.Instance);
        using SafeFd fd = host.Open("/dev/null");
        var e = Assert.Throws<VfioNativeException>(() => host.IoctlValue(fd, VfioIoctl.VFIO_GET_API_VERSION, 0));
        Assert.Equal("VFIO_GET_API_VERSION", e.Operation);
        Assert.Equal(Errno.ENOTTY, e.Errno);
        Assert.Equal("ENOTTY", e.ErrnoName);
        Assert.Equal("/dev/null", e.Target);
        Assert.Contains("Inappropriate ioctl for device", e.Message);
        Assert.Contains("errno 25", e.Message);
    }

    [Fact]
    public void StructIoctlOnDevNullAlsoFailsWithEnotty()
    {
        var host = new VfioHost(LinuxKernel.Instance);
        using SafeFd fd = host.Open("/dev/null");
        Span<byte> info = stackalloc byte[24];
        Assert.Equal(-Errno.ENOTTY, host.TryIoctl(fd, VfioIoctl.VFIO_IOMMU_GET_INFO, info));
    }

    [Fact]
    public void OpenFailureCarriesTheOpenErrnoNotEbadf()
    {
        var host = new VfioHost(LinuxKernel.Instance);
        var e = Assert.Throws<VfioNativeException>(() => host.Open("/nonexistent/vfio"));
        Assert.Equal("open", e.Operation);
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Equal("/nonexistent/vfio", e.Target);
    }

    [Fact]
    public void EveryCallIsTracedWithItsResult()
    {
        var seen = new List<SyscallRecord>();
        var host = new VfioHost(LinuxKernel.Instance) { Trace = seen.Add };
        using (SafeFd fd = host.Open("/dev/null"))
        {
            host.TryIoctlValue(fd, VfioIoctl.VFIO_CHECK_EXTENSION, 3);
        }
        Assert.Equal("open", seen[0].Operation);
        Assert.Equal("VFIO_CHECK_EXTENSION", seen[1].Operation);
        Assert.Equal(-Errno.ENOTTY, seen[1].Result);
        Assert.Contains("ENOTTY", seen[1].ToString());
    }

    [Fact]
    public void DisposingTheHandleClosesTheDescriptorThroughItsKernelOnce()
    {
        var kernel = new CountingKernel();
        var host = new VfioHost(kernel);
        SafeFd fd = host.Open("/dev/null");
        fd.Dispose();
        fd.Dispose();
        Assert.True(fd.IsClosed);
        Assert.Equal(1, kernel.Closes);
    }

    /// <summary>The Linux kernel, counting close calls.</summary>
    private sealed class CountingKernel : IVfioKernel
    {
        private readonly IVfioKernel _k = LinuxKernel.Instance;
        public int Closes;
        public HostKind Kind => _k.Kind;
        public string Description => _k.Description;
        public IHostFiles Files => _k.Files;

        public IHostClock Clock => _k.Clock;
        public int Open(string path, int flags) => _k.Open(path, flags);
        public int Close(int fd) { Closes++; return _k.Close(fd); }
        public int Ioctl(int fd, uint request, Span<byte> arg) => _k.Ioctl(fd, request, arg);
        public int Ioctl(int fd, uint request, ulong value) => _k.Ioctl(fd, request, value);
        public long Pread(int fd, Span<byte> buffer, long offset) => _k.Pread(fd, buffer, offset);
        public long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset) => _k.Pwrite(fd, buffer, offset);
        public long Read(int fd, Span<byte> buffer) => _k.Read(fd, buffer);
        public long Write(int fd, ReadOnlySpan<byte> buffer) => _k.Write(fd, buffer);
        public nint Mmap(nint length, long offset, int prot, int flags, int fd) => _k.Mmap(length, offset, prot, flags, fd);
        public int Munmap(nint address, nint length) => _k.Munmap(address, length);
        public int Poll(int fd, short events, int timeoutMs, out short revents) => _k.Poll(fd, events, timeoutMs, out revents);
    }
}
