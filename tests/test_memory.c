/* SPDX-License-Identifier: MIT */
/* test_memory.c - NdisAllocateMemory(WithTag) / NdisFreeMemory, usage by tag through <libndis.h>,
 * and the memory macros drivers lean on (Move/Zero/Fill/Equal, Rtl*, Store/RetrieveUlong). The
 * tag table is process-wide, so each test uses tags of its own and compares before with after. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

/* Drivers write pool tags as reversed multi-character constants; the test must too. */
#pragma GCC diagnostic ignored "-Wmultichar"

/* A tag no other test uses: 'T' plus a test letter plus a 16-bit serial. */
#define TEST_TAG(letter, serial) \
    LIBNDIS_TAG('T', (letter), (UCHAR)((serial) & 0xFF), (UCHAR)(((serial) >> 8) & 0xFF))

/* The table holds this many distinct tags before the aggregate entry takes the rest. */
#define TAG_TABLE_REAL_ENTRIES 1023u

static LIBNDIS_TAG_USAGE usage_of(ULONG Tag)
{
    LIBNDIS_TAG_USAGE u;
    memset(&u, 0xA5, sizeof(u));
    (void)LibNdisQueryMemoryTag(Tag, &u);
    return u;
}

static void assert_usage(ULONG Tag, ULONGLONG Outstanding, ULONGLONG Bytes, ULONGLONG Total)
{
    LIBNDIS_TAG_USAGE u;
    assert_true(LibNdisQueryMemoryTag(Tag, &u));
    assert_int_equal(u.Tag, Tag);
    assert_int_equal(u.Reserved, 0);
    assert_int_equal(u.OutstandingAllocations, Outstanding);
    assert_int_equal(u.OutstandingBytes, Bytes);
    assert_int_equal(u.TotalAllocations, Total);
}

static int is_aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

/* Touches every byte, so ASan catches a block shorter than asked for. */
static void fill_and_check(PVOID Block, UINT Length, UCHAR Seed)
{
    PUCHAR p = Block;
    for (UINT i = 0; i < Length; i++)
        p[i] = (UCHAR)(Seed + i * 7u);
    for (UINT i = 0; i < Length; i++)
        assert_int_equal(p[i], (UCHAR)(Seed + i * 7u));
}

/* ---- NdisAllocateMemoryWithTag ---- */

static const UINT odd_sizes[] = { 259, 511, 1023, 1025, 4095, 4097, 4099, 65535, 65537, 1048577 };
#define SMALL_SIZES 258u /* every size 0..257 */
#define SIZE_COUNT (SMALL_SIZES + sizeof(odd_sizes) / sizeof(odd_sizes[0]))

static UINT size_at(size_t i)
{
    return i < SMALL_SIZES ? (UINT)i : odd_sizes[i - SMALL_SIZES];
}

struct block {
    uintptr_t addr;
    UINT len;
};

static int block_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const struct block *)a)->addr, y = ((const struct block *)b)->addr;
    return x < y ? -1 : x > y;
}

static void with_tag_succeeds_aligned_and_writable_for_many_sizes(void **state)
{
    (void)state;
    const ULONG tag = TEST_TAG('a', 1);
    PVOID ptrs[SIZE_COUNT];
    struct block blocks[SIZE_COUNT];
    ULONGLONG bytes = 0;
    for (size_t i = 0; i < SIZE_COUNT; i++) {
        UINT len = size_at(i);
        ptrs[i] = (PVOID)(uintptr_t)1; /* must be overwritten */
        assert_int_equal(NdisAllocateMemoryWithTag(&ptrs[i], len, tag), NDIS_STATUS_SUCCESS);
        assert_non_null(ptrs[i]);
        assert_true(is_aligned16(ptrs[i]));
        fill_and_check(ptrs[i], len, (UCHAR)i);
        blocks[i].addr = (uintptr_t)ptrs[i];
        blocks[i].len = len;
        bytes += len;
    }
    assert_usage(tag, SIZE_COUNT, bytes, SIZE_COUNT);

    /* All live at once: no two blocks may share an address or overlap (Length 0 counts as 1). */
    qsort(blocks, SIZE_COUNT, sizeof(blocks[0]), block_cmp);
    for (size_t i = 1; i < SIZE_COUNT; i++)
        assert_true(blocks[i - 1].addr + (blocks[i - 1].len ? blocks[i - 1].len : 1) <=
                    blocks[i].addr);

    for (size_t i = 0; i < SIZE_COUNT; i++)
        NdisFreeMemory(ptrs[i], size_at(i), 0);
    assert_usage(tag, 0, 0, SIZE_COUNT);
}

