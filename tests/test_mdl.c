/* SPDX-License-Identifier: MIT */
/* test_mdl.c - the MDL layer under NDIS_BUFFER: page arithmetic macros, MmSizeOfMdl,
 * MmInitializeMdl, IoAllocateMdl/IoFreeMdl, MmBuildMdlForNonPagedPool, IoBuildPartialMdl, the
 * system-address mappings, MmPrepareMdlForReuse, the accessors and the WDK structure layout. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

#include "test_util.h"

/* Largest page count whose MDL (header + PFN array) still fits the 16-bit Size field. */
#define MAX_MDL_PAGES ((ULONG)((65535u - sizeof(MDL)) / sizeof(PFN_NUMBER)))
#define MAX_MDL_BYTES (MAX_MDL_PAGES * (ULONG)PAGE_SIZE)

/* Caller-owned MDL storage with room for a PFN array, as a driver would carve it out. */
typedef struct {
    MDL Mdl;
    PFN_NUMBER Pfn[16];
} MDL_STORAGE;

/* An address that is never dereferenced: proves the code works on field values, not memory. */
#define FAKE_VA ((PUCHAR)(ULONG_PTR)0x7f1234560000ull)

static USHORT flags_of(PMDL Mdl)
{
    return (USHORT)Mdl->MdlFlags;
}

static void assert_pseudo_pfns(PMDL Mdl, PVOID Va, ULONG Length)
{
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Length);
    PFN_NUMBER first = (PFN_NUMBER)((ULONG_PTR)PAGE_ALIGN(Va) >> PAGE_SHIFT);
    PPFN_NUMBER pfn = MmGetMdlPfnArray(Mdl);
    for (ULONG i = 0; i < pages; i++)
        assert_int_equal(pfn[i], first + i);
}

/* The full field set every built, library-made descriptor must carry (contract). */
static void assert_built_descriptor(PMDL Mdl, PVOID Va, ULONG Length)
{
    assert_null(Mdl->Next);
    assert_null(Mdl->Process);
    assert_ptr_equal(Mdl->MappedSystemVa, Va);
    assert_ptr_equal(Mdl->StartVa, PAGE_ALIGN(Va));
    assert_int_equal(Mdl->ByteOffset, BYTE_OFFSET(Va));
    assert_int_equal(Mdl->ByteCount, Length);
    assert_int_equal(flags_of(Mdl), MDL_SOURCE_IS_NONPAGED_POOL);
    assert_int_equal((USHORT)Mdl->Size, MmSizeOfMdl(Va, Length));
    assert_pseudo_pfns(Mdl, Va, Length);
}

/* ---- page macros ---- */

static void byte_offset_keeps_only_the_in_page_bits(void **state)
{
    (void)state;
    assert_int_equal(BYTE_OFFSET((PVOID)(ULONG_PTR)0x12345678u), 0x678);
    assert_int_equal(BYTE_OFFSET((PVOID)(ULONG_PTR)0x12345000u), 0);
    assert_int_equal(BYTE_OFFSET((PVOID)(ULONG_PTR)0x12345FFFu), 0xFFF);
    assert_int_equal(BYTE_OFFSET((PVOID)MAXULONG_PTR), 0xFFF);
    assert_int_equal(sizeof(BYTE_OFFSET((PVOID)0)), sizeof(ULONG));
}

static void page_align_clears_the_in_page_bits(void **state)
{
    (void)state;
    assert_ptr_equal(PAGE_ALIGN((PVOID)(ULONG_PTR)0x12345678u), (PVOID)(ULONG_PTR)0x12345000u);
    assert_ptr_equal(PAGE_ALIGN((PVOID)(ULONG_PTR)0x12345000u), (PVOID)(ULONG_PTR)0x12345000u);
    assert_ptr_equal(PAGE_ALIGN((PVOID)(ULONG_PTR)0xFFFu), NULL);
    assert_ptr_equal(PAGE_ALIGN((PVOID)MAXULONG_PTR), (PVOID)(MAXULONG_PTR & ~(ULONG_PTR)0xFFF));
}

static void round_to_pages_rounds_up_to_page_multiple(void **state)
{
    (void)state;
    assert_int_equal(ROUND_TO_PAGES(0), 0);
    assert_int_equal(ROUND_TO_PAGES(1), 0x1000);
    assert_int_equal(ROUND_TO_PAGES(0x1000), 0x1000);
    assert_int_equal(ROUND_TO_PAGES(0x1001), 0x2000);
    assert_int_equal(ROUND_TO_PAGES(0xFFFFF000u), 0xFFFFF000u);
#if UINTPTR_MAX > 0xFFFFFFFFu
    /* SIZE_T arithmetic: MAXULONG rounds to 4 GiB instead of wrapping to 0. */
    assert_int_equal(ROUND_TO_PAGES(MAXULONG), 0x100000000ull);
#endif
}

static void bytes_to_pages_is_ceiling_without_overflow(void **state)
{
    (void)state;
    assert_int_equal(BYTES_TO_PAGES(0), 0);
    assert_int_equal(BYTES_TO_PAGES(1), 1);
    assert_int_equal(BYTES_TO_PAGES(0x1000), 1);
    assert_int_equal(BYTES_TO_PAGES(0x1001), 2);
    assert_int_equal(BYTES_TO_PAGES(0xFFFFF000u), 0xFFFFF);
    assert_int_equal(BYTES_TO_PAGES(0xFFFFF001u), 0x100000);
    assert_int_equal(BYTES_TO_PAGES(MAXULONG), 0x100000);
}

static void span_pages_of_zero_size_is_zero_aligned_one_unaligned(void **state)
{
    (void)state;
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5000, 0), 0);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5001, 0), 1);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5FFF, 0), 1);
}

static void span_pages_counts_every_page_touched(void **state)
{
    (void)state;
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5000, 1), 1);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5000, 0x1000), 1);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5001, 0x1000), 2);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5FFF, 1), 1);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5FFF, 2), 2);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5800, 0x1800), 2);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x5800, 0x1801), 3);
}

