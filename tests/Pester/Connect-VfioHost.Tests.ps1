BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
}
AfterAll { Disconnect-VfioHost }

Describe 'Connect-VfioHost' {
    It 'connects to the shipped simulated host only when asked, and says so' {
        $h = Connect-VfioHost -Simulated
        $h.Kind | Should -Be 'Simulated'
        $h.VfioPresent | Should -BeTrue
        $h.Configuration | Should -BeLike '*/module/SimulatedHost/Default.psd1'
        $h.Configuration | Should -Exist
        (Get-VfioHost).Kind | Should -Be 'Simulated'
    }

    It 'without -Simulated on a machine without VFIO fails with VfioNotPresent pointing to -Simulated' -Skip:(Test-Path /dev/vfio/vfio) {
        Connect-VfioHost -Simulated | Out-Null
        { Connect-VfioHost -ErrorAction Stop } | Should -Throw -ErrorId 'VfioNotPresent,VfioMigration.Commands.ConnectVfioHostCommand'
        try { Connect-VfioHost -ErrorAction Stop } catch { $_.Exception.Message | Should -Match 'Connect-VfioHost -Simulated' }
        (Get-VfioHost).Kind | Should -Be 'Simulated' -Because 'a failed connect leaves the session where it was'
    }

    It 'reads a configuration file of the user''s own' {
        $file = Join-Path $TestDrive 'one.psd1'
        Set-Content $file "@{ Name = 'tiny'; Groups = @(@{ Group = 42; Devices = @(@{ Name = '0000:01:00.0'; Bus = 'pci' }) }) }"
        $h = Connect-VfioHost -Simulated -Configuration $file
        $h.Description | Should -Match 'tiny'
        $h.Groups | Should -Be 1
        (Get-VfioGroup).Group | Should -Be 42
    }

    It 'refuses a misspelt key, naming it' {
        $file = Join-Path $TestDrive 'bad.psd1'
        Set-Content $file "@{ Groups = @(@{ Group = 1; Devices = @(@{ Name = '0000:01:00.0'; Buss = 'pci' }) }) }"
        { Connect-VfioHost -Simulated -Configuration $file -ErrorAction Stop } | Should -Throw -ErrorId 'ConfigurationInvalid,VfioMigration.Commands.ConnectVfioHostCommand'
        try { Connect-VfioHost -Simulated -Configuration $file -ErrorAction Stop } catch { $_.Exception.Message | Should -Match "Unknown key 'Buss'" }
    }

    It 'refuses a file that is not data, without running it' {
        $file = Join-Path $TestDrive 'code.psd1'
        Set-Content $file "@{ Name = (Remove-Item -Recurse /); Groups = @() }"
        { Connect-VfioHost -Simulated -Configuration $file -ErrorAction Stop } | Should -Throw -ErrorId 'ConfigurationInvalid,VfioMigration.Commands.ConnectVfioHostCommand'
    }

    It 'returns to this machine''s kernel with Disconnect-VfioHost' {
        Connect-VfioHost -Simulated | Out-Null
        Disconnect-VfioHost | Should -BeNullOrEmpty
        (Get-VfioHost).Kind | Should -Be 'Linux'
        (Disconnect-VfioHost -PassThru).Kind | Should -Be 'Linux'
    }

    It 'reports a missing file' {
        { Connect-VfioHost -Simulated -Configuration (Join-Path $TestDrive 'none.psd1') -ErrorAction Stop } |
            Should -Throw -ErrorId 'ConfigurationNotFound,VfioMigration.Commands.ConnectVfioHostCommand'
    }
}
