/* SPDX-License-Identifier: MIT */
/* test_verifier_sync.c - the verifier's IRQL, spin-lock and memory rules: each misuse gives exactly
 * one report naming the rule, the call, the object and the caller's file and line, and its correct
 * twin gives none. Also the LibNdisVerifierConfigure grammar and the abort policy (in a child). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <ndis.h>
#include <libndis.h>

#define HANG_GUARD_SECONDS 60
#define TEST_TAG LIBNDIS_TAG('V', 's', 'y', 'n')
#define ENV_CHILD_ARG "--verify-env-child"

static const NDIS_PHYSICAL_ADDRESS Highest = NDIS_PHYSICAL_ADDRESS_CONST(-1, -1);

/* ---- recording callback ---- */

/* Strings are copied: the library only promises them for the duration of the callback. */
struct record {
    char rule[64];
    char function[64];
    void *object;
    char call_file[512];
    int call_line;
    char alloc_file[512];
    int alloc_line;
    bool aborting;
    char text[4096];
};

#define MAX_RECORDS 32
static struct record records[MAX_RECORDS];
static unsigned record_count;
static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "(null)");
}

static VOID record_report(const LIBNDIS_VERIFIER_REPORT *Report, PVOID Context)
{
    (void)Context;
    pthread_mutex_lock(&record_lock);
    if (record_count < MAX_RECORDS) {
        struct record *r = &records[record_count];
        copy_str(r->rule, sizeof(r->rule), Report->Rule);
        copy_str(r->function, sizeof(r->function), Report->Function);
        r->object = Report->Object;
        copy_str(r->call_file, sizeof(r->call_file), Report->CallFile);
        r->call_line = Report->CallLine;
        copy_str(r->alloc_file, sizeof(r->alloc_file), Report->AllocFile);
        r->alloc_line = Report->AllocLine;
        r->aborting = Report->Aborting;
        copy_str(r->text, sizeof(r->text), Report->Text);
    }
    record_count++;
    pthread_mutex_unlock(&record_lock);
}

static void clear_records(void)
{
    pthread_mutex_lock(&record_lock);
    record_count = 0;
    memset(records, 0, sizeof(records));
    pthread_mutex_unlock(&record_lock);
    LibNdisVerifierResetCounts();
}

static int verifier_on(void **state)
{
    (void)state;
    KeLowerIrql(PASSIVE_LEVEL);
    if (LibNdisVerifierConfigure("all,abort=none") != NDIS_STATUS_SUCCESS)
        return -1;
    LibNdisVerifierSetCallback(record_report, NULL);
    clear_records();
    return 0;
}

/* A failed assertion must not leave the next test at a raised level. */
static int back_to_passive(void **state)
{
    (void)state;
    KeLowerIrql(PASSIVE_LEVEL);
    return 0;
}

static void assert_no_reports(void)
{
    assert_int_equal(LibNdisVerifierReportCount(NULL), 0);
    assert_int_equal(record_count, 0);
}

static void assert_text_has(const struct record *r, const char *needle)
{
    if (strstr(r->text, needle) == NULL)
        fail_msg("report text lacks \"%s\":\n%s", needle, r->text);
}

/* The contract's report shape: rule, call and site, and the printed text that says the same. */
static void assert_report(const struct record *r, const char *rule, const char *function,
                          const void *object, int call_line)
{
    char want[700];
    assert_string_equal(r->rule, rule);
    assert_string_equal(r->function, function);
    assert_ptr_equal(r->object, object);
    assert_string_equal(r->call_file, __FILE__);
    assert_int_equal(r->call_line, call_line);
    assert_false(r->aborting);
    snprintf(want, sizeof(want), "libndis verifier: %s: ", rule);
    if (strncmp(r->text, want, strlen(want)) != 0)
        fail_msg("report text does not start with \"%s\":\n%s", want, r->text);
    snprintf(want, sizeof(want), "  call: %s at %s:%d", function, __FILE__, call_line);
    assert_text_has(r, want);
}

static const struct record *expect_one(const char *rule, const char *function,
                                       const void *object, int call_line)
{
    assert_int_equal(LibNdisVerifierReportCount(rule), 1);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
    assert_int_equal(record_count, 1);
    assert_report(&records[0], rule, function, object, call_line);
    return &records[0];
}

static KIRQL raise_to(KIRQL level)
{
    KIRQL old;
    KeRaiseIrql(level, &old);
    return old;
}

static ULONGLONG tag_outstanding(ULONG tag)
{
    LIBNDIS_TAG_USAGE u;
    LibNdisQueryMemoryTag(tag, &u);
    return u.OutstandingAllocations;
}

/* ======================================================================================== */
/* IRQL_TOO_HIGH                                                                            */
/* ======================================================================================== */

static UCHAR data_area[4 * 4096];

/* The descriptor does not exist before the call, so the report may name it or nothing. */
static void assert_alloc_report(const char *rule, const char *function, const void *made,
                                int line)
{
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
    assert_int_equal(record_count, 1);
    assert_report(&records[0], rule, function, records[0].object == NULL ? NULL : made, line);
}

static void irql_allocate_buffer_at_high_level(void **state)
{
    (void)state;
    NDIS_STATUS st;
    PNDIS_BUFFER b = NULL;
    NDIS_HANDLE pool;
    NdisAllocateBufferPool(&st, &pool, 4);
    KIRQL old = raise_to(HIGH_LEVEL);
    int line = __LINE__ + 1;
    NdisAllocateBuffer(&st, &b, pool, data_area, 64);
    KeLowerIrql(old);
    assert_alloc_report("IRQL_TOO_HIGH", "NdisAllocateBuffer", b, line);
    if (b != NULL)
        NdisFreeBuffer(b);
    NdisFreeBufferPool(pool);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
}

static void irql_allocate_buffer_at_dispatch_is_fine(void **state)
{
    (void)state;
    NDIS_STATUS st;
    PNDIS_BUFFER b;
    NDIS_HANDLE pool;
    NdisAllocateBufferPool(&st, &pool, 4);
    KIRQL old = raise_to(DISPATCH_LEVEL);
    NdisAllocateBuffer(&st, &b, pool, data_area, 64);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisFreeBuffer(b);
    KeLowerIrql(old);
    NdisFreeBufferPool(pool);
    assert_no_reports();
}

static void irql_allocate_memory_with_flags(KIRQL level, UINT flags, bool expect_report)
{
    PVOID va = NULL;
    KIRQL old = raise_to(level);
    int line = __LINE__ + 1;
    NDIS_STATUS st = NdisAllocateMemory(&va, 64, flags, Highest);
    KeLowerIrql(old);
    if (expect_report)
        assert_alloc_report("IRQL_TOO_HIGH", "NdisAllocateMemory", va, line);
    else
        assert_no_reports();
    if (st == NDIS_STATUS_SUCCESS)
        NdisFreeMemory(va, 64, flags);
    assert_int_equal(LibNdisVerifierReportCount(NULL), expect_report ? 1 : 0);
    clear_records();
}

static void irql_allocate_contiguous_memory_at_dispatch(void **state)
{
    (void)state;
    irql_allocate_memory_with_flags(DISPATCH_LEVEL, NDIS_MEMORY_CONTIGUOUS, true);
}

/* "Non-zero MemoryFlags above PASSIVE_LEVEL": APC already counts, for either flag. */
static void irql_allocate_flagged_memory_above_passive(void **state)
{
    (void)state;
    irql_allocate_memory_with_flags(APC_LEVEL, NDIS_MEMORY_CONTIGUOUS, true);
    irql_allocate_memory_with_flags(APC_LEVEL, NDIS_MEMORY_NONCACHED, true);
    irql_allocate_memory_with_flags(DISPATCH_LEVEL, NDIS_MEMORY_NONCACHED, true);
}

static void irql_allocate_memory_twins_are_fine(void **state)
{
    (void)state;
    irql_allocate_memory_with_flags(PASSIVE_LEVEL, NDIS_MEMORY_CONTIGUOUS, false);
    irql_allocate_memory_with_flags(PASSIVE_LEVEL, NDIS_MEMORY_NONCACHED, false);
    irql_allocate_memory_with_flags(DISPATCH_LEVEL, 0, false);
    PVOID va;
    KIRQL old = raise_to(DISPATCH_LEVEL);
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 16, TEST_TAG), NDIS_STATUS_SUCCESS);
    NdisFreeMemory(va, 16, 0);
    KeLowerIrql(old);
    assert_no_reports();
}

