#requires -Version 7.4
<#
.SYNOPSIS
    Fails when docs/*.md and the module's cmdlets disagree.
.DESCRIPTION
    Checks, for every exported cmdlet: a page docs/<Verb-Noun>.md exists; its title names the cmdlet;
    SYNOPSIS and at least one example are present; every parameter in code has a '### -Name' entry and
    every entry has a parameter (MISSING/STALE); each syntax line of Get-Command -Syntax appears in the
    page's SYNTAX blocks (compared without case or spacing); the front matter names the MAML file.

    And that help points only at what the installed package has. The help sources are the cmdlet pages
    and docs/about_*.md; the package ships every docs/*.md page in a docs/ folder beside its manifest
    (Get-PackagedPages). So, in their prose (code blocks aside):
      DOCREF   a page is named as docs/<page>.md, and it is a page the package ships;
      BAREREF  never as a bare <page>.md (nor as a markdown link, which help prints as it is);
      REPOREF  no other file of the repository is named (src/, tests/, .ci/, README.md, build.ps1);
    and in RELATED LINKS (RELATED), each entry is [Name](Name.md) with Name a cmdlet of the module or a
    help topic (the MAML keeps the link text only), or a link to an http(s) address.
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

# Help names only what the package ships (see .DESCRIPTION).
$shipped = @(Get-PackagedPages $DocsPath | ForEach-Object Name)
$cmdlets = @(Get-Command -Module $module.Name -CommandType Cmdlet | ForEach-Object Name)
$topics = @(Get-HelpTopicPages $DocsPath | ForEach-Object BaseName)
foreach ($file in @(Get-DocumentedCommands $DocsPath) + @(Get-HelpTopicPages $DocsPath)) {
    $doc = Read-HelpMarkdown $file.FullName
    $where = "docs/$($file.Name)"
    foreach ($section in $doc.Sections.Keys) {
        $body = [string]$doc.Sections[$section]
        if ($section -eq 'RELATED LINKS') {
            foreach ($line in ($body -split '\n' | Where-Object { $_.Trim() })) {
                if ($line -notmatch '^\s*\[([^\]]+)\]\(([^)]*)\)\s*$') { $problems.Add("RELATED  ${where}: '$($line.Trim())' is not a link [Name](Name.md)"); continue }
                $text, $target = $Matches[1], $Matches[2]
                if ($target -match '^https?://') { continue }
                if ($text -notin $cmdlets -and $text -notin $topics) {
                    $problems.Add("RELATED  ${where}: '$text' is neither a cmdlet of the module nor a help topic; Get-Help shows only the name (link to an http(s) address instead)")
                }
                elseif ($target -ne "$text.md") { $problems.Add("RELATED  ${where}: [$text]($target) should link $text.md") }
            }
            continue
        }
        $prose = (@(Get-Paragraphs $body) -join "`n")
        foreach ($m in [regex]::Matches($prose, '(?<![\w./-])docs/([\w-]+(?:\.\w+)*)')) {
            if ($m.Groups[1].Value -notin $shipped) { $problems.Add("DOCREF   ${where} ($section) names $($m.Value), which is not among the pages the package ships (docs/*.md, Get-PackagedPages)") }
        }
        foreach ($m in [regex]::Matches($prose, '(?<![\w/-])(?!README\.md)[\w-]+\.md\b')) {
            $problems.Add("BAREREF  ${where} ($section) names $($m.Value): name a page as docs/<page>.md, the path in the installed module's folder")
        }
        foreach ($m in [regex]::Matches($prose, '(?<![\w./-])(?:(?:src|tests|\.ci)/[\w./-]*|README\.md|build\.ps1)')) {
            $problems.Add("REPOREF  ${where} ($section) names $($m.Value), which the package does not ship")
        }
    }
}
$problems | ForEach-Object { Write-Host $_ }
Write-Host "docs check: $($problems.Count) problem(s)"
exit $problems.Count
