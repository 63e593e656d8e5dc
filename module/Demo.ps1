#requires -Version 7.4
<#
.SYNOPSIS
    The README's main job: a walk through VfioMigration.
.DESCRIPTION
    Imports the module, shows what this machine offers, then connects to the simulated VFIO host that
    ships with the module and walks through it end to end: discovery, devices, a container, DMA
    mappings, dirty tracking, a dirty bitmap and its CSV, a dirty rate, a heatmap of dirty pages, stepped migration states, a
    saved and restored device state, a pre-flight report, a pre-copy migration that converges within its
    downtime limit (with its chart) and one that cannot, each with its reason. The pictures go to
    <temp>/vfiomigration-demo, and the demo says where.
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

Show-Step 'Devices and their migration support (Get-VfioDevice)'
Show (Get-VfioDevice -WarningAction SilentlyContinue)

Show-Step 'A container for the PCI function in group 2 (New-VfioContainer, Get-VfioIommuInfo)'
$container = New-VfioContainer -Group 2
Show $container
Show (Get-VfioIommuInfo)

Show-Step 'Guest memory mapped for DMA, as the lab maps it (docs/kernel-interface.md lab 7): 2 MiB and 1 MiB with a gap (New-VfioDmaMapping)'
$null = New-VfioDmaMapping -Iova 0x10000000 -Size 2MB
$null = New-VfioDmaMapping -Iova 0x10300000 -Size 1MB
Show (Get-VfioDmaMapping)

Show-Step 'Dirty tracking, and a bitmap over the first 2 GiB (Start-DirtyTracking, Get-DirtyBitmap)'
Get-VfioContainer | Start-DirtyTracking
$bitmap = Get-DirtyBitmap -Iova 0x0 -Size 2GB
Show $bitmap
Write-Host 'A device behind the IOMMU makes every mapped page read dirty: the kernel cannot see its DMA.'
Show ($bitmap.GetDirtyRanges())
$csv = Join-Path ([System.IO.Path]::GetTempPath()) 'vfiomigration-demo-dirty.csv'
Get-DirtyBitmap -Iova 0x0 -Size 2GB | Export-Csv $csv
Write-Host "Get-DirtyBitmap -Iova 0x0 -Size 2GB | Export-Csv $csv wrote:"
Get-Content $csv | Write-Host
Remove-Item $csv

Show-Step 'The kernel refuses a range that cuts a mapping; the module says why first'
try { Get-DirtyBitmap -Iova 0x10000000 -Size 1MB -ErrorAction Stop } catch { Write-Host "$($_.FullyQualifiedErrorId): $($_.Exception.Message)" }

Show-Step 'Dirty rate over one second (Measure-DirtyRate)'
Show (Measure-DirtyRate -Duration 00:00:01 -Interval 00:00:00.5 -WarningAction SilentlyContinue)
Get-VfioContainer | Remove-VfioContainer -Confirm:$false

Show-Step 'A device that logs its own DMA (Start-DirtyTracking -Device, Get-DirtyBitmap -Device)'
$nic = '0000:3b:00.1'
$guest = New-VfioContainer -Device $nic
# Two stretches of guest memory with a 32 MiB hole between them, as a guest's RAM below and above a PCI hole.
$null = New-VfioDmaMapping -Iova 0x10000000 -Size 64MB
$null = New-VfioDmaMapping -Iova 0x16000000 -Size 32MB
$guest | Start-DirtyTracking
Show (Start-DirtyTracking -Device $nic -PassThru)
Start-Sleep -Milliseconds 500
$byDevice = Get-DirtyBitmap -Device $nic
$byContainer = Get-DirtyBitmap
Show @($byDevice, $byContainer)
Write-Host ("The NIC's own log holds the {0} pages it wrote; behind the IOMMU, the container's tracking can only report all {1} mapped pages." -f $byDevice.DirtyPages, $byContainer.DirtyPages)

Show-Step 'The NIC''s dirty pages as a picture and in the terminal (Export-DirtyHeatmap, Show-DirtyHeatmap)'
$pictures = Join-Path ([System.IO.Path]::GetTempPath()) 'vfiomigration-demo'
$null = New-Item -ItemType Directory -Force $pictures
$heatmap = $byDevice | Export-DirtyHeatmap (Join-Path $pictures 'nic-dirty-heatmap.png') -Force -PassThru
Write-Host "Heatmap of the NIC's DMA log (gap between the two mappings in grey): $($heatmap.FullName)"
$byDevice | Show-DirtyHeatmap -Width 100 -Height 12 | Write-Host
Stop-DirtyTracking -Device $nic
Get-VfioContainer | Remove-VfioContainer -Confirm:$false