static void with_tag_zero_length_gives_distinct_valid_pointers(void **state)
{
    (void)state;
    const ULONG tag = TEST_TAG('b', 1);
    PVOID a = NULL, b = NULL;
    assert_int_equal(NdisAllocateMemoryWithTag(&a, 0, tag), NDIS_STATUS_SUCCESS);
    assert_int_equal(NdisAllocateMemoryWithTag(&b, 0, tag), NDIS_STATUS_SUCCESS);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_true(is_aligned16(a) && is_aligned16(b));
    assert_usage(tag, 2, 0, 2);
    NdisFreeMemory(a, 0, 0);
    NdisFreeMemory(b, 0, 0);
    assert_usage(tag, 0, 0, 2);
}

static void null_out_pointer_fails_and_records_nothing(void **state)
{
    (void)state;
    const ULONG tag = TEST_TAG('c', 1);
    NDIS_PHYSICAL_ADDRESS highest = NDIS_PHYSICAL_ADDRESS_CONST(-1, -1);
    LIBNDIS_TAG_USAGE def_before = usage_of(LIBNDIS_DEFAULT_MEMORY_TAG);

    assert_int_equal(NdisAllocateMemoryWithTag(NULL, 32, tag), NDIS_STATUS_FAILURE);
    assert_int_equal(NdisAllocateMemory(NULL, 32, 0, highest), NDIS_STATUS_FAILURE);

    LIBNDIS_TAG_USAGE u = usage_of(tag);
    assert_int_equal(u.OutstandingAllocations, 0);
    assert_int_equal(u.TotalAllocations, 0);
    LIBNDIS_TAG_USAGE def_after = usage_of(LIBNDIS_DEFAULT_MEMORY_TAG);
    assert_int_equal(def_after.TotalAllocations, def_before.TotalAllocations);
    assert_int_equal(def_after.OutstandingBytes, def_before.OutstandingBytes);
}

/* ---- NdisAllocateMemory ---- */

static void allocate_memory_accepts_every_documented_flag_combination(void **state)
{
    (void)state;
    /* The way drivers spell "no limit" for HighestAcceptableAddress. */
    static const NDIS_PHYSICAL_ADDRESS HighestAcceptableMax = NDIS_PHYSICAL_ADDRESS_CONST(-1, -1);
    static const UINT flags[] = { 0, NDIS_MEMORY_CONTIGUOUS, NDIS_MEMORY_NONCACHED,
                                  NDIS_MEMORY_CONTIGUOUS | NDIS_MEMORY_NONCACHED };
    assert_int_equal(HighestAcceptableMax.QuadPart, -1);

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        LIBNDIS_TAG_USAGE before = usage_of(LIBNDIS_DEFAULT_MEMORY_TAG);
        UINT len = 1500u + (UINT)i * 13u;
        PVOID va = NULL;
        assert_int_equal(NdisAllocateMemory(&va, len, flags[i], HighestAcceptableMax),
                         NDIS_STATUS_SUCCESS);
        assert_non_null(va);
        assert_true(is_aligned16(va));
        fill_and_check(va, len, 0x3C);
        /* Untagged allocations are charged to the default tag. */
        assert_usage(LIBNDIS_DEFAULT_MEMORY_TAG, before.OutstandingAllocations + 1,
                     before.OutstandingBytes + len, before.TotalAllocations + 1);
        NdisFreeMemory(va, len, flags[i]);
        assert_usage(LIBNDIS_DEFAULT_MEMORY_TAG, before.OutstandingAllocations,
                     before.OutstandingBytes, before.TotalAllocations + 1);
    }
}

