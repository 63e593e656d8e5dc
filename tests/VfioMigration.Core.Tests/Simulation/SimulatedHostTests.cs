using System.Linq;
using VfioMigration.Core.Discovery;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using Xunit;

namespace VfioMigration.Core.Tests.Simulation;

public class SimulatedHostTests
{
    [Fact]
    public void DiscoveryReadsTheSimulatedSysfsWithTheSamePathsAsLinux()
    {
        var kernel = new SimulatedKernel(SimTopologies.Lab());
        var groups = IommuGroupDiscovery.GetGroups(kernel);
        Assert.Equal(new[] { 2, 3, 7, 8 }, groups.Select(g => g.Group));
        Assert.All(groups, g => Assert.Equal(HostKind.Simulated, g.HostKind));
        var edu = Assert.Single(groups[0].Devices);
        Assert.Equal(("pci", 0x1234, 0x11e8, "vfio-pci"), (edu.Bus, edu.VendorId!.Value, edu.DeviceId!.Value, edu.Driver!));
        var mtty = Assert.Single(groups[2].Devices);
        Assert.Equal(("mdev", "mtty-2", "mtty"), (mtty.Bus, mtty.MdevType!, mtty.Driver!));
        Assert.True(IommuGroupDiscovery.IsVfioPresent(kernel));
        Assert.Contains("simulated", groups[0].Host);
    }

    [Fact]
    public void AGroupCanBeOpenedByOneOpenerAtATime()
    {
        var host = new VfioHost(new SimulatedKernel(SimTopologies.Lab()));
        using var group = host.Open("/dev/vfio/2");
        var e = Assert.Throws<VfioNativeException>(() => host.Open("/dev/vfio/2"));
        Assert.Equal(Errno.EBUSY, e.Errno);
        group.Dispose();
        using var again = host.Open("/dev/vfio/2");
    }

    [Fact]
    public void AGroupHeldByAnotherProcessAnswersEbusyAndProcShowsTheHolder()
    {
        var config = SimTopologies.Lab();
        config.Groups[1].HeldBy = new SimHolder { Pid = 4242, Command = "qemu-system-x86_64" };
        var kernel = new SimulatedKernel(config);
        var e = Assert.Throws<VfioNativeException>(() => new VfioHost(kernel).Open("/dev/vfio/3"));
        Assert.Equal(Errno.EBUSY, e.Errno);
        Assert.Equal("qemu-system-x86_64", kernel.Files.ReadText("/proc/4242/comm"));
        Assert.Equal("/dev/vfio/3", kernel.Files.ReadLink("/proc/4242/fd/17"));
    }

    [Fact]
    public void UnknownPathsAreEnoent()
    {
        var host = new VfioHost(new SimulatedKernel(SimTopologies.Lab()));
        Assert.Equal(Errno.ENOENT, Assert.Throws<VfioNativeException>(() => host.Open("/dev/vfio/99")).Errno);
    }
}