/* Compares the macro with exact 64-bit ceil((offset + size) / PAGE_SIZE) near MAXULONG, where a
 * naive 32-bit sum would wrap. */
static void span_pages_near_maxulong_does_not_overflow(void **state)
{
    static const ULONG offsets[] = {0, 1, 0x7FF, 0x800, 0xFFE, 0xFFF};
    static const ULONG sizes[] = {MAXULONG, MAXULONG - 1, MAXULONG - 0xFFF, MAXULONG - 0x1000,
                                  0xFFFFF000u, 0xFFFFF001u, 0x80000000u, 0x7FFFFFFFu};
    (void)state;
    for (size_t o = 0; o < ARRAYSIZE(offsets); o++) {
        for (size_t s = 0; s < ARRAYSIZE(sizes); s++) {
            PVOID va = (PVOID)(ULONG_PTR)(0x40000000u + offsets[o]);
            uint64_t exact = ((uint64_t)offsets[o] + sizes[s] + PAGE_SIZE - 1) / PAGE_SIZE;
            assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, sizes[s]), exact);
        }
    }
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0xFFF, MAXULONG), 0x100001);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES((PVOID)(ULONG_PTR)0x1000, MAXULONG), 0x100000);
}

/* ---- MmSizeOfMdl ---- */

static void mm_size_of_mdl_is_header_plus_one_pfn_per_spanned_page(void **state)
{
    (void)state;
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5000, 0), sizeof(MDL));
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5010, 0), sizeof(MDL) + sizeof(PFN_NUMBER));
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5000, 0x1000),
                     sizeof(MDL) + sizeof(PFN_NUMBER));
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5FFF, 2),
                     sizeof(MDL) + 2 * sizeof(PFN_NUMBER));
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5010, 0x3000),
                     sizeof(MDL) + 4 * sizeof(PFN_NUMBER));
    assert_int_equal(MmSizeOfMdl(NULL, 0x2000), sizeof(MDL) + 2 * sizeof(PFN_NUMBER));
#if UINTPTR_MAX > 0xFFFFFFFFu
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5000, 0), 48);
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5001, 0), 56);
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5000, 0x1000), 56);
#endif
}

static void mm_size_of_mdl_of_maxulong_length_does_not_overflow(void **state)
{
    (void)state;
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5FFF, MAXULONG),
                     sizeof(MDL) + (SIZE_T)0x100001 * sizeof(PFN_NUMBER));
    assert_int_equal(MmSizeOfMdl((PVOID)(ULONG_PTR)0x5000, MAXULONG),
                     sizeof(MDL) + (SIZE_T)0x100000 * sizeof(PFN_NUMBER));
}

/* ---- MmInitializeMdl ---- */

static void mm_initialize_mdl_sets_header_and_leaves_process_and_mapping_alone(void **state)
{
    MDL_STORAGE s;
    PUCHAR va = FAKE_VA + 0x1234;
    (void)state;
    memset(&s, 0xA5, sizeof(s));
    s.Mdl.Process = (PEPROCESS)(ULONG_PTR)0xDEAD0000u;
    s.Mdl.MappedSystemVa = (PVOID)(ULONG_PTR)0xBEEF0000u;

    MmInitializeMdl(&s.Mdl, va, 0x2100);

    assert_null(s.Mdl.Next);
    assert_int_equal((USHORT)s.Mdl.Size, MmSizeOfMdl(va, 0x2100));
    assert_int_equal((USHORT)s.Mdl.Size, sizeof(MDL) + 3 * sizeof(PFN_NUMBER));
    assert_int_equal(flags_of(&s.Mdl), 0);
    assert_ptr_equal(s.Mdl.StartVa, FAKE_VA + 0x1000);
    assert_int_equal(s.Mdl.ByteOffset, 0x234);
    assert_int_equal(s.Mdl.ByteCount, 0x2100);
    assert_ptr_equal(s.Mdl.Process, (PEPROCESS)(ULONG_PTR)0xDEAD0000u);
    assert_ptr_equal(s.Mdl.MappedSystemVa, (PVOID)(ULONG_PTR)0xBEEF0000u);
    /* The PFN array is the caller's to fill (MmBuildMdlForNonPagedPool does it). */
    assert_int_equal(s.Pfn[0], (PFN_NUMBER)0xA5A5A5A5A5A5A5A5ull);
}

static void mm_initialize_mdl_zero_length_sizes_by_alignment(void **state)
{
    MDL_STORAGE s;
    (void)state;
    memset(&s, 0, sizeof(s));
    MmInitializeMdl(&s.Mdl, FAKE_VA, 0);
    assert_int_equal((USHORT)s.Mdl.Size, sizeof(MDL));
    assert_int_equal(s.Mdl.ByteCount, 0);
    MmInitializeMdl(&s.Mdl, FAKE_VA + 7, 0);
    assert_int_equal((USHORT)s.Mdl.Size, sizeof(MDL) + sizeof(PFN_NUMBER));
    assert_int_equal(s.Mdl.ByteOffset, 7);
    assert_ptr_equal(s.Mdl.StartVa, FAKE_VA);
}

/* ---- IoAllocateMdl / IoFreeMdl ---- */

static void io_allocate_mdl_builds_nonpaged_descriptor_for_va(void **state)
{
    PUCHAR buf = test_backing_alloc(8 * PAGE_SIZE);
    PUCHAR va = buf + 0x234;
    (void)state;
    PMDL mdl = IoAllocateMdl(va, 3 * PAGE_SIZE, FALSE, FALSE, NULL);
    assert_non_null(mdl);
    assert_built_descriptor(mdl, va, 3 * PAGE_SIZE);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, 3 * PAGE_SIZE), 4);
    IoFreeMdl(mdl);
    test_backing_free(buf);
}

static void io_allocate_mdl_over_eight_pages_has_full_pfn_array(void **state)
{
    PUCHAR buf = test_backing_alloc(24 * PAGE_SIZE);
    PUCHAR va = buf + 0xFF0;
    (void)state;
    PMDL mdl = IoAllocateMdl(va, 20 * PAGE_SIZE, FALSE, FALSE, NULL);
    assert_non_null(mdl);
    assert_built_descriptor(mdl, va, 20 * PAGE_SIZE);
    IoFreeMdl(mdl);
    test_backing_free(buf);
}

