using System.Linq;
using VfioMigration.Core;
using VfioMigration.Core.Dirty;
using Xunit;

namespace VfioMigration.Core.Tests.Dirty;

public class DirtyBitmapPlanTests
{
    private const ulong Max = 256UL * 1024 * 1024;
    private static readonly (ulong, ulong)[] LabMappings = { (0x10000000, 0x200000), (0x10300000, 0x100000) };

    [Fact]
    public void MappingsShareOneCallAcrossTheGapsBetweenThem()
    {
        var maps = new (ulong, ulong)[] { (0x0, 0x100000), (0x100000, 0x100000), (0x400000, 0x1000) };
        var plan = DirtyBitmapPlan.Plan(maps, 0, 0x80000000, 4096, Max);
        Assert.Equal(new[] { new BitmapCall(0x0, 0x401000) }, plan);
    }

    [Fact]
    public void AGapIsSpannedOnlyWhileTheCallStaysWithinOneCallsBitmap()
    {
        // 64 bytes of bitmap per call: 512 pages, 2 MiB at 4 KiB.
        var maps = new (ulong, ulong)[] { (0x0, 0x100000), (0x180000, 0x80000), (0x200000, 0x100000) };
        var plan = DirtyBitmapPlan.Plan(maps, 0, 0x300000, 4096, 64);
        Assert.Equal(new[] { new BitmapCall(0x0, 0x200000), new BitmapCall(0x200000, 0x100000) }, plan);
    }

    [Fact]
    public void ARangeThatCutsAMappingIsRefusedWithTheRuleAndTheNumbers()
    {
        var e = Assert.Throws<VfioRuleException>(() => DirtyBitmapPlan.Plan(LabMappings, 0x10000000, 0x100000, 4096, Max));
        Assert.Equal("RangeCutsMapping", e.RuleId);
        Assert.StartsWith("range 0x10000000+0x100000 cuts the mapping 0x10000000+0x200000; the kernel reads whole mappings only", e.Message);
        Assert.Equal("RangeCutsMapping", Assert.Throws<VfioRuleException>(() => DirtyBitmapPlan.Plan(LabMappings, 0x10100000, 0x100000, 4096, Max)).RuleId);
    }

    [Theory]
    [InlineData(0x10000200UL, 0x200000UL)]
    [InlineData(0x10000000UL, 0x200064UL)]
    public void UnalignedRangesAreRefused(ulong iova, ulong size) =>
        Assert.Equal("RangeNotAligned", Assert.Throws<VfioRuleException>(() => DirtyBitmapPlan.Plan(LabMappings, iova, size, 4096, Max)).RuleId);

    [Fact]
    public void EmptyAndWrappingRangesAreRefused()
    {
        Assert.Equal("RangeEmpty", Assert.Throws<VfioRuleException>(() => DirtyBitmapPlan.Plan(LabMappings, 0, 0, 4096, Max)).RuleId);
        Assert.Equal("RangeWraps", Assert.Throws<VfioRuleException>(() => DirtyBitmapPlan.Plan(LabMappings, 0xfffffffffffff000, 0x2000, 4096, Max)).RuleId);
    }

    [Fact]
    public void CallsNeverAskForMoreBitmapThanTheKernelReturnsPerCall()
    {
        // 8 adjacent 1 MiB mappings, with a maximum of 64 bytes of bitmap = 512 pages = 2 MiB per call.
        var maps = Enumerable.Range(0, 8).Select(i => ((ulong)i * 0x100000, 0x100000UL)).ToArray();
        var plan = DirtyBitmapPlan.Plan(maps, 0, 0x800000, 4096, 64);
        Assert.Equal(4, plan.Count);
        Assert.All(plan, c => Assert.Equal(0x200000UL, c.Size));
        // ceil(bitmap bytes / max) calls, not one per mapping.
        Assert.Equal((int)((0x800000UL / 4096 / 8 + 63) / 64), plan.Count);
    }

    [Fact]
    public void AMappingLargerThanOneCallCanReturnIsRefused() =>
        Assert.Equal("MappingTooLargeForOneCall", Assert.Throws<VfioRuleException>(
            () => DirtyBitmapPlan.Plan(new (ulong, ulong)[] { (0, 0x400000) }, 0, 0x400000, 4096, 64)).RuleId);

    [Fact]
    public void NoMappingInTheRangeNeedsNoCall() =>
        Assert.Empty(DirtyBitmapPlan.Plan(LabMappings, 0x20000000, 0x100000, 4096, Max));
}
