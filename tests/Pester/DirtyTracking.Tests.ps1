# Containers, DMA mappings, dirty tracking and bitmaps on the simulated host, as an administrator uses them.
BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
    function New-LabGuest([int] $Group = 2) {
        # The lab's layout (kernel-interface.md lab 7.1): a 2 MiB and a 1 MiB mapping with a 1 MiB gap between them.
        $c = New-VfioContainer -Group $Group
        $null = New-VfioDmaMapping -Container $c -Iova 0x10000000 -Size 2MB
        $null = New-VfioDmaMapping -Container $c -Iova 0x10300000 -Size 1MB
        $c
    }
}
AfterAll { Disconnect-VfioHost }

Describe 'The two used-by lines, verbatim' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'track, read 2 GiB from 0x0 and write a CSV a person can read and Import-Csv reads back' {
        $null = New-LabGuest      # group 2: a PCI function behind the IOMMU, so every mapped page reads dirty
        Push-Location $TestDrive
        try {
            Get-VfioContainer | Start-DirtyTracking
            Get-DirtyBitmap -Iova 0x0 -Size 2GB | Export-Csv dirty.csv

            $text = Get-Content dirty.csv -Raw
            $text | Should -Not -Match 'System\.'
            $row = @(Import-Csv dirty.csv)
            $row.Count | Should -Be 1
            $row[0].Iova | Should -Be '0x0'
            [uint64]$row[0].Size | Should -Be 2GB
            [uint64]$row[0].PageSize | Should -Be 4096
            [uint64]$row[0].Pages | Should -Be 524288
            [uint64]$row[0].DirtyPages | Should -Be 768
            [uint64]$row[0].DirtyBytes | Should -Be 3MB
            $row[0].Scope | Should -Be 'AllMappedPages'
            $row[0].HostKind | Should -Be 'Simulated'
        }
        finally { Pop-Location }
    }

    It 'writes one row per dirty run with -AsRange, with hex IOVAs' {
        $null = New-LabGuest
        Push-Location $TestDrive
        try {
            Get-VfioContainer | Start-DirtyTracking
            Get-DirtyBitmap -Iova 0x0 -Size 2GB -AsRange | Export-Csv runs.csv
            $rows = Import-Csv runs.csv
            $rows.Iova | Should -Be @('0x10000000', '0x10300000')
            $rows.Pages | Should -Be @('512', '256')
        }
        finally { Pop-Location }
    }
}

Describe 'Dirty scope' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'reads every mapped page dirty on every read when a device sits behind the IOMMU' {
        $c = New-LabGuest -Group 2
        $c | Start-DirtyTracking
        (Get-DirtyBitmap -Container $c).DirtyPages | Should -Be 768
        (Get-DirtyBitmap -Container $c).DirtyPages | Should -Be 768 -Because 'the kernel re-dirties IOMMU-backed pages on every read'
        $c.Scope | Should -Be 'AllMappedPages'
    }

    It 'reads only pinned pages in an mdev-only container (mtty pins none)' {
        $c = New-LabGuest -Group 7
        $c | Start-DirtyTracking
        $b = Get-DirtyBitmap -Container $c -Iova 0x10000000 -Size 0x400000
        $b.Scope | Should -Be 'PinnedPages'
        $b.DirtyPages | Should -Be 0
        (Get-VfioIommuInfo -Container $c).IovaRanges | Should -BeNullOrEmpty -Because 'an mdev-only container has no IOVA-range capability'
    }
}

