using System;
using System.Globalization;
using System.Management.Automation;
using VfioMigration.Core.Dirty;

namespace VfioMigration.Infrastructure;

/// <summary>
/// Lets address and size parameters take what a person types or a CSV holds: 0x10000000, 268435456,
/// 2GB (PowerShell's own literal, or the string "2GB" from a file), or an Iova object.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class NumberTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object value = inputData is PSObject p ? p.BaseObject : inputData;
        return value switch
        {
            null => throw new ArgumentTransformationMetadataException("A number is needed."),
            ulong u => u,
            Iova i => i.Value,
            // PowerShell reads 0xfee00000 as the Int32 -18874368: a negative Int32 is the 32-bit pattern the
            // person typed, not a negative address.
            int n when n < 0 => (ulong)(uint)n,
            long l when l < 0 => throw new ArgumentTransformationMetadataException($"{value} is negative; an address or size is not."),
            int or long or short or byte or uint or ushort or sbyte => Convert.ToUInt64(value, CultureInfo.InvariantCulture) is var v && Convert.ToInt64(value, CultureInfo.InvariantCulture) >= 0
                ? v : throw new ArgumentTransformationMetadataException($"{value} is negative; an address or size is not."),
            double d when d >= 0 && d == Math.Floor(d) && d <= ulong.MaxValue => (ulong)d,
            decimal m when m >= 0 && m == decimal.Floor(m) => (ulong)m,
            string s => Parse(s),
            _ => throw new ArgumentTransformationMetadataException($"'{value}' is not a number."),
        };
    }

    /// <summary>Reads 0x hex, decimal, or a number with a KB/MB/GB/TB suffix (binary, as PowerShell's literals).</summary>
    public static ulong Parse(string text)
    {
        string t = text.Trim();
        ulong multiplier = 1;
        foreach (var (suffix, m) in new[] { ("KB", 1UL << 10), ("MB", 1UL << 20), ("GB", 1UL << 30), ("TB", 1UL << 40), ("PB", 1UL << 50) })
        {
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                multiplier = m;
                t = t.Substring(0, t.Length - 2).Trim();
                break;
            }
        }
        if (Iova.TryParse(t, out var n))
        {
            try { return checked(n.Value * multiplier); }
            catch (OverflowException) { }
        }
        throw new ArgumentTransformationMetadataException($"'{text}' is not a number: write 0x10000000, 268435456 or 2GB.");
    }
}
