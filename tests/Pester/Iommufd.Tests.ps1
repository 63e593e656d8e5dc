# The iommufd backend on the shipped simulated host (Iommufd = $true, a VT-d that tracks dirty pages, and group
# 16 behind an IOMMU unit that cannot), as an administrator uses it: the same cmdlets and objects as the legacy
# container, a Scope that says where the dirty bits come from, and a warning where the IOMMU cannot track.
BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
}
AfterAll { Disconnect-VfioHost }

Describe 'One vocabulary over both backends' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'tracks, reads and exports the same columns from a legacy and an iommufd container' {
        Push-Location $TestDrive
        try {
            $legacy = New-VfioContainer -Group 2 -Backend Legacy
            $null = New-VfioDmaMapping -Container $legacy -Iova 0x10000000 -Size 2MB
            $legacy | Start-DirtyTracking
            Get-DirtyBitmap -Container $legacy -Iova 0x0 -Size 2GB | Export-Csv legacy.csv
            $legacy | Remove-VfioContainer -Confirm:$false

            $iommufd = New-VfioContainer -Group 14 -Backend Iommufd
            $null = New-VfioDmaMapping -Container $iommufd -Iova 0x10000000 -Size 2MB
            Get-VfioContainer | Start-DirtyTracking
            Start-Sleep -Milliseconds 200
            Get-DirtyBitmap -Iova 0x0 -Size 2GB | Export-Csv iommufd.csv

            (Get-Content legacy.csv -First 1) | Should -Be (Get-Content iommufd.csv -First 1)
            $l = Import-Csv legacy.csv
            $i = Import-Csv iommufd.csv
            $l.Scope | Should -Be 'AllMappedPages'
            $i.Scope | Should -Be 'IommuHardware'
            [uint64]$i.Pages | Should -Be 524288
            [uint64]$i.DirtyPages | Should -BeGreaterThan 0           # the pages the device wrote, not every mapped one
            [uint64]$i.DirtyPages | Should -BeLessOrEqual 512
        }
        finally { Pop-Location }
    }

    It 'says which backend a container uses, and Auto picks iommufd where the host has /dev/iommu' {
        $c = New-VfioContainer -Group 14 -Backend Auto
        $c.Backend | Should -Be 'Iommufd'
        $c.IoasId | Should -BeGreaterThan 0
        $c.HwptId | Should -BeGreaterThan 0
        (New-VfioContainer -Group 2).Backend | Should -Be 'Legacy'
    }

    It 'shows the IOMMU behind each device with Get-VfioIommuInfo' {
        $null = New-VfioContainer -Group 14 -Backend Iommufd
        $info = Get-VfioIommuInfo
        $info.Backend | Should -Be 'Iommufd'
        $info.DirtyTracking | Should -BeTrue
        $info.Hardware.Type | Should -Be 'IntelVtd'
        $info.Hardware.DirtyTracking | Should -BeTrue
        $info.Hardware.Ssads | Should -BeTrue
        $info.Hardware.Smpwc | Should -BeTrue
        $info.IovaRanges.Count | Should -Be 2                          # the MSI window is cut out once the device is attached
    }

    It 'shows the IOMMU''s registers in hex and the bits that decide, and the backend in the container''s views' {
        $c = New-VfioContainer -Group 16 -Backend Iommufd -WarningAction SilentlyContinue
        $text = $c.Hardware | Format-List | Out-String -Width 80
        $text | Should -Match 'VtdEcap\s+: 0xf00f4a'
        $text | Should -Match 'SSADS- SMPWC-'
        $text | Should -Match 'Why not\s+: VT-d without scalable mode'
        ($c | Format-List | Out-String) | Should -Match 'Backend\s+: Iommufd: IOAS \d+, HWPT \d+'
        ($c | Format-Table | Out-String) | Should -Match '16\s+iommufd'
    }

    It 'reads without clearing with -NoClear, so the next read sees the pages again' {
        $c = New-VfioContainer -Group 14 -Backend Iommufd
        $null = New-VfioDmaMapping -Container $c -Iova 0x10000000 -Size 4MB
        $c | Start-DirtyTracking
        Start-Sleep -Milliseconds 200
        $peek = Get-DirtyBitmap -NoClear
        $read = Get-DirtyBitmap
        $peek.DirtyPages | Should -BeGreaterThan 0
        $read.DirtyPages | Should -BeGreaterOrEqual $peek.DirtyPages
        (Compare-DirtyBitmap $peek $read -Operation Difference).ResultDirtyPages | Should -Be 0   # every page peeked is still there
    }

    It 'measures the dirty rate from the IOMMU''s bits, without the all-mapped-pages warning' {
        $c = New-VfioContainer -Group 14 -Backend Iommufd
        $null = New-VfioDmaMapping -Container $c -Iova 0x10000000 -Size 64MB
        $c | Start-DirtyTracking
        $s = @(Measure-DirtyRate -Duration 00:00:00.3 -Interval 00:00:00.1 -WarningVariable w -WarningAction SilentlyContinue)
        $s.Count | Should -BeGreaterThan 0
        $s[-1].Scope | Should -Be 'IommuHardware'
        $w | Should -BeNullOrEmpty
    }

    It 'counts the guest memory of an iommufd container in a migration' {
        $guest = New-VfioContainer -Group 14 -Backend Iommufd
        $null = New-VfioDmaMapping -Container $guest -Iova 0x10000000 -Size 8MB
        $guest | Start-DirtyTracking
        $null = New-VfioContainer -Group 10, 11
        $r = Start-VfioMigration 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62 -Container $guest -Bandwidth 1GB -Confirm:$false -WarningAction SilentlyContinue
        $r.Status | Should -Be 'Completed'
    }

    It 'refuses -NoClear on a legacy container with NoClearUnsupported' {
        $c = New-VfioContainer -Group 2
        $null = New-VfioDmaMapping -Container $c -Iova 0x10000000 -Size 2MB
        $c | Start-DirtyTracking
        Get-DirtyBitmap -NoClear -ErrorVariable e -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -BeLike 'NoClearUnsupported,*'
    }
}

