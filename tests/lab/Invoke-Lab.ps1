#requires -Version 7.4
<#
.SYNOPSIS
    The QEMU lab: runs the conformance suite against a real Linux kernel and compares its answers with
    the simulated twin's, step by step.
.DESCRIPTION
    1. Builds the module (build.ps1 -Task Build), unless -SkipModuleBuild.
    2. Builds the lab (build-lab.sh): host tools and a Debian 6.12 kernel from apt, mtty.ko, an
       initramfs; cached under -Cache, keyed by kernel release.
    3. Boots it under QEMU (run-vm.sh): q35, emulated VT-d, edu and e1000e on vfio-pci, one mtty-2 mdev.
       The guest enters the host root and runs Guest-Suite.ps1 in one pwsh: the suite against the real
       /dev/vfio, then the lab's Pester checks (Guest-Checks.ps1).
    4. Runs the same suite in this process against SimulatedKernel(SimTopologies.Lab()) and compares with
       ConformanceRunner.Compare; prints every difference with both answers, and what is not compared.
    5. Builds the lab's second kernel (build-iommufd-kernel.sh: Debian's linux-source-6.12 with iommufd,
       the vfio cdev and IOMMUFD_TEST; cached) and boots it twice (IommufdLab.ps1): the iommufd scenarios
       in the same VM, compared with SimTopologies.LabIommufd(); and, without a vIOMMU, the mock-domain
       harness, compared with the simulated dirty-tracking IOMMU. -SkipIommufd leaves this out.
    6. Writes <RepoRoot>/TestResults/lab.summary.json (passed/failed: one count per compared step, plus
       one failure per build/boot problem) and the raw files under TestResults/lab/; exits 1 on any
       difference or failure. A lab that cannot be built or booted fails with the reason: it never skips.
       The summary is written whatever happens, also when the module, the lab or the VM failed.
.EXAMPLE
    dotnet tool restore; dotnet pwsh tests/lab/Invoke-Lab.ps1 -RepoRoot .
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task LabExpected
    Runs the lab and writes the conformance suite's expected answers from the real kernel's (-WriteExpected).
.EXAMPLE
    VFIOLAB_INJECT_DIFFERENCE=1 dotnet pwsh tests/lab/Invoke-Lab.ps1 -RepoRoot .
    The differential's own test: the simulated twin is made to answer one step differently (through
    SimFaults), so the run must fail and print both answers.
