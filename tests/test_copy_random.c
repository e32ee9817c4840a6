/* SPDX-License-Identifier: MIT */
/* Randomized differential test of NdisCopyBuffer against copy_model.h: thousands of random
 * chains (NdisAllocateBuffer and IoAllocateMdl mixed, many empty elements, odd in-page offsets)
 * and (Offset, Length) pairs biased toward boundaries and 32-bit overflow. Seed: printed, and
 * overridable with LIBNDIS_TEST_SEED so any failure can be replayed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

#include "copy_model.h"
#include "test_util.h"

#define CHAINS_PER_POOL 5000 /* two pools: 10000 chains in all */
#define QUERIES_PER_CHAIN 8
#define MAX_CHAIN 20
#define BACKING_PAGES 96
#define BACKING_SIZE (BACKING_PAGES * CM_PAGE)
#define DEFAULT_SEED 0x6c69626e646973ull

static _Alignas(4096) uint8_t backing[BACKING_SIZE];
static uint64_t rng_state;
static uint8_t expect_bytes[MAX_CHAIN * 54000]; /* random_length() stays below 53000 */

/* Totals over the whole program, so the run proves it exercised both outcomes. */
static unsigned long n_success, n_failure, n_zero_len, n_multi, n_copy_of_copy;

static uint64_t rnd(void) { return test_splitmix64(&rng_state); }

static uint32_t rnd_below(uint64_t n) { return test_below(&rng_state, n); }

static uint64_t pick_seed(void)
{
    const char *env = getenv("LIBNDIS_TEST_SEED");
    uint64_t seed = env != NULL && *env != '\0' ? strtoull(env, NULL, 0) : DEFAULT_SEED;
    printf("test_copy_random: seed %#llx (set LIBNDIS_TEST_SEED to replay)\n",
           (unsigned long long)seed);
    return seed;
}

static ULONG pool_in_use(NDIS_HANDLE pool)
{
    LIBNDIS_POOL_INFO info;
    memset(&info, 0xA5, sizeof(info));
    assert_int_equal(LibNdisQueryBufferPool(pool, &info), NDIS_STATUS_SUCCESS);
    return info.InUse;
}

/* ---- random chains ---- */

typedef struct chain {
    int n;
    PMDL elem[MAX_CHAIN];
    cm_seg seg[MAX_CHAIN];
    MDL snapshot[MAX_CHAIN]; /* headers as built, to prove NdisCopyBuffer leaves the source alone */
} chain;

static uint32_t random_length(void)
{
    uint32_t r = rnd_below(100);
    if (r < 30)
        return 0;
    if (r < 60)
        return 1 + rnd_below(64);
    if (r < 85)
        return 65 + rnd_below(5000);
    if (r < 96)
        return 5000 + rnd_below(8000);
    return 33000 + rnd_below(20000); /* more than 8 pages: the separate-allocation path */
}

static uint32_t random_in_page(void)
{
    static const uint32_t edges[] = { 0, 1, 2, 7, 8, 2048, 4088, 4094, 4095 };
    if (rnd_below(2) == 0)
        return edges[rnd_below(sizeof(edges) / sizeof(edges[0]))];
    return rnd_below(CM_PAGE);
}

static uint8_t *random_va(uint32_t len)
{
    uint32_t in_page = random_in_page();
    uint32_t room = BACKING_SIZE - len - in_page; /* len stays below BACKING_SIZE - 2 pages */
    return backing + (uint64_t)rnd_below(room / CM_PAGE + 1) * CM_PAGE + in_page;
}

static void check_fresh(PMDL m, uint8_t *va, uint32_t len)
{
    assert_non_null(m);
    assert_null(m->Next);
    assert_ptr_equal(m->MappedSystemVa, va);
    assert_ptr_equal(MmGetMdlVirtualAddress(m), va);
    assert_int_equal(m->ByteCount, len);
    assert_int_equal((USHORT)m->MdlFlags, MDL_SOURCE_IS_NONPAGED_POOL);
    assert_int_equal((USHORT)m->Size, cm_mdl_size((uintptr_t)va, len));
}

