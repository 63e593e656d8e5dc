# Reads the cmdlet pages in docs/ (platyPS markdown schema 2.0.0) for the help generator and the
# docs-to-code check. Prose comes from the markdown; facts (syntax, parameter metadata) come from code.

function Read-HelpMarkdown {
    <# Splits one docs/<Verb-Noun>.md into front matter, title and its '## ' sections. #>
    param([Parameter(Mandatory)] [string] $Path)
    $text = (Get-Content $Path -Raw) -replace "`r`n", "`n"
    $doc = [ordered]@{ Path = $Path; Front = ''; Title = ''; Sections = [ordered]@{} }
    if ($text -match '(?s)\A---\n(.*?)\n---\n') {
        $doc.Front = $Matches[1]
        $text = $text.Substring($Matches[0].Length)
    }
    $current = $null
    $inFence = $false
    foreach ($line in $text -split "`n") {
        if ($line -match '^```') { $inFence = -not $inFence }
        if (-not $inFence -and $line -match '^# (.+)$' -and -not $doc.Title) { $doc.Title = $Matches[1].Trim(); continue }
        if (-not $inFence -and $line -match '^## (.+)$') {
            $current = $Matches[1].Trim().ToUpperInvariant()
            $doc.Sections[$current] = [System.Collections.Generic.List[string]]::new()
            continue
        }
        if ($current) { $doc.Sections[$current].Add($line) }
    }
    foreach ($k in @($doc.Sections.Keys)) { $doc.Sections[$k] = ($doc.Sections[$k] -join "`n").Trim() }
    [pscustomobject]$doc
}

function Split-Subsections {
    <# The '### ' subsections of a section body, as Name/Body pairs (fenced code is kept whole). #>
    param([string] $Body)
    $items = [System.Collections.Generic.List[object]]::new()
    $current = $null
    $inFence = $false
    foreach ($line in ($Body -split "`n")) {
        if ($line -match '^```') { $inFence = -not $inFence }
        if (-not $inFence -and $line -match '^### (.+)$') {
            $current = [pscustomobject]@{ Name = $Matches[1].Trim(); Lines = [System.Collections.Generic.List[string]]::new() }
            $items.Add($current)
            continue
        }
        if ($current) { $current.Lines.Add($line) }
    }
    foreach ($i in $items) { [pscustomobject]@{ Name = $i.Name; Body = ($i.Lines -join "`n").Trim() } }
}

function Get-Paragraphs {
    <# Paragraphs of prose, fenced code removed, lines joined, markdown emphasis and code ticks dropped. #>
    param([string] $Text)
    $t = [regex]::Replace($Text, '(?s)```.*?```', '')
    foreach ($p in ($t -split '\n\s*\n')) {
        $joined = (($p -split '\n') | ForEach-Object { $_.Trim() }) -join ' '
        $joined = $joined -replace '`([^`]*)`', '$1' -replace '\*\*([^*]+)\*\*', '$1'
        $joined = $joined.Trim()
        if ($joined) { $joined }
    }
}

function Get-CodeBlocks {
    <# The contents of the fenced code blocks in a text, optionally only those of one language. #>
    param([string] $Text, [string] $Language)
    foreach ($m in [regex]::Matches($Text, '(?s)```([A-Za-z]*)\n(.*?)```')) {
        if (-not $Language -or $m.Groups[1].Value -eq $Language) { $m.Groups[2].Value.TrimEnd() }
    }
}

function Get-DocumentedCommands {
    <# Every docs/*.md page that documents a cmdlet (its file name is Verb-Noun.md). #>
    param([Parameter(Mandatory)] [string] $DocsPath)
    Get-ChildItem $DocsPath -Filter '*-*.md' | Where-Object { $_.BaseName -cmatch '^[A-Z][a-z]+-[A-Z][A-Za-z]+$' } | Sort-Object Name
}

function Get-HelpTopicPages {
    <# Every docs/about_*.md page: each becomes an about topic (en-US/about_*.help.txt) of the module. #>
    param([Parameter(Mandatory)] [string] $DocsPath)
    Get-ChildItem $DocsPath -Filter 'about_*.md' -File | Sort-Object Name
}

function Get-PackagedPages {
    <#
    The docs/*.md pages the package ships, in a docs/ folder beside its manifest: all of them. Help text
    names a page as docs/<page>.md, which is then a path in the installed module's folder (and, in a
    checkout, beside the root manifest), and the pages' links to each other keep working. The Package
    task (New-ModulePackage.ps1) copies this list and the docs check (Test-Docs.ps1) holds help to it.
    #>
    param([Parameter(Mandatory)] [string] $DocsPath)
    Get-ChildItem $DocsPath -Filter '*.md' -File | Sort-Object Name
}

Export-ModuleMember -Function Read-HelpMarkdown, Split-Subsections, Get-Paragraphs, Get-CodeBlocks, Get-DocumentedCommands,
    Get-HelpTopicPages, Get-PackagedPages
