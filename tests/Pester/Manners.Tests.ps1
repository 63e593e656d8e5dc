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

Describe 'Durations' {
    It '-DowntimeLimit takes <Typed> as <Ms> ms' -ForEach @(
        @{ Typed = 300; Ms = 300 }
        @{ Typed = '2s'; Ms = 2000 }
        @{ Typed = '150ms'; Ms = 150 }
        @{ Typed = '00:00:00.250'; Ms = 250 }
        @{ Typed = [TimeSpan]::FromSeconds(1); Ms = 1000 }
    ) {
        $p = (Get-Command Start-VfioMigration).Parameters['DowntimeLimit']
        $p.ParameterType | Should -Be ([TimeSpan])
        $t = $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ArgumentTransformationAttribute] }
        $t.Transform($ExecutionContext, $Typed).TotalMilliseconds | Should -Be $Ms
    }

    It 'Measure-DirtyRate reads a plain number as milliseconds, not ticks' {
        $null = New-VfioContainer -Group 2
        try {
            $null = New-VfioDmaMapping -Iova 0x10000000 -Size 1MB
            Get-VfioContainer | Start-DirtyTracking
            $samples = @(Measure-DirtyRate -Duration 300 -Interval 100ms)
            $samples.Count | Should -Be 3
        }
        finally { Get-VfioContainer | Remove-VfioContainer -Confirm:$false }
    }
}

Describe 'Progress' {
    It 'a save shows percent complete and the time remaining once the whole is known' {
        $root = Resolve-Path "$PSScriptRoot/../.."
        $file = Join-Path $TestDrive 'vgpu.state'
        $job = Start-Job {
            param($root, $file)
            Import-Module "$root/VfioMigration.psd1"
            Connect-VfioHost -Simulated | Out-Null
            New-VfioContainer -Device 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62 | Out-Null
            Save-VfioDeviceState 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62 $file -Resume | Out-Null
        } -ArgumentList $root, $file
        $null = Wait-Job $job -Timeout 120
        $progress = @($job.ChildJobs[0].Progress | Where-Object { $_.Activity -like 'Save-VfioDeviceState*' -and $_.RecordType -eq 'Processing' })
        $job.ChildJobs[0].Error | Should -BeNullOrEmpty
        Remove-Job $job -Force
        $known = @($progress | Where-Object PercentComplete -gt 0)
        $known.Count | Should -BeGreaterThan 0 -Because 'the state''s size is known once saving starts'
        @($known | Where-Object SecondsRemaining -ge 0).Count | Should -Be $known.Count
        ($known | Measure-Object PercentComplete -Maximum).Maximum | Should -BeGreaterOrEqual 50
    }
}

Describe 'Migration progress' {
    It 'pre-copy never says that nothing remains while guest memory and the device''s state are still to go' {
        $root = Resolve-Path "$PSScriptRoot/../.."
        $job = Start-Job {
            param($root)
            Import-Module "$root/VfioMigration.psd1"
            Connect-VfioHost -Simulated | Out-Null
            $guest = New-VfioContainer -Device 0000:00:02.0
            New-VfioDmaMapping -Container $guest -Iova 0x10000000 -Size 8MB | Out-Null
            $guest | Start-DirtyTracking | Out-Null
            New-VfioContainer -Device 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61, 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62 | Out-Null
            Start-VfioMigration 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62 -Container $guest -Bandwidth 1GB -Confirm:$false -WarningAction SilentlyContinue
        } -ArgumentList $root
        $null = Wait-Job $job -Timeout 120
        $progress = @($job.ChildJobs[0].Progress | Where-Object { $_.Activity -like 'Start-VfioMigration*' -and $_.StatusDescription -like 'pre-copy round*' })
        $report = Receive-Job $job
        $job.ChildJobs[0].Error | Should -BeNullOrEmpty
        Remove-Job $job -Force
        $report.Status | Should -Be 'Completed'
        $progress.Count | Should -BeGreaterThan 0
        $progress.StatusDescription | Should -Not -Match '\b0B remaining'
        $progress[0].StatusDescription | Should -Match 'remaining'
    }
}

