#requires -Version 7.4
<#
.SYNOPSIS
    The README's main job: a walk through VfioMigration.
.DESCRIPTION
    Imports the module, shows what this machine offers, then connects to the simulated VFIO host that
    ships with the module and walks through it. As the container, dirty-tracking and migration cmdlets
    land, this demo grows into a whole lab run: discovery, container, DMA mapping, dirty tracking, a
    bitmap and a migration.
#>
param([string] $ModulePath = (Join-Path $PSScriptRoot 'VfioMigration.psd1'))
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath -Force

function Show-Step([string] $title) { Write-Host ''; Write-Host "=== $title" }
function Show($objects) { ($objects | Format-Table -AutoSize | Out-String -Width 160).TrimEnd() | Write-Host }

Show-Step 'The module'
Show (Get-Command -Module VfioMigration)

Show-Step 'This machine (Get-VfioHost, Get-VfioGroup)'
Disconnect-VfioHost
$here = Get-VfioHost
Show $here
if (-not $here.VfioPresent) {
    Write-Host 'VFIO is absent here: no /dev/vfio/vfio. The rest of the demo runs on the simulated host.'
}

Show-Step 'The simulated host (Connect-VfioHost -Simulated)'
Show (Connect-VfioHost -Simulated)

Show-Step 'Its IOMMU groups (Get-VfioGroup)'
Show (Get-VfioGroup)

Show-Step 'Groups a VFIO program can open, with their devices (Get-VfioGroup -VfioOnly)'
Show (Get-VfioGroup -VfioOnly | Select-Object -ExpandProperty Devices)

Show-Step 'Help'
Write-Host (Get-Help Get-VfioGroup).Synopsis
Disconnect-VfioHost
Write-Host ''
Write-Host 'Demo finished.'
