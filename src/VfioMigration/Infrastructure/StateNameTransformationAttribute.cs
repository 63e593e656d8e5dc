using System;
using System.Management.Automation;
using VfioMigration.Core.Migration;

namespace VfioMigration.Infrastructure;

/// <summary>
/// Lets -State take a state in both spellings the module prints it in: the enum's (PreCopy, StopCopy) and
/// the kernel's (PRE_COPY, STOP_COPY, RUNNING_P2P), which the views, the steps and the kernel's own headers
/// show; a state object (Get-VfioMigrationState's) binds too.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class StateNameTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object value = inputData is PSObject p ? p.BaseObject : inputData;
        if (value is string s)
        {
            // PRE_COPY_P2P -> PreCopyP2P: the kernel's name without its underscores is the enum's, ignoring case.
            string compact = s.Trim().Replace("_", "", StringComparison.Ordinal);
            if (Enum.TryParse<VfioMigrationState>(compact, ignoreCase: true, out var state) && Enum.IsDefined(state) && !int.TryParse(compact, out _))
                return state;
        }
        return inputData;
    }
}
