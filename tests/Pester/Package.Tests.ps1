# The package as a user gets it: laid out from the built module as 'build.ps1 -Task Package' lays it out
# (src/BuildTools/New-ModulePackage.ps1), published to a temporary folder repository, installed with
# Install-PSResource into an isolated HOME and imported by name in a new pwsh outside the checkout
# (src/BuildTools/Test-PackageRoundTrip.ps1, the Package task's own round trip). This process never
# imports the package: only the round trip's two child processes do, and its temporary folders are gone
# at the end whatever happened.
BeforeAll {
    $script:Root = (Resolve-Path "$PSScriptRoot/../..").ProviderPath
    $script:Tools = Join-Path $Root 'src/BuildTools'
    $script:Manifest = Import-PowerShellDataFile (Join-Path $Root 'VfioMigration.psd1')
    $script:Work = Join-Path ([IO.Path]::GetTempPath()) ("vfiomigration-package-" + [guid]::NewGuid().ToString('N').Substring(0, 12))
    $script:Package = & (Join-Path $Tools 'New-ModulePackage.ps1') -Root $Root -Destination (Join-Path $Work "VfioMigration/$($Manifest.ModuleVersion)")
    $script:RoundTrip = & (Join-Path $Tools 'Test-PackageRoundTrip.ps1') -PackagePath $Package 6>$null
}
AfterAll {
    if ($script:Work) { Remove-Item $script:Work -Recurse -Force -ErrorAction SilentlyContinue }
}

Describe 'The package' {
    It 'has the manifest as the only .psd1 of its top folder (the simulated host''s file is in SimulatedHost/)' {
        @(Get-ChildItem $Package -Filter '*.psd1' -File).Name | Should -Be 'VfioMigration.psd1'
        Join-Path $Package 'SimulatedHost/Default.psd1' | Should -Exist
    }

    It 'ships LICENSE and every docs page' {
        Join-Path $Package 'LICENSE' | Should -Exist
        Get-Content (Join-Path $Package 'LICENSE') -TotalCount 3 | Should -Contain 'Copyright (c) VfioMigration contributors'
        $pages = (Get-ChildItem (Join-Path $Root 'docs') -Filter '*.md').Name | Sort-Object
        (Get-ChildItem (Join-Path $Package 'docs') -Filter '*.md').Name | Sort-Object | Should -Be $pages
    }

    It 'carries the pictures'' native libraries for x64 and arm64, and the licences of what they ship' {
        foreach ($arch in 'x64', 'arm64') {
            Join-Path $Package "runtimes/linux-$arch/native/libSkiaSharp.so" | Should -Exist
            Join-Path $Package "runtimes/linux-$arch/native/libHarfBuzzSharp.so" | Should -Exist
        }
        foreach ($l in 'ScottPlot-LICENSE.txt', 'SkiaSharp-LICENSE.txt', 'HarfBuzzSharp-LICENSE.txt', 'DejaVu-fonts-LICENSE.txt') {
            Join-Path $Package "licenses/$l" | Should -Exist
        }
    }

    It 'has gallery metadata: single-word tags, release notes, no empty URIs' {
        $psData = $Manifest.PrivateData.PSData
        $psData.Tags | Should -Contain 'VFIO'
        $psData.Tags | Where-Object { $_ -match '\s' } | Should -BeNullOrEmpty
        $psData.ReleaseNotes | Should -Not -BeNullOrEmpty
        foreach ($key in 'ProjectUri', 'LicenseUri', 'IconUri') {
            if ($psData.ContainsKey($key)) { [uri]::IsWellFormedUriString($psData[$key], 'Absolute') | Should -BeTrue -Because "$key is set, so it must be an address" }
        }
    }
}

Describe 'Publish, install and use' {
    It 'publishes to a folder repository and installs into the isolated HOME' {
        $RoundTrip.Install.Published | Should -Contain "VfioMigration.$($Manifest.ModuleVersion).nupkg"
        $RoundTrip.Install.InstalledLocation | Should -BeLike '*/home/.local/share/powershell/Modules/VfioMigration/*'
        $RoundTrip.Install.Unregistered | Should -BeTrue
    }

    It 'imports VfioMigration by name in a new pwsh outside the checkout' {
        $RoundTrip.Use.ModuleBase | Should -Be $RoundTrip.Install.InstalledLocation
        $RoundTrip.Use.WorkingDirectory | Should -Not -BeLike "$Root*"
        $RoundTrip.Use.Cmdlets | Should -Be $Manifest.CmdletsToExport.Count
    }

    It 'shows the help written in docs/ (Get-Help Get-DirtyBitmap -Full) and the about topic' {
        $RoundTrip.Use.Synopsis | Should -Match 'dirty'
        $RoundTrip.Use.AboutTopic | Should -BeTrue
    }

    It 'connects to the default simulated host found in the installed package, and Get-VfioGroup returns groups' {
        $RoundTrip.Use.HostKind | Should -Be 'Simulated'
        $RoundTrip.Use.Configuration | Should -Be (Join-Path $RoundTrip.Use.ModuleBase 'SimulatedHost/Default.psd1')
        $RoundTrip.Use.Groups | Should -BeGreaterThan 0
        $RoundTrip.Use.GroupType | Should -Not -BeNullOrEmpty
    }

    It 'draws a heatmap after the install, with the native Skia library of the installed package' {
        $RoundTrip.Use.PictureWidth | Should -Be 640
        $RoundTrip.Use.PictureHeight | Should -Be 480
        @($RoundTrip.Use.SkiaLoadedFrom) | Should -HaveCount 1
        @($RoundTrip.Use.SkiaLoadedFrom)[0] | Should -BeLike "$($RoundTrip.Use.ModuleBase)/runtimes/linux-*/native/libSkiaSharp.so"
    }

    It 'names in its help only docs pages the installed package has' {
        @($RoundTrip.Use.DocsNamed).Count | Should -BeGreaterThan 0
        @($RoundTrip.Use.DocsMissing) | Should -BeNullOrEmpty
    }

    It 'passes every check of the round trip, including the clean-up and the real user''s files left alone' {
        @($RoundTrip.Checks | Where-Object { -not $_.Passed }) | Should -BeNullOrEmpty
        $RoundTrip.Checks.Check | Should -Contain 'temporary folder removed'
    }
}
