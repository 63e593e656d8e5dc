#requires -Version 7.4
<#
.SYNOPSIS
    The hook for the project's Pester checks on the real kernel: runs tests/lab/Pester/*.Tests.ps1 inside
    the lab guest, in the pwsh process Guest-Suite.ps1 runs in (the module is already imported there).
.DESCRIPTION
    Add a check by dropping a *.Tests.ps1 file into tests/lab/Pester/. It runs as root against the guest's
    /dev/vfio, with these environment variables set:
      VFIOLAB_IOMMU_GROUP, VFIOLAB_IOMMU_DEVICE   the edu device on vfio-pci and its group
      VFIOLAB_MDEV_GROUP, VFIOLAB_MDEV_DEVICE     the mtty mdev (v2 migration) and its group
      VFIOLAB_PEER_MDEV_GROUP, VFIOLAB_PEER_MDEV_DEVICE   the second mtty-2 (QEMU's device in Qemu.Lab.Tests.ps1)
      VFIOLAB_QEMU10                              the root QEMU 10 was unpacked into (build-lab.sh)
      VFIOLAB_REPO                                the repository root
    Counts go to OutDir/lab-pester.summary.json (passed, failed, skipped), which Invoke-Lab.ps1 adds to
    its own. Pester (the version tests/tools/tools.csproj downloads) is imported only when a file exists:
    under TCG that import alone costs seconds.
#>
param(
    [Parameter(Mandatory)] [string] $RepoRoot,
    [Parameter(Mandatory)] [string] $OutDir,
    [object] $Target
)
$ErrorActionPreference = 'Stop'
$checks = Join-Path $PSScriptRoot 'Pester'
$files = @(Get-ChildItem $checks -Filter '*.Tests.ps1' -ErrorAction Ignore)
if ($files.Count -eq 0) {
    Write-Host "LAB: no lab Pester checks ($checks has no *.Tests.ps1)"
    return
}

if ($Target) {
    $env:VFIOLAB_IOMMU_GROUP = "$($Target.IommuGroup)"
    $env:VFIOLAB_IOMMU_DEVICE = "$($Target.IommuDevice)"
    $env:VFIOLAB_MDEV_GROUP = "$($Target.MdevGroup)"
    $env:VFIOLAB_MDEV_DEVICE = "$($Target.MdevDevice)"
    $env:VFIOLAB_PEER_MDEV_GROUP = "$($Target.PeerMdevGroup)"
    $env:VFIOLAB_PEER_MDEV_DEVICE = "$($Target.PeerMdevDevice)"
}
$env:VFIOLAB_REPO = $RepoRoot

$version = ([xml](Get-Content (Join-Path $RepoRoot 'tests/tools/tools.csproj') -Raw)).Project.ItemGroup.PackageDownload |
    Where-Object Include -EQ 'Pester' | ForEach-Object { $_.Version.Trim('[', ']') }
$nuget = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path $HOME '.nuget/packages' }
$pester = Join-Path $nuget "pester/$version/tools/Pester.psd1"
$summary = Join-Path $OutDir 'lab-pester.summary.json'
# The runner the main suite uses: it writes the counts file, failures outside an It included.
& (Join-Path $RepoRoot 'tests/Invoke-PesterSuite.ps1') -PesterModule $pester -Path $checks -ResultsDir $OutDir -Name 'lab-pester'
if (-not (Test-Path $summary)) { throw "the lab Pester checks wrote no $summary" }