static void allocate_memory_with_a_physical_limit_still_succeeds(void **state)
{
    (void)state;
    NDIS_PHYSICAL_ADDRESS below4g = NDIS_PHYSICAL_ADDRESS_CONST(0xFFFFFFFF, 0);
    PVOID va = NULL;
    assert_int_equal(NdisAllocateMemory(&va, 64, NDIS_MEMORY_CONTIGUOUS, below4g),
                     NDIS_STATUS_SUCCESS);
    assert_non_null(va);
    fill_and_check(va, 64, 1);
    NdisFreeMemory(va, 64, NDIS_MEMORY_CONTIGUOUS);
}

static void allocate_memory_rejects_unknown_flag_bits(void **state)
{
    (void)state;
    NDIS_PHYSICAL_ADDRESS highest = NDIS_PHYSICAL_ADDRESS_CONST(-1, -1);
    static const UINT bad[] = { 0x4, 0x8, 0x80000000u, NDIS_MEMORY_CONTIGUOUS | 0x10,
                                NDIS_MEMORY_NONCACHED | 0x100, 0xFFFFFFFFu };
    LIBNDIS_TAG_USAGE before = usage_of(LIBNDIS_DEFAULT_MEMORY_TAG);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        PVOID va = (PVOID)&before; /* a stale non-NULL value the call must clear */
        assert_int_equal(NdisAllocateMemory(&va, 128, bad[i], highest), NDIS_STATUS_FAILURE);
        assert_null(va);
    }
    LIBNDIS_TAG_USAGE after = usage_of(LIBNDIS_DEFAULT_MEMORY_TAG);
    assert_int_equal(after.TotalAllocations, before.TotalAllocations);
    assert_int_equal(after.OutstandingAllocations, before.OutstandingAllocations);
}

static void default_memory_tag_is_ndis(void **state)
{
    (void)state;
    assert_int_equal(LIBNDIS_DEFAULT_MEMORY_TAG, 'sidN');
}

/* ---- NdisFreeMemory ---- */

static void free_memory_null_is_a_no_op(void **state)
{
    (void)state;
    LIBNDIS_TAG_USAGE before[64], after[64];
    ULONG n_before = LibNdisEnumerateMemoryTags(before, 64);
    NdisFreeMemory(NULL, 0, 0);
    NdisFreeMemory(NULL, 4096, NDIS_MEMORY_NONCACHED);
    NdisFreeMemory(NULL, 1, NDIS_MEMORY_CONTIGUOUS | NDIS_MEMORY_NONCACHED);
    ULONG n_after = LibNdisEnumerateMemoryTags(after, 64);
    assert_int_equal(n_after, n_before);
    assert_true(n_before <= 64);
    assert_memory_equal(before, after, n_before * sizeof(before[0]));
}

static void free_memory_debits_the_recorded_length_not_the_passed_one(void **state)
{
    (void)state;
    const ULONG tag = TEST_TAG('d', 1);
    PVOID a = NULL, b = NULL;
    assert_int_equal(NdisAllocateMemoryWithTag(&a, 100, tag), NDIS_STATUS_SUCCESS);
    assert_int_equal(NdisAllocateMemoryWithTag(&b, 50, tag), NDIS_STATUS_SUCCESS);
    assert_usage(tag, 2, 150, 2);
    NdisFreeMemory(a, 7, 0);           /* too small */
    assert_usage(tag, 1, 50, 2);
    NdisFreeMemory(b, 5000, 0);        /* too large */
    assert_usage(tag, 0, 0, 2);
}

/* ---- usage by tag ---- */

static void query_unused_tag_is_false_and_zeroed(void **state)
{
    (void)state;
    LIBNDIS_TAG_USAGE u, zero;
    memset(&u, 0xA5, sizeof(u));
    memset(&zero, 0, sizeof(zero));
    assert_false(LibNdisQueryMemoryTag(TEST_TAG('e', 1), &u));
    assert_memory_equal(&u, &zero, sizeof(u));
}

