#!/usr/bin/env bash
# Builds the lab's second kernel, the one with iommufd: Debian's linux-source-6.12 (the version bookworm
# serves today, never pinned), configured as `make defconfig` + kernel/configs/kvm_guest.config +
# tests/lab/iommufd/lab-iommufd.config + tests/lab/iommufd/diet.config, everything built in (no modules).
# Debian's own 6.12 leaves IOMMUFD, the vfio device cdev and IOMMUFD_TEST out, so iommufd can only be
# compared with a real kernel on this one (docs/iommufd.md). About 15 min of `make -j2` on the project
# machine, once per linux-source release: the cache keeps bzImage, the config, the UAPI headers the mock
# harness compiles against, and an initramfs; the 2 GB of source and objects are deleted after the build.
#
# Cache key: <cache>/iommufd-<source version>-<hash of the fragments, this script and gcc's version>/.
#
# Usage: build-iommufd-kernel.sh --out ENV_FILE [--cache DIR]
#   ENV_FILE receives IOMMUFD_KREL=, IOMMUFD_KERNEL=, IOMMUFD_INITRD=, IOMMUFD_INCLUDE= (shell syntax).
# Prints 'LABTIME <step> <seconds>' lines; exits non-zero with 'LAB BUILD FAILED: <reason>' on any failure.
set -euo pipefail
fail() { echo "LAB BUILD FAILED: $*" >&2; exit 1; }
set -E
trap 'fail "command failed with status $? at build-iommufd-kernel.sh line $LINENO: $BASH_COMMAND"' ERR

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
FRAGMENTS=("$HERE/iommufd/lab-iommufd.config" "$HERE/iommufd/diet.config")
SOURCE_PKG=linux-source-6.12
# What a kernel build needs beyond the lab's own host packages (build-lab.sh installs those first).
HOST_PACKAGES=(flex bison libelf-dev libssl-dev bc make gcc libc6-dev xz-utils busybox-static cpio)
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -o APT::Sandbox::User=root)

mkdir -p "$CACHE"
exec 9> "$CACHE/.build.lock"
flock 9

now() { date +%s.%N; }
step_start=0
begin() { step_start=$(now); echo "==> iommufd kernel: $1"; }
finish() { printf 'LABTIME iommufd_%s %.1f\n' "$1" "$(echo "$(now) - $step_start" | bc)"; }

# --- 1. host tools -----------------------------------------------------------------------------------
begin "host packages"
missing=()
for p in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || fail "missing host packages (${missing[*]}) and not root: install them with apt-get install --no-install-recommends ${missing[*]}"
    apt-get "${APT_OPTS[@]}" update >/dev/null || fail "apt-get update failed (no network or no Debian mirror?)"
    apt-get "${APT_OPTS[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null \
        || fail "apt-get install ${missing[*]} failed"
fi
finish host-packages

# --- 2. which source, which cache folder -------------------------------------------------------------
begin "resolve $SOURCE_PKG"
VERSION=$(apt-cache policy "$SOURCE_PKG" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }' || true)
if [ -z "$VERSION" ] || [ "$VERSION" = "(none)" ]; then
    apt-get "${APT_OPTS[@]}" update >/dev/null || fail "apt-get update failed (no network or no Debian mirror?)"
    VERSION=$(apt-cache policy "$SOURCE_PKG" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }' || true)
fi
if [ -z "$VERSION" ] || [ "$VERSION" = "(none)" ]; then fail "apt knows no $SOURCE_PKG (is bookworm-security in the apt sources?)"; fi
key=$( { cat "${FRAGMENTS[@]}" "$0"; gcc --version | head -1; } | sha256sum | cut -c1-12)
WORK="$CACHE/iommufd-$VERSION-$key"
echo "source: $SOURCE_PKG $VERSION, cache $WORK"
finish resolve

