/* SPDX-License-Identifier: MIT */
/* test_verifier_faults.c - the verifier's fault injection: what each kind makes fail and how,
 * fault_after and the seeded fault_rate sequence, the tag and pool filters, the count of injected
 * failures, and that a failure leaks nothing and reports nothing, driver error paths included. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <ndis.h>
#include <libndis.h>

#define HANG_GUARD_SECONDS 60
#define TEST_TAG LIBNDIS_TAG('F', 'l', 't', '1')
#define OTHER_TAG LIBNDIS_TAG('F', 'l', 't', '2')
#define SEQ_CALLS 1000

static const NDIS_PHYSICAL_ADDRESS Highest = NDIS_PHYSICAL_ADDRESS_CONST(-1, -1);
static UCHAR data_area[3 * 4096];

static unsigned reports_seen;

static VOID count_report(const LIBNDIS_VERIFIER_REPORT *Report, PVOID Context)
{
    (void)Context;
    reports_seen++;
    print_message("unexpected report: %s\n", Report->Text);
}

/* Faults off (0 = none also drops them), every rule on so that a fault that broke the
 * bookkeeping would show as a report, and no pool filter. */
static int faults_off(void **state)
{
    (void)state;
    KeLowerIrql(PASSIVE_LEVEL);
    if (LibNdisVerifierConfigure("none") != NDIS_STATUS_SUCCESS ||
        LibNdisVerifierConfigure("all,abort=none") != NDIS_STATUS_SUCCESS)
        return -1;
    LibNdisVerifierFaultPool(NULL);
    LibNdisVerifierSetCallback(count_report, NULL);
    LibNdisVerifierResetCounts();
    reports_seen = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    KeLowerIrql(PASSIVE_LEVEL);
    LibNdisVerifierFaultPool(NULL);
    return 0;
}

static void configure(const char *spec)
{
    if (LibNdisVerifierConfigure(spec) != NDIS_STATUS_SUCCESS)
        fail_msg("LibNdisVerifierConfigure(\"%s\") refused", spec);
}

/* Nothing reported, nothing left out: what every test ends with. */
static void assert_clean(void)
{
    assert_int_equal(LibNdisVerifierCheckLeaks(), 0);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 0);
    assert_int_equal(reports_seen, 0);
}

static ULONG pool_in_use(NDIS_HANDLE pool)
{
    LIBNDIS_POOL_INFO info;
    assert_int_equal(LibNdisQueryBufferPool(pool, &info), NDIS_STATUS_SUCCESS);
    return info.InUse;
}

static ULONGLONG tag_outstanding(ULONG tag)
{
    LIBNDIS_TAG_USAGE u;
    LibNdisQueryMemoryTag(tag, &u);
    return u.OutstandingAllocations;
}

static NDIS_HANDLE new_buffer_pool(void)
{
    NDIS_STATUS st;
    NDIS_HANDLE pool;
    NdisAllocateBufferPool(&st, &pool, 64);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    assert_non_null(pool);
    return pool;
}

static NDIS_HANDLE new_packet_pool(void)
{
    NDIS_STATUS st;
    NDIS_HANDLE pool;
    NdisAllocatePacketPool(&st, &pool, 16, 8);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    return pool;
}

static PNDIS_BUFFER new_buffer(NDIS_HANDLE pool, PVOID va, UINT len)
{
    NDIS_STATUS st;
    PNDIS_BUFFER b;
    NdisAllocateBuffer(&st, &b, pool, va, len);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    return b;
}

/* Out-pointers start as a recognisable non-NULL value, so "set to NULL" is really checked. */
static MDL sentinel_mdl;
static NDIS_PACKET sentinel_packet;

/* ======================================================================================== */
/* each kind                                                                                */
/* ======================================================================================== */

static void buffer_faults_fail_every_descriptor_allocation(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool();
    PNDIS_BUFFER src = new_buffer(pool, data_area, 300);
    ULONG in_use = pool_in_use(pool);
    configure("fault=buffer,fault_rate=1");

    NDIS_STATUS st = NDIS_STATUS_SUCCESS;
    PNDIS_BUFFER b = &sentinel_mdl;
    NdisAllocateBuffer(&st, &b, pool, data_area, 64);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_null(b);
    b = &sentinel_mdl;
    st = NDIS_STATUS_SUCCESS;
    NdisCopyBuffer(&st, &b, pool, src, 10, 100);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_null(b);
    b = &sentinel_mdl;
    NdisAllocateBuffer(&st, &b, NULL, data_area, 64); /* the default pool too */
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_null(b);
    assert_null(IoAllocateMdl(data_area, 64, FALSE, FALSE, NULL));
    assert_null(IoAllocateMdl(NULL, 64, FALSE, FALSE, NULL));
    assert_int_equal(LibNdisVerifierFaultsInjected(), 5);
    assert_int_equal(pool_in_use(pool), in_use);

    configure("fault_rate=0");
    b = new_buffer(pool, data_area, 64);
    NdisFreeBuffer(b);
    NdisFreeBuffer(src);
    NdisFreeBufferPool(pool);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 5);
    assert_clean();
}

