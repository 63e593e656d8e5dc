using System;
using System.Collections;
using System.IO;
using System.Management.Automation;
using System.Management.Automation.Language;
using VfioMigration.Core.Discovery;
using VfioMigration.Core;
using VfioMigration.Core.Files;
using VfioMigration.Core.Kernel;
using VfioMigration.Core.Native;
using VfioMigration.Core.Simulation;
using VfioMigration.Infrastructure;

namespace VfioMigration.Commands;

/// <summary>
/// Chooses the host the session talks to: this machine's Linux kernel, or (explicitly) the simulated
/// host. The simulated host is never chosen silently.
/// </summary>
[Cmdlet(VerbsCommunications.Connect, "VfioHost", DefaultParameterSetName = LinuxParameterSet)]
[OutputType(typeof(VfioHostInfo))]
public sealed class ConnectVfioHostCommand : VfioCmdlet
{
    private const string LinuxParameterSet = "Linux";
    private const string SimulatedParameterSet = "Simulated";

    /// <summary>
    /// The configuration file shipped with the module, relative to the module's folder. It lives in a
    /// subfolder so that the module's folder holds one .psd1, its manifest: tools that take the first
    /// .psd1 they find there as the manifest (Publish-PSResource does) cannot mistake it.
    /// </summary>
    public const string DefaultConfigurationFile = "SimulatedHost/Default.psd1";

    #region Parameters

    /// <summary>Connect to the simulated host instead of this machine's kernel.</summary>
    [Parameter(Mandatory = true, ParameterSetName = SimulatedParameterSet)]
    public SwitchParameter Simulated { get; set; }

    /// <summary>The simulated host's topology (.psd1); the module's SimulatedHost/Default.psd1 by default.</summary>
    [Parameter(Position = 0, ParameterSetName = SimulatedParameterSet)]
    [ValidateNotNullOrEmpty]
    public string? Configuration { get; set; }

    #endregion

    protected override void EndProcessing()
    {
        if (ParameterSetName == SimulatedParameterSet)
        {
            string path = ResolveConfiguration();
            var config = LoadConfiguration(path);
            var host = new VfioHost(new SimulatedKernel(config));
            VfioSession.Connect(host, path);
            WriteVerbose($"Connected to {host.Description} from {path}.");
            WriteObject(HostInfo.Describe(host, path));
            return;
        }

        var linux = new VfioHost(LinuxKernel.Instance);
        if (!IommuGroupDiscovery.IsVfioPresent(linux.Kernel))
        {
            ThrowTerminatingError(RuleError(
                $"VFIO is not available on this machine: {VfioHost.ContainerPath} does not exist. Load the drivers " +
                "(modprobe vfio-pci) and bind devices to vfio-pci, or rehearse on the simulated host: Connect-VfioHost -Simulated.",
                ErrorIds.VfioNotPresent, ErrorCategory.ResourceUnavailable, VfioHost.ContainerPath));
        }
        VfioSession.Connect(linux);
        WriteObject(HostInfo.Describe(linux, null));
    }

    private string ResolveConfiguration()
    {
        if (Configuration is null)
        {
            string dir = Path.GetDirectoryName(typeof(ConnectVfioHostCommand).Assembly.Location) ?? ".";
            return Path.Combine(dir, DefaultConfigurationFile);
        }
        return GetUnresolvedProviderPathFromPSPath(Configuration);
    }

    private SimHostConfiguration LoadConfiguration(string path)
    {
        // Read as a regular file only: a FIFO or a device given as -Configuration is refused, never waited on.
        string text = "";
        try
        {
            text = System.Text.Encoding.UTF8.GetString(RegularFile.ReadAllBytes(path, "simulated host configuration", ErrorIds.ConfigurationNotFound, 16L << 20));
        }
        catch (VfioRuleException e)
        {
            ThrowTerminatingError(ErrorFor(e, path));
        }

        // A .psd1 is data: parse it and take only constant values, never run it (Import-PowerShellDataFile's rule).
        var ast = Parser.ParseInput(text, path, out _, out ParseError[] errors);
        if (errors.Length > 0)
        {
            var e = errors[0];
            ThrowTerminatingError(RuleError($"{path}:{e.Extent.StartLineNumber}: {e.Message}",
                ErrorIds.ConfigurationInvalid, ErrorCategory.ParserError, path));
        }
        try
        {
            if (ast.Find(a => a is HashtableAst, searchNestedScriptBlocks: false) is not HashtableAst table)
                throw new FormatException("The file holds no hashtable (@{ ... }).");
            if (table.SafeGetValue() is not IDictionary data)
                throw new FormatException("The file's hashtable could not be read.");
            return SimHostConfiguration.FromDictionary(data);
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException)
        {
            ThrowTerminatingError(RuleError($"{path}: {e.Message}", ErrorIds.ConfigurationInvalid, ErrorCategory.InvalidData, path));
            throw; // not reached
        }
    }
}
