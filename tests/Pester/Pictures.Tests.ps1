# The pictures as a user makes them: Export-DirtyHeatmap, Export-DirtyRateChart and Export-MigrationChart write
# PNG files of the size asked with the module's own files conventions (-Force, -PassThru, -WhatIf, one object
# per file); Show-DirtyHeatmap draws in the terminal; a module folder without the drawing libraries says so
# and still works otherwise. What the pictures show, pixel by pixel, is tested in xunit (PictureTests).
BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
    $script:Root = (Resolve-Path "$PSScriptRoot/../..").ProviderPath
    function New-LabGuest {
        # The lab's layout: a 2 MiB and a 1 MiB mapping with a 1 MiB gap between them, behind the IOMMU (group 2).
        $c = New-VfioContainer -Group 2
        $null = New-VfioDmaMapping -Container $c -Iova 0x10000000 -Size 2MB
        $null = New-VfioDmaMapping -Container $c -Iova 0x10300000 -Size 1MB
        $c | Start-DirtyTracking
        $c
    }
    function Get-PngSize([string] $path) {
        # The PNG signature, then the IHDR chunk: width and height, big-endian, at bytes 16 and 20.
        $b = [IO.File]::ReadAllBytes($path)
        [Convert]::ToHexString($b, 0, 8) | Should -Be '89504E470D0A1A0A'
        [pscustomobject]@{
            Width  = ([int]$b[16] -shl 24) -bor ([int]$b[17] -shl 16) -bor ([int]$b[18] -shl 8) -bor $b[19]
            Height = ([int]$b[20] -shl 24) -bor ([int]$b[21] -shl 16) -bor ([int]$b[22] -shl 8) -bor $b[23]
        }
    }
    function Invoke-ChildPwsh([string] $script) {
        # A fresh pwsh (the checkout's tool), for what must be seen in a process that has drawn nothing.
        $file = Join-Path $TestDrive ("child-" + [guid]::NewGuid().ToString('N').Substring(0, 8) + '.ps1')
        Set-Content $file $script
        Push-Location $Root
        try { $out = & dotnet pwsh -NoProfile -NonInteractive -File $file 2>&1 }
        finally { Pop-Location }
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($out -join "`n") }
    }
}
AfterAll { Disconnect-VfioHost }

Describe 'Export-DirtyHeatmap' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }
    AfterEach { Disconnect-VfioHost }

    It 'writes a PNG of the size asked from Get-DirtyBitmap, and returns the file with -PassThru' {
        $null = New-LabGuest
        $file = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000 | Export-DirtyHeatmap (Join-Path $TestDrive 'lab.png') -Width 900 -Height 500 -PassThru
        $file | Should -BeOfType [System.IO.FileInfo]
        $size = Get-PngSize $file.FullName
        $size.Width | Should -Be 900
        $size.Height | Should -Be 500
    }

    It 'draws a bitmap read back from a file, which keeps the mappings, and the result of Compare-DirtyBitmap' {
        $null = New-LabGuest
        $b = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000
        $json = Join-Path $TestDrive 'b.json'
        $b | Export-DirtyBitmap $json
        $back = Import-DirtyBitmap $json
        @($back.GetMappedRanges()).Count | Should -Be 2
        $back | Export-DirtyHeatmap (Join-Path $TestDrive 'back.png')
        (Get-PngSize (Join-Path $TestDrive 'back.png')).Width | Should -Be 1200
        Compare-DirtyBitmap $b $back -Operation Union | Export-DirtyHeatmap (Join-Path $TestDrive 'union.png') -Width 640 -Height 480
        (Get-PngSize (Join-Path $TestDrive 'union.png')).Height | Should -Be 480
    }

    It 'keeps the mappings out of a bitmap''s properties, so Export-Csv stays a row of numbers' {
        $null = New-LabGuest
        $b = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000
        ($b | ConvertTo-Csv)[0] | Should -Not -Match 'Mapped'
        $b.GetMappedRanges() | ForEach-Object ToString | Should -Be @('0x10000000+0x200000', '0x10300000+0x100000')
    }

    It 'refuses to replace a file without -Force, replaces it with -Force, and writes nothing with -WhatIf' {
        $null = New-LabGuest
        $b = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000
        $path = Join-Path $TestDrive 'twice.png'
        $b | Export-DirtyHeatmap $path -Width 640 -Height 480
        { $b | Export-DirtyHeatmap $path -ErrorAction Stop } | Should -Throw -ErrorId 'FileExists,VfioMigration.Commands.ExportDirtyHeatmapCommand'
        (Get-PngSize $path).Width | Should -Be 640
        $b | Export-DirtyHeatmap $path -Force
        (Get-PngSize $path).Width | Should -Be 1200
        $b | Export-DirtyHeatmap (Join-Path $TestDrive 'whatif.png') -WhatIf
        Join-Path $TestDrive 'whatif.png' | Should -Not -Exist
        @(Get-ChildItem $TestDrive -Filter '*.partial' -Force) | Should -BeNullOrEmpty
    }

    It 'draws the first of several bitmaps piped and gives OnePicturePerFile for the others' {
        $null = New-LabGuest
        $path = Join-Path $TestDrive 'one.png'
        $bitmaps = @(Get-DirtyBitmap -Iova 0x10000000 -Size 0x200000; Get-DirtyBitmap -Iova 0x10300000 -Size 0x100000)
        $bitmaps | Export-DirtyHeatmap $path -ErrorVariable errors -ErrorAction SilentlyContinue
        @($errors).Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'OnePicturePerFile,VfioMigration.Commands.ExportDirtyHeatmapCommand'
        $path | Should -Exist
    }

    It 'refuses a picture too small to hold its axis and legend' {
        $null = New-LabGuest
        { Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000 | Export-DirtyHeatmap (Join-Path $TestDrive 's.png') -Width 100 } | Should -Throw -ErrorId 'ParameterArgumentValidationError,VfioMigration.Commands.ExportDirtyHeatmapCommand'
    }
}

