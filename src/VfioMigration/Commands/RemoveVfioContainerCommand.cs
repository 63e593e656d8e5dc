using System;
using System.Management.Automation;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>Stops dirty tracking, unmaps every DMA mapping, detaches the groups and closes a container.</summary>
[Cmdlet(VerbsCommon.Remove, "VfioContainer", DefaultParameterSetName = InputObjectParameterSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
public sealed class RemoveVfioContainerCommand : VfioCmdlet
{
    private const string InputObjectParameterSet = "InputObject";
    private const string IdParameterSet = "Id";

    #region Parameters

    /// <summary>Containers from Get-VfioContainer or New-VfioContainer.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = InputObjectParameterSet, ValueFromPipeline = true)]
    public VfioContainer[] InputObject { get; set; } = Array.Empty<VfioContainer>();

    /// <summary>Container ids.</summary>
    [Parameter(Mandatory = true, ParameterSetName = IdParameterSet, ValueFromPipelineByPropertyName = true)]
    [Alias("ContainerId")]
    [ArgumentCompleter(typeof(ContainerCompleter))]
    public int[] Id { get; set; } = Array.Empty<int>();

    #endregion

    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        foreach (var c in ResolveContainers(ParameterSetName == InputObjectParameterSet ? InputObject : null, ParameterSetName == IdParameterSet ? Id : null))
        {
            if (c.IsClosed) continue;
            if (!ShouldProcess($"container {c.Id} ({c.Groups.Count} groups, {c.Mappings.Count} mappings)", "Stop tracking, unmap and close")) continue;
            c.Dispose();
            VfioSession.Remove(c);
        }
    }
}
