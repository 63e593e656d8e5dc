# Stepped migration-state transitions on the simulated host, v2 (mtty) and v1 (the 5.8 region).
BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
    $script:Mtty = '36e5c7cc-4871-4d03-91da-44479a60a911'
    $script:V1 = '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51'
}
AfterAll { Disconnect-VfioHost }

Describe 'Set-VfioMigrationState' {
    BeforeEach {
        Connect-VfioHost -Simulated | Out-Null
        $null = New-VfioContainer -Device $Mtty
    }

    It '-WhatIf shows the kernel''s path and changes nothing' {
        $what = Set-VfioMigrationState $Mtty -State StopCopy -WhatIf 6>&1 | Out-String
        # -WhatIf writes to the host; the state must not move.
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }

    It 'returns one step per arc, with the data fd where the kernel opens one' {
        $pre = @(Set-VfioMigrationState $Mtty -State PreCopy -Confirm:$false)
        $pre.Count | Should -Be 1
        $pre[0].DataFdOpened | Should -BeTrue
        $steps = @(Set-VfioMigrationState $Mtty -State StopCopy -Confirm:$false)
        ($steps | ForEach-Object { "$($_.From)>$($_.To)" }) | Should -Be @('PreCopy>PreCopyP2P', 'PreCopyP2P>StopCopy')
        $steps.DataFdOpened | Should -Not -Contain $true
        (Get-VfioMigrationState $Mtty).DataSessionOpen | Should -BeTrue -Because 'the pre-copy session goes on into STOP_COPY'
        $back = @(Set-VfioMigrationState $Mtty -State Running -Confirm:$false)
        $back.Count | Should -Be 3
        (Get-VfioMigrationState $Mtty).DataSessionOpen | Should -BeFalse
    }

    It 'refuses a change the kernel has no path for, before any ioctl' {
        Set-VfioMigrationState $Mtty -State StopCopy -Confirm:$false | Out-Null
        { Set-VfioMigrationState $Mtty -State PreCopy -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'ArcNotAllowed,VfioMigration.Commands.SetVfioMigrationStateCommand'
        (Get-VfioMigrationState $Mtty).State | Should -Be 'StopCopy'
    }

    It 'reports where a failed arc left the device, moves it to -RecoveryState, and resets it out of ERROR' {
        $faults = [VfioMigration.Infrastructure.VfioSession]::Host.Kernel.Faults
        $faults.ErrorOnTransition($Mtty, 6)   # the device falls into ERROR on its way to PRE_COPY
        Set-VfioMigrationState $Mtty -State PreCopy -RecoveryState Running -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'DeviceInError,VfioMigration.Commands.SetVfioMigrationStateCommand'
        "$($e[0])" | Should -Match 'Reset-VfioDevice'
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Error'
        Reset-VfioDevice $Mtty -Confirm:$false
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }

    It 'does not ask before an undoable state change (ConfirmImpact Medium), but -Confirm can' {
        (Get-Command Set-VfioMigrationState).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0].ConfirmImpact |
            Should -Be 'Medium'
    }

    It 'says how to open a device no container holds' {
        Get-VfioMigrationState 0000:3b:00.1 -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'DeviceNotInContainer,VfioMigration.Commands.GetVfioMigrationStateCommand'
        "$($e[0])" | Should -Match 'New-VfioContainer -Device 0000:3b:00.1'
    }
}

