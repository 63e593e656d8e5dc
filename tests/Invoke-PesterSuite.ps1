#requires -Version 7.4
<#
.SYNOPSIS
    Runs a Pester suite and writes its counts to <ResultsDir>/pester.summary.json (and JUnit XML).
.DESCRIPTION
    Pester's console summary is not the form CI reads, and its exit code is 0 even when tests fail, so
    build.ps1 reads the counts from this file. Failures outside an It (a file that does not parse, a
    BeforeAll/AfterAll that throws) count as failures too.
#>
param(
    [Parameter(Mandatory)] [string] $PesterModule,
    [Parameter(Mandatory)] [string] $Path,
    [Parameter(Mandatory)] [string] $ResultsDir,
    [string] $Name = 'pester'
)
$ErrorActionPreference = 'Stop'
$summaryFile = Join-Path $ResultsDir "$Name.summary.json"
function Write-Summary($passed, $failed, $skipped) {
    [ordered]@{ passed = $passed; failed = $failed; skipped = $skipped } | ConvertTo-Json | Set-Content $summaryFile
}
Write-Summary 0 1 0   # replaced below; stays if Pester cannot even start

Import-Module $PesterModule -Force
$cfg = New-PesterConfiguration
$cfg.Run.Path = $Path
$cfg.Run.PassThru = $true
$cfg.Output.Verbosity = 'Normal'
$cfg.Output.RenderMode = 'Plaintext'
$cfg.TestResult.Enabled = $true
$cfg.TestResult.OutputFormat = 'JUnitXml'
$cfg.TestResult.OutputPath = Join-Path $ResultsDir "$Name.junit.xml"
$r = Invoke-Pester -Configuration $cfg
if (-not $r) { exit 1 }
# A BeforeAll failure already marks its tests failed; an AfterAll failure or a broken file does not.
$blockOnly = @($r.FailedBlocks | Where-Object { -not @($_.Tests | Where-Object Result -EQ 'Failed').Count }).Count
$failed = $r.FailedCount + $r.FailedContainersCount + $blockOnly
Write-Summary $r.PassedCount $failed $r.SkippedCount
exit ([int]($failed -gt 0))
