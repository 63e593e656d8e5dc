using System;

namespace VfioMigration.Core;

/// <summary>
/// A request the kernel would refuse (nearly always with a bare EINVAL), caught before the call, with the
/// rule and the numbers in the message. <see cref="RuleId"/> is the stable error id scripts match on.
/// </summary>
public sealed class VfioRuleException : InvalidOperationException
{
    public VfioRuleException(string ruleId, string message) : base(message) => RuleId = ruleId;

    public string RuleId { get; }
}
