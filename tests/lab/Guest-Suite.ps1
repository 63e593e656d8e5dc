#requires -Version 7.4
<#
.SYNOPSIS
    Runs in the lab guest, in the one pwsh process guest.sh starts: the conformance suite against the
    real /dev/vfio, then the lab's Pester checks (Guest-Checks.ps1). Results go to OutDir (the 9p share).
.DESCRIPTION
    Loads the BUILT module (module/VfioMigration.psd1 of RepoRoot, laid there by 'build.ps1 -Task Build'),
    finds the lab's targets in sysfs (the edu device on vfio-pci and the mtty mdev), runs
    ConformanceRunner over LinuxKernel.Instance and writes OutDir/guest-result.json:
      kernel        uname -r of the guest
      target        the groups and devices used
      observations  [{ scenario, step, answer }] in the suite's order
      timings       seconds: pwsh start-up, module import, discovery, suite, checks
      errors        anything that kept the suite from running
#>
param(
    [Parameter(Mandatory)] [string] $RepoRoot,
    [Parameter(Mandatory)] [string] $OutDir,
    [string] $MttyUuid,
    [string] $MttyPeerUuid
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$scriptStart = [DateTime]::UtcNow
$clock = [Diagnostics.Stopwatch]::StartNew()
$result = [ordered]@{
    kernel       = (Get-Content /proc/sys/kernel/osrelease -Raw).Trim()
    target       = $null
    observations = @()
    timings      = [ordered]@{
        pwsh_startup = [math]::Round(($scriptStart - [Diagnostics.Process]::GetCurrentProcess().StartTime.ToUniversalTime()).TotalSeconds, 2)
    }
    errors       = @()
}
$resultFile = Join-Path $OutDir 'guest-result.json'
function Save-Result { $result | ConvertTo-Json -Depth 6 | Set-Content -Path $resultFile -Encoding utf8 }
function Stop-Timer([string] $name) { $result.timings[$name] = [math]::Round($clock.Elapsed.TotalSeconds, 2); $clock.Restart() }
Write-Host "LAB: pwsh $($PSVersionTable.PSVersion) up in $($result.timings.pwsh_startup) s"
Save-Result

function Get-SysfsGroup([string] $devicePath) {
    $link = Join-Path $devicePath 'iommu_group'
    if (-not (Test-Path $link)) { return $null }
    [int](Split-Path -Leaf (Get-Item $link).ResolvedTarget)
}

function Find-LabTarget {
    # The edu device (1234:11e8) bound to vfio-pci, and the mtty mdev guest.sh created.
    $t = [ordered]@{ IommuGroup = $null; IommuDevice = $null; MdevGroup = $null; MdevDevice = $null; PeerMdevGroup = $null; PeerMdevDevice = $null }
    foreach ($dev in Get-ChildItem /sys/bus/pci/devices) {
        $id = '{0}:{1}' -f (Get-Content "$dev/vendor").Trim(), (Get-Content "$dev/device").Trim()
        if ($id -ne '0x1234:0x11e8') { continue }
        $driver = if (Test-Path "$dev/driver") { Split-Path -Leaf (Get-Item "$dev/driver").ResolvedTarget } else { '' }
        if ($driver -ne 'vfio-pci') { throw "edu device $($dev.Name) is bound to '$driver', not vfio-pci" }
        $t.IommuDevice = $dev.Name
        $t.IommuGroup = Get-SysfsGroup $dev.FullName
        break
    }
    if ($null -eq $t.IommuGroup) { throw 'no edu device (1234:11e8) on vfio-pci in /sys/bus/pci/devices' }
    $mdevs = @(Get-ChildItem /sys/bus/mdev/devices -ErrorAction Ignore | Where-Object {
        (Test-Path "$_/driver") -and (Split-Path -Leaf (Get-Item "$_/driver").ResolvedTarget) -eq 'mtty' })
    $mdev = if ($MttyUuid) { $mdevs | Where-Object Name -EQ $MttyUuid | Select-Object -First 1 } else { $mdevs | Select-Object -First 1 }
    if (-not $mdev) { throw "no mtty mdev $MttyUuid in /sys/bus/mdev/devices" }
    $t.MdevDevice = $mdev.Name
    $t.MdevGroup = Get-SysfsGroup $mdev.FullName
    # The second mtty-2, the destination of restores (the scenarios that need it are skipped without it).
    $peer = $mdevs | Where-Object { $_.Name -ne $mdev.Name -and (-not $MttyPeerUuid -or $_.Name -eq $MttyPeerUuid) } | Select-Object -First 1
    if ($peer) {
        $t.PeerMdevDevice = $peer.Name
        $t.PeerMdevGroup = Get-SysfsGroup $peer.FullName
    }
    $t
}

$target = $null
try {
    Import-Module (Join-Path $RepoRoot 'module/VfioMigration.psd1')
    . (Join-Path $PSScriptRoot 'LabConformance.ps1')
    Stop-Timer 'module_import'

    $found = Find-LabTarget
    $result.target = $found
    Write-Host ("LAB: targets: iommu group {0} ({1}), mdev group {2} ({3}), peer mdev group {4} ({5})" -f $found.IommuGroup, $found.IommuDevice, $found.MdevGroup, $found.MdevDevice, $found.PeerMdevGroup, $found.PeerMdevDevice)
    $target = New-LabTarget -Kernel ([VfioMigration.Core.Native.LinuxKernel]::Instance) @found
    Stop-Timer 'discovery'

    $result.observations = @(Invoke-LabConformance -Target $target)
    Stop-Timer 'suite'
    Write-Host "LAB: conformance suite: $($result.observations.Count) observations"
}
catch {
    $result.errors += "conformance: $($_.Exception.Message)"
    Write-Host "LAB: conformance failed: $($_.Exception.Message)"
}
Save-Result

# The hook for the project's Pester lab checks: same process, the module already loaded.
try {
    & (Join-Path $PSScriptRoot 'Guest-Checks.ps1') -RepoRoot $RepoRoot -OutDir $OutDir -Target $target
    Stop-Timer 'checks'
}
catch {
    $result.errors += "checks: $($_.Exception.Message)"
    Write-Host "LAB: checks failed: $($_.Exception.Message)"
}
Save-Result
exit ([int]($result.errors.Count -gt 0))
