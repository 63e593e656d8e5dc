using System;
using System.Diagnostics;
using System.Management.Automation;
using VfioMigration.Core.Dirty;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Measures how fast guest pages get dirty: reads the container's dirty bitmap every -Interval for
/// -Duration and returns one sample per interval (pages/s and MiB/s, as libvirt and QEMU report).
/// Dirty tracking must be running; every read clears the kernel's record.
/// </summary>
[Cmdlet(VerbsDiagnostic.Measure, "DirtyRate", DefaultParameterSetName = InputObjectParameterSet)]
[OutputType(typeof(DirtyRateSample))]
public sealed class MeasureDirtyRateCommand : ContainerCmdlet
{
    #region Parameters

    /// <summary>How long to measure.</summary>
    [Parameter]
    public TimeSpan Duration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Time between two reads (one sample each).</summary>
    [Parameter]
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);

    #endregion


    protected override void ProcessRecord()
    {
        if (Interval <= TimeSpan.Zero || Duration < Interval)
        {
            ThrowTerminatingError(RuleError($"-Interval ({Interval}) must be positive and no longer than -Duration ({Duration}).",
                "BadInterval", ErrorCategory.InvalidArgument, Interval));
        }
        using var trace = TraceCalls();
        foreach (var c in SelectedContainers())
        {
            if (c.MappedExtent is not { } extent)
            {
                WriteError(RuleError($"Container {c.Id} has no DMA mappings to measure.", "NoMappings", ErrorCategory.InvalidOperation, c));
                continue;
            }
            var (iova, size) = extent;
            int samples = (int)Math.Floor(Duration.TotalMilliseconds / Interval.TotalMilliseconds);
            var progress = new ProgressRecord(2, "Measure-DirtyRate", $"container {c.Id}");
            try
            {
                // The first read clears what was dirtied before the measurement began.
                c.GetDirtyBitmap(iova, size, cancel: StopToken);
                if (c.Scope == DirtyScope.AllMappedPages)
                {
                    WriteWarning($"Container {c.Id} holds a device behind the IOMMU: the kernel cannot see its DMA and reports every mapped page dirty on every read, " +
                                 "so these rates are the mapped size per interval, not what the device wrote.");
                }
                var clock = Stopwatch.StartNew();
                for (int i = 1; i <= samples; i++)
                {
                    var wait = Interval * i - clock.Elapsed;
                    if (wait > TimeSpan.Zero && StopToken.WaitHandle.WaitOne(wait)) return;
                    var before = clock.Elapsed;
                    var bitmap = c.GetDirtyBitmap(iova, size, cancel: StopToken);
                    WriteObject(new DirtyRateSample
                    {
                        Iteration = i,
                        ContainerId = c.Id,
                        Timestamp = bitmap.Timestamp,
                        Interval = i == 1 ? before : before - (Interval * (i - 1)),
                        Pages = bitmap.Pages,
                        DirtyPages = bitmap.DirtyPages,
                        PageSize = bitmap.PageSize,
                        Scope = bitmap.Scope,
                    });
                    progress.PercentComplete = 100 * i / samples;
                    WriteProgress(progress);
                }
                progress.RecordType = ProgressRecordType.Completed;
                WriteProgress(progress);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (IsVfioError(e))
            {
                WriteError(ErrorFor(e, c));
            }
        }
    }
}