static void io_allocate_mdl_zero_length_succeeds_with_size_by_alignment(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    (void)state;
    PMDL aligned = IoAllocateMdl(buf, 0, FALSE, FALSE, NULL);
    PMDL unaligned = IoAllocateMdl(buf + 9, 0, FALSE, FALSE, NULL);
    assert_non_null(aligned);
    assert_non_null(unaligned);
    assert_built_descriptor(aligned, buf, 0);
    assert_built_descriptor(unaligned, buf + 9, 0);
    assert_int_equal((USHORT)aligned->Size, sizeof(MDL));
    assert_int_equal((USHORT)unaligned->Size, sizeof(MDL) + sizeof(PFN_NUMBER));
    IoFreeMdl(aligned);
    IoFreeMdl(unaligned);
    test_backing_free(buf);
}

static void io_allocate_mdl_null_va_gives_unbuilt_mdl(void **state)
{
    (void)state;
    PMDL mdl = IoAllocateMdl(NULL, 2 * PAGE_SIZE, FALSE, FALSE, NULL);
    assert_non_null(mdl);
    assert_int_equal(flags_of(mdl), 0);
    assert_null(mdl->MappedSystemVa);
    assert_null(mdl->Next);
    assert_null(mdl->StartVa);
    assert_int_equal(mdl->ByteOffset, 0);
    assert_int_equal(mdl->ByteCount, 2 * PAGE_SIZE);
    assert_int_equal((USHORT)mdl->Size, MmSizeOfMdl(NULL, 2 * PAGE_SIZE));
    IoFreeMdl(mdl);
}

static void io_allocate_mdl_with_irp_returns_null(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    ULONG_PTR fake_irp[32] = {0};
    (void)state;
    assert_null(IoAllocateMdl(buf, 100, FALSE, FALSE, (PIRP)fake_irp));
    assert_null(IoAllocateMdl(buf, 100, TRUE, FALSE, (PIRP)fake_irp));
    /* Nothing was attached to the "IRP". */
    for (size_t i = 0; i < ARRAYSIZE(fake_irp); i++)
        assert_int_equal(fake_irp[i], 0);
    test_backing_free(buf);
}

static void expect_io_allocate_mdl(PUCHAR va, ULONG length, int should_succeed)
{
    PMDL mdl = IoAllocateMdl(va, length, FALSE, FALSE, NULL);
    if (!should_succeed) {
        assert_null(mdl);
        return;
    }
    assert_non_null(mdl);
    assert_built_descriptor(mdl, va, length);
    IoFreeMdl(mdl);
}

/* The limit is MmSizeOfMdl <= 65535, so it depends on the in-page offset of the address. */
static void io_allocate_mdl_size_limit_holds_at_exact_boundary(void **state)
{
    PUCHAR buf = test_backing_alloc(MAX_MDL_BYTES + 2 * PAGE_SIZE);
    (void)state;
    assert_non_null(buf);
#if UINTPTR_MAX > 0xFFFFFFFFu
    assert_int_equal(MAX_MDL_BYTES, 33525760u);
#endif
    expect_io_allocate_mdl(buf, MAX_MDL_BYTES, 1);
    expect_io_allocate_mdl(buf, MAX_MDL_BYTES + 1, 0);
    expect_io_allocate_mdl(buf + 1, MAX_MDL_BYTES - 1, 1);
    expect_io_allocate_mdl(buf + 1, MAX_MDL_BYTES, 0);
    expect_io_allocate_mdl(buf + 0xFFF, MAX_MDL_BYTES - 0xFFF, 1);
    expect_io_allocate_mdl(buf + 0xFFF, MAX_MDL_BYTES - 0xFFE, 0);
    expect_io_allocate_mdl(buf, MAXULONG, 0);
    expect_io_allocate_mdl(buf, 0x80000000u, 0);
    test_backing_free(buf);
}

static void io_allocate_mdl_wrapping_range_returns_null(void **state)
{
    (void)state;
    assert_null(IoAllocateMdl((PVOID)(MAXULONG_PTR - 0xFF), 0x200, FALSE, FALSE, NULL));
    PVOID last_page = (PVOID)(MAXULONG_PTR & ~(ULONG_PTR)0xFFF);
    assert_null(IoAllocateMdl(last_page, 0x1001, FALSE, FALSE, NULL));
    assert_null(IoAllocateMdl((PVOID)(MAXULONG_PTR - 10), MAXULONG - 0x10000, FALSE, FALSE, NULL));
}

/* IoFreeMdl must not follow Next: the chained descriptor stays allocated in its pool. */
static void io_free_mdl_frees_one_mdl_not_the_chain(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    NDIS_HANDLE pool = NULL;
    NDIS_STATUS status;
    PNDIS_BUFFER tail = NULL;
    LIBNDIS_POOL_INFO info;
    (void)state;
    NdisAllocateBufferPool(&status, &pool, 4);
    assert_non_null(pool);
    NdisAllocateBuffer(&status, &tail, pool, buf + 100, 50);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    PMDL head = IoAllocateMdl(buf, 100, FALSE, FALSE, NULL);
    assert_non_null(head);
    head->Next = tail;

    IoFreeMdl(head);

    assert_int_equal(LibNdisQueryBufferPool(pool, &info), NDIS_STATUS_SUCCESS);
    assert_int_equal(info.InUse, 1);
    assert_int_equal(tail->ByteCount, 50);
    assert_ptr_equal(tail->MappedSystemVa, buf + 100);
    NdisFreeBuffer(tail);
    assert_int_equal(LibNdisQueryBufferPool(pool, &info), NDIS_STATUS_SUCCESS);
    assert_int_equal(info.InUse, 0);
    NdisFreeBufferPool(pool);
    test_backing_free(buf);
}

