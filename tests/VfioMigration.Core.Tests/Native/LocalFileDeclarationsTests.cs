using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VfioMigration.Core.Files;
using VfioMigration.Core.Native;
using Xunit;

namespace VfioMigration.Core.Tests.NativeLayer;

/// <summary>
/// The libc declarations of Native/LocalFile.cs (open flags, statx and its struct, RENAME_NOREPLACE)
/// compared with what gcc sees in the system's headers, as the vfio.h mirrors are.
/// </summary>
public class LocalFileDeclarationsTests
{
    private static readonly string[] Constants =
    {
        "O_RDONLY", "O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_NOCTTY", "O_NONBLOCK", "O_CLOEXEC",
        "AT_FDCWD", "AT_EMPTY_PATH", "STATX_TYPE", "STATX_MODE", "STATX_SIZE",
        "S_IFMT", "S_IFREG", "S_IFDIR", "S_IFIFO", "S_IFCHR", "S_IFBLK", "S_IFSOCK", "RENAME_NOREPLACE",
    };

    [Fact]
    public void ConstantsAndTheStatxLayoutMatchTheSystemHeaders()
    {
        string gcc = HeaderProbe.FindOnPath("gcc") ?? throw new InvalidOperationException("gcc is needed (apt-get install gcc libc6-dev linux-libc-dev).");
        string dir = Directory.CreateTempSubdirectory("vfiomig-libc").FullName;
        try
        {
            var lines = new List<string>
            {
                "#define _GNU_SOURCE", "#include <fcntl.h>", "#include <stdio.h>", "#include <stddef.h>", "#include <sys/stat.h>",
                "int main(void) {",
            };
            lines.AddRange(Constants.Select(c => $"  printf(\"{c} %lld\\n\", (long long)({c}));"));
            lines.Add("  printf(\"sizeof %zu\\n\", sizeof(struct statx));");
            foreach (var f in new[] { "stx_mask", "stx_mode", "stx_size" })
                lines.Add($"  printf(\"{f} %zu %zu\\n\", offsetof(struct statx, {f}), sizeof(((struct statx *)0)->{f}));");
            lines.Add("  return 0; }");
            File.WriteAllLines(Path.Combine(dir, "libc.c"), lines);
            var compile = HeaderProbe.Exec(gcc, dir, "-std=gnu11", "-o", "libc", "libc.c");
            Assert.True(compile.ExitCode == 0, compile.Stderr);
            var run = HeaderProbe.Exec(Path.Combine(dir, "libc"), dir);
            Assert.Equal(0, run.ExitCode);
            var facts = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToDictionary(p => p[0], p => p[1..]);

            var libc = typeof(Errno).Assembly.GetType("VfioMigration.Core.Native.Libc")!;
            foreach (string c in Constants)
            {
                var field = libc.GetField(c, BindingFlags.NonPublic | BindingFlags.Static) ?? throw new InvalidOperationException($"Libc declares no {c}");
                long declared = Convert.ToInt64(field.GetRawConstantValue());
                Assert.True(long.Parse(facts[c][0]) == declared, $"{c}: the header says {facts[c][0]}, Libc declares {declared}");
            }
            var statx = libc.GetNestedType("statx_buf", BindingFlags.NonPublic)!;
            Assert.Equal(int.Parse(facts["sizeof"][0]), (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(statx).Invoke(null, null)!);
            foreach (var f in new[] { "stx_mask", "stx_mode", "stx_size" })
            {
                var field = statx.GetField(f)!;
                Assert.Equal((int.Parse(facts[f][0]), int.Parse(facts[f][1])), (Marshal.OffsetOf(statx, f).ToInt32(), Marshal.SizeOf(field.FieldType)));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AFifoOpensWithoutBlockingAndStatSaysWhatItIs()
    {
        string dir = Directory.CreateTempSubdirectory("vfiomig-fifo").FullName;
        try
        {
            string fifo = Path.Combine(dir, "p");
            Assert.Equal(0, HeaderProbe.Exec("/usr/bin/mkfifo", dir, fifo).ExitCode);
            using (var f = LocalFile.OpenRead(fifo)) Assert.Equal(LocalFileType.Fifo, f.Stat().Type);
            Assert.Equal(LocalFileType.Directory, LocalFile.TypeOf(dir));
            Assert.Equal(LocalFileType.CharacterDevice, LocalFile.TypeOf("/dev/null"));
            Assert.Null(LocalFile.TypeOf(Path.Combine(dir, "none")));
            string file = Path.Combine(dir, "f");
            using (var w = LocalFile.CreateNew(file)) w.Write(new byte[] { 1, 2, 3 });
            using (var r = LocalFile.OpenRead(file)) Assert.Equal((LocalFileType.Regular, 3L, 0x180), r.Stat());
            Assert.Equal(Errno.EEXIST, Assert.Throws<VfioNativeException>(() => LocalFile.CreateNew(file)).Errno);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
