# A machine without VFIO, as a first-time user meets it (this one: no /dev/vfio). Every command that needs
# VFIO says what is missing and how to rehearse, with an error id; listings say why they are empty.
BeforeAll {
    Import-Module "$PSScriptRoot/../../VfioMigration.psd1" -Force
    $script:HasVfio = Test-Path /dev/vfio/vfio
}

Describe 'This machine without /dev/vfio' {
    BeforeEach { Disconnect-VfioHost }
    AfterAll { Disconnect-VfioHost }

    It 'New-VfioContainer says what is missing and how to rehearse, with an error id' -Skip:(Test-Path /dev/vfio/vfio) {
        { New-VfioContainer -Group 2 -ErrorAction Stop } | Should -Throw -ErrorId '*' -PassThru -OutVariable e | Out-Null
        $e[0].FullyQualifiedErrorId | Should -Match '^(NoIommu|VfioNotPresent),'
        "$($e[0])" | Should -Match 'Connect-VfioHost -Simulated'
        "$($e[0])" | Should -Match 'IOMMU|modprobe vfio-pci'
        $e[0].CategoryInfo.Category | Should -Be 'ResourceUnavailable'
    }

    It 'New-VfioContainer -Device and Get-VfioDevice say the same instead of a raw ENOENT or nothing' -Skip:(Test-Path /dev/vfio/vfio) {
        $devices = @(Get-VfioDevice -WarningVariable w -WarningAction SilentlyContinue)
        $devices | Should -HaveCount 0
        "$($w[0])" | Should -Match 'Connect-VfioHost -Simulated'
        $groups = @(Get-VfioGroup -WarningVariable g -WarningAction SilentlyContinue)
        $g | Should -HaveCount 1
        if ($groups.Count -eq 0) { "$($g[0])" | Should -Match 'no IOMMU groups' }
        "$($g[0])" | Should -Match 'Connect-VfioHost -Simulated'
    }

    It 'the same command works once the session is on the simulated host' {
        Connect-VfioHost -Simulated | Out-Null
        (New-VfioContainer -Group 2).Groups.Number | Should -Be 2
    }
}
