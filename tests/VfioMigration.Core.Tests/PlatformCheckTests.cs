using VfioMigration.Core;
using Xunit;

namespace VfioMigration.Core.Tests;

public class PlatformCheckTests
{
    [Fact]
    public void ThisProcessCanRunTheModule() => Assert.Null(PlatformCheck.EvaluateCurrentProcess());

    [Theory]
    [InlineData(false, true, true, "it is not Linux")]
    [InlineData(true, false, true, "it is a 32-bit process")]
    [InlineData(true, true, false, "it is big-endian")]
    public void RefusesOtherProcessesWithOneSentenceSayingWhy(bool linux, bool x64, bool little, string why)
    {
        string? message = PlatformCheck.Evaluate(linux, x64, little, "test process");
        Assert.NotNull(message);
        Assert.Contains(why, message);
        Assert.Contains("64-bit little-endian Linux", message);
    }
}
