using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;

namespace VfioMigration.Core.Tests.NativeLayer;

/// <summary>What the module declares and the header may or may not define.</summary>
public enum HeaderItemKind
{
    Ioctl,
    Constant,
    StructSize,
    Field,
}

/// <summary>
/// One name to look up in &lt;linux/vfio.h&gt;. <see cref="Key"/> is how the header facts, the pinned
/// values and the failure messages name it: "ioctl:VFIO_DEVICE_FEATURE", "const:VFIO_TYPE1v2_IOMMU",
/// "struct:vfio_bitmap", "field:vfio_iommu_type1_dirty_bitmap_get.bitmap.pgsize".
/// </summary>
public sealed record HeaderItem(HeaderItemKind Kind, string Name, string? Path = null)
{
    public string Key => Kind switch
    {
        HeaderItemKind.Ioctl => "ioctl:" + Name,
        HeaderItemKind.Constant => "const:" + Name,
        HeaderItemKind.StructSize => "struct:" + Name,
        _ => $"field:{Name}.{Path}",
    };

    /// <summary>A C expression that compiles exactly when the header defines the item.</summary>
    public string ProbeExpression => Kind switch
    {
        HeaderItemKind.Ioctl or HeaderItemKind.Constant => $"(long long)({Name})",
        HeaderItemKind.StructSize => $"sizeof(struct {Name})",
        _ => $"offsetof(struct {Name}, {Path}) + sizeof(((struct {Name} *)0)->{Path})",
    };

    public override string ToString() => Key;
}

/// <summary>A struct member as the C compiler sees it.</summary>
/// <param name="TypeClass">gcc's __builtin_classify_type: 1 integer, 5 pointer (or decayed array), 12 struct.</param>
public sealed record HeaderField(long Offset, long Size, int TypeClass, bool Signed)
{
    public const int IntegerClass = 1;
    public const int PointerClass = 5;
    public const int RecordClass = 12;
}

/// <summary>A macro or enumerator value, and whether the header defines it as a macro.</summary>
public sealed record HeaderValue(long Value, bool IsMacro);

/// <summary>What the compiled C program reported about the system's &lt;linux/vfio.h&gt;.</summary>
public sealed class HeaderFacts
{
    /// <summary>LINUX_VERSION_CODE of &lt;linux/version.h&gt; (the headers' kernel version).</summary>
    public int LinuxVersionCode { get; init; }

    public string LinuxVersion => $"{LinuxVersionCode >> 16}.{(LinuxVersionCode >> 8) & 0xff}.{LinuxVersionCode & 0xff}";