static void query_tracks_outstanding_and_total_counters(void **state)
{
    (void)state;
    const ULONG tag = TEST_TAG('f', 1);
    PVOID p[3];
    static const UINT len[3] = { 10, 200, 3000 };
    for (int i = 0; i < 3; i++)
        assert_int_equal(NdisAllocateMemoryWithTag(&p[i], len[i], tag), NDIS_STATUS_SUCCESS);
    assert_usage(tag, 3, 3210, 3);
    NdisFreeMemory(p[1], len[1], 0);
    assert_usage(tag, 2, 3010, 3);
    assert_int_equal(NdisAllocateMemoryWithTag(&p[1], 1, tag), NDIS_STATUS_SUCCESS);
    assert_usage(tag, 3, 3011, 4);
    NdisFreeMemory(p[0], len[0], 0);
    NdisFreeMemory(p[1], 1, 0);
    NdisFreeMemory(p[2], len[2], 0);
    assert_usage(tag, 0, 0, 4);
    /* A tag that was used stays known after its last block is freed. */
    LIBNDIS_TAG_USAGE u;
    assert_true(LibNdisQueryMemoryTag(tag, &u));
}

static const LIBNDIS_TAG_USAGE *find_entry(const LIBNDIS_TAG_USAGE *a, ULONG n, ULONG Tag)
{
    for (ULONG i = 0; i < n; i++)
        if (a[i].Reserved == 0 && a[i].Tag == Tag)
            return &a[i];
    return NULL;
}

