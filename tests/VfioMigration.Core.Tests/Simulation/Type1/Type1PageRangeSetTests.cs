using System.Collections.Generic;
using VfioMigration.Core.Simulation.Type1;
using Xunit;

namespace VfioMigration.Core.Tests.Simulation.Type1;

/// <summary>The sparse page set behind each mapping's dirty state.</summary>
public class Type1PageRangeSetTests
{
    [Fact]
    public void PagesAreKeptAsDisjointSortedRunsThatMergeWhenTheyTouchOrOverlap()
    {
        var set = new PageRangeSet();
        set.Add(10, 5);                // [10,15)
        set.Add(30, 1);                // [30,31)
        set.Add(0, 2);                 // [0,2)
        Assert.Equal(new List<(ulong, ulong)> { (0, 2), (10, 15), (30, 31) }, set.Runs);
        set.Add(15, 3);                // touches [10,15)
        set.Add(12, 1);                // inside
        Assert.Equal(new List<(ulong, ulong)> { (0, 2), (10, 18), (30, 31) }, set.Runs);
        set.Add(1, 40);                // swallows everything
        Assert.Equal(new List<(ulong, ulong)> { (0, 41) }, set.Runs);
        Assert.Equal(41UL, set.Count);
        Assert.True(set.Contains(40));
        Assert.False(set.Contains(41));
        set.Add(1UL << 40, 0);         // nothing
        Assert.Single(set.Runs);
    }
}
