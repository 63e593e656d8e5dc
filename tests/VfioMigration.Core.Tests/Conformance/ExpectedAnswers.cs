using System;
using System.Collections.Generic;
using System.IO;
using VfioMigration.Core.Conformance;

namespace VfioMigration.Core.Tests.Conformance;

/// <summary>
/// The expected answers of a scenario: the real kernel's, written by <c>build.ps1 -Task LabExpected</c> from
/// a lab run into Conformance/Expected/&lt;scenario&gt;.txt, one "step | answer" per line after '#' lines
/// that say which kernel answered.
/// </summary>
internal static class ExpectedAnswers
{
    public const string Separator = " | ";

    /// <summary>The folder of the expected-answer files in the source tree (found upward from the test assembly).</summary>
    public static string Folder
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "Conformance", "Expected");
                if (File.Exists(Path.Combine(dir.FullName, "VfioMigration.Core.Tests.csproj")) && Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException($"No Conformance/Expected folder above {AppContext.BaseDirectory}.");
        }
    }

    public static IReadOnlyList<Observation> Load(string scenario)
    {
        string path = Path.Combine(Folder, scenario + ".txt");
        var list = new List<Observation>();
        foreach (string line in File.ReadAllLines(path))
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int at = line.IndexOf(Separator, StringComparison.Ordinal);
            if (at < 0) throw new FormatException($"{path}: '{line}' is not 'step | answer'.");
            list.Add(new Observation(scenario, line.Substring(0, at), line.Substring(at + Separator.Length)));
        }
        return list;
    }

    /// <summary>The kernel release the file's header names, or null.</summary>
    public static string? Kernel(string scenario)
    {
        foreach (string line in File.ReadLines(Path.Combine(Folder, scenario + ".txt")))
        {
            if (!line.StartsWith('#')) break;
            var m = System.Text.RegularExpressions.Regex.Match(line, @"Linux (\S+) in the QEMU lab");
            if (m.Success) return m.Groups[1].Value;
        }
        return null;
    }

    /// <summary>The observations as the file's lines (to write a new expected file from a reviewed run).</summary>
    public static string Format(IEnumerable<Observation> observations)
    {
        var text = new System.Text.StringBuilder();
        foreach (var o in observations) text.Append(o.Step).Append(Separator).Append(o.Answer).Append('\n');
        return text.ToString();
    }
}
