#requires -Version 7.4
<#
.SYNOPSIS
    The README's main job: a walk through VfioMigration on this machine.
.DESCRIPTION
    Imports the module and shows what the host offers. On a machine without VFIO it says so; as the
    simulated host and the container, dirty-tracking and migration cmdlets land, this demo grows into
    a whole lab run: discovery, container, DMA mapping, dirty tracking, a bitmap and a migration.
#>
param([string] $ModulePath = (Join-Path $PSScriptRoot 'VfioMigration.psd1'))
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath -Force

function Show-Step([string] $title) { Write-Host ''; Write-Host "=== $title" }

Show-Step 'The module'
Get-Command -Module VfioMigration | Format-Table -AutoSize | Out-String | Write-Host

Show-Step 'IOMMU groups of this machine (Get-VfioGroup)'
$groups = @(Get-VfioGroup -WarningVariable absent)
if ($groups.Count) {
    $groups | Format-Table | Out-String | Write-Host
}
else {
    Write-Host 'No IOMMU groups: this machine has no IOMMU enabled, or runs in a sandbox without one.'
}
if ($absent) { Write-Host 'VFIO is absent here, as the warning above says.' }

Show-Step 'Help'
(Get-Help Get-VfioGroup).Synopsis | Write-Host
Write-Host ''
Write-Host 'Demo finished.'