static void packet_faults_fail_every_packet_allocation(void **state)
{
    (void)state;
    NDIS_HANDLE ppool = new_packet_pool();
    configure("fault=packet,fault_rate=1");
    NDIS_STATUS st = NDIS_STATUS_SUCCESS;
    PNDIS_PACKET p = &sentinel_packet;
    NdisAllocatePacket(&st, &p, ppool);
    assert_int_equal(st, NDIS_STATUS_RESOURCES);
    assert_null(p);

    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    p = &sentinel_packet;
    st = NDIS_STATUS_SUCCESS;
    NdisDprAllocatePacket(&st, &p, ppool);
    assert_int_equal(st, NDIS_STATUS_RESOURCES);
    assert_null(p);
    p = &sentinel_packet;
    st = NDIS_STATUS_SUCCESS;
    NdisDprAllocatePacketNonInterlocked(&st, &p, ppool);
    assert_int_equal(st, NDIS_STATUS_RESOURCES);
    assert_null(p);
    KeLowerIrql(old);

    assert_int_equal(LibNdisVerifierFaultsInjected(), 3);
    assert_int_equal(NdisPacketPoolUsage(ppool), 0);
    configure("fault_rate=0");
    NdisAllocatePacket(&st, &p, ppool);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisFreePacket(p);
    NdisFreePacketPool(ppool);
    assert_clean();
}

static void memory_faults_fail_every_memory_allocation(void **state)
{
    (void)state;
    ULONGLONG tagged = tag_outstanding(TEST_TAG);
    ULONGLONG plain = tag_outstanding(LIBNDIS_DEFAULT_MEMORY_TAG);
    configure("fault=memory,fault_rate=1");
    PVOID va = data_area;
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 64, TEST_TAG), NDIS_STATUS_FAILURE);
    assert_null(va);
    va = data_area;
    assert_int_equal(NdisAllocateMemory(&va, 64, 0, Highest), NDIS_STATUS_FAILURE);
    assert_null(va);
    va = data_area;
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 0, TEST_TAG), NDIS_STATUS_FAILURE);
    assert_null(va);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 3);
    assert_int_equal(tag_outstanding(TEST_TAG), tagged);
    assert_int_equal(tag_outstanding(LIBNDIS_DEFAULT_MEMORY_TAG), plain);
    assert_clean();
}

/* Each kind fails only its own calls. */
static void kinds_are_independent(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "fault=buffer,fault_rate=1", "fault=packet,fault_rate=1", "fault=memory,fault_rate=1",
        "fault=map,fault_rate=1",
    };
    NDIS_HANDLE pool = new_buffer_pool();
    NDIS_HANDLE ppool = new_packet_pool();
    for (unsigned k = 0; k < 4; k++) {
        configure(specs[k]);
        LibNdisVerifierResetCounts();
        NDIS_STATUS st;
        PNDIS_BUFFER b;
        PNDIS_PACKET p;
        PVOID va;
        NdisAllocateBuffer(&st, &b, pool, data_area, 32);
        assert_int_equal(st == NDIS_STATUS_SUCCESS, k != 0);
        NdisAllocatePacket(&st, &p, ppool);
        assert_int_equal(st == NDIS_STATUS_SUCCESS, k != 1);
        assert_int_equal(NdisAllocateMemoryWithTag(&va, 32, TEST_TAG) == NDIS_STATUS_SUCCESS, k != 2);
        if (b != NULL)
            assert_int_equal(MmGetSystemAddressForMdlSafe(b, NormalPagePriority) != NULL, k != 3);
        assert_int_equal(LibNdisVerifierFaultsInjected(), 1);
        configure("fault_rate=0");
        if (b != NULL)
            NdisFreeBuffer(b);
        if (p != NULL)
            NdisFreePacket(p);
        if (va != NULL)
            NdisFreeMemory(va, 32, 0);
    }
    NdisFreePacketPool(ppool);
    NdisFreeBufferPool(pool);
    assert_clean();
}

