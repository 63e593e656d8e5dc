# Test-VfioDevice, the migration-driver conformance suite, as a user runs it on the simulated host: its
# report, its failures, its JUnit and NUnit files, -WhatIf, and the Pester form that ships in the module
# (module/LabChecks). Each run is a child pwsh, as a lab's would be.
BeforeAll {
    $script:Root = Resolve-Path "$PSScriptRoot/../.."
    $script:PesterPath = (Get-Module Pester).Path
    function Invoke-Suite([string] $body) {
        $script = @"
`$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Import-Module '$PesterPath'
Import-Module '$Root/VfioMigration.psd1'
Connect-VfioHost -Simulated | Out-Null
$body
"@
        $file = Join-Path $TestDrive "suite-$([guid]::NewGuid().ToString('N')).ps1"
        Set-Content $file $script
        $out = & dotnet pwsh -NoProfile -NonInteractive -File $file 2>&1
        $json = $out | Where-Object { "$_".StartsWith('{') } | Select-Object -Last 1
        if (-not $json) { throw "the child pwsh printed no result: $($out -join "`n")" }
        $json | ConvertFrom-Json
    }
}

Describe 'Test-VfioDevice' {
    It 'passes an idle <Kind> device and leaves it RUNNING' -ForEach @(
        @{ Kind = 'v2 mdev (mtty)'; Device = '36e5c7cc-4871-4d03-91da-44479a60a911'; Peer = $null; Least = 20 }
        @{ Kind = 'v2 mdev with a peer (vGPU)'; Device = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62'; Peer = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61'; Least = 18 }
        @{ Kind = 'v1 region (the 5.8 series)'; Device = '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b52'; Peer = '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51'; Least = 5 }
    ) {
        $peerArgument = if ($Peer) { "-Peer '$Peer'" } else { '' }
        $open = if ($Peer) { "'$Device', '$Peer'" } else { "'$Device'" }
        $r = Invoke-Suite @"
New-VfioContainer -Device $open | Out-Null
`$r = Test-VfioDevice '$Device' $peerArgument -WarningAction SilentlyContinue
[pscustomobject]@{ Result = `$r.Result; Passed = `$r.Passed; Failed = (@(`$r.Results | Where-Object Outcome -eq 'Failed' | ForEach-Object { [VfioMigration.Core.DeviceChecks.DeviceCheckReport]::FailureText(`$_) }) -join ' | ')
    State = (Get-VfioMigrationState -Device '$Device').State.ToString(); Areas = @(`$r.Areas | ForEach-Object Area) } | ConvertTo-Json -Compress
"@
        $r.Failed | Should -BeNullOrEmpty
        $r.Result | Should -Be 'Passed'
        $r.Passed | Should -BeGreaterOrEqual $Least
        $r.State | Should -Be 'Running'
    }

    It 'holds a busy device (state changing at 1 GB/s while it runs) to every must, and names the should it cannot keep' {
        $r = Invoke-Suite @"
New-VfioContainer -Device '0000:3b:00.1' | Out-Null
`$r = Test-VfioDevice '0000:3b:00.1' -Area DataFd -WarningVariable warned -WarningAction SilentlyContinue
[pscustomobject]@{ FailedMust = `$r.FailedMust; Failed = @(`$r.Results | Where-Object Outcome -eq 'Failed' | ForEach-Object Id); Warnings = @(`$warned | ForEach-Object { "`$_" }) } | ConvertTo-Json -Compress
"@
        $r.FailedMust | Should -Be 0
        $r.Failed | Should -Be @('datafd.state-kept-across-run')
        $r.Warnings | Should -HaveCount 1
        $r.Warnings[0] | Should -Match 'datafd.state-kept-across-run failed \(should\): expected .* Rule: '
    }

    It 'fails a device without a migration driver, saying so' {
        $r = Invoke-Suite @"
New-VfioContainer -Device '0000:00:02.0' | Out-Null
`$r = Test-VfioDevice '0000:00:02.0' -WarningAction SilentlyContinue
[pscustomobject]@{ Result = `$r.Result; Failed = @(`$r.Results | Where-Object Outcome -eq 'Failed' | ForEach-Object Id); Actual = (`$r.Results | Where-Object Outcome -eq 'Failed').Actual } | ConvertTo-Json -Compress
"@
        $r.Result | Should -Be 'Failed'
        $r.Failed | Should -Be @('protocol.migration-present')
        $r.Actual | Should -Match 'cannot be migrated'
    }

    It 'writes JUnit and NUnit reports a CI reads: one testcase per check, failures with their rule and calls' {
        $r = Invoke-Suite @"
New-VfioContainer -Device '0000:3b:00.1' | Out-Null
`$junit = Join-Path ([IO.Path]::GetTempPath()) "vfio-junit-`$PID.xml"; `$nunit = Join-Path ([IO.Path]::GetTempPath()) "vfio-nunit-`$PID.xml"
`$a = Test-VfioDevice '0000:3b:00.1' -Area DataFd, Arcs -OutputFile `$junit -WarningAction SilentlyContinue
`$null = Test-VfioDevice '0000:3b:00.1' -Area DataFd, Arcs -OutputFile `$nunit -OutputFormat NUnitXml -WarningAction SilentlyContinue
[xml]`$j = Get-Content `$junit -Raw; [xml]`$n = Get-Content `$nunit -Raw
`$failure = `$j.SelectNodes('//testcase[failure]') | Select-Object -First 1
[pscustomobject]@{ Checks = `$a.Results.Count; Cases = @(`$j.testsuites.testsuite.testcase).Count; Suites = @(`$j.testsuites.testsuite.name); Failures = [int]`$j.testsuites.failures
    FailedName = `$failure.GetAttribute('name'); FailureText = `$failure.SelectSingleNode('failure').InnerText; NCases = @(`$n.'test-results'.'test-suite'.results.'test-suite'.results.'test-case').Count
    NFailures = [int]`$n.'test-results'.failures; Mode = (Get-Item `$junit).UnixFileMode.ToString() } | ConvertTo-Json -Compress
