using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using VfioMigration.Core;
using VfioMigration.Core.Discovery;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Lists IOMMU groups with their devices and drivers, and whether /dev/vfio/N exists.
/// It only reads sysfs: it opens no group, so it never takes a group from the process that holds it.
/// </summary>
[Cmdlet(VerbsCommon.Get, "VfioGroup", DefaultParameterSetName = AllParameterSet)]
[OutputType(typeof(VfioGroupInfo))]
public sealed class GetVfioGroupCommand : VfioCmdlet
{
    private const string AllParameterSet = "All";
    private const string GroupParameterSet = "Group";
    private const string DeviceParameterSet = "Device";

    #region Parameters

    /// <summary>Group numbers to show.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = GroupParameterSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateRange(0, int.MaxValue)]
    public int[] Group { get; set; } = System.Array.Empty<int>();

    /// <summary>Devices (PCI address or mdev UUID, wildcards allowed) whose groups to show.</summary>
    [Parameter(Mandatory = true, ParameterSetName = DeviceParameterSet, ValueFromPipelineByPropertyName = true)]
    [Alias("Address", "Name")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Device { get; set; } = System.Array.Empty<string>();

    /// <summary>Only groups whose /dev/vfio/N exists (devices bound to VFIO drivers).</summary>
    [Parameter]
    public SwitchParameter VfioOnly { get; set; }

    #endregion

    private IReadOnlyList<VfioGroupInfo>? _all;

    protected override void BeginProcessing()
    {
        // Groups are sysfs's and listed anyway; without VFIO none can be opened: say what is missing.
        if (VfioAvailability.Missing(CurrentHost) is { } missing) WriteWarning(missing.Message);
    }

    protected override void ProcessRecord()
    {
        var kernel = CurrentHost.Kernel;
        switch (ParameterSetName)
        {
            case GroupParameterSet:
                foreach (int number in Group)
                {
                    var group = IommuGroupDiscovery.FindGroup(kernel, number);
                    if (group is null)
                    {
                        WriteError(RuleError($"IOMMU group {number} does not exist on {CurrentHost.Description} (no {IommuGroupDiscovery.GroupsRoot}/{number}).",
                            ErrorIds.GroupNotFound, ErrorCategory.ObjectNotFound, number));
                        continue;
                    }
                    Emit(group);
                }
                break;
            case DeviceParameterSet:
                _all ??= IommuGroupDiscovery.GetGroups(kernel);
                foreach (string name in Device)
                {
                    if (WildcardPattern.ContainsWildcardCharacters(name))
                    {
                        var pattern = new WildcardPattern(name, WildcardOptions.IgnoreCase);
                        foreach (var g in _all.Where(g => g.Devices.Any(d => pattern.IsMatch(d.Name)))) Emit(g);
                        continue;
                    }
                    if (IommuGroupDiscovery.FindDevice(_all, name) is not { } found)
                    {
                        WriteError(RuleError(IommuGroupDiscovery.NotFoundMessage(name, CurrentHost.Description), ErrorIds.DeviceNotFound, ErrorCategory.ObjectNotFound, name));
                        continue;
                    }
                    Emit(found.Group);
                }
                break;
            default:
                foreach (var group in IommuGroupDiscovery.GetGroups(kernel)) Emit(group);
                break;
        }
    }

    private void Emit(VfioGroupInfo group)
    {
        if (VfioOnly && !group.DeviceNodeExists) return;
        WriteObject(group);
    }
}