/* ---- map ---- */

struct three {
    NDIS_HANDLE pool, ppool;
    PNDIS_BUFFER b[3];
    PNDIS_PACKET packet;
};

static void three_make(struct three *t, PUCHAR base, UINT seg)
{
    NDIS_STATUS st;
    t->pool = new_buffer_pool();
    t->ppool = new_packet_pool();
    NdisAllocatePacket(&st, &t->packet, t->ppool);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    for (int i = 0; i < 3; i++) {
        t->b[i] = new_buffer(t->pool, base + (size_t)i * seg, seg);
        NdisChainBufferAtBack(t->packet, t->b[i]);
    }
}

static void three_free(struct three *t)
{
    PNDIS_BUFFER b;
    for (int i = 0; i < 3; i++) {
        NdisUnchainBufferAtFront(t->packet, &b);
        assert_ptr_equal(b, t->b[i]);
        NdisFreeBuffer(b);
    }
    NdisFreePacket(t->packet);
    NdisFreePacketPool(t->ppool);
    NdisFreeBufferPool(t->pool);
}

static void map_faults_fail_the_safe_mappings_only(void **state)
{
    (void)state;
    struct three t;
    three_make(&t, data_area, 100);
    PNDIS_BUFFER b = t.b[0];
    configure("fault=map,fault_rate=1");

    assert_null(MmGetSystemAddressForMdlSafe(b, NormalPagePriority));
    PVOID va = data_area + 1;
    UINT len = 0;
    NdisQueryBufferSafe(b, &va, &len, HighPagePriority);
    assert_null(va);
    assert_int_equal(len, 100); /* the length is real even when the mapping fails */
    assert_null(NdisBufferVirtualAddressSafe(b, LowPagePriority));
    PNDIS_BUFFER first;
    UINT first_len = 0, total = 0;
    va = data_area;
    NdisGetFirstBufferFromPacketSafe(t.packet, &first, &va, &first_len, &total, NormalPagePriority);
    assert_ptr_equal(first, b);
    assert_null(va);
    assert_int_equal(first_len, 100);
    assert_int_equal(total, 300);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 4);

    /* The plain forms never fail and are not candidates. */
    assert_ptr_equal(MmGetSystemAddressForMdl(b), data_area);
    NdisQueryBuffer(b, &va, &len);
    assert_ptr_equal(va, data_area);
    assert_ptr_equal(NdisBufferVirtualAddress(t.b[1]), data_area + 100);
    NdisGetFirstBufferFromPacket(t.packet, &first, &va, &first_len, &total);
    assert_ptr_equal(va, data_area);
    assert_int_equal(total, 300);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 4);

    configure("fault_rate=0");
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(b, NormalPagePriority), data_area);
    three_free(&t);
    assert_clean();
}

/* A failed Safe mapping leaves an unmapped MDL unmapped: no flag, no address recorded. */
static void failed_safe_mapping_changes_nothing(void **state)
{
    (void)state;
    union {
        MDL mdl;
        UCHAR storage[sizeof(MDL) + 4 * sizeof(PFN_NUMBER)];
    } u;
    memset(&u, 0, sizeof(u));
    MmInitializeMdl(&u.mdl, data_area + 8, 200);
    u.mdl.MappedSystemVa = NULL;
    MDL before = u.mdl;
    configure("fault=map,fault_rate=1");
    assert_null(MmGetSystemAddressForMdlSafe(&u.mdl, NormalPagePriority));
    assert_memory_equal(&u.mdl, &before, sizeof(MDL));
    configure("fault_rate=0");
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(&u.mdl, NormalPagePriority), data_area + 8);
    assert_true(u.mdl.MdlFlags & MDL_MAPPED_TO_SYSTEM_VA);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 1);
    assert_clean();
}

struct copy_pair {
    struct three dst, src;
    UCHAR dst_bytes[48], src_bytes[48];
};

static void copy_pair_make(struct copy_pair *c)
{
    for (int i = 0; i < 48; i++) {
        c->src_bytes[i] = (UCHAR)(0x40 + i);
        c->dst_bytes[i] = 0xEE;
    }
    three_make(&c->dst, c->dst_bytes, 16);
    three_make(&c->src, c->src_bytes, 16);
}

static void copy_pair_free(struct copy_pair *c)
{
    three_free(&c->dst);
    three_free(&c->src);
}

