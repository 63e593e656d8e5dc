# The lab's QEMU stream reader (tests/lab/QemuLab.ps1) on streams built here, and its state-file helpers
# against the simulated mtty: the lab's QEMU checks (tests/lab/Pester/Qemu.Lab.Tests.ps1) rely on them.
BeforeAll {
    Import-Module "$PSScriptRoot/../../module/VfioMigration.psd1" -Force
    . "$PSScriptRoot/../lab/QemuLab.ps1"

    function ConvertTo-BigEndian([uint64] $value) {
        $b = [BitConverter]::GetBytes($value)
        [Array]::Reverse($b)
        , $b
    }
    # QEMU's VFIO framing around two iterations: a PART section with the 24-byte pre-copy frame and an END
    # section with the 72-byte stop-copy frame, each ended by END_OF_STATE, with filler (holding 0xef bytes
    # and a look-alike flag without a size) around them.
    function New-FakeQemuStream([byte[]] $Payload) {
        $s = [IO.MemoryStream]::new()
        $w = { param([byte[]] $b) $s.Write($b, 0, $b.Length) }
        & $w ([Text.Encoding]::ASCII.GetBytes('QEVM') + [byte[]](0, 0, 0, 3, 0xef, 0xef, 0x10, 0xff, 0xff, 0xff, 0xff, 0xef, 0x10, 0x00))
        & $w ([byte[]](0x02, 0, 0, 0, 5))
        & $w (ConvertTo-BigEndian ([uint64]::Parse('ffffffffef100004', 'HexNumber'))); & $w (ConvertTo-BigEndian 24); & $w $Payload[0..23]
        & $w (ConvertTo-BigEndian ([uint64]::Parse('ffffffffef100001', 'HexNumber')))
        & $w ([byte[]](0x7e, 0, 0, 0, 5, 0xef, 1, 2, 3))
        & $w ([byte[]](0x03, 0, 0, 0, 5))
        & $w (ConvertTo-BigEndian ([uint64]::Parse('ffffffffef100004', 'HexNumber'))); & $w (ConvertTo-BigEndian 72); & $w $Payload[24..95]
        & $w (ConvertTo-BigEndian ([uint64]::Parse('ffffffffef100001', 'HexNumber')))
        & $w ([byte[]](0x7e, 0, 0, 0, 5))
        , $s.ToArray()
    }
}

Describe 'The lab''s QEMU stream reader (VFIO framing only)' {
    It 'finds the VFIO data frames, their phases and the device payload, and splices another payload in' {
        $payload = [byte[]](0..95)
        $stream = New-FakeQemuStream $payload
        $frames = @(Get-QemuVfioFrame $stream)
        $frames.Count | Should -Be 2
        $frames.Phase | Should -Be @('PreCopy', 'StopCopy')
        $frames.Size | Should -Be @(24, 72)
        (Get-QemuVfioPayload $stream) | Should -Be $payload
        $other = [byte[]](95..0)
        $spliced = Set-QemuVfioPayload $stream $other
        $spliced.Length | Should -Be $stream.Length
        (Get-QemuVfioPayload $spliced) | Should -Be $other
        { Set-QemuVfioPayload $stream ([byte[]](1, 2, 3)) } | Should -Throw '*cannot splice 3 bytes*'
    }

    It 'refuses a frame that QEMU''s framing would not end with a VFIO flag' {
        $stream = New-FakeQemuStream ([byte[]](0..95))
        $stream[18 + 5 + 16 + 24] = 0   # the END_OF_STATE after the pre-copy frame
        { Get-QemuVfioFrame $stream } | Should -Throw '*knows only QEMU 10*'
    }
}

Describe 'QEMU frames as a module state file, on the simulated mtty' {
    BeforeAll {
        Connect-VfioHost -Simulated | Out-Null
        $script:Mtty = '36e5c7cc-4871-4d03-91da-44479a60a911'
        $null = New-VfioContainer -Device $Mtty
        $script:Saved = Join-Path $TestDrive 'module.state'
        Save-VfioDeviceState $Mtty $Saved -Resume -Confirm:$false -ErrorAction Stop | Out-Null
        $script:Payload = Get-StateFilePayload $Saved
    }
    AfterAll { Disconnect-VfioHost }

    It 'reads the module''s payload out of its state file: mtty''s 96 bytes' {
        $Payload.Length | Should -Be 96
        [BitConverter]::ToUInt64($Payload, 0) | Should -Be 0x7e9d09898c3e2c4e
    }

    It 'writes QEMU''s frames as a state file that Restore-VfioDeviceState takes, phases kept' {
        $file = Join-Path $TestDrive 'from-qemu.state'
        New-StateFileFromQemu -Path $file -Stream (New-FakeQemuStream $Payload) -IdentityFrom $Saved
        $contents = [VfioMigration.Core.Migration.StateFile]::Verify($file)
        ($contents.PreCopyBytes, $contents.StopCopyBytes) | Should -Be @(24, 72)
        (Get-StateFilePayload $file) | Should -Be $Payload
        (Restore-VfioDeviceState $Mtty $file -Resume -Confirm:$false -ErrorAction Stop).FinalState | Should -Be 'Running'
    }

    It 'a state file of QEMU frames that mtty.c refuses is refused by the restore, which names where it left the device' {
        $bad = [byte[]]$Payload.Clone()
        $bad[0] = $bad[0] -bxor 0xff
        $file = Join-Path $TestDrive 'bad-magic.state'
        New-StateFileFromQemu -Path $file -Stream (New-FakeQemuStream $bad) -IdentityFrom $Saved
        Restore-VfioDeviceState $Mtty $file -Resume -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Be 'DestinationRefused,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
        "$($e[0])" | Should -Match 'EFAULT'
        $e[0].Exception.DestinationOutcome.State | Should -Be 'Resuming'
        $e[0].Exception.DestinationOutcome.NeedsAttention | Should -BeTrue
        # mtty answers VFIO_DEVICE_RESET (without claiming it): the way back to RUNNING.
        Reset-VfioDevice $Mtty -Confirm:$false -ErrorAction Stop
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'
    }
}
