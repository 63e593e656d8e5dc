using System;
using System.Runtime.InteropServices;

namespace VfioMigration.Core.Native;

/// <summary>
/// Unmanaged memory whose address is handed to the kernel inside an ioctl argument (a dirty bitmap,
/// a DMA-logging range array). Managed arrays could move; this memory cannot.
/// </summary>
public sealed unsafe class NativeBuffer : SafeHandle
{
    public NativeBuffer(long length) : base(IntPtr.Zero, ownsHandle: true)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length));
        Length = length;
        SetHandle((IntPtr)NativeMemory.AllocZeroed((nuint)Math.Max(length, 1)));
    }

    /// <summary>Size in bytes.</summary>
    public long Length { get; }

    /// <summary>The user address the kernel is given.</summary>
    public ulong Address => (ulong)handle;

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The memory as a span (it must fit in an int; callers split larger bitmaps).</summary>
    public Span<byte> Span => new((void*)handle, checked((int)Length));

    /// <summary>A part of the memory as a span.</summary>
    public Span<byte> Slice(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > Length) throw new ArgumentOutOfRangeException(nameof(offset));
        return new Span<byte>((byte*)handle + offset, length);
    }

    /// <summary>Zeroes the first <paramref name="length"/> bytes (the kernel ORs into what it finds).</summary>
    public void Clear(long length) => NativeMemory.Clear((void*)handle, (nuint)Math.Min(length, Length));

    protected override bool ReleaseHandle()
    {
        NativeMemory.Free((void*)handle);
        return true;
    }
}

/// <summary>
/// What a kernel does with user pointers inside ioctl arguments: copy_from_user / copy_to_user.
/// The simulated kernel uses it for bitmap and range pointers, as the real one does. A null pointer
/// or a kernel-half address is refused (the kernel's access_ok / fault) instead of touched.
/// </summary>
public static unsafe class UserMemory
{
    /// <summary>
    /// Top of the user address space, as the kernel's access_ok() sees it: x86_64 with 4-level paging,
    /// TASK_SIZE_MAX = 2^47 - one page; aarch64 with Debian's 48-bit virtual addresses, TASK_SIZE = 2^48.
    /// </summary>
    public static readonly ulong TaskSizeMax =
        System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64
            ? 1UL << 48
            : 0x7FFF_FFFF_F000UL;

    /// <summary>access_ok(): the range lies in user space (a null pointer passes it, as in the kernel).</summary>
    public static bool AccessOk(ulong address, ulong size) =>
        size <= TaskSizeMax && address <= TaskSizeMax - size;

    /// <summary>copy_from_user: false (EFAULT) if the memory cannot be read.</summary>
    public static bool CopyFromUser(Span<byte> destination, ulong address)
    {
        if (address == 0 || !AccessOk(address, (ulong)destination.Length)) return false;
        new ReadOnlySpan<byte>((void*)address, destination.Length).CopyTo(destination);
        return true;
    }

    /// <summary>copy_to_user: false (EFAULT) if the memory cannot be written.</summary>
    public static bool CopyToUser(ulong address, ReadOnlySpan<byte> source)
    {
        if (address == 0 || !AccessOk(address, (ulong)source.Length)) return false;
        source.CopyTo(new Span<byte>((void*)address, source.Length));
        return true;
    }

    /// <summary>A span over mapped user memory of the process (for a simulated device's view of an mmap).</summary>
    public static Span<byte> View(nint address, int length) => new((void*)address, length);
}