/* Whatever was copied is a correct prefix, and nothing past it was touched. */
static void assert_prefix_copied(const struct copy_pair *c, UINT copied)
{
    assert_memory_equal(c->dst_bytes, c->src_bytes, copied);
    for (UINT i = copied; i < 48; i++)
        assert_int_equal(c->dst_bytes[i], 0xEE);
}

/* Stepping fault_after walks the failure through the copy: each run stops at a segment
 * boundary with what it copied, and only a run with no failure copies everything. */
static void copy_packet_safe_stops_with_bytes_copied_so_far(void **state)
{
    (void)state;
    struct copy_pair c;
    copy_pair_make(&c);
    UINT last = 0;
    bool saw_partial = false;
    char spec[64];
    for (unsigned k = 0; k <= 8; k++) {
        memset(c.dst_bytes, 0xEE, sizeof(c.dst_bytes));
        LibNdisVerifierResetCounts();
        snprintf(spec, sizeof(spec), "fault=map,fault_after=%u", k);
        configure(spec);
        UINT copied = 0xDEAD;
        NdisCopyFromPacketToPacketSafe(c.dst.packet, 0, 48, c.src.packet, 0, &copied,
                                       NormalPagePriority);
        print_message("  fault_after=%u: %u bytes copied, %lu fault(s)\n", k, copied,
                      (unsigned long)LibNdisVerifierFaultsInjected());
        assert_true(copied <= 48);
        assert_int_equal(copied % 16, 0);
        assert_true(copied >= last);
        assert_int_equal(LibNdisVerifierFaultsInjected() > 0, copied < 48);
        assert_prefix_copied(&c, copied);
        if (k == 0)
            assert_int_equal(copied, 0);
        saw_partial |= copied > 0 && copied < 48;
        last = copied;
    }
    assert_true(saw_partial);
    assert_int_equal(last, 48);
    configure("fault_rate=0");
    copy_pair_free(&c);
    assert_clean();
}

/* The plain copy uses the mappings that never fail. */
static void copy_packet_plain_never_fails(void **state)
{
    (void)state;
    struct copy_pair c;
    copy_pair_make(&c);
    configure("fault=map,fault_rate=1");
    UINT copied = 0;
    NdisCopyFromPacketToPacket(c.dst.packet, 0, 48, c.src.packet, 0, &copied);
    assert_int_equal(copied, 48);
    assert_prefix_copied(&c, 48);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 0);
    configure("fault_rate=0");
    copy_pair_free(&c);
    assert_clean();
}

/* ======================================================================================== */
/* fault_after, fault_rate, the seed                                                        */
/* ======================================================================================== */

static void fault_after_n_is_exact(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool();
    PNDIS_BUFFER b[20];
    static const unsigned ns[] = { 0, 1, 5, 19, 20 };
    char spec[64];
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        LibNdisVerifierResetCounts();
        snprintf(spec, sizeof(spec), "fault=buffer,fault_after=%u", ns[k]);
        configure(spec);
        for (unsigned i = 0; i < 20; i++) {
            NDIS_STATUS st;
            NdisAllocateBuffer(&st, &b[i], pool, data_area + i, 8);
            if (i < ns[k]) {
                assert_int_equal(st, NDIS_STATUS_SUCCESS);
            } else {
                assert_int_equal(st, NDIS_STATUS_FAILURE);
                assert_null(b[i]);
            }
        }
        assert_int_equal(LibNdisVerifierFaultsInjected(), 20 - ns[k]);
        for (unsigned i = 0; i < ns[k]; i++)
            NdisFreeBuffer(b[i]); /* frees are not candidates */
        assert_int_equal(LibNdisVerifierFaultsInjected(), 20 - ns[k]);
    }
    configure("fault_rate=0");
    NdisFreeBufferPool(pool);
    assert_clean();
}

/* Only candidate calls count towards N: other kinds, and filtered-out pools, do not. */
static void fault_after_counts_candidates_only(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(), other = new_buffer_pool();
    PNDIS_BUFFER b[4];
    PVOID va[3];
    NDIS_STATUS st;
    configure("fault=buffer,fault_after=1");
    LibNdisVerifierFaultPool(pool);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(NdisAllocateMemoryWithTag(&va[i], 8, TEST_TAG), NDIS_STATUS_SUCCESS);
        b[i] = new_buffer(other, data_area, 8);
    }
    NdisAllocateBuffer(&st, &b[3], pool, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_SUCCESS); /* the first candidate */
    PNDIS_BUFFER x;
    NdisAllocateBuffer(&st, &x, pool, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 1);
    configure("fault_rate=0");
    for (int i = 0; i < 3; i++) {
        NdisFreeMemory(va[i], 8, 0);
        NdisFreeBuffer(b[i]);
    }
    NdisFreeBuffer(b[3]);
    NdisFreeBufferPool(pool);
    NdisFreeBufferPool(other);
    assert_clean();
}

