using System.Linq;
using VfioMigration.Core.Native;
using Xunit;

namespace VfioMigration.Core.Tests.NativeLayer;

/// <summary>
/// The v1 migration region's device_state rules (kernel-interface.md a.4): RESUMING may not be combined with
/// another bit, and SAVING|RESUMING is the error state left only through VFIO_DEVICE_RESET.
/// </summary>
[Collection(HeaderCollection.Name)]
public class V1DeviceStateTests
{
    private readonly HeaderFactsFixture _fixture;

    public V1DeviceStateTests(HeaderFactsFixture fixture) => _fixture = fixture;

    /// <summary>The kernel's truth table, as kernel-interface.md a.4 gives it (bits R S U = resuming saving running).</summary>
    [Theory]
    [InlineData(0u, true, false)] // 000 _STOP
    [InlineData(1u, true, false)] // 001 _RUNNING
    [InlineData(2u, true, false)] // 010 stop-and-copy
    [InlineData(3u, true, false)] // 011 pre-copy
    [InlineData(4u, true, false)] // 100 _RESUMING
    [InlineData(5u, false, false)] // 101 invalid
    [InlineData(6u, false, true)] // 110 error state
    [InlineData(7u, false, false)] // 111 invalid
    public void ValidAndIsErrorFollowTheKernelsTruthTable(uint state, bool valid, bool isError)
    {
        Assert.Equal(valid, VfioConstants.VFIO_DEVICE_STATE_VALID(state));
        Assert.Equal(isError, VfioConstants.VFIO_DEVICE_STATE_IS_ERROR(state));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(5u)]
    [InlineData(6u)]
    public void ReservedBitsThreeToThirtyOneDoNotChangeTheAnswer(uint state)
    {
        // Reserved bits are preserved by a read-modify-write, so they are present in real values.
        uint withReserved = state | 0xFFFFFFF8u;
        Assert.Equal(VfioConstants.VFIO_DEVICE_STATE_VALID(state), VfioConstants.VFIO_DEVICE_STATE_VALID(withReserved));
        Assert.Equal(VfioConstants.VFIO_DEVICE_STATE_IS_ERROR(state), VfioConstants.VFIO_DEVICE_STATE_IS_ERROR(withReserved));
    }

    [Fact]
    public void TheHeadersMacrosGiveTheSameAnswersForEveryState()
    {
        var macros = _fixture.Facts.V1StateMacros;
        Assert.True(macros.Count == HeaderFactsFixture.V1States.Count,
            "<linux/vfio.h> does not define VFIO_DEVICE_STATE_VALID and VFIO_DEVICE_STATE_IS_ERROR (the 6.1 header does)");
        var differences = HeaderFactsFixture.V1States
            .Where(s => macros[s] != (VfioConstants.VFIO_DEVICE_STATE_VALID(s), VfioConstants.VFIO_DEVICE_STATE_IS_ERROR(s)))
            .Select(s => $"state 0x{s:X}: header VALID={macros[s].Valid} IS_ERROR={macros[s].IsError}, " +
                         $"module VALID={VfioConstants.VFIO_DEVICE_STATE_VALID(s)} IS_ERROR={VfioConstants.VFIO_DEVICE_STATE_IS_ERROR(s)}")
            .ToList();
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }
}
