#requires -Version 7.4
<#
.SYNOPSIS
    Generates the module's MAML help (VfioMigration.dll-Help.xml) from docs/*.md.
.DESCRIPTION
    PlatyPS is not available here, so the project generates MAML itself: synopsis, description,
    examples, parameter descriptions, inputs, outputs, notes and links come from the markdown; syntax
    and parameter metadata (type, position, pipeline input, mandatory, accepted values) come from the
    loaded cmdlet, so they cannot drift from the code. Get-Help prints SYNTAX only from MAML, so every
    parameter set is written, with -WhatIf/-Confirm where the cmdlet supports them.
#>
param(
    [Parameter(Mandatory)] [string] $DocsPath,
    [Parameter(Mandatory)] [string] $ModuleManifest,
    [Parameter(Mandatory)] [string] $OutFile
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'MarkdownHelp.psm1') -Force
$module = Import-Module $ModuleManifest -PassThru -Force
$engineParameters = [System.Management.Automation.Cmdlet]::CommonParameters + 'UseTransaction'

function Esc([string] $s) { [System.Security.SecurityElement]::Escape($s) }
function Para([string[]] $paragraphs) { ($paragraphs | ForEach-Object { "<maml:para>$(Esc $_)</maml:para>" }) -join '' }

function Get-PipelineText($meta) {
    if ($meta.ValueFromPipeline -and $meta.ValueFromPipelineByPropertyName) { 'True (ByPropertyName, ByValue)' }
    elseif ($meta.ValueFromPipeline) { 'True (ByValue)' }
    elseif ($meta.ValueFromPipelineByPropertyName) { 'True (ByPropertyName)' }
    else { 'False' }
}

function Get-TypeName([type] $t) {
    if ($t -eq [System.Management.Automation.SwitchParameter]) { return 'SwitchParameter' }
    return $t.Name
}