#>
[CmdletBinding()]
param(
    [string] $RepoRoot = (Join-Path $PSScriptRoot '../..'),

    # Downloads, extracted kernel trees, mtty.ko, initramfs and the VM's share live here, outside the git tree.
    [string] $Cache = $(if ($env:VFIOLAB_CACHE) { $env:VFIOLAB_CACHE } else { '/var/tmp/vfiomigration-lab' }),

    # The VM's whole life: boot, suite, checks, power-off. TCG varies 2-3x between runs (kernel-interface.md lab 4).
    [int] $TimeoutSeconds = 600,

    [switch] $SkipModuleBuild,

    # The differential's self-test: the simulated twin answers EIO to its first VFIO_GET_API_VERSION
    # (SimFaults), where both kernels answer 0, so the run must report exactly that difference and fail.
    [switch] $InjectDifference = ($env:VFIOLAB_INJECT_DIFFERENCE -eq '1'),

    # Leaves out the boots of the lab's iommufd kernel (build-iommufd-kernel.sh: about 15 min of kernel build
    # on a machine whose cache lacks it, then two short boots). CI runs them.
    [switch] $SkipIommufd = ($env:VFIOLAB_SKIP_IOMMUFD -eq '1'),

    # Only the iommufd kernel's boots (for work on iommufd): the Debian kernel's boot and comparison are left out.
    [switch] $IommufdOnly,

    # Writes the real kernel's answers as tests/VfioMigration.Core.Tests/Conformance/Expected/<scenario>.txt,
    # each with the kernel release it came from (build.ps1 -Task LabExpected). Review the diff, then commit.
    [switch] $WriteExpected
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'
$env:DOTNET_SKIP_FIRST_TIME_EXPERIENCE = '1'
$env:POWERSHELL_UPDATECHECK = 'Off'

# A repository root that does not exist still gets its summary (under the path as given) and a reason.
$RepoRootProblem = $null
if (Test-Path -LiteralPath $RepoRoot -PathType Container) { $RepoRoot = (Resolve-Path -LiteralPath $RepoRoot).Path }
else { $RepoRootProblem = "the repository root $RepoRoot does not exist" }
$LabScripts = Join-Path $RepoRoot 'tests/lab'
$ResultsDir = Join-Path $RepoRoot 'TestResults'
$LabResults = Join-Path $ResultsDir 'lab'
# One share and one env file per run, so two labs on one machine do not read each other's results.
$Share = Join-Path $Cache "run-$PID"
$LabEnv = Join-Path $Cache "lab-$PID.env"
$SerialLog = Join-Path $LabResults 'serial.log'
$IommufdShare = Join-Path $Cache "run-$PID-iommufd"
$MockShare = Join-Path $Cache "run-$PID-mock"
$IommufdEnv = Join-Path $Cache "iommufd-$PID.env"
$IommufdBootEnv = Join-Path $Cache "iommufd-boot-$PID.env"

# The simulated twin of the lab (SimTopologies.Lab): the same kind of target the guest discovers.
$SimIommuGroup = 2
$SimIommuDevice = '0000:00:02.0'
$SimMdevGroup = 7
$SimPeerMdevGroup = 8

# What the lab cannot compare, and why: printed on every run so nobody reads silence as agreement.
$NotCompared = @(
    [ordered]@{ what = 'v1 migration region (VFIO_REGION_TYPE_MIGRATION)'; reason = 'no driver of a 5.18+ kernel offers it (v1 was deprecated in 5.18 when the v2 FSM arrived; mtty and vfio-pci implement v2 or nothing), so the simulator''s v1 devices have no real counterpart in the lab' }
    [ordered]@{ what = 'ERROR state and injected faults (SimFaults)'; reason = 'the real kernel cannot be made to fail on demand: mtty never enters ERROR, and errors the simulator injects (EIO on a data_fd, a failing transition) have no lab trigger' }
    [ordered]@{ what = 'iommufd on Debian''s kernel'; reason = 'CONFIG_IOMMUFD is not set in Debian''s 6.12: iommufd is compared on the lab''s second kernel (build-iommufd-kernel.sh) instead' }
    [ordered]@{ what = 'IOMMU hardware dirty tracking behind a VFIO device'; reason = 'no QEMU emulates an IOMMU that tracks dirty pages (VT-d without SSADS/SMPWC, AMD-Vi without HDSup): the lab compares its refusals, and the dirty bitmap semantics only on the IOMMUFD_TEST mock domain (docs/iommufd.md)' }
)

$summary = [ordered]@{
    passed      = 0
    failed      = 0
    skipped     = 0
    kernel      = $null
    injected    = $null
    differences = @()
    failures    = @()
    notCompared = @()
    timings     = [ordered]@{}
}
$wall = [Diagnostics.Stopwatch]::StartNew()

function Write-Step([string] $text) { Write-Host "==> lab: $text" }
function Add-Failure([string] $text) {
    $summary.failures += $text
    Write-Host "LAB FAILURE: $text" -ForegroundColor Red
}
function Set-Timing([string] $name, [double] $seconds) { $summary.timings[$name] = [math]::Round($seconds, 1) }
function Read-EnvFile([string] $path) {
    $values = @{}
    if (Test-Path $path) {
        foreach ($line in Get-Content $path) { if ($line -match '^(\w+)=(.*)$') { $values[$Matches[1]] = $Matches[2].Trim("'") } }
    }
    $values
}
function Get-NuGetRoot { if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path $HOME '.nuget/packages' } }
function Get-PwshDll {
    # The repo's pwsh (dotnet-tools.json) is a framework-dependent tool: its shim starts a second process,
    # so the guest runs 'dotnet <nuget>/powershell/<v>/tools/<tfm>/any/unix/pwsh.dll' directly.
    $manifest = Get-Content (Join-Path $RepoRoot 'dotnet-tools.json') -Raw | ConvertFrom-Json
    $version = $manifest.tools.powershell.version
    $nuget = Get-NuGetRoot
    $dll = Get-ChildItem (Join-Path $nuget "powershell/$version/tools") -Filter pwsh.dll -Recurse -ErrorAction Ignore |
        Where-Object { $_.Directory.Name -eq 'unix' } | Select-Object -First 1
    if ($dll) { return $dll.FullName }
    $here = Join-Path $PSHOME 'pwsh.dll'
    if (Test-Path $here) { return $here }
    throw "no pwsh.dll for PowerShell $version in $nuget (run 'dotnet tool restore' in $RepoRoot)"
}

