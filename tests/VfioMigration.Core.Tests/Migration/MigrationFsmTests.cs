using System.Linq;
using VfioMigration.Core;
using VfioMigration.Core.Migration;
using VfioMigration.Core.Native;
using Xunit;
using S = VfioMigration.Core.Migration.VfioMigrationState;

namespace VfioMigration.Core.Tests.Migration;

public class MigrationFsmTests
{
    private const ulong All = VfioConstants.VFIO_MIGRATION_STOP_COPY | VfioConstants.VFIO_MIGRATION_P2P | VfioConstants.VFIO_MIGRATION_PRE_COPY;
    private const ulong StopCopyOnly = VfioConstants.VFIO_MIGRATION_STOP_COPY;

    [Theory]
    // kernel-interface.md b.2's worked examples, full support.
    [InlineData(S.Running, S.StopCopy, new[] { S.RunningP2P, S.Stop, S.StopCopy })]
    [InlineData(S.Resuming, S.Running, new[] { S.Stop, S.RunningP2P, S.Running })]
    [InlineData(S.Stop, S.PreCopy, new[] { S.RunningP2P, S.Running, S.PreCopy })]
    [InlineData(S.PreCopy, S.StopCopy, new[] { S.PreCopyP2P, S.StopCopy })]
    [InlineData(S.Running, S.PreCopy, new[] { S.PreCopy })]
    public void PathsFollowTheKernelsTable(S from, S to, S[] path) =>
        Assert.Equal(path, MigrationFsm.Path(from, to, All));

    [Fact]
    public void StatesTheDeviceLacksAreSkippedAsTheKernelSkipsThem()
    {
        // Without P2P, RUNNING -> STOP is direct (table[RUNNING_P2P][STOP] = STOP).
        Assert.Equal(new[] { S.Stop }, MigrationFsm.Path(S.Running, S.Stop, StopCopyOnly));
        Assert.Equal(new[] { S.Stop, S.StopCopy }, MigrationFsm.Path(S.Running, S.StopCopy, StopCopyOnly));
        // Without P2P but with PRE_COPY, PRE_COPY -> STOP_COPY skips PRE_COPY_P2P.
        Assert.Equal(new[] { S.StopCopy }, MigrationFsm.Path(S.PreCopy, S.StopCopy, StopCopyOnly | VfioConstants.VFIO_MIGRATION_PRE_COPY));
    }

    [Fact]
    public void NoPathRunsThroughError()
    {
        var e = Assert.Throws<VfioRuleException>(() => MigrationFsm.Path(S.StopCopy, S.PreCopy, All));
        Assert.Equal("ArcNotAllowed", e.RuleId);
        Assert.Contains("STOP_COPY to PRE_COPY", e.Message);
    }

    [Fact]
    public void UnsupportedStatesErrorAndTheErrorStateAreRefusedWithTheirReasons()
    {
        Assert.Equal("StateNotSupported", Assert.Throws<VfioRuleException>(() => MigrationFsm.Path(S.Running, S.PreCopy, StopCopyOnly)).RuleId);
        Assert.Equal("StateNotRequestable", Assert.Throws<VfioRuleException>(() => MigrationFsm.Path(S.Running, S.Error, All)).RuleId);
        Assert.Equal("DeviceInError", Assert.Throws<VfioRuleException>(() => MigrationFsm.Path(S.Error, S.Running, All)).RuleId);
    }

    [Fact]
    public void OnlyTheFourSessionArcsOpenADataFd()
    {
        var states = System.Enum.GetValues<S>();
        var opening = states.SelectMany(a => states.Select(b => (a, b))).Where(p => MigrationFsm.OpensDataFd(p.a, p.b)).ToArray();
        Assert.Equal(new[] { (S.Stop, S.StopCopy), (S.Stop, S.Resuming), (S.Running, S.PreCopy), (S.RunningP2P, S.PreCopyP2P) }.OrderBy(x => x.ToString()), opening.OrderBy(x => x.ToString()));
    }

    [Theory]
    [InlineData(S.Running, 1u)]
    [InlineData(S.PreCopy, 3u)]
    [InlineData(S.StopCopy, 2u)]
    [InlineData(S.Stop, 0u)]
    [InlineData(S.Resuming, 4u)]
    public void V1StateNamesAreTheDeviceStateBits(S state, uint bits)
    {
        Assert.Equal(bits, MigrationV1States.Bits(state));
        Assert.Equal(state, MigrationV1States.FromBits(bits | 0xf0u));
    }

    [Fact]
    public void V1ErrorStateAndInvalidBitsAreNamed()
    {
        Assert.Equal(S.Error, MigrationV1States.FromBits(6));
        Assert.Equal("InvalidDeviceState", Assert.Throws<VfioRuleException>(() => MigrationV1States.FromBits(5)).RuleId);
        Assert.Equal("StateNotSupported", Assert.Throws<VfioRuleException>(() => MigrationV1States.Bits(S.RunningP2P)).RuleId);
    }
}