Describe 'Errors before the kernel''s EINVAL' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'refuses a range that cuts a mapping, naming both' {
        $c = New-LabGuest
        $c | Start-DirtyTracking
        { Get-DirtyBitmap -Iova 0x10000000 -Size 0x100000 -ErrorAction Stop } | Should -Throw -ErrorId 'RangeCutsMapping,VfioMigration.Commands.GetDirtyBitmapCommand'
        try { Get-DirtyBitmap -Iova 0x10000000 -Size 0x100000 -ErrorAction Stop }
        catch { $_.Exception.Message | Should -BeLike 'range 0x10000000+0x100000 cuts the mapping 0x10000000+0x200000; the kernel reads whole mappings only*' }
    }

    It 'refuses to read before tracking starts' {
        $null = New-LabGuest
        { Get-DirtyBitmap -ErrorAction Stop } | Should -Throw -ErrorId 'TrackingNotStarted,VfioMigration.Commands.GetDirtyBitmapCommand'
    }

    It 'refuses an unaligned or overlapping mapping' {
        $null = New-LabGuest
        { New-VfioDmaMapping -Iova 0x10000200 -Size 4096 -ErrorAction Stop } | Should -Throw -ErrorId 'MappingNotAligned,VfioMigration.Commands.NewVfioDmaMappingCommand'
        { New-VfioDmaMapping -Iova 0x10100000 -Size 2MB -ErrorAction Stop } | Should -Throw -ErrorId 'MappingOverlaps,VfioMigration.Commands.NewVfioDmaMappingCommand'
        { New-VfioDmaMapping -Iova 0xfee00000 -Size 4096 -ErrorAction Stop } | Should -Throw -ErrorId 'MappingOutsideIovaRanges,VfioMigration.Commands.NewVfioDmaMappingCommand'
    }

    It 'names the process that holds a busy group' {
        { New-VfioContainer -Group 15 -ErrorAction Stop } | Should -Throw
        New-VfioContainer -Group 2, 15 -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'OpenFailed,VfioMigration.Commands.NewVfioContainerCommand'
        $e[0].CategoryInfo.Category | Should -Be 'ResourceBusy'
        "$($e[0])" | Should -Match 'qemu-system-x86_64 \(pid 4242\)'
        (Get-VfioContainer).Groups.Number | Should -Be 2 -Because 'the other group was still attached'
    }

    It 'explains a group that is not viable' {
        New-VfioContainer -Group 2, 3 -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'GroupNotViable,VfioMigration.Commands.NewVfioContainerCommand'
        "$($e[0])" | Should -Match '0000:00:03.1 \(on e1000e\)'
    }

    It 'asks which container when the session holds several' {
        $null = New-VfioContainer -Group 2
        $null = New-VfioContainer -Group 7
        { Start-DirtyTracking -ErrorAction Stop } | Should -Throw -ErrorId 'ContainerAmbiguous,VfioMigration.Commands.StartDirtyTrackingCommand'
        Start-DirtyTracking -ContainerId 2 -PassThru | ForEach-Object Id | Should -Be 2
    }
}

Describe 'PowerShell manners' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It '-WhatIf changes nothing' {
        New-VfioContainer -Group 2 -WhatIf | Should -BeNullOrEmpty
        Get-VfioContainer | Should -BeNullOrEmpty
        $c = New-VfioContainer -Group 2
        New-VfioDmaMapping -Iova 0x10000000 -Size 2MB -WhatIf | Out-Null
        (Get-VfioDmaMapping).Count | Should -Be 0
        $c | Start-DirtyTracking -WhatIf
        $c.IsTracking | Should -BeFalse
    }

    It '-Verbose traces every ioctl with its arguments and result' {
        $c = New-LabGuest
        $c | Start-DirtyTracking
        $v = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000 -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        # Two mappings with a gap between them: one call spans both (docs/performance.md P2).
        "$v" | Should -Match 'VFIO_IOMMU_DIRTY_PAGES\(GET_BITMAP iova 0x10000000 size 0x400000\) on /dev/vfio/vfio -> 0'
    }

    It 'completes group numbers, devices and container ids' {
        $null = New-VfioContainer -Group 2
        (TabExpansion2 'New-VfioContainer -Group 1' 26).CompletionMatches.CompletionText | Should -Contain '10'
        (TabExpansion2 'Get-VfioDevice 0000:00' 22).CompletionMatches.CompletionText | Should -Contain '0000:00:02.0'
        (TabExpansion2 'Get-VfioContainer ' 18).CompletionMatches.CompletionText | Should -Contain '1'
    }

    It 'returns the dirty bitmap of a mapping it removes while tracking' {
        $c = New-LabGuest
        $c | Start-DirtyTracking
        $b = Get-VfioDmaMapping | Where-Object Iova -EQ 0x10000000 | Remove-VfioDmaMapping -Confirm:$false
        $b.DirtyPages | Should -Be 512
        (Get-VfioDmaMapping).Count | Should -Be 1
        $c | Stop-DirtyTracking
        Get-VfioDmaMapping | Remove-VfioDmaMapping -Confirm:$false | Should -BeNullOrEmpty
    }

    It 'closes everything with Remove-VfioContainer and frees the group for another container' {
        $c = New-LabGuest
        $c | Remove-VfioContainer -Confirm:$false
        Get-VfioContainer | Should -BeNullOrEmpty
        (New-VfioContainer -Group 2).Groups.Number | Should -Be 2
    }
}