static PMDL make_element(NDIS_HANDLE pool, uint8_t *va, uint32_t len)
{
    PMDL m = NULL;
    if (rnd_below(2) == 0) {
        m = IoAllocateMdl(va, len, FALSE, FALSE, NULL);
    } else {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        NdisAllocateBuffer(&st, &m, pool, va, len);
        assert_int_equal(st, NDIS_STATUS_SUCCESS);
    }
    check_fresh(m, va, len);
    return m;
}

/* Flags and Process a driver may legitimately carry on its descriptors; some are inherited by
 * partials, some must not be. Restored before the free. */
static void decorate(chain *c)
{
    static const USHORT extra[] = { MDL_MAPPED_TO_SYSTEM_VA, MDL_IO_PAGE_READ, MDL_IO_SPACE,
                                    MDL_NETWORK_HEADER, MDL_WRITE_OPERATION };
    if (rnd_below(4) != 0)
        return;
    for (int i = 0; i < c->n; i++) {
        c->elem[i]->MdlFlags = (CSHORT)(c->elem[i]->MdlFlags | extra[rnd_below(5)]);
        if (rnd_below(3) == 0)
            c->elem[i]->Process = (PEPROCESS)(uintptr_t)(0x1000 + 16 * i);
    }
}

static void build_chain(chain *c, NDIS_HANDLE pool)
{
    c->n = 1 + (int)rnd_below(MAX_CHAIN);
    for (int i = 0; i < c->n; i++) {
        uint32_t len = random_length();
        uint8_t *va = random_va(len);
        c->elem[i] = make_element(pool, va, len);
        c->seg[i] = (cm_seg){ (uintptr_t)va, len, i };
        if (i > 0)
            c->elem[i - 1]->Next = c->elem[i];
    }
    decorate(c);
    for (int i = 0; i < c->n; i++)
        c->snapshot[i] = *c->elem[i];
}

static void free_chain(chain *c)
{
    for (int i = 0; i < c->n; i++) {
        assert_memory_equal(c->elem[i], &c->snapshot[i], sizeof(MDL));
        c->elem[i]->Process = NULL;
        c->elem[i]->MdlFlags = MDL_SOURCE_IS_NONPAGED_POOL;
        c->elem[i]->Next = NULL;
        if (i % 2 == 0)
            NdisFreeBuffer(c->elem[i]);
        else
            IoFreeMdl(c->elem[i]);
    }
}

/* ---- (Offset, Length) biased toward the interesting values ---- */

static uint32_t random_boundary(const cm_seg *seg, int n)
{
    int k = (int)rnd_below((uint64_t)n + 1);
    return (uint32_t)cm_total(seg, k);
}

static uint32_t random_offset(const cm_seg *seg, int n)
{
    uint32_t total = (uint32_t)cm_total(seg, n);
    switch (rnd_below(10)) {
    case 0: return 0;
    case 1: return total;
    case 2: return total + 1;
    case 3:
    case 4: return random_boundary(seg, n);
    case 5: return random_boundary(seg, n) + (rnd_below(2) ? 1u : -1u);
    case 6: return 0xFFFFFFFFu - rnd_below(4);
    case 7: return 0x80000000u + rnd_below(3) - 1;
    case 8: return (uint32_t)rnd();
    default: return rnd_below((uint64_t)total + 1);
    }
}

static uint32_t random_length_for(const cm_seg *seg, int n, uint32_t off)
{
    uint32_t total = (uint32_t)cm_total(seg, n);
    uint32_t rest = off <= total ? total - off : 0;
    switch (rnd_below(12)) {
    case 0:
    case 1: return 0;
    case 2: return rest;
    case 3: return rest + 1;
    case 4: return random_boundary(seg, n) - off; /* ends on a boundary when past off */
    case 5: return 0xFFFFFFFFu - rnd_below(3);
    case 6: return (uint32_t)(0u - off) + rnd_below(3); /* Offset+Length wraps to 0, 1, 2 */
    case 7: return 1;
    case 8: return (uint32_t)rnd();
    default: return rnd_below((uint64_t)rest + 1);
    }
}

/* ---- one NdisCopyBuffer call against the model ---- */