Describe 'An IOMMU that cannot track dirty pages' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'warns when the container is made, saying why and what takes over' {
        $c = New-VfioContainer -Group 16 -Backend Iommufd -WarningVariable w -WarningAction SilentlyContinue
        $c | Should -Not -BeNullOrEmpty
        "$w" | Should -Match 'cannot track dirty pages'
        "$w" | Should -Match 'SSADS'
        "$w" | Should -Match 'Start-DirtyTracking -Device'
        "$w" | Should -Match '-Backend Legacy'
        $c.Info.DirtyTracking | Should -BeFalse
    }

    It 'refuses Start-DirtyTracking with IommuNoDirtyTracking' {
        $c = New-VfioContainer -Group 16 -Backend Iommufd -WarningAction SilentlyContinue
        $c | Start-DirtyTracking -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'IommuNoDirtyTracking,*'
        $c.IsTracking | Should -BeFalse
    }

    It 'keeps a device''s own DMA log working in an iommufd container (the first fallback)' {
        $c = New-VfioContainer -Group 14 -Backend Iommufd
        $null = New-VfioDmaMapping -Container $c -Iova 0x10000000 -Size 4MB
        Start-DirtyTracking -Device 0000:3b:00.1
        Start-Sleep -Milliseconds 200
        $b = Get-DirtyBitmap -Device 0000:3b:00.1
        $b.Scope | Should -Be 'DeviceLog'
        $b.DirtyPages | Should -BeGreaterThan 0
    }

    It 'falls back to the legacy container, whose type1 tracking reads every mapped page dirty' {
        $c = New-VfioContainer -Group 16 -Backend Legacy
        $null = New-VfioDmaMapping -Container $c -Iova 0x10000000 -Size 2MB
        $c | Start-DirtyTracking
        $b = Get-DirtyBitmap
        $b.Scope | Should -Be 'AllMappedPages'
        $b.DirtyPages | Should -Be 512
    }
}

Describe 'Manners' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'changes nothing with -WhatIf: no container, and the group can still be opened' {
        New-VfioContainer -Group 14 -Backend Iommufd -WhatIf | Should -BeNullOrEmpty
        Get-VfioContainer -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        (New-VfioContainer -Group 14).Backend | Should -Be 'Legacy'
    }

    It 'frees the devices when the container is removed, so the legacy container can take the group' {
        $c = New-VfioContainer -Group 14 -Backend Iommufd
        New-VfioContainer -Group 2, 14 -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $c | Remove-VfioContainer -Confirm:$false
        (New-VfioContainer -Group 14).Groups.Number | Should -Be 14
    }

    It 'says IommufdNotPresent on a host without /dev/iommu' {
        $file = Join-Path $TestDrive 'legacy.psd1'
        Set-Content $file "@{ Name = 'legacy only'; Groups = @( @{ Group = 2; Devices = @( @{ Name = '0000:00:02.0'; Bus = 'pci' } ) } ) }"
        Connect-VfioHost -Simulated -Configuration $file | Out-Null
        { New-VfioContainer -Group 2 -Backend Iommufd -ErrorAction Stop } | Should -Throw -ErrorId 'IommufdNotPresent*'
        (New-VfioContainer -Group 2 -Backend Auto).Backend | Should -Be 'Legacy'
    }

    It 'migrates between two devices of an iommufd container' {
        $c = New-VfioContainer -Group 10, 11 -Backend Iommufd -WarningAction SilentlyContinue
        $c.Backend | Should -Be 'Iommufd'
        $r = Start-VfioMigration 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62 -Bandwidth 1GB -Confirm:$false -WarningAction SilentlyContinue
        $r.Status | Should -Be 'Completed'
    }
}
