# Runs in the lab guest (Guest-Checks.ps1): the module's migration cmdlets, and the lab checks it ships,
# against the real kernel's mtty device (v2 migration with STOP_COPY|P2P|PRE_COPY).
BeforeAll {
    Import-Module "$env:VFIOLAB_REPO/module/VfioMigration.psd1"
    $script:Mtty = $env:VFIOLAB_MDEV_DEVICE
    $script:Container = New-VfioContainer -Device $Mtty -ErrorAction Stop
}
AfterAll { Get-VfioContainer | Remove-VfioContainer -Confirm:$false }

Describe 'Migration cmdlets on a real kernel (QEMU lab, mtty)' {
    It 'reads the mtty''s migration support as the kernel reports it' {
        $i = Get-VfioMigrationInfo $Mtty -ErrorAction Stop
        $i.Protocol | Should -Be 'V2'
        $i.Flags | Should -Be @('STOP_COPY', 'P2P', 'PRE_COPY')
        $i.State | Should -Be 'Running'
        $i.StopCopySize | Should -Be 96
    }

    It 'walks RUNNING -> PRE_COPY -> STOP_COPY -> RUNNING one arc per step' {
        (Set-VfioMigrationState $Mtty -State PreCopy -Confirm:$false -ErrorAction Stop).DataFdOpened | Should -Be $true
        (Get-VfioMigrationInfo $Mtty).PrecopyInitialBytes | Should -Be 24
        @(Set-VfioMigrationState $Mtty -State StopCopy -Confirm:$false -ErrorAction Stop).Count | Should -Be 2
        @(Set-VfioMigrationState $Mtty -State Running -Confirm:$false -ErrorAction Stop).Count | Should -Be 3
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }

    It 'saves the 96 bytes of state and restores them' {
        $file = Join-Path $TestDrive 'mtty.state'
        $s = Save-VfioDeviceState $Mtty $file -Resume -Confirm:$false -ErrorAction Stop
        ($s.PreCopyBytes, $s.StopCopyBytes) | Should -Be @(24, 72)
        (Restore-VfioDeviceState $Mtty $file -Resume -Confirm:$false -ErrorAction Stop).FinalState | Should -Be 'Running'
    }

    It 'a save stopped mid-way (its progress callback throws, as a stopped pipeline does) leaves the real mtty RUNNING and no file' {
        $folder = New-Item -ItemType Directory (Join-Path $TestDrive 'stopped')
        $file = Join-Path $folder 'stopped.state'
        $device = $Container.GetDevice($Mtty)
        $stop = [Action[VfioMigration.Core.Migration.MigrationProgress]] { param($p) if ($p.Moved -gt 0) { throw 'The pipeline has been stopped.' } }
        $failure = $null
        try { [VfioMigration.Core.Migration.DeviceState]::Save($device, $file, 1, $false, $stop, [Threading.CancellationToken]::None, $false) }
        catch { $failure = $_.Exception.InnerException }   # a .NET method's exception arrives wrapped in MethodInvocationException
        $failure | Should -BeOfType ([VfioMigration.Core.Migration.MigrationFailedException])
        $failure.Status | Should -Be 'Cancelled'
        $failure.SourceOutcome.State | Should -Be 'Running'
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
        @(Get-ChildItem $folder -Force).Count | Should -Be 0
    }

    It 'a migration into an existing file is refused before the real mtty moves' {
        $file = Join-Path $TestDrive 'exists.state'
        Set-Content $file 'keep'
        Start-VfioMigration $Mtty -Path $file -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'FileExists,VfioMigration.Commands.StartVfioMigrationCommand'
        Get-Content $file | Should -Be 'keep'
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
        $r = Start-VfioMigration $Mtty -Path $file -Force -Confirm:$false -ErrorAction Stop
        $r.Status | Should -Be 'Completed'
        [int](Get-Item $file).UnixFileMode | Should -Be 0x180
        Set-VfioMigrationState $Mtty -State Running -Confirm:$false -ErrorAction Stop | Out-Null
    }

    It 'starts and stops the mtty''s own DMA log, and says why this kernel cannot report or measure it' {
        $mapping = New-VfioDmaMapping -Container $Container -Iova 0x100000 -Size 2MB -ErrorAction Stop
        try {
            (Start-DirtyTracking -Device $Mtty -PassThru -Confirm:$false -ErrorAction Stop).PageSize | Should -Be 4096
            Get-DirtyBitmap -Device $Mtty -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $e[0].FullyQualifiedErrorId | Should -Be 'DeviceLogReportUnsupported,VfioMigration.Commands.GetDirtyBitmapCommand'
            "$($e[0])" | Should -Match 'CONFIG_IOMMUFD_DRIVER'
            Measure-DirtyRate -Device $Mtty -Duration 00:00:00.200 -Interval 00:00:00.100 -ErrorVariable m -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $m[0].FullyQualifiedErrorId | Should -Be 'DeviceLogReportUnsupported,VfioMigration.Commands.MeasureDirtyRateCommand'
            Stop-DirtyTracking -Device $Mtty -Confirm:$false -ErrorAction Stop
        }
        finally { $mapping | Remove-VfioDmaMapping -Confirm:$false }
    }

}

# The conformance suite (Test-VfioDevice) against the real mtty, restoring into the second mtty: one lab
# test per check, so that the suite counts in the lab totals and a failing check names itself.
BeforeDiscovery {
    Import-Module "$env:VFIOLAB_REPO/module/VfioMigration.psd1"
    $script:Checks = @([VfioMigration.Core.DeviceChecks.DeviceCheckSuite]::Catalog | ForEach-Object { @{ Id = $_.Id } })
}

Describe 'Test-VfioDevice on the real mtty (Debian 6.12), with the second mtty as -Peer' {
    BeforeAll {
        $script:Peer = $env:VFIOLAB_PEER_MDEV_DEVICE
        $null = New-VfioContainer -Device $Peer -ErrorAction Stop
        # Not $junit: variables are case-blind, and a local $junit would hide $script:JUnit from the tests.
        $reportPath = Join-Path $TestDrive 'conformance.xml'
        $script:Report = Test-VfioDevice $Mtty -Peer $Peer -OutputFile $reportPath -Confirm:$false -WarningAction SilentlyContinue -ProgressAction SilentlyContinue -ErrorAction Stop
        $script:JUnit = [xml](Get-Content $reportPath -Raw)
        Write-Host ("LAB: Test-VfioDevice {0}: {1} passed, {2} failed, {3} skipped in {4:0.0}s on {5}" -f $Mtty, $Report.Passed, $Report.Failed, $Report.Skipped, $Report.Duration.TotalSeconds, $Report.Kernel)
    }

    It '<Id>' -ForEach $Checks {
        $result = $Report.Results | Where-Object Id -eq $Id
        if ($result.Outcome -eq 'Skipped') { Set-ItResult -Skipped -Because $result.Actual; return }
        $result.Outcome | Should -Be 'Passed' -Because ([VfioMigration.Core.DeviceChecks.DeviceCheckReport]::FailureText($result))
    }

    It 'names the real kernel and driver in its report and its JUnit file, and leaves both mdevs RUNNING' {
        $Report.Kernel | Should -Match '^6\.12'
        $Report.Driver | Should -Be 'mtty'
        @($JUnit.testsuites.testsuite.testcase).Count | Should -Be $Report.Results.Count
        (Get-VfioMigrationState -Device $Mtty).State | Should -Be 'Running'
        (Get-VfioMigrationState -Device $Peer).State | Should -Be 'Running'
    }
}
