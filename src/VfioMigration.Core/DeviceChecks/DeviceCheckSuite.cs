using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Core.DeviceChecks;

/// <summary>
/// The conformance suite of a migration driver (Test-VfioDevice): every check of the catalog that the
/// selection keeps, one after the other, each ending with the device back in RUNNING whatever happened.
/// </summary>
public static class DeviceCheckSuite
{
    /// <summary>The areas, in the order the suite runs them.</summary>
    public static IReadOnlyList<string> Areas => s_areas;

    private static readonly string[] s_areas = { "Protocol", "Arcs", "DataFd", "PreCopy", "Resuming", "P2P", "DmaLogging", "V1" };

    /// <summary>Every check, in the order the suite runs them.</summary>
    public static IReadOnlyList<DeviceCheck> Catalog { get; } =
        V2Checks.All().Concat(LogAndV1Checks.All()).OrderBy(c => Array.IndexOf(s_areas, c.Area)).ToList();

    /// <summary>
    /// Runs the checks of <paramref name="areas"/> (all when empty) at <paramref name="severity"/> (all when
    /// null) against <paramref name="device"/>, restoring into <paramref name="peer"/> where a check restores.
    /// <paramref name="progress"/> hears (checks done, checks in all, the check starting).
    /// </summary>
    public static DeviceCheckReport Run(VfioDevice device, VfioDevice? peer, VfioContainer? container,
        IReadOnlyCollection<string>? areas = null, CheckSeverity? severity = null, IReadOnlyCollection<string>? ids = null,
        Action<int, int, DeviceCheck>? progress = null, CancellationToken cancel = default)
    {
        var selected = Catalog.Where(c => (areas is null || areas.Count == 0 || areas.Contains(c.Area, StringComparer.OrdinalIgnoreCase))
            && (severity is null || c.Severity == severity)
            && (ids is null || ids.Count == 0 || ids.Contains(c.Id, StringComparer.OrdinalIgnoreCase))).ToList();
        var started = DateTimeOffset.Now;
        var clock = Stopwatch.StartNew();
        var results = new List<DeviceCheckResult>();
        string? abandoned = null;
        // The suite drives the device with its own calls: the module's session state must not point at fds it closes.
        Settle(device);
        if (peer is not null) Settle(peer);
        for (int i = 0; i < selected.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var check = selected[i];
            progress?.Invoke(i, selected.Count, check);
            if (abandoned is not null)
            {
                results.Add(Skipped(check, abandoned, TimeSpan.Zero));
                continue;
            }
            var result = RunOne(check, device, peer, container);
            results.Add(result);
            if (result.Cleanup is { } cleanup && cleanup.StartsWith("left in", StringComparison.Ordinal))
                abandoned = $"an earlier check ({check.Id}) could not bring the device back to RUNNING: {cleanup}";
        }
        if (selected.Count > 0) progress?.Invoke(selected.Count, selected.Count, selected[^1]);
        return new DeviceCheckReport
        {
            Device = device.Name,
            Peer = peer?.Name,
            Driver = device.Sysfs.Driver ?? "none",
            Model = device.Identity.Model,
            Protocol = device.Migration.Protocol,
            Flags = MigrationFsm.FlagNames(device.Migration.Flags),
            Kernel = device.Host.Kernel.Files.ReadText("/proc/sys/kernel/osrelease") ?? (device.Host.Kind == HostKind.Simulated ? "simulated" : "unknown"),
            Host = device.Host.Description,
            HostKind = device.Host.Kind,
            Started = started,
            Duration = clock.Elapsed,
            Results = results,
        };
    }

