using System;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using SkiaSharp;
using VfioMigration.Core;

namespace VfioMigration.Pictures;

/// <summary>
/// Finds the native libraries SkiaSharp and HarfBuzzSharp call (libSkiaSharp.so, libHarfBuzzSharp.so) in the
/// module's own folder. An application finds them through its deps.json; a PowerShell module has none, so
/// the build lays them out as runtimes/linux-&lt;arch&gt;/native beside the assemblies (x64 and arm64) and
/// this resolver loads them from there, before the runtime's own search (which still applies, for tests
/// and applications that have a deps.json). Called before the first drawing; nothing else in the module
/// touches these libraries.
/// </summary>
public static class PictureRuntime
{
    private static readonly object Gate = new();
    private static bool _resolverSet;
    private static bool _checked;

    /// <summary>linux-x64, linux-arm64, ...: the folder name under runtimes/ for this process.</summary>
    public static string RuntimeIdentifier => "linux-" + RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();

    /// <summary>Where this module keeps the native libraries for this process's architecture.</summary>
    public static string NativeFolder =>
        Path.Combine(Path.GetDirectoryName(typeof(PictureRuntime).Assembly.Location) ?? AppContext.BaseDirectory, "runtimes", RuntimeIdentifier, "native");

    /// <summary>
    /// Installs the resolver (once) and checks that Skia loads, by making a one-pixel surface. Throws a
    /// <see cref="VfioRuleException"/> PictureLibraryMissing naming the file searched when it does not.
    /// </summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_checked) return;
            if (!_resolverSet)
            {
                SetResolver(typeof(SKObject).Assembly);
                SetResolver(typeof(HarfBuzzSharp.Blob).Assembly);
                _resolverSet = true;
            }
            try
            {
                using var surface = SKSurface.Create(new SKImageInfo(1, 1));
                if (surface is null) throw Missing($"Skia could not make a surface: {Describe()}");
            }
            catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException or BadImageFormatException)
            {
                // The loader's own text lists every path it tried: the one that matters is the module's.
                throw Missing($"the native drawing library for {RuntimeIdentifier} does not load: {Describe()} ({e.GetType().Name}). " +
                              "Reinstall the module; Show-DirtyHeatmap draws in the terminal without it.");
            }
            _checked = true;
        }
    }

    private static VfioRuleException Missing(string message) => new(ErrorIds.PictureLibraryMissing, message);

    private static string Describe()
    {
        string folder = NativeFolder;
        string file = Path.Combine(folder, "libSkiaSharp.so");
        return File.Exists(file) ? $"{file} is there but does not load" : $"{file} is missing";
    }

    private static void SetResolver(Assembly assembly)
    {
        try
        {
            NativeLibrary.SetDllImportResolver(assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // The host installed its own resolver for this assembly: the host knows where its libraries are.
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        string file = name.EndsWith(".so", StringComparison.Ordinal) ? name : name + ".so";
        string path = Path.Combine(NativeFolder, file);
        if (File.Exists(path) && NativeLibrary.TryLoad(path, out IntPtr handle)) return handle;
        return IntPtr.Zero;   // the runtime's own search
    }
}
