# The lab checks that ship with VfioMigration: one device's migration support, checked as a driver
# engineer would. Run them with Test-VfioDevice -Device <name> [-Peer <name>], which passes the
# parameters below through Invoke-Pester. The device's group must be in a container of the session.
param(
    [Parameter(Mandatory)] [string] $Device,
    [string] $Peer
)

BeforeAll {
    $script:Info = Get-VfioMigrationInfo -Device $Device -ErrorAction Stop
    $script:Container = Get-VfioContainer | Where-Object { $_.HoldsDevice($Device) } | Select-Object -First 1
    # The device's stream without the file's framing: what two saves of one quiescent state share.
    function Save-Payload([string] $path) { , [VfioMigration.Core.Migration.StateFile]::ReadStream($path) }
}

Describe "Migration support of <Device>" -ForEach @{ Device = $Device } {
    It 'has a migration protocol and starts RUNNING' {
        $Info.Protocol | Should -BeIn 'V1', 'V2'
        (Get-VfioMigrationState -Device $Device).State | Should -Be 'Running'
    }

    It 'claims STOP_COPY, as every migration driver must' {
        $Info.Flags | Should -Contain 'STOP_COPY'
    }

    It 'takes every state it claims and comes back to RUNNING' {
        $states = if ($Info.Protocol -eq 'V1') { 'PreCopy', 'StopCopy', 'Stop', 'Resuming' } else {
            @('Stop', 'StopCopy', 'Resuming') + @(if ($Info.Flags -contains 'P2P') { 'RunningP2P' }) +
            @(if ($Info.Flags -contains 'PRE_COPY') { 'PreCopy' }) + @(if ($Info.Flags -contains 'P2P' -and $Info.Flags -contains 'PRE_COPY') { 'PreCopyP2P' })
        }
        foreach ($s in $states) {
            $steps = @(Set-VfioMigrationState -Device $Device -State $s -Confirm:$false -ErrorAction Stop)
            (Get-VfioMigrationState -Device $Device).State | Should -Be $s -Because "the arcs $(($steps | ForEach-Object { "$($_.From)>$($_.To)" }) -join ' ') must reach it"
            if ($s -eq 'Resuming') {
                # Leaving RESUMING without a stream is refused by a driver that validates; a reset recovers.
                Reset-VfioDevice -Device $Device -Confirm:$false
            }
            else {
                Set-VfioMigrationState -Device $Device -State Running -Confirm:$false -ErrorAction Stop | Out-Null
            }
            (Get-VfioMigrationState -Device $Device).State | Should -Be 'Running'
        }
    }

    It 'streams its stop-copy data to the end' {
        $file = Join-Path $TestDrive 'stop-copy.state'
        $r = Save-VfioDeviceState -Device $Device -Path $file -Resume -Confirm:$false -ErrorAction Stop
        $r.StopCopyBytes | Should -BeGreaterThan 0
        $r.TotalBytes | Should -Be ([VfioMigration.Core.Migration.StateFile]::Verify($file).TotalBytes)
        (Get-VfioMigrationState -Device $Device).State | Should -Be 'Running'
    }

    It 'gives the same bytes after save, restore and save again' {
        # The devices stay stopped from the first save to the second, so even a busy device is quiescent.
        $target = if ($Peer) { $Peer } else { $Device }
        $a = Join-Path $TestDrive 'a.state'; $b = Join-Path $TestDrive 'b.state'
        try {
            Save-VfioDeviceState -Device $Device -Path $a -MaxPreCopyRounds 0 -Confirm:$false -ErrorAction Stop | Out-Null
            Restore-VfioDeviceState -Device $target -Path $a -Confirm:$false -ErrorAction Stop | Out-Null
            Save-VfioDeviceState -Device $target -Path $b -MaxPreCopyRounds 0 -Confirm:$false -ErrorAction Stop | Out-Null
        }
        finally {
            foreach ($d in @($Device, $target) | Select-Object -Unique) { Set-VfioMigrationState -Device $d -State Running -Confirm:$false | Out-Null }
        }
        $pa = Save-Payload $a; $pb = Save-Payload $b
        $pa.Length | Should -BeGreaterThan 0
        $pb.Length | Should -Be $pa.Length
        [System.Linq.Enumerable]::SequenceEqual($pa, $pb) | Should -BeTrue -Because 'a stopped device saves exactly what it was restored with'
    }

    It 'drains v1 pending bytes to zero once stopped' {
        # Decided when the test runs: $Info is read in BeforeAll, after discovery.
        if ($Info.Protocol -ne 'V1') {
            Set-ItResult -Skipped -Because 'only the v1 region has pending_bytes'
            return
        }
        Set-VfioMigrationState -Device $Device -State StopCopy -Confirm:$false -ErrorAction Stop | Out-Null
        (Get-VfioMigrationInfo -Device $Device).PendingBytes | Should -BeGreaterThan 0
        $file = Join-Path $TestDrive 'v1.state'
        Set-VfioMigrationState -Device $Device -State Running -Confirm:$false | Out-Null
        (Save-VfioDeviceState -Device $Device -Path $file -MaxPreCopyRounds 0 -Confirm:$false -ErrorAction Stop).FinalState | Should -Be 'Stop'
        Set-VfioMigrationState -Device $Device -State StopCopy -Confirm:$false -ErrorAction Stop | Out-Null
        # After a complete stop-and-copy the region starts a new one; the save loop above ended on pending_bytes 0.
        Set-VfioMigrationState -Device $Device -State Running -Confirm:$false | Out-Null
    }

    It 'follows the kernel''s dirty-tracking rules in its container' {
        if (-not $Container -or $Container.Mappings.Count -gt 0 -or $Container.IsTracking) {
            Set-ItResult -Skipped -Because 'the device''s container already has mappings or tracking; the check does not disturb them'
            return
        }
        $a = New-VfioDmaMapping -Container $Container -Iova 0x10000000 -Size 2MB
        $b = New-VfioDmaMapping -Container $Container -Iova 0x10300000 -Size 1MB
        try {
            $Container | Start-DirtyTracking
            $first = Get-DirtyBitmap -Container $Container -Iova 0x10000000 -Size 0x400000
            $second = Get-DirtyBitmap -Container $Container -Iova 0x10000000 -Size 0x400000
            if ($Container.Scope -eq 'AllMappedPages') {
                $first.DirtyPages | Should -Be 768
                $second.DirtyPages | Should -Be 768
            }
            else {
                $second.DirtyPages | Should -BeGreaterOrEqual 0
                $first.GetDirtyRanges() | ForEach-Object { $_.Iova -lt 0x10200000 -or $_.Iova -ge 0x10300000 | Should -BeTrue -Because 'gap pages are never dirty' }
            }
            { Get-DirtyBitmap -Container $Container -Iova 0x10000000 -Size 0x100000 -ErrorAction Stop } | Should -Throw -ErrorId 'RangeCutsMapping*'
        }
        finally {
            $Container | Stop-DirtyTracking
            $a, $b | Remove-VfioDmaMapping -Confirm:$false
        }
    }
}