function Get-ParameterXml($parameter, $meta, [hashtable] $descriptions, [hashtable] $defaults) {
    $name = $parameter.Name
    $type = Get-TypeName $parameter.ParameterType
    $position = if ($meta -and $meta.Position -ge 0) { $meta.Position } else { 'named' }
    $required = if ($meta) { $meta.IsMandatory.ToString().ToLowerInvariant() } else { 'false' }
    $aliases = if ($parameter.Aliases.Count) { $parameter.Aliases -join ', ' } else { 'none' }
    $globbing = [bool]($parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
    $set = $parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateSetAttribute] } | Select-Object -First 1
    $value = ''
    if ($type -ne 'SwitchParameter') {
        $value = "<command:parameterValue required=`"true`" variableLength=`"false`">$(Esc $type)</command:parameterValue>"
        if ($set) {
            $value += '<command:parameterValueGroup>' + (($set.ValidValues | ForEach-Object { "<command:parameterValue required=`"false`" variableLength=`"false`">$(Esc $_)</command:parameterValue>" }) -join '') + '</command:parameterValueGroup>'
        }
    }
    $desc = if ($descriptions.ContainsKey($name)) { Para $descriptions[$name] } else { '' }
    $default = if ($defaults.ContainsKey($name)) { $defaults[$name] } else { 'None' }
    "<command:parameter required=`"$required`" variableLength=`"true`" globbing=`"$($globbing.ToString().ToLowerInvariant())`" pipelineInput=`"$(Get-PipelineText $meta)`" position=`"$position`" aliases=`"$(Esc $aliases)`"><maml:name>$name</maml:name><maml:description>$desc</maml:description>$value<dev:type><maml:name>$(Esc $type)</maml:name><maml:uri /></dev:type><dev:defaultValue>$(Esc $default)</dev:defaultValue></command:parameter>"
}

$sb = [System.Text.StringBuilder]::new()
[void]$sb.AppendLine('<?xml version="1.0" encoding="utf-8"?>')
[void]$sb.AppendLine('<helpItems schema="maml" xmlns="http://msh">')
$count = 0
foreach ($file in Get-DocumentedCommands $DocsPath) {
    $doc = Read-HelpMarkdown $file.FullName
    $cmd = Get-Command $doc.Title -Module $module.Name -ErrorAction Stop
    $verb, $noun = $cmd.Name -split '-', 2
    $descriptions = @{}
    $defaults = @{}
    foreach ($h in Split-Subsections $doc.Sections['PARAMETERS']) {
        $n = $h.Name.TrimStart('-')
        $descriptions[$n] = @(Get-Paragraphs $h.Body)
        if ($h.Body -match '(?m)^Default value:\s*(.+)$') { $defaults[$n] = $Matches[1].Trim() }
    }

    [void]$sb.AppendLine('<command:command xmlns:maml="http://schemas.microsoft.com/maml/2004/10" xmlns:command="http://schemas.microsoft.com/maml/dev/command/2004/10" xmlns:dev="http://schemas.microsoft.com/maml/dev/2004/10">')
    [void]$sb.AppendLine("<command:details><command:name>$($cmd.Name)</command:name><command:verb>$verb</command:verb><command:noun>$noun</command:noun><maml:description>$(Para @(Get-Paragraphs $doc.Sections['SYNOPSIS']))</maml:description></command:details>")
    [void]$sb.AppendLine("<maml:description>$(Para @(Get-Paragraphs $doc.Sections['DESCRIPTION']))</maml:description>")

    [void]$sb.Append('<command:syntax>')
    foreach ($set in $cmd.ParameterSets) {
        [void]$sb.Append("<command:syntaxItem><maml:name>$($cmd.Name)</maml:name>")
        foreach ($sp in $set.Parameters | Where-Object Name -NotIn $engineParameters) {
            [void]$sb.Append((Get-ParameterXml $cmd.Parameters[$sp.Name] $sp $descriptions $defaults))
        }
        [void]$sb.Append('</command:syntaxItem>')
    }
    [void]$sb.AppendLine('</command:syntax>')

    [void]$sb.Append('<command:parameters>')
    foreach ($p in $cmd.Parameters.Values | Where-Object Name -NotIn $engineParameters | Sort-Object Name) {
        $meta = $cmd.ParameterSets.Parameters | Where-Object Name -EQ $p.Name | Select-Object -First 1
        [void]$sb.Append((Get-ParameterXml $p $meta $descriptions $defaults))
    }
    [void]$sb.AppendLine('</command:parameters>')

    foreach ($io in @(@('INPUTS', 'inputTypes', 'inputType'), @('OUTPUTS', 'returnValues', 'returnValue'))) {
        [void]$sb.Append("<command:$($io[1])>")
        foreach ($h in Split-Subsections $doc.Sections[$io[0]]) {
            [void]$sb.Append("<command:$($io[2])><dev:type><maml:name>$(Esc $h.Name)</maml:name></dev:type><maml:description>$(Para @(Get-Paragraphs $h.Body))</maml:description></command:$($io[2])>")
        }
        [void]$sb.AppendLine("</command:$($io[1])>")
    }
    if ($doc.Sections['NOTES']) {
        [void]$sb.AppendLine("<maml:alertSet><maml:alert>$(Para @(Get-Paragraphs $doc.Sections['NOTES']))</maml:alert></maml:alertSet>")
    }

    [void]$sb.Append('<command:examples>')
    foreach ($ex in Split-Subsections $doc.Sections['EXAMPLES']) {
        $code = @(Get-CodeBlocks $ex.Body) -join "`n"
        [void]$sb.Append("<command:example><maml:title>--------- $(Esc $ex.Name) ---------</maml:title><dev:code>$(Esc $code)</dev:code><dev:remarks>$(Para @(Get-Paragraphs $ex.Body))</dev:remarks></command:example>")
    }
    [void]$sb.AppendLine('</command:examples>')

    [void]$sb.Append('<command:relatedLinks>')
    foreach ($m in [regex]::Matches([string]$doc.Sections['RELATED LINKS'], '\[([^\]]+)\]\(([^)]*)\)')) {
        $uri = if ($m.Groups[2].Value -match '^https?://') { $m.Groups[2].Value } else { '' }
        [void]$sb.Append("<maml:navigationLink><maml:linkText>$(Esc $m.Groups[1].Value)</maml:linkText><maml:uri>$(Esc $uri)</maml:uri></maml:navigationLink>")
    }
    [void]$sb.AppendLine('</command:relatedLinks>')
    [void]$sb.AppendLine('</command:command>')
    $count++
}
[void]$sb.AppendLine('</helpItems>')
$null = New-Item -ItemType Directory -Force (Split-Path $OutFile)
[System.IO.File]::WriteAllText($OutFile, $sb.ToString(), [System.Text.UTF8Encoding]::new($false))
# Well-formed or fail here, not at Get-Help time.
$null = [xml](Get-Content $OutFile -Raw)
Write-Host "wrote $OutFile ($count cmdlets)"
