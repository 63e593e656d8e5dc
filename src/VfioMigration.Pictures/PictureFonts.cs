using System;
using System.Collections.Concurrent;
using System.IO;
using ScottPlot;
using SkiaSharp;

namespace VfioMigration.Pictures;

/// <summary>
/// The fonts the pictures use, DejaVu Sans (from Debian's fonts-dejavu-core; its licence ships in the
/// module's licenses/ folder), embedded in this assembly: text renders the same on a machine without any
/// font installed, and the native library needs no fontconfig. ScottPlot gets them through a font
/// resolver that answers every font name.
/// </summary>
public static class PictureFonts
{
    public const string Family = "DejaVu Sans";

    private static readonly ConcurrentDictionary<bool, SKTypeface> Faces = new();
    private static readonly object Gate = new();
    private static bool _registered;

    /// <summary>The regular or bold face.</summary>
    public static SKTypeface Get(bool bold = false) => Faces.GetOrAdd(bold, b =>
    {
        string name = $"VfioMigration.Pictures.Fonts.DejaVuSans{(b ? "-Bold" : "")}.ttf";
        using var stream = typeof(PictureFonts).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"the font {name} is not embedded in {typeof(PictureFonts).Assembly.GetName().Name}");
        using var data = SKData.Create(stream);
        return SKTypeface.FromData(data) ?? throw new InvalidOperationException($"Skia could not read the font {name}");
    });

    /// <summary>Makes ScottPlot draw every text with the embedded faces (once per process).</summary>
    public static void RegisterWithScottPlot()
    {
        lock (Gate)
        {
            if (_registered) return;
            ScottPlot.Fonts.FontResolvers.Insert(0, new EmbeddedResolver());
            ScottPlot.Fonts.Default = Family;
            ScottPlot.Fonts.Sans = Family;
            _registered = true;
        }
    }

    private sealed class EmbeddedResolver : IFontResolver
    {
        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) => Get(bold);

        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing spacing) => Get(weight >= FontWeight.SemiBold);
    }
}
