/* SPDX-License-Identifier: MIT */
/* test_buffer.c - the NDIS buffer API: pools (growth, strict mode, retirement), NdisAllocateBuffer
 * limits and fields, NdisCopyBuffer against decision 8 (boundaries, empty descriptors, Length 0,
 * range and overflow failures), freeing rules, and the query/adjust/span macros. */
#define _POSIX_C_SOURCE 200809L /* setenv/unsetenv for the strict-pools variable */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

#include "test_util.h"

#define INHERITED_FLAGS \
    (MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA | MDL_IO_PAGE_READ | MDL_IO_SPACE)
#define MAX_MDL_PAGES ((ULONG)((65535u - sizeof(MDL)) / sizeof(PFN_NUMBER)))
#define MAX_MDL_BYTES (MAX_MDL_PAGES * (ULONG)PAGE_SIZE)
/* A pointer no call may return: shows that *Buffer was really written on failure. */
#define POISON_BUFFER ((PNDIS_BUFFER)(ULONG_PTR)0xBADBADB0u)

/* ---- helpers ---- */

static USHORT flags_of(PMDL Mdl)
{
    return (USHORT)Mdl->MdlFlags;
}

static NDIS_HANDLE new_pool(UINT Count)
{
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    NDIS_HANDLE pool = (NDIS_HANDLE)POISON_BUFFER;
    NdisAllocateBufferPool(&status, &pool, Count);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(pool);
    assert_ptr_not_equal(pool, (NDIS_HANDLE)POISON_BUFFER);
    return pool;
}

static LIBNDIS_POOL_INFO pool_info(NDIS_HANDLE Pool)
{
    LIBNDIS_POOL_INFO info;
    memset(&info, 0xCC, sizeof(info));
    assert_int_equal(LibNdisQueryBufferPool(Pool, &info), NDIS_STATUS_SUCCESS);
    return info;
}

static ULONG in_use(NDIS_HANDLE Pool)
{
    return pool_info(Pool).InUse;
}

static PNDIS_BUFFER alloc_ok(NDIS_HANDLE Pool, PVOID Va, UINT Length)
{
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    PNDIS_BUFFER b = POISON_BUFFER;
    NdisAllocateBuffer(&status, &b, Pool, Va, Length);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(b);
    assert_ptr_not_equal(b, POISON_BUFFER);
    return b;
}

static void alloc_fails(NDIS_HANDLE Pool, PVOID Va, UINT Length)
{
    NDIS_STATUS status = NDIS_STATUS_SUCCESS;
    PNDIS_BUFFER b = POISON_BUFFER;
    ULONG before = in_use(Pool);
    NdisAllocateBuffer(&status, &b, Pool, Va, Length);
    assert_int_equal(status, NDIS_STATUS_FAILURE);
    assert_null(b);
    assert_int_equal(in_use(Pool), before);
}

static PNDIS_BUFFER copy_ok(NDIS_HANDLE Pool, PNDIS_BUFFER Src, UINT Offset, UINT Length)
{
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    PNDIS_BUFFER r = POISON_BUFFER;
    NdisCopyBuffer(&status, &r, Pool, Src, Offset, Length);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(r);
    assert_ptr_not_equal(r, POISON_BUFFER);
    return r;
}

static void copy_fails(NDIS_HANDLE Pool, PVOID Src, UINT Offset, UINT Length)
{
    NDIS_STATUS status = NDIS_STATUS_SUCCESS;
    PNDIS_BUFFER r = POISON_BUFFER;
    ULONG before = in_use(Pool);
    NdisCopyBuffer(&status, &r, Pool, Src, Offset, Length);
    assert_int_equal(status, NDIS_STATUS_FAILURE);
    assert_null(r);
    assert_int_equal(in_use(Pool), before);
}

static ULONG chain_length(PNDIS_BUFFER b)
{
    ULONG n = 0;
    for (; b != NULL; b = b->Next)
        n++;
    return n;
}

/* Frees one element at a time, as a driver must (IoFreeMdl never follows Next). */
static void free_chain(PNDIS_BUFFER b)
{
    while (b != NULL) {
        PNDIS_BUFFER next = b->Next;
        NdisFreeBuffer(b);
        b = next;
    }
}

static void assert_pseudo_pfns(PMDL Mdl, PVOID Va, ULONG Length)
{
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Length);
    PFN_NUMBER first = (PFN_NUMBER)((ULONG_PTR)PAGE_ALIGN(Va) >> PAGE_SHIFT);
    for (ULONG i = 0; i < pages; i++)
        assert_int_equal(MmGetMdlPfnArray(Mdl)[i], first + i);
}

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

/* One element of an NdisCopyBuffer result describing Length bytes at SrcOffset of Src. */
static void assert_piece(PMDL Piece, PMDL Src, ULONG SrcOffset, ULONG Length)
{
    PUCHAR va = (PUCHAR)MmGetMdlVirtualAddress(Src) + SrcOffset;
    assert_int_equal(flags_of(Piece), MDL_PARTIAL | (flags_of(Src) & INHERITED_FLAGS));
    assert_ptr_equal(Piece->MappedSystemVa, (PUCHAR)Src->MappedSystemVa + SrcOffset);
    assert_ptr_equal(Piece->StartVa, PAGE_ALIGN(va));
    assert_int_equal(Piece->ByteOffset, BYTE_OFFSET(va));
    assert_int_equal(Piece->ByteCount, Length);
    assert_int_equal((USHORT)Piece->Size, MmSizeOfMdl(va, Length));
    assert_ptr_equal(Piece->Process, Src->Process);
    assert_pseudo_pfns(Piece, va, Length);
}

/* ---- a source chain laid out in one backing block ---- */

#define MAX_SEGS 12
#define SEG_STRIDE 0x2000u

typedef struct {
    NDIS_HANDLE SrcPool;  /* the source descriptors */
    NDIS_HANDLE CopyPool; /* NdisCopyBuffer results, so InUse counts only them */
    PUCHAR Backing;
    ULONG Count;
    ULONG Total;
    ULONG Len[MAX_SEGS];
    PNDIS_BUFFER Seg[MAX_SEGS];
    UCHAR Stream[MAX_SEGS * 0x1000]; /* the chain's data, concatenated */
} CHAIN;

/* Segment i sits just below a page end at an in-page offset that differs per segment, so most
 * segments cross a page and a mix-up of segments shows in addresses and data. */
static PUCHAR seg_va(const CHAIN *c, ULONG i)
{
    return c->Backing + i * SEG_STRIDE + 0x1000 - 0x10 - 4 * i;
}

static void chain_init(CHAIN *c, const ULONG *Lens, ULONG Count)
{
    memset(c, 0, sizeof(*c));
    assert_true(Count <= MAX_SEGS);
    c->SrcPool = new_pool(Count);
    c->CopyPool = new_pool(4);
    c->Backing = test_backing_alloc((Count + 1) * SEG_STRIDE);
    assert_non_null(c->Backing);
    c->Count = Count;
    for (ULONG i = 0; i < Count; i++) {
        assert_true(Lens[i] <= 0x1000);
        c->Len[i] = Lens[i];
        c->Seg[i] = alloc_ok(c->SrcPool, seg_va(c, i), Lens[i]);
        if (i > 0)
            c->Seg[i - 1]->Next = c->Seg[i];
        memcpy(c->Stream + c->Total, seg_va(c, i), Lens[i]);
        c->Total += Lens[i];
    }
}

