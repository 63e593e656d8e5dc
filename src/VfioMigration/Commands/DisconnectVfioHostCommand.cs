using System.Management.Automation;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Leaves the current host and returns the session to this machine's kernel, the state a new session
/// starts in. Unlike Connect-VfioHost, it does not require /dev/vfio to exist.
/// </summary>
[Cmdlet(VerbsCommunications.Disconnect, "VfioHost")]
[OutputType(typeof(VfioHostInfo))]
public sealed class DisconnectVfioHostCommand : VfioCmdlet
{
    #region Parameters

    /// <summary>Return the host the session is now on.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    #endregion

    protected override void EndProcessing()
    {
        var linux = new VfioHost(LinuxKernel.Instance);
        VfioSession.Connect(linux);
        if (PassThru) WriteObject(HostInfo.Describe(linux, null));
    }
}
