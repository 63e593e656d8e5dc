using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VfioMigration.Core.Native;

namespace VfioMigration.Core.Tests.NativeLayer;

/// <summary>How a field is represented: an integer of some signedness, or a nested struct.</summary>
public enum FieldKind
{
    Unsigned,
    Signed,
    Struct,
}

/// <summary>One field of a struct mirror; <see cref="Path"/> is a C member designator ("header.next").</summary>
public sealed record MirrorField(string Path, int Offset, int Size, FieldKind Kind, string ManagedType);

/// <summary>One struct mirror: its C name, its size and its fields, nested ones flattened after their parent.</summary>
public sealed record StructMirror(string Name, int Size, IReadOnlyList<MirrorField> Fields);

/// <summary>One numeric constant the module declares, under its C name.</summary>
public sealed record ConstantDeclaration(string Name, long Value, string DeclaredIn);

/// <summary>
/// What the module's native layer declares, found by reflection so that a struct, a constant or an
/// ioctl added to Native/ is compared with the kernel header without anyone listing it here.
/// </summary>
public static class NativeDeclarations
{
    private static readonly Assembly Core = typeof(VfioIoctl).Assembly;

    /// <summary>The <c>static readonly IoctlRequest</c> fields of <see cref="VfioIoctl"/> and <see cref="IommufdIoctl"/>, by field name.</summary>
    public static IReadOnlyList<(string FieldName, IoctlRequest Request)> IoctlRequests() =>
        new[] { typeof(VfioIoctl), typeof(IommufdIoctl) }.SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.Static))
            .Where(f => f.FieldType == typeof(IoctlRequest))
            .Select(f => (FieldName: f.Name, Request: (IoctlRequest)f.GetValue(null)!))
            .OrderBy(r => r.Request.Number).ThenBy(r => r.FieldName, StringComparer.Ordinal)
            .ToList();

    /// <summary>Every public numeric <c>const</c> of <see cref="VfioConstants"/>, <see cref="VfioIoctl"/> and their iommufd twins.</summary>
    public static IReadOnlyList<ConstantDeclaration> Constants() =>
        new[] { typeof(VfioConstants), typeof(VfioIoctl), typeof(IommufdConstants), typeof(IommufdIoctl) }
            .SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.Static)
                .Where(f => f.IsLiteral && f.FieldType != typeof(string))
                .Select(f => new ConstantDeclaration(f.Name, ToInt64(f.GetRawConstantValue()!), t.Name)))
            .ToList();

    /// <summary>The public structs of the Native namespace whose names start with "vfio_" or "iommu_".</summary>
    public static IReadOnlyList<StructMirror> Structs() =>
        Core.GetTypes()
            .Where(t => t.IsPublic && t.IsValueType && !t.IsEnum && t.Namespace == typeof(VfioIoctl).Namespace
                        && (t.Name.StartsWith("vfio_", StringComparison.Ordinal) || t.Name.StartsWith("iommu_", StringComparison.Ordinal)))
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => new StructMirror(t.Name, SizeOf(t), Fields(t, "", 0).ToList()))
            .ToList();

    /// <summary>sizeof as the module uses it (<see cref="StructBytes.SizeOf{T}"/> is Unsafe.SizeOf).</summary>
    public static int SizeOf(Type t) =>
        (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(t).Invoke(null, null)!;

    private static IEnumerable<MirrorField> Fields(Type t, string prefix, int baseOffset)
    {
        foreach (var f in t.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
                     .OrderBy(f => Marshal.OffsetOf(t, f.Name).ToInt32()))
        {
            var attr = f.GetCustomAttribute<FieldOffsetAttribute>()
                ?? throw new InvalidOperationException($"{t.Name}.{f.Name} has no [FieldOffset]: struct mirrors use explicit layout");
            if (attr.Value != Marshal.OffsetOf(t, f.Name).ToInt32())
                throw new InvalidOperationException($"{t.Name}.{f.Name}: [FieldOffset({attr.Value})] is not where the runtime put it");
            string path = prefix + f.Name;
            int offset = baseOffset + attr.Value;
            Type ft = f.FieldType;
            if (IsInteger(ft))
            {
                yield return new MirrorField(path, offset, SizeOf(ft), IsSigned(ft) ? FieldKind.Signed : FieldKind.Unsigned, ft.Name);
            }
            else if (ft.IsValueType && !ft.IsPrimitive && !ft.IsEnum)
            {
                yield return new MirrorField(path, offset, SizeOf(ft), FieldKind.Struct, ft.Name);
                foreach (var inner in Fields(ft, path + ".", offset)) yield return inner;
            }
            else
            {
                throw new InvalidOperationException($"{t.Name}.{f.Name} is a {ft.Name}: mirrors hold fixed-width integers and structs only");
            }
        }
    }

    private static bool IsInteger(Type t) =>
        t == typeof(byte) || t == typeof(sbyte) || t == typeof(ushort) || t == typeof(short)
        || t == typeof(uint) || t == typeof(int) || t == typeof(ulong) || t == typeof(long);

    private static bool IsSigned(Type t) => t == typeof(sbyte) || t == typeof(short) || t == typeof(int) || t == typeof(long);

    private static long ToInt64(object value) => value switch
    {
        ulong u => unchecked((long)u),
        char c => c,
        _ => Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture),
    };
}
