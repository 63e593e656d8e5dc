# Objects that cross a process boundary (Export-Clixml, PowerShell remoting over SSH) keep their views and
# values and pipe into the module's cmdlets (docs/fleet.md). The Clixml part needs nothing; the remoting part
# starts an sshd of its own on 127.0.0.1 (a free high port, keys in a temp folder) with the powershell
# subsystem, and is skipped, with the reason, where no sshd can be had.
BeforeAll {
    $script:Manifest = (Resolve-Path "$PSScriptRoot/../../VfioMigration.psd1").ProviderPath
    Import-Module $Manifest -Force
    $script:Mtty = '36e5c7cc-4871-4d03-91da-44479a60a911'
    $script:Pci = '0000:00:02.0'

    # The same layout on every host: container 1 holds group 2 (a PCI device: every mapped page reads dirty)
    # with one 2 MiB mapping at 0x10000000 and dirty tracking on; container 2 holds the mtty mdev.
    $script:Layout = {
        param($Pci, $Mtty)
        $c = New-VfioContainer -Device $Pci
        $null = New-VfioDmaMapping -Container $c -Iova 0x10000000 -Size 2MB
        $c | Start-DirtyTracking
        $null = New-VfioContainer -Device $Mtty
    }

    function Assert-View($Object, [string] $Pattern) {
        # The module's view, not PowerShell's raw property list of a deserialized object.
        $text = $Object | Out-String -Width 200
        $text | Should -Match $Pattern
        $text | Should -Not -Match 'Deserialized|System\.Collections|VfioMigration\.Core'
    }
}

AfterAll { Disconnect-VfioHost -ErrorAction Ignore }

Describe 'Export-Clixml and Import-Clixml' {
    BeforeAll {
        Connect-VfioHost -Simulated | Out-Null
        & $Layout $Pci $Mtty
        $script:Xml = Join-Path $TestDrive 'objects.xml'
        function Copy-ViaClixml($InputObject) { , $InputObject | Export-Clixml $Xml; Import-Clixml $Xml }
    }
    AfterAll { Disconnect-VfioHost -ErrorAction Ignore }

    It 'keeps a container with its groups and mappings' {
        $c = Copy-ViaClixml (Get-VfioContainer -Id 1)
        $c.pstypenames[0] | Should -Be 'Deserialized.VfioMigration.Core.Vfio.VfioContainer'
        @($c.Groups.Number) | Should -Be @(2)
        @($c.Mappings).Count | Should -Be 1
        Assert-View $c '(?m)^\s+1 2\s+Type1v2\s+1\s+2MiB True'
    }

    It 'keeps a group''s devices with their drivers' {
        $g = Copy-ViaClixml (Get-VfioGroup -Group 2)
        $g.Devices[0].Driver | Should -Be 'vfio-pci'
        Assert-View $g '0000:00:02\.0 \[1234:11e8\] vfio-pci'
    }

    It 'keeps IOVAs as numbers that print in hex, and a range''s End' {
        $m = Copy-ViaClixml (Get-VfioDmaMapping -ContainerId 1)
        $m.Iova | Should -BeOfType [VfioMigration.Core.Dirty.Iova]
        [uint64]$m.Iova | Should -Be 0x10000000
        "$($m.End)" | Should -Be '0x10200000'
        $r = Copy-ViaClixml ((Get-DirtyBitmap -ContainerId 1).GetDirtyRanges()[0])
        Assert-View $r '0x10000000\s+0x10200000\s+2MiB\s+512'
    }

    It 'rebuilds a bitmap word for word, which Export-DirtyBitmap and Compare-DirtyBitmap take' {
        $live = Get-DirtyBitmap -ContainerId 1
        $b = Copy-ViaClixml $live
        $b | Should -BeOfType [VfioMigration.Core.Dirty.DirtyBitmap]
        $b.DirtyPages | Should -Be 512
        (Compare-DirtyBitmap $live $b -Operation Difference).ResultDirtyPages | Should -Be 0
        $file = $b | Export-DirtyBitmap (Join-Path $TestDrive 'b.json') -PassThru
        (Import-DirtyBitmap $file.FullName).DirtyPages | Should -Be 512
    }

    It 'explains a bitmap bag without its words rather than binding it' {
        $bag = [pscustomobject]@{ Iova = '0x0'; Size = 4096; PageSize = 4096 }
        $bag.pstypenames.Insert(0, 'Deserialized.VfioMigration.Core.Dirty.DirtyBitmap')
        { Export-DirtyBitmap -InputObject $bag (Join-Path $TestDrive 'none.json') -ErrorAction Stop } | Should -Throw '*carries no bitmap words*'
    }

    It 'keeps a device check report with its per-area counts and view' {
        $live = Test-VfioDevice $Mtty
        $r = Copy-ViaClixml $live
        @($r.Areas).Count | Should -Be @($live.Areas).Count
        ($r.Areas | Measure-Object Passed -Sum).Sum | Should -Be $live.Passed
        Assert-View $r 'Checks\s*:\s*\d+ passed'
        Assert-View $r.Results[0] '(?m)^Passed\s+Must\s+\S+'
    }

    It 'binds a deserialized mapping to Remove-VfioDmaMapping by container id, IOVA and size' {
        $m = Copy-ViaClixml (Get-VfioDmaMapping -ContainerId 1)
        $bitmap = $m | Remove-VfioDmaMapping -Confirm:$false
        $bitmap.DirtyPages | Should -Be 512
        @(Get-VfioDmaMapping -ContainerId 1).Count | Should -Be 0
        $m | Remove-VfioDmaMapping -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'MappingNotFound,*'
    }
}

