using System.Linq;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>The containers this session holds.</summary>
[Cmdlet(VerbsCommon.Get, "VfioContainer")]
[OutputType(typeof(VfioContainer))]
public sealed class GetVfioContainerCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>Container ids to return; all by default.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("ContainerId")]
    [ArgumentCompleter(typeof(ContainerCompleter))]
    public int[]? Id { get; set; }

    #endregion

    protected override void ProcessRecord()
    {
        var open = VfioSession.Containers;
        if (Id is null)
        {
            WriteObject(open, enumerateCollection: true);
            return;
        }
        foreach (int id in Id)
        {
            var c = open.FirstOrDefault(x => x.Id == id);
            if (c is null) WriteError(RuleError($"This session holds no container {id}.", ErrorIds.ContainerNotFound, ErrorCategory.ObjectNotFound, id));
            else WriteObject(c);
        }
    }
}
