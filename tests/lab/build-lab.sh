#!/usr/bin/env bash
# Builds what the QEMU lab boots, from Debian's packages alone, into a cache outside the git tree:
#   - the host tools (QEMU, static busybox, kmod, a compiler for one module), installed with apt when missing;
#   - the guest kernel: the ABI that the meta-package linux-image-6.12-amd64 points at TODAY (never pinned:
#     security updates replace it and old ABIs leave the mirror), downloaded with `apt-get download` and
#     extracted with `dpkg-deb -x` (nothing kernel-related is installed on the host);
#   - mtty.ko, the kernel's mdev sample with v2 migration, built out of tree from linux-source's
#     samples/vfio-mdev/mtty.c against the extracted headers (Debian sets no CONFIG_SAMPLES);
#   - an initramfs: static busybox, the vfio/mdev/9p/overlay modules (dependencies resolved with
#     depmod/modprobe --show-depends, decompressed) and /init (tests/lab/init.sh);
#   - QEMU 10 from bookworm-backports, unpacked into the cache, for the guest's QEMU checks.
# Everything is keyed by the kernel release, so a second run on the same machine downloads nothing.
#
# Usage: build-lab.sh --out ENV_FILE [--cache DIR]
#   ENV_FILE receives KREL=, KERNEL=, INITRD= (shell syntax) for run-vm.sh, and QEMU10= (the unpacked root).
# Prints 'LABTIME <step> <seconds>' lines; exits non-zero with 'LAB BUILD FAILED: <reason>' on any failure.
set -euo pipefail
fail() { echo "LAB BUILD FAILED: $*" >&2; exit 1; }
# Any other command that fails under set -e still names itself, so the lab never fails without a reason.
set -E
trap 'fail "command failed with status $? at build-lab.sh line $LINENO: $BASH_COMMAND"' ERR

CACHE="${VFIOLAB_CACHE:-/var/tmp/vfiomigration-lab}"
OUT_ENV=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cache) CACHE="$2"; shift 2 ;;
        --out) OUT_ENV="$2"; shift 2 ;;
        *) echo "usage: $0 --out ENV_FILE [--cache DIR]" >&2; exit 2 ;;
    esac
done
[ -n "$OUT_ENV" ] || { echo "usage: $0 --out ENV_FILE [--cache DIR]" >&2; exit 2; }

HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$CACHE"
# Two labs building into one cache at once would extract over each other: take turns.
exec 9> "$CACHE/.build.lock"
flock 9
META=linux-image-6.12-amd64          # the 6.12 line bookworm-security carries, built with bookworm's gcc-12
SOURCE_PKG=linux-source-6.12
HOST_PACKAGES=(qemu-system-x86 busybox-static cpio kmod xz-utils dwarves gcc libc6-dev make bc)
# Modules the guest needs; their dependencies (irqbypass, vfio-pci-core, 9pnet, netfs) come from modules.dep.
# vfio_iommu_type1 is loaded by name because nothing depends on it (the container asks for it at SET_IOMMU).
GUEST_MODULES=(vfio vfio_iommu_type1 vfio-pci mdev 9pnet_virtio 9p overlay mtty)
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

now() { date +%s.%N; }
step_start=0
begin() { step_start=$(now); echo "==> lab build: $1"; }
finish() { printf 'LABTIME %s %.1f\n' "$1" "$(echo "$(now) - $step_start" | bc)"; }

# apt needs no sandbox user for a download into a root-owned cache.
APT_OPTS=(-q -o APT::Sandbox::User=root)

# --- 1. host tools ---------------------------------------------------------------------------------
begin "host packages"
missing=()
for p in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
lists_fresh() {
    # Lists younger than a day: the meta-package then names the ABI the mirror serves now.
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]
}
APT_UPDATED=0
apt_update() {
    [ "$APT_UPDATED" = 1 ] && return 0
    echo "apt-get update"
    apt-get "${APT_OPTS[@]}" update >/dev/null || fail "apt-get update failed (no network or no Debian mirror?)"
    APT_UPDATED=1
}
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || fail "missing host packages (${missing[*]}) and not root: run as root or install them with apt-get install --no-install-recommends ${missing[*]}"
    command -v apt-get >/dev/null || fail "missing host packages (${missing[*]}) and no apt-get: the lab needs Debian 12 (bookworm)"
    apt_update
    echo "apt-get install --no-install-recommends ${missing[*]}"
    apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null \
        || fail "apt-get install ${missing[*]} failed"