/* Returns the result (NULL on an expected failure); fills model and count for a success. */
static PMDL copy_and_check(NDIS_HANDLE pool, PMDL const *src, const cm_seg *seg, int n,
                           uint32_t off, uint32_t len, cm_seg *model, int *count)
{
    char msg[256];
    int k = cm_copy(seg, n, off, len, model);
    ULONG before = pool_in_use(pool);
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    PMDL out = (PMDL)(uintptr_t)0xDEAD;
    NdisCopyBuffer(&st, &out, pool, src[0], off, len);
    if (k < 0) {
        if (st != NDIS_STATUS_FAILURE || out != NULL)
            fail_msg("n=%d total=%llu Offset=%#x Length=%#x: must fail, got status %#x buffer %p",
                     n, (unsigned long long)cm_total(seg, n), off, len, (unsigned)st, (void *)out);
        assert_int_equal(pool_in_use(pool), before);
        n_failure++;
        *count = 0;
        return NULL;
    }
    if (st != NDIS_STATUS_SUCCESS || out == NULL)
        fail_msg("n=%d total=%llu Offset=%#x Length=%#x: must succeed (%d elems), got %#x",
                 n, (unsigned long long)cm_total(seg, n), off, len, k, (unsigned)st);
    cm_slice_bytes(seg, n, off, len, expect_bytes);
    if (!cm_check_result(src, model, k, out, expect_bytes, msg, sizeof(msg)))
        fail_msg("n=%d Offset=%#x Length=%#x: %s", n, off, len, msg);
    assert_int_equal(pool_in_use(pool), before + (ULONG)k);
    n_success++;
    n_zero_len += len == 0;
    n_multi += k > 1;
    *count = k;
    return out;
}

static void free_result(PMDL head, int count)
{
    int freed = 0;
    while (head != NULL) {
        PMDL next = head->Next;
        NdisFreeBuffer(head);
        head = next;
        freed++;
    }
    assert_int_equal(freed, count);
}

/* A copy of a copy must behave like a copy of the same range of the original data. */
static void copy_of_copy(NDIS_HANDLE pool, PMDL first, int count)
{
    PMDL elems[CM_MAX_SEGS];
    cm_seg seg[CM_MAX_SEGS], model[CM_MAX_SEGS];
    int n = cm_from_chain(first, seg, elems, CM_MAX_SEGS);
    assert_int_equal(n, count);
    uint32_t off = random_offset(seg, n);
    uint32_t len = random_length_for(seg, n, off);
    int k;
    PMDL second = copy_and_check(pool, elems, seg, n, off, len, model, &k);
    free_result(second, k);
    n_copy_of_copy++;
}

static void one_chain(NDIS_HANDLE pool, ULONG default_base)
{
    chain c;
    cm_seg model[CM_MAX_SEGS];
    build_chain(&c, pool);
    for (int q = 0; q < QUERIES_PER_CHAIN; q++) {
        uint32_t off = random_offset(c.seg, c.n);
        uint32_t len = random_length_for(c.seg, c.n, off);
        int k;
        PMDL out = copy_and_check(pool, c.elem, c.seg, c.n, off, len, model, &k);
        if (out != NULL && rnd_below(4) == 0)
            copy_of_copy(pool, out, k);
        free_result(out, k);
    }
    free_chain(&c);
    if (pool != NULL)
        assert_int_equal(pool_in_use(pool), 0);
    assert_int_equal(pool_in_use(NULL), default_base);
}

/* ---- tests ---- */

static void fill_backing(void)
{
    for (uint32_t i = 0; i < BACKING_SIZE; i++)
        backing[i] = (uint8_t)((i * 2654435761u) >> 24);
}