Remove-Item `$junit, `$nunit
"@
        $r.Cases | Should -Be $r.Checks
        $r.Suites | Should -Be @('Arcs', 'DataFd')
        $r.Failures | Should -Be 1
        $r.FailedName | Should -Be 'datafd.state-kept-across-run'
        $r.FailureText | Should -Match 'Rule \(should\):'
        $r.FailureText | Should -Match 'Calls \(the failing one last\):'
        $r.FailureText | Should -Match 'VFIO_DEVICE_FEATURE\(SET MIG_DEVICE_STATE=STOP_COPY\)'
        $r.NCases | Should -Be $r.Checks
        $r.NFailures | Should -Be 1
    }

    It 'changes nothing with -WhatIf, and refuses an unknown check by name' {
        $r = Invoke-Suite @"
New-VfioContainer -Device '36e5c7cc-4871-4d03-91da-44479a60a911' | Out-Null
`$out = @(Test-VfioDevice '36e5c7cc-4871-4d03-91da-44479a60a911' -WhatIf)
`$e = `$null; try { Test-VfioDevice '36e5c7cc-4871-4d03-91da-44479a60a911' -Check arcs.nope } catch { `$e = `$_ }
[pscustomobject]@{ Out = `$out.Count; ErrorId = `$e.FullyQualifiedErrorId; Message = "`$e" } | ConvertTo-Json -Compress
"@
        $r.Out | Should -Be 0
        $r.ErrorId | Should -BeLike 'UnknownCheck,*'
        $r.Message | Should -Match 'arcs.direct'
    }

    It 'runs as Pester tests from the module''s LabChecks, one per check' {
        $r = Invoke-Suite @"
New-VfioContainer -Device '36e5c7cc-4871-4d03-91da-44479a60a911' | Out-Null
`$c = New-PesterContainer -Path (Join-Path (Split-Path ([VfioMigration.Core.DeviceChecks.DeviceCheckSuite].Assembly.Location)) 'LabChecks/DeviceMigration.Tests.ps1') -Data @{ Device = '36e5c7cc-4871-4d03-91da-44479a60a911' }
`$cfg = New-PesterConfiguration; `$cfg.Run.Container = `$c; `$cfg.Run.PassThru = `$true; `$cfg.Output.Verbosity = 'None'
`$p = Invoke-Pester -Configuration `$cfg
[pscustomobject]@{ Result = `$p.Result; Passed = `$p.PassedCount; Skipped = `$p.SkippedCount; Failed = `$p.FailedCount; Total = `$p.TotalCount
    Catalog = [VfioMigration.Core.DeviceChecks.DeviceCheckSuite]::Catalog.Count } | ConvertTo-Json -Compress
"@
        $r.Result | Should -Be 'Passed'
        $r.Total | Should -Be $r.Catalog
        $r.Passed | Should -BeGreaterOrEqual 20
    }
}
