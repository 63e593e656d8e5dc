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
/// Shows VFIO devices: sysfs facts (ids, driver, group) and what the device's VFIO driver answers
/// (regions, interrupts, migration protocol and flags). A device whose group no container of the session
/// holds is opened briefly through a container of its own, so its group must not be held elsewhere.
/// </summary>
[Cmdlet(VerbsCommon.Get, "VfioDevice", DefaultParameterSetName = NameParameterSet)]
[OutputType(typeof(VfioDeviceInfo))]
public sealed class GetVfioDeviceCommand : VfioCmdlet
{
    private const string NameParameterSet = "Name";
    private const string InputObjectParameterSet = "InputObject";
    private const string GroupParameterSet = "Group";

    #region Parameters

    /// <summary>PCI addresses or mdev UUIDs, wildcards allowed; every VFIO device by default.</summary>
    [Parameter(Position = 0, ParameterSetName = NameParameterSet, ValueFromPipelineByPropertyName = true)]
    [Alias("Device", "Address")]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[]? Name { get; set; }

    /// <summary>
    /// Group numbers: their VFIO devices. Bound by property name, so a group that crossed a remoting or
    /// Export-Clixml boundary (no longer a VfioGroupInfo) still pipes in by its Group number.
    /// </summary>
    [Parameter(Mandatory = true, ParameterSetName = GroupParameterSet, ValueFromPipelineByPropertyName = true)]
    public int[] Group { get; set; } = Array.Empty<int>();

    /// <summary>Groups from Get-VfioGroup: their VFIO devices.</summary>
    [Parameter(Mandatory = true, ParameterSetName = InputObjectParameterSet, ValueFromPipeline = true)]
    public VfioGroupInfo[] InputObject { get; set; } = Array.Empty<VfioGroupInfo>();

    #endregion

    private IReadOnlyList<VfioGroupInfo>? _groups;

    protected override void ProcessRecord()
    {
        using var trace = TraceCalls();
        _groups ??= IommuGroupDiscovery.GetGroups(CurrentHost.Kernel);
        if (ParameterSetName == GroupParameterSet)
        {
            foreach (int number in Group)
            {
                var g = _groups.FirstOrDefault(x => x.Group == number);
                if (g is null)
                {
                    WriteError(RuleError($"IOMMU group {number} does not exist on {CurrentHost.Description} (Get-VfioGroup lists the groups there are).", ErrorIds.GroupNotFound, ErrorCategory.ObjectNotFound, number));
                    continue;
                }
                foreach (var d in g.Devices.Where(d => d.BoundToVfio)) Emit(g, d);
            }
            return;
        }
        if (ParameterSetName == InputObjectParameterSet)
        {
            foreach (var g in InputObject)
                foreach (var d in g.Devices.Where(d => d.BoundToVfio)) Emit(g, d);
            return;
        }
        if (Name is null)
        {
            // Listing on a host without VFIO finds nothing: say why instead of printing nothing.
            if (VfioAvailability.Missing(CurrentHost) is { } missing) WriteWarning(missing.Message);
            foreach (var g in _groups.Where(g => g.DeviceNodeExists))
                foreach (var d in g.Devices.Where(d => d.BoundToVfio)) Emit(g, d, listing: true);
            return;
        }
        foreach (string n in Name)
        {
            if (WildcardPattern.ContainsWildcardCharacters(n))
            {
                // A pattern matches VFIO devices by name; matching none is not an error (as Get-ChildItem).
                var pattern = new WildcardPattern(n, WildcardOptions.IgnoreCase);
                foreach (var g in _groups.Where(g => g.DeviceNodeExists))
                    foreach (var d in g.Devices.Where(d => d.BoundToVfio && pattern.IsMatch(d.Name))) Emit(g, d, listing: true);
                continue;
            }
            if (IommuGroupDiscovery.FindDevice(_groups, n) is not { } found)
            {
                WriteError(RuleError(IommuGroupDiscovery.NotFoundMessage(n, CurrentHost.Description), ErrorIds.DeviceNotFound, ErrorCategory.ObjectNotFound, n));
                continue;
            }
            Emit(found.Group, found.Device);
        }
    }

    /// <summary>
    /// Inspects one device. Listing every device, a group this process cannot open (not viable, or held by
    /// another process) is a warning, not an error: the other devices are still shown.
    /// </summary>
    private void Emit(VfioGroupInfo group, VfioGroupDevice device, bool listing = false)
    {
        try
        {
            WriteObject(VfioContainer.ReadDevice(CurrentHost, VfioSession.Containers, group.Group, device.Name, (open, _) => VfioDeviceInfo.Inspect(open, device)));
        }
        catch (Exception e) when (IsVfioError(e))
        {
            if (listing) WriteWarning($"{device.Name} (group {group.Group}) was not inspected: {e.Message}");
            else WriteError(ErrorFor(e, device.Name));
        }
    }
}