function Invoke-ModuleBuild {
    Write-Step 'module build (build.ps1 -Task Build)'
    $sw = [Diagnostics.Stopwatch]::StartNew()
    Push-Location $RepoRoot
    try {
        & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $RepoRoot 'build.ps1') -Task Build | Out-Host
        if ($LASTEXITCODE -ne 0) { throw "build.ps1 -Task Build failed with exit code $LASTEXITCODE" }
    }
    finally { Pop-Location }
    Set-Timing 'module_build' $sw.Elapsed.TotalSeconds
}

function Invoke-LabBuildScript([string] $script, [string] $outEnv, [string] $timing, [string] $what) {
    # Runs one of the lab's build scripts (build-lab.sh, build-iommufd-kernel.sh): its LABTIME lines become
    # timings, and its 'LAB BUILD FAILED: <reason>' line the reason of the failure.
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $reason = $null
    & bash (Join-Path $LabScripts $script) --cache $Cache --out $outEnv 2>&1 | ForEach-Object {
        $line = "$_"
        Write-Host "  $line"
        if ($line -match '^LABTIME (\S+) ([\d.]+)') { Set-Timing "lab_build.$($Matches[1])" ([double]$Matches[2]) }
        if ($line -match '^LAB BUILD FAILED: (.*)') { $reason = $Matches[1] }
    }
    $rc = $LASTEXITCODE
    Set-Timing $timing $sw.Elapsed.TotalSeconds
    if ($rc -ne 0) { throw "$what could not be built: $(if ($reason) { $reason } else { "$script exit code $rc" })" }
}

function Invoke-LabBuild {
    Write-Step "lab build (cache $Cache)"
    # build-lab.sh creates the cache itself, and says so when it cannot.
    Invoke-LabBuildScript 'build-lab.sh' $LabEnv 'lab_build' 'the lab'
}

function New-LabShare {
    # A fresh share for one boot: guest.sh, and lab.env telling it which pwsh script to run in the guest.
    param([string] $ShareDir, [string] $Suite)
    if (Test-Path $ShareDir) { Remove-Item $ShareDir -Recurse -Force }
    $null = New-Item -ItemType Directory -Force $ShareDir, $LabResults
    Copy-Item (Join-Path $LabScripts 'guest.sh') $ShareDir
    $dotnet = (Get-Command dotnet -CommandType Application | Select-Object -First 1).Source
    $values = [ordered]@{
        REPO       = $RepoRoot
        SHARE      = (Resolve-Path $ShareDir).Path
        SUITE      = $Suite
        DOTNET     = (& readlink -f $dotnet)
        PWSH_DLL   = Get-PwshDll
        GUEST_HOME = $HOME
        NUGET_ROOT = Get-NuGetRoot
        MTTY_UUID  = [VfioMigration.Core.Simulation.SimTopologies]::LabMttyUuid
        MTTY_PEER_UUID = [VfioMigration.Core.Simulation.SimTopologies]::LabMttyPeerUuid
        # QEMU 10 unpacked by build-lab.sh: the guest sees it at the same path through the host root.
        QEMU10_ROOT = (Read-EnvFile $LabEnv)['QEMU10']
    }
    Set-Content (Join-Path $ShareDir 'lab.env') ($values.GetEnumerator() | ForEach-Object { "$($_.Key)='$($_.Value)'" })
}

