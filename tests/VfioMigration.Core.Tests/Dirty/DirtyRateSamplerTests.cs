using System;
using System.Diagnostics;
using System.Linq;
using VfioMigration.Core.Dirty;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Simulation;
using VfioMigration.Core.Vfio;
using Xunit;

namespace VfioMigration.Core.Tests.Dirty;

/// <summary>Measure-DirtyRate underneath: the sampler waits on the host's clock, so the simulated clock drives it.</summary>
public class DirtyRateSamplerTests
{
    [Fact]
    public void OnAManualSimulatedClockTheSamplesTakeExactlyTheirIntervalsAndNoWallTime()
    {
        var kernel = new SimulatedKernel(SimTopologies.Lab());
        kernel.Clock.UseManualTime();
        using var c = VfioContainer.Open(new VfioHost(kernel));
        c.Attach(2);   // a PCI function behind the IOMMU: every mapped page reads dirty
        c.SetIommu();
        c.Map(0x10000000, 1 << 20);
        c.StartDirtyTracking();
        var before = kernel.Clock.Now;
        var wall = Stopwatch.StartNew();
        var samples = DirtyRateSampler.Sample(c, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2)).ToList();
        Assert.True(wall.Elapsed < TimeSpan.FromSeconds(1), $"the samples took {wall.Elapsed} of wall time");
        Assert.Equal(new[] { 1, 2, 3, 4 }, samples.Select(s => s.Iteration));
        Assert.All(samples, s => Assert.Equal(TimeSpan.FromMilliseconds(500), s.Interval));
        Assert.All(samples, s => Assert.Equal(256UL, s.DirtyPages));
        Assert.Equal(TimeSpan.FromSeconds(2), kernel.Clock.Now - before);
    }

    [Theory]
    [InlineData(0, 1000)]
    [InlineData(2000, 1000)]
    [InlineData(-5, 1000)]
    public void AnIntervalThatIsNotPositiveOrLongerThanTheDurationIsRefused(int intervalMs, int durationMs)
    {
        var e = Assert.Throws<VfioRuleException>(() => DirtyRateSampler.SampleCount(TimeSpan.FromMilliseconds(intervalMs), TimeSpan.FromMilliseconds(durationMs)));
        Assert.Equal("BadInterval", e.RuleId);
    }

    [Fact]
    public void AContainerWithoutMappingsHasNothingToSample()
    {
        using var c = VfioContainer.Open(new VfioHost(new SimulatedKernel(SimTopologies.Lab())));
        c.Attach(2);
        c.SetIommu();
        Assert.Equal("NoMappings", Assert.Throws<VfioRuleException>(() => c.ResolveRange()).RuleId);
        Assert.Equal("NoMappings", Assert.Throws<VfioRuleException>(() => DirtyRateSampler.Sample(c, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)).ToList()).RuleId);
    }
}