static void irql_free_memory_with_flags(KIRQL level, UINT flags, bool expect_report)
{
    PVOID va;
    assert_int_equal(NdisAllocateMemory(&va, 48, flags, Highest), NDIS_STATUS_SUCCESS);
    ULONGLONG before = tag_outstanding(LIBNDIS_DEFAULT_MEMORY_TAG);
    KIRQL old = raise_to(level);
    int line = __LINE__ + 1;
    NdisFreeMemory(va, 48, flags);
    KeLowerIrql(old);
    if (expect_report)
        expect_one("IRQL_TOO_HIGH", "NdisFreeMemory", va, line);
    else
        assert_no_reports();
    /* Report and continue: the block is freed all the same. */
    assert_int_equal(tag_outstanding(LIBNDIS_DEFAULT_MEMORY_TAG), before - 1);
    clear_records();
}

static void irql_free_contiguous_memory_at_dispatch(void **state)
{
    (void)state;
    irql_free_memory_with_flags(DISPATCH_LEVEL, NDIS_MEMORY_CONTIGUOUS, true);
}

static void irql_free_memory_levels_per_flag(void **state)
{
    (void)state;
    irql_free_memory_with_flags(APC_LEVEL, NDIS_MEMORY_CONTIGUOUS, true);
    irql_free_memory_with_flags(PASSIVE_LEVEL, NDIS_MEMORY_CONTIGUOUS, false);
    /* NONCACHED only from DISPATCH up. */
    irql_free_memory_with_flags(DISPATCH_LEVEL, NDIS_MEMORY_NONCACHED, true);
    irql_free_memory_with_flags(APC_LEVEL, NDIS_MEMORY_NONCACHED, false);
    irql_free_memory_with_flags(DISPATCH_LEVEL, 0, false);
}

/* Every buffer, packet, pool and memory call refuses HIGH_LEVEL: one report per call, each
 * naming its own call and line. */
struct high_env {
    NDIS_HANDLE bpool, ppool, newpool;
    PNDIS_BUFFER src, copy;
    PNDIS_PACKET packet;
    PVOID mem;
};

/* The contract names no single object for these calls: the one passed in (source descriptor,
 * pool handle), the one made, or none are all fair, anything else is not. */
static void expect_next_high(unsigned *seen, const char *function, const void *passed,
                             const void *made, int line)
{
    (*seen)++;
    assert_int_equal(LibNdisVerifierReportCount("IRQL_TOO_HIGH"), *seen);
    assert_int_equal(LibNdisVerifierReportCount(NULL), *seen);
    assert_int_equal(record_count, *seen);
    const struct record *r = &records[*seen - 1];
    if (passed == made) /* a free: the object freed, nothing else */
        assert_ptr_equal(r->object, passed);
    if (r->object != NULL && r->object != passed && r->object != made)
        fail_msg("%s: report names %p, neither %p nor %p", function, r->object, passed, made);
    assert_report(r, "IRQL_TOO_HIGH", function, r->object, line);
}

static void irql_every_call_above_dispatch_reports(void **state)
{
    (void)state;
    struct high_env e = { 0 };
    NDIS_STATUS st;
    unsigned seen = 0;
    int line;
    NdisAllocateBufferPool(&st, &e.bpool, 8);
    NdisAllocatePacketPool(&st, &e.ppool, 4, 0);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAllocateBuffer(&st, &e.src, e.bpool, data_area, 256);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);

    KIRQL old = raise_to(HIGH_LEVEL);
    line = __LINE__ + 1;
    NdisAllocateBufferPool(&st, &e.newpool, 2);
    expect_next_high(&seen, "NdisAllocateBufferPool", NULL, e.newpool, line);
    line = __LINE__ + 1;
    NdisCopyBuffer(&st, &e.copy, e.bpool, e.src, 8, 16);
    expect_next_high(&seen, "NdisCopyBuffer", e.src, e.copy, line);
    line = __LINE__ + 1;
    NdisAllocatePacket(&st, &e.packet, e.ppool);
    expect_next_high(&seen, "NdisAllocatePacket", NULL, e.packet, line);
    line = __LINE__ + 1;
    NdisAllocateMemoryWithTag(&e.mem, 8, TEST_TAG);
    expect_next_high(&seen, "NdisAllocateMemoryWithTag", NULL, e.mem, line);
    if (e.mem != NULL) {
        line = __LINE__ + 1;
        NdisFreeMemory(e.mem, 8, 0);
        expect_next_high(&seen, "NdisFreeMemory", e.mem, e.mem, line);
    }
    if (e.packet != NULL) {
        line = __LINE__ + 1;
        NdisFreePacket(e.packet);
        expect_next_high(&seen, "NdisFreePacket", e.packet, e.packet, line);
    }
    if (e.copy != NULL) {
        line = __LINE__ + 1;
        NdisFreeBuffer(e.copy);
        expect_next_high(&seen, "NdisFreeBuffer", e.copy, e.copy, line);
    }
    line = __LINE__ + 1;
    NdisFreePacketPool(e.ppool);
    expect_next_high(&seen, "NdisFreePacketPool", e.ppool, NULL, line);
    KeLowerIrql(old);

    NdisFreeBuffer(e.src);
    NdisFreeBufferPool(e.bpool);
    NdisFreeBufferPool(e.newpool);
    assert_int_equal(LibNdisVerifierReportCount(NULL), seen);
}

/* ======================================================================================== */
/* DPR_NOT_AT_DISPATCH                                                                      */
/* ======================================================================================== */

struct dpr_env {
    NDIS_HANDLE ppool;
    NDIS_SPIN_LOCK lock;
    KSPIN_LOCK klock;
    PVOID object; /* what the report must name */
};

/* Each step makes its Dpr call at `level` (set up and cleaned up at DISPATCH, so only the call
 * under test can report) and returns that call's line. */
typedef int (*dpr_step)(struct dpr_env *e, KIRQL level);

static int dpr_acquire(struct dpr_env *e, KIRQL level)
{
    KIRQL old = raise_to(level);
    int line = __LINE__ + 1;
    NdisDprAcquireSpinLock(&e->lock);
    KeLowerIrql(old);
    old = raise_to(DISPATCH_LEVEL);
    NdisDprReleaseSpinLock(&e->lock);
    KeLowerIrql(old);
    e->object = &e->lock;
    return line;
}

static int dpr_release(struct dpr_env *e, KIRQL level)
{
    KIRQL old = raise_to(DISPATCH_LEVEL);
    NdisDprAcquireSpinLock(&e->lock);
    KeLowerIrql(old);
    old = raise_to(level);
    int line = __LINE__ + 1;
    NdisDprReleaseSpinLock(&e->lock);
    KeLowerIrql(old);
    e->object = &e->lock;
    return line;
}

static int ke_acquire_at_dpc(struct dpr_env *e, KIRQL level)
{
    KIRQL old = raise_to(level);
    int line = __LINE__ + 1;
    KeAcquireSpinLockAtDpcLevel(&e->klock);
    KeLowerIrql(old);
    old = raise_to(DISPATCH_LEVEL);
    KeReleaseSpinLockFromDpcLevel(&e->klock);
    KeLowerIrql(old);
    e->object = &e->klock;
    return line;
}

static int ke_release_from_dpc(struct dpr_env *e, KIRQL level)
{
    KIRQL old = raise_to(DISPATCH_LEVEL);
    KeAcquireSpinLockAtDpcLevel(&e->klock);
    KeLowerIrql(old);
    old = raise_to(level);
    int line = __LINE__ + 1;
    KeReleaseSpinLockFromDpcLevel(&e->klock);
    KeLowerIrql(old);
    e->object = &e->klock;
    return line;
}

static void free_packet_at_dispatch(PNDIS_PACKET p)
{
    KIRQL old = raise_to(DISPATCH_LEVEL);
    if (p != NULL)
        NdisDprFreePacket(p);
    KeLowerIrql(old);
}

static int dpr_allocate_packet(struct dpr_env *e, KIRQL level)
{
    NDIS_STATUS st;
    PNDIS_PACKET p = NULL;
    KIRQL old = raise_to(level);
    int line = __LINE__ + 1;
    NdisDprAllocatePacket(&st, &p, e->ppool);
    KeLowerIrql(old);
    e->object = p;
    free_packet_at_dispatch(p);
    return line;
}

static int dpr_allocate_packet_nonint(struct dpr_env *e, KIRQL level)
{
    NDIS_STATUS st;
    PNDIS_PACKET p = NULL;
    KIRQL old = raise_to(level);
    int line = __LINE__ + 1;
    NdisDprAllocatePacketNonInterlocked(&st, &p, e->ppool);
    KeLowerIrql(old);
    e->object = p;
    free_packet_at_dispatch(p);
    return line;
}