static void chain_done(CHAIN *c)
{
    assert_int_equal(in_use(c->CopyPool), 0);
    free_chain(c->Seg[0]);
    assert_int_equal(in_use(c->SrcPool), 0);
    NdisFreeBufferPool(c->CopyPool);
    NdisFreeBufferPool(c->SrcPool);
    test_backing_free(c->Backing);
}

typedef struct {
    ULONG Seg;
    ULONG Off;
    ULONG Len;
} PIECE;

/* The result's bytes, read through MappedSystemVa, must be the chain's bytes [Offset, +Length). */
static void assert_result_data(const CHAIN *c, PNDIS_BUFFER r, ULONG Offset, ULONG Length)
{
    ULONG pos = Offset;
    for (; r != NULL; r = r->Next) {
        assert_true(pos + r->ByteCount <= Offset + Length);
        assert_memory_equal(r->MappedSystemVa, c->Stream + pos, r->ByteCount);
        pos += r->ByteCount;
    }
    assert_int_equal(pos, Offset + Length);
}

static void expect_copy(CHAIN *c, ULONG Offset, ULONG Length, const PIECE *Want, ULONG Count)
{
    ULONG before = in_use(c->CopyPool);
    PNDIS_BUFFER r = copy_ok(c->CopyPool, c->Seg[0], Offset, Length);
    PNDIS_BUFFER p = r;
    for (ULONG k = 0; k < Count; k++) {
        assert_non_null(p);
        assert_piece(p, c->Seg[Want[k].Seg], Want[k].Off, Want[k].Len);
        p = p->Next;
    }
    assert_null(p);
    assert_int_equal(in_use(c->CopyPool), before + Count);
    assert_result_data(c, r, Offset, Length);
    free_chain(r);
    assert_int_equal(in_use(c->CopyPool), before);
}

#define EXPECT_COPY(c, off, len, ...)                                              \
    do {                                                                           \
        static const PIECE want_[] = {__VA_ARGS__};                                \
        expect_copy((c), (off), (len), want_, (ULONG)ARRAYSIZE(want_));            \
    } while (0)

/* ---- NdisAllocateBufferPool / NdisFreeBufferPool ---- */

static void allocate_buffer_pool_succeeds_with_declared_count(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_HANDLE a = new_pool(16);
    NDIS_HANDLE b = new_pool(16);
    assert_ptr_not_equal(a, b);
    assert_int_equal(LibNdisLiveBufferPools(), live + 2);
    LIBNDIS_POOL_INFO info = pool_info(a);
    assert_int_equal(info.DeclaredDescriptors, 16);
    assert_true(info.StorageDescriptors >= 16);
    assert_int_equal(info.InUse, 0);
    assert_false(info.Strict);
    assert_false(info.Retired);
    NdisFreeBufferPool(a);
    NdisFreeBufferPool(b);
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

static void allocate_buffer_pool_of_zero_descriptors_still_serves_allocations(void **state)
{
    UCHAR data[64];
    (void)state;
    NDIS_HANDLE pool = new_pool(0);
    assert_int_equal(pool_info(pool).DeclaredDescriptors, 0);
    PNDIS_BUFFER b = alloc_ok(pool, data, sizeof(data));
    assert_built_descriptor(b, data, sizeof(data));
    assert_int_equal(in_use(pool), 1);
    NdisFreeBuffer(b);
    assert_int_equal(in_use(pool), 0);
    NdisFreeBufferPool(pool);
}

static void strict_pool_of_zero_descriptors_fails_every_allocation(void **state)
{
    UCHAR data[64];
    (void)state;
    NDIS_HANDLE pool = new_pool(0);
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, TRUE), NDIS_STATUS_SUCCESS);
    alloc_fails(pool, data, sizeof(data));
    alloc_fails(pool, data, 0);
    NdisFreeBufferPool(pool);
}

/* The header names only the default pool and a retired pool as refusing strict mode; a pool
 * that grew earlier but now has no more than its count out is neither. */
static void strict_mode_can_be_set_after_pool_grew_and_shrank_back(void **state)
{
    UCHAR data[64];
    PNDIS_BUFFER held[6];
    (void)state;
    NDIS_HANDLE pool = new_pool(2);
    for (int i = 0; i < 6; i++)
        held[i] = alloc_ok(pool, data, 8);
    for (int i = 0; i < 6; i++)
        NdisFreeBuffer(held[i]);
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, TRUE), NDIS_STATUS_SUCCESS);
    assert_true(pool_info(pool).Strict);
    held[0] = alloc_ok(pool, data, 1);
    held[1] = alloc_ok(pool, data, 2);
    alloc_fails(pool, data, 3);
    NdisFreeBuffer(held[0]);
    NdisFreeBuffer(held[1]);
    NdisFreeBufferPool(pool);
}

static void free_buffer_pool_null_is_a_noop(void **state)
{
    UCHAR data[16];
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NdisFreeBufferPool(NULL);
    assert_int_equal(LibNdisLiveBufferPools(), live);
    /* The default pool is still there. */
    PNDIS_BUFFER b = alloc_ok(NULL, data, sizeof(data));
    assert_built_descriptor(b, data, sizeof(data));
    NdisFreeBuffer(b);
}

