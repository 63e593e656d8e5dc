using System;
using System.Management.Automation;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>The DMA mappings of the session's containers.</summary>
[Cmdlet(VerbsCommon.Get, "VfioDmaMapping", DefaultParameterSetName = InputObjectParameterSet)]
[OutputType(typeof(DmaMapping))]
public sealed class GetVfioDmaMappingCommand : ContainerCmdlet
{
    protected override void ProcessRecord()
    {
        // Without a choice, every container of the session (listing is harmless, unlike changing).
        var containers = InputObject is { Length: > 0 } || ParameterSetName == IdParameterSet
            ? SelectedContainers()
            : System.Linq.Enumerable.ToArray(VfioSession.Containers);
        foreach (var c in containers) WriteObject(c.Mappings, enumerateCollection: true);
    }
}