/* One sequence across kinds: fault_after counts every candidate of every kind switched on. */
static void fault_after_spans_kinds(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool();
    PNDIS_BUFFER b1, b2;
    PVOID m1, m2;
    NDIS_STATUS st;
    configure("fault=buffer+memory,fault_after=2");
    NdisAllocateBuffer(&st, &b1, pool, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    assert_int_equal(NdisAllocateMemoryWithTag(&m1, 8, TEST_TAG), NDIS_STATUS_SUCCESS);
    NdisAllocateBuffer(&st, &b2, pool, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_int_equal(NdisAllocateMemoryWithTag(&m2, 8, TEST_TAG), NDIS_STATUS_FAILURE);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 2);
    configure("fault_rate=0");
    NdisFreeBuffer(b1);
    NdisFreeMemory(m1, 8, 0);
    NdisFreeBufferPool(pool);
    assert_clean();
}

static unsigned run_sequence(NDIS_HANDLE pool, bool *failed)
{
    unsigned n = 0;
    for (unsigned i = 0; i < SEQ_CALLS; i++) {
        NDIS_STATUS st;
        PNDIS_BUFFER b;
        NdisAllocateBuffer(&st, &b, pool, data_area + (i % 512), 16);
        failed[i] = st != NDIS_STATUS_SUCCESS;
        if (failed[i]) {
            assert_int_equal(st, NDIS_STATUS_FAILURE);
            assert_null(b);
            n++;
        } else {
            NdisFreeBuffer(b);
        }
    }
    return n;
}

static void same_seed_same_failures_other_seed_others(void **state)
{
    (void)state;
    static bool a[SEQ_CALLS], b[SEQ_CALLS], c[SEQ_CALLS];
    NDIS_HANDLE pool = new_buffer_pool();
    configure("fault=buffer,fault_rate=0.3,fault_seed=42");
    unsigned na = run_sequence(pool, a);
    assert_int_equal(LibNdisVerifierFaultsInjected(), na);
    print_message("  seed 42: %u of %u failed\n", na, SEQ_CALLS);
    /* about 300 expected; 200..400 is more than 6 standard deviations either way */
    assert_in_range(na, 200, 400);

    LibNdisVerifierResetCounts();
    configure("fault_seed=42");
    unsigned nb = run_sequence(pool, b);
    assert_int_equal(nb, na);
    assert_memory_equal(a, b, sizeof(a));
    assert_int_equal(LibNdisVerifierFaultsInjected(), nb);

    configure("fault_seed=43");
    unsigned nc = run_sequence(pool, c);
    assert_in_range(nc, 200, 400);
    assert_memory_not_equal(a, c, sizeof(a));

    configure("fault_rate=0");
    NdisFreeBufferPool(pool);
    assert_clean();
}

/* Seeds as they would come from a CI log: a replay from the spec alone gives the same run. */
static void replay_from_the_full_spec(void **state)
{
    (void)state;
    static bool a[SEQ_CALLS], b[SEQ_CALLS];
    NDIS_HANDLE pool = new_buffer_pool();
    configure("fault=buffer,fault_rate=0.05,fault_seed=7");
    unsigned na = run_sequence(pool, a);
    configure("fault_rate=1");
    run_sequence(pool, b); /* disturb the generator's state */
    configure("fault=buffer,fault_rate=0.05,fault_seed=7");
    unsigned nb = run_sequence(pool, b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, sizeof(a));
    assert_in_range(na, 20, 100);
    configure("fault_rate=0");
    NdisFreeBufferPool(pool);
    assert_clean();
}

static void rate_zero_never_fails_rate_one_always(void **state)
{
    (void)state;
    static bool f[SEQ_CALLS];
    NDIS_HANDLE pool = new_buffer_pool();
    configure("fault=buffer,fault_rate=0,fault_seed=5");
    assert_int_equal(run_sequence(pool, f), 0);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 0);
    ULONG in_use = pool_in_use(pool);
    configure("fault_rate=1");
    assert_int_equal(run_sequence(pool, f), SEQ_CALLS);
    assert_int_equal(LibNdisVerifierFaultsInjected(), SEQ_CALLS);
    assert_int_equal(pool_in_use(pool), in_use);
    configure("fault_rate=0");
    NdisFreeBufferPool(pool);
    assert_clean();
}

