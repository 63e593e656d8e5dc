#requires -Version 7.4
<#
.SYNOPSIS
    Fails when docs/*.md and the module's cmdlets disagree.
.DESCRIPTION
    Checks, for every exported cmdlet: a page docs/<Verb-Noun>.md exists; its title names the cmdlet;
    SYNOPSIS and at least one example are present; every parameter in code has a '### -Name' entry and
    every entry has a parameter (MISSING/STALE); each syntax line of Get-Command -Syntax appears in the
    page's SYNTAX blocks (compared without case or spacing); the front matter names the MAML file.
    Exits with the number of problems found.
#>
param(
    [Parameter(Mandatory)] [string] $DocsPath,
    [Parameter(Mandatory)] [string] $ModuleManifest
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'MarkdownHelp.psm1') -Force
$module = Import-Module $ModuleManifest -PassThru -Force
$engine = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
$problems = [System.Collections.Generic.List[string]]::new()
function Normalize([string] $s) { ($s -replace '\s+', ' ').Trim().ToLowerInvariant() }

$pages = @{}
foreach ($file in Get-DocumentedCommands $DocsPath) { $pages[$file.BaseName] = $file }

foreach ($cmd in Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name) {
    $name = $cmd.Name
    if (-not $pages.ContainsKey($name)) { $problems.Add("NOPAGE   $name has no docs/$name.md"); continue }
    $doc = Read-HelpMarkdown $pages[$name].FullName
    if ($doc.Title -ne $name) { $problems.Add("TITLE    docs/$name.md is titled '$($doc.Title)'") }
    if ($doc.Front -notmatch '(?m)^external help file:\s*VfioMigration\.dll-Help\.xml\s*$') { $problems.Add("FRONT    docs/$name.md does not name VfioMigration.dll-Help.xml") }
    if (-not $doc.Sections['SYNOPSIS']) { $problems.Add("SYNOPSIS docs/$name.md has no synopsis") }
    if (-not @(Split-Subsections $doc.Sections['EXAMPLES']).Count) { $problems.Add("EXAMPLE  docs/$name.md has no example") }

    $docParams = @(Split-Subsections $doc.Sections['PARAMETERS'] | Where-Object Name -Like '-*' | ForEach-Object { $_.Name.TrimStart('-') })
    $codeParams = @($cmd.Parameters.Keys | Where-Object { $_ -notin $engine -or $_ -in 'WhatIf', 'Confirm' })
    foreach ($p in $codeParams) { if ($p -notin $docParams) { $problems.Add("MISSING  $name -$p is not documented") } }
    foreach ($p in $docParams) { if ($p -notin $codeParams) { $problems.Add("STALE    $name -$p is documented but not a parameter") } }

    $docSyntax = @(Get-CodeBlocks $doc.Sections['SYNTAX'] | ForEach-Object { Normalize $_ })
    foreach ($line in ((Get-Command $name -Syntax) -split '\r?\n' | Where-Object { $_.Trim() })) {
        if ((Normalize $line) -notin $docSyntax) { $problems.Add("SYNTAX   ${name}: code has '$($line.Trim())', docs do not") }
    }
    if ($docSyntax.Count -ne $cmd.ParameterSets.Count) { $problems.Add("SYNTAX   $name has $($cmd.ParameterSets.Count) parameter set(s), docs show $($docSyntax.Count)") }
}
foreach ($page in $pages.Keys) {
    if (-not (Get-Command $page -Module $module.Name -ErrorAction Ignore)) { $problems.Add("ORPHAN   docs/$page.md documents no cmdlet of the module") }
}
$problems | ForEach-Object { Write-Host $_ }
Write-Host "docs check: $($problems.Count) problem(s)"
exit $problems.Count
