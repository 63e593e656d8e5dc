using System;
using System.Globalization;
using System.Management.Automation;

namespace VfioMigration.Infrastructure;

/// <summary>
/// Lets a duration parameter take what people type: a TimeSpan (00:00:00.300, or (New-TimeSpan ...)), a
/// plain number of milliseconds (QEMU's downtime-limit is in milliseconds, and scripts written for it pass
/// 300), or a string with a unit: 300ms, 2s, 1.5s, 1m.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class DurationTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object value = inputData is PSObject p ? p.BaseObject : inputData;
        return value switch
        {
            TimeSpan t => t,
            int or long or short or byte or uint or ushort or ulong or double or float or decimal =>
                TimeSpan.FromMilliseconds(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
            string s => Parse(s),
            _ => throw new ArgumentTransformationMetadataException($"'{value}' is not a duration: give a TimeSpan, milliseconds (300), or 300ms, 2s, 1m."),
        };
    }

    public static TimeSpan Parse(string text)
    {
        string t = text.Trim();
        foreach (var (unit, scale) in new[] { ("ms", 1.0), ("s", 1000.0), ("m", 60000.0) })
        {
            if (t.EndsWith(unit, StringComparison.OrdinalIgnoreCase) &&
                double.TryParse(t[..^unit.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out double n))
                return TimeSpan.FromMilliseconds(n * scale);
        }
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double ms)) return TimeSpan.FromMilliseconds(ms);
        if (TimeSpan.TryParse(t, CultureInfo.InvariantCulture, out var span)) return span;
        throw new ArgumentTransformationMetadataException($"'{text}' is not a duration: give a TimeSpan (00:00:00.300), milliseconds (300), or 300ms, 2s, 1m.");
    }
}