static void faults_injected_is_reset_with_the_counts(void **state)
{
    (void)state;
    PVOID va;
    configure("fault=memory,fault_rate=1");
    for (int i = 0; i < 7; i++)
        assert_int_equal(NdisAllocateMemoryWithTag(&va, 8, TEST_TAG), NDIS_STATUS_FAILURE);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 7);
    LibNdisVerifierResetCounts();
    assert_int_equal(LibNdisVerifierFaultsInjected(), 0);
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 8, TEST_TAG), NDIS_STATUS_FAILURE);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 1);
    configure("fault_rate=0");
    assert_clean();
}

/* Fault injection alone (no rule) still switches the checked mode on. */
static void faults_without_rules(void **state)
{
    (void)state;
    PVOID va;
    configure("none");
    assert_false(LibNdisVerifierEnabled());
    configure("fault=memory,fault_rate=1");
    assert_true(LibNdisVerifierEnabled());
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 8, TEST_TAG), NDIS_STATUS_FAILURE);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 1);
    configure("none");
    assert_false(LibNdisVerifierEnabled());
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 8, TEST_TAG), NDIS_STATUS_SUCCESS);
    NdisFreeMemory(va, 8, 0);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 1);
    configure("all,abort=none");
}

/* ======================================================================================== */
/* the pool filter                                                                          */
/* ======================================================================================== */

static void fault_pool_filters_buffer_pools(void **state)
{
    (void)state;
    NDIS_HANDLE target = new_buffer_pool(), other = new_buffer_pool();
    PNDIS_BUFFER src = new_buffer(other, data_area, 64);
    NDIS_STATUS st;
    PNDIS_BUFFER b;
    PVOID va;
    configure("fault=buffer+memory,fault_rate=1");
    LibNdisVerifierFaultPool(target);

    NdisAllocateBuffer(&st, &b, target, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    NdisCopyBuffer(&st, &b, target, src, 0, 8);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    NdisAllocateBuffer(&st, &b, other, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisFreeBuffer(b);
    NdisCopyBuffer(&st, &b, other, src, 0, 8);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisFreeBuffer(b);
    NdisAllocateBuffer(&st, &b, NULL, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisFreeBuffer(b);
    /* The filter is for buffers and packets: memory still fails. */
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 8, TEST_TAG), NDIS_STATUS_FAILURE);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 3);

    LibNdisVerifierFaultPool(NULL);
    NdisAllocateBuffer(&st, &b, other, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 4);
    configure("fault_rate=0");
    NdisFreeBuffer(src);
    NdisFreeBufferPool(target);
    NdisFreeBufferPool(other);
    assert_clean();
}

static void fault_pool_filters_packet_pools(void **state)
{
    (void)state;
    NDIS_HANDLE target = new_packet_pool(), other = new_packet_pool();
    NDIS_HANDLE bpool = new_buffer_pool();
    NDIS_STATUS st;
    PNDIS_PACKET p;
    PNDIS_BUFFER b;
    configure("fault=buffer+packet,fault_rate=1");
    LibNdisVerifierFaultPool(target);
    NdisAllocatePacket(&st, &p, target);
    assert_int_equal(st, NDIS_STATUS_RESOURCES);
    assert_null(p);
    NdisAllocatePacket(&st, &p, other);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisFreePacket(p);
    /* A packet pool as the filter spares every buffer pool. */
    NdisAllocateBuffer(&st, &b, bpool, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisFreeBuffer(b);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 1);
    configure("fault_rate=0");
    NdisFreePacketPool(target);
    NdisFreePacketPool(other);
    NdisFreeBufferPool(bpool);
    assert_clean();
}

/* ======================================================================================== */
/* driver error paths                                                                       */
/* ======================================================================================== */

#define RING_BYTES 2048u

struct adapter {
    NDIS_HANDLE bpool, ppool;
    PVOID ring;
    PNDIS_BUFFER ring_buffer;
    PNDIS_PACKET packet;
};

