using System;
using System.Collections.Generic;
using System.Linq;

namespace VfioMigration.Core;

/// <summary>
/// What kind of failure an error id is: the names of PowerShell's ErrorCategory (the cmdlets map one to
/// the other by name), kept here because Core does not reference PowerShell.
/// </summary>
public enum ErrorKind
{
    InvalidArgument,
    InvalidOperation,
    InvalidData,
    ObjectNotFound,
    ResourceBusy,
    ResourceExists,
    ResourceUnavailable,
    LimitsExceeded,
    NotImplemented,
    NotInstalled,
    DeviceError,
    ReadError,
    WriteError,
    ParserError,
    PermissionDenied,
    OperationStopped,
    NotSpecified,
}

/// <summary>One stable error id: the first part of FullyQualifiedErrorId that scripts and tests match on.</summary>
public sealed record ErrorIdInfo(string Id, ErrorKind Kind, string Meaning, string Remedy);

/// <summary>
/// Every error id the module raises, Core and cmdlets alike, with its category, what it means and what to
/// do: one registry. A test fails when code raises an id that is not here, and when about_VfioMigration's
/// table and this list disagree. Never rename an id: scripts match on them.
/// </summary>
public static class ErrorIds
{
    // The session, the host, discovery.
    public const string VfioNotPresent = "VfioNotPresent";
    public const string NoIommu = "NoIommu";
    public const string GroupNotFound = "GroupNotFound";
    public const string DeviceNotFound = "DeviceNotFound";
    public const string ContainerNotFound = "ContainerNotFound";
    public const string ContainerAmbiguous = "ContainerAmbiguous";
    public const string NoGroupAttached = "NoGroupAttached";
    public const string GroupInUse = "GroupInUse";
    public const string DeviceNotInContainer = "DeviceNotInContainer";
    public const string ConfigurationNotFound = "ConfigurationNotFound";
    public const string ConfigurationInvalid = "ConfigurationInvalid";

    // System calls.
    public const string OpenFailed = "OpenFailed";
    public const string SyscallFailed = "SyscallFailed";
    public const string Unexpected = "Unexpected";

    // Files.
    public const string FileNotRegular = "FileNotRegular";
    public const string FileExists = "FileExists";
    public const string FileReadFailed = "FileReadFailed";
    public const string FileWriteFailed = "FileWriteFailed";
    public const string BitmapFileInvalid = "BitmapFileInvalid";
    public const string OneBitmapPerFile = "OneBitmapPerFile";
    public const string OneDevicePerFile = "OneDevicePerFile";
    public const string StateFileNotFound = "StateFileNotFound";
    public const string StateFileInvalid = "StateFileInvalid";
    public const string StateFileForeign = "StateFileForeign";
    public const string StateFileChanged = "StateFileChanged";

    // Pictures.
    public const string PictureLibraryMissing = "PictureLibraryMissing";
    public const string OnePicturePerFile = "OnePicturePerFile";
    public const string NothingToDraw = "NothingToDraw";

    // Migration.
    public const string TransitionFailed = "TransitionFailed";
    public const string DeviceInError = "DeviceInError";
    public const string DestinationRefused = "DestinationRefused";
    public const string MigrationFailed = "MigrationFailed";
    public const string MigrationNotConverged = "MigrationNotConverged";
    public const string Cancelled = "Cancelled";

    // Lab checks.
    public const string UnknownCheck = "UnknownCheck";

