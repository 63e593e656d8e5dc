# Every example in docs/<Cmdlet>.md runs, as written, against the simulated host: the help a user reads
# is code that works.
BeforeDiscovery {
    Import-Module "$PSScriptRoot/../../src/BuildTools/MarkdownHelp.psm1" -Force
    $script:Examples = foreach ($file in Get-DocumentedCommands "$PSScriptRoot/../../docs") {
        $doc = Read-HelpMarkdown $file.FullName
        foreach ($ex in Split-Subsections $doc.Sections['EXAMPLES']) {
            @{ Command = $doc.Title; Title = $ex.Name; Code = (@(Get-CodeBlocks $ex.Body 'powershell') -join "`n") }
        }
    }
}

BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
}
AfterAll { Disconnect-VfioHost }

Describe '<Command>: <Title>' -ForEach $Examples {
    It 'runs without an error on the simulated host' {
        $Code | Should -Not -BeNullOrEmpty
        Connect-VfioHost -Simulated | Out-Null
        Push-Location $TestDrive
        try {
            # Errors an example provokes on purpose carry their own -ErrorAction; any other error stops it.
            $run = [scriptblock]::Create("`$ErrorActionPreference = 'Stop'`n" + $Code)
            { $null = & $run | Out-String } | Should -Not -Throw
        }
        finally {
            Pop-Location
            Disconnect-VfioHost
        }
    }
}
