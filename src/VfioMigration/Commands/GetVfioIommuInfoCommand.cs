using System;
using System.Management.Automation;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>What the kernel says about a container's IOMMU (VFIO_IOMMU_GET_INFO and its capabilities).</summary>
[Cmdlet(VerbsCommon.Get, "VfioIommuInfo", DefaultParameterSetName = InputObjectParameterSet)]
[OutputType(typeof(VfioIommuInfo))]
public sealed class GetVfioIommuInfoCommand : ContainerCmdlet
{
    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        foreach (var c in SelectedContainers())
        {
            try { WriteObject(c.RefreshInfo()); }
            catch (Exception e) when (IsVfioError(e)) { WriteError(ErrorFor(e, c)); }
        }
    }
}
