using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Xml.Linq;
using Xunit;

namespace VfioMigration.Core.Tests.Architecture;

/// <summary>
/// The layers of docs/architecture.md, as the projects declare them and as the compiled assemblies
/// reference each other: no arrow runs back up, and only the native project allows unsafe code.
/// </summary>
public class LayerTests
{
    /// <summary>Each project and the projects it may reference (nothing else of ours).</summary>
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["VfioMigration.Native"] = Array.Empty<string>(),
        ["VfioMigration.Kernel"] = new[] { "VfioMigration.Native" },
        ["VfioMigration.Linux"] = new[] { "VfioMigration.Native", "VfioMigration.Kernel" },
        ["VfioMigration.Simulation"] = new[] { "VfioMigration.Native", "VfioMigration.Kernel" },
        ["VfioMigration.Core"] = new[] { "VfioMigration.Native", "VfioMigration.Kernel" },
        ["VfioMigration.Pictures"] = new[] { "VfioMigration.Core", "VfioMigration.Kernel" },
        ["VfioMigration"] = new[] { "VfioMigration.Core", "VfioMigration.Linux", "VfioMigration.Simulation", "VfioMigration.Pictures" },
    };

    private static string Root([CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", ".."));

    // src/BuildTools holds the build's own tools (a project without code that precompiles the module), not a layer.
    private static IEnumerable<string> ProductProjects() =>
        Directory.GetFiles(Path.Combine(Root(), "src"), "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.StartsWith(Path.Combine(Root(), "src", "BuildTools") + Path.DirectorySeparatorChar, StringComparison.Ordinal));

    [Fact]
    public void EveryProductProjectIsALayerAndReferencesOnlyTheLayersBelowIt()
    {
        var seen = new List<string>();
        foreach (string csproj in ProductProjects())
        {
            string name = Path.GetFileNameWithoutExtension(csproj);
            seen.Add(name);
            Assert.True(Allowed.ContainsKey(name), $"{name} is not in the layer table of docs/architecture.md (and this test)");
            var refs = XDocument.Load(csproj).Descendants("ProjectReference")
                .Select(r => Path.GetFileNameWithoutExtension((string)r.Attribute("Include")!)).ToArray();
            var wrong = refs.Except(Allowed[name]).ToArray();
            Assert.True(wrong.Length == 0, $"{name} references {string.Join(", ", wrong)}: an arrow that runs up or sideways");
        }
        Assert.Equal(Allowed.Keys.OrderBy(k => k), seen.OrderBy(k => k));
    }

    [Fact]
    public void OnlyTheNativeProjectAllowsUnsafeCode()
    {
        var projects = ProductProjects().Concat(Directory.GetFiles(Path.Combine(Root(), "tests"), "*.csproj", SearchOption.AllDirectories))
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"));
        var unsafeOnes = projects.Where(p => XDocument.Load(p).Descendants("AllowUnsafeBlocks").Any(e => e.Value.Trim().Equals("true", StringComparison.OrdinalIgnoreCase)))
            .Select(Path.GetFileNameWithoutExtension).ToArray();
        Assert.Equal(new[] { "VfioMigration.Native" }, unsafeOnes);
    }

    [Theory]
    [InlineData(typeof(VfioMigration.Core.Native.Errno))]
    [InlineData(typeof(VfioMigration.Core.Kernel.IVfioKernel))]
    [InlineData(typeof(VfioMigration.Core.Native.LinuxKernel))]
    [InlineData(typeof(VfioMigration.Core.Simulation.SimulatedKernel))]
    [InlineData(typeof(VfioMigration.Core.Vfio.VfioContainer))]
    [InlineData(typeof(VfioMigration.Pictures.HeatmapPicture))]
    public void TheCompiledAssembliesReferenceNoLayerAboveThem(Type inLayer)
    {
        var assembly = inLayer.Assembly;
        string name = assembly.GetName().Name!;
        var ours = assembly.GetReferencedAssemblies().Select(a => a.Name!).Where(n => n.StartsWith("VfioMigration", StringComparison.Ordinal)).ToArray();
        Assert.True(ours.All(Allowed[name].Contains), $"{name} references {string.Join(", ", ours.Except(Allowed[name]))}");
        Assert.DoesNotContain(assembly.GetReferencedAssemblies(), a => a.Name == "System.Management.Automation");
    }
}
