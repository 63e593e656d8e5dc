#requires -Version 7.4
<#
.SYNOPSIS
    Runs in the lab guest booted with the lab's iommufd kernel (build-iommufd-kernel.sh), in the one pwsh
    guest.sh starts: the iommufd scenarios (IommufdConformance) against the real /dev/iommu and the devices'
    cdevs. Results go to OutDir/guest-result.json, in the shape Guest-Suite.ps1 writes.
.DESCRIPTION
    The cdevs are found in sysfs: /sys/bus/pci/devices/<edu>/vfio-dev/vfioN and
    /sys/bus/mdev/devices/<mtty uuid>/vfio-dev/vfioN. No device here can write guest memory on demand, and
    QEMU's VT-d cannot track dirty pages, so the hardware dirty scenario does not apply (the mock-domain boot
    covers the dirty bitmap semantics instead).
#>
param(
    [Parameter(Mandatory)] [string] $RepoRoot,
    [Parameter(Mandatory)] [string] $OutDir,
    [string] $MttyUuid,
    [string] $MttyPeerUuid
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$clock = [Diagnostics.Stopwatch]::StartNew()
$result = [ordered]@{
    kernel       = (Get-Content /proc/sys/kernel/osrelease -Raw).Trim()
    target       = $null
    observations = @()
    timings      = [ordered]@{}
    errors       = @()
}
$resultFile = Join-Path $OutDir 'guest-result.json'
function Save-Result { $result | ConvertTo-Json -Depth 6 | Set-Content -Path $resultFile -Encoding utf8 }
function Stop-Timer([string] $name) { $result.timings[$name] = [math]::Round($clock.Elapsed.TotalSeconds, 2); $clock.Restart() }
Save-Result

function Get-Cdev([string] $devicePath) {
    $node = Get-ChildItem (Join-Path $devicePath 'vfio-dev') -Filter 'vfio*' -ErrorAction Ignore | Select-Object -First 1
    if ($node) { "/dev/vfio/devices/$($node.Name)" }
}

try {
    Import-Module (Join-Path $RepoRoot 'module/VfioMigration.psd1')
    Stop-Timer 'module_import'
    $edu = Get-ChildItem /sys/bus/pci/devices | Where-Object {
        ('{0}:{1}' -f (Get-Content "$_/vendor").Trim(), (Get-Content "$_/device").Trim()) -eq '0x1234:0x11e8' } | Select-Object -First 1
    if (-not $edu) { throw 'no edu device (1234:11e8) in /sys/bus/pci/devices' }
    $pciCdev = Get-Cdev $edu.FullName
    if (-not $pciCdev) { throw "edu $($edu.Name) has no vfio cdev (vfio-dev/vfioN): is it bound to vfio-pci, and CONFIG_VFIO_DEVICE_CDEV set?" }
    $mdevCdev = if ($MttyUuid) { Get-Cdev "/sys/bus/mdev/devices/$MttyUuid" }
    $result.target = [ordered]@{ PciDevice = $edu.Name; PciCdev = $pciCdev; MdevDevice = $MttyUuid; MdevCdev = $mdevCdev }
    Write-Host "LAB: iommufd targets: edu $($edu.Name) $pciCdev, mtty $MttyUuid $mdevCdev"
    $target = [VfioMigration.Core.Conformance.IommufdTarget]@{
        Host     = [VfioMigration.Core.Kernel.VfioHost]::new([VfioMigration.Core.Native.LinuxKernel]::Instance)
        PciCdev  = $pciCdev
        MdevCdev = $mdevCdev
    }
    Stop-Timer 'discovery'
    $result.observations = @([VfioMigration.Core.Conformance.IommufdConformance]::Run($target, $null) |
        ForEach-Object { [ordered]@{ scenario = $_.Scenario; step = $_.Step; answer = $_.Answer } })
    Stop-Timer 'scenarios'
    Write-Host "LAB: iommufd scenarios: $($result.observations.Count) observations"
}
catch {
    $result.errors += "iommufd: $($_.Exception.Message)"
    Write-Host "LAB: iommufd scenarios failed: $($_.Exception.Message)"
}
Save-Result
exit ([int]($result.errors.Count -gt 0))