fi
finish host-packages

# --- 2. resolve the kernel -------------------------------------------------------------------------
begin "resolve kernel from $META"
lists_fresh || apt_update
resolve() {
    KIMAGE=$(apt-cache depends "$META" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }' || true)
    KREL=${KIMAGE#linux-image-}
    VERSION=$(apt-cache policy "linux-image-$KREL-unsigned" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }' || true)
}
resolve
if [ -z "$KIMAGE" ] || [ -z "$VERSION" ] || [ "$VERSION" = "(none)" ]; then
    apt_update
    resolve
fi
[ -n "$KIMAGE" ] || fail "apt-cache depends $META names no linux-image-* package (is bookworm-security in the apt sources?)"
if [ -z "$VERSION" ] || [ "$VERSION" = "(none)" ]; then fail "no candidate version for linux-image-$KREL-unsigned"; fi
KABI=${KREL%-amd64}                  # 6.12.117+deb12-amd64 -> 6.12.117+deb12
echo "kernel: $KREL (package version $VERSION)"
finish resolve-kernel

WORK="$CACHE/$KREL"
TREE="$WORK/tree"
HEADERS="$TREE/usr/src/linux-headers-$KREL"
MODDIR="$TREE/lib/modules/$KREL"
KERNEL="$TREE/boot/vmlinuz-$KREL"
mkdir -p "$WORK"

# --- 3. download and extract -----------------------------------------------------------------------
PACKAGES=("linux-image-$KREL-unsigned" "linux-headers-$KREL" "linux-headers-$KABI-common" "linux-kbuild-$KABI")
need_source=1
[ -s "$WORK/mtty/mtty.c" ] && need_source=0
need_tree=1
[ -f "$TREE/.extracted" ] && need_tree=0

if [ $need_tree = 1 ] || [ $need_source = 1 ]; then
    begin "download kernel packages"
    DEBS="$WORK/debs"
    mkdir -p "$DEBS"
    want=()
    [ $need_tree = 1 ] && want+=("${PACKAGES[@]}")
    [ $need_source = 1 ] && want+=("$SOURCE_PKG")
    get=()
    for p in "${want[@]}"; do
        f=$(ls "$DEBS/${p}_"*.deb 2>/dev/null | head -1 || true)
        if [ -n "$f" ] && [ "$(dpkg-deb -f "$f" Version)" = "$VERSION" ]; then continue; fi
        rm -f "$DEBS/${p}_"*.deb
        get+=("$p=$VERSION")
    done
    if [ ${#get[@]} -gt 0 ]; then
        echo "apt-get download ${get[*]}"
        if ! (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download "${get[@]}" >/dev/null); then
            # Lists up to a day old may name an ABI the mirror has since dropped: refresh and resolve
            # again once. Without a network the refresh itself fails, and says so.
            [ "$APT_UPDATED" = 1 ] && fail "apt-get download ${get[*]} failed (no network, or the mirror lacks these versions)"
            apt_update
            old_krel=$KREL
            resolve
            [ "$KREL" = "$old_krel" ] || fail "the mirror moved from $old_krel to $KREL while resolving: run the lab again"
            (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download "${get[@]}" >/dev/null) \
                || fail "apt-get download ${get[*]} failed (no network, or the mirror lacks these versions)"
        fi
    fi
    finish download

    if [ $need_tree = 1 ]; then
        begin "extract kernel, headers, kbuild"
        rm -rf "$TREE"
        mkdir -p "$TREE"
        for p in "${PACKAGES[@]}"; do
            dpkg-deb -x "$DEBS/${p}_"*.deb "$TREE" || fail "dpkg-deb -x ${p} failed"
        done
        [ -f "$KERNEL" ] || fail "the image package has no $KERNEL"
        # The headers' Makefile includes the common headers by absolute path (/usr/src/...): point it
        # at the extracted copy.
        sed -i "s|^include /usr/src/|include $TREE/usr/src/|" "$HEADERS/Makefile"
        grep -q "^include $TREE/" "$HEADERS/Makefile" || fail "unexpected $HEADERS/Makefile: $(head -3 "$HEADERS/Makefile")"
        touch "$TREE/.extracted"
        finish extract
    fi

    if [ $need_source = 1 ]; then
        begin "take samples/vfio-mdev/mtty.c out of $SOURCE_PKG"
        mkdir -p "$WORK/mtty"
        # Stream only that file out of the 150 MB tarball: deb -> tar -> linux-source-6.12.tar.xz -> one
        # member. --occurrence stops the last tar at the first match, so the earlier stages get SIGPIPE;
        # success is judged by the file itself.
        set +o pipefail
        dpkg-deb --fsys-tarfile "$DEBS/${SOURCE_PKG}_"*.deb 2>/dev/null \
            | tar -xO ./usr/src/linux-source-6.12.tar.xz 2>/dev/null \
            | tar -xJO --occurrence=1 linux-source-6.12/samples/vfio-mdev/mtty.c > "$WORK/mtty/mtty.c.part" || true
        set -o pipefail
        grep -q 'mtty_dev_init' "$WORK/mtty/mtty.c.part" 2>/dev/null || fail "could not take samples/vfio-mdev/mtty.c out of $SOURCE_PKG"
        mv "$WORK/mtty/mtty.c.part" "$WORK/mtty/mtty.c"
        finish extract-mtty-source
    fi
    # The packages are extracted: the cache keeps the trees, not the 280 MB of .deb files.
    rm -rf "$DEBS"
fi

# --- 4. mtty.ko -------------------------------------------------------------------------------------
if [ ! -f "$WORK/mtty/mtty.ko" ] || [ "$WORK/mtty/mtty.c" -nt "$WORK/mtty/mtty.ko" ]; then
    begin "build mtty.ko against the extracted headers"
    echo 'obj-m := mtty.o' > "$WORK/mtty/Kbuild"
    make -s -C "$HEADERS" M="$WORK/mtty" modules > "$WORK/mtty/build.log" 2>&1 \
        || { tail -20 "$WORK/mtty/build.log" >&2; fail "building mtty.ko failed (log: $WORK/mtty/build.log)"; }
    modinfo -F vermagic "$WORK/mtty/mtty.ko" | grep -q "^$KREL " || fail "mtty.ko has the wrong vermagic: $(modinfo -F vermagic "$WORK/mtty/mtty.ko")"
    finish build-mtty
fi

# --- 5. initramfs -----------------------------------------------------------------------------------
# Keyed by what goes into it: the kernel, mtty.ko, the module list, busybox and /init.
BUSYBOX=/bin/busybox
file_key=$( { echo "${GUEST_MODULES[*]}"; sha256sum "$HERE/init.sh" "$WORK/mtty/mtty.ko" "$BUSYBOX" | cut -d' ' -f1; } | sha256sum | cut -c1-16)
INITRD="$WORK/initrd-$file_key.cpio.gz"
if [ ! -s "$INITRD" ]; then
    begin "initramfs"
    mkdir -p "$MODDIR/extra"
    cp "$WORK/mtty/mtty.ko" "$MODDIR/extra/mtty.ko"
    depmod -b "$TREE" "$KREL" || fail "depmod failed"
    STAGE="$WORK/initrd.stage"
    rm -rf "$STAGE"
    mkdir -p "$STAGE"/{bin,dev,proc,sys,tmp,mnt/lab,lib/modules}
    cp "$BUSYBOX" "$STAGE/bin/busybox"
    dpkg -S "$BUSYBOX" 2>/dev/null | grep -q '^busybox-static:' || fail "$BUSYBOX is not busybox-static's static binary"
    ln -s busybox "$STAGE/bin/sh"
    install -m 0755 "$HERE/init.sh" "$STAGE/init"
    : > "$STAGE/lib/modules/load-order"
    for m in "${GUEST_MODULES[@]}"; do
        deps=$(modprobe -d "$TREE" -S "$KREL" --show-depends "$m") || fail "modprobe --show-depends $m failed"
        while read -r kind path _; do
            [ "$kind" = insmod ] || continue          # 'builtin x' needs nothing
            name=$(basename "$path"); name=${name%.xz}
            grep -qx "$name" "$STAGE/lib/modules/load-order" && continue
            case "$path" in
                *.xz) xz -dc "$path" > "$STAGE/lib/modules/$name" ;;
                *) cp "$path" "$STAGE/lib/modules/$name" ;;
            esac
            echo "$name" >> "$STAGE/lib/modules/load-order"
        done <<< "$deps"
    done
    echo "modules: $(tr '\n' ' ' < "$STAGE/lib/modules/load-order")"
    (cd "$STAGE" && find . | cpio -o -H newc --quiet | gzip -1 > "$INITRD.part") || fail "cpio failed"
    mv "$INITRD.part" "$INITRD"
    rm -rf "$STAGE"
    # Initramfs images of older /init versions are no longer needed.
    find "$WORK" -maxdepth 1 -name 'initrd-*.cpio.gz' ! -name "$(basename "$INITRD")" -delete
    finish initramfs
fi

# --- 6. QEMU 10, the second truth ----------------------------------------------------------------
# The guest runs QEMU 10 as a real client of mtty's v2 migration (tests/lab/Pester/Qemu.Lab.Tests.ps1).
# bookworm's own QEMU 7.2 has no v2 VFIO migration, and the host's QEMU must not be replaced: the lab
# takes qemu-system-x86, qemu-system-data and seabios from bookworm-backports (built for bookworm's libc)
# with a private apt configuration (its own sources, lists, cache and an empty dpkg status), unpacks them
# with dpkg-deb -x and installs nothing. Cached until the cache is deleted.
Q10="$CACHE/qemu10"
if [ ! -f "$Q10/root/.extracted" ]; then
    begin "QEMU 10 from bookworm-backports (private apt configuration, nothing installed)"
    # The mirror the host already uses for bookworm, as apt itself reports it (one-line or deb822 sources).
    mirror=$(apt-cache policy 2>/dev/null | awk '$3 ~ /^bookworm\/main/ { print $2; exit }' || true)
    [ -n "$mirror" ] || fail "QEMU 10: the host's apt sources name no Debian mirror for bookworm/main to take bookworm-backports from"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -f "$keyring" ] || fail "QEMU 10: no $keyring to check bookworm-backports with (package debian-archive-keyring)"
    rm -rf "$Q10"
    mkdir -p "$Q10/lists/partial" "$Q10/cache/archives/partial" "$Q10/debs" "$Q10/root.part"
    : > "$Q10/status"
    echo "deb [signed-by=$keyring] $mirror bookworm-backports main" > "$Q10/sources.list"
    Q10_APT=("${APT_OPTS[@]}" -o Dir::Etc::SourceList="$Q10/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o Dir::State::Lists="$Q10/lists" -o Dir::Cache="$Q10/cache" -o Dir::State::status="$Q10/status")
    apt-get "${Q10_APT[@]}" update >/dev/null 2>&1 || fail "QEMU 10: apt-get update of bookworm-backports from $mirror failed (no network?)"
    (cd "$Q10/debs" && apt-get "${Q10_APT[@]}" download qemu-system-x86 qemu-system-data seabios >/dev/null 2>&1) \
        || fail "QEMU 10: apt-get download qemu-system-x86 qemu-system-data seabios from bookworm-backports failed"
    for d in "$Q10"/debs/*.deb; do dpkg-deb -x "$d" "$Q10/root.part" || fail "QEMU 10: dpkg-deb -x $d failed"; done
    missing=$(ldd "$Q10/root.part/usr/bin/qemu-system-x86_64" 2>&1 | awk '/not found/ { print $1 }' | tr '\n' ' ')
    [ -z "$missing" ] || fail "QEMU 10 needs libraries this host lacks: $missing"
    q10_version=$("$Q10/root.part/usr/bin/qemu-system-x86_64" --version 2>&1 | head -1) || fail "QEMU 10 from bookworm-backports does not start: $q10_version"
    case "$q10_version" in *"version 10."*) ;; *) fail "bookworm-backports served '$q10_version', not QEMU 10" ;; esac
    echo "$q10_version" > "$Q10/root.part/.extracted"
    mv "$Q10/root.part" "$Q10/root"
    rm -rf "$Q10/debs" "$Q10/lists" "$Q10/cache"
    echo "$q10_version"
    finish qemu10
fi

cat > "$OUT_ENV" <<EOF
KREL='$KREL'
KVERSION='$VERSION'
KERNEL='$KERNEL'
INITRD='$INITRD'
QEMU10='$Q10/root'
EOF
echo "lab ready: kernel $KREL, initramfs $(basename "$INITRD")"