static PNDIS_PACKET packet_at_dispatch(struct dpr_env *e)
{
    NDIS_STATUS st;
    PNDIS_PACKET p;
    KIRQL old = raise_to(DISPATCH_LEVEL);
    NdisDprAllocatePacket(&st, &p, e->ppool);
    KeLowerIrql(old);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    return p;
}

static int dpr_free_packet(struct dpr_env *e, KIRQL level)
{
    PNDIS_PACKET p = packet_at_dispatch(e);
    KIRQL old = raise_to(level);
    int line = __LINE__ + 1;
    NdisDprFreePacket(p);
    KeLowerIrql(old);
    e->object = p;
    return line;
}

static int dpr_free_packet_nonint(struct dpr_env *e, KIRQL level)
{
    PNDIS_PACKET p = packet_at_dispatch(e);
    KIRQL old = raise_to(level);
    int line = __LINE__ + 1;
    NdisDprFreePacketNonInterlocked(p);
    KeLowerIrql(old);
    e->object = p;
    return line;
}

static const struct {
    const char *function;
    dpr_step step;
    bool names_new_object; /* allocations: the report may name the packet or nothing */
} dpr_cases[] = {
    { "NdisDprAcquireSpinLock", dpr_acquire, false },
    { "NdisDprReleaseSpinLock", dpr_release, false },
    { "KeAcquireSpinLockAtDpcLevel", ke_acquire_at_dpc, false },
    { "KeReleaseSpinLockFromDpcLevel", ke_release_from_dpc, false },
    { "NdisDprAllocatePacket", dpr_allocate_packet, true },
    { "NdisDprAllocatePacketNonInterlocked", dpr_allocate_packet_nonint, true },
    { "NdisDprFreePacket", dpr_free_packet, false },
    { "NdisDprFreePacketNonInterlocked", dpr_free_packet_nonint, false },
};

static void dpr_env_init(struct dpr_env *e)
{
    NDIS_STATUS st;
    memset(e, 0, sizeof(*e));
    NdisAllocatePacketPool(&st, &e->ppool, 4, 16);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAllocateSpinLock(&e->lock);
    KeInitializeSpinLock(&e->klock);
}

static void dpr_calls_at(KIRQL level)
{
    struct dpr_env e;
    dpr_env_init(&e);
    for (size_t i = 0; i < sizeof(dpr_cases) / sizeof(dpr_cases[0]); i++) {
        clear_records();
        int line = dpr_cases[i].step(&e, level);
        print_message("  %s at IRQL %u\n", dpr_cases[i].function, level);
        const void *object = e.object;
        if (dpr_cases[i].names_new_object && records[0].object == NULL)
            object = NULL;
        expect_one("DPR_NOT_AT_DISPATCH", dpr_cases[i].function, object, line);
        assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    }
    clear_records();
    NdisFreePacketPool(e.ppool);
    assert_no_reports();
}

static void dpr_calls_at_passive_report(void **state)
{
    (void)state;
    dpr_calls_at(PASSIVE_LEVEL);
}

static void dpr_calls_at_apc_report(void **state)
{
    (void)state;
    dpr_calls_at(APC_LEVEL);
}

static void dpr_calls_at_dispatch_are_fine(void **state)
{
    (void)state;
    struct dpr_env e;
    dpr_env_init(&e);
    for (size_t i = 0; i < sizeof(dpr_cases) / sizeof(dpr_cases[0]); i++)
        dpr_cases[i].step(&e, DISPATCH_LEVEL);
    NdisFreePacketPool(e.ppool);
    assert_no_reports();
}

/* ======================================================================================== */
/* SPINLOCK_RELEASE_ORDER                                                                   */
/* ======================================================================================== */

static void release_order_non_lifo_reports_once(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK a, b;
    NdisAllocateSpinLock(&a);
    NdisAllocateSpinLock(&b);
    NdisAcquireSpinLock(&a);
    NdisAcquireSpinLock(&b);
    int line = __LINE__ + 1;
    NdisReleaseSpinLock(&a);
    expect_one("SPINLOCK_RELEASE_ORDER", "NdisReleaseSpinLock", &a, line);
    /* b is now the last lock held: releasing it is in order. */
    NdisReleaseSpinLock(&b);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
    /* The WDK outcome is kept: the checked mode reports, it does not repair. */
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(a.SpinLock, 0);
    assert_int_equal(b.SpinLock, 0);
}

static void release_order_dpr_locks_non_lifo(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK a, b;
    NdisAllocateSpinLock(&a);
    NdisAllocateSpinLock(&b);
    KIRQL old = raise_to(DISPATCH_LEVEL);
    NdisDprAcquireSpinLock(&a);
    NdisDprAcquireSpinLock(&b);
    int line = __LINE__ + 1;
    NdisDprReleaseSpinLock(&a);
    NdisDprReleaseSpinLock(&b);
    KeLowerIrql(old);
    expect_one("SPINLOCK_RELEASE_ORDER", "NdisDprReleaseSpinLock", &a, line);
}

static void release_order_lifo_is_fine(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK a, b, c;
    NdisAllocateSpinLock(&a);
    NdisAllocateSpinLock(&b);
    NdisAllocateSpinLock(&c);
    NdisAcquireSpinLock(&a);
    NdisAcquireSpinLock(&b);
    NdisDprAcquireSpinLock(&c);
    NdisDprReleaseSpinLock(&c);
    NdisReleaseSpinLock(&b);
    NdisReleaseSpinLock(&a);
    KSPIN_LOCK k1, k2;
    KIRQL o1, o2;
    KeInitializeSpinLock(&k1);
    KeInitializeSpinLock(&k2);
    KeAcquireSpinLock(&k1, &o1);
    KeAcquireSpinLock(&k2, &o2);
    KeReleaseSpinLock(&k2, o2);
    KeReleaseSpinLock(&k1, o1);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_no_reports();
}

/* Two threads each holding their own lock are not an ordering problem: the order is per thread. */
static NDIS_SPIN_LOCK shared_order_lock;
static pthread_barrier_t order_barrier;

static void *hold_across_barrier(void *arg)
{
    NDIS_SPIN_LOCK *mine = arg;
    NdisAcquireSpinLock(mine);
    pthread_barrier_wait(&order_barrier);
    pthread_barrier_wait(&order_barrier);
    NdisReleaseSpinLock(mine);
    return NULL;
}

static void release_order_is_per_thread(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK theirs;
    NdisAllocateSpinLock(&theirs);
    NdisAllocateSpinLock(&shared_order_lock);
    pthread_t t;
    assert_int_equal(pthread_barrier_init(&order_barrier, NULL, 2), 0);
    assert_int_equal(pthread_create(&t, NULL, hold_across_barrier, &theirs), 0);
    pthread_barrier_wait(&order_barrier); /* the other thread now holds its lock */
    NdisAcquireSpinLock(&shared_order_lock);
    NdisReleaseSpinLock(&shared_order_lock);
    pthread_barrier_wait(&order_barrier);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_barrier_destroy(&order_barrier);
    assert_no_reports();
}

/* ======================================================================================== */
/* SPINLOCK_WRONG_KIND                                                                      */
/* ======================================================================================== */

static void wrong_kind_plain_acquire_dpr_release(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK l;
    NdisAllocateSpinLock(&l);
    NdisAcquireSpinLock(&l);
    int line = __LINE__ + 1;
    NdisDprReleaseSpinLock(&l);
    KeLowerIrql(PASSIVE_LEVEL);
    expect_one("SPINLOCK_WRONG_KIND", "NdisDprReleaseSpinLock", &l, line);
    assert_int_equal(l.SpinLock, 0);
}

static void wrong_kind_dpr_acquire_plain_release(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK l;
    NdisAllocateSpinLock(&l);
    KIRQL old = raise_to(DISPATCH_LEVEL);
    NdisDprAcquireSpinLock(&l);
    int line = __LINE__ + 1;
    NdisReleaseSpinLock(&l);
    KeLowerIrql(old);
    expect_one("SPINLOCK_WRONG_KIND", "NdisReleaseSpinLock", &l, line);
}

static void wrong_kind_ke_acquire_dpc_release(void **state)
{
    (void)state;
    KSPIN_LOCK k;
    KIRQL old;
    KeInitializeSpinLock(&k);
    KeAcquireSpinLock(&k, &old);
    int line = __LINE__ + 1;
    KeReleaseSpinLockFromDpcLevel(&k);
    KeLowerIrql(old);
    expect_one("SPINLOCK_WRONG_KIND", "KeReleaseSpinLockFromDpcLevel", &k, line);
}

