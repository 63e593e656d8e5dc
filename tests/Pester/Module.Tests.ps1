# The packaged module as a user meets it: the manifest loads, exports what it says, and every cmdlet
# has full help generated from docs/.
BeforeAll {
    $script:Root = Resolve-Path "$PSScriptRoot/../.."
    Import-Module "$Root/VfioMigration.psd1" -Force
    $script:Manifest = Import-PowerShellDataFile "$Root/VfioMigration.psd1"
}

Describe 'Module manifest' {
    It 'loads from the checkout and exports exactly the manifest''s cmdlets' {
        $exported = (Get-Command -Module VfioMigration -CommandType Cmdlet).Name | Sort-Object
        $exported | Should -Be ($Manifest.CmdletsToExport | Sort-Object)
    }

    It 'targets PowerShell 7.4 Core' {
        $Manifest.PowerShellVersion | Should -Be '7.4'
        $Manifest.CompatiblePSEditions | Should -Be @('Core')
    }

    It 'loads the built copy in module/ as well' {
        $m = Import-Module "$Root/module/VfioMigration.psd1" -PassThru -Force
        $m.ExportedCmdlets.Keys | Should -Contain 'Get-VfioGroup'
        Import-Module "$Root/VfioMigration.psd1" -Force
    }

    # The runtime says which methods its JIT compiled (DOTNET_JitStdOutFile). Precompiled code that this
    # pwsh's runtime does not accept (code compiled for .NET 8 under .NET 10 is refused whole) shows up as
    # the module's plain methods compiled at Tier0; accepted, they are not compiled at all.
    It 'runs its precompiled (ReadyToRun) code in this pwsh on x64' -Skip:([Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture -ne 'X64') {
        $log = Join-Path ([IO.Path]::GetTempPath()) "vfiomig-jit-$PID.txt"
        $script = "Import-Module '$Root/VfioMigration.psd1'; Connect-VfioHost -Simulated | Out-Null; `$c = New-VfioContainer -Group 2; " +
            "New-VfioDmaMapping -Iova 0x0 -Size 64MB | Out-Null; `$c | Start-DirtyTracking; (Get-DirtyBitmap).Pages"
        $env:DOTNET_JitStdOutFile = $log; $env:DOTNET_JitDisasmSummary = '1'
        try { $pages = & dotnet pwsh -NoProfile -NonInteractive -Command $script }
        finally { Remove-Item Env:DOTNET_JitStdOutFile, Env:DOTNET_JitDisasmSummary }
        $pages | Should -Be 16384
        $jitted = Get-Content $log | Where-Object { $_ -match 'JIT compiled VfioMigration\.Core\.' }
        Remove-Item $log
        # Methods the first query ran, none generic, none vectorised: ReadyToRun compiles all of them.
        foreach ($method in 'DirtyBitmapPlan:PlanSorted', 'VfioContainer:ResolveRange', 'Type1Iommu:IovaDirtyBitmap', 'UserDirtyBitmap:Update') {
            $jitted | Where-Object { $_ -match [regex]::Escape($method) } | Should -BeNullOrEmpty -Because "$method is precompiled"
        }
    }

    # What ReadyToRun cannot carry (the cmdlets derive from PowerShell's types) is compiled on a background
    # thread at import, before the first query asks for it; VFIOMIGRATION_NO_WARMUP=1 turns that off.
    It 'compiles its cmdlets in the background at import, before any of them runs' {
        $log = Join-Path ([IO.Path]::GetTempPath()) "vfiomig-warm-$PID.txt"
        $script = "Import-Module '$Root/VfioMigration.psd1'; Start-Sleep -Seconds 4; 'imported'"
        $compiled = foreach ($warm in '0', '1') {
            $env:DOTNET_JitStdOutFile = $log; $env:DOTNET_JitDisasmSummary = '1'; $env:VFIOMIGRATION_NO_WARMUP = $warm
            try { & dotnet pwsh -NoProfile -NonInteractive -Command $script | Should -Be 'imported' }
            finally { Remove-Item Env:DOTNET_JitStdOutFile, Env:DOTNET_JitDisasmSummary, Env:VFIOMIGRATION_NO_WARMUP }
            @(Get-Content $log | Where-Object { $_ -match 'JIT compiled VfioMigration\.Commands\.GetDirtyBitmapCommand:ProcessRecord' }).Count
            Remove-Item $log
        }
        $compiled[0] | Should -BeGreaterThan 0 -Because 'the warm-up compiles Get-DirtyBitmap before it is called'
        $compiled[1] | Should -Be 0 -Because 'without the warm-up nothing calls Get-DirtyBitmap in that session'
    }
}

Describe 'Help for <_>' -ForEach @((Import-PowerShellDataFile "$PSScriptRoot/../../VfioMigration.psd1").CmdletsToExport) {
    BeforeAll {
        $script:Help = Get-Help $_ -Full
        $script:Command = Get-Command $_
    }

    It 'has a synopsis written in docs/, not the generated stub' {
        $Help.Synopsis | Should -Not -BeNullOrEmpty
        $Help.Synopsis | Should -Not -Match '^\s*\w+-\w+ \['
    }

    It 'has a description and at least one example' {
        ($Help.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty
        @($Help.Examples.Example).Count | Should -BeGreaterThan 0
    }

    It 'shows one syntax entry per parameter set' {
        @($Help.Syntax.SyntaxItem).Count | Should -Be $Command.ParameterSets.Count
    }

    It 'describes every parameter' {
        $engine = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        foreach ($p in $Command.Parameters.Keys | Where-Object { $_ -notin $engine -or $_ -in 'WhatIf', 'Confirm' }) {
            $ph = $Help.Parameters.Parameter | Where-Object Name -EQ $p
            $ph | Should -Not -BeNullOrEmpty -Because "-$p must be in the help"
            ($ph.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "-$p needs a description"
        }
    }
}

Describe 'About help' {
    It 'finds about_VfioMigration in the built module' {
        Import-Module "$Root/module/VfioMigration.psd1" -Force
        (Get-Help about_VfioMigration | Out-String) | Should -Match 'one process only|one process'
        Import-Module "$Root/VfioMigration.psd1" -Force
    }
}

Describe 'Error ids' {
    It 'every category of the registry is a PowerShell ErrorCategory, and errors carry it' {
        foreach ($e in [VfioMigration.Core.ErrorIds]::All) {
            [System.Enum]::IsDefined([System.Management.Automation.ErrorCategory], $e.Kind.ToString()) | Should -BeTrue -Because "$($e.Id) is $($e.Kind)"
        }
        Connect-VfioHost -Simulated | Out-Null
        try {
            Get-DirtyBitmap -ContainerId 42 -ErrorVariable err -ErrorAction SilentlyContinue
            $err[0].FullyQualifiedErrorId | Should -Match '^ContainerNotFound,'
            $err[0].CategoryInfo.Category | Should -Be ([VfioMigration.Core.ErrorIds]::Find('ContainerNotFound').Kind.ToString())
        }
        finally { Disconnect-VfioHost }
    }
}
