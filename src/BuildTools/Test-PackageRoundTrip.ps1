#requires -Version 7.4
<#
.SYNOPSIS
    Publishes the package to a local folder repository, installs it from there into an isolated HOME, and
    uses it by name from outside the checkout: the package works as a user gets it.
.DESCRIPTION
    Everything happens under one temporary folder, removed at the end whatever happened:
      home/        the HOME of both child processes
      repository/  a folder repository (a NuGet feed that is a folder; no network)
      cwd/         their working directory, outside the checkout
      tmp/         their TMPDIR

    Two child pwsh processes run with HOME set to home/, TMPDIR to tmp/, and PSModulePath and the XDG_*
    directories removed from their environment, so that every per-user path derives from the isolated
    HOME. On Linux, PSResourceGet installs -Scope CurrentUser into $HOME/.local/share/powershell/Modules
    (it reads HOME, not XDG_DATA_HOME) and keeps its repository list in the .NET LocalApplicationData
    folder ($XDG_DATA_HOME, else $HOME/.local/share)/PSResourceGet; pwsh's own user module path is
    $XDG_DATA_HOME (else $HOME/.local/share)/powershell/Modules, and an inherited PSModulePath would keep
    the real user's. With both removed, the install, the repository registration and Import-Module by
    name all use home/ and nothing reaches the real user's files (checked below).

      1. install: Register-PSResourceRepository (a folder, Trusted), Publish-PSResource -Path <package>,
         Install-PSResource VfioMigration -Scope CurrentUser; Unregister-PSResourceRepository in a finally.
      2. use: Import-Module VfioMigration by name, Get-Help Get-DirtyBitmap -Full, Get-Help
         about_VfioMigration, Connect-VfioHost -Simulated (the default host file found in the installed
         package), Get-VfioGroup, a heatmap drawn with the package's own native Skia library; and every
         docs/<page>.md the installed help names is in the module's folder.

    Writes a line per check and returns the facts; throws, with the children's output, when a check fails.
    Imports neither the module nor PSResourceGet itself, so build.ps1 and a Pester run can call it directly.