Describe 'Bitmaps as files and sets' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'exports and imports a bitmap losslessly' {
        $c = New-LabGuest
        $c | Start-DirtyTracking
        $b = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000
        $file = Join-Path $TestDrive 'b.json'
        $b | Export-DirtyBitmap -Path $file
        $back = Import-DirtyBitmap $file
        $back.Iova | Should -Be $b.Iova
        $back.DirtyPages | Should -Be $b.DirtyPages
        $back.Timestamp | Should -Be $b.Timestamp
        ($back.GetDirtyRanges() | ForEach-Object ToString) | Should -Be ($b.GetDirtyRanges() | ForEach-Object ToString)
    }

    It 'refuses a damaged file' {
        $c = New-LabGuest
        $c | Start-DirtyTracking
        $file = Join-Path $TestDrive 'damaged.json'
        Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000 | Export-DirtyBitmap -Path $file
        (Get-Content $file -Raw) -replace '"dirtyPages": 768', '"dirtyPages": 767' | Set-Content $file
        { Import-DirtyBitmap $file -ErrorAction Stop } | Should -Throw -ErrorId 'BitmapFileInvalid,VfioMigration.Commands.ImportDirtyBitmapCommand'
    }

    It 'combines two bitmaps with counts' {
        $c = New-LabGuest
        $c | Start-DirtyTracking
        $all = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000
        $c | Stop-DirtyTracking
        Get-VfioDmaMapping | Where-Object Iova -EQ 0x10300000 | Remove-VfioDmaMapping -Confirm:$false
        $c | Start-DirtyTracking
        $some = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000
        $d = Compare-DirtyBitmap $all $some -Operation Difference
        $d.ReferenceDirtyPages | Should -Be 768
        $d.DifferenceDirtyPages | Should -Be 512
        $d.ResultDirtyPages | Should -Be 256
        (Compare-DirtyBitmap $all $some -Operation Union).ResultDirtyPages | Should -Be 768
        (Compare-DirtyBitmap $all $some -Operation Intersection).ResultDirtyPages | Should -Be 512
    }
}

Describe 'Measure-DirtyRate' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'returns one sample per interval in pages/s and MiB/s' {
        $c = New-LabGuest
        $c | Start-DirtyTracking
        $s = Measure-DirtyRate -Duration 00:00:00.3 -Interval 00:00:00.1 -WarningVariable w -WarningAction SilentlyContinue
        $s.Count | Should -Be 3
        $s.Iteration | Should -Be 1, 2, 3
        $s | ForEach-Object { $_.DirtyPages | Should -Be 768; $_.DirtyPagesPerSecond | Should -BeGreaterThan 0; $_.DirtyRateMiBps | Should -BeGreaterThan 0 }
        "$w" | Should -Match 'every mapped page dirty'
    }
}

Describe 'Get-VfioDevice' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'shows the migration protocol and flags of each kind of device' {
        $d = Get-VfioDevice -WarningAction SilentlyContinue
        ($d | Where-Object Name -EQ '0000:00:02.0').Migration | Should -Be 'None'
        $mtty = $d | Where-Object Name -EQ '36e5c7cc-4871-4d03-91da-44479a60a911'
        $mtty.Migration | Should -Be 'V2'
        $mtty.MigrationFlags | Should -Be @('STOP_COPY', 'P2P', 'PRE_COPY')
        $mtty.StopCopySize | Should -Be 96
        ($d | Where-Object Group -EQ 12).Migration | Should -Be 'V1'
    }

    It 'warns about groups it cannot open while listing, and errors when one is named' {
        Get-VfioDevice -WarningVariable w -WarningAction SilentlyContinue | Out-Null
        "$w" | Should -Match 'held by qemu-system-x86_64'
        Get-VfioDevice 0000:00:05.0 -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].CategoryInfo.Category | Should -Be 'ResourceBusy'
    }
}

