using System;
using System.Globalization;
using System.Management.Automation;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Infrastructure;

/// <summary>
/// Turns what serialization (Export-Clixml, jobs, remoting) makes of an <see cref="Iova"/> back into one.
/// VfioMigration.types.ps1xml serializes an Iova as a property bag holding its number (Value) and names
/// this converter as the type's converter and the target of Deserialized.VfioMigration.Core.Dirty.Iova, so
/// a receiving session with the module loaded rehydrates a real Iova (a number that prints in hex); the
/// converter also reads the hex text older serializations left ("0x10000000") and plain numbers, so a
/// parameter of type Iova binds any of them.
/// </summary>
public sealed class IovaTypeConverter : PSTypeConverter
{
    public override bool CanConvertFrom(object sourceValue, Type destinationType) =>
        destinationType == typeof(Iova) && TryRead(sourceValue, out _);

    public override object ConvertFrom(object sourceValue, Type destinationType, IFormatProvider formatProvider, bool ignoreCase) =>
        TryRead(sourceValue, out var iova)
            ? iova
            : throw new PSInvalidCastException($"'{sourceValue}' is not an IOVA: an IOVA is a number such as 0x10000000.");

    // As the converter of Deserialized.VfioMigration.Core.Dirty.Iova (a bag remoting did not rehydrate):
    // [uint64]$bag, [Iova]$bag and arithmetic read its number.
    public override bool CanConvertTo(object sourceValue, Type destinationType) =>
        (destinationType == typeof(Iova) || destinationType == typeof(ulong) || destinationType == typeof(long) ||
         destinationType == typeof(decimal) || destinationType == typeof(double) || destinationType == typeof(string)) && TryRead(sourceValue, out _);

    public override object ConvertTo(object sourceValue, Type destinationType, IFormatProvider formatProvider, bool ignoreCase)
    {
        if (!TryRead(sourceValue, out var iova)) throw new PSInvalidCastException($"'{sourceValue}' is not an IOVA.");
        if (destinationType == typeof(Iova)) return iova;
        if (destinationType == typeof(string)) return iova.ToString();
        return Convert.ChangeType(iova.Value, destinationType, CultureInfo.InvariantCulture);
    }

    /// <summary>An Iova from an Iova, a deserialized Iova (its Value), a number or IOVA text.</summary>
    internal static bool TryRead(object? value, out Iova iova)
    {
        iova = default;
        object? v = value is PSObject pso ? Unwrap(pso) : value;
        switch (v)
        {
            case null: return false;
            case Iova i: iova = i; return true;
            case ulong u: iova = u; return true;
            case string s: return Iova.TryParse(s, out iova);
            case PSObject bag:
                var p = bag.Properties["Value"];
                if (p?.Value is { } inner && !(inner is PSObject innerPso && Unwrap(innerPso) is PSObject)) return TryRead(inner, out iova);
                return Iova.TryParse(bag.ToString(), out iova);
            case IConvertible c when v is byte or ushort or uint or sbyte or short or int or long or decimal or double or float:
                try { iova = Convert.ToUInt64(c, CultureInfo.InvariantCulture); return true; }
                catch (Exception e) when (e is OverflowException or FormatException) { return false; }
            default: return false;
        }
    }

    /// <summary>The object behind a PSObject, or the PSObject itself for a property bag.</summary>
    internal static object? Unwrap(PSObject pso) => pso.BaseObject is PSCustomObject ? pso : pso.BaseObject;
}

/// <summary>
/// Rebuilds a <see cref="DirtyBitmap"/> from its serialized form. VfioMigration.types.ps1xml gives a bitmap
/// a hidden WordsBase64 property (its bitmap words, little-endian, in base64) and serializes it with the
/// bitmap, so a bitmap that crossed a process boundary (Import-Clixml, a job, Invoke-Command) is rebuilt,
/// word for word, in a session that has the module loaded, and binds to Export-DirtyBitmap and
/// Compare-DirtyBitmap. A bag without the words (serialized by something else) cannot be rebuilt: the
/// conversion fails with a message that says so.
/// </summary>
public sealed class DirtyBitmapTypeConverter : PSTypeConverter
{
    /// <summary>The hidden property of type data that carries the words across serialization.</summary>
    public const string WordsProperty = "WordsBase64";