    private static readonly ErrorIdInfo[] Table =
    {
        new(VfioNotPresent, ErrorKind.ResourceUnavailable, "this machine has no /dev/vfio/vfio", "load vfio-pci (modprobe vfio-pci), or rehearse with Connect-VfioHost -Simulated"),
        new(NoIommu, ErrorKind.ResourceUnavailable, "the kernel shows no IOMMU groups: the IOMMU is off, so no device can be given to VFIO", "turn on VT-d/AMD-Vi and boot with intel_iommu=on or amd_iommu=on (a VM needs a virtual IOMMU), or rehearse with Connect-VfioHost -Simulated"),
        new(GroupNotFound, ErrorKind.ObjectNotFound, "no IOMMU group has this number", "list the groups with Get-VfioGroup"),
        new(DeviceNotFound, ErrorKind.ObjectNotFound, "no IOMMU group holds a device of this name", "check the PCI address (lspci -D) or the mdev UUID; Get-VfioGroup lists the devices"),
        new(ContainerNotFound, ErrorKind.ObjectNotFound, "this session holds no container (of that number)", "create one with New-VfioContainer; Get-VfioContainer lists them"),
        new(ContainerAmbiguous, ErrorKind.InvalidOperation, "the session holds several containers and none was named", "pipe one, or name it with -ContainerId"),
        new(NoGroupAttached, ErrorKind.ResourceUnavailable, "no group could be attached to the new container", "see the errors before it; a group must be viable and bound to vfio"),
        new(GroupInUse, ErrorKind.ResourceBusy, "another process holds the group open (EBUSY)", "stop that process (its pid is in the message) or use another group"),
        new(DeviceNotInContainer, ErrorKind.InvalidOperation, "no container of this session holds the device's group", "New-VfioContainer -Device <name>"),
        new(ConfigurationNotFound, ErrorKind.ObjectNotFound, "the simulated host's configuration file does not exist", "check -Configuration; docs/simulated-host.md describes the file"),
        new(ConfigurationInvalid, ErrorKind.InvalidData, "the simulated host's configuration is not valid (the message names the line or key)", "fix the file; docs/simulated-host.md lists its keys"),

        new(OpenFailed, ErrorKind.ObjectNotFound, "open() of a VFIO node failed; the message names the path and errno", "EACCES: run as root or give access to /dev/vfio/N; ENOENT: the group or VFIO is not there"),
        new(SyscallFailed, ErrorKind.InvalidOperation, "an ioctl or another system call failed; the message names it, the target and errno", "the errno says why; -Verbose shows every call"),
        new(Unexpected, ErrorKind.NotSpecified, "a failure the module did not expect", "report it with the whole error record ($Error[0] | Format-List * -Force)"),

        new(FileNotRegular, ErrorKind.InvalidArgument, "the path is a FIFO, a device, a directory or a socket", "give a regular file"),
        new(FileExists, ErrorKind.ResourceExists, "the file exists (or appeared while it was written) and -Force was not given", "use another path, or -Force to replace it"),
        new(FileReadFailed, ErrorKind.ReadError, "a file could not be read; the message names the path and errno", "check the path and its permissions"),
        new(FileWriteFailed, ErrorKind.WriteError, "a file could not be written: a full disk, a read-only or missing folder, no permission (the message names path and errno)", "free space, or write elsewhere; no partial file was left"),
        new(BitmapFileInvalid, ErrorKind.InvalidData, "not a bitmap file of Export-DirtyBitmap, of another version, damaged or incomplete", "export the bitmap again"),
        new(OneBitmapPerFile, ErrorKind.InvalidOperation, "more than one bitmap was piped into one Export-DirtyBitmap call", "export each bitmap to its own -Path"),
        new(OneDevicePerFile, ErrorKind.InvalidArgument, "a second device was piped to the same state file", "give each device its own -Path, or a folder as -Path"),
        new(StateFileNotFound, ErrorKind.ObjectNotFound, "the state file does not exist", "check -Path"),
        new(StateFileInvalid, ErrorKind.InvalidData, "not a state file, of another version, damaged, truncated or incomplete", "save the device again; the device was not touched"),
        new(StateFileForeign, ErrorKind.InvalidData, "the state file was saved from another kind of device (protocol, model or driver)", "restore it into a device of the kind the message names"),
        new(StateFileChanged, ErrorKind.InvalidData, "the state file was written into after it was verified", "let the writer finish, then restore again; the device was reset"),

        new(PictureLibraryMissing, ErrorKind.NotInstalled, "the native drawing library (libSkiaSharp.so for this machine's architecture) or the pictures assembly is not in the module's folder, or does not load", "reinstall the module (Install-PSResource VfioMigration), or build the checkout again, which lays out runtimes/linux-<arch>/native; Show-DirtyHeatmap needs no library"),
        new(OnePicturePerFile, ErrorKind.InvalidOperation, "more than one object was piped into one Export-DirtyHeatmap or Export-MigrationChart call", "export each to its own -Path"),
        new(NothingToDraw, ErrorKind.InvalidArgument, "the input holds nothing to draw: an empty bitmap, no dirty-rate samples, or a migration report without a pre-copy round", "measure or migrate first; a chart needs at least one sample or round"),

        new(TransitionFailed, ErrorKind.DeviceError, "a migration-state arc failed and the device stayed out of ERROR", "the message names the arc, errno and where the device is; Set-VfioMigrationState -WhatIf shows the path"),
        new(DeviceInError, ErrorKind.DeviceError, "a device fell into ERROR", "Reset-VfioDevice brings it back to RUNNING (with a reset state)"),
        new(DestinationRefused, ErrorKind.InvalidData, "the destination's driver refused the stream (a write, or RESUMING -> STOP)", "check that source and destination match (Test-VfioMigration); the destination was reset where it can be"),
        new(MigrationFailed, ErrorKind.DeviceError, "a migration failed in a way no more specific id names", "the message says where both devices ended"),
        new(MigrationNotConverged, ErrorKind.LimitsExceeded, "pre-copy did not get what remains under bandwidth x downtime limit", "the message names the blocker: raise -Bandwidth or -DowntimeLimit, or reduce the load"),
        new(Cancelled, ErrorKind.OperationStopped, "stopped (Ctrl+C, PowerShell.Stop())", "nothing: both devices were put back, as the warning says"),

        new(UnknownCheck, ErrorKind.InvalidArgument, "Test-VfioDevice -Check names a check the suite does not have", "use an id from docs/conformance.md (tab completion lists them)"),

        // Rules Core checks before a call the kernel would refuse (nearly always with a bare EINVAL).
        new("ArcNotAllowed", ErrorKind.InvalidOperation, "the kernel has no arc between these migration states", "Set-VfioMigrationState -WhatIf shows the path the kernel takes"),
        new("StateNotSupported", ErrorKind.InvalidArgument, "the device's migration flags do not include this state", "Get-VfioMigrationInfo lists its flags"),
        new("StateNotRequestable", ErrorKind.InvalidArgument, "this state cannot be asked for (ERROR)", "Reset-VfioDevice leaves ERROR"),
        new("InvalidDeviceState", ErrorKind.InvalidArgument, "not a valid v1 device_state", "use the state names of Set-VfioMigrationState"),
        new("NoMigrationSupport", ErrorKind.NotImplemented, "the device has no migration driver", "bind a migration-capable variant driver"),
        new("WrongStateForMigration", ErrorKind.InvalidOperation, "a migration starts from RUNNING", "Set-VfioMigrationState -State Running"),
        new("WrongStateForSave", ErrorKind.InvalidOperation, "a save starts from RUNNING or STOP", "Set-VfioMigrationState -State Running (or Reset-VfioDevice from ERROR)"),
        new("WrongStateForRestore", ErrorKind.InvalidOperation, "a restore or a migration destination starts from RUNNING or STOP", "Set-VfioMigrationState -State Stop"),
        new("DestinationMismatch", ErrorKind.InvalidArgument, "the destination cannot take the source's state (protocol, model or driver)", "Test-VfioMigration lists the differences"),
        new("DestinationIsSource", ErrorKind.InvalidArgument, "a device cannot be migrated into itself", "name another destination"),
        new("BandwidthTooLow", ErrorKind.InvalidArgument, "-Bandwidth below 1 MiB/s", "give at least 1MB"),
        new("DowntimeLimitTooLow", ErrorKind.InvalidArgument, "the downtime limit must be more than 0 ms", "give a positive -DowntimeLimit"),
        new("NoDataSession", ErrorKind.InvalidOperation, "the device has no migration data fd open", "move it to a saving or resuming state first"),
        new("V1TransactionTooLarge", ErrorKind.LimitsExceeded, "a v1 device offered more than 64 MiB in one transaction", "the device's driver misbehaves; report it"),
        new("V1PendingNeverDrains", ErrorKind.DeviceError, "a stopped v1 device kept pending_bytes above 0 past twice what it first announced", "the device's driver does not drain its state; report it (Test-VfioDevice names the check)"),
        new("ContainerClosed", ErrorKind.InvalidOperation, "the container was closed", "create a new one with New-VfioContainer"),
        new("NoGroup", ErrorKind.InvalidOperation, "the container has no group attached", "attach one (New-VfioContainer -Group)"),
        new("GroupAlreadyAttached", ErrorKind.InvalidOperation, "the group is attached to a container already", "use that container (Get-VfioContainer)"),
        new("GroupNotViable", ErrorKind.ResourceUnavailable, "a device of the group is bound to a host driver", "bind every device of the group to vfio-pci"),
        new("GroupNotBoundToVfio", ErrorKind.ResourceUnavailable, "the group has no /dev/vfio node", "bind its devices to vfio-pci"),
        new("DeviceNotInGroup", ErrorKind.InvalidArgument, "the device is not in this group", "Get-VfioGroup shows which group holds it"),
        new("IommuNotSet", ErrorKind.InvalidOperation, "the container has no IOMMU type yet", "New-VfioContainer sets it; a container without a group cannot have one"),
        new("IommuAlreadySet", ErrorKind.InvalidOperation, "the container's IOMMU type is set already", "nothing to do"),
        new("IommuTypeUnsupported", ErrorKind.NotImplemented, "the kernel does not offer this IOMMU type", "use Type1v2 (the default)"),
        new("UnsupportedApiVersion", ErrorKind.NotImplemented, "VFIO_GET_API_VERSION is not the version the module speaks", "a kernel with VFIO API version 0"),
        new("NoDirtyTracking", ErrorKind.NotImplemented, "the kernel reports no migration capability for the container, so it cannot track dirty pages", "a kernel of 5.8 or later with the type1 IOMMU"),
        new("NotType1v2", ErrorKind.InvalidOperation, "dirty tracking needs the Type1v2 IOMMU (the kernel answers EACCES)", "create the container with the default IOMMU type"),
        new("TrackingNotStarted", ErrorKind.InvalidOperation, "dirty tracking is not running in the container", "Start-DirtyTracking"),
        new("NoMappings", ErrorKind.InvalidArgument, "the container has no DMA mapping in the range", "New-VfioDmaMapping, or give -Iova and -Size"),
        new("MappingEmpty", ErrorKind.InvalidArgument, "a mapping of 0 bytes", "give a -Size"),
        new("MappingNotAligned", ErrorKind.InvalidArgument, "IOVA, size or address not aligned to the IOMMU page size", "Get-VfioIommuInfo shows the page sizes"),
        new("MappingWraps", ErrorKind.InvalidArgument, "IOVA + size wraps past 2^64", "a lower -Iova or a smaller -Size"),
        new("MappingOverlaps", ErrorKind.InvalidArgument, "the mapping overlaps one that exists", "Get-VfioDmaMapping lists them"),
        new("MappingOutsideIovaRanges", ErrorKind.InvalidArgument, "the IOVA range is outside the IOMMU's usable ranges", "Get-VfioIommuInfo lists them"),
        new("MappingLimitReached", ErrorKind.LimitsExceeded, "the container has as many mappings as the kernel allows (dma_entry_limit)", "remove mappings, or raise vfio_iommu_type1's dma_entry_limit"),
        new("MappingTooLargeForOneCall", ErrorKind.LimitsExceeded, "more than one call of the kernel can map", "map in several mappings"),
        new("MappingNotFound", ErrorKind.ObjectNotFound, "no mapping at this IOVA", "Get-VfioDmaMapping lists them"),
        new("BackingFileNotFound", ErrorKind.ObjectNotFound, "the mapping's backing file does not exist", "check -BackingFile"),
        new("BackingFileMissing", ErrorKind.InvalidArgument, "a file-backed mapping needs -BackingFile", "give one, or map anonymous memory"),
        new("BackingFileTooSmall", ErrorKind.InvalidArgument, "the backing file is smaller than the mapping", "a larger file or a smaller -Size"),
        new("RangeEmpty", ErrorKind.InvalidArgument, "a range of 0 bytes", "give a -Size"),
        new("RangeNotAligned", ErrorKind.InvalidArgument, "the range is not aligned to the page size", "align -Iova and -Size"),
        new("RangeWraps", ErrorKind.InvalidArgument, "IOVA + size wraps past 2^64", "a smaller range"),
        new("RangeCutsMapping", ErrorKind.InvalidArgument, "the range cuts a mapping (the kernel reads whole mappings only)", "widen the range to whole mappings"),
        new("BadPageSize", ErrorKind.InvalidArgument, "the page size is not a power of two", "Get-VfioIommuInfo shows the page sizes"),
        new("BadGranularity", ErrorKind.InvalidArgument, "-Granularity is not a multiple of the bitmap's page size", "give a multiple of the page size, such as 2MB"),
        new("BadInterval", ErrorKind.InvalidArgument, "-Interval not positive, or longer than -Duration", "a shorter -Interval"),
        new("NoDeviceDmaLogging", ErrorKind.NotImplemented, "the device does not log its own DMA (VFIO_DEVICE_FEATURE_DMA_LOGGING_START answers ENOTTY)", "track the container instead: Start-DirtyTracking without -Device"),
        new("DeviceLogNotStarted", ErrorKind.InvalidOperation, "the device's DMA log is not running", "Start-DirtyTracking -Device <name>"),
        new("DeviceLogAlreadyStarted", ErrorKind.InvalidOperation, "the device's DMA log runs already (one START at a time)", "Stop-DirtyTracking -Device <name> first"),
        new("DeviceLogReportUnsupported", ErrorKind.NotImplemented, "the kernel cannot report device DMA logs: it is built without CONFIG_IOMMUFD_DRIVER (Debian's 6.12 kernels)", "use the container's dirty tracking (Start-DirtyTracking, Get-DirtyBitmap without -Device), or a kernel with IOMMUFD"),
        new("BitmapsIncompatible", ErrorKind.InvalidArgument, "the bitmaps cover different ranges or page sizes", "compare bitmaps of the same range and page size"),
        new("IommufdNotPresent", ErrorKind.ResourceUnavailable, "the host has no /dev/iommu: its kernel is built without CONFIG_IOMMUFD (or the module is not loaded)", "use the legacy container (New-VfioContainer -Backend Legacy), or modprobe iommufd"),
        new("NoDeviceCdev", ErrorKind.ResourceUnavailable, "the device has no vfio cdev (/dev/vfio/devices/vfioN): the kernel is built without CONFIG_VFIO_DEVICE_CDEV", "use the legacy container (-Backend Legacy)"),
        new("GroupNotOpen", ErrorKind.InvalidOperation, "an iommufd container uses a group's devices through their cdevs, not an open /dev/vfio/N", "attach groups by number (New-VfioContainer -Group N -Backend Iommufd)"),
        new("IommuNoDirtyTracking", ErrorKind.NotImplemented, "the IOMMU cannot track dirty pages (VT-d without SSADS/SMPWC, AMD-Vi without HDSup, any QEMU vIOMMU), so the iommufd container's HWPT has no dirty tracking", "a device's own DMA log (Start-DirtyTracking -Device) where every device has one, else the legacy container (-Backend Legacy); docs/iommufd.md"),
        new("NoClearUnsupported", ErrorKind.NotImplemented, "-NoClear needs the iommufd backend: type1's VFIO_IOMMU_DIRTY_PAGES always clears what it reads", "read without -NoClear, or use an iommufd container (New-VfioContainer -Backend Iommufd)"),
    };

    private static readonly Dictionary<string, ErrorIdInfo> ById = Table.ToDictionary(e => e.Id, StringComparer.Ordinal);

    /// <summary>Every registered id.</summary>
    public static IReadOnlyList<ErrorIdInfo> All => Table;

    /// <summary>The id's entry, or null if it is not registered (a test keeps that from happening).</summary>
    public static ErrorIdInfo? Find(string id) => ById.GetValueOrDefault(id);

    /// <summary>The id's category; InvalidOperation for an unregistered one.</summary>
    public static ErrorKind KindOf(string id) => Find(id)?.Kind ?? ErrorKind.InvalidOperation;
}
