# Saving and restoring device state on the simulated host.
BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
    $script:Src = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61'
    $script:Dst = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62'
    $script:Mtty = '36e5c7cc-4871-4d03-91da-44479a60a911'
}
AfterAll { Disconnect-VfioHost }

Describe 'Save-VfioDeviceState and Restore-VfioDeviceState' {
    BeforeEach {
        Connect-VfioHost -Simulated | Out-Null
        $null = New-VfioContainer -Device $Src, $Dst, $Mtty
    }

    It 'saves pre-copy and stop-copy into a file that restores into a second device' {
        $file = Join-Path $TestDrive 'vgpu.state'
        $s = Save-VfioDeviceState $Src $file -Confirm:$false
        $s.PreCopyBytes | Should -BeGreaterThan 0
        $s.TotalBytes | Should -BeGreaterOrEqual 64MB
        $s.FinalState | Should -Be 'Stop'
        $r = Restore-VfioDeviceState $Dst $file -Resume -Confirm:$false
        $r.Bytes | Should -Be $s.TotalBytes
        (Get-VfioMigrationState $Dst).State | Should -Be 'Running'
    }

    It 'refuses a damaged file and leaves the device running' {
        $file = Join-Path $TestDrive 'm.state'
        Save-VfioDeviceState $Mtty $file -Resume -Confirm:$false | Out-Null
        $bytes = [System.IO.File]::ReadAllBytes($file); $bytes[30] = $bytes[30] -bxor 0xff
        [System.IO.File]::WriteAllBytes($file, $bytes)
        Restore-VfioDeviceState $Mtty $file -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'StateFileInvalid,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }

    It 'refuses a state saved from another kind of device' {
        $file = Join-Path $TestDrive 'foreign.state'
        Save-VfioDeviceState $Mtty $file -Resume -Confirm:$false | Out-Null
        Restore-VfioDeviceState $Dst $file -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'StateFileForeign,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
        "$($e[0])" | Should -Match 'mtty-2'
    }

    It 'leaves no file and the device running when the device fails during the save' {
        $file = Join-Path $TestDrive 'fail.state'
        [VfioMigration.Infrastructure.VfioSession]::Host.Kernel.Faults.FailIoctl('VFIO_MIG_GET_PRECOPY_INFO', 1, 5)
        Save-VfioDeviceState $Mtty $file -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e | Should -Not -BeNullOrEmpty
        Test-Path $file | Should -BeFalse
        @(Get-ChildItem $TestDrive -Force -Filter '.fail.state*').Count | Should -Be 0
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }

    It 'does not overwrite a file without -Force, and -WhatIf saves nothing' {
        $file = Join-Path $TestDrive 'keep.state'
        Set-Content $file 'precious'
        Save-VfioDeviceState $Mtty $file -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'FileExists,VfioMigration.Commands.SaveVfioDeviceStateCommand'
        Get-Content $file | Should -Be 'precious'
        Save-VfioDeviceState $Mtty (Join-Path $TestDrive 'w.state') -WhatIf
        Test-Path (Join-Path $TestDrive 'w.state') | Should -BeFalse
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }
}