/* KeReleaseSpinLock is the WDK macro over KfReleaseSpinLock: either name is the call. */
static void wrong_kind_ke_dpc_acquire_plain_release(void **state)
{
    (void)state;
    KSPIN_LOCK k;
    KeInitializeSpinLock(&k);
    KIRQL old = raise_to(DISPATCH_LEVEL);
    KeAcquireSpinLockAtDpcLevel(&k);
    int line = __LINE__ + 1;
    KeReleaseSpinLock(&k, DISPATCH_LEVEL);
    KeLowerIrql(old);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
    assert_int_equal(record_count, 1);
    const char *fn = strcmp(records[0].function, "KfReleaseSpinLock") == 0 ? "KfReleaseSpinLock"
                                                                            : "KeReleaseSpinLock";
    expect_one("SPINLOCK_WRONG_KIND", fn, &k, line);
}

static void wrong_kind_release_of_a_lock_not_held(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK l;
    NdisAllocateSpinLock(&l);
    int line = __LINE__ + 1;
    NdisReleaseSpinLock(&l);
    KeLowerIrql(PASSIVE_LEVEL);
    expect_one("SPINLOCK_WRONG_KIND", "NdisReleaseSpinLock", &l, line);

    clear_records();
    KIRQL old = raise_to(DISPATCH_LEVEL);
    line = __LINE__ + 1;
    NdisDprReleaseSpinLock(&l);
    KeLowerIrql(old);
    expect_one("SPINLOCK_WRONG_KIND", "NdisDprReleaseSpinLock", &l, line);
}

/* Held by another thread is still "not held by this thread". The release is made while the
 * owner waits, so the lock word is the owner's business afterwards. */
static NDIS_SPIN_LOCK foreign_lock;
static pthread_barrier_t foreign_barrier;

static void *own_foreign_lock(void *arg)
{
    (void)arg;
    NdisAcquireSpinLock(&foreign_lock);
    pthread_barrier_wait(&foreign_barrier);
    pthread_barrier_wait(&foreign_barrier);
    KeLowerIrql(PASSIVE_LEVEL); /* the release was made by the other thread */
    return NULL;
}

static void wrong_kind_release_of_a_lock_another_thread_holds(void **state)
{
    (void)state;
    pthread_t t;
    NdisAllocateSpinLock(&foreign_lock);
    assert_int_equal(pthread_barrier_init(&foreign_barrier, NULL, 2), 0);
    assert_int_equal(pthread_create(&t, NULL, own_foreign_lock, NULL), 0);
    pthread_barrier_wait(&foreign_barrier);
    KIRQL old = raise_to(DISPATCH_LEVEL);
    int line = __LINE__ + 1;
    NdisDprReleaseSpinLock(&foreign_lock);
    KeLowerIrql(old);
    pthread_barrier_wait(&foreign_barrier);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_barrier_destroy(&foreign_barrier);
    /* The owner ended without releasing it itself: that may add HELD_AT_THREAD_EXIT. */
    assert_int_equal(LibNdisVerifierReportCount("SPINLOCK_WRONG_KIND"), 1);
    assert_int_equal(LibNdisVerifierReportCount("SPINLOCK_RELEASE_ORDER"), 0);
    for (unsigned i = 0; i < record_count && i < MAX_RECORDS; i++)
        if (strcmp(records[i].rule, "SPINLOCK_WRONG_KIND") == 0)
            assert_report(&records[i], "SPINLOCK_WRONG_KIND", "NdisDprReleaseSpinLock",
                          &foreign_lock, line);
}

static void matching_kinds_are_fine(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK l;
    KSPIN_LOCK k;
    KIRQL old;
    NdisAllocateSpinLock(&l);
    KeInitializeSpinLock(&k);
    NdisAcquireSpinLock(&l);
    NdisReleaseSpinLock(&l);
    KeAcquireSpinLock(&k, &old);
    KeReleaseSpinLock(&k, old);
    old = raise_to(DISPATCH_LEVEL);
    NdisDprAcquireSpinLock(&l);
    NdisDprReleaseSpinLock(&l);
    KeAcquireSpinLockAtDpcLevel(&k);
    KeReleaseSpinLockFromDpcLevel(&k);
    KeLowerIrql(old);
    /* The lock word through the Ke calls is one kind; NdisAcquire on the same storage another. */
    NdisAcquireSpinLock(&l);
    NdisReleaseSpinLock(&l);
    NdisFreeSpinLock(&l);
    assert_no_reports();
}

/* ======================================================================================== */
/* SPINLOCK_HELD_ACROSS_CALL                                                                */
/* ======================================================================================== */

struct held_env {
    NDIS_SPIN_LOCK lock;
    NDIS_HANDLE bpool, ppool, made_pool;
    PNDIS_BUFFER src, victim, copy, dbuf, sbuf;
    PNDIS_PACKET dst_packet, src_packet;
    UCHAR dst_bytes[64], src_bytes[64];
};

typedef int (*held_call)(struct held_env *e); /* returns the line of the call under test */

static int held_allocate_buffer_pool(struct held_env *e)
{
    NDIS_STATUS st;
    int line = __LINE__ + 1;
    NdisAllocateBufferPool(&st, &e->made_pool, 4);
    return line;
}

static int held_free_buffer_pool(struct held_env *e)
{
    NDIS_HANDLE pool = e->made_pool;
    e->made_pool = NULL;
    int line = __LINE__ + 1;
    NdisFreeBufferPool(pool);
    return line;
}

static int held_free_buffer(struct held_env *e)
{
    PNDIS_BUFFER b = e->victim;
    e->victim = NULL;
    int line = __LINE__ + 1;
    NdisFreeBuffer(b);
    return line;
}

static int held_copy_buffer(struct held_env *e)
{
    NDIS_STATUS st;
    int line = __LINE__ + 1;
    NdisCopyBuffer(&st, &e->copy, e->bpool, e->src, 4, 8);
    return line;
}

static int held_adjust_buffer_length(struct held_env *e)
{
    int line = __LINE__ + 1;
    NdisAdjustBufferLength(e->src, 32);
    return line;
}

static int held_copy_packet(struct held_env *e)
{
    UINT copied;
    int line = __LINE__ + 1;
    NdisCopyFromPacketToPacket(e->dst_packet, 0, 16, e->src_packet, 0, &copied);
    return line;
}

static int held_copy_packet_safe(struct held_env *e)
{
    UINT copied;
    int line = __LINE__ + 1;
    NdisCopyFromPacketToPacketSafe(e->dst_packet, 0, 16, e->src_packet, 0, &copied, NormalPagePriority);
    return line;
}

static int held_allocate_packet_pool(struct held_env *e)
{
    NDIS_STATUS st;
    int line = __LINE__ + 1;
    NdisAllocatePacketPool(&st, &e->made_pool, 4, 0);
    return line;
}

static int held_allocate_packet_pool_ex(struct held_env *e)
{
    NDIS_STATUS st;
    int line = __LINE__ + 1;
    NdisAllocatePacketPoolEx(&st, &e->made_pool, 4, 4, 0);
    return line;
}

static int held_free_packet_pool(struct held_env *e)
{
    NDIS_HANDLE pool = e->made_pool;
    e->made_pool = NULL;
    int line = __LINE__ + 1;
    NdisFreePacketPool(pool);
    return line;
}

enum made_kind { MADE_NONE, MADE_BUFFER_POOL, MADE_PACKET_POOL };

static const struct {
    const char *function;
    held_call call;
    enum made_kind needs;   /* a pool the call frees, made before */
    enum made_kind leaves;  /* a pool the call makes, freed after */
} held_cases[] = {
    { "NdisAllocateBufferPool", held_allocate_buffer_pool, MADE_NONE, MADE_BUFFER_POOL },
    { "NdisFreeBufferPool", held_free_buffer_pool, MADE_BUFFER_POOL, MADE_NONE },
    { "NdisFreeBuffer", held_free_buffer, MADE_NONE, MADE_NONE },
    { "NdisCopyBuffer", held_copy_buffer, MADE_NONE, MADE_NONE },
    { "NdisAdjustBufferLength", held_adjust_buffer_length, MADE_NONE, MADE_NONE },
    { "NdisCopyFromPacketToPacket", held_copy_packet, MADE_NONE, MADE_NONE },
    { "NdisCopyFromPacketToPacketSafe", held_copy_packet_safe, MADE_NONE, MADE_NONE },
    { "NdisAllocatePacketPool", held_allocate_packet_pool, MADE_NONE, MADE_PACKET_POOL },
    { "NdisAllocatePacketPoolEx", held_allocate_packet_pool_ex, MADE_NONE, MADE_PACKET_POOL },
    { "NdisFreePacketPool", held_free_packet_pool, MADE_PACKET_POOL, MADE_NONE },
};

