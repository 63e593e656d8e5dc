# QEMU 10 as a second truth about mtty's migration stream (tests/lab/Pester/Qemu.Lab.Tests.ps1): start
# QEMU with the mdev and talk QMP to it, read and splice the VFIO device data in QEMU's migration stream,
# and turn a module state file into bytes and bytes into a module state file. Dot-source it after the
# module is imported.
#
# The stream reader understands ONLY QEMU's VFIO framing (hw/vfio/migration.c, QEMU 10.0): device data is
# `be64 0xffffffffef100004, be64 size, size bytes`, one frame per non-empty read of the data fd, and the
# frames of one save iteration follow each other, the first right after its section header (one type byte,
# 0x02 PART for pre-copy, 0x03 END for stop-copy, then a be32 section id). It does not parse QEMU's
# sections, RAM or device state in general: it finds the frames by their flag, and it refuses a stream in
# which a frame is not followed by another VFIO flag (0xffffffffef1000xx), so that bytes which merely look
# like a flag are never taken for device data.

# (A PowerShell hex literal this large is a negative Int64: parse the constants as UInt64.)
$script:VfioDataFlag = [uint64]::Parse('ffffffffef100004', 'HexNumber')
$script:VfioFlagPrefix = [uint64]::Parse('ffffffffef100000', 'HexNumber')
$script:VfioFlagMask = [uint64]::Parse('ffffffffffffff00', 'HexNumber')

function Read-BigEndianUInt64([byte[]] $Bytes, [long] $At) {
    # (PowerShell cannot make spans: BitConverter reads little-endian, then the bytes are swapped.)
    [Buffers.Binary.BinaryPrimitives]::ReverseEndianness([BitConverter]::ToUInt64($Bytes, [int]$At))
}

function Get-QemuVfioFrame {
    # The VFIO device-data frames of a QEMU migration stream, in order: Offset (of the data), Size, Phase
    # (PreCopy or StopCopy, from the section the iteration's first frame follows).
    param([Parameter(Mandatory)] [byte[]] $Stream)
    $frames = [Collections.Generic.List[object]]::new()
    $previousEnd = -1
    $phase = $null
    $from = 9
    while ($true) {
        # The flag is ff ff ff ff ef 10 00 04: find its fifth byte natively, then check the rest.
        $p = [Array]::IndexOf($Stream, [byte]0xef, $from)
        if ($p -lt 0 -or $p + 20 -gt $Stream.Length) { break }
        $from = $p + 1
        $i = $p - 4
        if ((Read-BigEndianUInt64 $Stream $i) -ne $script:VfioDataFlag) { continue }
        $size = Read-BigEndianUInt64 $Stream ($i + 8)
        $data = $i + 16
        if ($size -gt [uint64]($Stream.Length - $data - 8)) { throw "QEMU stream: a VFIO data frame at byte $i claims $size bytes, more than the stream holds" }
        $next = Read-BigEndianUInt64 $Stream ($data + [long]$size)
        if (($next -band $script:VfioFlagMask) -ne $script:VfioFlagPrefix) {
            throw "QEMU stream: the VFIO data frame at byte $i is not followed by a VFIO flag (0x$('{0:x16}' -f $next)): this reader knows only QEMU 10's VFIO framing"
        }
        if ($i -ne $previousEnd) {
            $phase = switch ($Stream[$i - 5]) {
                0x02 { 'PreCopy' }
                0x03 { 'StopCopy' }
                default { throw "QEMU stream: the VFIO data frame at byte $i follows no PART or END section header (byte 0x$('{0:x2}' -f $Stream[$i - 5]))" }
            }
        }
        $frames.Add([pscustomobject]@{ Offset = [int]$data; Size = [int]$size; Phase = $phase })
        $previousEnd = $data + [long]$size
        $from = [int]$previousEnd
    }
    $frames.ToArray()
}