static void io_free_mdl_ignores_null(void **state)
{
    LIBNDIS_POOL_INFO before, after;
    (void)state;
    assert_int_equal(LibNdisQueryBufferPool(NULL, &before), NDIS_STATUS_SUCCESS);
    IoFreeMdl(NULL);
    assert_int_equal(LibNdisQueryBufferPool(NULL, &after), NDIS_STATUS_SUCCESS);
    assert_int_equal(after.InUse, before.InUse);
}

/* ---- MmBuildMdlForNonPagedPool ---- */

static void mm_build_mdl_for_nonpaged_pool_on_caller_storage(void **state)
{
    PUCHAR buf = test_backing_alloc(4 * PAGE_SIZE);
    PUCHAR va = buf + 0x345;
    MDL_STORAGE s;
    (void)state;
    memset(&s, 0xA5, sizeof(s));
    MmInitializeMdl(&s.Mdl, va, 0x2000);
    s.Mdl.Process = (PEPROCESS)(ULONG_PTR)0xDEAD0000u;

    MmBuildMdlForNonPagedPool(&s.Mdl);

    assert_ptr_equal(s.Mdl.MappedSystemVa, va);
    assert_null(s.Mdl.Process);
    assert_int_equal(flags_of(&s.Mdl), MDL_SOURCE_IS_NONPAGED_POOL);
    assert_ptr_equal(s.Mdl.StartVa, buf);
    assert_int_equal(s.Mdl.ByteOffset, 0x345);
    assert_int_equal(s.Mdl.ByteCount, 0x2000);
    assert_int_equal((USHORT)s.Mdl.Size, MmSizeOfMdl(va, 0x2000));
    assert_pseudo_pfns(&s.Mdl, va, 0x2000);
    /* Only the spanned pages are written: the slot after them keeps the caller's bytes. */
    assert_int_equal(s.Pfn[3], (PFN_NUMBER)0xA5A5A5A5A5A5A5A5ull);
    test_backing_free(buf);
}

static void mm_build_mdl_for_nonpaged_pool_accepts_zero_length(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    MDL_STORAGE s;
    (void)state;
    memset(&s, 0, sizeof(s));
    MmInitializeMdl(&s.Mdl, buf + 0x80, 0);
    MmBuildMdlForNonPagedPool(&s.Mdl);
    assert_ptr_equal(s.Mdl.MappedSystemVa, buf + 0x80);
    assert_int_equal(flags_of(&s.Mdl), MDL_SOURCE_IS_NONPAGED_POOL);
    assert_int_equal(s.Mdl.ByteCount, 0);
    assert_pseudo_pfns(&s.Mdl, buf + 0x80, 0);
    test_backing_free(buf);
}

/* The usual pattern for an MDL allocated without an address: initialise, then build. */
static void mm_build_mdl_for_nonpaged_pool_rebuilds_null_va_mdl(void **state)
{
    PUCHAR buf = test_backing_alloc(4 * PAGE_SIZE);
    PUCHAR va = buf + 0x10;
    (void)state;
    PMDL mdl = IoAllocateMdl(NULL, 2 * PAGE_SIZE, FALSE, FALSE, NULL);
    assert_non_null(mdl);
    CSHORT size = mdl->Size;
    /* Same page count (2) as the allocation, so the PFN array is big enough. */
    MmInitializeMdl(mdl, va, PAGE_SIZE);
    MmBuildMdlForNonPagedPool(mdl);

    assert_int_equal(mdl->Size, size);
    assert_built_descriptor(mdl, va, PAGE_SIZE);
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority), va);
    assert_int_equal(*(PUCHAR)MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority), buf[0x10]);
    IoFreeMdl(mdl);
    test_backing_free(buf);
}

/* ---- IoBuildPartialMdl ---- */

static void io_build_partial_mdl_describes_the_subrange(void **state)
{
    PUCHAR buf = test_backing_alloc(6 * PAGE_SIZE);
    PUCHAR srcva = buf + 0x100;
    PUCHAR subva = srcva + 0x1234;
    (void)state;
    PMDL src = IoAllocateMdl(srcva, 4 * PAGE_SIZE, FALSE, FALSE, NULL);
    PMDL dst = IoAllocateMdl(NULL, 4 * PAGE_SIZE, FALSE, FALSE, NULL);
    assert_non_null(src);
    assert_non_null(dst);
    CSHORT dst_size = dst->Size;

    IoBuildPartialMdl(src, dst, subva, 0x1800);

    assert_ptr_equal(dst->StartVa, PAGE_ALIGN(subva));
    assert_int_equal(dst->ByteOffset, BYTE_OFFSET(subva));
    assert_int_equal(dst->ByteCount, 0x1800);
    assert_int_equal(flags_of(dst), MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL);
    assert_ptr_equal(dst->MappedSystemVa, (PUCHAR)src->MappedSystemVa + 0x1234);
    assert_ptr_equal(dst->Process, src->Process);
    assert_int_equal(dst->Size, dst_size);
    assert_pseudo_pfns(dst, subva, 0x1800);
    assert_ptr_equal(MmGetMdlVirtualAddress(dst), subva);
    /* The source is untouched. */
    assert_built_descriptor(src, srcva, 4 * PAGE_SIZE);
    IoFreeMdl(dst);
    IoFreeMdl(src);
    test_backing_free(buf);
}

static void io_build_partial_mdl_zero_length_means_rest_of_source(void **state)
{
    PUCHAR buf = test_backing_alloc(6 * PAGE_SIZE);
    PUCHAR srcva = buf + 0x100;
    (void)state;
    PMDL src = IoAllocateMdl(srcva, 4 * PAGE_SIZE, FALSE, FALSE, NULL);
    PMDL dst = IoAllocateMdl(srcva, 4 * PAGE_SIZE, FALSE, FALSE, NULL);
    assert_non_null(src);
    assert_non_null(dst);

    IoBuildPartialMdl(src, dst, srcva + 0x1234, 0);

    assert_int_equal(dst->ByteCount, 4 * PAGE_SIZE - 0x1234);
    assert_ptr_equal(MmGetMdlVirtualAddress(dst), srcva + 0x1234);
    assert_ptr_equal(dst->MappedSystemVa, srcva + 0x1234);
    assert_pseudo_pfns(dst, srcva + 0x1234, 4 * PAGE_SIZE - 0x1234);

    IoBuildPartialMdl(src, dst, srcva, 0);
    assert_int_equal(dst->ByteCount, 4 * PAGE_SIZE);
    assert_ptr_equal(dst->MappedSystemVa, srcva);
    IoFreeMdl(dst);
    IoFreeMdl(src);
    test_backing_free(buf);
}