static void free_buffer_pool_when_idle_releases_storage_at_once(void **state)
{
    UCHAR data[16];
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_HANDLE pool = new_pool(8);
    NdisFreeBuffer(alloc_ok(pool, data, sizeof(data)));
    assert_int_equal(LibNdisLiveBufferPools(), live + 1);
    NdisFreeBufferPool(pool);
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

/* ---- NdisAllocateBuffer ---- */

static void allocate_buffer_sets_every_field_per_contract(void **state)
{
    PUCHAR buf = test_backing_alloc(8 * PAGE_SIZE);
    (void)state;
    NDIS_HANDLE pool = new_pool(4);
    PNDIS_BUFFER unaligned = alloc_ok(pool, buf + 0x234, 3 * PAGE_SIZE);
    PNDIS_BUFFER aligned = alloc_ok(pool, buf + 4 * PAGE_SIZE, 100);
    assert_built_descriptor(unaligned, buf + 0x234, 3 * PAGE_SIZE);
    assert_built_descriptor(aligned, buf + 4 * PAGE_SIZE, 100);
    assert_int_equal((USHORT)unaligned->Size, sizeof(MDL) + 4 * sizeof(PFN_NUMBER));
    assert_int_equal((USHORT)aligned->Size, sizeof(MDL) + sizeof(PFN_NUMBER));
    assert_int_equal(in_use(pool), 2);
    NdisFreeBuffer(unaligned);
    NdisFreeBuffer(aligned);
    assert_int_equal(in_use(pool), 0);
    NdisFreeBufferPool(pool);
    test_backing_free(buf);
}

static void allocate_buffer_zero_length_succeeds_with_size_by_alignment(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    (void)state;
    NDIS_HANDLE pool = new_pool(4);
    PNDIS_BUFFER aligned = alloc_ok(pool, buf, 0);
    PNDIS_BUFFER unaligned = alloc_ok(pool, buf + 0x10, 0);
    assert_built_descriptor(aligned, buf, 0);
    assert_built_descriptor(unaligned, buf + 0x10, 0);
    assert_int_equal((USHORT)aligned->Size, sizeof(MDL));
    assert_int_equal((USHORT)unaligned->Size, sizeof(MDL) + sizeof(PFN_NUMBER));
#if UINTPTR_MAX > 0xFFFFFFFFu
    assert_int_equal(aligned->Size, 48);
    assert_int_equal(unaligned->Size, 56);
#endif
    NdisFreeBuffer(aligned);
    NdisFreeBuffer(unaligned);
    NdisFreeBufferPool(pool);
    test_backing_free(buf);
}

/* Decision 7 rejects a NULL address only "with Length > 0"; with 0 the length rule wins. */
static void allocate_buffer_null_va_with_zero_length_succeeds(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_pool(4);
    PNDIS_BUFFER b = alloc_ok(pool, NULL, 0);
    assert_int_equal(b->ByteCount, 0);
    assert_null(b->StartVa);
    assert_int_equal(b->ByteOffset, 0);
    assert_int_equal((USHORT)b->Size, sizeof(MDL));
    NdisFreeBuffer(b);
    NdisFreeBufferPool(pool);
}

static void allocate_buffer_null_va_with_length_fails(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_pool(4);
    alloc_fails(pool, NULL, 1);
    alloc_fails(pool, NULL, PAGE_SIZE);
    alloc_fails(NULL, NULL, 100);
    NdisFreeBufferPool(pool);
}

static void allocate_buffer_size_limit_holds_at_exact_boundary(void **state)
{
    PUCHAR buf = test_backing_alloc(MAX_MDL_BYTES + 2 * PAGE_SIZE);
    (void)state;
    assert_non_null(buf);
    NDIS_HANDLE pool = new_pool(2);
#if UINTPTR_MAX > 0xFFFFFFFFu
    assert_int_equal(MAX_MDL_BYTES, 33525760u);
#endif
    PNDIS_BUFFER b = alloc_ok(pool, buf, MAX_MDL_BYTES);
    assert_built_descriptor(b, buf, MAX_MDL_BYTES);
    assert_int_equal((USHORT)b->Size, sizeof(MDL) + MAX_MDL_PAGES * sizeof(PFN_NUMBER));
    NdisFreeBuffer(b);
    alloc_fails(pool, buf, MAX_MDL_BYTES + 1);

    b = alloc_ok(pool, buf + 1, MAX_MDL_BYTES - 1);
    assert_built_descriptor(b, buf + 1, MAX_MDL_BYTES - 1);
    NdisFreeBuffer(b);
    alloc_fails(pool, buf + 1, MAX_MDL_BYTES);
    alloc_fails(pool, buf, MAXULONG);
    alloc_fails(pool, buf, 0x80000000u);
    alloc_fails(NULL, buf, MAX_MDL_BYTES + 1);
    assert_int_equal(in_use(pool), 0);
    NdisFreeBufferPool(pool);
    test_backing_free(buf);
}

static void allocate_buffer_wrapping_range_fails(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_pool(2);
    alloc_fails(pool, (PVOID)(MAXULONG_PTR - 0xFF), 0x200);
    alloc_fails(pool, (PVOID)(MAXULONG_PTR & ~(ULONG_PTR)0xFFF), 0x1001);
    alloc_fails(NULL, (PVOID)(MAXULONG_PTR - 0xFF), 0x200);
    NdisFreeBufferPool(pool);
}

static void allocate_buffer_null_pool_handle_uses_default_pool(void **state)
{
    UCHAR data[300];
    (void)state;
    ULONG before = in_use(NULL);
    PNDIS_BUFFER b = alloc_ok(NULL, data + 3, 200);
    assert_built_descriptor(b, data + 3, 200);
    assert_int_equal(in_use(NULL), before + 1);
    NdisFreeBuffer(b);
    assert_int_equal(in_use(NULL), before);
}

/* Larger descriptors live in a separate allocation; nothing about them may differ. */
static void allocate_buffer_over_eight_pages_behaves_identically(void **state)
{
    PUCHAR buf = test_backing_alloc(24 * PAGE_SIZE);
    (void)state;
    NDIS_HANDLE pool = new_pool(4);
    PNDIS_BUFFER eight = alloc_ok(pool, buf, 8 * PAGE_SIZE);
    PNDIS_BUFFER nine = alloc_ok(pool, buf + 1, 8 * PAGE_SIZE);
    PNDIS_BUFFER big = alloc_ok(pool, buf + 0x10, 20 * PAGE_SIZE);
    assert_built_descriptor(eight, buf, 8 * PAGE_SIZE);
    assert_built_descriptor(nine, buf + 1, 8 * PAGE_SIZE);
    assert_built_descriptor(big, buf + 0x10, 20 * PAGE_SIZE);
    assert_int_equal(in_use(pool), 3);

    PNDIS_BUFFER part = copy_ok(pool, big, 0x1000, 12 * PAGE_SIZE);
    assert_piece(part, big, 0x1000, 12 * PAGE_SIZE);
    assert_null(part->Next);
    assert_int_equal(in_use(pool), 4);
    IoFreeMdl(part);
    NdisFreeBuffer(big);
    NdisFreeBuffer(nine);
    NdisFreeBuffer(eight);
    assert_int_equal(in_use(pool), 0);

    /* A big descriptor counts as one against a strict pool's count. */
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, TRUE), NDIS_STATUS_SUCCESS);
    PNDIS_BUFFER held[4];
    for (int i = 0; i < 4; i++)
        held[i] = alloc_ok(pool, buf, (i + 1) * 5 * PAGE_SIZE / 2);
    alloc_fails(pool, buf, 10 * PAGE_SIZE);
    for (int i = 0; i < 4; i++)
        NdisFreeBuffer(held[i]);
    NdisFreeBufferPool(pool);
    test_backing_free(buf);
}

/* ---- NdisCopyBuffer (decision 8) ---- */

static void copy_buffer_offset_inside_one_buffer(void **state)
{
    static const ULONG lens[] = {100, 200, 300};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 3);
    EXPECT_COPY(&c, 10, 50, {0, 10, 50});
    EXPECT_COPY(&c, 110, 20, {1, 10, 20});
    EXPECT_COPY(&c, 599, 1, {2, 299, 1});
    EXPECT_COPY(&c, 0, 100, {0, 0, 100});
    chain_done(&c);
}

static void copy_buffer_offset_on_boundary_starts_at_next_buffer(void **state)
{
    static const ULONG lens[] = {100, 200, 300};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 3);
    EXPECT_COPY(&c, 100, 10, {1, 0, 10});
    EXPECT_COPY(&c, 300, 300, {2, 0, 300});
    EXPECT_COPY(&c, 100, 500, {1, 0, 200}, {2, 0, 300});
    chain_done(&c);
}

static void copy_buffer_range_across_several_buffers_gives_one_piece_per_buffer(void **state)
{
    static const ULONG lens[] = {100, 200, 300, 50};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 4);
    EXPECT_COPY(&c, 50, 400, {0, 50, 50}, {1, 0, 200}, {2, 0, 150});
    EXPECT_COPY(&c, 0, 650, {0, 0, 100}, {1, 0, 200}, {2, 0, 300}, {3, 0, 50});
    EXPECT_COPY(&c, 99, 551, {0, 99, 1}, {1, 0, 200}, {2, 0, 300}, {3, 0, 50});
    chain_done(&c);
}

/* A range that ends exactly where a buffer ends does not touch the next buffer. */
static void copy_buffer_range_ending_on_boundary_adds_no_empty_piece(void **state)
{
    static const ULONG lens[] = {100, 200, 300};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 3);
    EXPECT_COPY(&c, 0, 100, {0, 0, 100});
    EXPECT_COPY(&c, 50, 250, {0, 50, 50}, {1, 0, 200});
    chain_done(&c);
}