function Get-QemuVfioPayload {
    # The device's bytes in a QEMU stream: its VFIO data frames joined, in order.
    param([Parameter(Mandatory)] [byte[]] $Stream)
    $out = [IO.MemoryStream]::new()
    foreach ($f in Get-QemuVfioFrame $Stream) { $out.Write($Stream, $f.Offset, $f.Size) }
    , $out.ToArray()
}

function Set-QemuVfioPayload {
    # A copy of the stream with its VFIO frames' data replaced by Payload (of the same total length, so
    # every frame keeps its size and QEMU's framing stays valid).
    param([Parameter(Mandatory)] [byte[]] $Stream, [Parameter(Mandatory)] [byte[]] $Payload)
    $frames = @(Get-QemuVfioFrame $Stream)
    $total = ($frames | Measure-Object Size -Sum).Sum
    if ($total -ne $Payload.Length) { throw "cannot splice $($Payload.Length) bytes into QEMU frames that carry $total" }
    $copy = [byte[]]$Stream.Clone()
    $at = 0
    foreach ($f in $frames) {
        [Array]::Copy($Payload, [int]$at, $copy, $f.Offset, $f.Size)
        $at += $f.Size
    }
    , $copy
}

function Get-StateFilePayload {
    # The device bytes of a module state file (verified as Restore-VfioDeviceState verifies it), all chunks
    # in order, copied out of the file at the offsets the verification returned.
    param([Parameter(Mandatory)] [string] $Path)
    $contents = [VfioMigration.Core.Migration.StateFile]::Verify($Path)
    $file = [IO.File]::ReadAllBytes($Path)
    $out = [IO.MemoryStream]::new()
    foreach ($chunk in $contents.Chunks) { $out.Write($file, [int]$chunk.Offset, $chunk.Length) }
    , $out.ToArray()
}

function New-StateFileFromQemu {
    # A module state file holding the device data of a QEMU stream, frame by frame with QEMU's phases,
    # for the device a module-written state file (IdentityFrom) names.
    param([Parameter(Mandatory)] [string] $Path, [Parameter(Mandatory)] [byte[]] $Stream, [Parameter(Mandatory)] [string] $IdentityFrom)
    $like = [VfioMigration.Core.Migration.StateFile]::Verify($IdentityFrom)
    if (Test-Path $Path) { Remove-Item $Path }
    $writer = [VfioMigration.Core.Migration.StateFile+Writer]::new($Path, $like.Identity, $like.PageSize, $true)
    try {
        foreach ($f in Get-QemuVfioFrame $Stream) {
            $data = [byte[]]::new($f.Size)
            [Array]::Copy($Stream, $f.Offset, $data, [int]0, $f.Size)
            $writer.WriteChunk([VfioMigration.Core.Migration.MigrationPhase]$f.Phase, $data)
        }
        $writer.Commit()
    }
    finally { $writer.Dispose() }
}

class QmpClient : IDisposable {
    # A QMP session over QEMU's unix socket: one JSON object per line each way; events are skipped.
    [Net.Sockets.Socket] $Socket
    [IO.StreamReader] $Reader
    [IO.StreamWriter] $Writer

    QmpClient([string] $path, [TimeSpan] $timeout) {
        $deadline = [DateTime]::UtcNow + $timeout
        while ($true) {
            $this.Socket = [Net.Sockets.Socket]::new([Net.Sockets.AddressFamily]::Unix, [Net.Sockets.SocketType]::Stream, [Net.Sockets.ProtocolType]::Unspecified)
            try { $this.Socket.Connect([Net.Sockets.UnixDomainSocketEndPoint]::new($path)); break }
            catch {
                $this.Socket.Dispose()
                if ([DateTime]::UtcNow -gt $deadline) { throw "QMP: QEMU did not open $path within $timeout" }
                Start-Sleep -Milliseconds 200
            }
        }
        $this.Socket.ReceiveTimeout = 120000
        $stream = [Net.Sockets.NetworkStream]::new($this.Socket, $true)
        $this.Reader = [IO.StreamReader]::new($stream)
        $this.Writer = [IO.StreamWriter]::new($stream)
        $this.Writer.AutoFlush = $true
        $greeting = $this.Reader.ReadLine() | ConvertFrom-Json
        if (-not $greeting.QMP) { throw "QMP: no greeting on $path" }
        $this.Invoke('qmp_capabilities', $null) | Out-Null
    }