/* The target keeps FIXED_SIZE/MUST_SUCCEED and its Size, drops its other bits, takes the four
 * inheritable source bits and gains MDL_PARTIAL. */
static void io_build_partial_mdl_keeps_target_size_and_own_flags_inherits_source_bits(void **state)
{
    PUCHAR buf = test_backing_alloc(4 * PAGE_SIZE);
    MDL_STORAGE src, dst;
    (void)state;
    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    MmInitializeMdl(&src.Mdl, buf, 3 * PAGE_SIZE);
    MmBuildMdlForNonPagedPool(&src.Mdl);
    src.Mdl.MdlFlags |= MDL_IO_PAGE_READ | MDL_IO_SPACE | MDL_WRITE_OPERATION | MDL_PAGES_LOCKED |
                        MDL_NETWORK_HEADER;
    src.Mdl.Process = (PEPROCESS)(ULONG_PTR)0x1000u;
    MmInitializeMdl(&dst.Mdl, buf, 8 * PAGE_SIZE);
    dst.Mdl.MdlFlags = MDL_ALLOCATED_FIXED_SIZE | MDL_ALLOCATED_MUST_SUCCEED | MDL_WRITE_OPERATION |
                       MDL_PAGES_LOCKED | MDL_MAPPED_TO_SYSTEM_VA | MDL_NETWORK_HEADER;
    CSHORT dst_size = dst.Mdl.Size;

    IoBuildPartialMdl(&src.Mdl, &dst.Mdl, buf + 0x10, 0x20);

    assert_int_equal(flags_of(&dst.Mdl), MDL_ALLOCATED_FIXED_SIZE | MDL_ALLOCATED_MUST_SUCCEED |
                                             MDL_PARTIAL | MDL_IO_PAGE_READ | MDL_IO_SPACE |
                                             MDL_SOURCE_IS_NONPAGED_POOL);
    assert_int_equal(dst.Mdl.Size, dst_size);
    assert_ptr_equal(dst.Mdl.Process, (PEPROCESS)(ULONG_PTR)0x1000u);
    assert_int_equal(dst.Mdl.ByteCount, 0x20);

    src.Mdl.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    dst.Mdl.MdlFlags = 0;
    IoBuildPartialMdl(&src.Mdl, &dst.Mdl, buf + 0x10, 0x20);
    assert_int_equal(flags_of(&dst.Mdl), MDL_PARTIAL | MDL_IO_PAGE_READ | MDL_IO_SPACE |
                                             MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA);
    test_backing_free(buf);
}

/* VirtualAddress is in the source's MmGetMdlVirtualAddress space; MappedSystemVa moves by the
 * same delta from the source's system mapping, wherever that is. */
static void io_build_partial_mdl_offsets_mapped_system_va_by_delta(void **state)
{
    PUCHAR buf = test_backing_alloc(4 * PAGE_SIZE);
    PUCHAR srcva = FAKE_VA + 0x40;
    MDL_STORAGE src, dst;
    (void)state;
    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    MmInitializeMdl(&src.Mdl, srcva, 2 * PAGE_SIZE);
    src.Mdl.MappedSystemVa = buf + 0x40;
    src.Mdl.MdlFlags = MDL_MAPPED_TO_SYSTEM_VA;
    MmInitializeMdl(&dst.Mdl, srcva, 2 * PAGE_SIZE);

    IoBuildPartialMdl(&src.Mdl, &dst.Mdl, srcva + 0x1500, 0x100);

    assert_ptr_equal(dst.Mdl.StartVa, FAKE_VA + 0x1000);
    assert_int_equal(dst.Mdl.ByteOffset, 0x540);
    assert_ptr_equal(dst.Mdl.MappedSystemVa, buf + 0x1540);
    assert_int_equal(flags_of(&dst.Mdl), MDL_PARTIAL | MDL_MAPPED_TO_SYSTEM_VA);
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(&dst.Mdl, NormalPagePriority), buf + 0x1540);
    test_backing_free(buf);
}

static void expect_partial_rejected(PMDL src, MDL_STORAGE *dst, PVOID va, ULONG length)
{
    MDL_STORAGE before;
    memcpy(&before, dst, sizeof(before));
    IoBuildPartialMdl(src, &dst->Mdl, va, length);
    assert_memory_equal(&before, dst, sizeof(before));
}

static void prepare_sentinel_target(MDL_STORAGE *dst, PVOID va, ULONG length)
{
    memset(dst, 0x5A, sizeof(*dst));
    MmInitializeMdl(&dst->Mdl, va, length);
    dst->Mdl.MdlFlags = MDL_ALLOCATED_FIXED_SIZE;
    dst->Mdl.Process = (PEPROCESS)(ULONG_PTR)0x77770000u;
    dst->Mdl.MappedSystemVa = (PVOID)(ULONG_PTR)0x66660000u;
}

