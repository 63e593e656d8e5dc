# docs/when-a-migration-fails.md through the cmdlets, on the shipped simulated host: a real PowerShell.Stop()
# while a cmdlet writes progress, damaged files byte by byte, files that are not regular files, a full disk
# and a read-only folder (a small tmpfs, where this machine lets root mount one), and reports that tell the truth.
BeforeDiscovery {
    # -Skip is decided at discovery: can root mount a small tmpfs here (CI can; a laptop without root cannot)?
    $script:CanMount = $false
    if ((id -u) -eq '0') {
        $probe = Join-Path ([System.IO.Path]::GetTempPath()) "vfiomig-mount-probe-$PID"
        $null = New-Item -ItemType Directory -Force $probe
        mount -t tmpfs -o size=64k tmpfs $probe 2>$null
        if ($LASTEXITCODE -eq 0) { $script:CanMount = $true; umount $probe }
        Remove-Item $probe -Force -ErrorAction Ignore
    }
}
BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
    $script:Src = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61'
    $script:Dst = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62'
    $script:Mtty = '36e5c7cc-4871-4d03-91da-44479a60a911'
    $script:Manifest = (Resolve-Path "$PSScriptRoot/../../VfioMigration.psd1").Path

    # Runs a script in a second runspace of this process (the module's session is the process's) and
    # stops it with PowerShell.Stop() once it has written $AfterProgress progress records.
    function Stop-WhileWritingProgress([scriptblock] $Script, [object[]] $Arguments, [int] $AfterProgress = 2) {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("param([object[]] `$a) Import-Module '$Manifest'; & { $Script } @a").AddParameter('a', $Arguments)
            $async = $ps.BeginInvoke()
            $deadline = [datetime]::UtcNow.AddSeconds(60)
            while ($ps.Streams.Progress.Count -lt $AfterProgress -and -not $async.IsCompleted -and [datetime]::UtcNow -lt $deadline) {
                Start-Sleep -Milliseconds 5
            }
            $wasRunning = -not $async.IsCompleted
            $ps.Stop()
            try { $null = $ps.EndInvoke($async) } catch { }
            [pscustomobject]@{
                WasRunning = $wasRunning
                State      = $ps.InvocationStateInfo.State
                Progress   = $ps.Streams.Progress.Count
                Warnings   = @($ps.Streams.Warning | ForEach-Object Message)
            }
        }
        finally { $ps.Dispose() }
    }

    function New-SmallDisk([string] $size, [switch] $ReadOnly) {
        $dir = Join-Path ([System.IO.Path]::GetTempPath()) "vfiomig-disk-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $null = New-Item -ItemType Directory -Force $dir
        $opts = "size=$size" + $(if ($ReadOnly) { ',ro' } else { '' })
        mount -t tmpfs -o $opts tmpfs $dir
        if ($LASTEXITCODE -ne 0) { throw "mount tmpfs on $dir failed" }
        $dir
    }
    function Remove-SmallDisk([string] $dir) { umount $dir; Remove-Item $dir -Force -Recurse -ErrorAction Ignore }
}
AfterAll { Disconnect-VfioHost }

