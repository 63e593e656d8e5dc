# PowerShell manners a person expects without reading the help: wildcards on names, a state accepted in
# both spellings the module prints, and confirmation asked by consequence (about_VfioMigration,
# "Confirmation"): read and test cmdlets never prompt, undoable changes are Medium, what discards device
# state or mappings is High.
BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
    Connect-VfioHost -Simulated | Out-Null
}
AfterAll { Disconnect-VfioHost }

Describe 'Wildcards' {
    It 'Get-VfioDevice 8a1f* finds both vGPU mdevs' {
        (Get-VfioDevice 8a1f* -WarningAction SilentlyContinue).Name | Sort-Object | Should -Be @('8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61', '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62')
    }

    It 'Get-VfioGroup -Device 5E0B* finds the groups of the v1 devices, whatever the case' {
        (Get-VfioGroup -Device 5E0B*).Group | Should -Be @(12, 13)
    }

    It 'a pattern that matches nothing is no error, a plain name that matches nothing is' {
        @(Get-VfioDevice 'ffff*' -ErrorAction Stop) | Should -HaveCount 0
        { Get-VfioDevice 'ffff:00:00.0' -ErrorAction Stop } | Should -Throw -ErrorId 'DeviceNotFound,*'
    }
}

Describe 'States in both spellings' {
    BeforeAll { $null = New-VfioContainer -Device 36e5c7cc-4871-4d03-91da-44479a60a911 }
    AfterAll { Get-VfioContainer | Remove-VfioContainer -Confirm:$false }

    It 'takes <Typed> as <Meant>' -ForEach @(
        @{ Typed = 'PRE_COPY'; Meant = 'PreCopy' }
        @{ Typed = 'stop_copy'; Meant = 'StopCopy' }
        @{ Typed = 'RUNNING_P2P'; Meant = 'RunningP2P' }
        @{ Typed = 'PreCopyP2P'; Meant = 'PreCopyP2P' }
    ) {
        $steps = @(Set-VfioMigrationState 36e5c7cc-4871-4d03-91da-44479a60a911 -State $Typed -WhatIf)
        $steps | Should -HaveCount 0
        $moved = @(Set-VfioMigrationState 36e5c7cc-4871-4d03-91da-44479a60a911 -State $Typed)
        (Get-VfioMigrationState 36e5c7cc-4871-4d03-91da-44479a60a911).State | Should -Be $Meant
        $null = Set-VfioMigrationState 36e5c7cc-4871-4d03-91da-44479a60a911 -State RUNNING
        $moved.Count | Should -BeGreaterThan 0
    }

    It 'refuses a name that is no state, listing the states' {
        { Set-VfioMigrationState 36e5c7cc-4871-4d03-91da-44479a60a911 -State PRECOPYY -ErrorAction Stop } | Should -Throw '*PreCopy*'
    }
}

Describe 'Confirmation by consequence' {
    It '<Cmdlet> is <Impact>' -ForEach @(
        @{ Cmdlet = 'Test-VfioDevice'; Impact = 'Low' }
        @{ Cmdlet = 'Export-DirtyBitmap'; Impact = 'Low' }
        @{ Cmdlet = 'Start-DirtyTracking'; Impact = 'Low' }
        @{ Cmdlet = 'New-VfioDmaMapping'; Impact = 'Low' }
        @{ Cmdlet = 'New-VfioContainer'; Impact = 'Medium' }
        @{ Cmdlet = 'Set-VfioMigrationState'; Impact = 'Medium' }
        @{ Cmdlet = 'Save-VfioDeviceState'; Impact = 'Medium' }
        @{ Cmdlet = 'Reset-VfioDevice'; Impact = 'High' }
        @{ Cmdlet = 'Restore-VfioDeviceState'; Impact = 'High' }
        @{ Cmdlet = 'Start-VfioMigration'; Impact = 'High' }
        @{ Cmdlet = 'Remove-VfioDmaMapping'; Impact = 'High' }
        @{ Cmdlet = 'Remove-VfioContainer'; Impact = 'High' }
    ) {
        $type = (Get-Command $Cmdlet).ImplementingType
        $attribute = $type.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
        $attribute.ConfirmImpact | Should -Be $Impact
    }

    It 'a read cmdlet has no -Confirm at all' {
        (Get-Command Get-DirtyBitmap).Parameters.Keys | Should -Not -Contain 'Confirm'
    }
}

Describe 'What a script can reach' {
    It 'a bitmap''s words and bytes as arrays PowerShell can hold' {
        $null = New-VfioContainer -Group 2
        try {
            $null = New-VfioDmaMapping -Iova 0x10000000 -Size 1MB
            Get-VfioContainer | Start-DirtyTracking
            $b = Get-DirtyBitmap
            $words = $b.ToArray()
            $words.GetType().Name | Should -Be 'UInt64[]'
            $words | Should -HaveCount 4
            $words | ForEach-Object { $_ | Should -Be ([uint64]::MaxValue) }
            $bytes = $b.ToBytes()
            $bytes | Should -HaveCount 32
            ($bytes | Where-Object { $_ -ne 255 }) | Should -BeNullOrEmpty
        }
        finally { Get-VfioContainer | Remove-VfioContainer -Confirm:$false }
    }

    It 'this machine''s kernel as uname -r prints it' -Skip:(-not (Test-Path /proc/sys/kernel/osrelease)) {
        Disconnect-VfioHost
        try { (Get-VfioHost).Description | Should -BeLike "*Linux $((Get-Content /proc/sys/kernel/osrelease).Trim())*" }
        finally { Connect-VfioHost -Simulated | Out-Null }
    }
}