static void io_build_partial_mdl_out_of_range_leaves_target_untouched(void **state)
{
    PUCHAR buf = test_backing_alloc(6 * PAGE_SIZE);
    PUCHAR srcva = buf + 0x1100;
    ULONG len = 0x2000;
    MDL_STORAGE dst;
    (void)state;
    PMDL src = IoAllocateMdl(srcva, len, FALSE, FALSE, NULL);
    assert_non_null(src);
    prepare_sentinel_target(&dst, buf, 8 * PAGE_SIZE);

    expect_partial_rejected(src, &dst, srcva - 1, 10);
    expect_partial_rejected(src, &dst, srcva - 1, 0);
    expect_partial_rejected(src, &dst, srcva + len - 5, 6);
    expect_partial_rejected(src, &dst, srcva, len + 1);
    expect_partial_rejected(src, &dst, srcva + len, 1);
    expect_partial_rejected(src, &dst, srcva + len + 1, 0);
    expect_partial_rejected(src, &dst, srcva + 1, MAXULONG);

    /* The largest in-range request is accepted by the same target. */
    IoBuildPartialMdl(src, &dst.Mdl, srcva + len - 6, 6);
    assert_int_equal(dst.Mdl.ByteCount, 6);
    assert_ptr_equal(dst.Mdl.MappedSystemVa, srcva + len - 6);
    IoFreeMdl(src);
    test_backing_free(buf);
}

static void io_build_partial_mdl_too_small_target_left_untouched(void **state)
{
    PUCHAR buf = test_backing_alloc(6 * PAGE_SIZE);
    MDL_STORAGE dst;
    (void)state;
    PMDL src = IoAllocateMdl(buf, 5 * PAGE_SIZE, FALSE, FALSE, NULL);
    assert_non_null(src);
    /* Room for exactly two PFNs. */
    prepare_sentinel_target(&dst, buf + 0x800, PAGE_SIZE);
    assert_int_equal((USHORT)dst.Mdl.Size, sizeof(MDL) + 2 * sizeof(PFN_NUMBER));

    expect_partial_rejected(src, &dst, buf + 0x800, 2 * PAGE_SIZE);  /* 3 pages */
    expect_partial_rejected(src, &dst, buf + 0xFFF, PAGE_SIZE + 2);  /* 3 pages */
    expect_partial_rejected(src, &dst, buf + 0x10, 0);               /* rest: 5 pages */

    /* Exactly two pages fit. */
    IoBuildPartialMdl(src, &dst.Mdl, buf + 0xFFF, PAGE_SIZE + 1);
    assert_int_equal(dst.Mdl.ByteCount, PAGE_SIZE + 1);
    assert_int_equal((USHORT)dst.Mdl.Size, sizeof(MDL) + 2 * sizeof(PFN_NUMBER));
    assert_pseudo_pfns(&dst.Mdl, buf + 0xFFF, PAGE_SIZE + 1);
    assert_int_equal(dst.Pfn[2], (PFN_NUMBER)0x5A5A5A5A5A5A5A5Aull);
    IoFreeMdl(src);
    test_backing_free(buf);
}

/* ---- MmGetSystemAddressForMdl(Safe) and MmPrepareMdlForReuse ---- */

static void system_address_of_nonpaged_mdl_is_mapped_system_va(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    (void)state;
    PMDL mdl = IoAllocateMdl(buf + 0x20, 0x40, FALSE, FALSE, NULL);
    assert_non_null(mdl);
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(mdl, LowPagePriority), buf + 0x20);
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(mdl, HighPagePriority), buf + 0x20);
    assert_ptr_equal(MmGetSystemAddressForMdl(mdl), buf + 0x20);
    assert_int_equal(flags_of(mdl), MDL_SOURCE_IS_NONPAGED_POOL);
    assert_ptr_equal(mdl->MappedSystemVa, buf + 0x20);

    /* Nonpaged means "trust MappedSystemVa", even when it differs from the virtual address. */
    mdl->MappedSystemVa = buf + 0x100;
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority), buf + 0x100);
    assert_ptr_equal(MmGetSystemAddressForMdl(mdl), buf + 0x100);
    mdl->MappedSystemVa = buf + 0x20;
    IoFreeMdl(mdl);
    test_backing_free(buf);
}

static void system_address_of_mapped_mdl_is_mapped_system_va(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    MDL_STORAGE s;
    (void)state;
    memset(&s, 0, sizeof(s));
    MmInitializeMdl(&s.Mdl, FAKE_VA + 0x10, 0x30);
    s.Mdl.MappedSystemVa = buf + 0x10;
    s.Mdl.MdlFlags = MDL_MAPPED_TO_SYSTEM_VA;
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(&s.Mdl, NormalPagePriority), buf + 0x10);
    assert_ptr_equal(MmGetSystemAddressForMdl(&s.Mdl), buf + 0x10);
    assert_int_equal(flags_of(&s.Mdl), MDL_MAPPED_TO_SYSTEM_VA);
    test_backing_free(buf);
}

static void system_address_safe_maps_unmapped_mdl_and_marks_it_mapped(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    MDL_STORAGE s;
    (void)state;
    memset(&s, 0, sizeof(s));
    MmInitializeMdl(&s.Mdl, buf + 0x30, 100);
    s.Mdl.MappedSystemVa = (PVOID)(ULONG_PTR)0x66660000u;

    assert_ptr_equal(MmGetSystemAddressForMdlSafe(&s.Mdl, NormalPagePriority), buf + 0x30);
    assert_ptr_equal(s.Mdl.MappedSystemVa, buf + 0x30);
    assert_int_equal(flags_of(&s.Mdl), MDL_MAPPED_TO_SYSTEM_VA);
    /* A second call reuses the mapping. */
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(&s.Mdl, NormalPagePriority), buf + 0x30);
    assert_int_equal(flags_of(&s.Mdl), MDL_MAPPED_TO_SYSTEM_VA);
    test_backing_free(buf);
}

static void system_address_plain_maps_unmapped_mdl_and_marks_it_mapped(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    MDL_STORAGE s;
    (void)state;
    memset(&s, 0, sizeof(s));
    MmInitializeMdl(&s.Mdl, buf + 0x31, 100);
    assert_ptr_equal(MmGetSystemAddressForMdl(&s.Mdl), buf + 0x31);
    assert_ptr_equal(s.Mdl.MappedSystemVa, buf + 0x31);
    assert_int_equal(flags_of(&s.Mdl), MDL_MAPPED_TO_SYSTEM_VA);
    test_backing_free(buf);
}