static PNDIS_PACKET packet_with(struct held_env *e, PNDIS_BUFFER *b, UCHAR *bytes)
{
    NDIS_STATUS st;
    PNDIS_PACKET p;
    NdisAllocateBuffer(&st, b, e->bpool, bytes, 64);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAllocatePacket(&st, &p, e->ppool);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisChainBufferAtBack(p, *b);
    return p;
}

static void held_env_init(struct held_env *e)
{
    NDIS_STATUS st;
    memset(e, 0, sizeof(*e));
    NdisAllocateSpinLock(&e->lock);
    NdisAllocateBufferPool(&st, &e->bpool, 16);
    NdisAllocatePacketPool(&st, &e->ppool, 4, 0);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAllocateBuffer(&st, &e->src, e->bpool, data_area, 64);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    e->dst_packet = packet_with(e, &e->dbuf, e->dst_bytes);
    e->src_packet = packet_with(e, &e->sbuf, e->src_bytes);
}

static void held_env_free(struct held_env *e)
{
    PNDIS_BUFFER b;
    NdisUnchainBufferAtFront(e->dst_packet, &b);
    NdisUnchainBufferAtFront(e->src_packet, &b);
    NdisFreePacket(e->dst_packet);
    NdisFreePacket(e->src_packet);
    NdisFreeBuffer(e->dbuf);
    NdisFreeBuffer(e->sbuf);
    NdisFreeBuffer(e->src);
    NdisFreePacketPool(e->ppool);
    NdisFreeBufferPool(e->bpool);
}

/* Makes what the call consumes, and afterwards frees what it made, all with no lock held. */
static void held_prepare(struct held_env *e, size_t i)
{
    NDIS_STATUS st;
    NdisAllocateBuffer(&st, &e->victim, e->bpool, data_area, 16);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    if (held_cases[i].needs == MADE_BUFFER_POOL)
        NdisAllocateBufferPool(&st, &e->made_pool, 4);
    else if (held_cases[i].needs == MADE_PACKET_POOL)
        NdisAllocatePacketPool(&st, &e->made_pool, 4, 0);
}

static void held_cleanup(struct held_env *e, size_t i)
{
    if (e->victim != NULL)
        NdisFreeBuffer(e->victim);
    e->victim = NULL;
    if (e->copy != NULL)
        NdisFreeBuffer(e->copy);
    e->copy = NULL;
    NdisAdjustBufferLength(e->src, 64);
    if (held_cases[i].leaves == MADE_BUFFER_POOL)
        NdisFreeBufferPool(e->made_pool);
    else if (held_cases[i].leaves == MADE_PACKET_POOL)
        NdisFreePacketPool(e->made_pool);
    e->made_pool = NULL;
}

static void held_across_call_with(bool dpr)
{
    struct held_env e;
    held_env_init(&e);
    for (size_t i = 0; i < sizeof(held_cases) / sizeof(held_cases[0]); i++) {
        held_prepare(&e, i);
        clear_records();
        KIRQL old = raise_to(DISPATCH_LEVEL);
        if (dpr)
            NdisDprAcquireSpinLock(&e.lock);
        else
            NdisAcquireSpinLock(&e.lock);
        int line = held_cases[i].call(&e);
        if (dpr)
            NdisDprReleaseSpinLock(&e.lock);
        else
            NdisReleaseSpinLock(&e.lock);
        KeLowerIrql(old);
        print_message("  %s under a %s-acquired lock\n", held_cases[i].function,
                      dpr ? "Dpr" : "plain");
        expect_one("SPINLOCK_HELD_ACROSS_CALL", held_cases[i].function, &e.lock, line);
        clear_records();
        held_cleanup(&e, i);
        assert_no_reports();
    }
    held_env_free(&e);
    assert_no_reports();
}

static void held_across_call_plain_lock(void **state)
{
    (void)state;
    held_across_call_with(false);
}

static void held_across_call_dpr_lock(void **state)
{
    (void)state;
    held_across_call_with(true);
}

/* The same calls at DISPATCH_LEVEL with no lock held are fine: the rule is about the lock. */
static void same_calls_without_a_lock_are_fine(void **state)
{
    (void)state;
    struct held_env e;
    held_env_init(&e);
    for (size_t i = 0; i < sizeof(held_cases) / sizeof(held_cases[0]); i++) {
        held_prepare(&e, i);
        KIRQL old = raise_to(DISPATCH_LEVEL);
        held_cases[i].call(&e);
        KeLowerIrql(old);
        held_cleanup(&e, i);
    }
    held_env_free(&e);
    assert_no_reports();
}

/* Calls outside the list may be made under a lock, as drivers do at DISPATCH_LEVEL. */
static void unlisted_calls_under_a_lock_are_fine(void **state)
{
    (void)state;
    struct held_env e;
    NDIS_STATUS st;
    PNDIS_BUFFER b;
    PNDIS_PACKET p;
    PVOID va;
    UINT len;
    held_env_init(&e);
    NdisAcquireSpinLock(&e.lock);
    NdisAllocateBuffer(&st, &b, e.bpool, data_area, 32);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisQueryBuffer(b, &va, &len);
    NdisAllocatePacket(&st, &p, e.ppool);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisChainBufferAtFront(p, b);
    NdisQueryPacket(p, NULL, NULL, NULL, &len);
    NdisUnchainBufferAtFront(p, &b);
    NdisFreePacket(p);
    NdisReleaseSpinLock(&e.lock);
    NdisFreeBuffer(b);
    held_env_free(&e);
    assert_int_equal(len, 32);
    assert_no_reports();
}

/* ======================================================================================== */
/* SPINLOCK_HELD_AT_THREAD_EXIT                                                             */
/* ======================================================================================== */

struct exit_job {
    NDIS_SPIN_LOCK *lock;
    KSPIN_LOCK *klock;
    int line;
    bool release;
    bool dpr;
};

static void *acquire_and_return(void *arg)
{
    struct exit_job *j = arg;
    if (j->klock != NULL) {
        KIRQL old;
        j->line = __LINE__ + 1;
        KeAcquireSpinLock(j->klock, &old);
        if (j->release)
            KeReleaseSpinLock(j->klock, old);
    } else if (j->dpr) {
        KeRaiseIrql(DISPATCH_LEVEL, &(KIRQL){ 0 });
        j->line = __LINE__ + 1;
        NdisDprAcquireSpinLock(j->lock);
        if (j->release)
            NdisDprReleaseSpinLock(j->lock);
    } else {
        j->line = __LINE__ + 1;
        NdisAcquireSpinLock(j->lock);
        if (j->release)
            NdisReleaseSpinLock(j->lock);
    }
    return NULL;
}

static void run_exit_job(struct exit_job *j)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, acquire_and_return, j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* No call is being made when a thread ends, so the report must point at where the lock was
 * taken. The contract fixes no Function for it: what it gives is printed, not asserted. */
static void expect_exit_report(const void *lock, const struct exit_job *j)
{
    assert_int_equal(LibNdisVerifierReportCount("SPINLOCK_HELD_AT_THREAD_EXIT"), 1);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
    assert_int_equal(record_count, 1);
    const struct record *r = &records[0];
    print_message("  thread-exit report: function %s, call %s:%d, alloc %s:%d\n", r->function,
                  r->call_file, r->call_line, r->alloc_file, r->alloc_line);
    assert_string_equal(r->rule, "SPINLOCK_HELD_AT_THREAD_EXIT");
    assert_ptr_equal(r->object, lock);
    assert_false(r->aborting);
    const char *head = "libndis verifier: SPINLOCK_HELD_AT_THREAD_EXIT: ";
    assert_true(strncmp(r->text, head, strlen(head)) == 0);
    char site[600];
    snprintf(site, sizeof(site), "%s:%d", __FILE__, j->line);
    assert_text_has(r, site);
}

static void thread_exit_holding_plain_lock(void **state)
{
    (void)state;
    static NDIS_SPIN_LOCK lock; /* stays "held" forever: not reused */
    NdisAllocateSpinLock(&lock);
    struct exit_job j = { .lock = &lock };
    run_exit_job(&j);
    expect_exit_report(&lock, &j);
}

static void thread_exit_holding_dpr_lock(void **state)
{
    (void)state;
    static NDIS_SPIN_LOCK lock;
    NdisAllocateSpinLock(&lock);
    struct exit_job j = { .lock = &lock, .dpr = true };
    run_exit_job(&j);
    expect_exit_report(&lock, &j);
}

static void thread_exit_holding_ke_lock(void **state)
{
    (void)state;
    static KSPIN_LOCK lock;
    KeInitializeSpinLock(&lock);
    struct exit_job j = { .klock = &lock };
    run_exit_job(&j);
    expect_exit_report(&lock, &j);
}