static void copy_buffer_skips_zero_length_source_at_start(void **state)
{
    static const ULONG lens[] = {0, 0, 100, 200};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 4);
    EXPECT_COPY(&c, 0, 10, {2, 0, 10});
    EXPECT_COPY(&c, 0, 300, {2, 0, 100}, {3, 0, 200});
    EXPECT_COPY(&c, 100, 5, {3, 0, 5});
    chain_done(&c);
}

static void copy_buffer_skips_zero_length_source_in_middle(void **state)
{
    static const ULONG lens[] = {100, 0, 0, 200, 0, 50};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 6);
    EXPECT_COPY(&c, 50, 100, {0, 50, 50}, {3, 0, 50});
    EXPECT_COPY(&c, 100, 10, {3, 0, 10});
    EXPECT_COPY(&c, 0, 350, {0, 0, 100}, {3, 0, 200}, {5, 0, 50});
    EXPECT_COPY(&c, 300, 50, {5, 0, 50});
    chain_done(&c);
}

static void copy_buffer_skips_zero_length_source_at_end(void **state)
{
    static const ULONG lens[] = {100, 200, 0, 0};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 4);
    EXPECT_COPY(&c, 0, 300, {0, 0, 100}, {1, 0, 200});
    EXPECT_COPY(&c, 250, 50, {1, 150, 50});
    chain_done(&c);
}

static void copy_buffer_zero_length_at_start_names_first_byte(void **state)
{
    static const ULONG lens[] = {100, 200};
    static const ULONG lead[] = {0, 0, 100};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 2);
    EXPECT_COPY(&c, 0, 0, {0, 0, 0});
    EXPECT_COPY(&c, 50, 0, {0, 50, 0});
    chain_done(&c);
    /* Offset 0 before leading empty descriptors names the first byte of the first data. */
    chain_init(&c, lead, 3);
    EXPECT_COPY(&c, 0, 0, {2, 0, 0});
    chain_done(&c);
}

static void copy_buffer_zero_length_at_inner_boundary_names_next_nonempty(void **state)
{
    static const ULONG lens[] = {100, 0, 0, 200, 300};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 5);
    EXPECT_COPY(&c, 100, 0, {3, 0, 0});
    EXPECT_COPY(&c, 300, 0, {4, 0, 0});
    chain_done(&c);
}

static void copy_buffer_zero_length_at_total_names_end_of_last_descriptor(void **state)
{
    static const ULONG lens[] = {100, 200};
    static const ULONG trailing[] = {100, 200, 0, 0};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 2);
    EXPECT_COPY(&c, 300, 0, {1, 200, 0});
    chain_done(&c);
    /* Even when the last descriptor is empty, it is the one named. */
    chain_init(&c, trailing, 4);
    EXPECT_COPY(&c, 300, 0, {3, 0, 0});
    EXPECT_COPY(&c, 200, 0, {1, 100, 0});
    chain_done(&c);
}

static void copy_buffer_on_chain_of_only_empty_descriptors(void **state)
{
    static const ULONG lens[] = {0, 0};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 2);
    EXPECT_COPY(&c, 0, 0, {1, 0, 0});
    copy_fails(c.CopyPool, c.Seg[0], 0, 1);
    copy_fails(c.CopyPool, c.Seg[0], 1, 0);
    chain_done(&c);
}

static void copy_buffer_out_of_range_by_one_fails(void **state)
{
    static const ULONG lens[] = {100, 200, 300};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 3);
    copy_fails(c.CopyPool, c.Seg[0], 601, 0);
    copy_fails(c.CopyPool, c.Seg[0], 0, 601);
    copy_fails(c.CopyPool, c.Seg[0], 600, 1);
    copy_fails(c.CopyPool, c.Seg[0], 1, 600);
    copy_fails(c.CopyPool, c.Seg[0], 300, 301);
    copy_fails(c.CopyPool, c.Seg[0], 50, 551);
    copy_fails(NULL, c.Seg[0], 0, 601);
    /* The inclusive limits succeed. */
    EXPECT_COPY(&c, 599, 1, {2, 299, 1});
    EXPECT_COPY(&c, 600, 0, {2, 300, 0});
    /* Offsets count from the descriptor passed, not from some chain head. */
    copy_fails(c.CopyPool, c.Seg[1], 0, 501);
    PNDIS_BUFFER r = copy_ok(c.CopyPool, c.Seg[1], 0, 500);
    assert_int_equal(chain_length(r), 2);
    assert_piece(r, c.Seg[1], 0, 200);
    free_chain(r);
    chain_done(&c);
}

static void copy_buffer_offset_plus_length_overflowing_32_bits_fails(void **state)
{
    static const ULONG lens[] = {100, 200, 300};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 3);
    /* Each pair wraps to a small sum that would be in range. */
    copy_fails(c.CopyPool, c.Seg[0], 0xFFFFFFF0u, 0x20);
    copy_fails(c.CopyPool, c.Seg[0], 1, 0xFFFFFFFFu);
    copy_fails(c.CopyPool, c.Seg[0], 0xFFFFFFFFu, 1);
    copy_fails(c.CopyPool, c.Seg[0], 0x80000000u, 0x80000000u);
    copy_fails(c.CopyPool, c.Seg[0], 0xFFFFFFFFu, 0xFFFFFFFFu);
    copy_fails(c.CopyPool, c.Seg[0], 10, 0xFFFFFFFFu - 5);
    copy_fails(c.CopyPool, c.Seg[0], 0xFFFFFFFFu, 0);
    chain_done(&c);
}

static void copy_buffer_null_memory_descriptor_fails(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_pool(2);
    copy_fails(pool, NULL, 0, 0);
    copy_fails(pool, NULL, 0, 10);
    copy_fails(NULL, NULL, 0, 10);
    NdisFreeBufferPool(pool);
}

static void copy_buffer_from_io_allocate_mdl_sources(void **state)
{
    PUCHAR buf = test_backing_alloc(4 * PAGE_SIZE);
    (void)state;
    NDIS_HANDLE pool = new_pool(2);
    NDIS_HANDLE copies = new_pool(4);
    PMDL a = IoAllocateMdl(buf + 0xFC0, 100, FALSE, FALSE, NULL);
    PNDIS_BUFFER b = alloc_ok(pool, buf + 0x1800, 200);
    /* Allocated without an address, then described and built as a driver would. */
    PMDL c = IoAllocateMdl(NULL, PAGE_SIZE, FALSE, FALSE, NULL);
    assert_non_null(a);
    assert_non_null(c);
    MmInitializeMdl(c, buf + 0x2100, 300);
    MmBuildMdlForNonPagedPool(c);
    a->Next = b;
    b->Next = c;

    PNDIS_BUFFER r = copy_ok(copies, a, 50, 500);
    assert_int_equal(chain_length(r), 3);
    assert_int_equal(in_use(copies), 3);
    assert_piece(r, a, 50, 50);
    assert_piece(r->Next, b, 0, 200);
    assert_piece(r->Next->Next, c, 0, 250);
    assert_int_equal(flags_of(r->Next->Next), MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL);
    assert_memory_equal(r->MappedSystemVa, buf + 0xFC0 + 50, 50);
    assert_memory_equal(r->Next->Next->MappedSystemVa, buf + 0x2100, 250);
    free_chain(r);
    assert_int_equal(in_use(copies), 0);
    IoFreeMdl(c);
    NdisFreeBuffer(b);
    IoFreeMdl(a);
    NdisFreeBufferPool(copies);
    NdisFreeBufferPool(pool);
    test_backing_free(buf);
}

