using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using VfioMigration.Core.Native;
using Xunit;

namespace VfioMigration.Core.Tests.NativeLayer;

/// <summary>
/// Every libc import of Native/Libc.cs, as C# declares it, assigned to a pointer to the libc function in a C
/// file compiled with gcc against the system's headers: a parameter or result of the wrong size or
/// signedness makes the assignment incompatible and the compile fail (Tmds.LibC checks its imports so).
/// </summary>
public class LibcSignatureTests
{
    // Functions with a C ellipsis: their fixed parameters are compared, and the pointer type ends in "...".
    private static readonly Dictionary<string, int> Variadic = new() { ["open"] = 2, ["ioctl"] = 2 };

    private static string CType(Type t) => t switch
    {
        _ when t == typeof(int) => "int32_t",
        _ when t == typeof(uint) => "uint32_t",
        _ when t == typeof(long) => "int64_t",
        _ when t == typeof(ulong) => "uint64_t",
        _ when t == typeof(short) => "int16_t",
        _ when t == typeof(nint) => "intptr_t",
        _ when t == typeof(nuint) => "uintptr_t",
        _ when t == typeof(string) => "const char *",
        _ when t == typeof(void*) => "void *",
        _ when t.IsPointer && t.GetElementType()!.Name == "pollfd" => "struct pollfd *",
        _ when t.IsPointer && t.GetElementType()!.Name == "statx_buf" => "struct statx *",
        _ => throw new InvalidOperationException($"no C type for {t}: add it to this test"),
    };

    private static string CType(ParameterInfo p) => p.GetCustomAttributes().FirstOrDefault(a => a.GetType().Name == "CTypeAttribute") is { } a
        ? (string)a.GetType().GetProperty("Type")!.GetValue(a)!
        : CType(p.ParameterType);

    /// <summary>The imports: methods of Libc carrying LibraryImport, with the C function each binds.</summary>
    private static IEnumerable<(MethodInfo Method, string Entry)> Imports()
    {
        var libc = typeof(Errno).Assembly.GetType("VfioMigration.Core.Native.Libc")!;
        foreach (var m in libc.GetMethods(BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly))
        {
            var import = m.GetCustomAttribute<LibraryImportAttribute>();
            if (import is null) continue;
            yield return (m, import.EntryPoint ?? m.Name);
        }
    }

    private static string Line(MethodInfo m, string entry, string? wrongResult = null)
    {
        var ps = m.GetParameters();
        int fixedCount = Variadic.TryGetValue(entry, out int n) ? n : ps.Length;
        var types = ps.Take(fixedCount).Select(CType).ToList();
        if (Variadic.ContainsKey(entry)) types.Add("...");
        string result = wrongResult ?? CType(m.ReturnParameter);
        return $"  {{ {result} (*f)({string.Join(", ", types)}) = {entry}; (void)f; }}  /* {m.Name} */";
    }

    private static (int ExitCode, string Errors) Compile(IEnumerable<string> body)
    {
        string gcc = HeaderProbe.FindOnPath("gcc") ?? throw new InvalidOperationException("gcc is needed (apt-get install gcc libc6-dev).");
        string dir = Directory.CreateTempSubdirectory("vfiomig-sig").FullName;
        try
        {
            var lines = new List<string>
            {
                "#define _GNU_SOURCE", "#include <fcntl.h>", "#include <poll.h>", "#include <stdint.h>", "#include <stdio.h>",
                "#include <sys/ioctl.h>", "#include <sys/mman.h>", "#include <sys/stat.h>", "#include <unistd.h>",
                "int main(void) {",
            };
            lines.AddRange(body);
            lines.Add("  return 0; }");
            File.WriteAllLines(Path.Combine(dir, "sig.c"), lines);
            var r = HeaderProbe.Exec(gcc, dir, "-std=gnu11", "-Werror", "-Wall", "-Wno-unused", "-c", "-o", "sig.o", "sig.c");
            return (r.ExitCode, r.Stderr + "\n" + string.Join("\n", lines));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void EveryImportHasTheSizesAndSignednessOfItsCDeclaration()
    {
        var imports = Imports().ToList();
        Assert.True(imports.Count >= 15, $"found {imports.Count} imports: the reflection no longer sees LibraryImport");
        var (exit, errors) = Compile(imports.Select(i => Line(i.Method, i.Entry)));
        Assert.True(exit == 0, errors);
    }

    [Fact]
    public void AWrongDeclarationFailsTheCheck()
    {
        // The same check with close() declared as returning a 64-bit value: gcc must refuse it.
        var close = Imports().Single(i => i.Entry == "close");
        var (exit, _) = Compile(new[] { Line(close.Method, close.Entry, wrongResult: "int64_t") });
        Assert.NotEqual(0, exit);
    }
}