/* Hand-worked cases pin the model to the decision's wording before it judges the library. */
static void test_model_self_check(void **state)
{
    (void)state;
    cm_seg ch[5] = { { 0x10000, 0, 0 }, { 0x20010, 5, 1 }, { 0x30000, 0, 2 },
                     { 0x40ffe, 3, 3 }, { 0x50000, 0, 4 } };
    cm_seg o[CM_MAX_SEGS];
    assert_int_equal(cm_copy(ch, 5, 0, 8, o), 2);
    assert_true(o[0].va == 0x20010 && o[0].len == 5 && o[1].va == 0x40ffe && o[1].len == 3);
    assert_int_equal(cm_copy(ch, 5, 4, 2, o), 2);
    assert_true(o[0].va == 0x20014 && o[0].len == 1 && o[1].va == 0x40ffe && o[1].len == 1);
    assert_int_equal(cm_copy(ch, 5, 5, 3, o), 1);
    assert_true(o[0].va == 0x40ffe && o[0].src == 3);
    assert_int_equal(cm_copy(ch, 5, 5, 0, o), 1); /* inner boundary: start of the next non-empty */
    assert_true(o[0].va == 0x40ffe && o[0].len == 0 && o[0].src == 3);
    assert_int_equal(cm_copy(ch, 5, 0, 0, o), 1);
    assert_true(o[0].va == 0x20010 && o[0].src == 1);
    assert_int_equal(cm_copy(ch, 5, 8, 0, o), 1); /* total: end of the last, empty, element */
    assert_true(o[0].va == 0x50000 && o[0].src == 4);
    assert_int_equal(cm_copy(ch, 5, 9, 0, o), -1);
    assert_int_equal(cm_copy(ch, 5, 0, 9, o), -1);
    assert_int_equal(cm_copy(ch, 5, 1, 0xFFFFFFFFu, o), -1); /* wraps to 0 */
    assert_int_equal(cm_copy(ch, 0, 0, 0, o), -1);
    assert_int_equal(cm_mdl_size(0x1000, 0), CM_MDL_HEADER);
    assert_int_equal(cm_mdl_size(0x1001, 0), CM_MDL_HEADER + sizeof(void *));
    assert_int_equal(cm_mdl_size(0x1fff, 2), CM_MDL_HEADER + 2 * sizeof(void *));
}

static void run_random(NDIS_HANDLE pool)
{
    ULONG default_base = pool_in_use(NULL);
    for (int i = 0; i < CHAINS_PER_POOL; i++)
        one_chain(pool, default_base);
}

static void test_random_named_pool(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    NDIS_HANDLE pool = NULL;
    NdisAllocateBufferPool(&st, &pool, 16);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    assert_non_null(pool);
    /* Growing, even when LIBNDIS_STRICT_POOLS is set for the whole run. */
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, FALSE), NDIS_STATUS_SUCCESS);
    run_random(pool);
    NdisFreeBufferPool(pool);
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

static void test_random_default_pool(void **state)
{
    (void)state;
    run_random(NULL);
}

/* The model's n == 0 case, which random chains never reach. */
static void test_null_source(void **state)
{
    (void)state;
    cm_seg o[1];
    NDIS_HANDLE pools[2] = { NULL, NULL };
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    NdisAllocateBufferPool(&st, &pools[1], 4);
    assert_non_null(pools[1]);
    for (int i = 0; i < 2; i++) {
        ULONG before = pool_in_use(pools[i]);
        PMDL out = (PMDL)(uintptr_t)0xDEAD;
        st = NDIS_STATUS_PENDING;
        assert_int_equal(cm_copy(NULL, 0, 0, 0, o), -1);
        NdisCopyBuffer(&st, &out, pools[i], NULL, 0, 0);
        assert_int_equal(st, NDIS_STATUS_FAILURE);
        assert_null(out);
        assert_int_equal(pool_in_use(pools[i]), before);
    }
    NdisFreeBufferPool(pools[1]);
}

/* Guards against a generator that drifted into testing only one outcome. */
static void test_coverage(void **state)
{
    (void)state;
    printf("test_copy_random: %lu successes (%lu zero-length, %lu multi-element, %lu copies of "
           "copies), %lu failures\n", n_success, n_zero_len, n_multi, n_copy_of_copy, n_failure);
    unsigned long calls = n_success + n_failure;
    assert_true(calls >= 2ul * CHAINS_PER_POOL * QUERIES_PER_CHAIN);
    assert_true(n_success > calls / 5 && n_failure > calls / 5);
    assert_true(n_zero_len > calls / 20 && n_multi > calls / 10);
}

int main(void)
{
    rng_state = pick_seed();
    fill_backing();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_self_check),
        cmocka_unit_test(test_random_named_pool),
        cmocka_unit_test(test_random_default_pool),
        cmocka_unit_test(test_null_source),
        cmocka_unit_test(test_coverage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