/* Miniport-style initialisation: three resources, unwound in reverse on any failure. */
static NDIS_STATUS adapter_init(struct adapter *a)
{
    NDIS_STATUS st = NdisAllocateMemoryWithTag(&a->ring, RING_BYTES, TEST_TAG);
    if (st != NDIS_STATUS_SUCCESS)
        return st;
    NdisAllocateBuffer(&st, &a->ring_buffer, a->bpool, a->ring, RING_BYTES);
    if (st != NDIS_STATUS_SUCCESS)
        goto free_ring;
    NdisAllocatePacket(&st, &a->packet, a->ppool);
    if (st != NDIS_STATUS_SUCCESS)
        goto free_buffer;
    NdisChainBufferAtFront(a->packet, a->ring_buffer);
    return NDIS_STATUS_SUCCESS;
free_buffer:
    NdisFreeBuffer(a->ring_buffer);
    a->ring_buffer = NULL;
free_ring:
    NdisFreeMemory(a->ring, RING_BYTES, 0);
    a->ring = NULL;
    return st;
}

static void adapter_halt(struct adapter *a)
{
    PNDIS_BUFFER b;
    NdisUnchainBufferAtFront(a->packet, &b);
    NdisFreePacket(a->packet);
    NdisFreeBuffer(b);
    NdisFreeMemory(a->ring, RING_BYTES, 0);
}

static void adapter_pools(struct adapter *a)
{
    memset(a, 0, sizeof(*a));
    a->bpool = new_buffer_pool();
    a->ppool = new_packet_pool();
}

static void adapter_pools_free(struct adapter *a)
{
    NdisFreePacketPool(a->ppool);
    NdisFreeBufferPool(a->bpool);
}

static void error_path_second_allocation_fails(void **state)
{
    (void)state;
    struct adapter a;
    adapter_pools(&a);
    ULONGLONG ring_blocks = tag_outstanding(TEST_TAG);
    ULONG in_use = pool_in_use(a.bpool);
    configure("fault=buffer,fault_rate=1");
    assert_int_equal(adapter_init(&a), NDIS_STATUS_FAILURE);
    assert_null(a.ring);
    assert_null(a.ring_buffer);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 1);
    assert_int_equal(tag_outstanding(TEST_TAG), ring_blocks); /* the first one was freed */
    assert_int_equal(pool_in_use(a.bpool), in_use);
    assert_int_equal(NdisPacketPoolUsage(a.ppool), 0);
    assert_clean();
    configure("fault_rate=0");
    adapter_pools_free(&a);
    assert_clean();
}

/* Step the failure through every allocation of the path, then let it succeed. */
static void error_path_every_failure_point(void **state)
{
    (void)state;
    static const NDIS_STATUS expect[] = { NDIS_STATUS_FAILURE, NDIS_STATUS_FAILURE,
                                          NDIS_STATUS_RESOURCES, NDIS_STATUS_SUCCESS };
    struct adapter a;
    char spec[64];
    adapter_pools(&a);
    ULONGLONG ring_blocks = tag_outstanding(TEST_TAG);
    for (unsigned k = 0; k < 4; k++) {
        LibNdisVerifierResetCounts();
        snprintf(spec, sizeof(spec), "fault=all,fault_after=%u", k);
        configure(spec);
        NDIS_STATUS st = adapter_init(&a);
        print_message("  fault_after=%u: status 0x%08X\n", k, (unsigned)st);
        assert_int_equal(st, expect[k]);
        assert_int_equal(LibNdisVerifierFaultsInjected(), k < 3 ? 1 : 0);
        configure("fault_rate=0");
        if (st == NDIS_STATUS_SUCCESS)
            adapter_halt(&a);
        assert_int_equal(tag_outstanding(TEST_TAG), ring_blocks);
        assert_int_equal(NdisPacketPoolUsage(a.ppool), 0);
        assert_clean();
    }
    adapter_pools_free(&a);
    assert_clean();
}

/* The same path with its unwinding bug: the leak check must find exactly the forgotten block. */
static int buggy_alloc_line;

static NDIS_STATUS adapter_init_forgets_the_ring(struct adapter *a)
{
    NDIS_STATUS st;
    buggy_alloc_line = __LINE__ + 1;
    st = NdisAllocateMemoryWithTag(&a->ring, RING_BYTES, TEST_TAG);
    if (st != NDIS_STATUS_SUCCESS)
        return st;
    NdisAllocateBuffer(&st, &a->ring_buffer, a->bpool, a->ring, RING_BYTES);
    return st; /* BUG: the ring is not freed when the buffer fails */
}

static struct {
    unsigned leaks;
    void *object;
    char alloc_file[512];
    int alloc_line;
} leak_seen;

