using System;
using System.IO;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Files;

/// <summary>
/// The module's rules for the files it reads and writes itself (state files, bitmap files, a simulated
/// host's configuration): only regular files, opened without ever blocking (a FIFO, a device, a
/// directory, /proc or /sys is refused with a module error, never waited on), created 0600, written
/// under a temporary name and renamed only when whole. Every file-system failure becomes a
/// <see cref="VfioRuleException"/> whose id is one of the constants here and whose message names the
/// path, the call and errno's text.
/// </summary>
public static class RegularFile
{
    /// <summary>The path is a FIFO, a device, a directory or a socket.</summary>
    public const string NotRegularId = ErrorIds.FileNotRegular;

    /// <summary>A file is there and -Force was not given.</summary>
    public const string ExistsId = ErrorIds.FileExists;

    /// <summary>open, read or stat of a file to read failed (other than a missing file).</summary>
    public const string ReadFailedId = ErrorIds.FileReadFailed;

    /// <summary>Creating, writing, syncing or renaming a file failed (a full disk, a read-only or missing folder, no permission).</summary>
    public const string WriteFailedId = ErrorIds.FileWriteFailed;

    /// <summary>
    /// Opens <paramref name="path"/> to read, refusing anything but a regular file. A missing file is
    /// reported with <paramref name="notFoundId"/>.
    /// </summary>
    public static LocalFile OpenRead(string path, string what, string notFoundId)
    {
        LocalFile file;
        try { file = LocalFile.OpenRead(path); }
        catch (VfioNativeException e) when (e.Errno == Errno.ENOENT)
        {
            throw new VfioRuleException(notFoundId, $"The {what} '{path}' does not exist.");
        }
        catch (VfioNativeException e)
        {
            throw Failed(ReadFailedId, what, path, e);
        }
        try
        {
            var (type, _, _) = file.Stat();
            if (type != LocalFileType.Regular) throw NotRegular(what, path, type);
            return file;
        }
        catch (Exception e)
        {
            file.Dispose();
            if (e is VfioNativeException n) throw Failed(ReadFailedId, what, path, n);
            throw;
        }
    }

    /// <summary>A whole regular file's bytes (at most <paramref name="maxBytes"/>).</summary>
    public static byte[] ReadAllBytes(string path, string what, string notFoundId, long maxBytes = 1L << 30)
    {
        using var file = OpenRead(path, what, notFoundId);
        try
        {
            var (_, size, _) = file.Stat();
            if (size > maxBytes) throw new VfioRuleException(ReadFailedId, $"The {what} '{path}' holds {size} bytes; at most {maxBytes} are read.");
            var bytes = new byte[size];
            int n = file.Read(bytes);
            return n == bytes.Length ? bytes : bytes.AsSpan(0, n).ToArray();
        }
        catch (VfioNativeException e)
        {
            throw Failed(ReadFailedId, what, path, e);
        }
    }

    /// <summary>
    /// Refuses a target that is not a regular file, and an existing one unless <paramref name="replace"/>:
    /// what Save, Export and Start-VfioMigration -Path check before any device moves.
    /// </summary>
    public static void CheckTarget(string path, string what, bool replace)
    {
        LocalFileType? type;
        try { type = LocalFile.TypeOf(path); }
        catch (VfioNativeException e) { throw Failed(WriteFailedId, what, path, e); }
        if (type is null) return;
        if (type != LocalFileType.Regular) throw NotRegular(what, path, type.Value);
        if (!replace) throw new VfioRuleException(ExistsId, $"'{path}' exists; use -Force to replace it.");
    }

    /// <summary>A file-system failure as the module's error: the path, the call and errno's text.</summary>
    public static VfioRuleException Failed(string id, string what, string path, VfioNativeException e)
    {
        string hint = e.Errno switch
        {
            Errno.ENOSPC or Errno.EDQUOT => " (the disk is full)",
            Errno.EROFS => " (the file system is read-only)",
            Errno.ENOENT when id == WriteFailedId => " (the folder does not exist)",
            Errno.EACCES or Errno.EPERM => " (no permission)",
            _ => "",
        };
        return new VfioRuleException(id, $"The {what} '{path}': {e.Operation} failed: {e.ErrnoText} ({e.ErrnoName}){hint}.");
    }

