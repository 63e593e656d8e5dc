using System.Runtime.InteropServices;

namespace VfioMigration.Core.Native;

/// <summary>The errno values (x86_64/aarch64 Linux) the module meets, with their C names.</summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int E2BIG = 7;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EXDEV = 18;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ENOTTY = 25;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int ESPIPE = 29;
    public const int EROFS = 30;
    public const int ERANGE = 34;
    public const int ENAMETOOLONG = 36;
    public const int ELOOP = 40;
    public const int ENOMSG = 42;
    public const int EOVERFLOW = 75;
    public const int EBADFD = 77;
    public const int EMSGSIZE = 90;
    public const int EOPNOTSUPP = 95;
    public const int EADDRINUSE = 98;
    public const int EDQUOT = 122;

    /// <summary>The C name of an errno value ("EINVAL"), or "errno N" for one not listed.</summary>
    public static string Name(int errno) => errno switch
    {
        EPERM => nameof(EPERM),
        ENOENT => nameof(ENOENT),
        EINTR => nameof(EINTR),
        EIO => nameof(EIO),
        ENXIO => nameof(ENXIO),
        E2BIG => nameof(E2BIG),
        EBADF => nameof(EBADF),
        EAGAIN => nameof(EAGAIN),
        ENOMEM => nameof(ENOMEM),
        EACCES => nameof(EACCES),
        EFAULT => nameof(EFAULT),
        EBUSY => nameof(EBUSY),
        EEXIST => nameof(EEXIST),
        EXDEV => nameof(EXDEV),
        ENOTDIR => nameof(ENOTDIR),
        EISDIR => nameof(EISDIR),
        EFBIG => nameof(EFBIG),
        EROFS => nameof(EROFS),
        ENAMETOOLONG => nameof(ENAMETOOLONG),
        ELOOP => nameof(ELOOP),
        EDQUOT => nameof(EDQUOT),
        ENODEV => nameof(ENODEV),
        EINVAL => nameof(EINVAL),
        ENOTTY => nameof(ENOTTY),
        ENOSPC => nameof(ENOSPC),
        ESPIPE => nameof(ESPIPE),
        ERANGE => nameof(ERANGE),
        ENOMSG => nameof(ENOMSG),
        EOVERFLOW => nameof(EOVERFLOW),
        EOPNOTSUPP => nameof(EOPNOTSUPP),
        EBADFD => nameof(EBADFD),
        EMSGSIZE => nameof(EMSGSIZE),
        EADDRINUSE => nameof(EADDRINUSE),
        _ => "errno " + errno,
    };

    /// <summary>The C library's text for an errno value (strerror), e.g. "Invalid argument".</summary>
    public static string Text(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
