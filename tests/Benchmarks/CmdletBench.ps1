#requires -Version 7.4
<#
.SYNOPSIS
    P6: Get-DirtyBitmap end to end, through the cmdlet, on the simulated host (build.ps1 -Task Bench).
.DESCRIPTION
    One pwsh process, fresh: a container with one device behind the IOMMU (every mapped page reads dirty on
    every read) and one mapping of 1 TiB, 1 GiB, 16 GiB and 256 GiB in turn. For each size: the first query
    of the process (1 TiB only: what a session's first query costs), the median of repeated queries with the
    result kept (assigned, its DirtyPages read) and dropped (to Out-Null), the growth of the process's
    resident memory over those queries (VmHWM after /proc/self/clear_refs, against VmRSS before), and the
    -Granularity 2MB and -AsRange paths. At 1 TiB, the C reference that counts and writes the runs of the
    same 32 MiB (tests/Benchmarks/bitmap_ref.c through P/Invoke, in this process) is timed interleaved with
    the cmdlet. Prints "P6 ..." lines.
#>
param(
    [Parameter(Mandatory)] [string] $Module,
    [Parameter(Mandatory)] [string] $ReferenceLibrary,
    [int] $Repetitions = 7
)
$ErrorActionPreference = 'Stop'
$clock = [Diagnostics.Stopwatch]::new()
function Time([scriptblock] $Action) { $clock.Restart(); $null = & $Action; $clock.Stop(); $clock.Elapsed.TotalMilliseconds }
function Median([double[]] $v) { ($v | Sort-Object)[[int][math]::Floor($v.Count / 2)] }
function Kib([string] $field) { [long]((Get-Content /proc/self/status | Where-Object { $_ -like "${field}:*" }) -replace '\D', '') }

$first = [Diagnostics.Stopwatch]::StartNew()
Import-Module $Module
$config = Join-Path ([IO.Path]::GetTempPath()) "vfiomigration-bench-$PID.psd1"
Set-Content $config @'
@{
    Name = 'P6 bench host'
    # A 48-bit IOMMU (an AMD or a recent Intel one): room for a 1 TiB mapping.
    IovaRanges = @(@{ Start = 0x0; End = 0xffffffffffff })
    Groups = @(@{ Group = 2; Devices = @(@{ Name = '0000:00:02.0'; Bus = 'pci' }) })
}
'@
Connect-VfioHost -Simulated -Configuration $config | Out-Null
Remove-Item $config

Add-Type -TypeDefinition @"
using System.Runtime.InteropServices;
public static class BitmapReference
{
    [DllImport("$ReferenceLibrary")]
    public static extern ulong count_and_runs(ulong[] words, ulong nWords, ulong[] runStart, ulong[] runLength, out ulong dirty);
}
"@

Write-Host ("P6: load average {0}; {1} repetitions, medians" -f (Get-Content /proc/loadavg), $Repetitions)
$firstDone = $false
# 1 TiB first: its first query is the session's first (what the issue's 'first query' means).
foreach ($size in 1TB, 1GB, 16GB, 256GB) {
    $c = New-VfioContainer -Group 2
    $null = New-VfioDmaMapping -Iova 0x0 -Size $size
    $c | Start-DirtyTracking
    $firstMs = $null
    if (-not $firstDone) {
        # The first query of the process, and what it took to get there (import, host, container).
        $setup = $first.Elapsed.TotalMilliseconds
        $firstMs = Time { $b = Get-DirtyBitmap; $b.DirtyPages }
        $firstDone = $true
    }
    $kept = [double[]]::new($Repetitions); $dropped = [double[]]::new($Repetitions); $ref = [double[]]::new($Repetitions)
    $words = $null
    if ($size -eq 1TB) {
        $words = [ulong[]]::new(32MB / 8); [Array]::Fill($words, [ulong]::MaxValue)
        $starts = [ulong[]]::new(1); $lengths = [ulong[]]::new(1)
    }
    [GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
    $rssBefore = Kib VmRSS
    # Resets VmHWM to the current RSS (.NET truncates a file it writes, which /proc refuses: a shell writes).
    /bin/sh -c "echo 5 > /proc/$PID/clear_refs"
    $b = $null
    for ($i = 0; $i -lt $Repetitions; $i++) {
        $kept[$i] = Time { $b = Get-DirtyBitmap; $b.DirtyPages }
        $dropped[$i] = Time { Get-DirtyBitmap | Out-Null }
        if ($words) { $ref[$i] = Time { [BitmapReference]::count_and_runs($words, [ulong]$words.Length, $starts, $lengths, [ref]$null) } }
    }
    $growth = (Kib VmHWM) - $rssBefore
    $bitmapKib = $size / 4096 / 8 / 1KB
    $granular = Time { Get-DirtyBitmap -Granularity 2MB | Out-Null }
    $ranges = Time { Get-DirtyBitmap -AsRange | Out-Null }
    $line = 'P6 {0,5} GiB (bitmap {1} KiB): ' -f ($size / 1GB), $bitmapKib
    if ($null -ne $firstMs) { $line += 'first query of the session {0:0.0} ms (after {1:0} ms of import and setup) = {2:0.0}x a repeated one; ' -f $firstMs, $setup, ($firstMs / (Median $kept)) }
    $line += 'repeated kept {0:0.00} ms, dropped {1:0.00} ms; -Granularity 2MB {2:0.00} ms; -AsRange {3:0.00} ms; peak RSS growth {4} KiB = {5:0.00}x the bitmap' -f (Median $kept), (Median $dropped), $granular, $ranges, $growth, ($growth / $bitmapKib)
    if ($words) { $line += '; C count+runs of the same 32 MiB {0:0.00} ms: cmdlet (kept) = {1:0.00}x C' -f (Median $ref), ((Median $kept) / (Median $ref)) }
    Write-Host $line
    $b = $null
    $c | Remove-VfioContainer -Confirm:$false
}
