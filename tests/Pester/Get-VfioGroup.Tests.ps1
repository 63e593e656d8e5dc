BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
}

Describe 'Get-VfioGroup on this machine' {
    BeforeAll { Disconnect-VfioHost }

    It 'says plainly when VFIO is absent instead of failing' -Skip:(Test-Path /dev/vfio/vfio) {
        $groups = Get-VfioGroup -WarningVariable w -WarningAction SilentlyContinue -ErrorAction Stop
        $w | Should -Not -BeNullOrEmpty
        "$w" | Should -Match 'no IOMMU groups|vfio modules are not loaded|no /dev/vfio/vfio'
        "$w" | Should -Match 'Connect-VfioHost -Simulated'
        @($groups | Where-Object DeviceNodeExists).Count | Should -Be 0
    }

    It 'writes a GroupNotFound error for a group sysfs does not know, and goes on' {
        $out = Get-VfioGroup -Group 999999 -ErrorVariable e -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $e[0].FullyQualifiedErrorId | Should -Be 'GroupNotFound,VfioMigration.Commands.GetVfioGroupCommand'
        $e[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'writes a DeviceNotFound error for an unknown device' {
        Get-VfioGroup -Device 0000:ff:1f.7 -ErrorVariable e -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'DeviceNotFound,VfioMigration.Commands.GetVfioGroupCommand'
        "$($e[0])" | Should -Match '0000:ff:1f.7'
    }

    It 'binds group numbers from the pipeline by value' {
        $e = $null
        999998, 999999 | Get-VfioGroup -ErrorVariable e -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        $e.Count | Should -Be 2
    }
}

Describe 'Get-VfioGroup on the simulated host' {
    BeforeAll { Connect-VfioHost -Simulated | Out-Null }
    AfterAll { Disconnect-VfioHost }

    It 'lists the groups of the shipped topology, each saying it is simulated' {
        $groups = Get-VfioGroup
        $groups.Group | Should -Contain 2
        $groups.Group | Should -Contain 7
        $groups | ForEach-Object { $_.HostKind | Should -Be 'Simulated' }
    }

    It 'tells a group a VFIO program can open from one it cannot' {
        (Get-VfioGroup -Group 3).Devices.Driver | Should -Be @('vfio-pci', 'e1000e')
        (Get-VfioGroup -VfioOnly).Group | Should -Contain 3   # node exists; viability is a container question
    }

    It 'finds the group of a device by name and by pipeline property' {
        (Get-VfioGroup -Device 0000:00:02.0).Group | Should -Be 2
        ([pscustomobject]@{ Name = '36e5c7cc-4871-4d03-91da-44479a60a911' } | Get-VfioGroup).Group | Should -Be 7
    }

    It 'shows mdev devices with their type and PCI devices with their ids in the table view' {
        $text = Get-VfioGroup -Group 2, 7 | Out-String
        $text | Should -Match '0000:00:02.0 \[1234:11e8\] vfio-pci'
        $text | Should -Match 'mtty-2 mtty'
        $text | Should -Match 'Simulated'
    }
}
