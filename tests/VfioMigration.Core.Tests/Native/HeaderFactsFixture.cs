using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Xunit;

namespace VfioMigration.Core.Tests.NativeLayer;

/// <summary>
/// Compiles and runs the header program once for every test that needs it. A missing gcc or header
/// fails each of those tests with the install hint (never a skip).
/// </summary>
public sealed class HeaderFactsFixture
{
    /// <summary>The v1 device_state values put through the header's macros: all eight, then with reserved bits 3..31 set.</summary>
    public static readonly IReadOnlyList<uint> V1States =
        Enumerable.Range(0, 8).Select(s => (uint)s).Concat(Enumerable.Range(0, 8).Select(s => 0xFFFFFFF8u | (uint)s)).ToList();

    private readonly Lazy<HeaderFacts> _facts = new(() => HeaderProbe.Run(Items(), V1States), LazyThreadSafetyMode.ExecutionAndPublication);

    public HeaderFacts Facts
    {
        get
        {
            try
            {
                return _facts.Value;
            }
            catch (HeaderProbeException e)
            {
                Assert.Fail(e.Message);
                throw;
            }
        }
    }

    /// <summary>Everything Native/ declares, as names to look up in the header.</summary>
    public static IReadOnlyList<HeaderItem> Items()
    {
        var items = new List<HeaderItem>();
        items.AddRange(NativeDeclarations.IoctlRequests().Select(r => new HeaderItem(HeaderItemKind.Ioctl, r.Request.Name)));
        items.AddRange(NativeDeclarations.Constants().Select(c => new HeaderItem(HeaderItemKind.Constant, c.Name)));
        foreach (var s in NativeDeclarations.Structs())
        {
            items.Add(new HeaderItem(HeaderItemKind.StructSize, s.Name));
            items.AddRange(s.Fields.Select(f => new HeaderItem(HeaderItemKind.Field, s.Name, f.Path)));
        }
        return items;
    }
}

[CollectionDefinition(Name)]
public sealed class HeaderCollection : ICollectionFixture<HeaderFactsFixture>
{
    public const string Name = "linux/vfio.h";
}