static void thread_exit_after_release_is_fine(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK lock;
    KSPIN_LOCK klock;
    NdisAllocateSpinLock(&lock);
    KeInitializeSpinLock(&klock);
    struct exit_job plain = { .lock = &lock, .release = true };
    struct exit_job dpr = { .lock = &lock, .release = true, .dpr = true };
    struct exit_job ke = { .klock = &klock, .release = true };
    run_exit_job(&plain);
    run_exit_job(&dpr);
    run_exit_job(&ke);
    assert_int_equal(lock.SpinLock, 0);
    assert_no_reports();
}

/* ======================================================================================== */
/* FREE_MEMORY_MISMATCH, MEMORY_OVERRUN, the fill pattern                                   */
/* ======================================================================================== */

static void assert_alloc_site(const struct record *r, int alloc_line)
{
    char site[600];
    assert_string_equal(r->alloc_file, __FILE__);
    assert_int_equal(r->alloc_line, alloc_line);
    snprintf(site, sizeof(site), "  allocated at: %s:%d", __FILE__, alloc_line);
    assert_text_has(r, site);
}

static void free_memory_wrong_length(void **state)
{
    (void)state;
    PVOID va;
    ULONGLONG before = tag_outstanding(TEST_TAG);
    int alloc_line = __LINE__ + 1;
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 64, TEST_TAG), NDIS_STATUS_SUCCESS);
    int line = __LINE__ + 1;
    NdisFreeMemory(va, 63, 0);
    const struct record *r = expect_one("FREE_MEMORY_MISMATCH", "NdisFreeMemory", va, line);
    assert_alloc_site(r, alloc_line);
    assert_int_equal(tag_outstanding(TEST_TAG), before); /* freed all the same */
}

static void free_memory_wrong_flags(void **state)
{
    (void)state;
    PVOID va;
    int alloc_line = __LINE__ + 1;
    assert_int_equal(NdisAllocateMemory(&va, 64, 0, Highest), NDIS_STATUS_SUCCESS);
    int line = __LINE__ + 1;
    NdisFreeMemory(va, 64, NDIS_MEMORY_NONCACHED);
    const struct record *r = expect_one("FREE_MEMORY_MISMATCH", "NdisFreeMemory", va, line);
    assert_alloc_site(r, alloc_line);

    clear_records();
    assert_int_equal(NdisAllocateMemory(&va, 64, NDIS_MEMORY_CONTIGUOUS, Highest),
                     NDIS_STATUS_SUCCESS);
    line = __LINE__ + 1;
    NdisFreeMemory(va, 64, 0);
    expect_one("FREE_MEMORY_MISMATCH", "NdisFreeMemory", va, line);
}

/* One event, one report, however many fields are wrong. */
static void free_memory_wrong_length_and_flags_reports_once(void **state)
{
    (void)state;
    PVOID va;
    assert_int_equal(NdisAllocateMemory(&va, 100, NDIS_MEMORY_NONCACHED, Highest),
                     NDIS_STATUS_SUCCESS);
    int line = __LINE__ + 1;
    NdisFreeMemory(va, 10, NDIS_MEMORY_CONTIGUOUS);
    expect_one("FREE_MEMORY_MISMATCH", "NdisFreeMemory", va, line);
}

static void free_memory_matching_is_fine(void **state)
{
    (void)state;
    static const UINT flags[] = { 0, NDIS_MEMORY_CONTIGUOUS, NDIS_MEMORY_NONCACHED,
                                  NDIS_MEMORY_CONTIGUOUS | NDIS_MEMORY_NONCACHED };
    PVOID va;
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        assert_int_equal(NdisAllocateMemory(&va, 77, flags[i], Highest), NDIS_STATUS_SUCCESS);
        NdisFreeMemory(va, 77, flags[i]);
    }
    assert_int_equal(NdisAllocateMemoryWithTag(&va, 0, TEST_TAG), NDIS_STATUS_SUCCESS);
    NdisFreeMemory(va, 0, 0);
    assert_no_reports();
}

static void overrun_at(UINT length, UINT past_end)
{
    PUCHAR va;
    ULONGLONG before = tag_outstanding(TEST_TAG);
    int alloc_line = __LINE__ + 1;
    assert_int_equal(NdisAllocateMemoryWithTag((PVOID *)&va, length, TEST_TAG), NDIS_STATUS_SUCCESS);
    memset(va, 0x11, length);
    va[length + past_end] ^= 0xFF; /* inside the 16 guard bytes checked mode adds */
    int line = __LINE__ + 1;
    NdisFreeMemory(va, length, 0);
    const struct record *r = expect_one("MEMORY_OVERRUN", "NdisFreeMemory", va, line);
    assert_alloc_site(r, alloc_line);
    assert_int_equal(tag_outstanding(TEST_TAG), before);
    clear_records();
}

static void overrun_one_byte_past_the_block(void **state)
{
    (void)state;
    overrun_at(40, 0);
    overrun_at(1, 0);
    overrun_at(0, 0);
}

static void overrun_at_the_last_guard_byte(void **state)
{
    (void)state;
    overrun_at(40, 15);
}

static void writing_the_whole_block_is_not_an_overrun(void **state)
{
    (void)state;
    PUCHAR va;
    for (UINT len = 0; len < 40; len++) {
        assert_int_equal(NdisAllocateMemoryWithTag((PVOID *)&va, len, TEST_TAG), NDIS_STATUS_SUCCESS);
        memset(va, 0xFF, len);
        NdisFreeMemory(va, len, 0);
    }
    assert_no_reports();
}

static void assert_filled(const UCHAR *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0xA5)
            fail_msg("byte %zu of a new block is 0x%02X, not 0xA5", i, p[i]);
}

static void new_memory_is_filled_with_a5(void **state)
{
    (void)state;
    PUCHAR va;
    assert_int_equal(NdisAllocateMemoryWithTag((PVOID *)&va, 100, TEST_TAG), NDIS_STATUS_SUCCESS);
    assert_filled(va, 100);
    memset(va, 0, 100);
    NdisFreeMemory(va, 100, 0);
    /* A recycled block is filled again, not handed back with the old contents. */
    assert_int_equal(NdisAllocateMemoryWithTag((PVOID *)&va, 100, TEST_TAG), NDIS_STATUS_SUCCESS);
    assert_filled(va, 100);
    NdisFreeMemory(va, 100, 0);
    assert_int_equal(NdisAllocateMemory((PVOID *)&va, 4097, NDIS_MEMORY_NONCACHED, Highest),
                     NDIS_STATUS_SUCCESS);
    assert_filled(va, 4097);
    assert_int_equal(((uintptr_t)va) % 16, 0);
    NdisFreeMemory(va, 4097, NDIS_MEMORY_NONCACHED);
    assert_no_reports();
}

/* Blocks cross the switch both ways: made unchecked and freed checked (no guard to find), made
 * checked and freed unchecked (the guard layout must still be freed correctly). */
static void memory_crossing_the_switch(void **state)
{
    (void)state;
    PUCHAR va;
    ULONGLONG before = tag_outstanding(TEST_TAG);
    assert_int_equal(LibNdisVerifierConfigure("none"), NDIS_STATUS_SUCCESS);
    assert_int_equal(NdisAllocateMemoryWithTag((PVOID *)&va, 24, TEST_TAG), NDIS_STATUS_SUCCESS);
    memset(va, 0x3C, 24);
    assert_int_equal(LibNdisVerifierConfigure("all,abort=none"), NDIS_STATUS_SUCCESS);
    NdisFreeMemory(va, 24, 0);
    assert_int_equal(tag_outstanding(TEST_TAG), before);
    assert_no_reports();

    assert_int_equal(NdisAllocateMemoryWithTag((PVOID *)&va, 24, TEST_TAG), NDIS_STATUS_SUCCESS);
    assert_int_equal(LibNdisVerifierConfigure("none"), NDIS_STATUS_SUCCESS);
    NdisFreeMemory(va, 24, 0);
    assert_int_equal(tag_outstanding(TEST_TAG), before);
    assert_int_equal(LibNdisVerifierConfigure("all,abort=none"), NDIS_STATUS_SUCCESS);
    assert_no_reports();
}

/* A call that bypasses the <ndis.h> macros (a function pointer, as in a dispatch table) has no
 * call site: the report says so rather than reusing the site of an earlier call. */