    [object] Invoke([string] $command, [hashtable] $arguments) {
        $request = @{ execute = $command }
        if ($arguments) { $request.arguments = $arguments }
        $this.Writer.WriteLine(($request | ConvertTo-Json -Compress -Depth 5))
        while ($true) {
            $line = $this.Reader.ReadLine()
            if ($null -eq $line) { throw "QMP: QEMU closed the connection during '$command'" }
            $answer = $line | ConvertFrom-Json
            if ($answer.PSObject.Properties['event']) { continue }
            if ($answer.PSObject.Properties['error']) { throw "QMP $command`: $($answer.error.class): $($answer.error.desc)" }
            return $answer.return
        }
        return $null
    }

    [void] Dispose() {
        if ($this.Reader) { $this.Reader.Dispose() }
        if ($this.Socket) { $this.Socket.Dispose() }
    }
}

function Start-LabQemu {
    # QEMU 10 (unpacked under Root), paused, no guest kernel, with the mdev as a vfio-pci device and QMP on a
    # unix socket; -Incoming waits for migrate-incoming. Returns the process, its QMP client and its log.
    # An empty -Device runs QEMU without the mdev (to try the QMP plumbing on a machine without VFIO).
    param(
        [Parameter(Mandatory)] [string] $Root,
        [AllowEmptyString()] [string] $Device,
        [Parameter(Mandatory)] [string] $WorkDir,
        [switch] $Incoming
    )
    $name = "qemu-$([Guid]::NewGuid().ToString('n').Substring(0, 8))"
    $socket = Join-Path $WorkDir "$name.qmp"
    $log = Join-Path $WorkDir "$name.log"
    $qemuArgs = @(
        '-L', "$Root/usr/share/seabios", '-L', "$Root/usr/share/qemu",
        '-no-user-config', '-nodefaults', '-machine', 'q35', '-accel', 'tcg', '-m', '64M', '-display', 'none', '-S',
        '-qmp', "unix:$socket,server=on,wait=off"
    )
    # Debian's 6.12 cannot report device DMA logs (EOPNOTSUPP): QEMU must use the container's tracking.
    if ($Device) { $qemuArgs += @('-device', "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$Device,id=mtty,x-device-dirty-page-tracking=off,enable-migration=on") }
    if ($Incoming) { $qemuArgs += @('-incoming', 'defer') }
    $info = [Diagnostics.ProcessStartInfo]::new("$Root/usr/bin/qemu-system-x86_64")
    foreach ($a in $qemuArgs) { $info.ArgumentList.Add($a) }
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.UseShellExecute = $false
    $process = [Diagnostics.Process]::Start($info)
    $outTask = $process.StandardOutput.ReadToEndAsync()
    $errTask = $process.StandardError.ReadToEndAsync()
    try { $qmp = [QmpClient]::new($socket, [TimeSpan]::FromSeconds(90)) }
    catch {
        if (-not $process.HasExited) { $process.Kill() }
        $process.WaitForExit()
        throw "QEMU did not start: $($_.Exception.Message); QEMU said: $($errTask.Result)$($outTask.Result)"
    }
    [pscustomobject]@{ Process = $process; Qmp = $qmp; Log = $log; Output = $outTask; Errors = $errTask }
}

function Get-MigrationError($Status) {
    # query-migrate's error-desc, present only after a failure (the guest runs under Set-StrictMode).
    $p = $Status.PSObject.Properties['error-desc']
    if ($p) { $p.Value } else { '' }
}