# --- 3. the kernel, unless the cache has it ------------------------------------------------------------
if [ ! -f "$WORK/.built" ]; then
    rm -rf "$WORK"
    mkdir -p "$WORK/src" "$WORK/include/linux"
    df_free=$(df -Pk "$CACHE" | awk 'NR == 2 { print $4 }')
    [ "$df_free" -gt $((3 * 1024 * 1024)) ] || fail "the build needs about 2.5 GB in $CACHE; $((df_free / 1024)) MB are free"

    begin "download and unpack $SOURCE_PKG $VERSION (150 MB)"
    (cd "$WORK" && apt-get "${APT_OPTS[@]}" download "$SOURCE_PKG=$VERSION" >/dev/null) \
        || fail "apt-get download $SOURCE_PKG=$VERSION failed (no network, or the mirror lacks it)"
    dpkg-deb --fsys-tarfile "$WORK/${SOURCE_PKG}_"*.deb | tar -xO ./usr/src/linux-source-6.12.tar.xz \
        | tar -xJ -C "$WORK/src" || fail "unpacking $SOURCE_PKG failed"
    rm -f "$WORK/${SOURCE_PKG}_"*.deb
    SRC="$WORK/src/linux-source-6.12"
    [ -f "$SRC/Makefile" ] || fail "$SOURCE_PKG holds no linux-source-6.12/Makefile"
    finish unpack

    begin "configure"
    make -s -C "$SRC" defconfig >/dev/null
    (cd "$SRC" && scripts/kconfig/merge_config.sh -m .config kernel/configs/kvm_guest.config "${FRAGMENTS[@]}" >/dev/null) \
        || fail "merge_config.sh failed"
    make -s -C "$SRC" olddefconfig >/dev/null
    # Every option the fragments ask for must have survived olddefconfig (a dependency can drop one quietly).
    for f in "${FRAGMENTS[@]}"; do
        while read -r line; do
            case "$line" in
                CONFIG_*=*) if ! grep -qx "$line" "$SRC/.config"; then fail "the configured kernel lacks $line (a dependency is missing)"; fi ;;
                "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
                    if grep -q "^$opt=" "$SRC/.config"; then fail "the configured kernel still sets $opt"; fi ;;
            esac
        done < "$f"
    done
    grep -qx 'CONFIG_IOMMUFD_DRIVER=y' "$SRC/.config" || fail "the configured kernel lacks CONFIG_IOMMUFD_DRIVER=y (selected by INTEL_IOMMU once IOMMUFD is set)"
    finish configure

    begin "make -j$(nproc) bzImage (about 15 min on 2 cores)"
    if ! make -C "$SRC" -j"$(nproc)" bzImage > "$WORK/build.log" 2>&1; then
        tail -30 "$WORK/build.log" >&2
        fail "make bzImage failed (last lines above; log: $WORK/build.log)"
    fi
    finish make

    begin "UAPI headers for the mock harness"
    make -s -C "$SRC" headers >/dev/null 2>&1 || fail "make headers failed"
    cp "$SRC/usr/include/linux/iommufd.h" "$SRC/usr/include/linux/vfio.h" "$WORK/include/linux/"
    # The mock domain's commands are a kernel test interface, not UAPI: the harness alone includes them.
    cp "$SRC/drivers/iommu/iommufd/iommufd_test.h" "$WORK/include/"
    finish headers

    cp "$SRC/arch/x86/boot/bzImage" "$WORK/bzImage"
    cp "$SRC/.config" "$WORK/config"
    make -s -C "$SRC" kernelrelease > "$WORK/kernelrelease"
    rm -rf "$WORK/src"
    touch "$WORK/.built"
    # Kernels of older sources or fragments are no longer needed.
    find "$CACHE" -maxdepth 1 -name 'iommufd-*' ! -name "$(basename "$WORK")" -exec rm -rf {} +
fi
KREL=$(cat "$WORK/kernelrelease")

# --- 4. initramfs: busybox and /init; everything else is built in ----------------------------------------
BUSYBOX=/bin/busybox
file_key=$(sha256sum "$HERE/init.sh" "$BUSYBOX" | cut -d' ' -f1 | sha256sum | cut -c1-16)
INITRD="$WORK/initrd-$file_key.cpio.gz"
if [ ! -s "$INITRD" ]; then
    begin "initramfs"
    STAGE="$WORK/initrd.stage"
    rm -rf "$STAGE"
    mkdir -p "$STAGE"/{bin,dev,proc,sys,tmp,mnt/lab,lib/modules}
    cp "$BUSYBOX" "$STAGE/bin/busybox"
    ln -s busybox "$STAGE/bin/sh"
    install -m 0755 "$HERE/init.sh" "$STAGE/init"
    : > "$STAGE/lib/modules/load-order"
    (cd "$STAGE" && find . | cpio -o -H newc --quiet | gzip -1 > "$INITRD.part") || fail "cpio failed"
    mv "$INITRD.part" "$INITRD"
    rm -rf "$STAGE"
    find "$WORK" -maxdepth 1 -name 'initrd-*.cpio.gz' ! -name "$(basename "$INITRD")" -delete
    finish initramfs
fi

cat > "$OUT_ENV" <<EOF
IOMMUFD_KREL='$KREL'
IOMMUFD_SOURCE='$VERSION'
IOMMUFD_KERNEL='$WORK/bzImage'
IOMMUFD_INITRD='$INITRD'
IOMMUFD_INCLUDE='$WORK/include'
EOF
echo "iommufd kernel ready: $KREL from $SOURCE_PKG $VERSION"