Describe 'Edges a user hits' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'without -Size reads up to the highest mapping, and says so when -Iova is above it' {
        $c = New-LabGuest
        $c | Start-DirtyTracking
        (Get-DirtyBitmap -Iova 0x10300000).Size | Should -Be 1MB
        Get-DirtyBitmap -Iova 0x20000000 -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'NoMappings,VfioMigration.Commands.GetDirtyBitmapCommand'
        "$($e[0])" | Should -Match 'no mapping at or above 0x20000000'
    }

    It 'names a missing backing file' {
        $null = New-VfioContainer -Group 2
        New-VfioDmaMapping 0x1000000 1MB -Path (Join-Path $TestDrive 'nope.ram') -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'BackingFileNotFound,VfioMigration.Commands.NewVfioDmaMappingCommand'
    }

    It 'maps a file as guest memory' {
        $null = New-VfioContainer -Group 2
        $file = Join-Path $TestDrive 'guest.ram'
        [System.IO.File]::WriteAllBytes($file, [byte[]]::new(2MB))
        $m = New-VfioDmaMapping 0x1000000 2MB -Path $file
        $m.Backing | Should -Be 'File'
        $m.File | Should -Be $file
    }

    It 'says which container of the session already holds a group' {
        $null = New-VfioContainer -Group 7
        New-VfioContainer -Group 7, 2 -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'GroupInUse,VfioMigration.Commands.NewVfioContainerCommand'
        "$($e[0])" | Should -Match 'container 1 of this session'
        { New-VfioContainer -Group 7 -ErrorAction Stop } | Should -Throw
        try { New-VfioContainer -Group 7 -ErrorAction SilentlyContinue } catch { $_.FullyQualifiedErrorId | Should -Be 'NoGroupAttached,VfioMigration.Commands.NewVfioContainerCommand' }
    }

    It 'returns the exported file as Get-Item does' {
        $c = New-LabGuest
        $c | Start-DirtyTracking
        $f = Get-DirtyBitmap | Export-DirtyBitmap -Path (Join-Path $TestDrive 'x.json') -PassThru
        $f.PSProvider.Name | Should -Be 'FileSystem'
        $f.Length | Should -BeGreaterThan 0
    }
}

Describe 'Get-DirtyBitmap -AsRange and -Granularity stream what the scan finds' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }
    AfterEach { Disconnect-VfioHost }

    It 'writes the runs one by one, and in blocks with -Granularity, with the same pages in all' {
        $null = New-VfioContainer -Group 2
        $null = New-VfioDmaMapping -Iova 0x0 -Size 64MB
        $null = New-VfioDmaMapping -Iova 0x10000000 -Size 2MB
        Start-DirtyTracking
        $runs = @(Get-DirtyBitmap -AsRange)
        ($runs | ForEach-Object ToString) | Should -Be @('0x0+0x4000000', '0x10000000+0x200000')
        $blocks = @(Get-DirtyBitmap -Granularity 32MB)
        $blocks.Count | Should -Be 2
        ($blocks[0].Iova.Value, $blocks[0].Size, $blocks[0].Pages) | Should -Be @(0, 64MB, 16384)
        ($blocks[1].Iova.Value, $blocks[1].Size, $blocks[1].Pages) | Should -Be @(0x10000000, 2MB, 512)
        $first = Get-DirtyBitmap -AsRange | Select-Object -First 1
        $first.ToString() | Should -Be '0x0+0x4000000'
    }

    It 'refuses a granularity that is not a multiple of the page size' {
        $null = New-VfioContainer -Group 2
        $null = New-VfioDmaMapping -Iova 0x0 -Size 2MB
        Start-DirtyTracking
        Get-DirtyBitmap -Granularity 1000 -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -Be 'BadGranularity,VfioMigration.Commands.GetDirtyBitmapCommand'
        Get-DirtyBitmap -Granularity 0 -ErrorVariable z -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $z[0].FullyQualifiedErrorId | Should -Be 'BadGranularity,VfioMigration.Commands.GetDirtyBitmapCommand'
    }

    It 'reads mappings with a gap between them in one call' {
        $null = New-VfioContainer -Group 2
        $null = New-VfioDmaMapping -Iova 0x0 -Size 2MB
        $null = New-VfioDmaMapping -Iova 0x40000000 -Size 2MB
        Start-DirtyTracking
        $b = Get-DirtyBitmap -Verbose 4>&1 | Tee-Object -Variable all | Where-Object { $_ -is [VfioMigration.Core.Dirty.DirtyBitmap] }
        @($all | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and "$_" -match 'VFIO_IOMMU_DIRTY_PAGES' }).Count | Should -Be 1
        $b.DirtyPages | Should -Be 1024
        $b.Pages | Should -Be (0x40200000 / 4096)
    }
}

