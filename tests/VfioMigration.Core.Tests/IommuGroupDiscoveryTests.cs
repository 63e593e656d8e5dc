using System;
using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Discovery;
using VfioMigration.Core.Kernel;
using Xunit;

namespace VfioMigration.Core.Tests;

public class IommuGroupDiscoveryTests
{
    [Fact]
    public void ReadsGroupsDevicesAndDriversFromSysfs()
    {
        var files = new FakeFiles();
        files.Dir("/sys/kernel/iommu_groups", "2", "7", "notes");
        files.Dir("/sys/kernel/iommu_groups/2/devices", "0000:00:02.0");
        files.Link("/sys/kernel/iommu_groups/2/devices/0000:00:02.0/subsystem", "../../../bus/pci");
        files.Link("/sys/kernel/iommu_groups/2/devices/0000:00:02.0/driver", "../../../bus/pci/drivers/vfio-pci");
        files.Text("/sys/kernel/iommu_groups/2/devices/0000:00:02.0/vendor", "0x1234");
        files.Text("/sys/kernel/iommu_groups/2/devices/0000:00:02.0/device", "0x11e8");
        files.Dir("/sys/kernel/iommu_groups/7/devices", "36e5c7cc-4871-4d03-91da-44479a60a911");
        files.Link("/sys/kernel/iommu_groups/7/devices/36e5c7cc-4871-4d03-91da-44479a60a911/subsystem", "../../../bus/mdev");
        files.Link("/sys/kernel/iommu_groups/7/devices/36e5c7cc-4871-4d03-91da-44479a60a911/driver", "../../../bus/mdev/drivers/mtty");
        files.Link("/sys/kernel/iommu_groups/7/devices/36e5c7cc-4871-4d03-91da-44479a60a911/mdev_type", "../mdev_supported_types/mtty-2");
        files.Node("/dev/vfio/vfio");
        files.Node("/dev/vfio/2");

        var kernel = new FilesOnlyKernel(files);
        var groups = IommuGroupDiscovery.GetGroups(kernel);

        Assert.Equal(new[] { 2, 7 }, groups.Select(g => g.Group));
        var pci = Assert.Single(groups[0].Devices);
        Assert.Equal("pci", pci.Bus);
        Assert.Equal(0x1234, pci.VendorId);
        Assert.Equal(0x11e8, pci.DeviceId);
        Assert.Equal("vfio-pci", pci.Driver);
        Assert.True(pci.BoundToVfio);
        Assert.True(groups[0].DeviceNodeExists);
        var mdev = Assert.Single(groups[1].Devices);
        Assert.Equal("mdev", mdev.Bus);
        Assert.Equal("mtty-2", mdev.MdevType);
        Assert.Null(mdev.VendorId);
        Assert.False(groups[1].DeviceNodeExists);
        Assert.True(IommuGroupDiscovery.IsVfioPresent(kernel));
        Assert.Null(IommuGroupDiscovery.FindGroup(kernel, 3));
    }

    [Fact]
    public void NoSysfsMeansNoGroupsAndNoVfio()
    {
        var kernel = new FilesOnlyKernel(new FakeFiles());
        Assert.Empty(IommuGroupDiscovery.GetGroups(kernel));
        Assert.False(IommuGroupDiscovery.IsVfioPresent(kernel));
    }

    [Theory]
    [InlineData("0000:00:02.0", true)]
    [InlineData("0000:3b:00.1", true)]
    [InlineData("36e5c7cc-4871-4d03-91da-44479a60a911", false)]
    [InlineData("00:02.0", false)]
    public void RecognisesPciAddresses(string name, bool expected) => Assert.Equal(expected, IommuGroupDiscovery.IsPciAddress(name));

    internal sealed class FakeFiles : IHostFiles
    {
        private readonly Dictionary<string, string[]> _dirs = new();
        private readonly Dictionary<string, string> _text = new();
        private readonly Dictionary<string, string> _links = new();
        private readonly HashSet<string> _nodes = new();
        public void Dir(string path, params string[] names) => _dirs[path] = names;
        public void Text(string path, string text) => _text[path] = text;
        public void Link(string path, string target) => _links[path] = target;
        public void Node(string path) => _nodes.Add(path);
        public bool Exists(string path) => _nodes.Contains(path) || _text.ContainsKey(path) || _dirs.ContainsKey(path);
        public bool DirectoryExists(string path) => _dirs.ContainsKey(path) || _dirs.Keys.Any(k => k.StartsWith(path + "/", StringComparison.Ordinal));
        public string? ReadText(string path) => _text.TryGetValue(path, out var t) ? t : null;
        public string[] List(string path) => _dirs.TryGetValue(path, out var n) ? n : Array.Empty<string>();
        public string? ReadLink(string path) => _links.TryGetValue(path, out var l) ? l : null;
    }

    private sealed class FilesOnlyKernel : IVfioKernel
    {
        public FilesOnlyKernel(IHostFiles files) => Files = files;
        public HostKind Kind => HostKind.Simulated;
        public string Description => "test files";
        public IHostFiles Files { get; }

        public IHostClock Clock => MonotonicClock.Instance;
        public int Open(string path, int flags) => -2;
        public int Close(int fd) => 0;
        public int Ioctl(int fd, uint request, Span<byte> arg) => -25;
        public int Ioctl(int fd, uint request, ulong value) => -25;
        public long Pread(int fd, Span<byte> buffer, long offset) => -9;
        public long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset) => -9;
        public long Read(int fd, Span<byte> buffer) => -9;
        public long Write(int fd, ReadOnlySpan<byte> buffer) => -9;
        public nint Mmap(nint length, long offset, int prot, int flags, int fd) => -9;
        public int Munmap(nint address, nint length) => 0;
        public int Poll(int fd, short events, int timeoutMs, out short revents) { revents = 0; return -9; }
    }
}
