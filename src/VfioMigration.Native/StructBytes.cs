using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VfioMigration.Core.Native;

/// <summary>Reads and writes struct mirrors at an offset of a byte buffer (unaligned, little-endian as the kernel).</summary>
public static class StructBytes
{
    public static T Read<T>(ReadOnlySpan<byte> buffer, int offset = 0) where T : unmanaged =>
        MemoryMarshal.Read<T>(buffer.Slice(offset, Unsafe.SizeOf<T>()));

    public static void Write<T>(Span<byte> buffer, in T value, int offset = 0) where T : unmanaged =>
        MemoryMarshal.Write(buffer.Slice(offset, Unsafe.SizeOf<T>()), in value);

    public static int SizeOf<T>() where T : unmanaged => Unsafe.SizeOf<T>();

    /// <summary>A zeroed buffer holding <paramref name="value"/> followed by <paramref name="tail"/> bytes.</summary>
    public static byte[] Buffer<T>(in T value, int tail = 0) where T : unmanaged
    {
        var b = new byte[Unsafe.SizeOf<T>() + tail];
        Write(b, in value);
        return b;
    }
}