function Invoke-LabBoot {
    # One boot of the lab VM (run-vm.sh) with the share's guest.sh; a VM that does not power off in time, or
    # a QEMU that fails, is a failure with the console's last line.
    param([string] $EnvFile, [string] $ShareDir, [string] $Log, [int] $Timeout, [switch] $NoViommu)
    $extra = @(if ($NoViommu) { '--no-viommu' })
    for ($attempt = 1; ; $attempt++) {
        & bash (Join-Path $LabScripts 'run-vm.sh') --env $EnvFile --share $ShareDir --log $Log `
            --timeout $Timeout @extra 2>&1 | ForEach-Object { Write-Host "  | $_" }
        $rc = $LASTEXITCODE
        # A guest kernel that panics while it boots, before the lab's init has run, tested nothing of the
        # module: TCG has been seen to fault in the guest's timer code this early (once in many runs). Boot
        # once more, say so, and keep the first console log; a second panic, or one later, is a failure.
        $panicked = -not (Test-Path (Join-Path $ShareDir 'init-timings.env')) -and (Test-Path $Log) -and
            (Select-String -Path $Log -SimpleMatch 'Kernel panic' -Quiet)
        if ($attempt -ge 2 -or -not $panicked) { break }
        $firstLog = [IO.Path]::ChangeExtension($Log, '.boot1.log')
        Move-Item $Log $firstLog -Force
        Write-Host "LAB: the guest kernel panicked while booting, before the lab's init ran (console: $firstLog); booting once more"
    }
    if ($rc -eq 124 -or $rc -eq 137) { Add-Failure "the VM did not power off within $Timeout s (serial log: $Log)" }
    elseif ($rc -ne 0) {
        # The console's last line says why (QEMU's own error, or timeout's when QEMU cannot be started).
        $last = if (Test-Path $Log) { Get-Content $Log | Where-Object { $_.Trim() } | Select-Object -Last 1 }
        Add-Failure "QEMU exited with status $rc$(if ($last) { ": $($last.Trim())" }) (serial log: $Log)"
    }
}

function Invoke-LabVm {
    Write-Step 'boot the VM and run the suite in the guest'
    # Shares of runs that were killed before cleaning up.
    Get-ChildItem $Cache -Directory -Filter 'run-*' | Where-Object {
        $_.Name -match '^run-(\d+)(-\w+)?$' -and -not (Get-Process -Id ([int]$Matches[1]) -ErrorAction Ignore) } |
        Remove-Item -Recurse -Force -ErrorAction Ignore
    New-LabShare -ShareDir $Share -Suite (Join-Path $LabScripts 'Guest-Suite.ps1')

    $sw = [Diagnostics.Stopwatch]::StartNew()
    Invoke-LabBoot -EnvFile $LabEnv -ShareDir $Share -Log $SerialLog -Timeout $TimeoutSeconds
    Set-Timing 'vm_total' $sw.Elapsed.TotalSeconds

    foreach ($f in 'guest-result.json', 'init-timings.env', 'guest-timings.env', 'lab-pester.summary.json', 'lab-pester.junit.xml') {
        if (Test-Path (Join-Path $Share $f)) { Copy-Item (Join-Path $Share $f) $LabResults -Force }
    }
    $init = Read-EnvFile (Join-Path $Share 'init-timings.env')
    $guest = Read-EnvFile (Join-Path $Share 'guest-timings.env')
    if ($init['T_INIT']) { Set-Timing 'boot_to_init' ([double]$init['T_INIT']) }
    if ($init['T_MODULES'] -and $init['T_INIT']) { Set-Timing 'modules' ([double]$init['T_MODULES'] - [double]$init['T_INIT']) }
    if ($guest['T_BOUND'] -and $init['T_MODULES']) { Set-Timing 'bind_and_mdev' ([double]$guest['T_BOUND'] - [double]$init['T_MODULES']) }
    if ($guest['T_PWSH_END'] -and $guest['T_PWSH_START']) { Set-Timing 'guest_pwsh' ([double]$guest['T_PWSH_END'] - [double]$guest['T_PWSH_START']) }

    $resultFile = Join-Path $Share 'guest-result.json'
    if (-not (Test-Path $resultFile)) {
        if (-not $init.Count) { Add-Failure "the guest never mounted the share (no init-timings.env): see $SerialLog" }
        elseif (-not $guest.ContainsKey('T_PWSH_START')) { Add-Failure "the guest stopped before starting pwsh: see $SerialLog" }
        elseif (-not $guest.ContainsKey('PWSH_EXIT')) { Add-Failure "pwsh in the guest did not finish: see $SerialLog" }
        else { Add-Failure "pwsh in the guest wrote no guest-result.json (exit $($guest['PWSH_EXIT'])): see $SerialLog" }
        return $null
    }
    $result = Get-Content $resultFile -Raw | ConvertFrom-Json
    $summary.kernel = $result.kernel
    foreach ($e in @($result.errors)) { Add-Failure "guest: $e" }
    foreach ($t in $result.timings.PSObject.Properties) { Set-Timing "guest.$($t.Name)" ([double]$t.Value) }
    $pesterFile = Join-Path $Share 'lab-pester.summary.json'
    if (Test-Path $pesterFile) {
        $p = Get-Content $pesterFile -Raw | ConvertFrom-Json
        $summary.passed += [int]$p.passed
        $summary.failed += [int]$p.failed
        $summary.skipped += [int]$p.skipped
        Write-Host ("lab Pester checks in the guest: {0} passed, {1} failed, {2} skipped" -f $p.passed, $p.failed, $p.skipped)
    }
    $result
}

function Invoke-SimulatedTwin {
    Write-Step 'the same suite against the simulated twin (SimTopologies.Lab)'
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $kernel = [VfioMigration.Core.Simulation.SimulatedKernel]::new([VfioMigration.Core.Simulation.SimTopologies]::Lab())
    if ($InjectDifference) {
        # One answer changed on the simulated side only: the first step of the first scenario ('container'
        # VFIO_GET_API_VERSION, 0 on every kernel) fails with EIO. Nothing else moves: no later step reads it.
        $kernel.Faults.FailIoctl('VFIO_GET_API_VERSION', 1, [VfioMigration.Core.Native.Errno]::EIO)
        $summary.injected = 'the simulated twin answers EIO to its first VFIO_GET_API_VERSION (VFIOLAB_INJECT_DIFFERENCE=1 / -InjectDifference)'
        Write-Host "INJECTED DIFFERENCE: $($summary.injected); this run must fail" -ForegroundColor Yellow
    }
    $target = New-LabTarget -Kernel $kernel -IommuGroup $SimIommuGroup -IommuDevice $SimIommuDevice `
        -MdevGroup $SimMdevGroup -MdevDevice ([VfioMigration.Core.Simulation.SimTopologies]::LabMttyUuid) `
        -PeerMdevGroup $SimPeerMdevGroup -PeerMdevDevice ([VfioMigration.Core.Simulation.SimTopologies]::LabMttyPeerUuid)
    $observations = @(Invoke-LabConformance -Target $target)
    Set-Timing 'simulated_suite' $sw.Elapsed.TotalSeconds
    [ordered]@{ target = $target; observations = $observations }
}

function Compare-Observations([string] $what, [object[]] $realItems, [object[]] $simItems) {
    # Every step of both lists: one pass per step that agrees, one failure per difference, both answers printed.
    $left = ConvertTo-LabObservationList @($realItems)
    $right = ConvertTo-LabObservationList @($simItems)
    $diff = [VfioMigration.Core.Conformance.ConformanceRunner]::Compare($left, $right)
    $compared = [math]::Max($left.Count, $right.Count)
    $summary.passed += $compared - $diff.Count
    $summary.failed += $diff.Count
    foreach ($d in $diff) {
        $summary.differences += [ordered]@{ scenario = $d.Item1; step = $d.Item2; real = $d.Item3; simulated = $d.Item4 }
        Write-Host ("DIFF {0} | {1}" -f $d.Item1, $d.Item2) -ForegroundColor Yellow
        Write-Host ("       real kernel: {0}" -f $(if ($null -eq $d.Item3) { '(no such step)' } else { $d.Item3 }))
        Write-Host ("       simulated:   {0}" -f $(if ($null -eq $d.Item4) { '(no such step)' } else { $d.Item4 }))
    }
    Write-Host ("{0}: compared {1} steps: {2} agree, {3} differ" -f $what, $compared, ($compared - $diff.Count), $diff.Count)
}

function Compare-LabRuns($real, $sim) {
    Write-Step 'compare: real kernel vs simulated twin'
    $t = $real.target
    if ($t -and ($t.IommuGroup -ne $SimIommuGroup -or $t.IommuDevice -ne $SimIommuDevice -or $t.MdevGroup -ne $SimMdevGroup -or $t.PeerMdevGroup -ne $SimPeerMdevGroup)) {
        # Scenarios never name groups, so this is no failure; but the twin no longer mirrors the lab.
        Write-Host ("note: the lab's targets (group {0} {1}, mdev groups {2} and {3}) differ from the twin's (group {4} {5}, mdev groups {6} and {7})" -f
            $t.IommuGroup, $t.IommuDevice, $t.MdevGroup, $t.PeerMdevGroup, $SimIommuGroup, $SimIommuDevice, $SimMdevGroup, $SimPeerMdevGroup)
    }
    Compare-Observations 'conformance suite' @($real.observations) @($sim.observations)
}

function Write-ExpectedFiles($real) {
    # One file per scenario, the real kernel's answers in the order they were observed, with provenance.
    $folder = Join-Path $RepoRoot 'tests/VfioMigration.Core.Tests/Conformance/Expected'
    foreach ($group in @($real.observations) | Group-Object scenario) {
        $lines = @(
            "# The '$($group.Name)' scenario as a real kernel answered it: Linux $($real.kernel) in the QEMU lab (docs/lab.md)."
            '# Written by: dotnet pwsh ./build.ps1 -Task LabExpected (tests/lab/Invoke-Lab.ps1 -WriteExpected); do not edit by hand.'
        ) + @($group.Group | ForEach-Object { "$($_.step) | $($_.answer)" })
        $file = Join-Path $folder "$($group.Name).txt"
        [System.IO.File]::WriteAllText($file, ($lines -join "`n") + "`n")
        Write-Host "wrote $file ($($group.Count) steps)"
    }
}

function Write-NotCompared($simTarget) {
    $items = @($NotCompared)
    if ($simTarget) {
        foreach ($s in [VfioMigration.Core.Conformance.ConformanceRunner]::Scenarios) {
            if (-not $s.AppliesTo($simTarget)) {
                $items += [ordered]@{ what = "scenario '$($s.Name)'"; reason = 'it does not apply to the lab''s target (it needs a device the lab has not got)' }
            }
        }
    }
    foreach ($i in $items) { Write-Host "not compared: $($i.what): $($i.reason)" }
    $summary.notCompared = $items
}

# ---------------------------------------------------------------------------------------------------
# Every outcome ends in the finally block: the summary file, the failures with their reasons, exit 1 on
# any failure or difference.
$real = $null
$sim = $null
try {
    try {
        if ($RepoRootProblem) { throw $RepoRootProblem }
        if (-not $SkipModuleBuild) { Invoke-ModuleBuild }
        $moduleManifest = Join-Path $RepoRoot 'module/VfioMigration.psd1'
        if (-not (Test-Path $moduleManifest)) { throw "$moduleManifest is missing: run build.ps1 -Task Build (or drop -SkipModuleBuild)" }
        Import-Module $moduleManifest
        . (Join-Path $LabScripts 'LabConformance.ps1')
        . (Join-Path $LabScripts 'IommufdLab.ps1')

        Invoke-LabBuild
        if (-not $IommufdOnly) { $real = Invoke-LabVm }
    }
    catch {
        Add-Failure $_.Exception.Message
    }

    try {
        if ($IommufdOnly) {
            $script:NotCompared += [ordered]@{ what = 'the conformance suite on Debian''s kernel (the first boot)'; reason = 'left out of this run with -IommufdOnly' }
        }
        elseif (Get-Command New-LabTarget -ErrorAction Ignore) {
            $sim = Invoke-SimulatedTwin
            if ($real -and @($real.observations).Count) {
                Compare-LabRuns $real $sim
                if ($WriteExpected) { Write-ExpectedFiles ([pscustomobject]@{ kernel = $summary.kernel; observations = $real.observations }) }
            }
            elseif ($real) { Add-Failure 'the guest recorded no observations' }
        }
    }
    catch {
        Add-Failure "simulated run or comparison: $($_.Exception.Message)"
    }
    if ($SkipIommufd) {
        Write-Host 'iommufd: not run (-SkipIommufd / VFIOLAB_SKIP_IOMMUFD=1)'
        $script:NotCompared += [ordered]@{ what = 'iommufd (the second and third boots)'; reason = 'left out of this run with -SkipIommufd' }
    }
    elseif (Get-Command Invoke-IommufdLab -ErrorAction Ignore) {
        try { Invoke-IommufdLab }
        catch { Add-Failure "iommufd: $($_.Exception.Message)" }
    }
    Write-NotCompared $(if ($sim) { $sim.target } else { $null })
}
catch {
    Add-Failure "lab driver: $($_.Exception.Message)"
}
finally {
    Set-Timing 'total' $wall.Elapsed.TotalSeconds
    $summary.failed += $summary.failures.Count
    Write-Host ''
    Write-Host "lab kernel: $(if ($summary.kernel) { $summary.kernel } else { '(none)' }) (QEMU TCG)"
    Write-Host 'lab timings (s):'
    foreach ($k in $summary.timings.Keys) { Write-Host ("  {0,-32} {1,7:N1}" -f $k, $summary.timings[$k]) }
    if ($summary.injected) { Write-Host "injected: $($summary.injected)" -ForegroundColor Yellow }
    if ($summary.failures.Count) {
        Write-Host 'lab failures:' -ForegroundColor Red
        foreach ($f in $summary.failures) { Write-Host "  $f" -ForegroundColor Red }
    }
    try {
        $null = New-Item -ItemType Directory -Force $ResultsDir, $LabResults
        if ($real) { $real | ConvertTo-Json -Depth 6 | Set-Content (Join-Path $LabResults 'real.observations.json') }
        if ($sim) { @{ observations = $sim.observations } | ConvertTo-Json -Depth 6 | Set-Content (Join-Path $LabResults 'simulated.observations.json') }
        $summary | ConvertTo-Json -Depth 6 | Set-Content (Join-Path $ResultsDir 'lab.summary.json')
    }
    catch {
        Write-Host "LAB FAILURE: could not write $ResultsDir/lab.summary.json: $($_.Exception.Message)" -ForegroundColor Red
        $summary.failed += 1
    }
    Remove-Item $Share -Recurse -Force -ErrorAction Ignore
    Remove-Item $LabEnv -Force -ErrorAction Ignore
    Remove-Item $IommufdShare, $MockShare -Recurse -Force -ErrorAction Ignore
    Remove-Item $IommufdEnv, $IommufdBootEnv -Force -ErrorAction Ignore
    Write-Host ("lab: {0} passed, {1} failed" -f $summary.passed, $summary.failed)
}
exit ([int]($summary.failed -gt 0))
