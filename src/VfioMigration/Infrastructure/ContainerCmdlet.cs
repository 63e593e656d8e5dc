using System;
using System.Management.Automation;
using VfioMigration.Core.Vfio;

namespace VfioMigration.Infrastructure;

/// <summary>
/// Cmdlets that act on containers: piped or given (-InputObject), by id (-ContainerId), or the session's
/// only container when neither is given.
/// </summary>
public abstract class ContainerCmdlet : VfioCmdlet
{
    protected const string InputObjectParameterSet = "InputObject";
    protected const string IdParameterSet = "Id";

    #region Parameters

    /// <summary>Containers; the session's only container by default.</summary>
    [Parameter(Position = 0, ParameterSetName = InputObjectParameterSet, ValueFromPipeline = true)]
    [Alias("Container")]
    public VfioContainer[]? InputObject { get; set; }

    /// <summary>Container ids.</summary>
    [Parameter(Mandatory = true, ParameterSetName = IdParameterSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ContainerCompleter))]
    public int[] ContainerId { get; set; } = Array.Empty<int>();

    #endregion

    /// <summary>The containers this invocation names (see the class summary).</summary>
    protected VfioContainer[] SelectedContainers() =>
        ResolveContainers(InputObject, ParameterSetName == IdParameterSet ? ContainerId : null);
}
