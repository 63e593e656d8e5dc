using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using VfioMigration.Core.Files;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Dirty;

/// <summary>
/// The file Export-DirtyBitmap writes and Import-DirtyBitmap reads: UTF-8 JSON with the bitmap's
/// metadata, its words as base64 of little-endian u64s, and a CRC-64 of those bytes. Lossless: importing
/// gives the same bits, range, page size, scope, host and timestamp. Written to a temporary file (0600)
/// and renamed, so a failure never leaves a half-written file under the name; only regular files are
/// read or written (a FIFO or a device is refused, never waited on).
/// </summary>
public static class DirtyBitmapFile
{
    public const string Format = "VfioMigration.DirtyBitmap";
    public const int Version = 1;

    /// <summary>
    /// Writes the bitmap to <paramref name="path"/>. Throws <see cref="VfioRuleException"/> (FileExists without
    /// <paramref name="replace"/>, FileNotRegular, FileWriteFailed) and leaves no partial file.
    /// </summary>
    public static void Write(DirtyBitmap bitmap, string path, bool replace = true)
    {
        var bytes = MemoryMarshal.AsBytes(bitmap.GetWords()).ToArray();
        var doc = new JsonObject
        {
            ["format"] = Format,
            ["version"] = Version,
            ["iova"] = bitmap.Iova.ToString(),
            ["size"] = "0x" + bitmap.Size.ToString("x", CultureInfo.InvariantCulture),
            ["pageSize"] = bitmap.PageSize,
            ["pages"] = bitmap.Pages,
            ["dirtyPages"] = bitmap.DirtyPages,
            ["scope"] = bitmap.Scope.ToString(),
            ["hostKind"] = bitmap.HostKind.ToString(),
            ["host"] = bitmap.Host,
            ["timestamp"] = bitmap.Timestamp.ToString("O", CultureInfo.InvariantCulture),
            ["mappings"] = bitmap.MappedRanges is { } mapped ? Mappings(mapped) : null,
            ["crc64"] = Crc64.HashToUInt64(bytes).ToString("x16", CultureInfo.InvariantCulture),
            ["bitmap"] = Convert.ToBase64String(bytes),
        };
        using var file = new AtomicFileWriter(path, "bitmap file", replace);
        using (var stream = new MemoryStream())
        {
            using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
                doc.WriteTo(writer);
            file.Write(stream.GetBuffer().AsSpan(0, (int)stream.Length));
        }
        file.Commit();
    }

    // The mappings when the bitmap was read (optional: a file without them reads as before).
    private static JsonArray Mappings(IReadOnlyList<MappedRange> mapped)
    {
        var array = new JsonArray();
        foreach (var m in mapped)
            array.Add(new JsonObject { ["iova"] = "0x" + m.Iova.ToString("x", CultureInfo.InvariantCulture), ["size"] = "0x" + m.Size.ToString("x", CultureInfo.InvariantCulture) });
        return array;
    }

    public static DirtyBitmap Read(string path)
    {
        JsonNode? doc;
        var text = RegularFile.ReadAllBytes(path, "bitmap file", RegularFile.ReadFailedId);
        try { doc = JsonNode.Parse(text); }
        catch (JsonException e) { throw new InvalidDataException($"'{path}' is not a dirty-bitmap file: {e.Message}"); }
        if (doc is not JsonObject o || (string?)o["format"] != Format)
            throw new InvalidDataException($"'{path}' is not a dirty-bitmap file written by Export-DirtyBitmap.");
        int version = (int?)o["version"] ?? 0;
        if (version != Version) throw new InvalidDataException($"'{path}' is a version {version} dirty-bitmap file; this module reads version {Version}.");
        try
        {
            var bytes = Convert.FromBase64String((string)o["bitmap"]!);
            ulong crc = ulong.Parse((string)o["crc64"]!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (Crc64.HashToUInt64(bytes) != crc) throw new InvalidDataException($"'{path}' is damaged: the bitmap's checksum does not match.");
            if (bytes.Length % 8 != 0) throw new InvalidDataException($"'{path}' is damaged: the bitmap is not a whole number of 64-bit words.");
            var words = MemoryMarshal.Cast<byte, ulong>(bytes).ToArray();
            var bitmap = new DirtyBitmap(
                Iova.Parse((string)o["iova"]!),
                Iova.Parse((string)o["size"]!).Value,
                (ulong)o["pageSize"]!,
                words,
                Enum.Parse<DirtyScope>((string)o["scope"]!),
                Enum.Parse<HostKind>((string)o["hostKind"]!),
                (string)o["host"]!,
                DateTimeOffset.Parse((string)o["timestamp"]!, CultureInfo.InvariantCulture))
            {
                MappedRanges = o["mappings"] is JsonArray mapped ? ReadMappings(mapped) : null,
            };
            if (o["dirtyPages"] is { } dp && (ulong)dp != bitmap.DirtyPages)
                throw new InvalidDataException($"'{path}' is damaged: it says {(ulong)dp} dirty pages but its bitmap has {bitmap.DirtyPages}.");
            return bitmap;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or NullReferenceException or InvalidOperationException)
        {
            throw new InvalidDataException($"'{path}' is damaged or incomplete: {e.Message}");
        }
    }

    private static MappedRange[] ReadMappings(JsonArray mapped)
    {
        var ranges = new MappedRange[mapped.Count];
        for (int i = 0; i < ranges.Length; i++)
            ranges[i] = new MappedRange(Iova.Parse((string)mapped[i]!["iova"]!).Value, Iova.Parse((string)mapped[i]!["size"]!).Value);
        return ranges;
    }
}