static VOID record_leak(const LIBNDIS_VERIFIER_REPORT *Report, PVOID Context)
{
    (void)Context;
    if (strcmp(Report->Rule, "LEAK") != 0)
        return;
    leak_seen.leaks++;
    leak_seen.object = Report->Object;
    snprintf(leak_seen.alloc_file, sizeof(leak_seen.alloc_file), "%s",
             Report->AllocFile != NULL ? Report->AllocFile : "(null)");
    leak_seen.alloc_line = Report->AllocLine;
}

static void error_path_bug_is_found_by_the_leak_check(void **state)
{
    (void)state;
    struct adapter a;
    adapter_pools(&a);
    configure("fault=buffer,fault_rate=1");
    assert_int_equal(adapter_init_forgets_the_ring(&a), NDIS_STATUS_FAILURE);
    configure("fault_rate=0");
    memset(&leak_seen, 0, sizeof(leak_seen));
    LibNdisVerifierSetCallback(record_leak, NULL);
    assert_int_equal(LibNdisVerifierCheckLeaks(), 1);
    LibNdisVerifierSetCallback(count_report, NULL);
    assert_int_equal(leak_seen.leaks, 1);
    assert_ptr_equal(leak_seen.object, a.ring);
    assert_string_equal(leak_seen.alloc_file, __FILE__);
    assert_int_equal(leak_seen.alloc_line, buggy_alloc_line);
    assert_int_equal(LibNdisVerifierReportCount("LEAK"), 1);
    NdisFreeMemory(a.ring, RING_BYTES, 0);
    adapter_pools_free(&a);
    LibNdisVerifierResetCounts();
    assert_clean();
}

/* ======================================================================================== */
/* fault_tag (last: the grammar has no item that lifts it again)                            */
/* ======================================================================================== */

static void fault_tag_filters_memory_only(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool();
    NDIS_STATUS st;
    PNDIS_BUFFER b;
    PVOID va;
    configure("fault=memory+buffer,fault_rate=1,fault_tag=Flt1");
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 8, TEST_TAG), NDIS_STATUS_FAILURE);
    assert_null(va);
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 8, OTHER_TAG), NDIS_STATUS_SUCCESS);
    NdisFreeMemory(va, 8, 0);
    /* NdisAllocateMemory records the default tag, 'Ndis', which is not the one chosen. */
    assert_int_equal(NdisAllocateMemory(&va, 8, 0, Highest), NDIS_STATUS_SUCCESS);
    NdisFreeMemory(va, 8, 0);
    /* The tag says nothing about buffers: they still fail. */
    NdisAllocateBuffer(&st, &b, pool, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 2);

    configure("fault_tag=Ndis");
    assert_int_equal(NdisAllocateMemory(&va, 8, 0, Highest), NDIS_STATUS_FAILURE);
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 8, LIBNDIS_DEFAULT_MEMORY_TAG),
                     NDIS_STATUS_FAILURE);
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 8, TEST_TAG), NDIS_STATUS_SUCCESS);
    NdisFreeMemory(va, 8, 0);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 4);
    configure("fault_rate=0");
    NdisFreeBufferPool(pool);
    assert_clean();
}

#define F(f) cmocka_unit_test_setup_teardown(f, faults_off, teardown)

int main(void)
{
    alarm(HANG_GUARD_SECONDS);
    const struct CMUnitTest tests[] = {
        F(buffer_faults_fail_every_descriptor_allocation),
        F(packet_faults_fail_every_packet_allocation),
        F(memory_faults_fail_every_memory_allocation),
        F(kinds_are_independent),
        F(map_faults_fail_the_safe_mappings_only),
        F(failed_safe_mapping_changes_nothing),
        F(copy_packet_safe_stops_with_bytes_copied_so_far),
        F(copy_packet_plain_never_fails),
        F(fault_after_n_is_exact),
        F(fault_after_counts_candidates_only),
        F(fault_after_spans_kinds),
        F(same_seed_same_failures_other_seed_others),
        F(replay_from_the_full_spec),
        F(rate_zero_never_fails_rate_one_always),
        F(faults_injected_is_reset_with_the_counts),
        F(faults_without_rules),
        F(fault_pool_filters_buffer_pools),
        F(fault_pool_filters_packet_pools),
        F(error_path_second_allocation_fails),
        F(error_path_every_failure_point),
        F(error_path_bug_is_found_by_the_leak_check),
        F(fault_tag_filters_memory_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
