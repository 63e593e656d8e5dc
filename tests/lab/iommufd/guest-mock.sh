#!/bin/sh
# The guest script of the lab's mock-domain boot (iommufd kernel, no vIOMMU): runs the static harness from
# the share and leaves its transcript there. No pwsh: the boot is over in seconds.
note() { echo "LAB: $*"; }
note "guest kernel $(uname -r) (mock-domain boot)"
[ -e /dev/iommu ] || { note "no /dev/iommu: the kernel lacks CONFIG_IOMMUFD"; exit 1; }
/mnt/lab/mock-harness > /mnt/lab/mock.txt 2> /mnt/lab/mock.err
rc=$?
echo "MOCK_EXIT=$rc" > /mnt/lab/guest-timings.env
note "mock harness exit status $rc, $(grep -vc '^#' /mnt/lab/mock.txt) steps"
exit $rc
