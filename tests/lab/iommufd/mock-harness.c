/* The lab's iommufd dirty-bitmap harness: runs in a boot of the lab's iommufd kernel WITHOUT a vIOMMU
 * (with one, IOMMU_TEST_OP_MOCK_DOMAIN answers EINVAL: docs/iommufd.md), over the IOMMUFD_TEST mock domain,
 * the only place a real kernel gives iommufd dirty bits without dirty-tracking IOMMU hardware.
 *
 * It prints one line per step, 'step | answer', in the format of the conformance transcripts; the host
 * runs the same steps on the simulated kernel's dirty-capable IOMMU (tests/lab/IommufdTwin.ps1) and
 * compares line by line. Lines starting with '#' are set-up through the kernel's test interface
 * (IOMMU_TEST_CMD is not UAPI: only this harness calls it; the twin does the same through a simulated
 * device's DMA) and are not compared.
 *
 * Built static by the lab, against the lab kernel's own UAPI headers and its iommufd_test.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define IOVA 0x1000000ULL        /* MOCK_APERTURE_START: the mock domain's first usable IOVA */
#define LENGTH 0x40000ULL        /* 256 KiB: 64 pages of 4 KiB, one bitmap word */
#define PAGE 4096ULL
#define MOCK_PAGE 2048ULL        /* MOCK_IO_PAGE_SIZE on a 4 KiB-page kernel */

static int fd = -1;

static const char *errname(int e)
{
    switch (e) {
    case EPERM: return "EPERM";       case ENOENT: return "ENOENT";   case EIO: return "EIO";
    case EBADF: return "EBADF";       case ENOMEM: return "ENOMEM";   case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";       case EEXIST: return "EEXIST";   case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";     case ENOSPC: return "ENOSPC";   case ENOTTY: return "ENOTTY";
    case ERANGE: return "ERANGE";     case EOVERFLOW: return "EOVERFLOW";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case EADDRINUSE: return "EADDRINUSE";
    default: { static char buf[32]; snprintf(buf, sizeof buf, "errno %d", e); return buf; }
    }
}

static int answer(const char *step, int rc)
{
    int e = errno;
    if (rc < 0) printf("%s | %s\n", step, errname(e));
    else printf("%s | 0\n", step);
    fflush(stdout);
    return rc;
}

static int test_cmd(struct iommu_test_cmd *cmd)
{
    cmd->size = sizeof(*cmd);
    return ioctl(fd, IOMMU_TEST_CMD, cmd);
}

/* Marks the 4 KiB pages whose bit is set in pages4k dirty, through the mock's test op: the op indexes its
 * pages by the page size it is given, so it is given the mock's own 2 KiB and the first half of each page. */
static void mark_dirty(uint32_t hwpt, uint64_t pages4k)
{
    uint64_t halves[2] = { 0, 0 };
    for (int p = 0; p < 64; p++)
        if (pages4k >> p & 1) halves[p / 32] |= 1ULL << ((p % 32) * 2);
    struct iommu_test_cmd cmd = { .op = IOMMU_TEST_OP_DIRTY, .id = hwpt };
    cmd.dirty.iova = IOVA;
    cmd.dirty.length = LENGTH;
    cmd.dirty.page_size = MOCK_PAGE;
    cmd.dirty.uptr = (uintptr_t)halves;
    int rc = test_cmd(&cmd);
    if (rc < 0) printf("# mark dirty: %s\n", errname(errno));
    else printf("# mark dirty: %" PRIu64 " mock pages\n", (uint64_t)cmd.dirty.out_nr_dirty);
}

/* GET_DIRTY_BITMAP into a buffer of two words filled with `fill`; prints the set bits and the first word. */
static void get_bitmap(const char *step, uint32_t hwpt, uint64_t iova, uint64_t length, uint64_t page,
                       uint32_t flags, uint64_t fill)
{
    uint64_t bitmap[4] = { fill, fill, fill, fill };
    struct iommu_hwpt_get_dirty_bitmap get = {
        .size = sizeof(get), .hwpt_id = hwpt, .flags = flags, .iova = iova, .length = length,
        .page_size = page, .data = (uintptr_t)bitmap,
    };
    if (ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &get) < 0) {
        printf("%s | %s\n", step, errname(errno));
        return;
    }
    uint64_t words = (length / (page ? page : 1) + 63) / 64, bits = 0;
    for (uint64_t i = 0; i < words && i < 4; i++) bits += (uint64_t)__builtin_popcountll(bitmap[i]);
    printf("%s | 0 bits=%" PRIu64 " word0=0x%016" PRIx64 "\n", step, bits, bitmap[0]);
}

