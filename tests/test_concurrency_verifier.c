/* SPDX-License-Identifier: MIT */
/* test_concurrency_verifier.c - the verifier under threads (run under ThreadSanitizer too): correct
 * allocate/copy/chain/free and spin-lock traffic from four threads gives no report and exact
 * counts, and one double free per thread gives exactly one report each, naming its descriptor. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <ndis.h>
#include <libndis.h>

#define THREADS 4
#define ITERATIONS 1500
#define HANG_GUARD_SECONDS 120
#define WORK_TAG LIBNDIS_TAG('V', 'c', 'o', 'n')
#define DATA_BYTES 512u

/* ---- reports, from any thread ---- */

struct seen {
    char rule[64];
    char function[64];
    void *object;
    char call_file[512];
    int call_line;
    pthread_t thread;
};

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen seen[64];
static unsigned seen_count;

static VOID record(const LIBNDIS_VERIFIER_REPORT *Report, PVOID Context)
{
    (void)Context;
    pthread_mutex_lock(&seen_lock);
    if (seen_count < sizeof(seen) / sizeof(seen[0])) {
        struct seen *s = &seen[seen_count];
        snprintf(s->rule, sizeof(s->rule), "%s", Report->Rule);
        snprintf(s->function, sizeof(s->function), "%s",
                 Report->Function != NULL ? Report->Function : "(null)");
        s->object = Report->Object;
        snprintf(s->call_file, sizeof(s->call_file), "%s",
                 Report->CallFile != NULL ? Report->CallFile : "(null)");
        s->call_line = Report->CallLine;
        s->thread = pthread_self();
    }
    if (seen_count < 4)
        print_message("report: %s\n", Report->Text);
    seen_count++;
    pthread_mutex_unlock(&seen_lock);
}

static unsigned seen_total(void)
{
    pthread_mutex_lock(&seen_lock);
    unsigned n = seen_count;
    pthread_mutex_unlock(&seen_lock);
    return n;
}

static int verifier_on(void **state)
{
    (void)state;
    if (LibNdisVerifierConfigure("none") != NDIS_STATUS_SUCCESS ||
        LibNdisVerifierConfigure("all,abort=none") != NDIS_STATUS_SUCCESS)
        return -1;
    LibNdisVerifierSetCallback(record, NULL);
    LibNdisVerifierResetCounts();
    pthread_mutex_lock(&seen_lock);
    seen_count = 0;
    pthread_mutex_unlock(&seen_lock);
    return 0;
}

static void run_threads(void *(*body)(void *), void *args, size_t arg_size)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, body, (char *)args + (size_t)i * arg_size), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
}

/* ======================================================================================== */
/* correct traffic                                                                          */
/* ======================================================================================== */

struct shared {
    NDIS_HANDLE bpool, ppool;
    NDIS_SPIN_LOCK lock;
    KSPIN_LOCK klock;
    unsigned long counter;  /* under lock */
    unsigned long kcounter; /* under klock */
    PNDIS_PACKET parked;    /* under lock: a packet handed from one thread to the next */
};

struct worker {
    struct shared *sh;
    unsigned id;
    UCHAR data[DATA_BYTES];
    unsigned errors; /* a wrong value seen by this thread; asserted on the main thread */
    unsigned allocation_failures;
};

static void check(struct worker *w, bool ok)
{
    if (!ok)
        w->errors++;
}

/* A packet made of a whole-area descriptor and a sub-range copy of it, queried, copied into
 * memory through the packet, then taken apart again: every call outside any lock. */
static void one_packet(struct worker *w, unsigned i)
{
    struct shared *sh = w->sh;
    NDIS_STATUS st;
    PNDIS_BUFFER whole, part, b;
    PNDIS_PACKET p;
    UINT count, total;
    NdisAllocateBuffer(&st, &whole, sh->bpool, w->data, DATA_BYTES);
    if (st != NDIS_STATUS_SUCCESS) {
        w->allocation_failures++;
        return;
    }
    UINT off = i % 100;
    NdisCopyBuffer(&st, &part, sh->bpool, whole, off, 100);
    check(w, st == NDIS_STATUS_SUCCESS);
    NdisAllocatePacket(&st, &p, sh->ppool);
    if (st != NDIS_STATUS_SUCCESS || part == NULL) {
        w->allocation_failures += st != NDIS_STATUS_SUCCESS;
        if (p != NULL)
            NdisFreePacket(p);
        NdisFreeBuffer(part);
        NdisFreeBuffer(whole);
        return;
    }
    NdisChainBufferAtBack(p, whole);
    NdisChainBufferAtBack(p, part);
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    check(w, count == 2 && total == DATA_BYTES + 100);

    PUCHAR mem;
    check(w, NdisAllocateMemoryWithTag((PVOID *)&mem, DATA_BYTES + 100, WORK_TAG) ==
                 NDIS_STATUS_SUCCESS);
    UINT at = 0, len;
    PVOID va;
    for (b = p->Private.Head; b != NULL; b = b->Next) {
        NdisQueryBufferSafe(b, &va, &len, NormalPagePriority);
        memcpy(mem + at, va, len);
        at += len;
    }
    check(w, at == DATA_BYTES + 100 && memcmp(mem + DATA_BYTES, w->data + off, 100) == 0);
    NdisFreeMemory(mem, DATA_BYTES + 100, 0);

    NdisUnchainBufferAtBack(p, &b);
    check(w, b == part);
    NdisUnchainBufferAtBack(p, &b);
    check(w, b == whole);
    NdisFreePacket(p);
    NdisFreeBuffer(part);
    NdisFreeBuffer(whole);
}

