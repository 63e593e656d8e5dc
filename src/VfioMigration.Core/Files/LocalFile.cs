using System;

using VfioMigration.Core.Native;

namespace VfioMigration.Core.Files;

/// <summary>What a path or a descriptor is, from statx's S_IFMT bits.</summary>
public enum LocalFileType
{
    Regular,
    Directory,
    Fifo,
    CharacterDevice,
    BlockDevice,
    Socket,
    Other,
}

/// <summary>
/// A file of this machine's own file system that the module reads or writes itself (state files, bitmap
/// files, a simulated host's configuration), not a VFIO descriptor of the seam: opened with O_NONBLOCK so
/// that a FIFO never blocks open(), created with O_EXCL and the mode asked for (the umask can only take
/// bits away), written with fsync. Every failed call throws a <see cref="VfioNativeException"/> naming
/// the call, the path and errno.
/// </summary>
public sealed class LocalFile : IDisposable
{
    /// <summary>rw------- : a state file can hold guest data.</summary>
    public const int OwnerOnly = 0x180;

    private int _fd;

    private LocalFile(int fd, string path)
    {
        _fd = fd;
        Path = path;
    }

    /// <summary>The path the file was opened by.</summary>
    public string Path { get; }

    /// <summary>open(O_RDONLY | O_NONBLOCK): never waits for a FIFO's writer or a device.</summary>
    public static LocalFile OpenRead(string path) =>
        new(Open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY | Libc.O_CLOEXEC, 0), path);

    /// <summary>open(O_WRONLY | O_CREAT | O_EXCL, <paramref name="mode"/>): a new file, never an existing one.</summary>
    public static LocalFile CreateNew(string path, int mode = OwnerOnly) =>
        new(Open(path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOCTTY | Libc.O_CLOEXEC, mode), path);

    /// <summary>fstat of the open descriptor (statx with AT_EMPTY_PATH): its type, size and permission bits.</summary>
    public (LocalFileType Type, long Size, int Mode) Stat()
    {
        if (Libc.statx(Fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_TYPE | Libc.STATX_MODE | Libc.STATX_SIZE, out var b) != 0)
            throw new VfioNativeException("statx", Libc.errno, Path);
        return (TypeOf(b.stx_mode), (long)b.stx_size, b.stx_mode & 0xFFF);
    }

    /// <summary>What <paramref name="path"/> is (following symbolic links), or null if nothing is there.</summary>
    public static LocalFileType? TypeOf(string path)
    {
        if (Libc.statx(Libc.AT_FDCWD, path, 0, Libc.STATX_TYPE, out var b) == 0) return TypeOf(b.stx_mode);
        int errno = Libc.errno;
        if (errno is Errno.ENOENT) return null;
        throw new VfioNativeException("statx", errno, path);
    }

    /// <summary>read(2) until <paramref name="buffer"/> is full or the file ends; the bytes read.</summary>
    public int Read(Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            nint n = Libc.read(Fd, buffer.Slice(done));
            if (n < 0)
            {
                int errno = Libc.errno;
                if (errno == Errno.EINTR) continue;
                throw new VfioNativeException("read", errno, Path);
            }
            if (n == 0) break;
            done += (int)n;
        }
        return done;
    }

    /// <summary>pread(2) at <paramref name="offset"/> until <paramref name="buffer"/> is full or the file ends; the bytes read.</summary>
    public int ReadAt(Span<byte> buffer, long offset)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            nint n = Libc.pread(Fd, buffer.Slice(done), offset + done);
            if (n < 0)
            {
                int errno = Libc.errno;
                if (errno == Errno.EINTR) continue;
                throw new VfioNativeException("pread", errno, Path);
            }
            if (n == 0) break;
            done += (int)n;
        }
        return done;
    }

    /// <summary>write(2) until every byte is taken (a full disk answers ENOSPC, possibly after a short write).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        int done = 0;
        while (done < data.Length)
        {
            nint n = Libc.write(Fd, data.Slice(done));
            if (n < 0)
            {
                int errno = Libc.errno;
                if (errno == Errno.EINTR) continue;
                throw new VfioNativeException("write", errno, Path);
            }
            if (n == 0) throw new VfioNativeException("write", Errno.EIO, Path, "no byte was written");
            done += (int)n;
        }
    }

    /// <summary>fsync(2): the bytes are on the disk (delayed allocation reports a full disk here).</summary>
    public void Sync()
    {
        if (Libc.fsync(Fd) != 0) throw new VfioNativeException("fsync", Libc.errno, Path);
    }

    /// <summary>
    /// Renames <paramref name="from"/> to <paramref name="to"/>. Without <paramref name="replace"/> an
    /// existing <paramref name="to"/> is never replaced (renameat2 RENAME_NOREPLACE; EEXIST), so a file that
    /// appeared after the caller looked is not lost either.
    /// </summary>
    public static void Rename(string from, string to, bool replace)
    {
        if (Libc.renameat2(Libc.AT_FDCWD, from, Libc.AT_FDCWD, to, replace ? 0 : Libc.RENAME_NOREPLACE) == 0) return;
        int errno = Libc.errno;
        if (!replace && errno == Errno.EINVAL)
        {
            // A file system without RENAME_NOREPLACE: look, then rename (a narrow race the flag would close).
            if (TypeOf(to) is not null) throw new VfioNativeException("renameat2", Errno.EEXIST, to);
            if (Libc.renameat2(Libc.AT_FDCWD, from, Libc.AT_FDCWD, to, 0) == 0) return;
            errno = Libc.errno;
        }
        throw new VfioNativeException("renameat2", errno, to, $"renaming '{from}'");
    }

    /// <summary>unlink(2); true if the name is gone (it was removed, or was not there).</summary>
    public static bool TryUnlink(string path) => Libc.unlink(path) == 0 || Libc.errno == Errno.ENOENT;

    /// <summary>fsync of a directory, so that a rename in it survives a crash.</summary>
    public static void SyncDirectory(string directory)
    {
        int fd = Open(directory, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        try
        {
            if (Libc.fsync(fd) != 0) throw new VfioNativeException("fsync", Libc.errno, directory);
        }
        finally
        {
            Libc.close(fd);
        }
    }

    public void Dispose()
    {
        int fd = _fd;
        _fd = -1;
        if (fd >= 0) Libc.close(fd);
    }

    private int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(Path);

    private static int Open(string path, int flags, int mode)
    {
        while (true)
        {
            int fd = Libc.open(path, flags, mode);
            if (fd >= 0) return fd;
            int errno = Libc.errno;
            if (errno != Errno.EINTR) throw new VfioNativeException("open", errno, path);
        }
    }

    private static LocalFileType TypeOf(uint mode) => (mode & Libc.S_IFMT) switch
    {
        Libc.S_IFREG => LocalFileType.Regular,
        Libc.S_IFDIR => LocalFileType.Directory,
        Libc.S_IFIFO => LocalFileType.Fifo,
        Libc.S_IFCHR => LocalFileType.CharacterDevice,
        Libc.S_IFBLK => LocalFileType.BlockDevice,
        Libc.S_IFSOCK => LocalFileType.Socket,
        _ => LocalFileType.Other,
    };
}
