BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
}

Describe 'Get-VfioGroup on this machine' {
    It 'says plainly when VFIO is absent instead of failing' -Skip:(Test-Path /dev/vfio/vfio) {
        $groups = Get-VfioGroup -WarningVariable w -WarningAction SilentlyContinue -ErrorAction Stop
        $w | Should -Not -BeNullOrEmpty
        "$w" | Should -Match '/dev/vfio/vfio does not exist'
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
