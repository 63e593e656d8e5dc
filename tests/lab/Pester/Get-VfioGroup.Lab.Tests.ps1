# Runs in the lab guest (Guest-Checks.ps1): the module's discovery against a real kernel's sysfs.
BeforeAll {
    Import-Module "$env:VFIOLAB_REPO/module/VfioMigration.psd1"
}

Describe 'Get-VfioGroup on a real kernel (QEMU lab)' {
    It 'finds the edu device on vfio-pci in its group, with the device node present' {
        $g = Get-VfioGroup -Group ([int]$env:VFIOLAB_IOMMU_GROUP) -ErrorAction Stop
        $g.DeviceNodeExists | Should -BeTrue
        $g.HostKind | Should -Be 'Linux'
        $edu = $g.Devices | Where-Object Name -EQ $env:VFIOLAB_IOMMU_DEVICE
        $edu.Driver | Should -Be 'vfio-pci'
        $edu.VendorId | Should -Be 0x1234
        $edu.DeviceId | Should -Be 0x11e8
        $edu.BoundToVfio | Should -BeTrue
    }

    It 'finds the mtty mdev by its UUID, on the mdev bus, with its type' {
        $g = Get-VfioGroup -Device $env:VFIOLAB_MDEV_DEVICE -ErrorAction Stop
        $g.Group | Should -Be ([int]$env:VFIOLAB_MDEV_GROUP)
        $m = $g.Devices | Where-Object Name -EQ $env:VFIOLAB_MDEV_DEVICE
        $m.Bus | Should -Be 'mdev'
        $m.MdevType | Should -Be 'mtty-2'
        $m.Driver | Should -Be 'mtty'
    }
}