function Wait-QmpMigration {
    # Polls query-migrate until the migration (out or in) ends; returns its last status object.
    param([Parameter(Mandatory)] $Qemu, [TimeSpan] $Timeout = [TimeSpan]::FromSeconds(180))
    $deadline = [DateTime]::UtcNow + $Timeout
    while ($true) {
        $status = $Qemu.Qmp.Invoke('query-migrate', $null)
        if ($status.status -in 'completed', 'failed', 'cancelled') { return $status }
        if ([DateTime]::UtcNow -gt $deadline) { throw "QEMU's migration did not end within $Timeout (status $($status.status))" }
        Start-Sleep -Milliseconds 250
    }
}

function Stop-LabQemu {
    # quit, then wait for the process; what QEMU printed is returned (its errors explain a failed load).
    param([Parameter(Mandatory)] $Qemu)
    try { $Qemu.Qmp.Invoke('quit', $null) | Out-Null } catch { }
    $Qemu.Qmp.Dispose()
    if (-not $Qemu.Process.WaitForExit(30000)) { $Qemu.Process.Kill(); $Qemu.Process.WaitForExit() }
    "$($Qemu.Errors.Result)$($Qemu.Output.Result)"
}

function Save-QemuStream {
    # QEMU migrates the paused VM, with the mdev, to a file; returns the stream's bytes.
    param([Parameter(Mandatory)] [string] $Root, [AllowEmptyString()] [string] $Device, [Parameter(Mandatory)] [string] $WorkDir)
    $file = Join-Path $WorkDir "out-$([Guid]::NewGuid().ToString('n').Substring(0, 8)).qemu"
    $qemu = Start-LabQemu -Root $Root -Device $Device -WorkDir $WorkDir
    $failure = $null
    try {
        $qemu.Qmp.Invoke('migrate', @{ uri = "file:$file" }) | Out-Null
        $status = Wait-QmpMigration $qemu
        if ($status.status -ne 'completed') { throw "QEMU's save ended $($status.status): $(Get-MigrationError $status)" }
    }
    catch { $failure = $_ }
    finally { $said = Stop-LabQemu $qemu }
    if ($failure) { throw "$($failure.Exception.Message) (QEMU said: $said)" }
    , [IO.File]::ReadAllBytes($file)
}

function Invoke-QemuIncoming {
    # QEMU loads a stream (-incoming defer, migrate-incoming file:), and when that succeeds runs the VM for a
    # moment, stops it and migrates it out again: Status (of the load), Error, and Out (the stream it wrote).
    param([Parameter(Mandatory)] [string] $Root, [AllowEmptyString()] [string] $Device, [Parameter(Mandatory)] [string] $WorkDir,
        [Parameter(Mandatory)] [byte[]] $Stream)
    $in = Join-Path $WorkDir "in-$([Guid]::NewGuid().ToString('n').Substring(0, 8)).qemu"
    $out = Join-Path $WorkDir "out-$([Guid]::NewGuid().ToString('n').Substring(0, 8)).qemu"
    [IO.File]::WriteAllBytes($in, $Stream)
    $qemu = Start-LabQemu -Root $Root -Device $Device -WorkDir $WorkDir -Incoming
    $result = [ordered]@{ Status = $null; Error = $null; Out = $null; Said = $null }
    try {
        $qemu.Qmp.Invoke('migrate-incoming', @{ uri = "file:$in"; 'exit-on-error' = $false }) | Out-Null
        $status = Wait-QmpMigration $qemu
        $result.Status = $status.status
        $result.Error = Get-MigrationError $status
        if ($status.status -eq 'completed') {
            $qemu.Qmp.Invoke('cont', $null) | Out-Null
            $qemu.Qmp.Invoke('stop', $null) | Out-Null
            $qemu.Qmp.Invoke('migrate', @{ uri = "file:$out" }) | Out-Null
            $again = Wait-QmpMigration $qemu
            if ($again.status -ne 'completed') { throw "QEMU's save after the load ended $($again.status): $(Get-MigrationError $again)" }
            $result.Out = [IO.File]::ReadAllBytes($out)
        }
    }
    finally { $result.Said = Stop-LabQemu $qemu }
    [pscustomobject]$result
}
