# Runs in the lab guest (Guest-Checks.ps1): QEMU 10 (bookworm-backports, unpacked by build-lab.sh) as a
# second, independent client of the real mtty's v2 migration, on the lab's second mtty-2 (the peer). QEMU
# runs nested under TCG, paused and without a guest kernel: only its migration code and the device matter.
# What each check proves is in docs/lab.md ("QEMU as a second truth"). The stream reader (QemuLab.ps1)
# understands only QEMU's VFIO framing.
Describe 'QEMU 10 and the module agree on the real mtty''s migration stream (QEMU lab)' {
    BeforeAll {
        Import-Module "$env:VFIOLAB_REPO/module/VfioMigration.psd1"
        . "$env:VFIOLAB_REPO/tests/lab/QemuLab.ps1"
        $script:Peer = $env:VFIOLAB_PEER_MDEV_DEVICE
        $script:Root = $env:VFIOLAB_QEMU10
        if (-not $Peer) { throw 'the lab has no second mtty-2 (VFIOLAB_PEER_MDEV_DEVICE is empty): guest.sh creates it' }
        if (-not $Root -or -not (Test-Path "$Root/usr/bin/qemu-system-x86_64")) {
            throw "QEMU 10 is not unpacked under '$Root': build-lab.sh fetches it from bookworm-backports"
        }
        $script:Work = (New-Item -ItemType Directory -Force (Join-Path $TestDrive 'qemu')).FullName

        # Divisor 0x000c, 8N1, FIFO on, IER, MCR, scratch, two bytes looped back into port 0's FIFO;
        # port 1 with its FIFO off and overrun.
        $script:Program = @(
            @(0, 3, 0x83), @(0, 0, 0x0c), @(0, 1, 0x00), @(0, 3, 0x03), @(0, 2, 0xc7), @(0, 1, 0x05),
            @(0, 4, 0x0b), @(0, 7, 0x5a), @(0, 0, 0x68), @(0, 0, 0x69),
            @(1, 2, 0x00), @(1, 1, 0x0f), @(1, 0, 0x41), @(1, 0, 0x42)
        )

        # The module holds the peer's group only while it works on it: QEMU opens the same group after.
        function Invoke-OnPeer([scriptblock] $Action) {
            $c = New-VfioContainer -Device $Peer -ErrorAction Stop
            try { & $Action $c.GetDevice($Peer) }
            finally { $c | Remove-VfioContainer -Confirm:$false }
        }
        function Save-PeerState([string] $Name) {
            $file = Join-Path $Work "$Name.state"
            Invoke-OnPeer { Save-VfioDeviceState $Peer $file -Resume -Confirm:$false -ErrorAction Stop | Out-Null }
            $file
        }
        # Byte arrays compared as hex: one line each in a failure message.
        function Hex([byte[]] $Bytes) { [Convert]::ToHexString($Bytes) }
        $script:First = Save-PeerState 'first'
    }

    AfterAll {
        # The peer gets its first state back, whatever a failed check left (mtty answers VFIO_DEVICE_RESET).
        if ($First -and (Test-Path $First)) {
            Invoke-OnPeer {
                Reset-VfioDevice $Peer -Confirm:$false -ErrorAction SilentlyContinue
                Restore-VfioDeviceState $Peer $First -Resume -Confirm:$false -ErrorAction SilentlyContinue | Out-Null
            }
        }
    }

    It 'QEMU''s device payload equals Save-VfioDeviceState''s payload for the same mtty state' {
        $script:Q0 = Save-QemuStream -Root $Root -Device $Peer -WorkDir $Work
        $frames = @(Get-QemuVfioFrame $Q0)
        ($frames | Measure-Object Size -Sum).Sum | Should -Be 96
        Hex (Get-QemuVfioPayload $Q0) | Should -Be (Hex (Get-StateFilePayload $First))
    }

    It 'QEMU''s device payload equals the module''s after UART registers were written through the BARs' {
        Invoke-OnPeer { param($d) foreach ($p in $Program) { $d.WriteRegion($p[0], $p[1], [byte[]]@($p[2])) | Out-Null } }
        $script:Programmed = Save-PeerState 'programmed'
        $module = Get-StateFilePayload $Programmed
        Hex $module | Should -Not -Be (Hex (Get-StateFilePayload $First))
        $script:Q1 = Save-QemuStream -Root $Root -Device $Peer -WorkDir $Work
        Hex (Get-QemuVfioPayload $Q1) | Should -Be (Hex $module)
    }

    It 'QEMU''s frames, written as a state file, restore through Restore-VfioDeviceState (the QEMU save of the first state into the programmed device)' {
        $file = Join-Path $Work 'from-qemu.state'
        New-StateFileFromQemu -Path $file -Stream $Q0 -IdentityFrom $First
        Invoke-OnPeer { (Restore-VfioDeviceState $Peer $file -Resume -Confirm:$false -ErrorAction Stop).FinalState | Should -Be 'Running' }
        Hex (Get-StateFilePayload (Save-PeerState 'after-qemu-frames')) | Should -Be (Hex (Get-QemuVfioPayload $Q0))
    }

    It 'a state the module saved, spliced into QEMU''s stream, is loaded by QEMU -incoming and migrated out unchanged' {
        $module = Get-StateFilePayload $Programmed
        $r = Invoke-QemuIncoming -Root $Root -Device $Peer -WorkDir $Work -Stream (Set-QemuVfioPayload $Q0 $module)
        $r.Status | Should -Be 'completed' -Because "QEMU said: $($r.Error) $($r.Said)"
        Hex (Get-QemuVfioPayload $r.Out) | Should -Be (Hex $module)
    }

    It 'QEMU refuses a spliced state mtty.c refuses (negative control, module to QEMU: nr_ports 1)' {
        $bad = [byte[]](Get-StateFilePayload $Programmed).Clone()
        $bad[16] = 1
        $r = Invoke-QemuIncoming -Root $Root -Device $Peer -WorkDir $Work -Stream (Set-QemuVfioPayload $Q0 $bad)
        $r.Status | Should -Be 'failed'
        $r.Out | Should -BeNullOrEmpty
    }

    It 'Restore-VfioDeviceState refuses QEMU''s frames with a bad magic (negative control, QEMU to module)' {
        $bad = [byte[]](Get-QemuVfioPayload $Q1).Clone()
        $bad[0] = $bad[0] -bxor 0xff
        $file = Join-Path $Work 'bad-magic.state'
        New-StateFileFromQemu -Path $file -Stream (Set-QemuVfioPayload $Q1 $bad) -IdentityFrom $First
        Invoke-OnPeer {
            Reset-VfioDevice $Peer -Confirm:$false -ErrorAction Stop   # QEMU's failed load may have left it anywhere
            Restore-VfioDeviceState $Peer $file -Resume -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue | Out-Null
            $e[0].FullyQualifiedErrorId | Should -Be 'DestinationRefused,VfioMigration.Commands.RestoreVfioDeviceStateCommand'
            "$($e[0])" | Should -Match 'EFAULT'
            $e[0].Exception.DestinationOutcome.State | Should -Be 'Resuming'
        }
    }
}
