# The lab's iommufd part, dot-sourced by Invoke-Lab.ps1 (it uses that script's $summary, Add-Failure,
# Set-Timing, New-LabShare, Invoke-LabBoot and paths). Debian's own kernel has no iommufd, so the lab builds
# a second one (build-iommufd-kernel.sh) and boots it twice:
#   1. the same VM (VT-d, edu and e1000e on vfio-pci, two mtty mdevs), running IommufdConformance in the guest
#      against /dev/iommu and the cdevs (Guest-Iommufd.ps1); compared with SimTopologies.LabIommufd(), the
#      simulated twin configured like that kernel (an IOMMU that cannot track dirty pages, DMA-log REPORT 0);
#   2. without a vIOMMU, the static C harness iommufd/mock-harness.c over the IOMMUFD_TEST mock domain, the
#      only dirty-tracking domain a real kernel gives without hardware; compared with the same steps on the
#      simulated kernel's dirty-tracking IOMMU (Invoke-MockTwin).

$MockScenario = 'iommufd-mock-dirty'

function Invoke-IommufdLabBuild {
    Write-Step "iommufd: the lab's second kernel (build-iommufd-kernel.sh; about 15 min when the cache lacks it)"
    Invoke-LabBuildScript 'build-iommufd-kernel.sh' $IommufdEnv 'iommufd_build' 'the iommufd kernel'
    $values = Read-EnvFile $IommufdEnv
    # run-vm.sh reads KERNEL and INITRD.
    Set-Content $IommufdBootEnv @("KERNEL='$($values['IOMMUFD_KERNEL'])'", "INITRD='$($values['IOMMUFD_INITRD'])'")
    $values
}

function Invoke-IommufdScenarioBoot {
    Write-Step 'iommufd: boot the iommufd kernel with VT-d and run the iommufd scenarios in the guest'
    New-LabShare -ShareDir $IommufdShare -Suite (Join-Path $LabScripts 'Guest-Iommufd.ps1')
    $log = Join-Path $LabResults 'serial.iommufd.log'
    $sw = [Diagnostics.Stopwatch]::StartNew()
    Invoke-LabBoot -EnvFile $IommufdBootEnv -ShareDir $IommufdShare -Log $log -Timeout $TimeoutSeconds
    Set-Timing 'iommufd_vm' $sw.Elapsed.TotalSeconds
    $file = Join-Path $IommufdShare 'guest-result.json'
    if (-not (Test-Path $file)) { Add-Failure "iommufd: the guest wrote no guest-result.json: see $log"; return }
    Copy-Item $file (Join-Path $LabResults 'iommufd-result.json') -Force
    $real = Get-Content $file -Raw | ConvertFrom-Json
    Write-Host "iommufd kernel: $($real.kernel)"
    foreach ($e in @($real.errors)) { Add-Failure "iommufd guest: $e" }
    if (-not @($real.observations).Count) { Add-Failure 'iommufd: the guest recorded no observations'; return }

    # The twin: the lab's devices on a kernel with iommufd and IOMMUFD_DRIVER, behind an IOMMU that cannot
    # track dirty pages, given the cdev paths the guest found (a twin that names them otherwise differs).
    $kernel = [VfioMigration.Core.Simulation.SimulatedKernel]::new([VfioMigration.Core.Simulation.SimTopologies]::LabIommufd($false, [VfioMigration.Core.Simulation.SimIommuModel]::IntelVtd))
    # mtty's DMA logger accepts everything and logs nothing (mtty_log_*); the devices write nothing on their own.
    $kernel.FindDevice([VfioMigration.Core.Simulation.SimTopologies]::LabMttyUuid).DmaLogIsNoOp = $true
    $kernel.Clock.UseManualTime()
    $target = [VfioMigration.Core.Conformance.IommufdTarget]@{
        Host     = [VfioMigration.Core.Kernel.VfioHost]::new($kernel)
        PciCdev  = $real.target.PciCdev
        MdevCdev = $real.target.MdevCdev
    }
    $sim = @([VfioMigration.Core.Conformance.IommufdConformance]::Run($target, $null) |
        ForEach-Object { [ordered]@{ scenario = $_.Scenario; step = $_.Step; answer = $_.Answer } })
    @{ observations = $sim } | ConvertTo-Json -Depth 6 | Set-Content (Join-Path $LabResults 'iommufd-simulated.json')
    Compare-Observations 'iommufd scenarios' @($real.observations) $sim
}

function ConvertFrom-MockTranscript([string[]] $lines) {
    foreach ($line in $lines) {
        if (-not $line.Trim() -or $line.StartsWith('#')) { continue }
        $at = $line.LastIndexOf(' | ')
        if ($at -lt 0) { continue }
        [ordered]@{ scenario = $MockScenario; step = $line.Substring(0, $at); answer = $line.Substring($at + 3) }
    }
}