    private static DeviceCheckResult RunOne(DeviceCheck check, VfioDevice device, VfioDevice? peer, VfioContainer? container)
    {
        var clock = Stopwatch.StartNew();
        var trace = new List<string>();
        var host = device.Host;
        var previous = host.Trace;
        host.Trace = r => { trace.Add(r.ToString()); previous?.Invoke(r); };
        var context = new DeviceCheckContext(device, peer, container);
        CheckOutcome outcome = CheckOutcome.Passed;
        string? expected = null, actual = null;
        try
        {
            if (check.Applies(context) is { } reason)
            {
                outcome = CheckOutcome.Skipped;
                actual = reason;
            }
            else
            {
                check.Run(context);
            }
        }
        catch (CheckFailedException e)
        {
            (outcome, expected, actual) = (CheckOutcome.Failed, e.Expected, e.Actual);
        }
        catch (CheckSkippedException e)
        {
            (outcome, actual) = (CheckOutcome.Skipped, e.Message);
        }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException)
        {
            // A call the check made without expecting a refusal was refused: the device broke the check's path.
            (outcome, expected, actual) = (CheckOutcome.Failed, "the check's calls to succeed", e.Message);
        }
        finally
        {
            context.Close();
        }
        string? cleanup;
        try
        {
            cleanup = BackToRunning(device);
            if (peer is not null && BackToRunning(peer) is { } p) cleanup = cleanup is null ? $"{peer.Name}: {p}" : $"{cleanup}; {peer.Name}: {p}";
        }
        finally
        {
            host.Trace = previous;
        }
        return new DeviceCheckResult
        {
            Id = check.Id, Area = check.Area, Severity = check.Severity, Rule = check.Rule, Source = check.Source,
            Outcome = outcome, Expected = expected, Actual = actual, Cleanup = cleanup,
            Trace = outcome == CheckOutcome.Failed ? Collapse(trace) : Array.Empty<string>(),
            Duration = clock.Elapsed,
        };
    }

    /// <summary>Runs of the same call (a stream read 64 KiB at a time) as one line with a count: the trace stays readable.</summary>
    private static IReadOnlyList<string> Collapse(List<string> trace)
    {
        var lines = new List<string>();
        for (int i = 0; i < trace.Count;)
        {
            int j = i;
            while (j < trace.Count && trace[j] == trace[i]) j++;
            lines.Add(j - i == 1 ? trace[i] : $"{trace[i]} (x{j - i})");
            i = j;
        }
        return lines;
    }

    private static DeviceCheckResult Skipped(DeviceCheck check, string why, TimeSpan duration) => new()
    {
        Id = check.Id, Area = check.Area, Severity = check.Severity, Rule = check.Rule, Source = check.Source,
        Outcome = CheckOutcome.Skipped, Actual = why, Duration = duration,
    };

    /// <summary>Before the suite: the device in RUNNING through the module (which closes its own data session), no log of this session running.</summary>
    private static void Settle(VfioDevice device)
    {
        if (device.Migration.Protocol == MigrationProtocol.None) return;
        if (DeviceMigration.GetState(device) != VfioMigrationState.Running)
        {
            try { DeviceMigration.SetState(device, VfioMigrationState.Running); }
            catch (Exception e) when (e is VfioNativeException or VfioRuleException or MigrationTransitionException) { DeviceMigration.Reset(device); }
        }
    }

    /// <summary>
    /// After each check: the device in RUNNING with no session open, by a SET (the kernel's path) and, where
    /// that fails or the device is in ERROR or RESUMING, a reset. Null if nothing was needed, else what was
    /// done; "left in ..." when the device could not be brought back.
    /// </summary>
    internal static string? BackToRunning(VfioDevice device)
    {
        device.DataFd = null;
        if (device.Migration.Protocol == MigrationProtocol.None) return null;
        VfioMigrationState state;
        try { state = DeviceMigration.GetState(device); }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException) { return $"left in an unknown state: {e.Message}"; }
        if (state == VfioMigrationState.Running) return null;
        string done;
        // Out of RESUMING too: a driver may take an empty or partial stream; one that refuses gets the reset.
        if (state != VfioMigrationState.Error)
        {
            try
            {
                DeviceMigration.SetState(device, VfioMigrationState.Running);
                device.DataFd = null;
                if (DeviceMigration.GetState(device) == VfioMigrationState.Running) return $"{MigrationFsm.Name(state)} -> RUNNING";
            }
            catch (Exception e) when (e is VfioNativeException or VfioRuleException or MigrationTransitionException) { }
        }
        int rc = device.Host.TryIoctlValue(device.Fd, VfioIoctl.VFIO_DEVICE_RESET, 0);
        device.DataFd = null;
        VfioMigrationState after;
        try { after = DeviceMigration.GetState(device); }
        catch (Exception e) when (e is VfioNativeException or VfioRuleException) { return $"left in an unknown state after VFIO_DEVICE_RESET: {e.Message}"; }
        done = rc == 0 ? $"VFIO_DEVICE_RESET from {MigrationFsm.Name(state)}" : $"VFIO_DEVICE_RESET from {MigrationFsm.Name(state)} answered {Errno.Name(-rc)}";
        return after == VfioMigrationState.Running ? done : $"left in {MigrationFsm.Name(after)}: {done}";
    }
}
