using System;
using System.Globalization;

namespace VfioMigration.Core.Dirty;

/// <summary>
/// An I/O virtual address. It is a number (compare it, add to it, convert it to UInt64), and it prints as
/// hex (0x10000000) the way kernel messages and QEMU traces print IOVAs — so `Export-Csv` writes hex and
/// `Import-Csv` reads it back through <see cref="Parse"/>.
/// </summary>
public readonly struct Iova : IEquatable<Iova>, IComparable<Iova>, IComparable, IFormattable, IConvertible
{
    public Iova(ulong value) => Value = value;

    /// <summary>The address as a number.</summary>
    public ulong Value { get; }

    public static implicit operator Iova(ulong value) => new(value);

    public static implicit operator ulong(Iova iova) => iova.Value;

    public static Iova operator +(Iova iova, ulong bytes) => new(checked(iova.Value + bytes));

    public static ulong operator -(Iova a, Iova b) => checked(a.Value - b.Value);

    public static bool operator <(Iova a, Iova b) => a.Value < b.Value;

    public static bool operator >(Iova a, Iova b) => a.Value > b.Value;

    public static bool operator <=(Iova a, Iova b) => a.Value <= b.Value;

    public static bool operator >=(Iova a, Iova b) => a.Value >= b.Value;

    public static bool operator ==(Iova a, Iova b) => a.Value == b.Value;

    public static bool operator !=(Iova a, Iova b) => a.Value != b.Value;

    /// <summary>Reads "0x10000000", "10000000h"-free hex with 0x, or decimal.</summary>
    public static Iova Parse(string text)
    {
        if (TryParse(text, out var v)) return v;
        throw new FormatException($"'{text}' is not an IOVA: write a number such as 0x10000000 or 268435456.");
    }

    public static bool TryParse(string? text, out Iova iova)
    {
        iova = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        string t = text.Trim().Replace("_", "", StringComparison.Ordinal);
        bool ok = t.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(t.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong v)
            : ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        if (ok) iova = new Iova(v);
        return ok;
    }

    public override string ToString() => "0x" + Value.ToString("x", CultureInfo.InvariantCulture);

    public string ToString(string? format, IFormatProvider? formatProvider) =>
        string.IsNullOrEmpty(format) ? ToString() : Value.ToString(format, formatProvider);

    public bool Equals(Iova other) => Value == other.Value;

    public override bool Equals(object? obj) => obj switch
    {
        Iova i => Equals(i),
        ulong u => Value == u,
        long l => l >= 0 && Value == (ulong)l,
        int n => n >= 0 && Value == (ulong)n,
        _ => false,
    };

    public override int GetHashCode() => Value.GetHashCode();

    public int CompareTo(Iova other) => Value.CompareTo(other.Value);

    public int CompareTo(object? obj) => obj switch
    {
        null => 1,
        Iova i => CompareTo(i),
        string s => CompareTo(Parse(s)),
        IConvertible c => Value.CompareTo(Convert.ToUInt64(c, CultureInfo.InvariantCulture)),
        _ => throw new ArgumentException("An IOVA compares with another IOVA or a number.", nameof(obj)),
    };

    TypeCode IConvertible.GetTypeCode() => TypeCode.UInt64;
    bool IConvertible.ToBoolean(IFormatProvider? provider) => Value != 0;
    byte IConvertible.ToByte(IFormatProvider? provider) => checked((byte)Value);
    char IConvertible.ToChar(IFormatProvider? provider) => checked((char)Value);
    DateTime IConvertible.ToDateTime(IFormatProvider? provider) => throw new InvalidCastException("An IOVA is not a date.");
    decimal IConvertible.ToDecimal(IFormatProvider? provider) => Value;
    double IConvertible.ToDouble(IFormatProvider? provider) => Value;
    short IConvertible.ToInt16(IFormatProvider? provider) => checked((short)Value);
    int IConvertible.ToInt32(IFormatProvider? provider) => checked((int)Value);
    long IConvertible.ToInt64(IFormatProvider? provider) => checked((long)Value);
    sbyte IConvertible.ToSByte(IFormatProvider? provider) => checked((sbyte)Value);
    float IConvertible.ToSingle(IFormatProvider? provider) => Value;
    string IConvertible.ToString(IFormatProvider? provider) => ToString();
    object IConvertible.ToType(Type conversionType, IFormatProvider? provider) =>
        conversionType == typeof(Iova) ? this : Convert.ChangeType(Value, conversionType, provider);
    ushort IConvertible.ToUInt16(IFormatProvider? provider) => checked((ushort)Value);
    uint IConvertible.ToUInt32(IFormatProvider? provider) => checked((uint)Value);
    ulong IConvertible.ToUInt64(IFormatProvider? provider) => Value;
}
