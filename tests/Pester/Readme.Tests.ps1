# The README as a new user meets it: its first PowerShell block, pasted into a fresh pwsh on a machine
# without VFIO (this one), runs top to bottom without an error and leaves what it says it leaves.
BeforeAll {
    $script:Root = Resolve-Path "$PSScriptRoot/../.."
    $readme = Get-Content "$Root/README.md" -Raw
    $script:FirstBlock = [regex]::Match($readme, '(?s)```powershell\r?\n(.*?)```').Groups[1].Value
}

Describe 'The README''s first block' {
    It 'starts on the simulated host and says how to leave that line out' {
        ($FirstBlock -split "`n")[0] | Should -Match '^Connect-VfioHost -Simulated\b'
        Get-Content "$Root/README.md" -Raw | Should -Match 'leave out the first line'
    }

    It 'runs as written in a fresh pwsh, non-interactive, without an error' {
        $work = New-Item -ItemType Directory (Join-Path $TestDrive 'first-block')
        $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$Root/VfioMigration.psd1'
$FirstBlock
[pscustomobject]@{ Csv = @(Import-Csv ./dirty.csv).Count; State = (Get-VfioMigrationState 0000:3b:00.1).State.ToString(); File = (Test-Path ./nic.state) } | ConvertTo-Json -Compress
"@
        $file = Join-Path $work 'first-block.ps1'
        Set-Content $file $script
        # dotnet finds the pwsh tool from the checkout; the block itself runs in a folder of its own.
        Push-Location $Root
        try { $out = & dotnet pwsh -NoProfile -NonInteractive -WorkingDirectory $work -File $file 2>&1 }
        finally { Pop-Location }
        $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
        $json = $out | Where-Object { "$_".StartsWith('{') } | Select-Object -Last 1
        $json | Should -Not -BeNullOrEmpty -Because ($out -join "`n")
        $r = $json | ConvertFrom-Json
        $r.Csv | Should -BeGreaterThan 0
        $r.State | Should -Be 'Running'
        $r.File | Should -BeTrue
    }
}
