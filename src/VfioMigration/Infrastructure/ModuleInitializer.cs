using System;
using System.Management.Automation;
using VfioMigration.Core;

namespace VfioMigration.Infrastructure;

/// <summary>
/// Runs when Import-Module loads the assembly: refuses, with one sentence, a process the module
/// cannot serve (not Linux, 32-bit, big-endian) instead of failing later at the first ioctl.
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer
{
    public void OnImport()
    {
        string? why = PlatformCheck.EvaluateCurrentProcess();
        if (why is not null) throw new PlatformNotSupportedException(why);
    }
}