Describe 'Show-DirtyHeatmap' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }
    AfterEach { Disconnect-VfioHost }

    It 'shows the lab guest in lines no wider than asked: both mappings dirty, the gap blank' {
        $null = New-LabGuest      # behind the IOMMU every mapped page reads dirty
        $lines = @(Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000 | Show-DirtyHeatmap -Width 45 -Height 4)
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 45 }
        $lines[0] | Should -Be 'Dirty pages 0x10000000–0x10400000 (4MiB), 4K…'
        $lines[1] | Should -BeLike 'AllMappedPages, Simulated host *'
        $lines[2] | Should -Be '1 cell = 32KiB (8 pages), 1 row = 1MiB; 768 …'
        $lines[3..6] | Should -Be @(
            "0x10000000 │$('█' * 32)│"
            "0x10100000 │$('█' * 32)│"
            "0x10200000 │$(' ' * 32)│"
            "0x10300000 │$('█' * 32)│")
        $lines[7] | Should -BeLike '· clean ░≤25% *'
    }

    It 'shows the result of Compare-DirtyBitmap after a line that names the operation' {
        $null = New-LabGuest
        $a = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000
        $b = Get-DirtyBitmap -Iova 0x10000000 -Size 0x400000
        $lines = @(Compare-DirtyBitmap $a $b -Operation Intersection | Show-DirtyHeatmap -Width 60)
        $lines[0] | Should -Be 'Intersection of two bitmaps: 768 pages (reference 768, other 768)'
        $lines[1] | Should -BeLike 'Dirty pages 0x10000000*'
    }
}

Describe 'Export-DirtyRateChart and Export-MigrationChart' {
    BeforeEach { Connect-VfioHost -Simulated | Out-Null }
    AfterEach { Disconnect-VfioHost }

    It 'draws the samples of Measure-DirtyRate into one chart' {
        $nic = '0000:3b:00.1'
        $null = New-VfioContainer -Device $nic
        $null = New-VfioDmaMapping -Iova 0x10000000 -Size 16MB
        Start-DirtyTracking -Device $nic
        $path = Join-Path $TestDrive 'rate.png'
        Measure-DirtyRate -Device $nic -Duration 00:00:00.6 -Interval 00:00:00.2 | Export-DirtyRateChart $path -Width 800 -Height 450
        $size = Get-PngSize $path
        $size.Width | Should -Be 800
        $size.Height | Should -Be 450
    }

    It 'says NothingToDraw when no sample arrives' {
        { @() | Export-DirtyRateChart (Join-Path $TestDrive 'none.png') -ErrorAction Stop } | Should -Throw -ErrorId 'NothingToDraw,VfioMigration.Commands.ExportDirtyRateChartCommand'
        Join-Path $TestDrive 'none.png' | Should -Not -Exist
    }

    It 'draws a migration report from Start-VfioMigration, one report per file' {
        $src = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61'; $dst = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62'
        $null = New-VfioContainer -Device $src, $dst
        $report = Start-VfioMigration $src $dst -Bandwidth 1GB -Confirm:$false -WarningAction SilentlyContinue
        $file = $report | Export-MigrationChart (Join-Path $TestDrive 'migration.png') -PassThru
        (Get-PngSize $file.FullName).Width | Should -Be 1000
        @($report, $report) | Export-MigrationChart (Join-Path $TestDrive 'two.png') -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'OnePicturePerFile,VfioMigration.Commands.ExportMigrationChartCommand'
    }
}

