using System;
using System.Management.Automation;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>Start-DirtyTracking and Stop-DirtyTracking: the same parameters, one ioctl flag apart.</summary>
public abstract class DirtyTrackingCommandBase : ContainerCmdlet
{
    #region Parameters

    /// <summary>Return the containers.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    #endregion

    /// <summary>What ShouldProcess shows.</summary>
    protected abstract string Action { get; }

    /// <summary>The change to make.</summary>
    protected abstract void Apply(VfioContainer container);

    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        foreach (var c in SelectedContainers())
        {
            if (!ShouldProcess($"container {c.Id}", Action)) continue;
            try
            {
                Apply(c);
                if (PassThru) WriteObject(c);
            }
            catch (Exception e) when (IsVfioError(e))
            {
                WriteError(ErrorFor(e, c));
            }
        }
    }
}