static void copy_buffer_of_a_copy_maps_the_same_bytes(void **state)
{
    static const ULONG lens[] = {100, 200, 300};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 3);
    PNDIS_BUFFER first = copy_ok(c.CopyPool, c.Seg[0], 50, 400); /* pieces 50, 200, 150 */
    PNDIS_BUFFER second = copy_ok(c.CopyPool, first, 60, 300);
    assert_int_equal(chain_length(second), 2);
    assert_piece(second, first->Next, 10, 190);
    assert_piece(second->Next, first->Next->Next, 0, 110);
    assert_int_equal(flags_of(second), MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL);
    assert_int_equal(in_use(c.CopyPool), 5);
    assert_result_data(&c, second, 110, 300);

    /* The copy of a copy outlives the copy it was made from. */
    free_chain(first);
    assert_result_data(&c, second, 110, 300);
    free_chain(second);
    chain_done(&c);
}

static void copy_buffer_inherits_io_flags_and_process_from_source(void **state)
{
    static const ULONG lens[] = {300, 200};
    PEPROCESS fake = (PEPROCESS)(ULONG_PTR)0x12340000u;
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 2);
    CSHORT saved = c.Seg[0]->MdlFlags;
    c.Seg[0]->MdlFlags |= MDL_IO_PAGE_READ | MDL_IO_SPACE | MDL_MAPPED_TO_SYSTEM_VA |
                          MDL_WRITE_OPERATION | MDL_NETWORK_HEADER;
    c.Seg[0]->Process = fake;

    PNDIS_BUFFER r = copy_ok(c.CopyPool, c.Seg[0], 10, 350);
    assert_int_equal(flags_of(r), MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL |
                                      MDL_MAPPED_TO_SYSTEM_VA | MDL_IO_PAGE_READ | MDL_IO_SPACE);
    assert_ptr_equal(r->Process, fake);
    /* The second piece takes its own source's bits and Process. */
    assert_int_equal(flags_of(r->Next), MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL);
    assert_null(r->Next->Process);
    assert_piece(r, c.Seg[0], 10, 290);
    assert_piece(r->Next, c.Seg[1], 0, 60);
    free_chain(r);
    c.Seg[0]->MdlFlags = saved;
    c.Seg[0]->Process = NULL;
    chain_done(&c);
}

static void copy_buffer_result_freed_one_by_one_with_mixed_free_calls(void **state)
{
    static const ULONG lens[] = {100, 200, 300};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 3);
    PNDIS_BUFFER r = copy_ok(c.CopyPool, c.Seg[0], 20, 500);
    PNDIS_BUFFER p1 = r->Next;
    PNDIS_BUFFER p2 = p1->Next;
    assert_int_equal(in_use(c.CopyPool), 3);
    NdisFreeBuffer(r);
    assert_int_equal(in_use(c.CopyPool), 2);
    /* Freeing the head left the rest of the chain intact. */
    assert_piece(p1, c.Seg[1], 0, 200);
    assert_ptr_equal(p1->Next, p2);
    IoFreeMdl(p2);
    assert_int_equal(in_use(c.CopyPool), 1);
    assert_piece(p1, c.Seg[1], 0, 200);
    NdisFreeBuffer(p1);
    assert_int_equal(in_use(c.CopyPool), 0);
    chain_done(&c);
}

static void copy_buffer_null_pool_handle_uses_default_pool(void **state)
{
    static const ULONG lens[] = {100, 200};
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 2);
    ULONG before = in_use(NULL);
    PNDIS_BUFFER r = copy_ok(NULL, c.Seg[0], 90, 20);
    assert_int_equal(in_use(NULL), before + 2);
    assert_piece(r, c.Seg[0], 90, 10);
    assert_piece(r->Next, c.Seg[1], 0, 10);
    free_chain(r);
    assert_int_equal(in_use(NULL), before);
    chain_done(&c);
}

/* Independent statement of decision 8, used to sweep every (Offset, Length) of a small chain. */
static int model_pieces(const CHAIN *c, ULONG Offset, ULONG Length, PIECE *Out)
{
    if ((uint64_t)Offset + Length > c->Total)
        return -1;
    if (Length == 0) {
        ULONG start = 0;
        for (ULONG i = 0; i < c->Count; i++) {
            if (Offset < start + c->Len[i]) {
                Out[0] = (PIECE){i, Offset - start, 0};
                return 1;
            }
            start += c->Len[i];
        }
        Out[0] = (PIECE){c->Count - 1, c->Len[c->Count - 1], 0};
        return 1;
    }
    int n = 0;
    ULONG start = 0;
    for (ULONG i = 0; i < c->Count; start += c->Len[i], i++) {
        ULONG lo = Offset > start ? Offset : start;
        ULONG hi = Offset + Length < start + c->Len[i] ? Offset + Length : start + c->Len[i];
        if (lo < hi)
            Out[n++] = (PIECE){i, lo - start, hi - lo};
    }
    return n;
}

static void copy_buffer_matches_model_for_every_offset_and_length(void **state)
{
    static const ULONG lens[] = {0, 3, 0, 0x30, 0, 0, 4, 1, 0x41, 0};
    CHAIN c;
    PIECE want[MAX_SEGS];
    (void)state;
    chain_init(&c, lens, ARRAYSIZE(lens));
    for (ULONG off = 0; off <= c.Total + 2; off++) {
        for (ULONG len = 0; len <= c.Total + 2; len++) {
            int n = model_pieces(&c, off, len, want);
            if (n < 0)
                copy_fails(c.CopyPool, c.Seg[0], off, len);
            else
                expect_copy(&c, off, len, want, (ULONG)n);
        }
    }
    chain_done(&c);
}

/* ---- strict mode, growth, retirement ---- */

static void pool_grows_past_declared_count_by_default(void **state)
{
    UCHAR data[64];
    PNDIS_BUFFER held[40];
    (void)state;
    NDIS_HANDLE pool = new_pool(2);
    for (int i = 0; i < 40; i++) {
        held[i] = alloc_ok(pool, data + i, 8);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(held[i], held[j]);
    }
    LIBNDIS_POOL_INFO info = pool_info(pool);
    assert_int_equal(info.DeclaredDescriptors, 2);
    assert_true(info.StorageDescriptors >= 40);
    assert_int_equal(info.InUse, 40);
    assert_false(info.Strict);
    for (int i = 0; i < 40; i++)
        assert_built_descriptor(held[i], data + i, 8);
    for (int i = 0; i < 40; i++)
        NdisFreeBuffer(held[i]);
    assert_int_equal(in_use(pool), 0);
    NdisFreeBufferPool(pool);
}

static void strict_pool_fails_allocation_at_declared_count(void **state)
{
    UCHAR data[64];
    (void)state;
    NDIS_HANDLE pool = new_pool(3);
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, TRUE), NDIS_STATUS_SUCCESS);
    assert_true(pool_info(pool).Strict);
    PNDIS_BUFFER a = alloc_ok(pool, data, 1);
    PNDIS_BUFFER b = alloc_ok(pool, data, 2);
    PNDIS_BUFFER c = alloc_ok(pool, data, 3);
    ULONG storage = pool_info(pool).StorageDescriptors;
    alloc_fails(pool, data, 4);
    alloc_fails(pool, data, 0);
    assert_int_equal(pool_info(pool).StorageDescriptors, storage);
    NdisFreeBuffer(b);
    PNDIS_BUFFER d = alloc_ok(pool, data, 5);
    alloc_fails(pool, data, 6);

    /* Switching strict off lets the pool grow again. */
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, FALSE), NDIS_STATUS_SUCCESS);
    assert_false(pool_info(pool).Strict);
    PNDIS_BUFFER e = alloc_ok(pool, data, 7);
    assert_int_equal(in_use(pool), 4);
    NdisFreeBuffer(a);
    NdisFreeBuffer(c);
    NdisFreeBuffer(d);
    NdisFreeBuffer(e);
    NdisFreeBufferPool(pool);
}

