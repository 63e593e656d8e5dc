using System;
using VfioMigration.Core.Files;

namespace VfioMigration.Pictures;

/// <summary>Writes a picture the way the module writes its other files: a temporary name (0600), fsync, rename; no partial file on failure.</summary>
public static class PictureFile
{
    public static void Write(string path, ReadOnlySpan<byte> png, bool replace)
    {
        using var file = new AtomicFileWriter(path, "picture", replace);
        file.Write(png);
        file.Commit();
    }
}