    /// <summary>The words of a bitmap, for the WordsBase64 code property of the type data.</summary>
    public static string GetWordsBase64(PSObject instance) =>
        instance.BaseObject is DirtyBitmap b ? Convert.ToBase64String(b.ToBytes()) : "";

    public override bool CanConvertFrom(object sourceValue, Type destinationType) =>
        destinationType == typeof(DirtyBitmap) && sourceValue is PSObject pso && IovaTypeConverter.Unwrap(pso) is PSObject bag &&
        bag.TypeNames.Contains("Deserialized." + typeof(DirtyBitmap).FullName);

    public override object ConvertFrom(object sourceValue, Type destinationType, IFormatProvider formatProvider, bool ignoreCase)
    {
        if (sourceValue is not PSObject bag) throw new PSInvalidCastException($"'{sourceValue}' is not a dirty bitmap.");
        if (Get(bag, WordsProperty) is not string base64)
            throw new PSInvalidCastException(
                "This deserialized dirty bitmap carries no bitmap words (WordsBase64), so it cannot be rebuilt: serialize it from a session that has the VfioMigration module loaded, or move it as a file with Export-DirtyBitmap and Import-DirtyBitmap.");
        if (!IovaTypeConverter.TryRead(Get(bag, nameof(DirtyBitmap.Iova)), out var iova))
            throw new PSInvalidCastException("This deserialized dirty bitmap has no readable Iova.");
        byte[] bytes = Convert.FromBase64String(base64);
        var words = new ulong[(bytes.Length + 7) / 8];
        Buffer.BlockCopy(bytes, 0, words, 0, bytes.Length);
        if (!BitConverter.IsLittleEndian)
            for (int i = 0; i < words.Length; i++) words[i] = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(words[i]);
        return new DirtyBitmap(iova,
            LanguagePrimitives.ConvertTo<ulong>(Get(bag, nameof(DirtyBitmap.Size))),
            LanguagePrimitives.ConvertTo<ulong>(Get(bag, nameof(DirtyBitmap.PageSize))),
            words,
            Enum<DirtyScope>(Get(bag, nameof(DirtyBitmap.Scope))),
            Enum<HostKind>(Get(bag, nameof(DirtyBitmap.HostKind))),
            Get(bag, nameof(DirtyBitmap.Host))?.ToString() ?? "",
            Timestamp(Get(bag, nameof(DirtyBitmap.Timestamp))));
    }

    public override bool CanConvertTo(object sourceValue, Type destinationType) => false;

    public override object ConvertTo(object sourceValue, Type destinationType, IFormatProvider formatProvider, bool ignoreCase) =>
        throw new PSInvalidCastException($"A dirty bitmap does not convert to {destinationType}.");

    private static object? Get(PSObject bag, string name) =>
        bag.Properties[name]?.Value is PSObject p && p.BaseObject is not PSCustomObject ? p.BaseObject : bag.Properties[name]?.Value;

    // A DateTimeOffset is not one of the serializer's primitives: it arrives as its text.
    private static DateTimeOffset Timestamp(object? value)
    {
        if (value is DateTimeOffset d) return d;
        if (value is DateTime dt) return new DateTimeOffset(dt);
        return DateTimeOffset.TryParse(value?.ToString(), CultureInfo.CurrentCulture, DateTimeStyles.None, out var p) ? p
            : DateTimeOffset.TryParse(value?.ToString(), CultureInfo.InvariantCulture, DateTimeStyles.None, out p) ? p : DateTimeOffset.MinValue;
    }

    // A deserialized enum is its number (with the name as its text): read either.
    private static T Enum<T>(object? value) where T : struct, Enum =>
        value is null ? default
        : value is string s ? System.Enum.Parse<T>(s, ignoreCase: true)
        : (T)System.Enum.ToObject(typeof(T), value);
}

/// <summary>
/// An address parameter that also takes a deserialized Iova (a property bag with its Value, or its hex text)
/// as a property of a piped object; everything else is read as <see cref="Infrastructure.NumberTransformationAttribute"/> reads it.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class IovaTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        if (inputData is PSObject pso && IovaTypeConverter.Unwrap(pso) is PSObject && IovaTypeConverter.TryRead(pso, out var iova)) return iova.Value;
        return new Infrastructure.NumberTransformationAttribute().Transform(engineIntrinsics, inputData);
    }
}