Describe 'v1 devices and migration figures' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'maps the state names onto device_state bits and reads pending bytes while saving' {
        $null = New-VfioContainer -Device $V1
        (Get-VfioMigrationInfo $V1).Protocol | Should -Be 'V1'
        (Get-VfioMigrationInfo $V1).PendingBytes | Should -BeNullOrEmpty
        (Set-VfioMigrationState $V1 -State StopCopy -Confirm:$false).To | Should -Be 'StopCopy'
        (Get-VfioMigrationInfo $V1).PendingBytes | Should -BeGreaterThan 0
        { Set-VfioMigrationState $V1 -State RunningP2P -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'StateNotSupported,VfioMigration.Commands.SetVfioMigrationStateCommand'
    }

    It 'shows pre-copy figures of a v2 device with its session open' {
        $null = New-VfioContainer -Device $Mtty
        Set-VfioMigrationState $Mtty -State PreCopy -Confirm:$false | Out-Null
        $i = Get-VfioMigrationInfo $Mtty
        $i.PrecopyInitialBytes | Should -Be 24
        $i.StopCopySize | Should -Be 96
        $i.Flags | Should -Be @('STOP_COPY', 'P2P', 'PRE_COPY')
    }

    It 'says a device without a migration driver has none' {
        $null = New-VfioContainer -Group 2
        Get-VfioMigrationState 0000:00:02.0 -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'NoMigrationSupport,VfioMigration.Commands.GetVfioMigrationStateCommand'
    }
}

Describe 'Start-VfioMigration and Test-VfioMigration' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }

    It 'migrates a vGPU to its twin with a report in query-migrate terms' {
        $src = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61'; $dst = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62'
        $null = New-VfioContainer -Device $src, $dst
        $r = Start-VfioMigration $src $dst -Bandwidth 1GB -Confirm:$false
        $r.Status | Should -Be 'Completed'
        $r.Iterations | Should -BeGreaterThan 0
        $r.PrecopyBytes | Should -BeGreaterThan 0
        $r.StopCopyBytes | Should -BeGreaterThan 0
        $r.Downtime | Should -BeLessOrEqual $r.TotalTime
        (Get-VfioMigrationState $dst).State | Should -Be 'Running'
        (Get-VfioMigrationState $src).State | Should -Be 'Stop'
    }

    It 'visibly fails to converge when the device outruns the link, and the source runs on' {
        $nic = '0000:3b:00.1'
        $null = New-VfioContainer -Device $nic
        $file = Join-Path $TestDrive 'nic.state'
        $r = Start-VfioMigration $nic -Path $file -MaxIterations 2 -Bandwidth 512MB -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
        $r.Status | Should -Be 'NotConverged'
        $r.Iterations | Should -Be 2
        "$w" | Should -Match 'did not converge'
        Test-Path $file | Should -BeFalse
        (Get-VfioMigrationState $nic).State | Should -Be 'Running'
    }

    It 'reports incompatibilities with MessageIds, changing nothing' {
        (Test-VfioMigration 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62).IsCompatible | Should -BeTrue
        $ids = (Test-VfioMigration 0000:00:02.0 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62).Incompatibilities.MessageId
        $ids | Should -Contain 'NoMigrationSupport'
        $ids | Should -Contain 'DestinationMismatch'
        (Test-VfioMigration 0000:00:05.0).Incompatibilities.MessageId | Should -Be 'GroupBusy'
        (Test-VfioMigration $Mtty).Incompatibilities | Should -BeNullOrEmpty
        (Test-VfioMigration $V1 '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b52').IsCompatible | Should -BeTrue -Because 'two v1 devices of one type can migrate'
        (Test-VfioMigration $V1 $Mtty).Incompatibilities.MessageId | Should -Contain 'DestinationMismatch'
        Get-VfioContainer | Should -BeNullOrEmpty -Because 'the check opens nothing it keeps'
    }

    It 'names NoDirtyTracking for a container whose IOMMU-backed device makes every page dirty' {
        # The vGPU logs no DMA of its own, and the edu device beside it sits behind the IOMMU.
        $null = New-VfioContainer -Group 2, 10
        (Test-VfioMigration 8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61).Incompatibilities.MessageId | Should -Contain 'NoDirtyTracking'
        # mtty logs its DMA itself, so the same container does not stop it.
        Remove-VfioContainer -Id 1 -Confirm:$false
        $null = New-VfioContainer -Group 2, 7
        (Test-VfioMigration $Mtty).Incompatibilities.MessageId | Should -Not -Contain 'NoDirtyTracking'
    }
}
