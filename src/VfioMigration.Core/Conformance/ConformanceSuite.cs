using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Conformance;

/// <summary>
/// One observed answer of a kernel: a step name and what came back ("0", "EINVAL", "bits 512/512").
/// Two kernels conform when they give the same observations for the same scenario.
/// </summary>
public readonly record struct Observation(string Scenario, string Step, string Answer)
{
    public override string ToString() => $"{Scenario} | {Step} | {Answer}";
}

/// <summary>What a scenario runs against: a host and the groups/devices it may use (they must be free).</summary>
public sealed class ConformanceTarget
{
    public required VfioHost Host { get; init; }

    /// <summary>A group whose devices sit behind the IOMMU (vfio-pci), e.g. the lab's edu device.</summary>
    public int? IommuGroup { get; init; }

    /// <summary>An mdev group (no IOMMU, pinned-page scope), e.g. the lab's mtty.</summary>
    public int? MdevGroup { get; init; }

    /// <summary>The v2 migration device in <see cref="MdevGroup"/> (mtty in the lab).</summary>
    public string? MdevDevice { get; init; }

    /// <summary>A device without migration support in <see cref="IommuGroup"/>.</summary>
    public string? IommuDevice { get; init; }

    /// <summary>A second mdev group with a device of the same type as <see cref="MdevDevice"/> (the lab's second mtty): restores go there.</summary>
    public int? PeerMdevGroup { get; init; }

    /// <summary>The device in <see cref="PeerMdevGroup"/>.</summary>
    public string? PeerMdevDevice { get; init; }
}

/// <summary>
/// A scenario of the conformance suite: a sequence of raw system calls through the seam, recording each
/// answer. Scenarios state the kernel's behaviour as kernel-interface.md (lab) observed it on Linux 6.12; the suite runs
/// unchanged on the simulated host (every test run) and on the real kernel (the QEMU lab).
/// </summary>
public abstract class ConformanceScenario
{
    /// <summary>Short stable name, used in reports and expected-answer files.</summary>
    public abstract string Name { get; }

    /// <summary>Whether the target has what the scenario needs.</summary>
    public abstract bool AppliesTo(ConformanceTarget target);

    /// <summary>Runs the scenario, reporting each observation.</summary>
    public abstract void Run(ConformanceTarget target, ConformanceRecorder recorder);
}

/// <summary>Collects observations; helpers turn results into the suite's answer vocabulary.</summary>
public sealed class ConformanceRecorder
{
    private readonly List<Observation> _observations = new();
    private string _scenario = "";

    public IReadOnlyList<Observation> Observations => _observations;

    internal void Begin(string scenario) => _scenario = scenario;

    /// <summary>Records a free-form answer.</summary>
    public void Record(string step, string answer) => _observations.Add(new Observation(_scenario, step, answer));

    /// <summary>Records a syscall result: the value if non-negative, else the errno's C name.</summary>
    public long Result(string step, long result)
    {
        Record(step, Answer(result));
        return result;
    }

    /// <summary>The answer text of a result: "0", "1", or "EINVAL".</summary>
    public static string Answer(long result) =>
        result < 0 ? Errno.Name((int)-result) : result.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Runs scenarios and compares observation lists.</summary>
public static class ConformanceRunner
{
    /// <summary>Every scenario of the suite, in order.</summary>
    public static IReadOnlyList<ConformanceScenario> Scenarios { get; } = typeof(ConformanceScenario).Assembly.GetTypes()
        .Where(t => !t.IsAbstract && typeof(ConformanceScenario).IsAssignableFrom(t))
        .Select(t => (ConformanceScenario)Activator.CreateInstance(t)!)
        .OrderBy(s => s.Name, StringComparer.Ordinal)
        .ToArray();

    /// <summary>Runs every applicable scenario (or the named ones) and returns the observations.</summary>
    public static IReadOnlyList<Observation> Run(ConformanceTarget target, IEnumerable<string>? only = null)
    {
        var recorder = new ConformanceRecorder();
        var names = only?.ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var s in Scenarios)
        {
            if (names is not null && !names.Contains(s.Name)) continue;
            if (!s.AppliesTo(target)) continue;
            recorder.Begin(s.Name);
            try
            {
                s.Run(target, recorder);
            }
            catch (VfioNativeException e)
            {
                recorder.Record("unexpected failure", $"{e.Operation} {e.ErrnoName}");
            }
        }
        return recorder.Observations;
    }

    /// <summary>
    /// The differences between two runs, step by step: every step of either side whose answers differ or
    /// that only one side has. Empty when the kernels conform.
    /// </summary>
    public static IReadOnlyList<(string Scenario, string Step, string? Left, string? Right)> Compare(
        IReadOnlyList<Observation> left, IReadOnlyList<Observation> right)
    {
        var diff = new List<(string, string, string?, string?)>();
        int n = Math.Max(left.Count, right.Count);
        for (int i = 0; i < n; i++)
        {
            var l = i < left.Count ? left[i] : (Observation?)null;
            var r = i < right.Count ? right[i] : (Observation?)null;
            if (l is { } a && r is { } b && a.Scenario == b.Scenario && a.Step == b.Step && a.Answer == b.Answer) continue;
            diff.Add((l?.Scenario ?? r!.Value.Scenario, l?.Step ?? r!.Value.Step, l?.Answer, r?.Answer));
        }
        return diff;
    }
}
