#requires -Version 7.4
<#
.SYNOPSIS
    Builds, documents, tests and packages the VfioMigration module.

.DESCRIPTION
    One entry point for a newcomer and for CI. Each task runs what it needs first, so any task works
    on a fresh clone:

      Restore   dotnet tools (pwsh), Pester (NuGet PackageDownload), NuGet packages; gcc and the kernel
                headers the layout test compiles against (installed with apt-get when missing and root)
      Build     publishes the assemblies into module/ and writes module/VfioMigration.psd1
      Docs      generates the MAML help (module/en-US/VfioMigration.dll-Help.xml) from docs/*.md and
                checks that docs and code agree on every cmdlet's parameters
      Test      xunit (Core), Pester (the module) and the QEMU lab (LabTest), one closing line
                'total: N passed, N failed, N skipped'
      Package   a self-contained, publishable copy of the module in out/VfioMigration/<version> (module/, LICENSE,
                docs/*.md), then its round trip: Publish-PSResource to a temporary folder repository,
                Install-PSResource into an isolated HOME, Import-Module by name outside the checkout
      Demo      the README's main job: a walk through the module
      Bench     the benchmarks of docs/performance.md (P1 bitmap scan beside C, P2 ioctls per query,
                P3 bytes per query, P5 Import-Module time, P8 the heatmap of a 1 TiB bitmap)
      LabTest   Build, then the QEMU lab (tests/lab/Invoke-Lab.ps1, docs/lab.md): the conformance suite in a
                real Linux 6.12 guest compared step by step with the simulated twin; fails on any
                difference and when the lab cannot be built or booted. Needs Debian 12, root, QEMU (apt
                installs it) and 2-3 minutes; the result is TestResults/lab.summary.json. Not part of Test.
                VFIOLAB_CACHE moves the lab's cache; VFIOLAB_INJECT_DIFFERENCE=1 must make it fail.
      LabExpected the lab, then writes the conformance suite's expected answers (tests/VfioMigration.Core.Tests/
                Conformance/Expected/*.txt) from the real kernel's, each file naming the kernel release
      Clean     removes build output

.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Restore', 'Build', 'Docs', 'Test', 'Package', 'Demo', 'Bench', 'LabTest', 'LabExpected', 'Clean')]
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # For quick local iterations only: Test leaves out the QEMU lab and says so. CI never passes it.
    [switch] $SkipLab
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'
$env:DOTNET_SKIP_FIRST_TIME_EXPERIENCE = '1'
$env:POWERSHELL_UPDATECHECK = 'Off'

$Root = $PSScriptRoot
$ModuleDir = Join-Path $Root 'module'
$ResultsDir = Join-Path $Root 'TestResults'
$PesterVersion = '6.2.0'
$script:Done = @{}
$script:ExitCode = 0

function Write-Step([string] $text) { Write-Host "==> $text" }

function Invoke-Native {
    # Runs a native command and stops the build when it fails.
    param([Parameter(Mandatory)] [string] $Command, [string[]] $Arguments = @())
    & $Command @Arguments
    if ($LASTEXITCODE -ne 0) { throw "'$Command $($Arguments -join ' ')' failed with exit code $LASTEXITCODE" }
}

function Invoke-ChildPwsh {
    # Anything that imports the module runs in a child pwsh, so this build process never loads the
    # assemblies it is about to replace.
    param([Parameter(Mandatory)] [string] $File, [string[]] $Arguments = @())
    & dotnet pwsh -NoProfile -NonInteractive -File $File @Arguments | Out-Host
    return $LASTEXITCODE
}

function Get-NuGetRoot { if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path $HOME '.nuget/packages' } }

function Invoke-Task([string] $name) {
    if ($script:Done[$name]) { return }
    & "Task-$name"
    $script:Done[$name] = $true
}

function Task-Restore {
    Write-Step 'Restore'
    Invoke-Native dotnet @('tool', 'restore')
    if (-not (Get-Command gcc -ErrorAction Ignore) -or -not (Test-Path /usr/include/linux/vfio.h)) {
        # The native-layout test compiles a C program against the system's <linux/vfio.h>.
        if ((id -u) -eq '0' -and (Get-Command apt-get -ErrorAction Ignore)) {
            Write-Step 'Installing gcc and linux-libc-dev (needed by the header comparison test)'
            Invoke-Native apt-get @('update', '-qq')
            Invoke-Native apt-get @('install', '-y', '-qq', '--no-install-recommends', 'gcc', 'libc6-dev', 'linux-libc-dev')
        }
        else {
            throw 'gcc and /usr/include/linux/vfio.h are needed by the tests: install gcc and linux-libc-dev (Debian/Ubuntu) or kernel-headers (Fedora).'
        }
    }
    Invoke-Native dotnet @('restore', (Join-Path $Root 'tests/tools/tools.csproj'), '--nologo', '-v', 'q')
    Invoke-Native dotnet @('restore', (Join-Path $Root 'VfioMigration.slnx'), '--nologo', '-v', 'q')
}

function Task-Build {
    Invoke-Task Restore
    Write-Step "Build ($Configuration)"
    $publish = Join-Path $Root "obj/publish"
    Remove-Item $publish -Recurse -Force -ErrorAction Ignore
    # ReadyToRun: the assemblies carry precompiled x64 code beside their IL, so the first dirty-bitmap query of
    # a session does not wait for the JIT (docs/performance.md P6). The code is compiled for .NET 10, the
    # runtime of pwsh 7.6 LTS, by publishing src/BuildTools/ReadyToRun (it says why); older runtimes and other
    # architectures ignore it and compile the IL as before, so the module still loads wherever it did. An
    # arm64 build machine has no x64 compiler to run (the crossgen package is per host) and publishes IL only.
    # The publish restores for itself: the RID-specific restore must not leave the solution's assets behind it.
    if ([Runtime.InteropServices.RuntimeInformation]::OSArchitecture -eq 'X64') {
        $publishArgs = @('publish', (Join-Path $Root 'src/BuildTools/ReadyToRun/VfioMigration.ReadyToRun.csproj'), '-c', $Configuration,
            '-o', $publish, '--nologo', '-v', 'q', '-r', 'linux-x64', '--self-contained', 'false', '-p:PublishReadyToRun=true')
    }
    else {
        Write-Host "Build: $([Runtime.InteropServices.RuntimeInformation]::OSArchitecture) host: publishing IL only (no ReadyToRun)"
        $publishArgs = @('publish', (Join-Path $Root 'src/VfioMigration/VfioMigration.csproj'), '-c', $Configuration,
            '-o', $publish, '--nologo', '-v', 'q')
    }
    Invoke-Native dotnet $publishArgs

    # A named list: what the module ships, nothing the publish happens to drop next to it.
    # (No deps.json: PowerShell resolves a binary module's assemblies from its folder and never reads one.)
    $files = 'VfioMigration.dll', 'VfioMigration.pdb',
             'VfioMigration.Core.dll', 'VfioMigration.Core.pdb',
             'VfioMigration.Native.dll', 'VfioMigration.Native.pdb',
             'VfioMigration.Kernel.dll', 'VfioMigration.Kernel.pdb',
             'VfioMigration.Linux.dll', 'VfioMigration.Linux.pdb',
             'VfioMigration.Simulation.dll', 'VfioMigration.Simulation.pdb',
             'VfioMigration.Pictures.dll', 'VfioMigration.Pictures.pdb',
             'System.IO.Hashing.dll',
             # The pictures' libraries (loaded at the first picture only): as their packages ship them, not precompiled.
             'ScottPlot.dll', 'SkiaSharp.dll', 'SkiaSharp.HarfBuzz.dll', 'HarfBuzzSharp.dll'
    # Assemblies an earlier build shipped and this one does not (a dropped dependency) must not linger.
    Get-ChildItem $ModuleDir -File -ErrorAction Ignore | Where-Object { $_.Extension -in '.dll', '.json' -and $_.Name -notin $files } | Remove-Item -Force
    foreach ($f in $files) {
        $src = Join-Path $publish $f
        if (-not (Test-Path $src)) { throw "The publish output lacks $f" }
        Copy-Item $src $ModuleDir -Force
    }

    Copy-PictureNativeAssets

    # The module's own files in module/ (committed, not built): the manifest names them, so they must be there.
    foreach ($f in 'VfioMigration.format.ps1xml', 'VfioMigration.types.ps1xml') {
        if (-not (Test-Path (Join-Path $ModuleDir $f))) { throw "module/$f is missing: the manifest's FormatsToProcess/TypesToProcess name it" }
    }

    # module/VfioMigration.psd1: the root manifest, rooted at the assembly, with paths relative to module/.
    $lines = foreach ($line in Get-Content (Join-Path $Root 'VfioMigration.psd1')) {
        if ($line -match '^\s*#') { $line; continue }
        $line -replace "NestedModules(\s*)=\s*@\('module/VfioMigration.psd1'\)", "RootModule`$1= 'VfioMigration.dll'" -replace "'module/", "'"
    }
    if (-not ($lines -match "^\s*RootModule\s*=\s*'VfioMigration.dll'")) { throw 'Could not root module/VfioMigration.psd1 at VfioMigration.dll' }
    Set-Content -Path (Join-Path $ModuleDir 'VfioMigration.psd1') -Value $lines
    $null = Test-ModuleManifest (Join-Path $ModuleDir 'VfioMigration.psd1')
    $null = Test-ModuleManifest (Join-Path $Root 'VfioMigration.psd1')
}

function Copy-PictureNativeAssets {
    # The native libraries of the pictures (libSkiaSharp.so, libHarfBuzzSharp.so) for x64 and arm64, from the
    # NuGet packages the restore brought, into module/runtimes/linux-<arch>/native: a module has no deps.json,
    # so VfioMigration.Pictures resolves them from there itself (PictureRuntime). And the licences of what
    # the pictures ship (ScottPlot, SkiaSharp, HarfBuzzSharp, the DejaVu fonts) into module/licenses.
    $assets = Get-Content (Join-Path $Root 'src/VfioMigration.Pictures/obj/project.assets.json') -Raw | ConvertFrom-Json -AsHashtable
    $nuget = Get-NuGetRoot
    function Get-PackageFolder([string] $id) {
        $key = @($assets.libraries.Keys | Where-Object { $_ -like "$id/*" })
        if ($key.Count -ne 1) { throw "The restore of VfioMigration.Pictures holds no single $id package ($($key -join ', '))" }
        Join-Path $nuget $assets.libraries[$key[0]].path
    }
    $skia = Get-PackageFolder 'SkiaSharp.NativeAssets.Linux.NoDependencies'
    $harfbuzz = Get-PackageFolder 'HarfBuzzSharp.NativeAssets.Linux'
    $runtimes = Join-Path $ModuleDir 'runtimes'
    Remove-Item $runtimes -Recurse -Force -ErrorAction Ignore
    foreach ($arch in 'x64', 'arm64') {
        $native = New-Item -ItemType Directory -Force (Join-Path $runtimes "linux-$arch/native")
        foreach ($lib in (Join-Path $skia "runtimes/linux-$arch/native/libSkiaSharp.so"), (Join-Path $harfbuzz "runtimes/linux-$arch/native/libHarfBuzzSharp.so")) {
            if (-not (Test-Path $lib)) { throw "The native library $lib is missing from the NuGet cache: restore again" }
            Copy-Item $lib $native -Force
        }
    }
    $licenses = Join-Path $ModuleDir 'licenses'
    Remove-Item $licenses -Recurse -Force -ErrorAction Ignore
    $null = New-Item -ItemType Directory -Force $licenses
    Copy-Item (Join-Path (Get-PackageFolder 'ScottPlot') 'Notices/LICENSE.txt') (Join-Path $licenses 'ScottPlot-LICENSE.txt')
    Copy-Item (Join-Path (Get-PackageFolder 'ScottPlot') 'Notices/NOTICES.txt') (Join-Path $licenses 'ScottPlot-NOTICES.txt')
    Copy-Item (Join-Path $skia 'LICENSE.txt') (Join-Path $licenses 'SkiaSharp-LICENSE.txt')
    Copy-Item (Join-Path $skia 'THIRD-PARTY-NOTICES.txt') (Join-Path $licenses 'SkiaSharp-THIRD-PARTY-NOTICES.txt')
    Copy-Item (Join-Path $harfbuzz 'LICENSE.txt') (Join-Path $licenses 'HarfBuzzSharp-LICENSE.txt')
    Copy-Item (Join-Path $harfbuzz 'THIRD-PARTY-NOTICES.txt') (Join-Path $licenses 'HarfBuzzSharp-THIRD-PARTY-NOTICES.txt')
    Copy-Item (Join-Path $Root 'src/VfioMigration.Pictures/Fonts/LICENSE-DejaVu.txt') (Join-Path $licenses 'DejaVu-fonts-LICENSE.txt')
}

function Task-Docs {
    Invoke-Task Build
    Write-Step 'Docs (MAML help from docs/*.md; docs-to-code check)'
    $tools = Join-Path $Root 'src/BuildTools'
    $rc = Invoke-ChildPwsh (Join-Path $tools 'ConvertTo-Maml.ps1') @('-DocsPath', (Join-Path $Root 'docs'),
        '-ModuleManifest', (Join-Path $ModuleDir 'VfioMigration.psd1'),
        '-OutFile', (Join-Path $ModuleDir 'en-US/VfioMigration.dll-Help.xml'))
    if ($rc -ne 0) { throw 'MAML generation failed' }
    foreach ($about in Get-ChildItem (Join-Path $Root 'docs') -Filter 'about_*.md') {
        ConvertTo-AboutHelp $about.FullName (Join-Path $ModuleDir "en-US/$($about.BaseName).help.txt")
    }
    $rc = Invoke-ChildPwsh (Join-Path $tools 'Test-Docs.ps1') @('-DocsPath', (Join-Path $Root 'docs'),
        '-ModuleManifest', (Join-Path $ModuleDir 'VfioMigration.psd1'))
    if ($rc -ne 0) { throw "docs/ and the code disagree ($rc problem(s) above)" }
}

function ConvertTo-AboutHelp([string] $markdown, [string] $outFile) {
    # about_*.md -> about_*.help.txt: '## HEADING' lines become TOPIC-style headings, prose is indented.
    $lines = foreach ($line in (Get-Content $markdown)) {
        if ($line -match '^# (.+)$') { 'TOPIC'; "    $($Matches[1])"; continue }
        if ($line -match '^## (.+)$') { ''; $Matches[1].ToUpperInvariant(); continue }
        if ($line.Trim()) { "    $line" } else { '' }
    }
    Set-Content -Path $outFile -Value ($lines -join "`n")
}

function Task-Test {
    $summary = [ordered]@{ passed = 0; failed = 0; skipped = 0 }
    $exit = 0
    try {
        Invoke-Task Docs
        Remove-Item $ResultsDir -Recurse -Force -ErrorAction Ignore
        $null = New-Item -ItemType Directory -Force $ResultsDir

        Write-Step 'Test: xunit (VfioMigration.Core.Tests)'
        & dotnet test (Join-Path $Root 'tests/VfioMigration.Core.Tests/VfioMigration.Core.Tests.csproj') -c $Configuration `
            --no-restore --nologo --logger 'trx;LogFileName=xunit.trx' --results-directory $ResultsDir
        $xunitExit = $LASTEXITCODE
        $x = Read-TrxCounts (Join-Path $ResultsDir 'xunit.trx') $xunitExit
        Write-Host ('xunit: {0} passed, {1} failed, {2} skipped' -f $x.passed, $x.failed, $x.skipped)

        Write-Step 'Test: Pester (tests/Pester against the built module)'
        $pesterJson = Join-Path $ResultsDir 'pester.summary.json'
        $null = Invoke-ChildPwsh (Join-Path $Root 'tests/Invoke-PesterSuite.ps1') @(
            '-PesterModule', (Join-Path (Get-NuGetRoot) "pester/$PesterVersion/tools/Pester.psd1"),
            '-Path', (Join-Path $Root 'tests/Pester'), '-ResultsDir', $ResultsDir)
        $p = Read-SummaryCounts $pesterJson
        Write-Host ('pester: {0} passed, {1} failed, {2} skipped' -f $p.passed, $p.failed, $p.skipped)

        $l = @{ passed = 0; failed = 0; skipped = 0 }
        if ($SkipLab) {
            Write-Host 'lab: left out (-SkipLab); the README test command and CI run it'
        }
        else {
            Write-Step 'Test: the QEMU lab (the conformance suite on a real kernel against the simulated twin)'
            $null = Invoke-ChildPwsh (Join-Path $Root 'tests/lab/Invoke-Lab.ps1') @('-RepoRoot', $Root, '-SkipModuleBuild')
            $l = Read-SummaryCounts (Join-Path $ResultsDir 'lab.summary.json')
            Write-Host ('lab: {0} passed, {1} failed' -f $l.passed, $l.failed)
        }

        foreach ($k in @('passed', 'failed', 'skipped')) { $summary[$k] = $x[$k] + $p[$k] + $l[$k] }
        if ($summary.failed -gt 0 -or $xunitExit -ne 0) { $exit = 1 }
    }
    catch {
        Write-Host "BUILD FAILED: $($_.Exception.Message)" -ForegroundColor Red
        $summary.failed += 1
        $exit = 1
    }
    # The one line CI reads.
    Write-Host ('total: {0} passed, {1} failed, {2} skipped' -f $summary.passed, $summary.failed, $summary.skipped)
    $script:ExitCode = $exit
}

function Read-TrxCounts([string] $trx, [int] $exitCode) {
    $c = @{ passed = 0; failed = 0; skipped = 0 }
    if (Test-Path $trx) {
        $counters = ([xml](Get-Content $trx -Raw)).TestRun.ResultSummary.Counters
        $c.passed = [int]$counters.passed
        $c.failed = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
        $c.skipped = [int]$counters.total - [int]$counters.executed
        if ($exitCode -ne 0 -and $c.failed -eq 0) { $c.failed = 1 }   # the run failed outside any test
    }
    else { $c.failed = 1 }                                          # no result file: the tests did not run
    return $c
}

function Read-SummaryCounts([string] $json) {
    if (-not (Test-Path $json)) { return @{ passed = 0; failed = 1; skipped = 0 } }
    $s = Get-Content $json -Raw | ConvertFrom-Json
    return @{ passed = [int]$s.passed; failed = [int]$s.failed; skipped = [int]$s.skipped }
}

function Task-Package {
    Invoke-Task Docs
    $version = (Import-PowerShellDataFile (Join-Path $Root 'VfioMigration.psd1')).ModuleVersion
    $out = Join-Path $Root "out/VfioMigration/$version"
    Write-Step "Package -> $out"
    Remove-Item (Join-Path $Root 'out/VfioMigration') -Recurse -Force -ErrorAction Ignore
    # The built module/, LICENSE and the docs pages help names (src/BuildTools/New-ModulePackage.ps1).
    $null = & (Join-Path $Root 'src/BuildTools/New-ModulePackage.ps1') -Root $Root -Destination $out
    # The round trip a user makes: publish to a folder repository, install into an isolated HOME, import by
    # name outside the checkout (src/BuildTools/Test-PackageRoundTrip.ps1; tests/Pester/Package.Tests.ps1
    # runs it in the test command). It imports the module only in its child processes.
    Write-Step 'Package: publish, install and use round trip'
    $null = & (Join-Path $Root 'src/BuildTools/Test-PackageRoundTrip.ps1') -PackagePath $out
    Write-Host "Publishable module: $out (Publish-PSResource -Path $out -Repository <name>)"
}

function Task-Demo {
    Invoke-Task Docs
    Write-Step 'Demo'
    $rc = Invoke-ChildPwsh (Join-Path $ModuleDir 'Demo.ps1') @('-ModulePath', (Join-Path $Root 'VfioMigration.psd1'))
    if ($rc -ne 0) { throw "The demo failed (exit $rc)" }
}

function Task-Bench {
    Invoke-Task Build
    Write-Step 'Bench (numbers for docs/performance.md)'
    Invoke-Native dotnet @('run', '--project', (Join-Path $Root 'tests/Benchmarks/VfioMigration.Benchmarks.csproj'), '-c', 'Release', '--no-restore', '--', 'all')
    # P6: Get-DirtyBitmap through the cmdlet, in a fresh pwsh, beside the C reference (the library P1 built).
    $library = Join-Path ([IO.Path]::GetTempPath()) 'vfiomigration-bench/libbitmapref.so'
    $rc = Invoke-ChildPwsh (Join-Path $Root 'tests/Benchmarks/CmdletBench.ps1') @('-Module', (Join-Path $ModuleDir 'VfioMigration.psd1'), '-ReferenceLibrary', $library)
    if ($rc -ne 0) { throw "the cmdlet benchmark (P6) failed (exit $rc)" }
    # P5: Import-Module in a fresh pwsh each time (what a user waits for), best and median of 7.
    $times = foreach ($i in 1..7) {
        $ms = & dotnet pwsh -NoProfile -NonInteractive -Command "(Measure-Command { Import-Module '$(Join-Path $Root 'VfioMigration.psd1')' }).TotalMilliseconds"
        [double]$ms
    }
    $sorted = $times | Sort-Object
    Write-Host ('P5: Import-Module VfioMigration in a fresh pwsh: best {0:0} ms, median {1:0} ms (7 runs)' -f $sorted[0], $sorted[3])
}

function Task-LabTest {
    Invoke-Task Build
    Write-Step 'LabTest: the conformance suite on a real kernel (QEMU) against the simulated twin'
    # A child pwsh: the lab imports the module this build has just written. The module is built already.
    $rc = Invoke-ChildPwsh (Join-Path $Root 'tests/lab/Invoke-Lab.ps1') @('-RepoRoot', $Root, '-SkipModuleBuild')
    if ($rc -ne 0) { throw "the lab failed (exit $rc): see the DIFF lines and 'lab failures' above, and TestResults/lab.summary.json" }
}

function Task-LabExpected {
    Invoke-Task Build
    Write-Step 'LabExpected: the real kernel''s answers become the conformance suite''s expected answers'
    $rc = Invoke-ChildPwsh (Join-Path $Root 'tests/lab/Invoke-Lab.ps1') @('-RepoRoot', $Root, '-SkipModuleBuild', '-WriteExpected')
    if ($rc -ne 0) { throw "the lab failed (exit $rc): no expected file is trustworthy from this run" }
}

function Task-Clean {
    Write-Step 'Clean'
    Get-ChildItem $ModuleDir -File | Where-Object { $_.Extension -in '.dll', '.pdb', '.json' -or $_.Name -eq 'VfioMigration.psd1' } | Remove-Item -Force
    foreach ($d in 'runtimes', 'licenses') { Remove-Item (Join-Path $ModuleDir $d) -Recurse -Force -ErrorAction Ignore }
    Remove-Item (Join-Path $ModuleDir 'en-US/VfioMigration.dll-Help.xml') -Force -ErrorAction Ignore
    foreach ($d in 'out', 'TestResults', 'obj') { Remove-Item (Join-Path $Root $d) -Recurse -Force -ErrorAction Ignore }
    Get-ChildItem $Root -Directory -Recurse -Include bin, obj | Remove-Item -Recurse -Force -ErrorAction Ignore
}

Push-Location $Root
try {
    foreach ($t in $Task) { Invoke-Task $t }
}
finally {
    Pop-Location
}
exit $script:ExitCode