/* Packets move between threads through a slot under the NDIS lock: allocated on one, freed on
 * another, which the verifier's records must follow. */
static void swap_parked(struct worker *w)
{
    struct shared *sh = w->sh;
    NDIS_STATUS st;
    PNDIS_PACKET mine, theirs;
    NdisAllocatePacket(&st, &mine, sh->ppool);
    if (st != NDIS_STATUS_SUCCESS) {
        w->allocation_failures++;
        return;
    }
    NdisAcquireSpinLock(&sh->lock);
    sh->counter++;
    theirs = sh->parked;
    sh->parked = mine;
    NdisReleaseSpinLock(&sh->lock);
    if (theirs != NULL)
        NdisFreePacket(theirs);
}

/* The Dpr and Ke forms, at the level each expects. */
static void dpc_style_locks(struct worker *w)
{
    struct shared *sh = w->sh;
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeAcquireSpinLockAtDpcLevel(&sh->klock);
    sh->kcounter++;
    KeReleaseSpinLockFromDpcLevel(&sh->klock);
    NdisDprAcquireSpinLock(&sh->lock);
    sh->counter++;
    NdisDprReleaseSpinLock(&sh->lock);
    KeLowerIrql(old);
    KeAcquireSpinLock(&sh->klock, &old);
    NdisDprAcquireSpinLock(&sh->lock); /* nested, released in reverse order */
    sh->kcounter++;
    sh->counter++;
    NdisDprReleaseSpinLock(&sh->lock);
    KeReleaseSpinLock(&sh->klock, old);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (unsigned i = 0; i < DATA_BYTES; i++)
        w->data[i] = (UCHAR)(w->id * 37 + i);
    for (unsigned i = 0; i < ITERATIONS; i++) {
        one_packet(w, i);
        swap_parked(w);
        dpc_style_locks(w);
    }
    check(w, KeGetCurrentIrql() == PASSIVE_LEVEL);
    return NULL;
}

static void shared_make(struct shared *sh, UINT packets)
{
    NDIS_STATUS st;
    memset(sh, 0, sizeof(*sh));
    NdisAllocateBufferPool(&st, &sh->bpool, 4 * THREADS);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAllocatePacketPool(&st, &sh->ppool, packets, 0);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAllocateSpinLock(&sh->lock);
    KeInitializeSpinLock(&sh->klock);
}

static void run_correct_traffic(UINT packets)
{
    static struct shared sh;
    static struct worker w[THREADS];
    LIBNDIS_TAG_USAGE before, after;
    assert_true(LibNdisVerifierEnabled());
    LibNdisQueryMemoryTag(WORK_TAG, &before);
    shared_make(&sh, packets);
    memset(w, 0, sizeof(w));
    for (unsigned i = 0; i < THREADS; i++) {
        w[i].sh = &sh;
        w[i].id = i;
    }
    run_threads(worker_main, w, sizeof(w[0]));

    for (unsigned i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].errors, 0);
        assert_int_equal(w[i].allocation_failures, 0);
    }
    assert_int_equal(sh.counter, 3ul * THREADS * ITERATIONS);
    assert_int_equal(sh.kcounter, 2ul * THREADS * ITERATIONS);
    assert_int_equal(sh.lock.SpinLock, 0);
    assert_int_equal(sh.klock, 0);
    assert_non_null(sh.parked);
    NdisFreePacket(sh.parked);
    assert_int_equal(LibNdisVerifierCheckLeaks(), 0);
    LibNdisQueryMemoryTag(WORK_TAG, &after);
    assert_int_equal(after.OutstandingAllocations, before.OutstandingAllocations);
    assert_int_equal(after.TotalAllocations, before.TotalAllocations + (ULONGLONG)THREADS * ITERATIONS);
    /* Every packet and descriptor was freed: none is "out", quarantine or not. */
    LIBNDIS_POOL_INFO info;
    assert_int_equal(LibNdisQueryBufferPool(sh.bpool, &info), NDIS_STATUS_SUCCESS);
    UINT packets_out = NdisPacketPoolUsage(sh.ppool);
    NdisFreePacketPool(sh.ppool);
    NdisFreeBufferPool(sh.bpool);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 0);
    assert_int_equal(seen_total(), 0);
    assert_int_equal(LibNdisVerifierFaultsInjected(), 0);
    assert_int_equal(packets_out, 0);
    assert_int_equal(info.InUse, 0);
}