static void strict_pool_copy_buffer_needing_more_than_remaining_fails_whole(void **state)
{
    static const ULONG lens[] = {100, 200, 300};
    UCHAR data[8];
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 3);
    NDIS_HANDLE strict = new_pool(4);
    assert_int_equal(LibNdisSetBufferPoolStrict(strict, TRUE), NDIS_STATUS_SUCCESS);
    PNDIS_BUFFER f1 = alloc_ok(strict, data, 1);
    PNDIS_BUFFER f2 = alloc_ok(strict, data, 2);

    copy_fails(strict, c.Seg[0], 50, 400); /* needs 3, 2 remain */
    assert_int_equal(in_use(strict), 2);
    PNDIS_BUFFER r = copy_ok(strict, c.Seg[0], 50, 100); /* needs 2 */
    assert_int_equal(chain_length(r), 2);
    assert_int_equal(in_use(strict), 4);
    copy_fails(strict, c.Seg[0], 0, 1);
    copy_fails(strict, c.Seg[0], 0, 0);
    free_chain(r);
    PNDIS_BUFFER z = copy_ok(strict, c.Seg[0], 600, 0);
    assert_int_equal(in_use(strict), 3);
    NdisFreeBuffer(z);
    NdisFreeBuffer(f1);
    NdisFreeBuffer(f2);
    assert_int_equal(in_use(strict), 0);
    NdisFreeBufferPool(strict);
    chain_done(&c);
}

static void strict_mode_cannot_be_set_on_default_pool(void **state)
{
    (void)state;
    assert_int_equal(LibNdisSetBufferPoolStrict(NULL, TRUE), NDIS_STATUS_FAILURE);
    LIBNDIS_POOL_INFO info = pool_info(NULL);
    assert_false(info.Strict);
    assert_false(info.Retired);
}

static void free_buffer_pool_with_descriptors_out_retires_pool(void **state)
{
    PUCHAR buf = test_backing_alloc(16 * PAGE_SIZE);
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_HANDLE other = new_pool(4);
    NDIS_HANDLE pool = new_pool(4);
    PNDIS_BUFFER a = alloc_ok(pool, buf, 100);
    PNDIS_BUFFER b = alloc_ok(pool, buf + 0x200, 100);
    PNDIS_BUFFER big = alloc_ok(pool, buf + 0x10, 12 * PAGE_SIZE);
    assert_int_equal(LibNdisLiveBufferPools(), live + 2);

    NdisFreeBufferPool(pool);

    LIBNDIS_POOL_INFO info = pool_info(pool);
    assert_true(info.Retired);
    assert_int_equal(info.InUse, 3);
    assert_int_equal(LibNdisLiveBufferPools(), live + 2);
    alloc_fails(pool, buf, 10);
    copy_fails(pool, a, 0, 10);
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, TRUE), NDIS_STATUS_FAILURE);
    /* Its descriptors stay valid and usable as sources for other pools. */
    assert_built_descriptor(a, buf, 100);
    assert_built_descriptor(big, buf + 0x10, 12 * PAGE_SIZE);
    PNDIS_BUFFER r = copy_ok(other, big, 5, 20);
    assert_piece(r, big, 5, 20);
    NdisFreeBuffer(r);

    NdisFreeBuffer(a);
    assert_int_equal(in_use(pool), 2);
    IoFreeMdl(big);
    assert_int_equal(in_use(pool), 1);
    assert_int_equal(LibNdisLiveBufferPools(), live + 2);
    NdisFreeBuffer(b);
    assert_int_equal(LibNdisLiveBufferPools(), live + 1);
    NdisFreeBufferPool(other);
    assert_int_equal(LibNdisLiveBufferPools(), live);
    test_backing_free(buf);
}

/* Set before the pool is made: the variable applies to pools created afterwards. */
static void env_strict_pools_makes_later_pools_strict(void **state)
{
    UCHAR data[8];
    (void)state;
    assert_int_equal(setenv(LIBNDIS_ENV_STRICT_POOLS, "1", 1), 0);
    NDIS_HANDLE strict = new_pool(2);
    assert_int_equal(unsetenv(LIBNDIS_ENV_STRICT_POOLS), 0);
    NDIS_HANDLE lax = new_pool(2);

    assert_true(pool_info(strict).Strict);
    assert_false(pool_info(lax).Strict);
    PNDIS_BUFFER a = alloc_ok(strict, data, 1);
    PNDIS_BUFFER b = alloc_ok(strict, data, 2);
    alloc_fails(strict, data, 3);
    NdisFreeBuffer(a);
    NdisFreeBuffer(b);
    NdisFreeBufferPool(strict);
    NdisFreeBufferPool(lax);
}

/* ---- NdisFreeBuffer / IoFreeMdl ---- */

static void free_buffer_second_free_is_ignored(void **state)
{
    UCHAR data[32];
    (void)state;
    NDIS_HANDLE pool = new_pool(4);
    PNDIS_BUFFER a = alloc_ok(pool, data, 10);
    PNDIS_BUFFER b = alloc_ok(pool, data, 20);
    NdisFreeBuffer(a);
    assert_int_equal(in_use(pool), 1);
    NdisFreeBuffer(a);
    IoFreeMdl(a);
    assert_int_equal(in_use(pool), 1);
    /* Had the descriptor gone back twice, two allocations would now share it. */
    PNDIS_BUFFER c = alloc_ok(pool, data, 30);
    PNDIS_BUFFER d = alloc_ok(pool, data, 31);
    assert_ptr_not_equal(c, d);
    assert_ptr_not_equal(c, b);
    assert_ptr_not_equal(d, b);
    assert_int_equal(in_use(pool), 3);
    assert_int_equal(b->ByteCount, 20);
    assert_int_equal(c->ByteCount, 30);
    NdisFreeBuffer(b);
    NdisFreeBuffer(c);
    NdisFreeBuffer(d);
    assert_int_equal(in_use(pool), 0);
    NdisFreeBufferPool(pool);
}

static void free_buffer_null_is_ignored(void **state)
{
    (void)state;
    ULONG before = in_use(NULL);
    NdisFreeBuffer(NULL);
    assert_int_equal(in_use(NULL), before);
}

static void free_buffer_and_io_free_mdl_accept_descriptors_from_any_pool_and_api(void **state)
{
    UCHAR data[64];
    (void)state;
    NDIS_HANDLE p1 = new_pool(2);
    NDIS_HANDLE p2 = new_pool(2);
    PNDIS_BUFFER a = alloc_ok(p1, data, 40);
    PNDIS_BUFFER b = alloc_ok(p2, data + 8, 20);
    PMDL c = IoAllocateMdl(data, 16, FALSE, FALSE, NULL);
    assert_non_null(c);
    PNDIS_BUFFER d = copy_ok(p2, a, 4, 8);
    assert_int_equal(in_use(p1), 1);
    assert_int_equal(in_use(p2), 2);

    IoFreeMdl(a);
    assert_int_equal(in_use(p1), 0);
    assert_int_equal(in_use(p2), 2);
    NdisFreeBuffer(c);
    IoFreeMdl(d);
    assert_int_equal(in_use(p2), 1);
    NdisFreeBuffer(b);
    assert_int_equal(in_use(p2), 0);
    NdisFreeBufferPool(p1);
    NdisFreeBufferPool(p2);
}

