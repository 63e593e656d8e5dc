using System.Linq;
using VfioMigration.Core.Discovery;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Infrastructure;

internal static class HostInfo
{
    /// <summary>What the session's host looks like now.</summary>
    public static VfioHostInfo Describe(VfioHost host, string? configuration)
    {
        var groups = IommuGroupDiscovery.GetGroups(host.Kernel);
        return new VfioHostInfo
        {
            Kind = host.Kind,
            Description = host.Description,
            VfioPresent = IommuGroupDiscovery.IsVfioPresent(host.Kernel),
            Groups = groups.Count,
            VfioGroups = groups.Count(g => g.DeviceNodeExists),
            Configuration = configuration,
        };
    }
}