Describe 'Ctrl+C (PowerShell.Stop) while a cmdlet writes progress' {
    BeforeEach {
        Connect-VfioHost -Simulated | Out-Null
        $null = New-VfioContainer -Device $Src, $Dst, $Mtty
    }

    It 'Start-VfioMigration to a device: the source runs, the destination is reset, the report says Cancelled' {
        $r = Stop-WhileWritingProgress { param($s, $d) Start-VfioMigration $s $d -Bandwidth 64MB -Confirm:$false } @($Src, $Dst)
        $r.WasRunning | Should -BeTrue -Because 'the stop must arrive during the migration'
        $r.State | Should -Be 'Stopped'
        (Get-VfioMigrationState $Src).State | Should -Be 'Running'
        (Get-VfioMigrationState $Dst).State | Should -Be 'Running'
        $report = Get-VfioMigration -Source $Src | Select-Object -Last 1
        $report.Status | Should -Be 'Cancelled'
        $report.SourceOutcome.State | Should -Be 'Running'
        $report.DestinationOutcome.Action | Should -Match 'reset \(VFIO_DEVICE_RESET\)'
        $report.ErrorDescription | Should -Match 'stopped during (setup|pre-copy round \d+)'
    }

    It 'Start-VfioMigration -Path: the source runs and no file, partial or whole, is left' {
        $file = Join-Path $TestDrive 'stopped.state'
        $r = Stop-WhileWritingProgress { param($s, $f) Start-VfioMigration $s -Path $f -Bandwidth 64MB -Confirm:$false } @($Src, $file)
        $r.WasRunning | Should -BeTrue
        (Get-VfioMigrationState $Src).State | Should -Be 'Running'
        @(Get-ChildItem $TestDrive -Force).Count | Should -Be 0
        (Get-VfioMigration -Source $Src | Select-Object -Last 1).ErrorDescription | Should -Match 'No state file was written'
    }

    It 'Save-VfioDeviceState: the source runs and no file is left' {
        $file = Join-Path $TestDrive 'save.state'
        # 4 KiB per read: the save writes progress thousands of times, so the stop lands inside it.
        [VfioMigration.Infrastructure.VfioSession]::Host.Kernel.Faults.ShortTransferBytes = 4096
        $r = Stop-WhileWritingProgress { param($s, $f) Save-VfioDeviceState $s $f -Confirm:$false } @($Src, $file) -AfterProgress 20
        $r.WasRunning | Should -BeTrue
        (Get-VfioMigrationState $Src).State | Should -Be 'Running'
        @(Get-ChildItem $TestDrive -Force).Count | Should -Be 0
    }

    It 'Restore-VfioDeviceState: the destination is reset to RUNNING' {
        $file = Join-Path $TestDrive 'restore.state'
        Save-VfioDeviceState $Src $file -Resume -Confirm:$false | Out-Null
        [VfioMigration.Infrastructure.VfioSession]::Host.Kernel.Faults.ShortTransferBytes = 4096
        $r = Stop-WhileWritingProgress { param($d, $f) Restore-VfioDeviceState $d $f -Confirm:$false } @($Dst, $file) -AfterProgress 3
        $r.WasRunning | Should -BeTrue
        (Get-VfioMigrationState $Dst).State | Should -Be 'Running'
        Test-Path $file | Should -BeTrue -Because 'a restore never touches its file'
    }
}

