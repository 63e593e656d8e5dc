namespace VfioMigration.Infrastructure;

/// <summary>
/// Stable error ids (the first part of FullyQualifiedErrorId). Scripts and tests match on these;
/// never rename one.
/// </summary>
public static class ErrorIds
{
    public const string VfioNotPresent = "VfioNotPresent";
    public const string GroupNotFound = "GroupNotFound";
    public const string DeviceNotFound = "DeviceNotFound";
    public const string SyscallFailed = "SyscallFailed";
    public const string ConfigurationNotFound = "ConfigurationNotFound";
    public const string ConfigurationInvalid = "ConfigurationInvalid";
}
