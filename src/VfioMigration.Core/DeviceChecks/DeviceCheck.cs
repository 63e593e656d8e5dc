using System;
using System.Collections.Generic;

namespace VfioMigration.Core.DeviceChecks;

/// <summary>How binding a rule is: the kernel's contract says "must", or good practice that VMMs rely on.</summary>
public enum CheckSeverity
{
    /// <summary>The contract requires it: a driver that fails it breaks migration (or the kernel's own rules).</summary>
    Must,

    /// <summary>Recommended by the contract, or relied on by VMMs (QEMU's downtime estimate, validation of incoming data).</summary>
    Should,
}

/// <summary>What became of one check.</summary>
public enum CheckOutcome
{
    Passed,
    Failed,
    Skipped,
}

/// <summary>
/// One conformance check of a migration driver: the rule it holds the device to, where the rule is written,
/// and the code that asks the device. Checks are defined once (DeviceCheckCatalog) and run unchanged on the
/// simulated host and on a real kernel.
/// </summary>
public sealed class DeviceCheck
{
    internal DeviceCheck(string id, string area, CheckSeverity severity, string rule, string source, Action<DeviceCheckContext> run,
        Func<DeviceCheckContext, string?>? applies = null, bool needsPeer = false)
    {
        Id = id;
        Area = area;
        Severity = severity;
        Rule = rule;
        Source = source;
        Run = run;
        Applies = applies ?? (_ => null);
        NeedsPeer = needsPeer;
    }

    /// <summary>Stable id, "area.what" (JUnit test-case names, -Check filters and docs/conformance.md use it).</summary>
    public string Id { get; }

    /// <summary>Protocol, Arcs, DataFd, PreCopy, Resuming, P2P, DmaLogging or V1.</summary>
    public string Area { get; }

    public CheckSeverity Severity { get; }

    /// <summary>The rule, in one sentence a driver author can act on.</summary>
    public string Rule { get; }

    /// <summary>Where the rule is written (the header comment, the core function, the document).</summary>
    public string Source { get; }

    /// <summary>True if the check restores into a second device (-Peer); without one it restores into the device itself.</summary>
    public bool NeedsPeer { get; }

    internal Action<DeviceCheckContext> Run { get; }

    /// <summary>Null if the check applies to the device, else why it is skipped (a capability the device does not claim).</summary>
    internal Func<DeviceCheckContext, string?> Applies { get; }

    public override string ToString() => Id;
}

/// <summary>What one check found.</summary>
public sealed class DeviceCheckResult
{
    public required string Id { get; init; }

    public required string Area { get; init; }

    public required CheckSeverity Severity { get; init; }

    public required string Rule { get; init; }

    public required string Source { get; init; }

    public required CheckOutcome Outcome { get; init; }

    /// <summary>For a failure: what the rule expected.</summary>
    public string? Expected { get; init; }

    /// <summary>For a failure: what the device did. For a skip: why the check did not run.</summary>
    public string? Actual { get; init; }

    /// <summary>The system calls of the check, in order, as the -Verbose trace prints them (the failing step last).</summary>
    public IReadOnlyList<string> Trace { get; init; } = Array.Empty<string>();

    /// <summary>What was done after the check to leave the device in RUNNING, if anything was needed.</summary>
    public string? Cleanup { get; init; }

    public required TimeSpan Duration { get; init; }

    public override string ToString() => $"{Outcome} {Id}";
}
