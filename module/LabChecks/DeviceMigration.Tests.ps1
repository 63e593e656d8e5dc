# The migration-driver conformance suite as Pester tests, for labs whose CI runs Invoke-Pester: one test
# per check of Test-VfioDevice (docs/conformance.md), grouped by area. The suite runs once, in BeforeAll;
# each test reports its check. Import VfioMigration and open the device's group first, then:
#   $c = New-PesterContainer -Path (Join-Path (Split-Path ([VfioMigration.Core.DeviceChecks.DeviceCheckSuite].Assembly.Location)) 'LabChecks/DeviceMigration.Tests.ps1') -Data @{ Device = '<name>' }
#   Invoke-Pester -Container $c
param(
    [Parameter(Mandatory)] [string] $Device,
    [string] $Peer
)

BeforeDiscovery {
    $script:Areas = foreach ($area in [VfioMigration.Core.DeviceChecks.DeviceCheckSuite]::Areas) {
        @{ Area = $area; Checks = @([VfioMigration.Core.DeviceChecks.DeviceCheckSuite]::Catalog | Where-Object Area -eq $area | ForEach-Object { @{ Id = $_.Id } }) }
    }
}

BeforeAll {
    $arguments = @{ Device = $Device; Confirm = $false; WarningAction = 'SilentlyContinue'; ErrorAction = 'Stop' }
    if ($Peer) { $arguments.Peer = $Peer }
    $script:Report = Test-VfioDevice @arguments
}

Describe 'Migration driver of <Device>' -ForEach @{ Device = $Device } {
    Context '<Area>' -ForEach $Areas {
        It '<Id>' -ForEach $Checks {
            $result = $Report.Results | Where-Object Id -eq $Id
            if ($result.Outcome -eq 'Skipped') { Set-ItResult -Skipped -Because $result.Actual; return }
            if ($result.Outcome -eq 'Failed') { throw [VfioMigration.Core.DeviceChecks.DeviceCheckReport]::FailureText($result) }
        }
    }
}