    private static VfioRuleException NotRegular(string what, string path, LocalFileType type)
    {
        string kind = type switch
        {
            LocalFileType.Directory => "a directory",
            LocalFileType.Fifo => "a FIFO (named pipe)",
            LocalFileType.CharacterDevice => "a character device",
            LocalFileType.BlockDevice => "a block device",
            LocalFileType.Socket => "a socket",
            _ => "not a regular file",
        };
        return new VfioRuleException(NotRegularId, $"'{path}' is {kind}: a {what} must be a regular file.");
    }
}

/// <summary>
/// Writes a file under a temporary name in the target's folder (created 0600 with O_EXCL) and renames it
/// to its name only on <see cref="Commit"/>, after fsync; without a commit, disposing removes the
/// temporary file whatever failed, so no partial file survives. Without replace, an existing file is
/// never replaced, even one that appears while the file is written.
/// </summary>
public sealed class AtomicFileWriter : IDisposable
{
    private const int BufferSize = 1 << 16;
    private readonly string _what;
    private readonly bool _replace;
    private readonly LocalFile _file;
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _buffered;
    private bool _committed;
    private bool _closed;

    public AtomicFileWriter(string path, string what, bool replace)
    {
        Path = System.IO.Path.GetFullPath(path);
        _what = what;
        _replace = replace;
        RegularFile.CheckTarget(Path, what, replace);
        string folder = System.IO.Path.GetDirectoryName(Path) ?? "/";
        TempPath = System.IO.Path.Combine(folder, "." + System.IO.Path.GetFileName(Path) + "." + Guid.NewGuid().ToString("N")[..8] + ".partial");
        try { _file = LocalFile.CreateNew(TempPath); }
        catch (VfioNativeException e) { throw RegularFile.Failed(RegularFile.WriteFailedId, what, Path, e); }
    }

    /// <summary>The full path the file gets on commit.</summary>
    public string Path { get; }

    /// <summary>Where the bytes are written until the commit.</summary>
    public string TempPath { get; }

    /// <summary>Bytes written so far.</summary>
    public long Length { get; private set; }

    public void Write(ReadOnlySpan<byte> data)
    {
        try
        {
            if (_buffered + data.Length > BufferSize) Flush();
            if (data.Length >= BufferSize)
            {
                _file.Write(data);
            }
            else
            {
                data.CopyTo(_buffer.AsSpan(_buffered));
                _buffered += data.Length;
            }
            Length += data.Length;
        }
        catch (VfioNativeException e)
        {
            throw RegularFile.Failed(RegularFile.WriteFailedId, _what, Path, e);
        }
    }

    /// <summary>Writes what is buffered, syncs, closes and renames the file to its name: the point after which it exists.</summary>
    public void Commit()
    {
        try
        {
            Flush();
            _file.Sync();
            _file.Dispose();
            _closed = true;
            LocalFile.Rename(TempPath, Path, _replace);
            _committed = true;
        }
        catch (VfioNativeException e) when (e.Errno == Errno.EEXIST && !_replace)
        {
            throw new VfioRuleException(RegularFile.ExistsId, $"'{Path}' appeared while it was written; use -Force to replace it.");
        }
        catch (VfioNativeException e)
        {
            throw RegularFile.Failed(RegularFile.WriteFailedId, _what, Path, e);
        }
        try { LocalFile.SyncDirectory(System.IO.Path.GetDirectoryName(Path) ?? "/"); }
        catch (VfioNativeException) { /* the rename is done; a folder that cannot be synced only delays durability */ }
    }

    private void Flush()
    {
        if (_buffered == 0) return;
        _file.Write(_buffer.AsSpan(0, _buffered));
        _buffered = 0;
    }

    /// <summary>Without a commit the temporary file is removed. Never throws: it runs on every failure path.</summary>
    public void Dispose()
    {
        if (!_closed)
        {
            _file.Dispose();
            _closed = true;
        }
        if (!_committed) LocalFile.TryUnlink(TempPath);
    }
}
