using System;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Xunit;

namespace VfioMigration.Core.Tests.Architecture;

/// <summary>One registry of error ids (Core's ErrorIds): every id the code raises is in it, and about_VfioMigration lists it.</summary>
public class ErrorIdTests
{
    private static string Root([CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", ".."));

    private static string[] Sources() =>
        Directory.GetFiles(Path.Combine(Root(), "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .ToArray();

    [Fact]
    public void EveryIdRaisedInTheSourceIsRegistered()
    {
        var raised = new Regex(@"new VfioRuleException\(\s*""(?<id>[A-Za-z0-9]+)""|RuleError\((?:[^;]*?),\s*""(?<id>[A-Za-z0-9]+)""\s*,\s*(?:ErrorCategory|target|[a-z])", RegexOptions.Singleline);
        var missing = (from f in Sources()
                       from Match m in raised.Matches(File.ReadAllText(f))
                       let id = m.Groups["id"].Value
                       where ErrorIds.Find(id) is null
                       select $"{Path.GetFileName(f)}: {id}").Distinct().ToArray();
        Assert.True(missing.Length == 0, "raised but not registered in ErrorIds: " + string.Join(", ", missing));
        Assert.True(Sources().Any(f => raised.IsMatch(File.ReadAllText(f))), "the scan found no raise site at all");
    }

    [Fact]
    public void EveryConstantIsRegisteredOnceAndEveryEntryHasAMeaningAndARemedy()
    {
        var constants = typeof(ErrorIds).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).ToArray();
        Assert.All(constants, c => Assert.NotNull(ErrorIds.Find(c)));
        Assert.Equal(ErrorIds.All.Count, ErrorIds.All.Select(e => e.Id).Distinct().Count());
        Assert.All(ErrorIds.All, e => Assert.False(string.IsNullOrWhiteSpace(e.Meaning) || string.IsNullOrWhiteSpace(e.Remedy), e.Id));
    }

    [Fact]
    public void AboutVfioMigrationListsExactlyTheRegisteredIds()
    {
        string about = File.ReadAllText(Path.Combine(Root(), "docs", "about_VfioMigration.md"));
        var rows = Regex.Matches(about, @"^\| (?<id>[A-Z][A-Za-z0-9]+) \| (?<kind>[A-Za-z]+) \|", RegexOptions.Multiline)
            .Select(m => (m.Groups["id"].Value, m.Groups["kind"].Value)).ToArray();
        Assert.Equal(ErrorIds.All.Select(e => (e.Id, e.Kind.ToString())).OrderBy(x => x.Id), rows.OrderBy(x => x.Item1));
    }
}
