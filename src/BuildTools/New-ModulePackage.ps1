#requires -Version 7.4
<#
.SYNOPSIS
    Lays out the publishable module: the built module/ folder, LICENSE and the docs pages.
.DESCRIPTION
    The package is what Publish-PSResource takes and Install-PSResource puts in a module path, a folder
    <Destination> (by convention out/VfioMigration/<version>) holding:
      - everything in module/ as 'build.ps1 -Task Docs' leaves it: the manifest (the folder's only .psd1),
        the assemblies, the format views, en-US/ (MAML help, about_VfioMigration), SimulatedHost/Default.psd1,
        Demo.ps1, LabChecks/, the pictures' native libraries (runtimes/linux-x64|arm64/native) and the
        licences of what the pictures ship (licenses/);
      - LICENSE;
      - docs/: the pages of Get-PackagedPages (every docs/*.md), so that a page help names as
        docs/<page>.md is a path in the installed module's folder.
    Needs a built module (build.ps1 -Task Docs); builds nothing itself, so a test can lay out a package
    while other tests have the module loaded. Writes the destination's path.
#>
param(
    [Parameter(Mandatory)] [string] $Root,
    [Parameter(Mandatory)] [string] $Destination
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
Import-Module (Join-Path $PSScriptRoot 'MarkdownHelp.psm1') -Force

$moduleDir = Join-Path $Root 'module'
foreach ($built in 'VfioMigration.psd1', 'VfioMigration.dll', 'en-US/VfioMigration.dll-Help.xml', 'en-US/about_VfioMigration.help.txt') {
    if (-not (Test-Path (Join-Path $moduleDir $built))) { throw "module/$built is missing: run 'build.ps1 -Task Docs' first" }
}

Remove-Item $Destination -Recurse -Force -ErrorAction Ignore
$null = New-Item -ItemType Directory -Force $Destination
Get-ChildItem $moduleDir -Force | Copy-Item -Destination $Destination -Recurse -Force
Copy-Item (Join-Path $Root 'LICENSE') $Destination
$docs = New-Item -ItemType Directory -Force (Join-Path $Destination 'docs')
Get-PackagedPages (Join-Path $Root 'docs') | Copy-Item -Destination $docs

# The pictures' native libraries, for both architectures the module supports (VfioMigration.Pictures loads them from here).
foreach ($arch in 'x64', 'arm64') {
    foreach ($lib in 'libSkiaSharp.so', 'libHarfBuzzSharp.so') {
        if (-not (Test-Path (Join-Path $Destination "runtimes/linux-$arch/native/$lib"))) { throw "The package lacks runtimes/linux-$arch/native/${lib}: run 'build.ps1 -Task Build' first" }
    }
}

# The one manifest tools look for: Publish-PSResource takes the first .psd1 at the top as the manifest.
$manifests = @(Get-ChildItem $Destination -Filter '*.psd1' -File)
if ($manifests.Count -ne 1 -or $manifests[0].Name -ne 'VfioMigration.psd1') {
    throw "The package's top folder must hold one .psd1, VfioMigration.psd1; it holds: $($manifests.Name -join ', ')"
}
$null = Test-ModuleManifest (Join-Path $Destination 'VfioMigration.psd1')
(Resolve-Path $Destination).ProviderPath