Describe 'The drawing libraries load lazily, from the module''s folder' {
    It 'are not loaded by Import-Module and the other cmdlets, and Skia comes from runtimes/ when a picture is drawn' {
        $r = Invoke-ChildPwsh @"
`$ErrorActionPreference = 'Stop'
Import-Module '$Root/VfioMigration.psd1'
Connect-VfioHost -Simulated | Out-Null
`$null = New-VfioContainer -Group 2
`$null = New-VfioDmaMapping -Iova 0x0 -Size 2MB
Start-DirtyTracking
`$b = Get-DirtyBitmap
`$null = `$b | Show-DirtyHeatmap -Width 80
Start-Sleep -Milliseconds 500   # the module's background warm-up has run by now
function Loaded { @([AppDomain]::CurrentDomain.GetAssemblies().GetName().Name | Where-Object { `$_ -in 'VfioMigration.Pictures', 'SkiaSharp' }).Count }
function Skia { @(Get-Content /proc/self/maps | Where-Object { `$_ -like '*libSkiaSharp.so' } | ForEach-Object { (`$_ -split '\s+', 6)[5] } | Select-Object -Unique) }
"before: `$(Loaded) `$(@(Skia).Count)"
`$b | Export-DirtyHeatmap (Join-Path '$TestDrive' 'lazy.png') -Width 640 -Height 480
"after: `$(Loaded) `$(Skia)"
"@
        $r.ExitCode | Should -Be 0 -Because $r.Output
        $r.Output | Should -Match 'before: 0 0'
        $r.Output | Should -Match "after: 2 $([regex]::Escape($Root))/module/runtimes/linux-(x64|arm64)/native/libSkiaSharp.so"
    }

    It 'gives PictureLibraryMissing without the native library or the pictures assembly, and everything else works' {
        foreach ($case in @{ Name = 'no-native'; Remove = 'runtimes' }, @{ Name = 'no-assembly'; Remove = 'VfioMigration.Pictures.dll' }) {
            $copy = Join-Path $TestDrive $case.Name
            Copy-Item (Join-Path $Root 'module') $copy -Recurse
            Remove-Item (Join-Path $copy $case.Remove) -Recurse -Force
            $r = Invoke-ChildPwsh @"
Import-Module '$copy/VfioMigration.psd1'
Connect-VfioHost -Simulated | Out-Null
`$null = New-VfioContainer -Group 2
`$null = New-VfioDmaMapping -Iova 0x0 -Size 2MB
Start-DirtyTracking
`$b = Get-DirtyBitmap
`$b | Export-DirtyHeatmap (Join-Path '$copy' 'x.png') -ErrorVariable e -ErrorAction SilentlyContinue
"id: `$(`$e[0].FullyQualifiedErrorId)"
"message: `$(`$e[0].Exception.Message)"
"terminal: `$(@(`$b | Show-DirtyHeatmap -Width 60).Count)"
"file: `$(Test-Path (Join-Path '$copy' 'x.png'))"
"@
            $r.ExitCode | Should -Be 0 -Because $r.Output
            $r.Output | Should -Match 'id: PictureLibraryMissing,VfioMigration.Commands.ExportDirtyHeatmapCommand' -Because $r.Output
            $r.Output | Should -Match 'message: .*(runtimes/linux-\w+/native/libSkiaSharp\.so is missing|the assembly VfioMigration\.Pictures.* is missing)'
            $r.Output | Should -Match 'terminal: [1-9]'
            $r.Output | Should -Match 'file: False'
        }
    }
}