Describe 'State files: verified before anything is interpreted, and only regular files' {
    BeforeAll {
        Connect-VfioHost -Simulated | Out-Null
        $null = New-VfioContainer -Device $Mtty
        $script:Good = Join-Path $TestDrive 'good.state'
        Save-VfioDeviceState $Mtty $Good -Resume -Confirm:$false | Out-Null
        $script:GoodBytes = [System.IO.File]::ReadAllBytes($Good)
    }

    It 'refuses every single flipped byte and every truncation with StateFileInvalid, and the device stays RUNNING' {
        $file = Join-Path $TestDrive 'sweep.state'
        $ids = [System.Collections.Generic.Dictionary[string, int]]::new()
        $cases = 0
        for ($i = 0; $i -lt $GoodBytes.Length; $i++) {
            foreach ($damage in 'flip', 'truncate') {
                $b = if ($damage -eq 'flip') { $c = $GoodBytes.Clone(); $c[$i] = $c[$i] -bxor 0x01; $c } else { [byte[]]$GoodBytes[0..($i - 1)] }
                if ($i -eq 0 -and $damage -eq 'truncate') { $b = [byte[]]@() }
                [System.IO.File]::WriteAllBytes($file, $b)
                $e = $null
                $out = Restore-VfioDeviceState $Mtty $file -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
                $out | Should -BeNullOrEmpty -Because "$damage at byte $i must not restore"
                $id = $e[0].FullyQualifiedErrorId
                if (-not $ids.ContainsKey($id)) { $ids[$id] = 0 }
                $ids[$id]++
                $cases++
            }
        }
        $ids.Keys | Should -Be @('StateFileInvalid,VfioMigration.Commands.RestoreVfioDeviceStateCommand')
        $ids.Values | Should -Be @($cases)
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }

    It 'refuses a FIFO as state file at once instead of waiting for a writer' {
        $fifo = Join-Path $TestDrive 'pipe.state'
        mkfifo $fifo
        $job = Start-ThreadJob { param($m, $d, $f) Import-Module $m; Restore-VfioDeviceState $d $f -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable e; $e[0].FullyQualifiedErrorId } -ArgumentList $Manifest, $Mtty, $fifo -ErrorAction SilentlyContinue
        $done = Wait-Job $job -Timeout 20
        $done | Should -Not -BeNullOrEmpty -Because 'open() of a FIFO must not block'
        Receive-Job $job | Should -Match '^(FileNotRegular|DeviceNotInContainer),'
        Remove-Job $job -Force
        Restore-VfioDeviceState $Mtty $fifo -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'FileNotRegular,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
        "$($e[0])" | Should -Match 'FIFO'
        Save-VfioDeviceState $Mtty $fifo -Force -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'FileNotRegular,VfioMigration.Commands.SaveVfioDeviceStateCommand'
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }

    It 'refuses a FIFO as -Configuration and as a bitmap file at once' {
        $fifo = Join-Path $TestDrive 'config.psd1'
        mkfifo $fifo
        $job = Start-ThreadJob {
            param($m, $f)
            Import-Module $m
            try { Connect-VfioHost -Simulated -Configuration $f -ErrorAction Stop } catch { $_.FullyQualifiedErrorId }
            try { Import-DirtyBitmap $f -ErrorAction Stop } catch { $_.FullyQualifiedErrorId }
        } -ArgumentList $Manifest, $fifo
        Wait-Job $job -Timeout 20 | Should -Not -BeNullOrEmpty -Because 'open() of a FIFO must not block'
        Receive-Job $job | Should -Be @('FileNotRegular,VfioMigration.Commands.ConnectVfioHostCommand', 'FileNotRegular,VfioMigration.Commands.ImportDirtyBitmapCommand')
        Remove-Job $job -Force
    }

    It 'refuses a directory, a device and /proc as state files with module error ids' {
        Restore-VfioDeviceState $Mtty $TestDrive -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'FileNotRegular,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
        Restore-VfioDeviceState $Mtty /dev/zero -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'FileNotRegular,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
        Save-VfioDeviceState $Mtty /dev/null -Force -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'FileNotRegular,VfioMigration.Commands.SaveVfioDeviceStateCommand'
        foreach ($target in '/proc/self/vfio.state', '/sys/kernel/vfio.state', (Join-Path $TestDrive 'no/such/folder/x.state')) {
            Save-VfioDeviceState $Mtty $target -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
            $e[0].FullyQualifiedErrorId | Should -Be 'FileWriteFailed,VfioMigration.Commands.SaveVfioDeviceStateCommand' -Because $target
            "$($e[0])" | Should -Match ([regex]::Escape($target))
            "$($e[0])" | Should -Match '\(E[A-Z]+\)'
        }
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }

    It 'creates state files and bitmap files readable by their owner only' {
        [int](Get-Item $Good).UnixFileMode | Should -Be 0x180   # rw-------
        $bitmap = Join-Path $TestDrive 'b.json'
        [VfioMigration.Core.Dirty.DirtyBitmap]::new([VfioMigration.Core.Dirty.Iova]::new(0), 1MB, 4KB, [uint64[]]::new(4), 'PinnedPages', 'Simulated', 'x', [datetimeoffset]::Now) |
            Export-DirtyBitmap -Path $bitmap
        [int](Get-Item $bitmap).UnixFileMode | Should -Be 0x180
    }

    It 'a damaged save time is refused like any other damage, and ErrorAction is honoured' {
        $b = $GoodBytes.Clone(); $b[20] = $b[20] -bxor 0x80   # inside the saved-at timestamp
        $file = Join-Path $TestDrive 'time.state'
        [System.IO.File]::WriteAllBytes($file, $b)
        { Restore-VfioDeviceState $Mtty $file -Confirm:$false -ErrorAction SilentlyContinue } | Should -Not -Throw
        { Restore-VfioDeviceState $Mtty $file -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'StateFileInvalid,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
    }
}

Describe 'One device per state file' {
    BeforeEach {
        Connect-VfioHost -Simulated | Out-Null
        $null = New-VfioContainer -Device $Src, $Mtty
    }

    It 'refuses a second device piped to the same -Path and keeps the first one''s file' {
        $file = Join-Path $TestDrive 'one.state'
        $out = $Mtty, $Src | Save-VfioDeviceState -Path $file -Force -Resume -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
        @($out).Count | Should -Be 1
        $out.Device | Should -Be $Mtty
        $e[0].FullyQualifiedErrorId | Should -Be 'OneDevicePerFile,VfioMigration.Commands.SaveVfioDeviceStateCommand'
        [VfioMigration.Core.Migration.StateFile]::Verify($file).Identity.Name | Should -Be $Mtty
        (Get-VfioMigrationState $Src).State | Should -Be 'Running'
    }

    It 'saves each device to its own file in a folder' {
        $folder = New-Item -ItemType Directory (Join-Path $TestDrive 'many')
        $out = $Mtty, $Src | Save-VfioDeviceState -Path $folder -Resume -Confirm:$false
        $out.Path | Should -Be @((Join-Path $folder "$Mtty.state"), (Join-Path $folder "$Src.state"))
        @(Get-ChildItem $folder).Count | Should -Be 2
    }
}

Describe 'A full disk, a read-only folder' {
    BeforeEach {
        Connect-VfioHost -Simulated | Out-Null
        $null = New-VfioContainer -Device $Src, $Mtty
    }

    It 'a save that fills the disk leaves no temporary file and the device RUNNING' -Skip:(-not $CanMount) {
        $disk = New-SmallDisk '1m'
        try {
            Save-VfioDeviceState $Src (Join-Path $disk 'big.state') -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
            $e[0].FullyQualifiedErrorId | Should -Be 'FileWriteFailed,VfioMigration.Commands.SaveVfioDeviceStateCommand'
            "$($e[0])" | Should -Match 'ENOSPC'
            "$($e[0])" | Should -Match 'No state file was written'
            @(Get-ChildItem $disk -Force).Count | Should -Be 0
            (Get-VfioMigrationState $Src).State | Should -Be 'Running'
        }
        finally { Remove-SmallDisk $disk }
    }

    It 'a small save onto a disk with no room left leaves no 0-byte file' -Skip:(-not $CanMount) {
        $disk = New-SmallDisk '64k'
        try {
            $fill = Join-Path $disk 'fill'
            dd if=/dev/zero of=$fill bs=4k count=64 2>$null
            Save-VfioDeviceState $Mtty (Join-Path $disk 'small.state') -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
            $e[0].FullyQualifiedErrorId | Should -Be 'FileWriteFailed,VfioMigration.Commands.SaveVfioDeviceStateCommand'
            @(Get-ChildItem $disk -Force | Where-Object Name -NE 'fill').Count | Should -Be 0
            (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
        }
        finally { Remove-SmallDisk $disk }
    }

    It 'a migration into a file on a full disk fails with the module id and the source runs' -Skip:(-not $CanMount) {
        $disk = New-SmallDisk '1m'
        try {
            $report = Start-VfioMigration $Src -Path (Join-Path $disk 'm.state') -Bandwidth 1GB -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
            $report.Status | Should -Be 'Failed'
            $report.ErrorId | Should -Be 'FileWriteFailed'
            $e[0].FullyQualifiedErrorId | Should -Be 'FileWriteFailed,VfioMigration.Commands.StartVfioMigrationCommand'
            $report.SourceState | Should -Be 'Running'
            @(Get-ChildItem $disk -Force).Count | Should -Be 0
        }
        finally { Remove-SmallDisk $disk }
    }

    It 'a read-only folder gives FileWriteFailed naming EROFS, before the device moves' -Skip:(-not $CanMount) {
        $disk = New-SmallDisk '1m' -ReadOnly
        try {
            Save-VfioDeviceState $Mtty (Join-Path $disk 'ro.state') -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue
            $e[0].FullyQualifiedErrorId | Should -Be 'FileWriteFailed,VfioMigration.Commands.SaveVfioDeviceStateCommand'
            "$($e[0])" | Should -Match 'EROFS'
            (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
            Export-DirtyBitmap -InputObject ([VfioMigration.Core.Dirty.DirtyBitmap]::new([VfioMigration.Core.Dirty.Iova]::new(0), 1MB, 4KB, [uint64[]]::new(4), 'PinnedPages', 'Simulated', 'x', [datetimeoffset]::Now)) -Path (Join-Path $disk 'b.json') -ErrorVariable e -ErrorAction SilentlyContinue
            $e[0].FullyQualifiedErrorId | Should -Be 'FileWriteFailed,VfioMigration.Commands.ExportDirtyBitmapCommand'
        }
        finally { Remove-SmallDisk $disk }
    }
}

Describe 'Start-VfioMigration -Path, -Bandwidth and the truth of its reports' {
    BeforeEach {
        Connect-VfioHost -Simulated | Out-Null
        $null = New-VfioContainer -Device $Src, $Dst
    }

    It 'refuses an existing file without -Force and moves nothing' {
        $file = Join-Path $TestDrive 'exists.state'
        Set-Content $file 'precious'
        Start-VfioMigration $Src -Path $file -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -Be 'FileExists,VfioMigration.Commands.StartVfioMigrationCommand'
        Get-Content $file | Should -Be 'precious'
        (Get-VfioMigrationState $Src).State | Should -Be 'Running'
        (Start-VfioMigration $Src -Path $file -Force -Bandwidth 1GB -Confirm:$false).Status | Should -Be 'Completed'
    }

    It 'refuses a bandwidth below 1 MiB/s: <_>' -ForEach @(0, 1, 1000) {
        Start-VfioMigration $Src $Dst -Bandwidth $_ -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -Be 'BandwidthTooLow,VfioMigration.Commands.StartVfioMigrationCommand'
    }

    It 'names the stop-copy size as the blocker when the device alone cannot fit the downtime limit' {
        $r = Start-VfioMigration $Src $Dst -MaxIterations 2 -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
        $r.Status | Should -Be 'NotConverged'
        $r.StopCopySize | Should -BeGreaterThan $r.AllowedBytes
        $r.ErrorDescription | Should -Match "stop-copy size \($($r.StopCopySize) bytes"
        $r.ErrorDescription | Should -Match "allows $($r.AllowedBytes) bytes"
        "$w" | Should -Match 'did not converge'
        $r.SourceState | Should -Be 'Running'
        $r.DestinationState | Should -Be 'Running'
    }

    It 'names the dirty rate against the bandwidth when guest memory is dirtied as fast as the link carries it' {
        # Group 2's PCI function is behind the IOMMU: all its 16 MiB of mapped memory reads dirty every time.
        $guest = New-VfioContainer -Group 2
        $null = New-VfioDmaMapping -Container $guest -Iova 0x10000000 -Size 16MB
        $guest | Start-DirtyTracking
        $null = New-VfioContainer -Device $Mtty
        $r = Start-VfioMigration $Mtty -Path (Join-Path $TestDrive 'guest.state') -Container $guest -Bandwidth 64MB -DowntimeLimit 100 -MaxIterations 2 -Confirm:$false -WarningAction SilentlyContinue
        $r.Status | Should -Be 'NotConverged'
        $r.StopCopySize | Should -BeLessThan $r.AllowedBytes -Because 'the device alone would fit'
        $r.ErrorDescription | Should -Match 'what remains does not shrink'
        $r.ErrorDescription | Should -Match 'MiB/s against the link''s 64 MiB/s'
        @(Get-ChildItem $TestDrive -Force -Filter '*guest*').Count | Should -Be 0
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }

    It 'flags and warns when the measured downtime exceeds the limit' {
        $r = Start-VfioMigration $Src $Dst -Bandwidth 1GB -DowntimeLimit 1 -MaxIterations 1 -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
        if ($r.Status -eq 'Completed') {
            $r.DowntimeExceeded | Should -Be ($r.Downtime.TotalMilliseconds -gt 1)
            if ($r.DowntimeExceeded) { "$w" | Should -Match 'more than the -DowntimeLimit of 1 ms' }
        }
        else {
            $r.Status | Should -Be 'NotConverged'
            $r.DowntimeExceeded | Should -BeFalse
        }
    }

    It 'a device falling into ERROR on the way into RESUMING is a module error naming the state, not a raw exception' {
        $file = Join-Path $TestDrive 'into-error.state'
        Save-VfioDeviceState $Src $file -Resume -Confirm:$false | Out-Null
        [VfioMigration.Infrastructure.VfioSession]::Host.Kernel.Faults.ErrorOnTransition($Dst, 4)   # RESUMING
        Restore-VfioDeviceState $Dst $file -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable e
        $e[0].FullyQualifiedErrorId | Should -Be 'DeviceInError,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
        "$($e[0])" | Should -Match 'ERROR'
        (Get-VfioMigrationState $Dst).State | Should -Be 'Running'   # reset: it has VFIO_DEVICE_RESET
    }

    It 'a device falling into ERROR on -Resume is DeviceInError, and the device is reset' {
        $file = Join-Path $TestDrive 'resume-error.state'
        Save-VfioDeviceState $Src $file -Resume -Confirm:$false | Out-Null
        [VfioMigration.Infrastructure.VfioSession]::Host.Kernel.Faults.ErrorOnTransition($Dst, 2)   # STOP -> RUNNING
        Restore-VfioDeviceState $Dst $file -Resume -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable e | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -Be 'DeviceInError,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
        "$($e[0])" | Should -Match 'stopped during resume'
        (Get-VfioMigrationState $Dst).State | Should -Be 'Running'
    }

    It 'a -Resume failure after the file is written says the file exists' {
        $file = Join-Path $TestDrive 'resume.state'
        [VfioMigration.Infrastructure.VfioSession]::Host.Kernel.Faults.RefuseTransition($Src, 2, 5)  # into RUNNING, EIO
        Save-VfioDeviceState $Src $file -Resume -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        "$($e[0])" | Should -Match 'was written'
        "$($e[0])" | Should -Not -Match 'No state file was written'
        Test-Path $file | Should -BeTrue
        (Get-VfioMigrationState $Src).State | Should -Be 'Running'
    }
}