/* A partial of an unmapped source has no mapping of its own until asked for one. */
static void build_unmapped_partial(MDL_STORAGE *src, MDL_STORAGE *dst, PUCHAR base)
{
    memset(src, 0, sizeof(*src));
    memset(dst, 0, sizeof(*dst));
    MmInitializeMdl(&src->Mdl, base, 2 * PAGE_SIZE);
    MmInitializeMdl(&dst->Mdl, base, 2 * PAGE_SIZE);
    IoBuildPartialMdl(&src->Mdl, &dst->Mdl, base + 0x10, 0x20);
    assert_int_equal(flags_of(&dst->Mdl), MDL_PARTIAL);
}

static void system_address_maps_unmapped_partial_with_partial_has_been_mapped(void **state)
{
    PUCHAR buf = test_backing_alloc(2 * PAGE_SIZE);
    MDL_STORAGE src, dst;
    (void)state;
    build_unmapped_partial(&src, &dst, buf);

    assert_ptr_equal(MmGetSystemAddressForMdlSafe(&dst.Mdl, NormalPagePriority), buf + 0x10);
    assert_ptr_equal(dst.Mdl.MappedSystemVa, buf + 0x10);
    assert_int_equal(flags_of(&dst.Mdl),
                     MDL_PARTIAL | MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED);
    /* The source stays unmapped. */
    assert_int_equal(flags_of(&src.Mdl), 0);

    build_unmapped_partial(&src, &dst, buf);
    assert_ptr_equal(MmGetSystemAddressForMdl(&dst.Mdl), buf + 0x10);
    assert_int_equal(flags_of(&dst.Mdl),
                     MDL_PARTIAL | MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED);
    test_backing_free(buf);
}

static void prepare_mdl_for_reuse_clears_own_mapping_of_partial(void **state)
{
    PUCHAR buf = test_backing_alloc(2 * PAGE_SIZE);
    MDL_STORAGE src, dst;
    (void)state;
    build_unmapped_partial(&src, &dst, buf);
    assert_non_null(MmGetSystemAddressForMdlSafe(&dst.Mdl, NormalPagePriority));

    MmPrepareMdlForReuse(&dst.Mdl);

    assert_int_equal(flags_of(&dst.Mdl) & (MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED),
                     0);
    /* Reused for another range, it maps to the new range, not the stale one. */
    IoBuildPartialMdl(&src.Mdl, &dst.Mdl, buf + 0x1100, 0x40);
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(&dst.Mdl, NormalPagePriority), buf + 0x1100);
    assert_int_equal(flags_of(&dst.Mdl),
                     MDL_PARTIAL | MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED);
    MmPrepareMdlForReuse(&dst.Mdl);
    test_backing_free(buf);
}

/* A partial of a nonpaged source shares the source's mapping: there is nothing to undo. */
static void prepare_mdl_for_reuse_leaves_partial_of_nonpaged_source_alone(void **state)
{
    PUCHAR buf = test_backing_alloc(2 * PAGE_SIZE);
    MDL_STORAGE dst;
    (void)state;
    PMDL src = IoAllocateMdl(buf, 2 * PAGE_SIZE, FALSE, FALSE, NULL);
    assert_non_null(src);
    memset(&dst, 0, sizeof(dst));
    MmInitializeMdl(&dst.Mdl, buf, 2 * PAGE_SIZE);
    IoBuildPartialMdl(src, &dst.Mdl, buf + 0x200, 0x300);
    MDL_STORAGE before;
    memcpy(&before, &dst, sizeof(before));

    MmPrepareMdlForReuse(&dst.Mdl);

    assert_memory_equal(&before, &dst, sizeof(before));
    assert_int_equal(flags_of(&dst.Mdl), MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL);
    assert_ptr_equal(dst.Mdl.MappedSystemVa, buf + 0x200);
    IoFreeMdl(src);
    test_backing_free(buf);
}

/* ---- accessors and layout ---- */

static void mm_get_mdl_accessors_read_the_fields(void **state)
{
    PUCHAR buf = test_backing_alloc(4 * PAGE_SIZE);
    MDL_STORAGE s;
    (void)state;
    PMDL mdl = IoAllocateMdl(buf + 0x345, 5000, FALSE, FALSE, NULL);
    assert_non_null(mdl);
    assert_ptr_equal(MmGetMdlVirtualAddress(mdl), buf + 0x345);
    assert_int_equal(MmGetMdlByteCount(mdl), 5000);
    assert_int_equal(MmGetMdlByteOffset(mdl), 0x345);
    assert_ptr_equal(MmGetMdlBaseVa(mdl), buf);
    assert_ptr_equal(MmGetMdlPfnArray(mdl), (PUCHAR)mdl + sizeof(MDL));
    IoFreeMdl(mdl);

    /* Field reads, not memory reads: they work on any values a driver stores. */
    memset(&s, 0, sizeof(s));
    s.Mdl.StartVa = FAKE_VA;
    s.Mdl.ByteOffset = 0xABC;
    s.Mdl.ByteCount = 77;
    assert_ptr_equal(MmGetMdlVirtualAddress(&s.Mdl), FAKE_VA + 0xABC);
    assert_ptr_equal(MmGetMdlBaseVa(&s.Mdl), FAKE_VA);
    assert_int_equal(MmGetMdlByteOffset(&s.Mdl), 0xABC);
    assert_int_equal(MmGetMdlByteCount(&s.Mdl), 77);
    assert_ptr_equal(MmGetMdlPfnArray(&s.Mdl), s.Pfn);
    test_backing_free(buf);
}

static ptrdiff_t field_at(const MDL *m, const void *field)
{
    return (const char *)field - (const char *)m;
}