static void enumerate_honours_capacity_and_returns_the_full_count(void **state)
{
    (void)state;
    const ULONG tags[3] = { TEST_TAG('g', 1), TEST_TAG('g', 2), TEST_TAG('g', 3) };
    PVOID p[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(NdisAllocateMemoryWithTag(&p[i], 16u * (UINT)(i + 1), tags[i]),
                         NDIS_STATUS_SUCCESS);

    ULONG n = LibNdisEnumerateMemoryTags(NULL, 0);
    assert_true(n >= 3);

    LIBNDIS_TAG_USAGE sentinel;
    memset(&sentinel, 0x5A, sizeof(sentinel));
    LIBNDIS_TAG_USAGE one = sentinel;
    assert_int_equal(LibNdisEnumerateMemoryTags(&one, 0), n);
    assert_memory_equal(&one, &sentinel, sizeof(one)); /* capacity 0: nothing written */

    LIBNDIS_TAG_USAGE small[3] = { sentinel, sentinel, sentinel };
    assert_int_equal(LibNdisEnumerateMemoryTags(small, 2), n);
    assert_memory_not_equal(&small[0], &sentinel, sizeof(sentinel));
    assert_memory_not_equal(&small[1], &sentinel, sizeof(sentinel));
    assert_memory_equal(&small[2], &sentinel, sizeof(sentinel)); /* past capacity: untouched */

    ULONG cap = n + 8;
    LIBNDIS_TAG_USAGE *big = malloc(cap * sizeof(*big));
    assert_non_null(big);
    for (ULONG i = 0; i < cap; i++)
        big[i] = sentinel;
    assert_int_equal(LibNdisEnumerateMemoryTags(big, cap), n);
    for (ULONG i = n; i < cap; i++)
        assert_memory_equal(&big[i], &sentinel, sizeof(sentinel));
    for (ULONG i = 0; i < n; i++) {
        assert_int_equal(big[i].Reserved, 0); /* far below the table size: no aggregate */
        for (ULONG j = 0; j < i; j++)
            assert_int_not_equal(big[i].Tag, big[j].Tag);
    }
    for (int i = 0; i < 3; i++) {
        const LIBNDIS_TAG_USAGE *e = find_entry(big, n, tags[i]);
        assert_non_null(e);
        assert_int_equal(e->OutstandingAllocations, 1);
        assert_int_equal(e->OutstandingBytes, 16u * (ULONG)(i + 1));
        assert_int_equal(e->TotalAllocations, 1);
    }
    free(big);
    for (int i = 0; i < 3; i++)
        NdisFreeMemory(p[i], 16u * (UINT)(i + 1), 0);
}

#define MANY_TAGS 300u

static void many_distinct_tags_are_tracked_separately(void **state)
{
    (void)state;
    PVOID p[MANY_TAGS][2];
    ULONG before = LibNdisEnumerateMemoryTags(NULL, 0);
    for (ULONG i = 0; i < MANY_TAGS; i++)
        for (ULONG k = 0; k <= (i & 1); k++)
            assert_int_equal(NdisAllocateMemoryWithTag(&p[i][k], i + 1, TEST_TAG('h', i)),
                             NDIS_STATUS_SUCCESS);
    assert_int_equal(LibNdisEnumerateMemoryTags(NULL, 0), before + MANY_TAGS);
    for (ULONG i = 0; i < MANY_TAGS; i++) {
        ULONG count = 1 + (i & 1);
        assert_usage(TEST_TAG('h', i), count, (ULONGLONG)count * (i + 1), count);
    }
    for (ULONG i = 0; i < MANY_TAGS; i++)
        for (ULONG k = 0; k <= (i & 1); k++)
            NdisFreeMemory(p[i][k], i + 1, 0);
    for (ULONG i = 0; i < MANY_TAGS; i++)
        assert_usage(TEST_TAG('h', i), 0, 0, 1 + (i & 1));
}

/* Must run last: once the table is full every new tag goes to the aggregate entry. */
#define PAST_TABLE 77u

static UINT overflow_len(ULONG i)
{
    return 8u + i % 5u;
}

static void tags_beyond_the_table_sum_into_one_aggregate_entry(void **state)
{
    (void)state;
    ULONG existing = LibNdisEnumerateMemoryTags(NULL, 0);
    assert_true(existing < TAG_TABLE_REAL_ENTRIES);
    ULONG fresh = TAG_TABLE_REAL_ENTRIES - existing + PAST_TABLE;
    PVOID *p = calloc(fresh, sizeof(*p));
    assert_non_null(p);
    ULONGLONG overflow_bytes = 0;
    for (ULONG i = 0; i < fresh; i++) {
        assert_int_equal(NdisAllocateMemoryWithTag(&p[i], overflow_len(i), TEST_TAG('z', i)),
                         NDIS_STATUS_SUCCESS);
        assert_non_null(p[i]);
        if (i >= fresh - PAST_TABLE)
            overflow_bytes += overflow_len(i);
    }

    ULONG cap = TAG_TABLE_REAL_ENTRIES + 16;
    LIBNDIS_TAG_USAGE *all = calloc(cap, sizeof(*all));
    assert_non_null(all);
    ULONG n = LibNdisEnumerateMemoryTags(all, cap);
    assert_int_equal(n, TAG_TABLE_REAL_ENTRIES + 1);
    const LIBNDIS_TAG_USAGE *agg = NULL;
    ULONG aggregates = 0;
    for (ULONG i = 0; i < n; i++) {
        if (all[i].Reserved == 1) {
            agg = &all[i];
            aggregates++;
        } else {
            assert_int_equal(all[i].Reserved, 0);
        }
    }
    assert_int_equal(aggregates, 1);
    assert_int_equal(agg->OutstandingAllocations, PAST_TABLE);
    assert_int_equal(agg->OutstandingBytes, overflow_bytes);
    assert_int_equal(agg->TotalAllocations, PAST_TABLE);

    /* The last tag to get a real entry is still reported on its own. */
    ULONG last_real = fresh - PAST_TABLE - 1;
    assert_usage(TEST_TAG('z', last_real), 1, overflow_len(last_real), 1);

    for (ULONG i = 0; i < fresh; i++)
        NdisFreeMemory(p[i], overflow_len(i), 0);
    assert_int_equal(LibNdisEnumerateMemoryTags(all, cap), TAG_TABLE_REAL_ENTRIES + 1);
    for (ULONG i = 0; i < TAG_TABLE_REAL_ENTRIES + 1; i++) {
        if (all[i].Reserved == 1) {
            assert_int_equal(all[i].OutstandingAllocations, 0);
            assert_int_equal(all[i].OutstandingBytes, 0);
            assert_int_equal(all[i].TotalAllocations, PAST_TABLE);
        }
    }
    free(all);
    free(p);
}

/* Uses fresh tags until the aggregate entry exists, i.e. the table is full. */
static void fill_tag_table(void)
{
    for (ULONG serial = 0; LibNdisEnumerateMemoryTags(NULL, 0) <= TAG_TABLE_REAL_ENTRIES;
         serial++) {
        PVOID p = NULL;
        assert_int_equal(NdisAllocateMemoryWithTag(&p, 1, TEST_TAG('x', serial)),
                         NDIS_STATUS_SUCCESS);
        NdisFreeMemory(p, 1, 0);
    }
}

/* Header: LibNdisQueryMemoryTag is "TRUE and *Usage filled when Tag was ever used" - a tag
 * that arrived after the table filled up was used too. */
static void query_of_a_tag_past_the_table_reports_it_as_used(void **state)
{
    (void)state;
    fill_tag_table();
    const ULONG tag = TEST_TAG('y', 1);
    PVOID p = NULL;
    assert_int_equal(NdisAllocateMemoryWithTag(&p, 40, tag), NDIS_STATUS_SUCCESS);
    assert_non_null(p);
    NdisFreeMemory(p, 40, 0);
    LIBNDIS_TAG_USAGE u;
    assert_true(LibNdisQueryMemoryTag(tag, &u));
    assert_true(u.TotalAllocations >= 1);
}

/* ---- LIBNDIS_TAG ---- */

static void libndis_tag_matches_the_wdk_multichar_constant(void **state)
{
    (void)state;
    assert_int_equal(LIBNDIS_TAG('N', 'd', 'i', 's'), (ULONG)'sidN');
    assert_int_equal(LIBNDIS_TAG('M', 'y', 'D', 'r'), (ULONG)'rDyM');
    assert_int_equal(LIBNDIS_TAG(0xFF, 0x80, 0x01, 0xFE), 0xFE0180FFu);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    ULONG t = LIBNDIS_TAG('N', 'd', 'i', 's');
    assert_memory_equal(&t, "Ndis", 4); /* how a pool dump shows it */
#endif
    /* A tag written either way names the same usage entry. */
    PVOID p = NULL;
    assert_int_equal(NdisAllocateMemoryWithTag(&p, 24, 'rDyM'), NDIS_STATUS_SUCCESS);
    assert_usage(LIBNDIS_TAG('M', 'y', 'D', 'r'), 1, 24, 1);
    NdisFreeMemory(p, 24, 0);
}

/* ---- memory macros ---- */

static void move_memory_copies_exactly_length_bytes(void **state)
{
    (void)state;
    UCHAR src[300], dst[310];
    for (int i = 0; i < 300; i++)
        src[i] = (UCHAR)(i * 37 + 1);
    memset(dst, 0xEE, sizeof(dst));
    NdisMoveMemory(dst + 3, src + 1, 297);
    assert_memory_equal(dst + 3, src + 1, 297);
    for (int i = 0; i < 3; i++)
        assert_int_equal(dst[i], 0xEE);
    for (int i = 300; i < 310; i++)
        assert_int_equal(dst[i], 0xEE);
    NdisMoveMemory(dst, src, 0);
    assert_int_equal(dst[0], 0xEE);
}

static void zero_memory_clears_only_the_range(void **state)
{
    (void)state;
    UCHAR buf[64];
    memset(buf, 0x77, sizeof(buf));
    NdisZeroMemory(buf + 5, 50);
    for (int i = 0; i < 64; i++)
        assert_int_equal(buf[i], (i >= 5 && i < 55) ? 0 : 0x77);
}

static void fill_memory_takes_destination_length_fill(void **state)
{
    (void)state;
    /* Large enough that a swapped Length/Fill (0xAB bytes of value 5) stays in bounds. */
    UCHAR buf[256];
    memset(buf, 0, sizeof(buf));
    NdisFillMemory(buf + 2, 5, 0xAB);
    for (int i = 0; i < 256; i++)
        assert_int_equal(buf[i], (i >= 2 && i < 7) ? 0xAB : 0);
}

static void equal_memory_is_exactly_one_or_zero(void **state)
{
    (void)state;
    UCHAR a[32], b[32];
    for (int i = 0; i < 32; i++)
        a[i] = b[i] = (UCHAR)i;
    assert_int_equal(NdisEqualMemory(a, b, 32), 1);
    assert_int_equal(NdisEqualMemory(a, b, 0), 1);
    b[5] = 0xF0; /* memcmp would give a large magnitude here, of either sign */
    assert_int_equal(NdisEqualMemory(a, b, 32), 0);
    assert_int_equal(NdisEqualMemory(b, a, 32), 0);
    assert_int_equal(NdisEqualMemory(a, b, 5), 1); /* difference just past the length */
    assert_int_equal(sizeof(NdisEqualMemory(a, b, 1)), sizeof(ULONG));
}

static void rtl_macros_follow_their_crt_counterparts(void **state)
{
    (void)state;
    UCHAR a[40], b[40];
    for (int i = 0; i < 40; i++)
        a[i] = (UCHAR)(100 + i);
    memset(b, 0, sizeof(b));
    RtlCopyMemory(b, a, 40);
    assert_memory_equal(a, b, 40);
    assert_int_equal(RtlEqualMemory(a, b, 40), 1);

    RtlMoveMemory(b + 4, b, 30); /* overlapping, forward: memmove semantics */
    for (int i = 0; i < 30; i++)
        assert_int_equal(b[4 + i], (UCHAR)(100 + i));
    RtlMoveMemory(a, a + 6, 30); /* overlapping, backward */
    for (int i = 0; i < 30; i++)
        assert_int_equal(a[i], (UCHAR)(106 + i));
    assert_int_equal(RtlEqualMemory(a, b, 40), 0);

    RtlFillMemory(b, 10, 0x42);
    RtlZeroMemory(b + 10, 5);
    for (int i = 0; i < 15; i++)
        assert_int_equal(b[i], i < 10 ? 0x42 : 0);
    assert_int_equal(b[15], (UCHAR)(100 + 11));
}

static void store_and_retrieve_ulong_work_at_unaligned_addresses(void **state)
{
    (void)state;
    const ULONG value = 0x89ABCDEFu;
    for (int off = 0; off < 4; off++) {
        UCHAR buf[16], out[16];
        memset(buf, 0x11, sizeof(buf));
        memset(out, 0x22, sizeof(out));
        NdisStoreUlong(buf + 1 + off, value);
        assert_memory_equal(buf + 1 + off, &value, 4); /* host byte order, as on Windows */
        for (int i = 0; i < 16; i++)
            if (i < 1 + off || i >= 5 + off)
                assert_int_equal(buf[i], 0x11);

        ULONG got = 0;
        NdisRetrieveUlong(&got, buf + 1 + off);
        assert_int_equal(got, value);
        NdisRetrieveUlong(out + 3 + off, buf + 1 + off); /* unaligned destination too */
        assert_memory_equal(out + 3 + off, &value, 4);
        assert_int_equal(out[2 + off], 0x22);
        assert_int_equal(out[7 + off], 0x22);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(with_tag_succeeds_aligned_and_writable_for_many_sizes),
        cmocka_unit_test(with_tag_zero_length_gives_distinct_valid_pointers),
        cmocka_unit_test(null_out_pointer_fails_and_records_nothing),
        cmocka_unit_test(allocate_memory_accepts_every_documented_flag_combination),
        cmocka_unit_test(allocate_memory_with_a_physical_limit_still_succeeds),
        cmocka_unit_test(allocate_memory_rejects_unknown_flag_bits),
        cmocka_unit_test(default_memory_tag_is_ndis),
        cmocka_unit_test(free_memory_null_is_a_no_op),
        cmocka_unit_test(free_memory_debits_the_recorded_length_not_the_passed_one),
        cmocka_unit_test(query_unused_tag_is_false_and_zeroed),
        cmocka_unit_test(query_tracks_outstanding_and_total_counters),
        cmocka_unit_test(enumerate_honours_capacity_and_returns_the_full_count),
        cmocka_unit_test(many_distinct_tags_are_tracked_separately),
        cmocka_unit_test(libndis_tag_matches_the_wdk_multichar_constant),
        cmocka_unit_test(move_memory_copies_exactly_length_bytes),
        cmocka_unit_test(zero_memory_clears_only_the_range),
        cmocka_unit_test(fill_memory_takes_destination_length_fill),
        cmocka_unit_test(equal_memory_is_exactly_one_or_zero),
        cmocka_unit_test(rtl_macros_follow_their_crt_counterparts),
        cmocka_unit_test(store_and_retrieve_ulong_work_at_unaligned_addresses),
        /* last: they fill the tag table for the rest of the process */
        cmocka_unit_test(tags_beyond_the_table_sum_into_one_aggregate_entry),
        cmocka_unit_test(query_of_a_tag_past_the_table_reports_it_as_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