    public Dictionary<string, HeaderValue> Values { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, long> StructSizes { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, HeaderField> Fields { get; } = new(StringComparer.Ordinal);

    /// <summary>Keys (see <see cref="HeaderItem.Key"/>) of the items the header does not define.</summary>
    public HashSet<string> Absent { get; } = new(StringComparer.Ordinal);

    /// <summary>state → (VFIO_DEVICE_STATE_VALID(state), VFIO_DEVICE_STATE_IS_ERROR(state)), or empty if the header lacks the macros.</summary>
    public Dictionary<uint, (bool Valid, bool IsError)> V1StateMacros { get; } = new();

    /// <summary>The generated program, for failure messages.</summary>
    public string Program { get; init; } = "";
}

/// <summary>
/// Compiles C against the system's &lt;linux/vfio.h&gt; with gcc. First every item is probed in a file of
/// its own (one gcc run over all of them): an item whose probe yields no object file is absent from
/// the header. No compiler message is parsed, so this works for macros, enumerators, structs and
/// members alike. Then one program prints every present item's value, size and offsets.
/// </summary>
public static class HeaderProbe
{
    public const string Header = "linux/vfio.h";

    private const string InstallHint =
        "The header comparison compiles a C program against the system's <linux/vfio.h>: install gcc and the " +
        "kernel's UAPI headers (Debian/Ubuntu: apt-get install gcc libc6-dev linux-libc-dev; " +
        "'./build.ps1 -Task Restore' does this when run as root).";

    public static HeaderFacts Run(IReadOnlyList<HeaderItem> items, IReadOnlyList<uint> v1States)
    {
        string gcc = FindOnPath("gcc") ?? throw new HeaderProbeException("gcc was not found on PATH. " + InstallHint);
        string dir = Path.Combine(Path.GetTempPath(), "vfio-header-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var present = Probe(gcc, dir, items, out bool headerFound, out string probeErrors);
            if (!headerFound)
                throw new HeaderProbeException($"gcc cannot compile #include <{Header}>. {InstallHint}\n{probeErrors}");

            string program = Program(items.Where(i => present.Contains(i.Key)).ToList(), v1States);
            File.WriteAllText(Path.Combine(dir, "layout.c"), program);
            var compile = Exec(gcc, dir, "-std=gnu11", "-O0", "-Wall", "-o", "layout", "layout.c");
            if (compile.ExitCode != 0)
                throw new HeaderProbeException($"the generated layout program does not compile (gcc exit {compile.ExitCode}):\n{compile.Stderr}\n{program}");
            var run = Exec(Path.Combine(dir, "layout"), dir);
            if (run.ExitCode != 0)
                throw new HeaderProbeException($"the layout program failed (exit {run.ExitCode}):\n{run.Stderr}");

            var facts = Parse(run.Stdout, program);
            foreach (var item in items.Where(i => !present.Contains(i.Key))) facts.Absent.Add(item.Key);
            return facts;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>The keys of the items whose probe compiled.</summary>
    private static HashSet<string> Probe(string gcc, string dir, IReadOnlyList<HeaderItem> items, out bool headerFound, out string errors)
    {
        var files = new List<string> { "probe_header.c" };
        File.WriteAllText(Path.Combine(dir, "probe_header.c"), Prologue + "int probe_header;\n");
        for (int i = 0; i < items.Count; i++)
        {
            string name = $"probe_{i:D4}.c";
            files.Add(name);
            File.WriteAllText(Path.Combine(dir, name),
                $"{Prologue}/* {items[i].Key} */\nunsigned long long probe_{i} = (unsigned long long)({items[i].ProbeExpression});\n");
        }

        // gcc -c compiles every file it is given and writes an object for each one that compiles.
        var args = new List<string> { "-std=gnu11", "-c", "-w" };
        args.AddRange(files);
        var result = Exec(gcc, dir, args.ToArray());
        errors = result.Stderr;
        headerFound = File.Exists(Path.Combine(dir, "probe_header.o"));
        var present = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < items.Count; i++)
        {
            if (File.Exists(Path.Combine(dir, $"probe_{i:D4}.o"))) present.Add(items[i].Key);
        }
        return present;
    }

    // iommufd.h arrived in 6.2 (the cdev ioctls of vfio.h in 6.6): included where the system has it, so that
    // a newer linux-libc-dev checks the iommufd mirrors too; on 6.1 they are absent and must be pinned.
    private const string Prologue = "#include <stddef.h>\n#include <" + Header + ">\n#if __has_include(<linux/iommufd.h>)\n#include <linux/iommufd.h>\n#endif\n";

    private static string Program(IReadOnlyList<HeaderItem> present, IReadOnlyList<uint> v1States)
    {
        var c = new StringBuilder();
        c.Append("#include <stdio.h>\n").Append(Prologue).Append("#include <linux/version.h>\n\n");
        c.Append("#define SIGNED_INTEGER(e) _Generic((e), signed char: 1, short: 1, int: 1, long: 1, long long: 1, default: 0)\n\n");

        // One zero object per struct, so member expressions name a real object.
        var structs = present.Where(i => i.Kind != HeaderItemKind.Ioctl && i.Kind != HeaderItemKind.Constant)
            .Select(i => i.Name).Distinct(StringComparer.Ordinal).ToList();
        foreach (string s in structs) c.Append($"static struct {s} object_{s};\n");

        c.Append("\nint main(void)\n{\n");
        c.Append("\tprintf(\"version\\t%d\\n\", LINUX_VERSION_CODE);\n");
        foreach (var item in present)
        {
            switch (item.Kind)
            {
                case HeaderItemKind.Ioctl:
                case HeaderItemKind.Constant:
                    c.Append($"#ifdef {item.Name}\n\tprintf(\"value\\t{item.Key}\\tmacro\\t%lld\\n\", (long long)({item.Name}));\n");
                    c.Append($"#else\n\tprintf(\"value\\t{item.Key}\\tenumerator\\t%lld\\n\", (long long)({item.Name}));\n#endif\n");
                    break;
                case HeaderItemKind.StructSize:
                    c.Append($"\tprintf(\"struct\\t{item.Name}\\t%zu\\n\", sizeof(struct {item.Name}));\n");
                    break;
                default:
                    string member = $"object_{item.Name}.{item.Path}";
                    c.Append($"\tprintf(\"field\\t{item.Key}\\t%zu\\t%zu\\t%d\\t%d\\n\", offsetof(struct {item.Name}, {item.Path}), " +
                             $"sizeof({member}), (int)__builtin_classify_type({member}), SIGNED_INTEGER({member}));\n");
                    break;
            }
        }

        // The v1 device_state macros take an lvalue without parentheses around it, so pass a plain variable.
        c.Append("#if defined(VFIO_DEVICE_STATE_VALID) && defined(VFIO_DEVICE_STATE_IS_ERROR)\n\t{\n");
        c.Append("\t\tstatic const unsigned int states[] = { ")
            .Append(string.Join(", ", v1States.Select(s => "0x" + s.ToString("x", CultureInfo.InvariantCulture) + "u")))
            .Append(" };\n");
        c.Append("\t\tfor (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {\n");
        c.Append("\t\t\tunsigned int state = states[i];\n");
        c.Append("\t\t\tprintf(\"v1state\\t%u\\t%d\\t%d\\n\", state, VFIO_DEVICE_STATE_VALID(state) ? 1 : 0, VFIO_DEVICE_STATE_IS_ERROR(state) ? 1 : 0);\n");
        c.Append("\t\t}\n\t}\n#endif\n");
        c.Append("\treturn 0;\n}\n");
        return c.ToString();
    }

    private static HeaderFacts Parse(string output, string program)
    {
        var facts = new HeaderFacts { Program = program, LinuxVersionCode = VersionCode(output) };
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] p = line.Split('\t');
            switch (p[0])
            {
                case "value":
                    facts.Values[p[1]] = new HeaderValue(long.Parse(p[3], CultureInfo.InvariantCulture), p[2] == "macro");
                    break;
                case "struct":
                    facts.StructSizes[p[1]] = long.Parse(p[2], CultureInfo.InvariantCulture);
                    break;
                case "field":
                    facts.Fields[p[1]] = new HeaderField(long.Parse(p[2], CultureInfo.InvariantCulture), long.Parse(p[3], CultureInfo.InvariantCulture),
                        int.Parse(p[4], CultureInfo.InvariantCulture), p[5] == "1");
                    break;
                case "v1state":
                    facts.V1StateMacros[uint.Parse(p[1], CultureInfo.InvariantCulture)] = (p[2] == "1", p[3] == "1");
                    break;
            }
        }
        return facts;
    }

    private static int VersionCode(string output)
    {
        string? line = output.Split('\n').FirstOrDefault(l => l.StartsWith("version\t", StringComparison.Ordinal));
        return line is null ? 0 : int.Parse(line["version\t".Length..], CultureInfo.InvariantCulture);
    }

    internal static string? FindOnPath(string program)
    {
        foreach (string d in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(d, program);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    internal sealed record ExecResult(int ExitCode, string Stdout, string Stderr);

    internal static ExecResult Exec(string file, string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";
        using var p = Process.Start(psi) ?? throw new HeaderProbeException($"cannot start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new HeaderProbeException($"{file} did not finish within 120 s");
        }
        p.WaitForExit();
        return new ExecResult(p.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>The header could not be compiled against (no gcc, no header, or a generator bug).</summary>
public sealed class HeaderProbeException : Exception
{
    public HeaderProbeException(string message) : base(message) { }
}