/* ---- queries and macros ---- */

static void query_buffer_returns_address_and_length_through_puchar_pointer(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    PUCHAR va = NULL;
    UINT len = 0;
    (void)state;
    PNDIS_BUFFER b = alloc_ok(NULL, buf + 0x44, 0x123);
    NdisQueryBuffer(b, &va, &len);
    assert_ptr_equal(va, buf + 0x44);
    assert_int_equal(len, 0x123);
    assert_int_equal(va[0], buf[0x44]);

    va = NULL;
    len = 0;
    NdisQueryBufferSafe(b, &va, &len, NormalPagePriority);
    assert_ptr_equal(va, buf + 0x44);
    assert_int_equal(len, 0x123);

    /* A partial reports its own first byte. */
    PNDIS_BUFFER p = copy_ok(NULL, b, 0x20, 0x10);
    NdisQueryBufferSafe(p, &va, &len, HighPagePriority);
    assert_ptr_equal(va, buf + 0x64);
    assert_int_equal(len, 0x10);
    NdisFreeBuffer(p);
    NdisFreeBuffer(b);
    test_backing_free(buf);
}

static void query_buffer_accepts_null_virtual_address(void **state)
{
    UCHAR data[100];
    UINT len = 0;
    (void)state;
    PNDIS_BUFFER b = alloc_ok(NULL, data, 77);
    NdisQueryBuffer(b, NULL, &len);
    assert_int_equal(len, 77);
    len = 0;
    NdisQueryBufferSafe(b, NULL, &len, NormalPagePriority);
    assert_int_equal(len, 77);
    NdisFreeBuffer(b);
}

static void query_buffer_of_zero_length_buffer(void **state)
{
    UCHAR data[16];
    PVOID va = NULL;
    UINT len = 99;
    (void)state;
    PNDIS_BUFFER b = alloc_ok(NULL, data + 5, 0);
    NdisQueryBuffer(b, &va, &len);
    assert_ptr_equal(va, data + 5);
    assert_int_equal(len, 0);
    NdisFreeBuffer(b);
}

static void query_buffer_offset_is_in_page_offset_not_chain_offset(void **state)
{
    PUCHAR buf = test_backing_alloc(4 * PAGE_SIZE);
    UINT off = 0, len = 0;
    (void)state;
    PNDIS_BUFFER b = alloc_ok(NULL, buf + 0x123, 0x3000);
    NdisQueryBufferOffset(b, &off, &len);
    assert_int_equal(off, 0x123);
    assert_int_equal(len, 0x3000);

    PNDIS_BUFFER p = copy_ok(NULL, b, 0x1000, 0x10);
    NdisQueryBufferOffset(p, &off, &len);
    assert_int_equal(off, 0x123);
    assert_int_equal(len, 0x10);
    NdisFreeBuffer(p);
    p = copy_ok(NULL, b, 0xF00, 0x10);
    NdisQueryBufferOffset(p, &off, &len);
    assert_int_equal(off, 0x023);
    NdisFreeBuffer(p);
    NdisFreeBuffer(b);
    test_backing_free(buf);
}

static void get_next_buffer_walks_chain_and_ends_with_null(void **state)
{
    static const ULONG lens[] = {10, 0, 30};
    PNDIS_BUFFER next = POISON_BUFFER;
    CHAIN c;
    (void)state;
    chain_init(&c, lens, 3);
    NdisGetNextBuffer(c.Seg[0], &next);
    assert_ptr_equal(next, c.Seg[1]);
    NdisGetNextBuffer(next, &next);
    assert_ptr_equal(next, c.Seg[2]);
    NdisGetNextBuffer(next, &next);
    assert_null(next);
    chain_done(&c);
}

static void buffer_linkage_is_an_assignable_lvalue(void **state)
{
    UCHAR data[16];
    PNDIS_BUFFER next = NULL;
    (void)state;
    PNDIS_BUFFER a = alloc_ok(NULL, data, 4);
    PNDIS_BUFFER b = alloc_ok(NULL, data + 4, 4);
    assert_null(NDIS_BUFFER_LINKAGE(a));
    NDIS_BUFFER_LINKAGE(a) = b;
    assert_ptr_equal(a->Next, b);
    NdisGetNextBuffer(a, &next);
    assert_ptr_equal(next, b);
    NDIS_BUFFER_LINKAGE(a) = NULL;
    assert_null(a->Next);
    NdisFreeBuffer(a);
    NdisFreeBuffer(b);
}

static void buffer_length_and_virtual_address_read_the_descriptor(void **state)
{
    PUCHAR buf = test_backing_alloc(2 * PAGE_SIZE);
    (void)state;
    PNDIS_BUFFER b = alloc_ok(NULL, buf + 0xF00, 0x400);
    assert_int_equal(NdisBufferLength(b), 0x400);
    assert_ptr_equal(NdisBufferVirtualAddress(b), buf + 0xF00);
    assert_ptr_equal(NdisBufferVirtualAddressSafe(b, NormalPagePriority), buf + 0xF00);
    assert_ptr_equal(NdisBufferVirtualAddressSafe(b, LowPagePriority), buf + 0xF00);
    PNDIS_BUFFER p = copy_ok(NULL, b, 0x300, 0x100);
    assert_int_equal(NdisBufferLength(p), 0x100);
    assert_ptr_equal(NdisBufferVirtualAddress(p), buf + 0x1200);
    assert_ptr_equal(NdisBufferVirtualAddressSafe(p, NormalPagePriority), buf + 0x1200);
    NdisFreeBuffer(p);
    NdisFreeBuffer(b);
    test_backing_free(buf);
}

static void adjust_buffer_length_changes_only_byte_count(void **state)
{
    PUCHAR buf = test_backing_alloc(4 * PAGE_SIZE);
    UCHAR before[sizeof(MDL) + 3 * sizeof(PFN_NUMBER)];
    UCHAR after[sizeof(before)];
    (void)state;
    NDIS_HANDLE pool = new_pool(2);
    PNDIS_BUFFER b = alloc_ok(pool, buf + 0x800, 0x2000);
    memcpy(before, b, sizeof(before));

    NdisAdjustBufferLength(b, 10);
    assert_int_equal(b->ByteCount, 10);
    assert_int_equal(NdisBufferLength(b), 10);
    memcpy(after, b, sizeof(after));
    ULONG original = 0x2000;
    memcpy(after + offsetof(MDL, ByteCount), &original, sizeof(original));
    assert_memory_equal(before, after, sizeof(before));
    assert_int_equal(NDIS_BUFFER_TO_SPAN_PAGES(b), 1);

    NdisAdjustBufferLength(b, 0);
    assert_int_equal(b->ByteCount, 0);
    assert_int_equal(NDIS_BUFFER_TO_SPAN_PAGES(b), 1);

    /* Restored before the free, as the documentation requires. */
    NdisAdjustBufferLength(b, 0x2000);
    assert_memory_equal(before, b, sizeof(before));
    NdisFreeBuffer(b);
    assert_int_equal(in_use(pool), 0);
    NdisFreeBufferPool(pool);
    test_backing_free(buf);
}