function Invoke-MockTwin {
    # The harness's steps on the simulated kernel's dirty-tracking IOMMU (a VT-d with SSADS): the lab's edu on
    # its cdev stands in for the mock device, and its DMA writes for IOMMU_TEST_OP_DIRTY.
    $config = [VfioMigration.Core.Simulation.SimTopologies]::LabIommufd($true, [VfioMigration.Core.Simulation.SimIommuModel]::IntelVtd)
    $kernel = [VfioMigration.Core.Simulation.SimulatedKernel]::new($config)
    $kernel.Clock.UseManualTime()   # edu writes only what the steps ask
    $device = $kernel.FindDevice('0000:00:02.0')
    if (-not $device) { throw 'the simulated twin has no edu at 0000:00:02.0' }
    $target = [VfioMigration.Core.Conformance.IommufdDirtyTarget]@{
        Host         = [VfioMigration.Core.Kernel.VfioHost]::new($kernel)
        Cdev         = "/dev/vfio/devices/vfio$($config.CdevNumber($device.Config))"
        DeviceWrites = [Func[uint64, uint64, int]] { param($iova, $length) $device.DmaWrite($iova, $length) }.GetNewClosure()
    }
    foreach ($o in [VfioMigration.Core.Conformance.IommufdDirtyBitmapScenario]::Run($target)) {
        [ordered]@{ scenario = $o.Scenario; step = $o.Step; answer = $o.Answer }
    }
}

function Invoke-MockBoot([hashtable] $values) {
    Write-Step 'iommufd: boot the iommufd kernel without a vIOMMU and run the mock-domain harness'
    if (Test-Path $MockShare) { Remove-Item $MockShare -Recurse -Force }
    $null = New-Item -ItemType Directory -Force $MockShare
    Copy-Item (Join-Path $LabScripts 'iommufd/guest-mock.sh') (Join-Path $MockShare 'guest.sh')
    $harness = Join-Path $MockShare 'mock-harness'
    $out = & gcc -O2 -Wall -static -I $values['IOMMUFD_INCLUDE'] -o $harness (Join-Path $LabScripts 'iommufd/mock-harness.c') 2>&1
    if ($LASTEXITCODE -ne 0) { throw "gcc could not build the mock harness against $($values['IOMMUFD_INCLUDE']): $out" }
    $log = Join-Path $LabResults 'serial.mock.log'
    $sw = [Diagnostics.Stopwatch]::StartNew()
    Invoke-LabBoot -EnvFile $IommufdBootEnv -ShareDir $MockShare -Log $log -Timeout 300 -NoViommu
    Set-Timing 'mock_vm' $sw.Elapsed.TotalSeconds
    $file = Join-Path $MockShare 'mock.txt'
    if (-not (Test-Path $file)) { Add-Failure "iommufd mock: the harness left no transcript: see $log"; return }
    Copy-Item $file (Join-Path $LabResults 'mock.txt') -Force
    $timings = Read-EnvFile (Join-Path $MockShare 'guest-timings.env')
    if ($timings['MOCK_EXIT'] -ne '0') { Add-Failure "iommufd mock: the harness exited with $($timings['MOCK_EXIT']) (transcript: $(Join-Path $LabResults 'mock.txt'))" }
    $real = @(ConvertFrom-MockTranscript (Get-Content $file))
    if ($WriteExpected -and $real.Count) {
        # The real answers for the xunit test that holds the simulator to them between lab runs.
        $expected = Join-Path $RepoRoot "tests/VfioMigration.Core.Tests/Conformance/Expected/$MockScenario.txt"
        $lines = @(
            "# The '$MockScenario' scenario as a real kernel answered it: Linux $($values['IOMMUFD_KREL']) in the QEMU lab (docs/lab.md), IOMMUFD_TEST mock domain."
            '# Written by: dotnet pwsh ./build.ps1 -Task LabExpected (tests/lab/Invoke-Lab.ps1 -WriteExpected); do not edit by hand.'
        ) + @($real | ForEach-Object { "$($_.step) | $($_.answer)" })
        [IO.File]::WriteAllText($expected, ($lines -join "`n") + "`n")
        Write-Host "wrote $expected ($($real.Count) steps)"
    }
    $sim = @(Invoke-MockTwin)
    @{ observations = $sim } | ConvertTo-Json -Depth 6 | Set-Content (Join-Path $LabResults 'mock-simulated.json')
    Compare-Observations 'iommufd mock domain' $real $sim
}

function Invoke-IommufdLab {
    $values = Invoke-IommufdLabBuild
    Invoke-IommufdScenarioBoot
    Invoke-MockBoot $values
}