static int set_tracking(const char *step, uint32_t hwpt, int enable)
{
    struct iommu_hwpt_set_dirty_tracking set = {
        .size = sizeof(set), .flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, .hwpt_id = hwpt,
    };
    return answer(step, ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &set));
}

int main(void)
{
    const uint64_t every4th = 0x1111111111111111ULL;
    printf("# iommufd mock-domain harness, page %llu, IOVA 0x%llx + 0x%llx\n", PAGE, IOVA, LENGTH);
    fd = open("/dev/iommu", O_RDWR);
    if (fd < 0) { printf("open /dev/iommu | %s\n", errname(errno)); return 1; }

    struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
    if (answer("IOMMU_IOAS_ALLOC", ioctl(fd, IOMMU_IOAS_ALLOC, &ioas)) < 0) return 1;

    /* A mock device on the IOAS: its idev is what VFIO_DEVICE_BIND_IOMMUFD gives a real device, and the
     * kernel attaches it to an automatic (not dirty-tracking) HWPT, as an attach to the IOAS does. */
    struct iommu_test_cmd mock = { .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = ioas.out_ioas_id };
    if (test_cmd(&mock) < 0) { printf("# mock domain: %s (a vIOMMU in this boot?)\n", errname(errno)); return 1; }
    uint32_t stdev = mock.mock_domain.out_stdev_id, idev = mock.mock_domain.out_idev_id;
    uint32_t auto_hwpt = mock.mock_domain.out_hwpt_id;
    printf("# mock device attached to the IOAS through an automatic HWPT\n");

    uint64_t hwdata[8] = { 0 };
    struct iommu_hw_info info = { .size = sizeof(info), .dev_id = idev, .data_len = sizeof(hwdata),
                                  .data_uptr = (uintptr_t)hwdata };
    if (ioctl(fd, IOMMU_GET_HW_INFO, &info) < 0) printf("IOMMU_GET_HW_INFO | %s\n", errname(errno));
    else printf("IOMMU_GET_HW_INFO | 0 capabilities=0x%" PRIx64 "\n", (uint64_t)info.out_capabilities);

    set_tracking("IOMMU_HWPT_SET_DIRTY_TRACKING enable, automatic HWPT", auto_hwpt, 1);

    struct iommu_hwpt_alloc alloc = { .size = sizeof(alloc), .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
                                      .dev_id = idev, .pt_id = ioas.out_ioas_id };
    if (answer("IOMMU_HWPT_ALLOC DIRTY_TRACKING", ioctl(fd, IOMMU_HWPT_ALLOC, &alloc)) < 0) return 1;
    uint32_t hwpt = alloc.out_hwpt_id;

    struct iommu_test_cmd replace = { .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, .id = stdev };
    replace.mock_domain_replace.pt_id = hwpt;
    answer("attach the device to the dirty-tracking HWPT", test_cmd(&replace));

    void *buffer = mmap(NULL, LENGTH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer == MAP_FAILED) { printf("# mmap: %s\n", errname(errno)); return 1; }
    struct iommu_ioas_map map = {
        .size = sizeof(map), .ioas_id = ioas.out_ioas_id, .user_va = (uintptr_t)buffer, .length = LENGTH,
        .iova = IOVA, .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
    };
    if (answer("IOMMU_IOAS_MAP 256 KiB at 0x1000000", ioctl(fd, IOMMU_IOAS_MAP, &map)) < 0) return 1;

    get_bitmap("GET_DIRTY_BITMAP before tracking", hwpt, IOVA, LENGTH, PAGE, 0, 0);
    set_tracking("IOMMU_HWPT_SET_DIRTY_TRACKING enable", hwpt, 1);
    set_tracking("IOMMU_HWPT_SET_DIRTY_TRACKING enable again", hwpt, 1);
    get_bitmap("GET_DIRTY_BITMAP nothing written", hwpt, IOVA, LENGTH, PAGE, 0, 0);

    mark_dirty(hwpt, every4th);
    get_bitmap("GET_DIRTY_BITMAP NO_CLEAR", hwpt, IOVA, LENGTH, PAGE, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, 0);
    get_bitmap("GET_DIRTY_BITMAP NO_CLEAR again", hwpt, IOVA, LENGTH, PAGE, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, 0);
    get_bitmap("GET_DIRTY_BITMAP read and clear", hwpt, IOVA, LENGTH, PAGE, 0, 0);
    get_bitmap("GET_DIRTY_BITMAP after the clear", hwpt, IOVA, LENGTH, PAGE, 0, 0);

    mark_dirty(hwpt, every4th);
    /* The kernel only sets bits in the caller's buffer: bits the caller left set stay set. */
    get_bitmap("GET_DIRTY_BITMAP into a buffer of 0xa5", hwpt, IOVA, LENGTH, PAGE, 0, 0xa5a5a5a5a5a5a5a5ULL);
    mark_dirty(hwpt, 1);
    get_bitmap("GET_DIRTY_BITMAP at 8 KiB pages", hwpt, IOVA, LENGTH, 2 * PAGE, 0, 0);
    mark_dirty(hwpt, 1ULL << 63);
    get_bitmap("GET_DIRTY_BITMAP the last 128 KiB", hwpt, IOVA + LENGTH / 2, LENGTH / 2, PAGE, 0, 0);

    get_bitmap("GET_DIRTY_BITMAP length 0", hwpt, IOVA, 0, PAGE, 0, 0);
    get_bitmap("GET_DIRTY_BITMAP page size 0", hwpt, IOVA, LENGTH, 0, 0, 0);
    get_bitmap("GET_DIRTY_BITMAP IOVA not page aligned", hwpt, IOVA + 0x800, LENGTH, PAGE, 0, 0);
    get_bitmap("GET_DIRTY_BITMAP length not page aligned", hwpt, IOVA, LENGTH - 0x800, PAGE, 0, 0);
    get_bitmap("GET_DIRTY_BITMAP past the mapping", hwpt, IOVA, 2 * LENGTH, PAGE, 0, 0);
    get_bitmap("GET_DIRTY_BITMAP before the mapping", hwpt, IOVA - LENGTH, LENGTH, PAGE, 0, 0);
    get_bitmap("GET_DIRTY_BITMAP IOVA wraps", hwpt, 0xfffffffffffff000ULL, 0x2000, PAGE, 0, 0);
    get_bitmap("GET_DIRTY_BITMAP unknown flag 0x80", hwpt, IOVA, LENGTH, PAGE, 0x80, 0);
    get_bitmap("GET_DIRTY_BITMAP the IOAS's id", ioas.out_ioas_id, IOVA, LENGTH, PAGE, 0, 0);
    get_bitmap("GET_DIRTY_BITMAP an id that does not exist", 9999, IOVA, LENGTH, PAGE, 0, 0);

    struct iommu_hwpt_set_dirty_tracking badset = { .size = sizeof(badset), .flags = 0x2, .hwpt_id = hwpt };
    answer("IOMMU_HWPT_SET_DIRTY_TRACKING unknown flag 0x2", ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &badset));
    set_tracking("IOMMU_HWPT_SET_DIRTY_TRACKING the IOAS's id", ioas.out_ioas_id, 1);

    mark_dirty(hwpt, every4th);
    set_tracking("IOMMU_HWPT_SET_DIRTY_TRACKING disable", hwpt, 0);
    get_bitmap("GET_DIRTY_BITMAP after tracking stopped", hwpt, IOVA, LENGTH, PAGE, 0, 0);
    set_tracking("IOMMU_HWPT_SET_DIRTY_TRACKING disable again", hwpt, 0);
    set_tracking("IOMMU_HWPT_SET_DIRTY_TRACKING enable after stop", hwpt, 1);
    get_bitmap("GET_DIRTY_BITMAP after tracking restarted", hwpt, IOVA, LENGTH, PAGE, 0, 0);

    struct iommu_destroy destroy = { .size = sizeof(destroy), .id = hwpt };
    answer("IOMMU_DESTROY the HWPT a device is attached to", ioctl(fd, IOMMU_DESTROY, &destroy));
    struct iommu_ioas_unmap unmap = { .size = sizeof(unmap), .ioas_id = ioas.out_ioas_id, .iova = IOVA, .length = LENGTH };
    answer("IOMMU_IOAS_UNMAP", ioctl(fd, IOMMU_IOAS_UNMAP, &unmap));
    get_bitmap("GET_DIRTY_BITMAP after the unmap", hwpt, IOVA, LENGTH, PAGE, 0, 0);
    printf("# done\n");
    return 0;
}