static void correct_traffic_gives_no_report(void **state)
{
    (void)state;
    /* Room for every live packet and for the whole quarantine. */
    run_correct_traffic(2 * THREADS + 300);
}

/* A packet pool sized for what the code holds at once (one per thread in one_packet, one per
 * thread between swaps, one parked) must keep working when the verifier is on. */
static void correct_traffic_with_a_packet_pool_sized_to_its_need(void **state)
{
    (void)state;
    run_correct_traffic(2 * THREADS + 1);
}

/* ======================================================================================== */
/* one double free per thread                                                               */
/* ======================================================================================== */

struct doubler {
    NDIS_HANDLE pool;
    pthread_barrier_t *barrier;
    UCHAR data[64];
    PNDIS_BUFFER buffer;
    int line;
    pthread_t self;
};

static void *free_twice(void *arg)
{
    struct doubler *d = arg;
    NDIS_STATUS st;
    d->self = pthread_self();
    NdisAllocateBuffer(&st, &d->buffer, d->pool, d->data, sizeof(d->data));
    pthread_barrier_wait(d->barrier); /* all four live at once: four distinct descriptors */
    NdisFreeBuffer(d->buffer);
    d->line = __LINE__ + 1;
    NdisFreeBuffer(d->buffer);
    return NULL;
}

static void each_thread_double_free_is_reported_once(void **state)
{
    (void)state;
    static struct doubler d[THREADS];
    pthread_barrier_t barrier;
    NDIS_STATUS st;
    NDIS_HANDLE pool;
    NdisAllocateBufferPool(&st, &pool, THREADS);
    assert_int_equal(pthread_barrier_init(&barrier, NULL, THREADS), 0);
    memset(d, 0, sizeof(d));
    for (int i = 0; i < THREADS; i++) {
        d[i].pool = pool;
        d[i].barrier = &barrier;
    }
    run_threads(free_twice, d, sizeof(d[0]));
    pthread_barrier_destroy(&barrier);

    assert_int_equal(LibNdisVerifierReportCount("DOUBLE_FREE"), THREADS);
    assert_int_equal(LibNdisVerifierReportCount(NULL), THREADS);
    assert_int_equal(seen_total(), THREADS);
    for (int i = 0; i < THREADS; i++) {
        assert_non_null(d[i].buffer);
        unsigned matches = 0;
        for (int r = 0; r < THREADS; r++) {
            if (seen[r].object != d[i].buffer)
                continue;
            matches++;
            assert_string_equal(seen[r].rule, "DOUBLE_FREE");
            assert_string_equal(seen[r].function, "NdisFreeBuffer");
            assert_string_equal(seen[r].call_file, __FILE__);
            assert_int_equal(seen[r].call_line, d[i].line);
            /* delivered on the thread that found it */
            assert_true(pthread_equal(seen[r].thread, d[i].self));
        }
        assert_int_equal(matches, 1);
    }
    /* Nothing else went wrong: the pool is whole and nothing is out. */
    assert_int_equal(LibNdisVerifierCheckLeaks(), 0);
    NdisFreeBufferPool(pool);
    assert_int_equal(LibNdisVerifierReportCount(NULL), THREADS);
}

/* Locks held across the join of other threads are theirs alone: each thread exiting while
 * holding its own lock is one report per thread, from that thread. */
struct holder {
    NDIS_SPIN_LOCK lock;
};

static void *acquire_and_exit(void *arg)
{
    struct holder *h = arg;
    NdisAcquireSpinLock(&h->lock);
    return NULL;
}

static void each_thread_exit_with_a_lock_is_reported_once(void **state)
{
    (void)state;
    static struct holder h[THREADS]; /* the locks stay held: not reused afterwards */
    for (int i = 0; i < THREADS; i++)
        NdisAllocateSpinLock(&h[i].lock);
    run_threads(acquire_and_exit, h, sizeof(h[0]));
    assert_int_equal(LibNdisVerifierReportCount("SPINLOCK_HELD_AT_THREAD_EXIT"), THREADS);
    assert_int_equal(LibNdisVerifierReportCount(NULL), THREADS);
    for (int i = 0; i < THREADS; i++) {
        unsigned matches = 0;
        for (int r = 0; r < THREADS; r++)
            matches += seen[r].object == &h[i].lock;
        assert_int_equal(matches, 1);
    }
}

