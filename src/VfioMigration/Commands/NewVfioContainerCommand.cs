using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Discovery;
using VfioMigration.Core.Vfio;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Opens a container, attaches groups to it and sets its IOMMU type. The session holds the container
/// (and so the groups) until Remove-VfioContainer or Disconnect-VfioHost.
/// </summary>
[Cmdlet(VerbsCommon.New, "VfioContainer", DefaultParameterSetName = GroupParameterSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(VfioContainer))]
public sealed class NewVfioContainerCommand : VfioCmdlet
{
    private const string GroupParameterSet = "Group";
    private const string DeviceParameterSet = "Device";
    private const string InputObjectParameterSet = "InputObject";

    #region Parameters

    /// <summary>Group numbers to attach.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = GroupParameterSet, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(GroupCompleter))]
    [ValidateRange(0, int.MaxValue)]
    public int[] Group { get; set; } = Array.Empty<int>();

    /// <summary>Devices whose groups to attach.</summary>
    [Parameter(Mandatory = true, ParameterSetName = DeviceParameterSet)]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Device { get; set; } = Array.Empty<string>();

    /// <summary>Groups from Get-VfioGroup.</summary>
    [Parameter(Mandatory = true, ParameterSetName = InputObjectParameterSet, ValueFromPipeline = true)]
    public VfioGroupInfo[] InputObject { get; set; } = Array.Empty<VfioGroupInfo>();

    /// <summary>The IOMMU type to set (the legacy backend's; iommufd has none).</summary>
    [Parameter]
    public VfioIommuType IommuType { get; set; } = VfioIommuType.Type1v2;

    /// <summary>The kernel interface: the legacy container, iommufd, or iommufd where the host has it (Auto).</summary>
    [Parameter]
    public VfioBackendChoice Backend { get; set; } = VfioBackendChoice.Legacy;

    #endregion

    private readonly List<int> _groups = new();

    protected override void ProcessRecord()
    {
        switch (ParameterSetName)
        {
            case GroupParameterSet:
                _groups.AddRange(Group);
                break;
            case InputObjectParameterSet:
                _groups.AddRange(InputObject.Select(g => g.Group));
                break;
            default:
                var all = IommuGroupDiscovery.GetGroups(CurrentHost.Kernel);
                foreach (string name in Device)
                {
                    if (IommuGroupDiscovery.FindDevice(all, name) is { } found) _groups.Add(found.Group.Group);
                    else WriteError(RuleError(IommuGroupDiscovery.NotFoundMessage(name, CurrentHost.Description), ErrorIds.DeviceNotFound, ErrorCategory.ObjectNotFound, name));
                }
                break;
        }
    }

    protected override void EndProcessing()
    {
        var groups = _groups.Distinct().ToArray();
        if (groups.Length == 0) return;
        string target = $"groups {string.Join(", ", groups)} on {CurrentHost.Description}";
        var backend = VfioContainer.ResolveBackend(CurrentHost, Backend);
        string action = backend == VfioBackend.Iommufd
            ? "Open /dev/iommu, allocate an IOAS, bind the groups' devices through their cdevs and attach them to a HWPT"
            : $"Open a VFIO container, attach the groups and set the {IommuType} IOMMU";
        if (!ShouldProcess(target, action)) return;
        if (backend == VfioBackend.Iommufd && MyInvocation.BoundParameters.ContainsKey(nameof(IommuType)))
            WriteWarning($"-IommuType {IommuType} is the legacy container's; an iommufd container has no IOMMU type, so it is not used.");

        using var trace = TraceCalls();
        VfioContainer container;
        try
        {
            container = VfioContainer.Open(CurrentHost, backend: backend);
        }
        catch (Exception e) when (IsVfioError(e))
        {
            ThrowTerminatingError(ErrorFor(e, CurrentHost.Description));
            return;
        }
        try
        {
            foreach (int number in groups)
            {
                // This session already holding the group is not "another process": say which container.
                var holder = VfioSession.Containers.FirstOrDefault(x => x.Groups.Any(g => g.Number == number));
                if (holder is not null)
                {
                    WriteError(RuleError($"Group {number} is already in container {holder.Id} of this session; a group belongs to one container (Remove-VfioContainer {holder.Id} frees it).",
                        ErrorIds.GroupInUse, ErrorCategory.ResourceBusy, number));
                    continue;
                }
                try
                {
                    container.Attach(number);
                }
                catch (Exception e) when (IsVfioError(e))
                {
                    WriteError(ErrorFor(e, number));
                }
            }
            if (container.Groups.Count == 0)
            {
                container.Dispose();
                ThrowTerminatingError(RuleError($"No group could be attached ({string.Join(", ", groups)}); see the errors above.",
                    ErrorIds.NoGroupAttached, ErrorCategory.ResourceUnavailable, groups));
                return;
            }
            container.SetIommu((uint)IommuType);
        }
        catch (Exception e) when (IsVfioError(e))
        {
            container.Dispose();
            ThrowTerminatingError(ErrorFor(e, target));
            return;
        }
        // Where the IOMMU cannot track dirty pages, say so now, and what takes over (QEMU's order, docs/iommufd.md).
        if (container.DirtyTrackingFallback is { } fallback) WriteWarning(fallback + ".");
        VfioSession.Add(container);
        WriteObject(container);
    }
}