Describe 'Views at 80 columns' {
    BeforeAll {
        $c = New-VfioContainer -Device 36e5c7cc-4871-4d03-91da-44479a60a911, 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61, 5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51, 0000:00:02.0
        $null = New-VfioDmaMapping -Iova 0x10000000 -Size 2MB
        $c | Start-DirtyTracking
        $script:Views = [ordered]@{
            'Get-VfioGroup' = Get-VfioGroup; 'Get-VfioDevice' = Get-VfioDevice -WarningAction SilentlyContinue; 'Get-VfioContainer' = Get-VfioContainer
            'Get-VfioIommuInfo' = Get-VfioIommuInfo; 'Get-VfioDmaMapping' = Get-VfioDmaMapping; 'Get-DirtyBitmap' = Get-DirtyBitmap
            'Get-DirtyBitmap -AsRange' = Get-DirtyBitmap -AsRange
            'Get-VfioMigrationInfo' = Get-VfioMigrationInfo 36e5c7cc-4871-4d03-91da-44479a60a911, 5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51
            'Get-VfioMigrationState' = Get-VfioMigrationState 36e5c7cc-4871-4d03-91da-44479a60a911
            'Test-VfioMigration' = Test-VfioMigration 36e5c7cc-4871-4d03-91da-44479a60a911 5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51
            'Test-VfioDevice' = Test-VfioDevice 36e5c7cc-4871-4d03-91da-44479a60a911 -Area Protocol -WarningAction SilentlyContinue
            'Get-VfioHost' = Get-VfioHost
        }
    }
    AfterAll { Get-VfioContainer | Remove-VfioContainer -Confirm:$false }

    It '<_> cuts nothing and keeps every column' -ForEach @('Get-VfioGroup', 'Get-VfioDevice', 'Get-VfioContainer', 'Get-VfioIommuInfo', 'Get-VfioDmaMapping', 'Get-DirtyBitmap',
        'Get-DirtyBitmap -AsRange', 'Get-VfioMigrationInfo', 'Get-VfioMigrationState', 'Test-VfioMigration', 'Test-VfioDevice', 'Get-VfioHost') {
        $text = $Views[$_] | Out-String -Width 80
        $text.Trim() | Should -Not -BeNullOrEmpty
        $cut = @($text -split "`n" | Where-Object { $_.Contains([char]0x2026) -or $_.TrimEnd().Length -gt 80 })
        $cut | Should -BeNullOrEmpty -Because "at 80 columns the view should fit:`n$text"
    }
}

Describe 'Groups that crossed a session boundary' {
    It 'pipe into Get-VfioDevice by their Group number' {
        $file = Join-Path $TestDrive 'groups.xml'
        Get-VfioGroup -Group 7, 10 | Export-Clixml $file
        $copies = Import-Clixml $file
        $copies[0].PSObject.TypeNames[0] | Should -BeLike 'Deserialized.*'
        ($copies | Get-VfioDevice -WarningAction SilentlyContinue).Name | Should -Be @('36e5c7cc-4871-4d03-91da-44479a60a911', '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61')
    }
}

Describe 'Format-List' {
    BeforeAll {
        $script:C = New-VfioContainer -Device 36e5c7cc-4871-4d03-91da-44479a60a911, 0000:00:02.0
        $null = New-VfioDmaMapping -Iova 0x10000000 -Size 2MB
    }
    AfterAll { Get-VfioContainer | Remove-VfioContainer -Confirm:$false }

    It 'decodes <Name> instead of leaking type names and raw numbers' -ForEach @(
        @{ Name = 'a container'; Get = { Get-VfioContainer }; Shows = 'IommuType\s+: Type1v2'; Hides = 'IommuType\s+: 3\b' }
        @{ Name = 'the IOMMU info'; Get = { Get-VfioIommuInfo }; Shows = 'DirtyPageSize\s+: 4KiB'; Hides = '1075843072' }
        @{ Name = 'a PCI device'; Get = { Get-VfioDevice 0000:00:02.0 }; Shows = 'Id\s+: 1234:11e8'; Hides = 'VendorId\s+: 4660' }
    ) {
        $text = & $Get | Format-List | Out-String
        $text | Should -Match $Shows
        $text | Should -Not -Match $Hides
        $text | Should -Not -Match 'VfioMigration\.Core\.'
    }

    It 'leaves the table the default view' {
        (Get-VfioContainer | Out-String) | Should -Match '(?m)^\s*Id\s+.*\n\s*--'
    }
}