#>
param(
    # The package folder (out/VfioMigration/<version>, as 'build.ps1 -Task Package' or New-ModulePackage.ps1 lays it out).
    [Parameter(Mandatory)] [string] $PackagePath,
    # Per child process.
    [int] $TimeoutSeconds = 300
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
Import-Module (Join-Path $PSScriptRoot 'MarkdownHelp.psm1') -Force

$PackagePath = (Resolve-Path $PackagePath).ProviderPath
$manifest = Import-PowerShellDataFile (Join-Path $PackagePath 'VfioMigration.psd1')
$version = [string]$manifest.ModuleVersion

# The child's script: register, publish, install, and say where it went. Unregisters whatever happens.
$installScript = @'
param([string] $PackagePath, [string] $RepositoryPath, [string] $ResultFile)
$ErrorActionPreference = 'Stop'
$repository = 'VfioMigrationRoundTrip'
$r = [ordered]@{}
try {
    Register-PSResourceRepository -Name $repository -Uri $RepositoryPath -Trusted
    Publish-PSResource -Path $PackagePath -Repository $repository
    $r.Published = @(Get-ChildItem $RepositoryPath -Filter '*.nupkg' | ForEach-Object Name)
    $found = Find-PSResource -Name VfioMigration -Repository $repository
    $r.Found = "$($found.Name) $($found.Version)"
    $r.FoundTags = @($found.Tags)
    $r.FoundReleaseNotes = [string]$found.ReleaseNotes
    Install-PSResource -Name VfioMigration -Repository $repository -Scope CurrentUser -TrustRepository
    $installed = Get-InstalledPSResource -Name VfioMigration -Scope CurrentUser
    $r.InstalledLocation = Join-Path $installed.InstalledLocation "VfioMigration/$($installed.Version)"
}
finally {
    Unregister-PSResourceRepository -Name $repository -ErrorAction SilentlyContinue
    $r.Unregistered = -not (Get-PSResourceRepository -Name $repository -ErrorAction SilentlyContinue)
    $r | ConvertTo-Json -Depth 3 | Set-Content $ResultFile
}
'@

# The second child's script: the module as a user meets it, by name, from a folder outside the checkout.
$useScript = @'
param([string] $ResultFile)
$ErrorActionPreference = 'Stop'
$r = [ordered]@{ WorkingDirectory = (Get-Location).ProviderPath }
$m = Import-Module VfioMigration -PassThru
$r.ModuleBase = $m.ModuleBase
$r.Version = "$($m.Version)"
$r.Cmdlets = $m.ExportedCmdlets.Count
$r.Synopsis = [string](Get-Help Get-DirtyBitmap -Full).Synopsis
$r.AboutTopic = [bool]((Get-Help about_VfioMigration | Out-String) -match 'VfioMigration')
$h = Connect-VfioHost -Simulated
$r.HostKind = "$($h.Kind)"
$r.Configuration = $h.Configuration
$groups = @(Get-VfioGroup)
$r.Groups = $groups.Count
$r.GroupType = if ($groups) { $groups[0].GetType().FullName } else { '' }
# One picture, drawn with the package's own native Skia library (runtimes/linux-<arch>/native).
$null = New-VfioContainer -Group 2
$null = New-VfioDmaMapping -Iova 0x0 -Size 2MB
Start-DirtyTracking
$png = Join-Path (Get-Location).ProviderPath 'after-install.png'
Get-DirtyBitmap | Export-DirtyHeatmap $png -Width 640 -Height 480
$bytes = [IO.File]::ReadAllBytes($png)
# The PNG's IHDR chunk: width and height, big-endian, at bytes 16 and 20.
$r.PictureWidth = ([int]$bytes[16] -shl 24) -bor ([int]$bytes[17] -shl 16) -bor ([int]$bytes[18] -shl 8) -bor $bytes[19]
$r.PictureHeight = ([int]$bytes[20] -shl 24) -bor ([int]$bytes[21] -shl 16) -bor ([int]$bytes[22] -shl 8) -bor $bytes[23]
$r.SkiaLoadedFrom = @(Get-Content /proc/self/maps | ForEach-Object { ($_ -split '\s+', 6)[5] } | Where-Object { $_ -like '*/libSkiaSharp.so' } | Select-Object -Unique)
Remove-Item $png
Disconnect-VfioHost
# Every docs/<page>.md that the installed help (MAML and about topics) names is in the module's folder.
$help = (Get-ChildItem (Join-Path $m.ModuleBase 'en-US') -File | Get-Content -Raw) -join "`n"
$r.DocsNamed = @([regex]::Matches($help, 'docs/[\w-]+\.md') | ForEach-Object Value | Sort-Object -Unique)
$r.DocsMissing = @($r.DocsNamed | Where-Object { -not (Test-Path (Join-Path $m.ModuleBase $_)) })
$r.License = Test-Path (Join-Path $m.ModuleBase 'LICENSE')
$r | ConvertTo-Json -Depth 3 | Set-Content $ResultFile
'@

function Invoke-IsolatedPwsh {
    # A pwsh like this one, with the isolated environment, in the given working directory; returns its
    # exit code and output. Killed (with its children) when it outlives the timeout.
    param([string] $Script, [string[]] $Arguments, [string] $WorkingDirectory, [hashtable] $Environment)
    $exe = [Environment]::ProcessPath
    $psi = [System.Diagnostics.ProcessStartInfo]::new($exe)
    # pwsh as a dotnet tool runs as 'dotnet pwsh.dll'; an installed pwsh is its own executable.
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
    foreach ($a in @('-NoProfile', '-NonInteractive', '-File', $Script) + $Arguments) { $psi.ArgumentList.Add($a) }
    $psi.WorkingDirectory = $WorkingDirectory
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    foreach ($k in $Environment.Keys) {
        if ($null -eq $Environment[$k]) { $null = $psi.Environment.Remove($k) } else { $psi.Environment[$k] = $Environment[$k] }
    }
    $p = [System.Diagnostics.Process]::Start($psi)
    try {
        $out = $p.StandardOutput.ReadToEndAsync()
        $err = $p.StandardError.ReadToEndAsync()
        if (-not $p.WaitForExit($TimeoutSeconds * 1000)) {
            $p.Kill($true)
            $p.WaitForExit()
            return [pscustomobject]@{ ExitCode = -1; Output = "timed out after $TimeoutSeconds s`n$($out.Result)$($err.Result)" }
        }
        $p.WaitForExit()
        [pscustomobject]@{ ExitCode = $p.ExitCode; Output = ($out.Result + $err.Result).TrimEnd() }
    }
    finally { $p.Dispose() }
}

function Read-Result([string] $file) {
    if (Test-Path $file) { Get-Content $file -Raw | ConvertFrom-Json } else { $null }
}

# What the real user has before: it must be the same afterwards.
$realHome = [Environment]::GetFolderPath('UserProfile')
$realPaths = @((Join-Path $realHome '.local/share/powershell/Modules/VfioMigration'), (Join-Path $realHome '.local/share/PSResourceGet'))
$before = @{}
foreach ($path in $realPaths) { $before[$path] = Test-Path $path }

$work = Join-Path ([IO.Path]::GetTempPath()) ("vfiomigration-roundtrip-" + [guid]::NewGuid().ToString('N').Substring(0, 12))
$isolatedHome = Join-Path $work 'home'
$repository = Join-Path $work 'repository'
$cwd = Join-Path $work 'cwd'
$tmp = Join-Path $work 'tmp'
$checks = [System.Collections.Generic.List[object]]::new()
$installRun = $useRun = $install = $use = $null
function Add-Check([string] $name, [bool] $passed, [string] $detail) {
    $checks.Add([pscustomobject]@{ Check = $name; Passed = $passed; Detail = $detail })
    Write-Host ('  {0} {1}: {2}' -f $(if ($passed) { 'ok  ' } else { 'FAIL' }), $name, $detail)
}

try {
    foreach ($d in $isolatedHome, $repository, $cwd, $tmp) { $null = New-Item -ItemType Directory -Force $d }
    $environment = @{
        HOME = $isolatedHome; TMPDIR = $tmp
        PSModulePath = $null; XDG_DATA_HOME = $null; XDG_CONFIG_HOME = $null; XDG_CACHE_HOME = $null
        POWERSHELL_TELEMETRY_OPTOUT = '1'; POWERSHELL_UPDATECHECK = 'Off'; NO_COLOR = '1'   # plain text in a failure's report
    }
    Set-Content (Join-Path $work 'install.ps1') $installScript
    Set-Content (Join-Path $work 'use.ps1') $useScript
    $expectedBase = Join-Path $isolatedHome ".local/share/powershell/Modules/VfioMigration/$version"

    Write-Host "Package round trip: $PackagePath -> folder repository -> Install-PSResource (HOME=$isolatedHome) -> Import-Module VfioMigration"
    $installRun = Invoke-IsolatedPwsh (Join-Path $work 'install.ps1') @('-PackagePath', $PackagePath, '-RepositoryPath', $repository,
        '-ResultFile', (Join-Path $work 'install.json')) $cwd $environment
    $install = Read-Result (Join-Path $work 'install.json')
    Add-Check 'install process' ($installRun.ExitCode -eq 0) "exit $($installRun.ExitCode)"
    if ($install) {
        Add-Check 'repository unregistered' ($install.Unregistered -eq $true) "unregistered: $($install.Unregistered)"
        $published = @($install.PSObject.Properties['Published'] | ForEach-Object Value | ForEach-Object { $_ })
        Add-Check 'published' ("VfioMigration.$version.nupkg" -in $published) "repository holds $($published -join ', ')"
        $tags = @($install.PSObject.Properties['FoundTags'] | ForEach-Object Value | ForEach-Object { $_ })
        Add-Check 'gallery metadata' ('VFIO' -in $tags -and $install.PSObject.Properties['FoundReleaseNotes'] -and $install.FoundReleaseNotes) "tags $($tags -join ' '); release notes present"
        $location = if ($install.PSObject.Properties['InstalledLocation']) { [string]$install.InstalledLocation } else { '' }
        Add-Check 'installed into the isolated HOME' ($location -eq $expectedBase) $location
    }

    if ($installRun.ExitCode -eq 0) {
        $useRun = Invoke-IsolatedPwsh (Join-Path $work 'use.ps1') @('-ResultFile', (Join-Path $work 'use.json')) $cwd $environment
        $use = Read-Result (Join-Path $work 'use.json')
        Add-Check 'use process' ($useRun.ExitCode -eq 0) "exit $($useRun.ExitCode)"
        if ($use) {
            Add-Check 'Import-Module VfioMigration by name, outside the checkout' ($use.ModuleBase -eq $expectedBase -and $use.Version -eq $version -and $use.WorkingDirectory -eq $cwd) "$($use.ModuleBase) (version $($use.Version), $($use.Cmdlets) cmdlets, from $($use.WorkingDirectory))"
            $synopsis = (@(Get-Paragraphs (Read-HelpMarkdown (Join-Path $PackagePath 'docs/Get-DirtyBitmap.md')).Sections['SYNOPSIS']) -join ' ')
            Add-Check 'Get-Help Get-DirtyBitmap -Full shows the synopsis of docs/Get-DirtyBitmap.md' ($use.Synopsis.Trim() -eq $synopsis.Trim()) $use.Synopsis
            Add-Check 'Get-Help about_VfioMigration' ([bool]$use.AboutTopic) "found: $($use.AboutTopic)"
            Add-Check 'Connect-VfioHost -Simulated reads the installed default host' ($use.HostKind -eq 'Simulated' -and $use.Configuration -eq (Join-Path $expectedBase 'SimulatedHost/Default.psd1')) "$($use.HostKind) from $($use.Configuration)"
            Add-Check 'Get-VfioGroup returns objects' ($use.Groups -gt 0) "$($use.Groups) x $($use.GroupType)"
            $skia = @($use.SkiaLoadedFrom)
            Add-Check 'Export-DirtyHeatmap draws with the installed native Skia' ($use.PictureWidth -eq 640 -and $use.PictureHeight -eq 480 -and $skia.Count -eq 1 -and $skia[0].StartsWith("$expectedBase/runtimes/")) "$($use.PictureWidth)x$($use.PictureHeight), Skia from $($skia -join ', ')"
            $named = @($use.DocsNamed); $missing = @($use.DocsMissing)
            Add-Check 'every docs/<page>.md named in help is in the module folder' ($named.Count -gt 0 -and $missing.Count -eq 0) $(if ($missing.Count) { "missing: $($missing -join ', ')" } else { "$($named.Count) pages named, all present" })
            Add-Check 'LICENSE ships' ([bool]$use.License) "present: $($use.License)"
        }
    }
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
Add-Check 'temporary folder removed' (-not (Test-Path $work)) $work
foreach ($path in $realPaths) {
    Add-Check "the real user's $path is as it was" ((Test-Path $path) -eq $before[$path]) "exists: $(Test-Path $path) (before: $($before[$path]))"
}

$failed = @($checks | Where-Object { -not $_.Passed })
if ($failed.Count -or -not ($checks | Where-Object Check -EQ 'use process')) {
    $text = "package round trip failed: $(@($failed.Check) -join '; ')"
    if ($installRun) { $text += "`n--- install process ---`n$($installRun.Output)" }
    if ($useRun) { $text += "`n--- use process ---`n$($useRun.Output)" }
    throw $text
}
Write-Host "Package round trip: $($checks.Count) checks passed"
[pscustomobject]@{ PackagePath = $PackagePath; Version = $version; Install = $install; Use = $use; Checks = $checks.ToArray() }
