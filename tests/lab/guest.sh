#!/bin/sh
# Runs in the lab guest (busybox), from the writable 9p share, which Invoke-Lab.ps1 fills with this script
# and lab.env. It binds the emulated PCI devices to vfio-pci, creates two mtty-2 mdevs, then enters the host
# root (9p, read-only, under a tmpfs overlay) and runs ONE pwsh there: .NET start-up under TCG costs
# 10-20 s per process (kernel-interface.md lab 4), so everything the guest checks happens inside it.
. /mnt/lab/lab.env
SHARE_DIR=/mnt/lab
uptime_s() { cut -d' ' -f1 /proc/uptime; }
note() { echo "LAB: $*"; }
record() { echo "$1=$2" >> "$SHARE_DIR/guest-timings.env"; }
: > "$SHARE_DIR/guest-timings.env"

note "guest kernel $(uname -r)"
dmesg | grep -E 'DMAR: IOMMU enabled|IRQ remapping|Adding to iommu group|mtty' | sed 's/^/  /'

# --- vfio-pci: QEMU's edu (1234:11e8) and an e1000e (8086:10d3) --------------------------------------
for dev in /sys/bus/pci/devices/*; do
    id="$(cat "$dev/vendor"):$(cat "$dev/device")"
    case "$id" in 0x1234:0x11e8|0x8086:0x10d3) ;; *) continue ;; esac
    bdf=$(basename "$dev")
    [ -e "$dev/driver" ] && echo "$bdf" > "$dev/driver/unbind"
    echo vfio-pci > "$dev/driver_override"
    echo "$bdf" > /sys/bus/pci/drivers_probe
    group=$(basename "$(readlink "$dev/iommu_group")")
    note "bound $bdf ($id) -> $(basename "$(readlink "$dev/driver")") group $group"
done

# --- two mtty mdevs (type mtty-2), with the UUIDs the simulated twin uses: the second is where restores go
types=/sys/class/mdev_bus/mtty/mdev_supported_types
if [ -d "$types/mtty-2" ]; then
    for uuid in "$MTTY_UUID" "$MTTY_PEER_UUID"; do
        [ -n "$uuid" ] || continue
        echo "$uuid" > "$types/mtty-2/create" && \
            note "created mdev $uuid (mtty-2) group $(basename "$(readlink "/sys/bus/mdev/devices/$uuid/iommu_group")")"
    done
else
    note "no mtty parent in sysfs (mtty.ko not loaded?)"
fi
# devtmpfs creates the group nodes asynchronously; give them a second.
for _ in 1 2 3 4 5 6 7 8 9 10; do
    set -- /dev/vfio/[0-9]*
    [ -e "$1" ] && break
    sleep 0.1
done
note "/dev/vfio: $(ls /dev/vfio | tr '\n' ' ')"
record T_BOUND "$(uptime_s)"

# --- the host root: 9p read-only lower, tmpfs upper (the SDK writes to /tmp/.dotnet and HOME) ---------
ROOT=/mnt/root
mkdir -p /mnt/hostro /mnt/rw "$ROOT"
# multidevs=remap on the QEMU side is what keeps inode numbers of different host filesystems apart;
# without it CoreCLR fails to start (kernel-interface.md lab 3.2).
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /mnt/hostro \
    || { note "cannot mount the host root (9p tag hostroot)"; exit 1; }
mount -t tmpfs -o size=1g tmpfs /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/hostro,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work "$ROOT" \
    || { note "cannot mount the overlay over the host root"; exit 1; }
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount -t devtmpfs devtmpfs "$ROOT/dev"
mkdir -p "$ROOT/dev/shm" "$ROOT/dev/pts"
mount -t tmpfs tmpfs "$ROOT/dev/shm"
mount -t tmpfs tmpfs "$ROOT/run"
mount -t tmpfs tmpfs "$ROOT/tmp"
# A repository under /tmp or /run (CI may clone there) is hidden by the fresh tmpfs: show it at its own
# path again, read-only from the host root, before the share (which may lie inside it) is bound.
if [ ! -e "$ROOT$REPO/VfioMigration.psd1" ]; then
    mkdir -p "$ROOT$REPO" 2>/dev/null
    mount -o bind "/mnt/hostro$REPO" "$ROOT$REPO" || { note "cannot show the repository $REPO in the chroot"; exit 1; }
    note "repository $REPO bound into the chroot (it lies under a fresh tmpfs there)"
fi
# The share appears at its host path, so the host and the guest name the same files alike.
mkdir -p "$ROOT$SHARE"
mount -o bind "$SHARE_DIR" "$ROOT$SHARE"
mkdir -p "$ROOT$GUEST_HOME"
note "chroot ready, /dev/vfio in the chroot: $(ls "$ROOT/dev/vfio" | tr '\n' ' ')"

record T_PWSH_START "$(uptime_s)"
env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$GUEST_HOME" NUGET_PACKAGES="$NUGET_ROOT" TMPDIR=/tmp TERM=dumb NO_COLOR=1 LANG=C.UTF-8 \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
    DOTNET_ADD_GLOBAL_TOOLS_TO_PATH=0 DOTNET_GENERATE_ASPNET_CERTIFICATE=false \
    POWERSHELL_UPDATECHECK=Off POWERSHELL_TELEMETRY_OPTOUT=1 \
    VFIOLAB_MTTY_UUID="$MTTY_UUID" VFIOLAB_QEMU10="$QEMU10_ROOT" \
    chroot "$ROOT" "$DOTNET" "$PWSH_DLL" -NoProfile -NonInteractive -File "$SUITE" \
        -RepoRoot "$REPO" -OutDir "$SHARE" -MttyUuid "$MTTY_UUID" -MttyPeerUuid "$MTTY_PEER_UUID"
rc=$?
record T_PWSH_END "$(uptime_s)"
record PWSH_EXIT "$rc"
note "pwsh exit status $rc"
exit $rc
