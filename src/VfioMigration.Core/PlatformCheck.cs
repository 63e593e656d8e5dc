using System;
using System.Runtime.InteropServices;

namespace VfioMigration.Core;

/// <summary>
/// The processes the module can run in: VFIO exists only on Linux, and the native layer mirrors the
/// kernel's LP64 little-endian layouts (x86_64, aarch64), which differ on 32-bit and big-endian ABIs.
/// </summary>
public static class PlatformCheck
{
    /// <summary>Why the module cannot run in a process with these properties, or null if it can.</summary>
    public static string? Evaluate(bool isLinux, bool is64BitProcess, bool isLittleEndian, string description)
    {
        if (isLinux && is64BitProcess && isLittleEndian) return null;
        string why = !isLinux ? "it is not Linux"
            : !is64BitProcess ? "it is a 32-bit process"
            : "it is big-endian";
        return $"VfioMigration needs a 64-bit little-endian Linux process (x86_64 or aarch64) because VFIO exists only on Linux and its structures are mirrored for that ABI; this process cannot load it because {why} ({description}).";
    }

    /// <summary>Why this process cannot run the module, or null if it can.</summary>
    public static string? EvaluateCurrentProcess() => Evaluate(
        RuntimeInformation.IsOSPlatform(OSPlatform.Linux),
        Environment.Is64BitProcess,
        BitConverter.IsLittleEndian,
        $"{RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}");
}
