using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Infrastructure;

/// <summary>
/// The host this PowerShell session talks to. It starts as this machine's Linux kernel; the
/// simulated host is chosen explicitly (Connect-VfioHost -Simulated), never silently.
/// </summary>
public static class VfioSession
{
    private static readonly object s_lock = new();
    private static VfioHost s_host = new(LinuxKernel.Instance);

    /// <summary>The current host.</summary>
    public static VfioHost Host
    {
        get { lock (s_lock) return s_host; }
    }

    private static string? s_configuration;

    /// <summary>The configuration file of the simulated host, if the session is connected to one.</summary>
    public static string? Configuration
    {
        get { lock (s_lock) return s_configuration; }
    }

    /// <summary>Switches the session to another host.</summary>
    public static void Connect(VfioHost host, string? configuration = null)
    {
        lock (s_lock)
        {
            s_host = host;
            s_configuration = configuration;
        }
    }
}
