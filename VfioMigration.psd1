@{
    # The module's manifest. 'build.ps1 -Task Build' lays the assemblies into module/ and writes
    # module/VfioMigration.psd1 from this file (rooted at VfioMigration.dll, paths relative to module/);
    # 'build.ps1 -Task Package' copies that folder, LICENSE and docs/ as the publishable module. In a
    # checkout this manifest loads the built one as its nested module, so PowerShell finds the cmdlets'
    # help next to the dll.
    NestedModules        = @('module/VfioMigration.psd1')
    # The layers (docs/architecture.md) load with the module, so their types ([VfioMigration.Core.Simulation.SimulatedKernel],
    # [VfioMigration.Core.Migration.StateFile]) can be named in a script before any cmdlet has run.
    # VfioMigration.dll is among them because the type data (TypesToProcess) names its converters, and
    # PowerShell resolves those when it reads the type data, before it loads the root module.
    RequiredAssemblies   = @('module/VfioMigration.Native.dll', 'module/VfioMigration.Kernel.dll', 'module/VfioMigration.Linux.dll',
                             'module/VfioMigration.Simulation.dll', 'module/VfioMigration.Core.dll', 'module/VfioMigration.dll')
    ModuleVersion        = '0.1.0'
    GUID                 = '0d07a127-73b4-4986-9003-ba75917e2a5f'
    Author               = 'VfioMigration contributors'
    CompanyName          = 'VfioMigration'
    Copyright            = '(c) VfioMigration contributors. MIT License.'
    Description          = 'Linux VFIO device migration from PowerShell: IOMMU groups, containers, DMA mappings, dirty-page tracking and bitmaps, and stepped migration-state transitions, on real hosts or a simulated one.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    # Type data: how the objects survive serialization (Export-Clixml, jobs, remoting; docs/fleet.md).
    TypesToProcess       = @('module/VfioMigration.types.ps1xml')
    FormatsToProcess     = @('module/VfioMigration.format.ps1xml')
    CmdletsToExport      = @(
        'Connect-VfioHost'
        'Disconnect-VfioHost'
        'Get-VfioHost'
        'Get-VfioGroup'
        'Get-VfioDevice'
        'New-VfioContainer'
        'Get-VfioContainer'
        'Remove-VfioContainer'
        'Get-VfioIommuInfo'
        'New-VfioDmaMapping'
        'Get-VfioDmaMapping'
        'Remove-VfioDmaMapping'
        'Start-DirtyTracking'
        'Stop-DirtyTracking'
        'Get-DirtyBitmap'
        'Measure-DirtyRate'
        'Export-DirtyBitmap'
        'Import-DirtyBitmap'
        'Compare-DirtyBitmap'
        'Export-DirtyHeatmap', 'Show-DirtyHeatmap', 'Export-DirtyRateChart', 'Export-MigrationChart'
        'Get-VfioMigrationState'
        'Set-VfioMigrationState'
        'Get-VfioMigrationInfo'
        'Reset-VfioDevice'
        'Save-VfioDeviceState'
        'Restore-VfioDeviceState'
        'Start-VfioMigration', 'Get-VfioMigration'
        'Test-VfioMigration'
        'Test-VfioDevice'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            # Gallery metadata. Tags are single words (a gallery splits them at spaces). The project has no
            # public address, so ProjectUri and LicenseUri are left out rather than empty (an empty URI is
            # refused by Publish-PSResource); the license ships in the package as LICENSE.
            Tags         = @('VFIO', 'Linux', 'Migration', 'LiveMigration', 'IOMMU', 'DirtyPages', 'DirtyTracking', 'QEMU', 'Virtualization')
            ReleaseNotes = '0.1.0, the first release: IOMMU groups, containers and DMA mappings; dirty-page tracking (IOMMU and device DMA logs), bitmaps and dirty rates; v1 and v2 migration states stepped along the kernel''s path; verified device-state files; pre-copy migration with a report and a pre-flight check (Test-VfioMigration); the migration-driver conformance suite (Test-VfioDevice); a simulated VFIO host for machines without VFIO.'
        }
    }
}