Show-Step 'Migration states of the mtty sample, one arc per step (Set-VfioMigrationState)'
$mtty = '36e5c7cc-4871-4d03-91da-44479a60a911'
$null = New-VfioContainer -Device $mtty
Set-VfioMigrationState $mtty -State StopCopy -WhatIf
Show (Set-VfioMigrationState $mtty -State PreCopy -Confirm:$false)
Show (Get-VfioMigrationInfo $mtty)
Show (Set-VfioMigrationState $mtty -State Running -Confirm:$false)

Show-Step 'Its state saved to a verified file and restored (Save-VfioDeviceState, Restore-VfioDeviceState)'
$state = Join-Path ([System.IO.Path]::GetTempPath()) 'vfiomigration-demo-mtty.state'
Show (Save-VfioDeviceState $mtty $state -Resume -Force -Confirm:$false)
Show (Restore-VfioDeviceState $mtty $state -Resume -Confirm:$false)
Remove-Item $state

Show-Step 'Before a migration: a pre-flight report (Test-VfioMigration)'
$src = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61'; $dst = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62'
Show (Test-VfioMigration $src $dst)
Show (Test-VfioMigration 0000:00:02.0 $dst | Select-Object -ExpandProperty Incompatibilities)

Show-Step 'A pre-copy migration that converges within its downtime limit (Start-VfioMigration, v1 devices)'
$v1src = '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51'; $v1dst = '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b52'
$null = New-VfioContainer -Device $v1src, $v1dst
$report = Start-VfioMigration $v1src $v1dst -Bandwidth 1GB -DowntimeLimit 300 -Confirm:$false
Show $report
Show $report.IterationDetails
$chart = $report | Export-MigrationChart (Join-Path $pictures 'migration-chart.png') -Force -PassThru
Write-Host "Chart of this migration's rounds, switchover, stop-copy and downtime: $($chart.FullName)"
$report | Format-List Status, Iterations, PrecopyBytes, StopCopyBytes, TransferredBytes, Downtime, DowntimeLimit, DowntimeExceeded, TotalTime, SourceOutcome, DestinationOutcome | Out-String | Write-Host
$last = $report.IterationDetails[-1]
Write-Host ("Why: after {0} pre-copy iteration(s), {1} bytes remained, within what 1 GiB/s x {2} ms allows ({3} bytes), so it switched over." -f
    $report.Iterations, $last.RemainingBytes, $report.DowntimeLimit.TotalMilliseconds, $report.AllowedBytes)
if ($report.DowntimeExceeded) {
    Write-Host ("The source was stopped {0:0} ms, more than the {1} ms limit: like QEMU the module switches over on the estimate, and says so when the measured downtime is over." -f
        $report.Downtime.TotalMilliseconds, $report.DowntimeLimit.TotalMilliseconds)
}
else {
    Write-Host ("The source was stopped {0:0} ms, within the {1} ms limit." -f $report.Downtime.TotalMilliseconds, $report.DowntimeLimit.TotalMilliseconds)
}

Show-Step 'One that cannot converge: the vGPUs at the default 128 MB/s (Start-VfioMigration, Get-VfioMigration)'
$null = New-VfioContainer -Device $src, $dst
$report = Start-VfioMigration $src $dst -MaxIterations 3 -Confirm:$false -WarningAction SilentlyContinue
$report | Format-List Status, Iterations, RemainingBytes, StopCopySize, AllowedBytes, SourceState, DestinationState | Out-String | Write-Host
Write-Host "Why: $($report.ErrorDescription)"
$stuck = $report | Export-MigrationChart (Join-Path $pictures 'migration-not-converged.png') -Force -PassThru
Write-Host "Its chart: what remains after each round stays above what may remain at switchover: $($stuck.FullName)"
Write-Host 'Every migration of the session is kept, also one stopped with Ctrl+C (Get-VfioMigration):'
Show (Get-VfioMigration | Select-Object Source, Destination, Status, Iterations, Downtime, ErrorId)
Get-VfioContainer | Remove-VfioContainer -Confirm:$false

Show-Step 'The mtty driver against the kernel''s contract (Test-VfioDevice, docs/conformance.md)'
$null = New-VfioContainer -Device 36e5c7cc-4871-4d03-91da-44479a60a911
$conformance = Test-VfioDevice 36e5c7cc-4871-4d03-91da-44479a60a911 -WarningAction SilentlyContinue
($conformance | Out-String).TrimEnd() | Write-Host
Show ($conformance.Areas | Select-Object Area, Passed, Failed, Skipped)
Get-VfioContainer | Remove-VfioContainer -Confirm:$false

Show-Step 'Pictures'
Write-Host "The demo's pictures are in $pictures`:"
Get-ChildItem $pictures -Filter *.png | ForEach-Object { Write-Host "  $($_.FullName)" }

Show-Step 'Help'
Write-Host (Get-Help Get-VfioGroup).Synopsis
Disconnect-VfioHost
Write-Host ''
Write-Host 'Demo finished.'