static void call_through_a_function_pointer_has_no_call_site(void **state)
{
    (void)state;
    VOID (*acquire)(PNDIS_SPIN_LOCK) = NdisDprAcquireSpinLock;
    NDIS_SPIN_LOCK l;
    NdisAllocateSpinLock(&l);
    NdisAcquireSpinLock(&l); /* a macro call just before: its site must not leak into the next */
    NdisReleaseSpinLock(&l);
    acquire(&l);
    KIRQL old = raise_to(DISPATCH_LEVEL);
    NdisDprReleaseSpinLock(&l);
    KeLowerIrql(old);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
    assert_int_equal(record_count, 1);
    assert_string_equal(records[0].rule, "DPR_NOT_AT_DISPATCH");
    assert_string_equal(records[0].function, "NdisDprAcquireSpinLock");
    assert_ptr_equal(records[0].object, &l);
    assert_string_equal(records[0].call_file, "(null)");
}

/* ======================================================================================== */
/* configuration                                                                            */
/* ======================================================================================== */

static int dpr_acquire_at_passive(NDIS_SPIN_LOCK *l)
{
    int line = __LINE__ + 1;
    NdisDprAcquireSpinLock(l);
    KIRQL old = raise_to(DISPATCH_LEVEL);
    NdisDprReleaseSpinLock(l);
    KeLowerIrql(old);
    return line;
}

static void config_valid_specs_succeed(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "1", "none", "0", "all", "DOUBLE_FREE", "-LEAK", "DOUBLE_FREE=report",
        "DOUBLE_FREE=abort", "LEAK=off", "abort=none", "abort=default", "abort=all",
        "quarantine=8", "quarantine=0", "backtrace=0", "backtrace=1", "fault=buffer+packet",
        "fault=all", "fault_rate=0", "fault_rate=1", "fault_rate=0.25", "fault_after=3",
        "fault_seed=77", "fault_tag=ABCD", "all,abort=none,-LEAK,quarantine=16",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        print_message("  spec \"%s\"\n", valid[i]);
        assert_int_equal(LibNdisVerifierConfigure(valid[i]), NDIS_STATUS_SUCCESS);
    }
    /* Leave no fault injection behind for the tests that follow. */
    assert_int_equal(LibNdisVerifierConfigure("none,quarantine=256,backtrace=1"), NDIS_STATUS_SUCCESS);
    assert_int_equal(LibNdisVerifierConfigure("all,abort=none"), NDIS_STATUS_SUCCESS);
}

static void config_enabled_follows_the_spec(void **state)
{
    (void)state;
    assert_int_equal(LibNdisVerifierConfigure("none"), NDIS_STATUS_SUCCESS);
    assert_false(LibNdisVerifierEnabled());
    assert_int_equal(LibNdisVerifierConfigure("1"), NDIS_STATUS_SUCCESS);
    assert_true(LibNdisVerifierEnabled());
    assert_int_equal(LibNdisVerifierConfigure("0"), NDIS_STATUS_SUCCESS);
    assert_false(LibNdisVerifierEnabled());
    assert_int_equal(LibNdisVerifierConfigure("DPR_NOT_AT_DISPATCH"), NDIS_STATUS_SUCCESS);
    assert_true(LibNdisVerifierEnabled());
    assert_int_equal(LibNdisVerifierConfigure("all,abort=none"), NDIS_STATUS_SUCCESS);
    assert_true(LibNdisVerifierEnabled());
}

static void config_invalid_specs_change_nothing(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "bogus", "fault_rate=2", "quarantine=x", "fault_rate=-0.5", "fault_rate=abc",
        "DOUBLE_FREE=sometimes", "abort=maybe", "-NO_SUCH_RULE", "fault=bogus", "backtrace=2",
        "fault_after=x", "fault_seed=", "all,bogus", "-DPR_NOT_AT_DISPATCH,fault_rate=2",
    };
    NDIS_SPIN_LOCK l;
    NdisAllocateSpinLock(&l);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        print_message("  spec \"%s\"\n", invalid[i]);
        assert_int_equal(LibNdisVerifierConfigure(invalid[i]), NDIS_STATUS_INVALID_PARAMETER);
    }
    /* The valid half of "-DPR_NOT_AT_DISPATCH,fault_rate=2" was not applied either. */
    int line = dpr_acquire_at_passive(&l);
    expect_one("DPR_NOT_AT_DISPATCH", "NdisDprAcquireSpinLock", &l, line);

    /* Off stays off when "all,bogus" is refused. */
    assert_int_equal(LibNdisVerifierConfigure("none"), NDIS_STATUS_SUCCESS);
    assert_int_equal(LibNdisVerifierConfigure("all,bogus"), NDIS_STATUS_INVALID_PARAMETER);
    assert_false(LibNdisVerifierEnabled());
    assert_int_equal(LibNdisVerifierConfigure("all,abort=none"), NDIS_STATUS_SUCCESS);
}

static void config_rule_turned_off_does_not_report(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK l;
    NdisAllocateSpinLock(&l);
    static const char *const off[] = { "-DPR_NOT_AT_DISPATCH", "DPR_NOT_AT_DISPATCH=off" };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(LibNdisVerifierConfigure("all,abort=none"), NDIS_STATUS_SUCCESS);
        assert_int_equal(LibNdisVerifierConfigure(off[i]), NDIS_STATUS_SUCCESS);
        clear_records();
        dpr_acquire_at_passive(&l);
        assert_no_reports();
        /* The other rules are still on. */
        NdisAcquireSpinLock(&l);
        int line = __LINE__ + 1;
        NdisDprReleaseSpinLock(&l);
        KeLowerIrql(PASSIVE_LEVEL);
        expect_one("SPINLOCK_WRONG_KIND", "NdisDprReleaseSpinLock", &l, line);
    }
    clear_records();
    /* And back on. */
    assert_int_equal(LibNdisVerifierConfigure("DPR_NOT_AT_DISPATCH=report"), NDIS_STATUS_SUCCESS);
    int line = dpr_acquire_at_passive(&l);
    expect_one("DPR_NOT_AT_DISPATCH", "NdisDprAcquireSpinLock", &l, line);
}

static void config_single_rule_only(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK l;
    NdisAllocateSpinLock(&l);
    assert_int_equal(LibNdisVerifierConfigure("none,DPR_NOT_AT_DISPATCH"), NDIS_STATUS_SUCCESS);
    clear_records();
    NdisAcquireSpinLock(&l);
    NdisDprReleaseSpinLock(&l); /* SPINLOCK_WRONG_KIND, which is off */
    KeLowerIrql(PASSIVE_LEVEL);
    assert_no_reports();
    int line = dpr_acquire_at_passive(&l);
    expect_one("DPR_NOT_AT_DISPATCH", "NdisDprAcquireSpinLock", &l, line);
}

/* DOUBLE_FREE aborts by default; =report turns that into a report that says it does not. */
static void config_policy_report_overrides_abort(void **state)
{
    (void)state;
    NDIS_STATUS st;
    PNDIS_BUFFER b;
    assert_int_equal(LibNdisVerifierConfigure("all"), NDIS_STATUS_SUCCESS);
    assert_int_equal(LibNdisVerifierConfigure("DOUBLE_FREE=report"), NDIS_STATUS_SUCCESS);
    NdisAllocateBuffer(&st, &b, NULL, data_area, 8);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisFreeBuffer(b);
    int line = __LINE__ + 1;
    NdisFreeBuffer(b);
    expect_one("DOUBLE_FREE", "NdisFreeBuffer", b, line);
}

/* ---- the abort policy, in a child process ---- */

struct child_result {
    int status;
    char err[16384];
};

typedef void (*child_body)(void);

/* Reads to end of file; once `buf` is full it keeps draining so the writer never blocks. */
static void read_all(int fd, char *buf, size_t cap)
{
    size_t used = 0;
    char spill[4096];
    for (;;) {
        bool full = used == cap - 1;
        ssize_t n = full ? read(fd, spill, sizeof(spill)) : read(fd, buf + used, cap - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (!full)
            used += (size_t)n;
    }
    buf[used] = '\0';
}

static void run_child(const char *spec, child_body body, bool keep_callback,
                      struct child_result *out)
{
    int fds[2];
    memset(out, 0, sizeof(*out));
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        if (!keep_callback)
            LibNdisVerifierSetCallback(NULL, NULL);
        if (LibNdisVerifierConfigure(spec) != NDIS_STATUS_SUCCESS)
            _exit(90);
        body();
        exit(0); /* exit(), not _exit(): the verifier's summary is printed at exit */
    }
    close(fds[1]);
    read_all(fds[0], out->err, sizeof(out->err));
    close(fds[0]);
    assert_int_equal(waitpid(pid, &out->status, 0), pid);
}

static NDIS_SPIN_LOCK child_lock;

/* With commit FALSE it only tells the parent the line the child's offending call is on. */
static int child_dpr_call(bool commit)
{
    int line = __LINE__ + 1;
    if (commit) NdisDprAcquireSpinLock(&child_lock);
    return line;
}

