using System;
using System.Management.Automation;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Threading;
using VfioMigration.Core;

namespace VfioMigration.Infrastructure;

/// <summary>
/// Runs when Import-Module loads the assembly: refuses, with one sentence, a process the module
/// cannot serve (not Linux, 32-bit, big-endian) instead of failing later at the first ioctl; then
/// compiles, on a background thread, the code that ReadyToRun cannot carry.
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer
{
    /// <summary>Set to 1 to skip the background compilation (to measure without it).</summary>
    public const string NoWarmUpVariable = "VFIOMIGRATION_NO_WARMUP";

    public void OnImport()
    {
        string? why = PlatformCheck.EvaluateCurrentProcess();
        if (why is not null) throw new PlatformNotSupportedException(why);
        if (Environment.GetEnvironmentVariable(NoWarmUpVariable) != "1")
            new Thread(WarmUp) { IsBackground = true, Priority = ThreadPriority.BelowNormal, Name = "VfioMigration warm-up" }.Start();
    }

    /// <summary>
    /// Compiles every method of the module's assemblies once, off the pipeline thread. ReadyToRun code
    /// covers most of Core, but not the cmdlets (they derive from PowerShell's types, which are not part of
    /// the precompiled version bubble), not the vectorised loops (compiled at run time for this CPU's
    /// vector width) and not code a .NET 8 runtime or an arm64 machine runs as IL. Without this, the first
    /// Get-DirtyBitmap of a session waited 10–15 ms for the JIT (docs/performance.md, "First query").
    /// Methods that carry precompiled code only have it bound; nothing runs.
    /// </summary>
    private static void WarmUp()
    {
        const BindingFlags all = BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        try
        {
            foreach (var assembly in AppDomain.CurrentDomain.GetAssemblies())
            {
                if (assembly.GetName().Name is not { } name || !name.StartsWith("VfioMigration", StringComparison.Ordinal)) continue;
                foreach (var type in assembly.GetTypes())
                {
                    // The picture cmdlets reach the drawing libraries: they load at the first picture, not here.
                    if (type.ContainsGenericParameters || typeof(PictureCmdlet).IsAssignableFrom(type)) continue;
                    foreach (var method in type.GetMethods(all))
                    {
                        if (method.IsAbstract || method.ContainsGenericParameters || (method.Attributes & MethodAttributes.PinvokeImpl) != 0) continue;
                        try { RuntimeHelpers.PrepareMethod(method.MethodHandle); }
                        catch (Exception e) when (e is not OutOfMemoryException) { /* a method the runtime cannot compile ahead: it is compiled at its first call */ }
                    }
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Warming up is an optimisation: a type that does not load (an optional dependency) ends it quietly.
        }
    }
}