Describe 'A device''s own DMA log (Start-DirtyTracking -Device, Get-DirtyBitmap -Device, Stop-DirtyTracking -Device)' {
    BeforeAll {
        # The shipped host as Debian's 6.12 kernel is (no CONFIG_IOMMUFD_DRIVER), the mlx5-style function
        # logging 2 MiB; returns its name.
        function Connect-DebianLikeHost {
            $cfg = Join-Path $TestDrive 'debian.psd1'
            (Get-Content "$PSScriptRoot/../../module/SimulatedHost/Default.psd1" -Raw) -replace 'IommufdDriver = \$true', 'IommufdDriver = $false' | Set-Content $cfg
            Connect-VfioHost -Simulated -Configuration $cfg | Out-Null
            $nic = '0000:3b:00.1'
            $null = New-VfioContainer -Device $nic
            $null = New-VfioDmaMapping -Iova 0x10000000 -Size 2MB
            Start-DirtyTracking -Device $nic
            $nic
        }
    }
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }
    AfterEach { Disconnect-VfioHost }

    It 'reads only the pages the device wrote, as DeviceLog bitmaps that compose with Compare-DirtyBitmap' {
        $nic = '0000:3b:00.1'
        $c = New-VfioContainer -Device $nic
        # 256 MB: the NIC writes 20000 random pages a second, and only tens of seconds of a loaded machine
        # between the two reads would let it write every one of 65536 pages (16 MB were written whole in 0.3 s).
        $null = New-VfioDmaMapping -Iova 0x10000000 -Size 256MB
        $c | Start-DirtyTracking
        $log = Start-DirtyTracking -Device $nic -PassThru
        $log.PageSize | Should -Be 4096
        $log.Ranges.Count | Should -Be 1
        Start-Sleep -Milliseconds 200
        $device = Get-DirtyBitmap -Device $nic
        $container = Get-DirtyBitmap
        $device.Scope | Should -Be 'DeviceLog'
        $device.DirtyPages | Should -BeGreaterThan 0
        $device.DirtyPages | Should -BeLessThan $container.DirtyPages
        $container.Scope | Should -Be 'AllMappedPages'
        (Compare-DirtyBitmap $container $device -Operation Difference).Result.DirtyPages | Should -Be ($container.DirtyPages - $device.DirtyPages)
        Stop-DirtyTracking -Device $nic
        Get-DirtyBitmap -Device $nic -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'DeviceLogNotStarted,VfioMigration.Commands.GetDirtyBitmapCommand'
    }

    It 'says why a kernel without CONFIG_IOMMUFD_DRIVER cannot report a device log' {
        $nic = Connect-DebianLikeHost
        Get-DirtyBitmap -Device $nic -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -Be 'DeviceLogReportUnsupported,VfioMigration.Commands.GetDirtyBitmapCommand'
        "$($e[0])" | Should -Match 'CONFIG_IOMMUFD_DRIVER'
        Stop-DirtyTracking -Device $nic
    }

    It 'measures the rate of a device''s own log with Measure-DirtyRate -Device' {
        $nic = '0000:3b:00.1'
        $null = New-VfioContainer -Device $nic
        $null = New-VfioDmaMapping -Iova 0x10000000 -Size 16MB
        Start-DirtyTracking -Device $nic
        $samples = @(Measure-DirtyRate -Device $nic -Duration 00:00:00.600 -Interval 00:00:00.200)
        $samples.Count | Should -Be 3
        $samples | ForEach-Object {
            $_.Scope | Should -Be 'DeviceLog'
            $_.Source | Should -Be 'DeviceLog'
            $_.Device | Should -Be $nic
            $_.Pages | Should -Be 4096
            $_.DirtyPages | Should -BeLessThan 4096
        }
        ($samples | Measure-Object DirtyPages -Sum).Sum | Should -BeGreaterThan 0
        Stop-DirtyTracking -Device $nic
        Measure-DirtyRate -Device $nic -Duration 00:00:00.200 -Interval 00:00:00.100 -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -Be 'DeviceLogNotStarted,VfioMigration.Commands.MeasureDirtyRateCommand'
    }

    It 'says why Measure-DirtyRate -Device cannot read the log on a kernel without CONFIG_IOMMUFD_DRIVER' {
        $nic = Connect-DebianLikeHost
        Measure-DirtyRate -Device $nic -Duration 00:00:00.200 -Interval 00:00:00.100 -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -Be 'DeviceLogReportUnsupported,VfioMigration.Commands.MeasureDirtyRateCommand'
        Stop-DirtyTracking -Device $nic
    }

    It 'refuses a device that keeps no log of its own' {
        $null = New-VfioContainer -Group 2
        $null = New-VfioDmaMapping -Iova 0x10000000 -Size 2MB
        Start-DirtyTracking -Device 0000:00:02.0 -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'NoDeviceDmaLogging,VfioMigration.Commands.StartDirtyTrackingCommand'
    }
}