static void mdl_layout_matches_wdk_at_run_time(void **state)
{
    MDL m;
    (void)state;
    assert_int_equal(sizeof(ULONG), 4);
    assert_int_equal(sizeof(CSHORT), 2);
    assert_int_equal(sizeof(PFN_NUMBER), sizeof(void *));
    assert_int_equal(sizeof(NDIS_BUFFER), sizeof(MDL));
#if UINTPTR_MAX > 0xFFFFFFFFu
    static const size_t expect[] = {0x30, 0x00, 0x08, 0x0A, 0x10, 0x18, 0x20, 0x28, 0x2C};
#else
    static const size_t expect[] = {0x1C, 0x00, 0x04, 0x06, 0x08, 0x0C, 0x10, 0x14, 0x18};
#endif
    assert_int_equal(sizeof(MDL), expect[0]);
    assert_int_equal(offsetof(MDL, Next), expect[1]);
    assert_int_equal(offsetof(MDL, Size), expect[2]);
    assert_int_equal(offsetof(MDL, MdlFlags), expect[3]);
    assert_int_equal(offsetof(MDL, Process), expect[4]);
    assert_int_equal(offsetof(MDL, MappedSystemVa), expect[5]);
    assert_int_equal(offsetof(MDL, StartVa), expect[6]);
    assert_int_equal(offsetof(MDL, ByteCount), expect[7]);
    assert_int_equal(offsetof(MDL, ByteOffset), expect[8]);
    assert_int_equal(field_at(&m, &m.Size), expect[2]);
    assert_int_equal(field_at(&m, &m.MdlFlags), expect[3]);
    assert_int_equal(field_at(&m, &m.Process), expect[4]);
    assert_int_equal(field_at(&m, &m.MappedSystemVa), expect[5]);
    assert_int_equal(field_at(&m, &m.StartVa), expect[6]);
    assert_int_equal(field_at(&m, &m.ByteCount), expect[7]);
    assert_int_equal(field_at(&m, &m.ByteOffset), expect[8]);
    assert_int_equal(FIELD_OFFSET(MDL, ByteOffset), expect[8]);
}

static void mdl_flag_values_match_wdk(void **state)
{
    (void)state;
    assert_int_equal(MDL_MAPPED_TO_SYSTEM_VA, 0x0001);
    assert_int_equal(MDL_SOURCE_IS_NONPAGED_POOL, 0x0004);
    assert_int_equal(MDL_ALLOCATED_FIXED_SIZE, 0x0008);
    assert_int_equal(MDL_PARTIAL, 0x0010);
    assert_int_equal(MDL_PARTIAL_HAS_BEEN_MAPPED, 0x0020);
    assert_int_equal(MDL_IO_PAGE_READ, 0x0040);
    assert_int_equal(MDL_IO_SPACE, 0x0800);
    assert_int_equal(MDL_ALLOCATED_MUST_SUCCEED, 0x4000);
    assert_int_equal(PAGE_SIZE, 4096);
    assert_int_equal(PAGE_SHIFT, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(byte_offset_keeps_only_the_in_page_bits),
        cmocka_unit_test(page_align_clears_the_in_page_bits),
        cmocka_unit_test(round_to_pages_rounds_up_to_page_multiple),
        cmocka_unit_test(bytes_to_pages_is_ceiling_without_overflow),
        cmocka_unit_test(span_pages_of_zero_size_is_zero_aligned_one_unaligned),
        cmocka_unit_test(span_pages_counts_every_page_touched),
        cmocka_unit_test(span_pages_near_maxulong_does_not_overflow),
        cmocka_unit_test(mm_size_of_mdl_is_header_plus_one_pfn_per_spanned_page),
        cmocka_unit_test(mm_size_of_mdl_of_maxulong_length_does_not_overflow),
        cmocka_unit_test(mm_initialize_mdl_sets_header_and_leaves_process_and_mapping_alone),
        cmocka_unit_test(mm_initialize_mdl_zero_length_sizes_by_alignment),
        cmocka_unit_test(io_allocate_mdl_builds_nonpaged_descriptor_for_va),
        cmocka_unit_test(io_allocate_mdl_over_eight_pages_has_full_pfn_array),
        cmocka_unit_test(io_allocate_mdl_zero_length_succeeds_with_size_by_alignment),
        cmocka_unit_test(io_allocate_mdl_null_va_gives_unbuilt_mdl),
        cmocka_unit_test(io_allocate_mdl_with_irp_returns_null),
        cmocka_unit_test(io_allocate_mdl_size_limit_holds_at_exact_boundary),
        cmocka_unit_test(io_allocate_mdl_wrapping_range_returns_null),
        cmocka_unit_test(io_free_mdl_frees_one_mdl_not_the_chain),
        cmocka_unit_test(io_free_mdl_ignores_null),
        cmocka_unit_test(mm_build_mdl_for_nonpaged_pool_on_caller_storage),
        cmocka_unit_test(mm_build_mdl_for_nonpaged_pool_accepts_zero_length),
        cmocka_unit_test(mm_build_mdl_for_nonpaged_pool_rebuilds_null_va_mdl),
        cmocka_unit_test(io_build_partial_mdl_describes_the_subrange),
        cmocka_unit_test(io_build_partial_mdl_zero_length_means_rest_of_source),
        cmocka_unit_test(io_build_partial_mdl_keeps_target_size_and_own_flags_inherits_source_bits),
        cmocka_unit_test(io_build_partial_mdl_offsets_mapped_system_va_by_delta),
        cmocka_unit_test(io_build_partial_mdl_out_of_range_leaves_target_untouched),
        cmocka_unit_test(io_build_partial_mdl_too_small_target_left_untouched),
        cmocka_unit_test(system_address_of_nonpaged_mdl_is_mapped_system_va),
        cmocka_unit_test(system_address_of_mapped_mdl_is_mapped_system_va),
        cmocka_unit_test(system_address_safe_maps_unmapped_mdl_and_marks_it_mapped),
        cmocka_unit_test(system_address_plain_maps_unmapped_mdl_and_marks_it_mapped),
        cmocka_unit_test(system_address_maps_unmapped_partial_with_partial_has_been_mapped),
        cmocka_unit_test(prepare_mdl_for_reuse_clears_own_mapping_of_partial),
        cmocka_unit_test(prepare_mdl_for_reuse_leaves_partial_of_nonpaged_source_alone),
        cmocka_unit_test(mm_get_mdl_accessors_read_the_fields),
        cmocka_unit_test(mdl_layout_matches_wdk_at_run_time),
        cmocka_unit_test(mdl_flag_values_match_wdk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
