# Shared by the guest (Guest-Suite.ps1, against the real kernel) and the host (Invoke-Lab.ps1, against
# the simulated twin): both sides build the same kind of target and run the suite the same way, so the
# two observation lists differ only where the kernels do. Dot-source it after the module is imported.

function New-LabTarget {
    # A ConformanceTarget over a kernel (LinuxKernel.Instance in the guest, a SimulatedKernel on the host).
    param(
        [Parameter(Mandatory)] [object] $Kernel,
        [Nullable[int]] $IommuGroup,
        [string] $IommuDevice,
        [Nullable[int]] $MdevGroup,
        [string] $MdevDevice,
        [Nullable[int]] $PeerMdevGroup,
        [string] $PeerMdevDevice
    )
    [VfioMigration.Core.Conformance.ConformanceTarget]@{
        Host        = [VfioMigration.Core.Kernel.VfioHost]::new($Kernel)
        IommuGroup  = $IommuGroup
        IommuDevice = $IommuDevice
        MdevGroup   = $MdevGroup
        MdevDevice  = $MdevDevice
        PeerMdevGroup  = $PeerMdevGroup
        PeerMdevDevice = $PeerMdevDevice
    }
}

function Invoke-LabConformance {
    # Runs every scenario of the suite through ConformanceRunner.Run, one scenario per call, so that a
    # scenario that throws something other than a VfioNativeException (the runner records those itself)
    # costs only its own remaining steps: the exception becomes that scenario's last observation.
    # Returns @{ scenario; step; answer } objects in the suite's order.
    param([Parameter(Mandatory)] [VfioMigration.Core.Conformance.ConformanceTarget] $Target)
    foreach ($scenario in [VfioMigration.Core.Conformance.ConformanceRunner]::Scenarios) {
        if (-not $scenario.AppliesTo($Target)) { continue }
        try {
            $observations = [VfioMigration.Core.Conformance.ConformanceRunner]::Run($Target, [string[]]@($scenario.Name))
            foreach ($o in $observations) { [ordered]@{ scenario = $o.Scenario; step = $o.Step; answer = $o.Answer } }
        }
        catch {
            $e = $_.Exception
            while ($e -is [System.Management.Automation.MethodInvocationException] -and $e.InnerException) { $e = $e.InnerException }
            [ordered]@{ scenario = $scenario.Name; step = 'scenario threw'; answer = "$($e.GetType().Name): $($e.Message)" }
        }
    }
}

function ConvertTo-LabObservationList {
    # JSON objects (scenario, step, answer) back into the Observation list ConformanceRunner.Compare takes.
    param([object[]] $Items)
    $list = [System.Collections.Generic.List[VfioMigration.Core.Conformance.Observation]]::new()
    foreach ($i in $Items) { $list.Add([VfioMigration.Core.Conformance.Observation]::new($i.scenario, $i.step, $i.answer)) }
    # A plain return would let PowerShell unroll the list into an object[] that no longer binds to IReadOnlyList.
    , $list
}
