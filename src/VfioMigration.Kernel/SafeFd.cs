using Microsoft.Win32.SafeHandles;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Native;

/// <summary>
/// An open file descriptor of some <see cref="IVfioKernel"/>, closed exactly once through that kernel.
/// Derives from <see cref="SafeHandleMinusOneIsInvalid"/> because fd 0 is a valid descriptor.
/// </summary>
public sealed class SafeFd : SafeHandleMinusOneIsInvalid
{
    public SafeFd(IVfioKernel kernel, int fd, string target) : base(ownsHandle: true)
    {
        Kernel = kernel;
        Target = target;
        SetHandle(fd);
    }

    /// <summary>The kernel that issued the descriptor.</summary>
    public IVfioKernel Kernel { get; }

    /// <summary>What the descriptor refers to (a path, a device name, "data_fd of ..."), for messages.</summary>
    public string Target { get; }

    /// <summary>The descriptor number; valid while the handle is open.</summary>
    public int Number => (int)handle;

    protected override bool ReleaseHandle() => Kernel.Close((int)handle) == 0;

    public override string ToString() => $"fd {(int)handle} ({Target})";
}
