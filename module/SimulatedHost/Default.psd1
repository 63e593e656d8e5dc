# The simulated VFIO host that ships with VfioMigration (Connect-VfioHost -Simulated).
# Every key is described in docs/simulated-host.md. Numbers may be written as 2MB, 0x1000 or 4096.
@{
    Name   = 'default lab'
    # The kernel reports device DMA logs (CONFIG_IOMMUFD_DRIVER): $false answers as Debian's 6.12 does.
    IommufdDriver = $true
    # The kernel has iommufd and the vfio cdev (/dev/iommu, /dev/vfio/devices/vfioN): New-VfioContainer
    # -Backend Iommufd works beside the legacy container. Its VT-d can track dirty pages (scalable mode with
    # SSADS and SMPWC), as a recent server's can and no QEMU vIOMMU does; group 16 sits behind one that cannot.
    Iommufd = $true
    IommuDirtyTracking = $true
    Groups = @(
        # A PCI function behind the IOMMU on vfio-pci, without a migration driver (like QEMU's edu device).
        # While dirty tracking runs, every mapped page reads dirty: the kernel cannot see its DMA.
        @{ Group = 2; Devices = @(
            @{ Name = '0000:00:02.0'; Bus = 'pci'; VendorId = 0x1234; DeviceId = 0x11e8; Driver = 'vfio-pci'; Reset = $false }
        ) }

        # A group that is not viable: one function is on vfio-pci, its sibling still on its host driver.
        @{ Group = 3; Devices = @(
            @{ Name = '0000:00:03.0'; Bus = 'pci'; VendorId = 0x8086; DeviceId = 0x10d3; Driver = 'vfio-pci' }
            @{ Name = '0000:00:03.1'; Bus = 'pci'; VendorId = 0x8086; DeviceId = 0x10d3; Driver = 'e1000e' }
        ) }

        # The kernel's mtty sample: an mdev with v2 migration (96 bytes of state, 24 of them in pre-copy).
        @{ Group = 7; Devices = @(
            @{ Name = '36e5c7cc-4871-4d03-91da-44479a60a911'; Bus = 'mdev'; MdevType = 'mtty-2'; Driver = 'mtty'
               Migration = 'v2'; MigrationFlags = 'STOP_COPY,P2P,PRE_COPY'; DmaLogging = $true; Reset = $false
               Workload = @{ StateSize = 96; InitialBytes = 24 } }
        ) }

        # Two vGPU-style mdevs with v2 migration, a source and a destination: 64 MiB of device state,
        # 48 MiB offered in pre-copy, state changing at 2 MiB/s and 500 guest pages/s pinned while running.
        @{ Group = 10; Devices = @(
            @{ Name = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a61'; Bus = 'mdev'; MdevType = 'vgpu-4q'; Driver = 'vgpu'
               Migration = 'v2'; MigrationFlags = 'STOP_COPY,P2P,PRE_COPY'
               Workload = @{ StateSize = 64MB; InitialBytes = 48MB; StateDirtyBytesPerSecond = 2MB; GuestDirtyPagesPerSecond = 500; Seed = 10 } }
        ) }
        @{ Group = 11; Devices = @(
            @{ Name = '8a1f3c2e-5b6d-4e7f-9a0b-1c2d3e4f5a62'; Bus = 'mdev'; MdevType = 'vgpu-4q'; Driver = 'vgpu'
               Migration = 'v2'; MigrationFlags = 'STOP_COPY,P2P,PRE_COPY'
               Workload = @{ StateSize = 64MB; InitialBytes = 48MB; Seed = 11 } }
        ) }

        # Two devices of the 5.8 series' v1 migration region (device_state bits, pending_bytes, data window).
        @{ Group = 12; Devices = @(
            @{ Name = '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b51'; Bus = 'mdev'; MdevType = 'vgpu-v1'; Driver = 'vgpu'
               Migration = 'v1'; Workload = @{ StateSize = 8MB; InitialBytes = 6MB; StateDirtyBytesPerSecond = 256KB; Seed = 12 } }
        ) }
        @{ Group = 13; Devices = @(
            @{ Name = '5e0b7a64-2c1d-4f3e-8b9a-0d1e2f3a4b52'; Bus = 'mdev'; MdevType = 'vgpu-v1'; Driver = 'vgpu'
               Migration = 'v1'; Workload = @{ StateSize = 8MB; InitialBytes = 6MB; Seed = 13 } }
        ) }

        # A device whose state changes faster than any link drains it: pre-copy never converges.
        @{ Group = 14; Devices = @(
            @{ Name = '0000:3b:00.1'; Bus = 'pci'; VendorId = 0x15b3; DeviceId = 0x101e; Driver = 'mlx5_vfio_pci'
               Migration = 'v2'; MigrationFlags = 'STOP_COPY,P2P,PRE_COPY'; DmaLogging = $true
               Workload = @{ StateSize = 256MB; InitialBytes = 128MB; StateDirtyBytesPerSecond = 1GB; GuestDirtyPagesPerSecond = 20000; Seed = 14 } }
        ) }

        # A PCI function behind a second IOMMU unit that cannot track dirty pages (as QEMU's vIOMMU): an iommufd
        # container over it warns and falls back. Its DMA writes 200 guest pages a second.
        @{ Group = 16; IommuDirtyTracking = $false; Devices = @(
            @{ Name = '0000:00:06.0'; Bus = 'pci'; VendorId = 0x1234; DeviceId = 0x11e8; Driver = 'vfio-pci'; Reset = $false
               Workload = @{ GuestDirtyPagesPerSecond = 200; Seed = 16 } }
        ) }

        # A group another process holds open: opening it answers EBUSY, and /proc names the holder.
        @{ Group = 15; HeldBy = @{ Pid = 4242; Command = 'qemu-system-x86_64' }; Devices = @(
            @{ Name = '0000:00:05.0'; Bus = 'pci'; VendorId = 0x1b36; DeviceId = 0x0005; Driver = 'vfio-pci' }
        ) }
    )
}
