using System.Collections.Generic;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Infrastructure;

/// <summary>
/// The host this PowerShell session talks to, and the containers the session holds on it. It starts as
/// this machine's Linux kernel; the simulated host is chosen explicitly (Connect-VfioHost -Simulated),
/// never silently. Leaving a host closes the containers held on it.
/// </summary>
public static class VfioSession
{
    private static readonly object s_lock = new();
    private static readonly List<VfioContainer> s_containers = new();
    private static VfioHost s_host = new(LinuxKernel.Instance);
    private static string? s_configuration;
    private static readonly List<MigrationReport> s_migrations = new();

    /// <summary>The most migration reports the session keeps (the oldest go first).</summary>
    public const int MigrationsKept = 100;

    /// <summary>The current host.</summary>
    public static VfioHost Host
    {
        get { lock (s_lock) return s_host; }
    }

    /// <summary>The configuration file of the simulated host, if the session is connected to one.</summary>
    public static string? Configuration
    {
        get { lock (s_lock) return s_configuration; }
    }

    /// <summary>Switches the session to another host, closing the containers held on the previous one.</summary>
    public static void Connect(VfioHost host, string? configuration = null)
    {
        VfioContainer[] closing;
        lock (s_lock)
        {
            closing = s_containers.ToArray();
            s_containers.Clear();
            s_host = host;
            s_configuration = configuration;
        }
        foreach (var c in closing) c.Dispose();
    }

    /// <summary>The open containers of the session, by id.</summary>
    public static IReadOnlyList<VfioContainer> Containers
    {
        get
        {
            lock (s_lock)
            {
                s_containers.RemoveAll(c => c.IsClosed);
                return s_containers.OrderBy(c => c.Id).ToArray();
            }
        }
    }

    public static void Add(VfioContainer container)
    {
        lock (s_lock) s_containers.Add(container);
    }

    public static void Remove(VfioContainer container)
    {
        lock (s_lock) s_containers.Remove(container);
    }

    /// <summary>
    /// The reports of the session's migrations, oldest first: what Get-VfioMigration shows, like QEMU's
    /// query-migrate after the fact. A migration stopped with Ctrl+C cannot write its report to the
    /// stopped pipeline; it is kept here.
    /// </summary>
    public static IReadOnlyList<MigrationReport> Migrations
    {
        get { lock (s_lock) return s_migrations.ToArray(); }
    }

    public static void RecordMigration(MigrationReport report)
    {
        lock (s_lock)
        {
            s_migrations.Add(report);
            if (s_migrations.Count > MigrationsKept) s_migrations.RemoveAt(0);
        }
    }
}
