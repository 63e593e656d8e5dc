using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Dirty;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Measures how fast guest pages get dirty: reads the container's dirty bitmap (or, with -Device, the
/// device's own DMA log) every -Interval for -Duration and returns one sample per interval (pages/s and MiB/s, as libvirt and QEMU report).
/// Dirty tracking must be running; every read clears the kernel's record.
/// </summary>
[Cmdlet(VerbsDiagnostic.Measure, "DirtyRate", DefaultParameterSetName = InputObjectParameterSet)]
[OutputType(typeof(DirtyRateSample))]
public sealed class MeasureDirtyRateCommand : ContainerCmdlet
{
    private const string DeviceParameterSet = "Device";

    #region Parameters

    /// <summary>Measure a device's own DMA log (Start-DirtyTracking -Device) instead of a container's tracking.</summary>
    [Parameter(Mandatory = true, ParameterSetName = DeviceParameterSet)]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Device { get; set; } = "";

    /// <summary>How long to measure.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan Duration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Time between two reads (one sample each).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);

    #endregion


    protected override void ProcessRecord()
    {
        int samples;
        try { samples = DirtyRateSampler.SampleCount(Interval, Duration); }
        catch (VfioRuleException e)
        {
            ThrowTerminatingError(ErrorFor(e, Interval));
            return;
        }
        using var trace = TraceCalls();
        if (ParameterSetName == DeviceParameterSet)
        {
            MeasureDevice(samples);
            return;
        }
        foreach (var c in SelectedContainers())
        {
            var progress = new ProgressRecord(2, "Measure-DirtyRate", $"container {c.Id}");
            try
            {
                if (c.Scope == DirtyScope.AllMappedPages && c.MappedExtent is not null)
                {
                    WriteWarning($"Container {c.Id} holds a device behind the IOMMU: the kernel cannot see its DMA and reports every mapped page dirty on every read, " +
                                 "so these rates are the mapped size per interval, not what the device wrote.");
                }
                WriteSamples(DirtyRateSampler.Sample(c, Interval, Duration, StopToken), samples, progress);
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

    /// <summary>Each sample as it is taken, with the progress bar filling toward <paramref name="count"/>.</summary>
    private void WriteSamples(IEnumerable<DirtyRateSample> samples, int count, ProgressRecord progress)
    {
        foreach (var sample in samples)
        {
            WriteObject(sample);
            progress.PercentComplete = 100 * sample.Iteration / count;
            WriteProgress(progress);
        }
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
    }

    private void MeasureDevice(int samples)
    {
        var device = OpenSessionDevice(Device);
        if (device is null) return;
        var container = VfioSession.Containers.First(c => c.HoldsDevice(Device));
        var progress = new ProgressRecord(2, "Measure-DirtyRate", $"device {Device}");
        try
        {
            WriteSamples(DirtyRateSampler.Sample(device, container.Id, Interval, Duration, StopToken), samples, progress);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (IsVfioError(e))
        {
            WriteError(ErrorFor(e, Device));
        }
    }
}