/* ======================================================================================== */
/* copies from one shared chain into a strict pool sized to the need                        */
/* ======================================================================================== */

/* Each thread holds one copy of at most two descriptors at a time, and the strict pool is
 * declared for little more than that: with the quarantine holding every freed descriptor, each
 * copy depends on the quarantine giving them back while the other threads copy, check and free
 * theirs. Every copy must still succeed and describe exactly the bytes asked for. */
#define COPY_SPLIT 300u /* the source chain: [0, COPY_SPLIT) then [COPY_SPLIT, DATA_BYTES) */

struct copier {
    PNDIS_BUFFER chain;
    NDIS_HANDLE pool;
    const UCHAR *base;
    unsigned seed;
    unsigned errors;
    unsigned failures;
};

/* The copy covers [off, off + len) of the chain: one descriptor per side of the split. */
static bool copy_is_exact(PNDIS_BUFFER head, const UCHAR *base, UINT off, UINT len)
{
    UINT want = (off < COPY_SPLIT && off + len > COPY_SPLIT) ? 2 : 1, n = 0, total = 0;
    const UCHAR *expect = base + off;
    for (PNDIS_BUFFER b = head; b != NULL; b = b->Next, n++) {
        if (n == want || MmGetSystemAddressForMdlSafe(b, NormalPagePriority) != expect)
            return false;
        expect += MmGetMdlByteCount(b);
        total += MmGetMdlByteCount(b);
    }
    return n == want && total == len;
}

static void *copy_loop(void *arg)
{
    struct copier *c = arg;
    for (unsigned i = 0; i < ITERATIONS; i++) {
        c->seed = c->seed * 1103515245u + 12345u;
        UINT off = (c->seed >> 8) % (DATA_BYTES - 1);
        UINT len = 1 + (c->seed >> 20) % (DATA_BYTES - off);
        NDIS_STATUS st;
        PNDIS_BUFFER copy = NULL;
        NdisCopyBuffer(&st, &copy, c->pool, c->chain, off, len);
        if (st != NDIS_STATUS_SUCCESS || copy == NULL) {
            c->failures++;
            continue;
        }
        if (!copy_is_exact(copy, c->base, off, len))
            c->errors++;
        while (copy != NULL) {
            PNDIS_BUFFER next = copy->Next;
            NdisFreeBuffer(copy);
            copy = next;
        }
    }
    return NULL;
}

static void copies_into_a_strict_pool_sized_to_the_need(void **state)
{
    (void)state;
    static UCHAR area[DATA_BYTES];
    static struct copier c[THREADS];
    NDIS_STATUS st;
    NDIS_HANDLE src_pool, pool;
    PNDIS_BUFFER first, second;
    NdisAllocateBufferPool(&st, &src_pool, 2);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAllocateBuffer(&st, &first, src_pool, area, COPY_SPLIT);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAllocateBuffer(&st, &second, src_pool, area + COPY_SPLIT, DATA_BYTES - COPY_SPLIT);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    first->Next = second;
    NdisAllocateBufferPool(&st, &pool, 2 * THREADS + 1);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, TRUE), NDIS_STATUS_SUCCESS);
    memset(c, 0, sizeof(c));
    for (unsigned i = 0; i < THREADS; i++)
        c[i] = (struct copier){.chain = first, .pool = pool, .base = area, .seed = 17 + i};
    run_threads(copy_loop, c, sizeof(c[0]));

    for (unsigned i = 0; i < THREADS; i++) {
        assert_int_equal(c[i].failures, 0);
        assert_int_equal(c[i].errors, 0);
    }
    LIBNDIS_POOL_INFO info;
    assert_int_equal(LibNdisQueryBufferPool(pool, &info), NDIS_STATUS_SUCCESS);
    assert_int_equal(info.InUse, 0);
    assert_true(info.StorageDescriptors <= 2 * THREADS + 1);
    first->Next = NULL;
    NdisFreeBuffer(second);
    NdisFreeBuffer(first);
    assert_int_equal(LibNdisVerifierCheckLeaks(), 0);
    NdisFreeBufferPool(pool);
    NdisFreeBufferPool(src_pool);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 0);
    assert_int_equal(seen_total(), 0);
}

int main(void)
{
    alarm(HANG_GUARD_SECONDS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(correct_traffic_gives_no_report, verifier_on),
        cmocka_unit_test_setup(correct_traffic_with_a_packet_pool_sized_to_its_need, verifier_on),
        cmocka_unit_test_setup(each_thread_double_free_is_reported_once, verifier_on),
        cmocka_unit_test_setup(each_thread_exit_with_a_lock_is_reported_once, verifier_on),
        cmocka_unit_test_setup(copies_into_a_strict_pool_sized_to_the_need, verifier_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
