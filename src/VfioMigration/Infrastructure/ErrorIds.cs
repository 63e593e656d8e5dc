namespace VfioMigration.Infrastructure;

/// <summary>
/// Stable error ids (the first part of FullyQualifiedErrorId) the cmdlets raise themselves. Rules that
/// Core checks carry their own ids (VfioRuleException.RuleId, e.g. RangeCutsMapping, TrackingNotStarted).
/// Scripts and tests match on these; never rename one.
/// </summary>
public static class ErrorIds
{
    public const string VfioNotPresent = "VfioNotPresent";
    public const string GroupNotFound = "GroupNotFound";
    public const string DeviceNotFound = "DeviceNotFound";
    public const string ContainerNotFound = "ContainerNotFound";
    public const string NoGroupAttached = "NoGroupAttached";
    public const string ContainerAmbiguous = "ContainerAmbiguous";
    public const string SyscallFailed = "SyscallFailed";
    public const string OpenFailed = "OpenFailed";
    public const string Unexpected = "Unexpected";
    public const string ConfigurationNotFound = "ConfigurationNotFound";
    public const string ConfigurationInvalid = "ConfigurationInvalid";
    public const string BitmapFileInvalid = "BitmapFileInvalid";
    public const string BitmapsIncompatible = "BitmapsIncompatible";
}
