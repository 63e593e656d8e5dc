# The lab checks that ship in the module (module/LabChecks), run through Test-VfioDevice against every
# kind of simulated device. Pester does not nest, so each run happens in a child pwsh.
BeforeAll {
    $script:Root = (Resolve-Path "$PSScriptRoot/../..").Path
    # The manifest, not the .psm1 Path points to: a module imported from its .psm1 has no version.
    $script:PesterPath = Join-Path (Get-Module Pester).ModuleBase 'Pester.psd1'
    function Invoke-LabChecks([string] $device, [string] $peer) {
        $script = @"
`$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Import-Module '$PesterPath'
Import-Module '$Root/VfioMigration.psd1'
Connect-VfioHost -Simulated | Out-Null
New-VfioContainer -Device @('$device'$(if ($peer) { ", '$peer'" })) | Out-Null
`$r = Test-VfioDevice '$device' $(if ($peer) { "-Peer '$peer'" }) -Confirm:`$false -Output None
[pscustomobject]@{ Result = `$r.Result; Passed = `$r.PassedCount; Failed = `$r.FailedCount; Tests = @(`$r.Tests | ForEach-Object { "`$(`$_.Name)=`$(`$_.Result)" }) } | ConvertTo-Json -Compress
"@
        $file = Join-Path $TestDrive "checks-$([guid]::NewGuid().ToString('N')).ps1"
        Set-Content $file $script
        $out = & dotnet pwsh -NoProfile -NonInteractive -File $file 2>&1
        $json = $out | Where-Object { "$_".StartsWith('{') } | Select-Object -Last 1
        if (-not $json) { throw "the child pwsh printed no result: $($out -join "`n")" }
        $json | ConvertFrom-Json
    }
}

Describe 'Test-VfioDevice runs the shipped lab checks' {
    It 'passes them on a <Kind> device' -ForEach @(
        @{ Kind = 'v2 mdev (mtty)'; Device = '36e5c7cc-4871-4d03-91da-44479a60a911'; Peer = $null }
        @{ Kind = 'v2 mdev with a peer (vGPU)'; Device = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61'; Peer = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62' }
        @{ Kind = 'v1 region (the 5.8 series)'; Device = '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51'; Peer = '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b52' }
        @{ Kind = 'v2 PCI variant driver, busy (mlx5_vfio_pci)'; Device = '0000:3b:00.1'; Peer = $null }
    ) {
        $r = Invoke-LabChecks $Device $Peer
        $r.Failed | Should -Be 0 -Because ($r.Tests -join '; ')
        $r.Result | Should -Be 'Passed'
        $r.Passed | Should -BeGreaterOrEqual 5
        ($r.Tests -join ';') | Should -Match 'takes every state it claims.*=Passed'
    }

    It 'fails them on a device without a migration driver, saying so' {
        $r = Invoke-LabChecks '0000:00:02.0' $null
        $r.Result | Should -Be 'Failed'
    }
}
