using System;
using System.Management.Automation;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Infrastructure;

/// <summary>Shared plumbing of the module's cmdlets: the session's host and error records.</summary>
public abstract class VfioCmdlet : PSCmdlet
{
    /// <summary>The host the session talks to.</summary>
    protected static VfioHost CurrentHost => VfioSession.Host;

    /// <summary>
    /// An ErrorRecord for a failed system call: the id names the failure, the category follows errno,
    /// and the message names the ioctl, the target and errno.
    /// </summary>
    protected static ErrorRecord SyscallError(VfioNativeException e, string errorId, object? target)
    {
        var record = new ErrorRecord(e, errorId, CategoryFor(e.Errno), target);
        record.ErrorDetails = new ErrorDetails(e.Message);
        return record;
    }

    /// <summary>An ErrorRecord for a rule the module checks itself.</summary>
    protected static ErrorRecord RuleError(string message, string errorId, ErrorCategory category, object? target) =>
        new(new InvalidOperationException(message), errorId, category, target) { ErrorDetails = new ErrorDetails(message) };

    /// <summary>errno to PowerShell's error category, in one place.</summary>
    public static ErrorCategory CategoryFor(int errno) => errno switch
    {
        Errno.ENOENT or Errno.ENODEV or Errno.ENXIO => ErrorCategory.ObjectNotFound,
        Errno.EACCES or Errno.EPERM => ErrorCategory.PermissionDenied,
        Errno.EBUSY => ErrorCategory.ResourceBusy,
        Errno.EINVAL or Errno.EOVERFLOW or Errno.ERANGE => ErrorCategory.InvalidArgument,
        Errno.ENOTTY or Errno.EOPNOTSUPP => ErrorCategory.NotImplemented,
        Errno.E2BIG or Errno.ENOSPC => ErrorCategory.LimitsExceeded,
        Errno.ENOMEM => ErrorCategory.ResourceUnavailable,
        Errno.EIO => ErrorCategory.DeviceError,
        _ => ErrorCategory.InvalidOperation,
    };
}
