#!/usr/bin/env bash
# Boots the lab VM once: the guest runs /mnt/lab/guest.sh from SHARE and powers off.
# Usage: run-vm.sh --env LAB_ENV --share DIR --log FILE [--timeout SECONDS] [--no-viommu]
#   LAB_ENV is the file build-lab.sh wrote (KERNEL=, INITRD=). The serial console goes to FILE and stdout.
#   --no-viommu boots without the emulated VT-d: the iommufd kernel's IOMMUFD_TEST mock domain is refused
#   (EINVAL) whenever a real IOMMU driver is registered (docs/iommufd.md), so its harness boots this way.
# Exit status: QEMU's (0 after the guest's power-off), 124 when the timeout ended it.
set -euo pipefail
ENV_FILE="" SHARE="" LOG="" TIMEOUT=600 VIOMMU=1
while [ $# -gt 0 ]; do
    case "$1" in
        --env) ENV_FILE="$2"; shift 2 ;;
        --share) SHARE="$2"; shift 2 ;;
        --log) LOG="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --no-viommu) VIOMMU=0; shift ;;
        *) echo "usage: $0 --env LAB_ENV --share DIR --log FILE [--timeout SECONDS] [--no-viommu]" >&2; exit 2 ;;
    esac
done
if [ -z "$ENV_FILE" ] || [ -z "$SHARE" ] || [ -z "$LOG" ]; then
    echo "usage: $0 --env LAB_ENV --share DIR --log FILE [--timeout SECONDS] [--no-viommu]" >&2
    exit 2
fi
# shellcheck disable=SC1090
. "$ENV_FILE"

# TCG (pure software, multi-threaded): CI machines have no usable KVM, and the lab must not depend on one.
# PCI addresses are pinned so the guest's groups match the simulated twin (SimTopologies.Lab): the
# default VGA is 00:01.0 (group 1), edu 00:02.0 (group 2), e1000e 00:03.0 (group 3), the two 9p devices
# 00:04.0/00:05.0, the ICH9 functions share group 6, and the mtty mdev created later gets group 7.
# intel-iommu comes first: it must exist before the devices it translates for.
# kernel-irqchip=split is what intremap=on needs; caching-mode=on lets the guest's VT-d driver tell
# QEMU about every mapping it makes (required for vfio in a guest).
MACHINE=q35,kernel-irqchip=split
IOMMU=(-device intel-iommu,intremap=on,caching-mode=on)
APPEND="console=ttyS0 intel_iommu=on iommu=pt quiet loglevel=4 panic=-1"
if [ "$VIOMMU" = 0 ]; then
    MACHINE=q35
    IOMMU=()
    APPEND="console=ttyS0 quiet loglevel=4 panic=-1"
fi
set +e
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
    -machine "$MACHINE" -accel tcg,thread=multi -cpu max -smp 2 -m 2G \
    "${IOMMU[@]}" \
    -device edu,addr=02.0 \
    -device e1000e,addr=03.0 -nic none \
    -fsdev local,id=lab,path="$SHARE",security_model=none \
    -device virtio-9p-pci,fsdev=lab,mount_tag=lab,addr=04.0 \
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot,addr=05.0 \
    -display none -no-reboot -monitor none -serial stdio \
    -kernel "$KERNEL" -initrd "$INITRD" \
    -append "$APPEND" \
    < /dev/null 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
exit "$rc"
