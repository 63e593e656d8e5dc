# Runs in the lab guest (Guest-Checks.ps1): Get-DirtyBitmap on the real kernel's type1 IOMMU, with the edu
# device behind QEMU's VT-d (every mapped page reads dirty on every read, kernel-interface.md c.3).
Describe 'Get-DirtyBitmap on a real kernel (QEMU lab, edu behind VT-d)' {
    BeforeAll {
        Import-Module "$env:VFIOLAB_REPO/module/VfioMigration.psd1"
        $script:Container = New-VfioContainer -Group ([int]$env:VFIOLAB_IOMMU_GROUP) -ErrorAction Stop
    }
    AfterAll { $Container | Remove-VfioContainer -Confirm:$false }

    It 'reads two mappings and the gap between them in one GET_BITMAP, into the bitmap it returns' {
        $null = New-VfioDmaMapping -Container $Container -Iova 0x100000 -Size 1MB -ErrorAction Stop
        $null = New-VfioDmaMapping -Container $Container -Iova 0x300000 -Size 2MB -ErrorAction Stop
        $Container | Start-DirtyTracking -Confirm:$false -ErrorAction Stop
        $all = Get-DirtyBitmap -InputObject $Container -Verbose 4>&1
        $calls = @($all | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and "$_" -match 'VFIO_IOMMU_DIRTY_PAGES\(GET_BITMAP' })
        $calls.Count | Should -Be 1
        "$($calls[0])" | Should -Match 'GET_BITMAP iova 0x100000 size 0x400000\) on /dev/vfio/vfio -> 0'
        $b = $all | Where-Object { $_ -is [VfioMigration.Core.Dirty.DirtyBitmap] }
        ($b.Pages, $b.DirtyPages) | Should -Be @(1024, 768)
        (@(Get-DirtyBitmap -InputObject $Container -AsRange) | ForEach-Object ToString) | Should -Be @('0x100000+0x100000', '0x300000+0x200000')
        @(Get-DirtyBitmap -InputObject $Container -Granularity 2MB).Count | Should -Be 1
    }
}
