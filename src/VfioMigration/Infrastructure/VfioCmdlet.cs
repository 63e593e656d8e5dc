using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Files;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Infrastructure;

/// <summary>Shared plumbing of the module's cmdlets: the session's host, error records and the -Verbose trace.</summary>
public abstract class VfioCmdlet : PSCmdlet, IDisposable
{
    private readonly System.Threading.CancellationTokenSource _stopping = new();

    /// <summary>Cancelled when the user presses Ctrl+C (StopProcessing): long work stops and cleans up.</summary>
    protected System.Threading.CancellationToken StopToken => _stopping.Token;

    protected override void StopProcessing() => _stopping.Cancel();

    public void Dispose() => _stopping.Dispose();

    /// <summary>The host the session talks to.</summary>
    protected static VfioHost CurrentHost => VfioSession.Host;

    /// <summary>
    /// While the returned scope lives, every system call through the seam is written as a verbose message
    /// with its arguments and result (what -Verbose shows).
    /// </summary>
    protected IDisposable TraceCalls()
    {
        var host = CurrentHost;
        bool verbose = MyInvocation.BoundParameters.TryGetValue("Verbose", out var v) ? ((SwitchParameter)v).IsPresent
            : GetVariableValue("VerbosePreference") is ActionPreference p && p != ActionPreference.SilentlyContinue;
        if (!verbose) return NoScope.Instance;
        var previous = host.Trace;
        host.Trace = r => WriteVerbose(r.ToString());
        return new Scope(() => host.Trace = previous);
    }

    /// <summary>An ErrorRecord for what Core threw: rule errors keep their rule id, system calls name operation and errno.</summary>
    protected static ErrorRecord ErrorFor(Exception e, object? target) => e switch
    {
        VfioRuleException r => RuleError(r.Message, r.RuleId, CategoryForRule(r.RuleId), target),
        MigrationFailedException m => new ErrorRecord(m, m.ErrorId, CategoryForRule(m.ErrorId), target) { ErrorDetails = new ErrorDetails(m.Message) },
        VfioNativeException n => SyscallError(n, n.Operation == "open" ? ErrorIds.OpenFailed : ErrorIds.SyscallFailed, target),
        _ => new ErrorRecord(e, ErrorIds.Unexpected, ErrorCategory.NotSpecified, target),
    };

    /// <summary>True for the exceptions Core raises for a request or a kernel answer (not bugs).</summary>
    protected static bool IsVfioError(Exception e) => e is VfioRuleException or VfioNativeException or VfioCapabilityChainException or MigrationFailedException;

    /// <summary>
    /// A warning that reaches the user even when the pipeline is stopping (Ctrl+C): WriteWarning throws
    /// then, so the host's console gets it directly.
    /// </summary>
    protected void WarnEvenIfStopped(string text)
    {
        try
        {
            WriteWarning(text);
        }
        catch (PipelineStoppedException)
        {
            try { Host?.UI?.WriteWarningLine(text); }
            catch (Exception e) when (e is not OutOfMemoryException) { /* a host without a console: the text has nowhere to go */ }
        }
    }

    /// <summary>Write-Progress, with the percentage and the time remaining when the whole is known.</summary>
    protected void WriteTransferProgress(ProgressRecord record, MigrationProgress p, string moved = "moved")
    {
        record.CurrentOperation = p.Step;
        record.StatusDescription = $"{p.Step}: {Readable.Bytes(p.Moved)} {moved}" + (p.Pending is { } left ? $", {Readable.Bytes(left)} remaining" : "");
        record.PercentComplete = p.PercentComplete;
        record.SecondsRemaining = SecondsRemaining(record, p.PercentComplete);
        WriteProgress(record);
    }

    // When each progress bar started: the time remaining is the time so far scaled by what is left.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<ProgressRecord, System.Diagnostics.Stopwatch> _progressClocks = new();

    /// <summary>Seconds left at the pace so far for a bar at <paramref name="percent"/> (-1 while unknown).</summary>
    protected int SecondsRemaining(ProgressRecord record, int percent)
    {
        var clock = _progressClocks.GetValue(record, _ => System.Diagnostics.Stopwatch.StartNew());
        if (percent <= 0 || percent >= 100) return percent >= 100 ? 0 : -1;
        double elapsed = clock.Elapsed.TotalSeconds;
        return (int)Math.Ceiling(elapsed * (100 - percent) / percent);
    }

    /// <summary>Where a failed or cancelled save, restore or migration left things, for the user: a warning for a stop, an error otherwise.</summary>
    protected void ReportAborted(MigrationFailedException e, object target)
    {
        if (e.Status == MigrationStatus.Cancelled) WarnEvenIfStopped(e.Message);
        else WriteError(ErrorFor(e, target));
    }

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

    /// <summary>The category of a registered id (Core's ErrorIds, whose kinds carry ErrorCategory's names).</summary>
    protected static ErrorCategory CategoryForRule(string ruleId) => Enum.Parse<ErrorCategory>(ErrorIds.KindOf(ruleId).ToString());

    /// <summary>An ErrorRecord for a registered id: its category comes from the registry.</summary>
    protected static ErrorRecord RuleError(string message, string errorId, object? target) => RuleError(message, errorId, CategoryForRule(errorId), target);

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

    /// <summary>
    /// The containers a cmdlet works on: those piped or given, else the one container of the session.
    /// With none or several and no choice made, a terminating error says what to do.
    /// </summary>
    protected VfioContainer[] ResolveContainers(VfioContainer[]? given, int[]? ids)
    {
        if (given is { Length: > 0 }) return given;
        var open = VfioSession.Containers;
        if (ids is { Length: > 0 })
        {
            var found = new List<VfioContainer>();
            foreach (int id in ids)
            {
                var c = open.FirstOrDefault(x => x.Id == id);
                if (c is null) WriteError(RuleError($"This session holds no container {id} (Get-VfioContainer lists them).", ErrorIds.ContainerNotFound, ErrorCategory.ObjectNotFound, id));
                else found.Add(c);
            }
            return found.ToArray();
        }
        if (open.Count == 1) return new[] { open[0] };
        ThrowTerminatingError(RuleError(open.Count == 0
                ? "This session holds no container: create one with New-VfioContainer -Group <n>."
                : $"This session holds {open.Count} containers ({string.Join(", ", open.Select(c => c.Id))}): name one with -ContainerId or pipe it.",
            open.Count == 0 ? ErrorIds.ContainerNotFound : ErrorIds.ContainerAmbiguous, ErrorCategory.InvalidOperation, null));
        return Array.Empty<VfioContainer>();
    }

    /// <summary>
    /// A device held open by the container of this session that holds its group, or null after writing an
    /// error that says how to open one.
    /// </summary>
    protected VfioDevice? OpenSessionDevice(string name)
    {
        var container = VfioSession.Containers.FirstOrDefault(c => c.HoldsDevice(name));
        if (container is null)
        {
            WriteError(RuleError($"No container of this session holds the group of '{name}'. Open one first: New-VfioContainer -Device {name}",
                ErrorIds.DeviceNotInContainer, ErrorCategory.InvalidOperation, name));
            return null;
        }
        try
        {
            return container.GetDevice(name);
        }
        catch (Exception e) when (IsVfioError(e))
        {
            WriteError(ErrorFor(e, name));
            return null;
        }
    }

    private sealed class NoScope : IDisposable
    {
        public static readonly NoScope Instance = new();

        public void Dispose() { }
    }

    private sealed class Scope : IDisposable
    {
        private readonly Action _end;

        public Scope(Action end) => _end = end;

        public void Dispose() => _end();
    }
}