static void buffer_to_span_pages_of_zero_length_is_one(void **state)
{
    PUCHAR buf = test_backing_alloc(PAGE_SIZE);
    (void)state;
    PNDIS_BUFFER aligned = alloc_ok(NULL, buf, 0);
    PNDIS_BUFFER unaligned = alloc_ok(NULL, buf + 0x10, 0);
    assert_int_equal(ADDRESS_AND_SIZE_TO_SPAN_PAGES(buf, 0), 0);
    assert_int_equal(NDIS_BUFFER_TO_SPAN_PAGES(aligned), 1);
    assert_int_equal(NDIS_BUFFER_TO_SPAN_PAGES(unaligned), 1);
    NdisFreeBuffer(aligned);
    NdisFreeBuffer(unaligned);
    test_backing_free(buf);
}

static void buffer_to_span_pages_of_equal_lengths_differs_by_in_page_offset(void **state)
{
    PUCHAR buf = test_backing_alloc(8 * PAGE_SIZE);
    (void)state;
    struct {
        ULONG Off, Len, Pages;
    } cases[] = {
        {0x0, 0x1000, 1}, {0x1, 0x1000, 2}, {0x800, 0x800, 1}, {0x801, 0x800, 2},
        {0xFFF, 1, 1},    {0xFFF, 2, 2},    {0x10, 0x3000, 4}, {0x0, 0x3000, 3},
    };
    for (size_t i = 0; i < ARRAYSIZE(cases); i++) {
        PNDIS_BUFFER b = alloc_ok(NULL, buf + cases[i].Off, cases[i].Len);
        assert_int_equal(NDIS_BUFFER_TO_SPAN_PAGES(b), cases[i].Pages);
        NdisFreeBuffer(b);
    }
    test_backing_free(buf);
}

static void get_buffer_physical_array_size_matches_span_pages(void **state)
{
    PUCHAR buf = test_backing_alloc(8 * PAGE_SIZE);
    UINT size = 0;
    (void)state;
    PNDIS_BUFFER empty = alloc_ok(NULL, buf, 0);
    PNDIS_BUFFER three = alloc_ok(NULL, buf + 0x10, 0x3000);
    PNDIS_BUFFER one = alloc_ok(NULL, buf + 0x100, 0x10);
    NdisGetBufferPhysicalArraySize(empty, &size);
    assert_int_equal(size, 1);
    NdisGetBufferPhysicalArraySize(three, &size);
    assert_int_equal(size, 4);
    NdisGetBufferPhysicalArraySize(one, &size);
    assert_int_equal(size, 1);
    NdisFreeBuffer(empty);
    NdisFreeBuffer(three);
    NdisFreeBuffer(one);
    test_backing_free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocate_buffer_pool_succeeds_with_declared_count),
        cmocka_unit_test(allocate_buffer_pool_of_zero_descriptors_still_serves_allocations),
        cmocka_unit_test(strict_pool_of_zero_descriptors_fails_every_allocation),
        cmocka_unit_test(free_buffer_pool_null_is_a_noop),
        cmocka_unit_test(free_buffer_pool_when_idle_releases_storage_at_once),
        cmocka_unit_test(allocate_buffer_sets_every_field_per_contract),
        cmocka_unit_test(allocate_buffer_zero_length_succeeds_with_size_by_alignment),
        cmocka_unit_test(allocate_buffer_null_va_with_zero_length_succeeds),
        cmocka_unit_test(allocate_buffer_null_va_with_length_fails),
        cmocka_unit_test(allocate_buffer_size_limit_holds_at_exact_boundary),
        cmocka_unit_test(allocate_buffer_wrapping_range_fails),
        cmocka_unit_test(allocate_buffer_null_pool_handle_uses_default_pool),
        cmocka_unit_test(allocate_buffer_over_eight_pages_behaves_identically),
        cmocka_unit_test(copy_buffer_offset_inside_one_buffer),
        cmocka_unit_test(copy_buffer_offset_on_boundary_starts_at_next_buffer),
        cmocka_unit_test(copy_buffer_range_across_several_buffers_gives_one_piece_per_buffer),
        cmocka_unit_test(copy_buffer_range_ending_on_boundary_adds_no_empty_piece),
        cmocka_unit_test(copy_buffer_skips_zero_length_source_at_start),
        cmocka_unit_test(copy_buffer_skips_zero_length_source_in_middle),
        cmocka_unit_test(copy_buffer_skips_zero_length_source_at_end),
        cmocka_unit_test(copy_buffer_zero_length_at_start_names_first_byte),
        cmocka_unit_test(copy_buffer_zero_length_at_inner_boundary_names_next_nonempty),
        cmocka_unit_test(copy_buffer_zero_length_at_total_names_end_of_last_descriptor),
        cmocka_unit_test(copy_buffer_on_chain_of_only_empty_descriptors),
        cmocka_unit_test(copy_buffer_out_of_range_by_one_fails),
        cmocka_unit_test(copy_buffer_offset_plus_length_overflowing_32_bits_fails),
        cmocka_unit_test(copy_buffer_null_memory_descriptor_fails),
        cmocka_unit_test(copy_buffer_from_io_allocate_mdl_sources),
        cmocka_unit_test(copy_buffer_of_a_copy_maps_the_same_bytes),
        cmocka_unit_test(copy_buffer_inherits_io_flags_and_process_from_source),
        cmocka_unit_test(copy_buffer_result_freed_one_by_one_with_mixed_free_calls),
        cmocka_unit_test(copy_buffer_null_pool_handle_uses_default_pool),
        cmocka_unit_test(copy_buffer_matches_model_for_every_offset_and_length),
        cmocka_unit_test(pool_grows_past_declared_count_by_default),
        cmocka_unit_test(strict_pool_fails_allocation_at_declared_count),
        cmocka_unit_test(strict_pool_copy_buffer_needing_more_than_remaining_fails_whole),
        cmocka_unit_test(strict_mode_cannot_be_set_on_default_pool),
        cmocka_unit_test(strict_mode_can_be_set_after_pool_grew_and_shrank_back),
        cmocka_unit_test(free_buffer_pool_with_descriptors_out_retires_pool),
        cmocka_unit_test(free_buffer_second_free_is_ignored),
        cmocka_unit_test(free_buffer_null_is_ignored),
        cmocka_unit_test(free_buffer_and_io_free_mdl_accept_descriptors_from_any_pool_and_api),
        cmocka_unit_test(query_buffer_returns_address_and_length_through_puchar_pointer),
        cmocka_unit_test(query_buffer_accepts_null_virtual_address),
        cmocka_unit_test(query_buffer_of_zero_length_buffer),
        cmocka_unit_test(query_buffer_offset_is_in_page_offset_not_chain_offset),
        cmocka_unit_test(get_next_buffer_walks_chain_and_ends_with_null),
        cmocka_unit_test(buffer_linkage_is_an_assignable_lvalue),
        cmocka_unit_test(buffer_length_and_virtual_address_read_the_descriptor),
        cmocka_unit_test(adjust_buffer_length_changes_only_byte_count),
        cmocka_unit_test(buffer_to_span_pages_of_zero_length_is_one),
        cmocka_unit_test(buffer_to_span_pages_of_equal_lengths_differs_by_in_page_offset),
        cmocka_unit_test(get_buffer_physical_array_size_matches_span_pages),
        /* Last: if the variable were read only once, earlier pools could hide it. */
        cmocka_unit_test(env_strict_pools_makes_later_pools_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
