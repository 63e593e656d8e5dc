using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using VfioMigration.Core.Discovery;

namespace VfioMigration.Infrastructure;

/// <summary>Completes IOMMU group numbers of the session's host.</summary>
public sealed class GroupCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        IommuGroupDiscovery.GetGroups(VfioSession.Host.Kernel)
            .Where(g => g.Group.ToString(CultureInfo.InvariantCulture).StartsWith(wordToComplete, System.StringComparison.Ordinal))
            .Select(g => new CompletionResult(g.Group.ToString(CultureInfo.InvariantCulture), g.Group.ToString(CultureInfo.InvariantCulture),
                CompletionResultType.ParameterValue, $"group {g.Group}: {string.Join(", ", g.Devices.Select(d => d.Name))}"));
}

/// <summary>Completes device names (PCI addresses, mdev UUIDs) of the session's host.</summary>
public sealed class DeviceCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var pattern = WildcardPattern.Get(wordToComplete.Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        return IommuGroupDiscovery.GetGroups(VfioSession.Host.Kernel).SelectMany(g => g.Devices)
            .Where(d => pattern.IsMatch(d.Name))
            .Select(d => new CompletionResult(d.Name, d.Name, CompletionResultType.ParameterValue, $"{d.Name} (group {d.Group}, {d.Driver ?? "no driver"})"));
    }
}

/// <summary>Completes the ids of the session's containers.</summary>
public sealed class ContainerCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        VfioSession.Containers
            .Where(c => c.Id.ToString(CultureInfo.InvariantCulture).StartsWith(wordToComplete, System.StringComparison.Ordinal))
            .Select(c => new CompletionResult(c.Id.ToString(CultureInfo.InvariantCulture), c.Id.ToString(CultureInfo.InvariantCulture),
                CompletionResultType.ParameterValue, $"container {c.Id}: groups {string.Join(", ", c.Groups.Select(g => g.Number))}"));
}