static void child_dpr_at_passive(void)
{
    NdisAllocateSpinLock(&child_lock);
    child_dpr_call(true);
    fputs("child: still running after the report\n", stderr);
}

static void assert_child_aborted_with_report(const struct child_result *r)
{
    char want[700];
    if (!WIFSIGNALED(r->status) || WTERMSIG(r->status) != SIGABRT)
        fail_msg("child status 0x%x, expected SIGABRT; stderr:\n%s", r->status, r->err);
    assert_non_null(strstr(r->err, "libndis verifier: DPR_NOT_AT_DISPATCH: "));
    snprintf(want, sizeof(want), "  call: NdisDprAcquireSpinLock at %s:%d", __FILE__,
             child_dpr_call(false));
    if (strstr(r->err, want) == NULL)
        fail_msg("stderr lacks \"%s\":\n%s", want, r->err);
    assert_null(strstr(r->err, "child: still running"));
}

static void abort_policy_kills_the_child_with_sigabrt(void **state)
{
    (void)state;
    struct child_result r;
    run_child("all,abort=none,DPR_NOT_AT_DISPATCH=abort", child_dpr_at_passive, false, &r);
    assert_child_aborted_with_report(&r);
}

static void abort_all_makes_a_report_rule_abort(void **state)
{
    (void)state;
    struct child_result r;
    run_child("all,abort=all", child_dpr_at_passive, false, &r);
    assert_child_aborted_with_report(&r);
}

static void report_policy_lets_the_child_run_on(void **state)
{
    (void)state;
    struct child_result r;
    /* DPR_NOT_AT_DISPATCH is a report-and-continue rule by default. */
    run_child("all", child_dpr_at_passive, false, &r);
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
        fail_msg("child status 0x%x, expected exit 0; stderr:\n%s", r.status, r.err);
    assert_non_null(strstr(r.err, "libndis verifier: DPR_NOT_AT_DISPATCH: "));
    assert_non_null(strstr(r.err, "child: still running"));
    assert_non_null(strstr(r.err, "libndis verifier: summary: "));
}

static VOID child_callback(const LIBNDIS_VERIFIER_REPORT *Report, PVOID Context)
{
    (void)Context;
    fprintf(stderr, "callback: %s aborting=%d\n", Report->Rule, Report->Aborting ? 1 : 0);
}

static void child_with_callback(void)
{
    LibNdisVerifierSetCallback(child_callback, NULL);
    child_dpr_at_passive();
}

/* A callback sees Aborting TRUE, and the process is still ended afterwards. */
static void abort_policy_with_a_callback(void **state)
{
    (void)state;
    struct child_result r;
    run_child("all,abort=none,DPR_NOT_AT_DISPATCH=abort", child_with_callback, true, &r);
    if (!WIFSIGNALED(r.status) || WTERMSIG(r.status) != SIGABRT)
        fail_msg("child status 0x%x, expected SIGABRT; stderr:\n%s", r.status, r.err);
    assert_non_null(strstr(r.err, "callback: DPR_NOT_AT_DISPATCH aborting=1"));
    assert_null(strstr(r.err, "child: still running"));
}

/* stderr reports carry a backtrace unless backtrace=0 leaves it out. */
static void backtrace_switch_on_stderr(void **state)
{
    (void)state;
    struct child_result with, without;
    run_child("all,abort=none,backtrace=1", child_dpr_at_passive, false, &with);
    run_child("all,abort=none,backtrace=0", child_dpr_at_passive, false, &without);
    assert_true(WIFEXITED(with.status) && WEXITSTATUS(with.status) == 0);
    assert_true(WIFEXITED(without.status) && WEXITSTATUS(without.status) == 0);
    const char *a = strstr(with.err, "libndis verifier: DPR_NOT_AT_DISPATCH: ");
    const char *b = strstr(without.err, "libndis verifier: DPR_NOT_AT_DISPATCH: ");
    assert_non_null(a);
    assert_non_null(b);
    /* The report's lines up to the first that follows "call:", in each run. */
    const char *a_end = strstr(strstr(a, "  call: "), "\n");
    const char *b_end = strstr(strstr(b, "  call: "), "\n");
    assert_non_null(a_end);
    assert_non_null(b_end);
    if (strstr(a_end, "backtrace") == NULL && strchr(a_end + 1, '[') == NULL)
        fail_msg("no backtrace after the report with backtrace=1:\n%s", with.err);
    assert_null(strstr(without.err, "backtrace"));
    /* Apart from the backtrace, both reports say the same. */
    assert_int_equal(a_end - a, b_end - b);
    assert_memory_equal(a, b, (size_t)(a_end - a));
}

/* LIBNDIS_VERIFY is read at start-up: re-run this program with it set. */
static void environment_variable_configures_at_start(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv(LIBNDIS_ENV_VERIFY, "DPR_NOT_AT_DISPATCH=abort", 1);
        execl("/proc/self/exe", "test_verifier_sync", ENV_CHILD_ARG, (char *)NULL);
        _exit(91);
    }
    close(fds[1]);
    static char err[16384];
    read_all(fds[0], err, sizeof(err));
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("child status 0x%x, expected SIGABRT; stderr:\n%s", status, err);
    assert_non_null(strstr(err, "libndis verifier: DPR_NOT_AT_DISPATCH: "));
    assert_null(strstr(err, "env child: still running"));
}

/* What the re-run program does: it must be checked without any call to Configure. */
static int env_child_main(void)
{
    NDIS_SPIN_LOCK l;
    if (!LibNdisVerifierEnabled()) {
        fputs("env child: verifier not enabled by " LIBNDIS_ENV_VERIFY "\n", stderr);
        return 3;
    }
    NdisAllocateSpinLock(&l);
    NdisDprAcquireSpinLock(&l);
    fputs("env child: still running\n", stderr);
    return 0;
}

#define V(f) cmocka_unit_test_setup_teardown(f, verifier_on, back_to_passive)

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], ENV_CHILD_ARG) == 0)
        return env_child_main();
    alarm(HANG_GUARD_SECONDS);
    const struct CMUnitTest tests[] = {
        V(irql_allocate_buffer_at_high_level),
        V(irql_allocate_buffer_at_dispatch_is_fine),
        V(irql_allocate_contiguous_memory_at_dispatch),
        V(irql_allocate_flagged_memory_above_passive),
        V(irql_allocate_memory_twins_are_fine),
        V(irql_free_contiguous_memory_at_dispatch),
        V(irql_free_memory_levels_per_flag),
        V(irql_every_call_above_dispatch_reports),
        V(dpr_calls_at_passive_report),
        V(dpr_calls_at_apc_report),
        V(dpr_calls_at_dispatch_are_fine),
        V(release_order_non_lifo_reports_once),
        V(release_order_dpr_locks_non_lifo),
        V(release_order_lifo_is_fine),
        V(release_order_is_per_thread),
        V(wrong_kind_plain_acquire_dpr_release),
        V(wrong_kind_dpr_acquire_plain_release),
        V(wrong_kind_ke_acquire_dpc_release),
        V(wrong_kind_ke_dpc_acquire_plain_release),
        V(wrong_kind_release_of_a_lock_not_held),
        V(wrong_kind_release_of_a_lock_another_thread_holds),
        V(matching_kinds_are_fine),
        V(held_across_call_plain_lock),
        V(held_across_call_dpr_lock),
        V(same_calls_without_a_lock_are_fine),
        V(unlisted_calls_under_a_lock_are_fine),
        V(thread_exit_holding_plain_lock),
        V(thread_exit_holding_dpr_lock),
        V(thread_exit_holding_ke_lock),
        V(thread_exit_after_release_is_fine),
        V(free_memory_wrong_length),
        V(free_memory_wrong_flags),
        V(free_memory_wrong_length_and_flags_reports_once),
        V(free_memory_matching_is_fine),
        V(overrun_one_byte_past_the_block),
        V(overrun_at_the_last_guard_byte),
        V(writing_the_whole_block_is_not_an_overrun),
        V(new_memory_is_filled_with_a5),
        V(memory_crossing_the_switch),
        V(call_through_a_function_pointer_has_no_call_site),
        V(config_valid_specs_succeed),
        V(config_enabled_follows_the_spec),
        V(config_invalid_specs_change_nothing),
        V(config_rule_turned_off_does_not_report),
        V(config_single_rule_only),
        V(config_policy_report_overrides_abort),
        V(abort_policy_kills_the_child_with_sigabrt),
        V(abort_all_makes_a_report_rule_abort),
        V(report_policy_lets_the_child_run_on),
        V(abort_policy_with_a_callback),
        V(backtrace_switch_on_stderr),
        V(environment_variable_configures_at_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