Describe 'PowerShell remoting over SSH' {
    BeforeAll {
        $script:Skip = $null
        $script:Lab = Join-Path ([IO.Path]::GetTempPath()) "vfio-remoting-$PID-$([Guid]::NewGuid().ToString('n').Substring(0, 8))"
        $script:Sshd = $null
        $script:Sessions = @()
        $isRoot = (id -u) -eq '0'
        $sshdPath = @('/usr/sbin/sshd', (Get-Command sshd -ErrorAction Ignore).Source) | Where-Object { $_ -and (Test-Path $_) } | Select-Object -First 1
        if (-not $sshdPath -and $isRoot -and (Get-Command apt-get -ErrorAction Ignore)) {
            $env:DEBIAN_FRONTEND = 'noninteractive'
            & apt-get install -y -qq openssh-server *> $null
            if ($LASTEXITCODE -ne 0) { & apt-get update -qq *> $null; & apt-get install -y -qq openssh-server *> $null }
            $sshdPath = @('/usr/sbin/sshd') | Where-Object { Test-Path $_ } | Select-Object -First 1
        }
        if (-not $sshdPath) { $script:Skip = 'no sshd: install openssh-server (the test installs it itself only as root with apt-get)'; return }
        if (-not (Get-Command ssh -ErrorAction Ignore)) { $script:Skip = 'no ssh client (openssh-client)'; return }
        if (-not $isRoot -and -not (Test-Path /run/sshd)) { $script:Skip = 'sshd needs its privilege separation directory /run/sshd, which only root can create'; return }

        $null = New-Item -ItemType Directory -Force $Lab
        if ($isRoot) { $null = New-Item -ItemType Directory -Force /run/sshd }
        foreach ($key in 'host_key', 'user_key') { & ssh-keygen -q -t ed25519 -N '' -f (Join-Path $Lab $key) *> $null }
        Copy-Item (Join-Path $Lab 'user_key.pub') (Join-Path $Lab 'authorized_keys')

        # The subsystem: this pwsh. As a dotnet tool it is pwsh.dll run by dotnet, so a wrapper execs that.
        $process = [Environment]::ProcessPath
        $entry = [Reflection.Assembly]::GetEntryAssembly().Location
        $command = if ((Split-Path $process -Leaf) -eq 'pwsh') { "'$process'" } else { "'$process' '$entry'" }
        $wrapper = Join-Path $Lab 'pwsh-sshs'
        Set-Content $wrapper "#!/bin/sh`nexec $command -sshs -NoLogo -NoProfile"
        & chmod 755 $wrapper

        $listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0); $listener.Start()
        $script:Port = $listener.LocalEndpoint.Port; $listener.Stop()
        $config = Join-Path $Lab 'sshd_config'
        Set-Content $config @(
            "Port $Port", 'ListenAddress 127.0.0.1', "HostKey $Lab/host_key", "PidFile $Lab/sshd.pid",
            "AuthorizedKeysFile $Lab/authorized_keys", 'PubkeyAuthentication yes', 'PasswordAuthentication no',
            'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', 'StrictModes no', 'UsePAM no',
            "Subsystem powershell $wrapper")
        # -D: sshd stays this test's child, so AfterAll stops it by its id.
        $script:Sshd = Start-Process $sshdPath -ArgumentList '-D', '-f', $config, '-E', "$Lab/sshd.log" -PassThru
        $deadline = [DateTime]::UtcNow.AddSeconds(10)
        do {
            Start-Sleep -Milliseconds 100
            $up = try { $t = [Net.Sockets.TcpClient]::new('127.0.0.1', $Port); $t.Dispose(); $true } catch { $false }
        } until ($up -or $Sshd.HasExited -or [DateTime]::UtcNow -gt $deadline)
        if (-not $up) { $script:Skip = "sshd did not start: $(Get-Content "$Lab/sshd.log" -Raw -ErrorAction Ignore)"; return }

        $options = @{ StrictHostKeyChecking = 'no'; UserKnownHostsFile = '/dev/null'; LogLevel = 'ERROR' }
        $script:Sessions = New-PSSession -HostName 127.0.0.1, 127.0.0.1 -Port $Port -UserName ([Environment]::UserName) -KeyFilePath "$Lab/user_key" -Options $options
        # Each remote session is a process of its own and owns the devices it opens (the one-process rule).
        $script:Remote = Invoke-Command -Session $Sessions -ThrottleLimit 2 -ArgumentList $Manifest, $Pci, $Mtty, $Layout.ToString() -ScriptBlock {
            param($Manifest, $Pci, $Mtty, $Layout)
            Import-Module $Manifest
            Connect-VfioHost -Simulated | Out-Null
            & ([scriptblock]::Create($Layout)) $Pci $Mtty
            Test-VfioDevice $Mtty
            Get-DirtyBitmap -ContainerId 1
            Get-VfioDmaMapping -ContainerId 1
            Get-VfioDevice -Name $Pci, $Mtty
            Get-VfioContainer -Id 1
            $PID
        }

        # The local session, where what came back is piped.
        Connect-VfioHost -Simulated | Out-Null
        & $Layout $Pci $Mtty
    }
    AfterAll {
        if ($Sessions) { $Sessions | Remove-PSSession -ErrorAction Ignore }
        if ($Sshd -and -not $Sshd.HasExited) { Stop-Process -Id $Sshd.Id -Force -ErrorAction Ignore; $Sshd.WaitForExit(5000) }
        if ($Lab) { Remove-Item $Lab -Recurse -Force -ErrorAction Ignore }
        Disconnect-VfioHost -ErrorAction Ignore
    }
    BeforeEach { if ($Skip) { Set-ItResult -Skipped -Because $Skip } }

    It 'ran in two remote processes' {
        if ($Skip) { return }
        $pids = @($Remote | Where-Object { $_ -is [int] })
        $pids.Count | Should -Be 2
        $pids | Should -Not -Contain $PID
        @($pids | Sort-Object -Unique).Count | Should -Be 2
    }

    It 'brings back device check reports that format and carry their per-area counts' {
        if ($Skip) { return }
        $reports = @($Remote | Where-Object { $_.pstypenames -contains 'Deserialized.VfioMigration.Core.DeviceChecks.DeviceCheckReport' })
        $reports.Count | Should -Be 2
        foreach ($r in $reports) {
            $r.Result | Should -Be 'Passed'
            ($r.Areas | Measure-Object Passed -Sum).Sum | Should -Be $r.Passed
            ($r.Areas | Where-Object Area -eq 'DataFd').Passed | Should -BeGreaterThan 0
            @($r.Results).Count | Should -Be ($r.Passed + $r.Failed + $r.Skipped)
            Assert-View $r 'Areas\s*:\s*Protocol \d+/\d+'
        }
        @($reports.PSComputerName | Sort-Object -Unique) | Should -Be @('127.0.0.1')
    }

    It 'brings back bitmaps with hex IOVAs that local cmdlets take' {
        if ($Skip) { return }
        $bitmaps = @($Remote | Where-Object { $_.pstypenames -match 'VfioMigration\.Core\.Dirty\.DirtyBitmap$' })
        $bitmaps.Count | Should -Be 2
        foreach ($b in $bitmaps) {
            # Remoting hands back a bag (no rehydration on the client): its number is Value, [Iova] rebuilds it.
            $b.Iova.Value | Should -Be 0x10000000
            ([VfioMigration.Core.Dirty.Iova]$b.Iova).Value | Should -Be 0x10000000
            "$($b.Iova)" | Should -Be '0x10000000'
            $b.DirtyPages | Should -Be 512
            Assert-View $b '0x10000000\s+2MiB\s+4KiB\s+512\s+512'
        }
        $local = Get-DirtyBitmap -ContainerId 1
        (Compare-DirtyBitmap $local $bitmaps[0] -Operation Intersection).ResultDirtyPages | Should -Be 512
        $file = $bitmaps[1] | Export-DirtyBitmap (Join-Path $TestDrive 'remote.json') -PassThru
        (Import-DirtyBitmap $file.FullName).DirtyPages | Should -Be 512
    }

    It 'brings back devices, containers and mappings that format and bind by property name' {
        if ($Skip) { return }
        $devices = @($Remote | Where-Object { $_.pstypenames -contains 'Deserialized.VfioMigration.Core.Vfio.VfioDeviceInfo' })
        $devices.Count | Should -Be 4
        Assert-View $devices[1] "$Mtty\s+7 mtty-2\s+mtty\s+V2 STOP_COPY"
        $info = @($devices | Where-Object Name -eq $Mtty | Get-VfioMigrationInfo)
        $info.Count | Should -Be 2
        $steps = @($devices | Where-Object Name -eq $Mtty | Select-Object -First 1 | Set-VfioMigrationState -State Stop -WhatIf)
        $steps.Count | Should -Be 0
        (Get-VfioMigrationState $Mtty).State | Should -Be 'Running'

        $container = @($Remote | Where-Object { $_.pstypenames -contains 'Deserialized.VfioMigration.Core.Vfio.VfioContainer' })[0]
        @($container.Groups.Number) | Should -Be @(2)
        Assert-View $container '(?m)^\s+1 2\s+Type1v2\s+1\s+2MiB True'

        $mapping = @($Remote | Where-Object { $_.pstypenames -contains 'Deserialized.VfioMigration.Core.Vfio.DmaMapping' })[0]
        "$($mapping.End)" | Should -Be '0x10200000'
        $null = $mapping | Remove-VfioDmaMapping -WhatIf
        @(Get-VfioDmaMapping -ContainerId 1).Count | Should -Be 1
        ($mapping | Remove-VfioDmaMapping -Confirm:$false).DirtyPages | Should -Be 512
        @(Get-VfioDmaMapping -ContainerId 1).Count | Should -Be 0
    }
}
