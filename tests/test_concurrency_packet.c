/* SPDX-License-Identifier: MIT */
/* Packet pools under real concurrency: bursts against a pool's limit (Dpr forms at DISPATCH_LEVEL
 * included), allocate-here/free-there through a queue with buffers chained, exhaustion exact to
 * the packet even when the free packets sit in other threads' caches, and retirement while other
 * threads still hold packets. Built to run clean under ThreadSanitizer. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

#include "live_table.h"
#include "test_util.h"

#define THREADS 4
#define PRL 16                 /* ProtocolReservedLength of every pool here */
#define BURST_BASE 24
#define BURST_OVERFLOW 8
#define BURST_LIMIT (BURST_BASE + BURST_OVERFLOW)
#define BURST_ROUNDS 15000     /* per thread; bursts of 1..16 packets */
#define BURST_MAX 16
#define QUEUE_ITEMS 50000      /* per producer */
#define QUEUE_CAP 256
#define EXACT_N 64
#define EXACT_ROUNDS 100       /* per pool shape */
#define RETIRE_ROUNDS 300
#define RETIRE_HOLD 6          /* per thread */
#define DEADLINE_SECONDS 50    /* a livelock fails the test instead of hanging ctest */

#define BACKING_SIZE (8 * 4096)
static _Alignas(4096) uint8_t backing[BACKING_SIZE];
static uint64_t base_seed;
static struct timespec started;

/* ---- errors from worker threads (cmocka's asserts belong to the main thread) ---- */

static atomic_ulong errors;
static pthread_mutex_t first_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[256];

static void report(const char *fmt, ...)
{
    if (atomic_fetch_add(&errors, 1) != 0)
        return;
    pthread_mutex_lock(&first_error_lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first_error, sizeof(first_error), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&first_error_lock);
}

static void assert_no_errors(void)
{
    unsigned long n = atomic_load(&errors);
    pthread_mutex_lock(&first_error_lock);
    if (n != 0)
        fail_msg("%lu error(s) in worker threads; first: %s", n, first_error);
    pthread_mutex_unlock(&first_error_lock);
}

static bool past_deadline(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec - started.tv_sec > DEADLINE_SECONDS;
}

/* ---- per-thread random numbers (splitmix64) ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnd(rng *r) { return test_splitmix64(&r->s); }

static uint32_t below(rng *r, uint32_t n) { return test_below(&r->s, n); }

static rng thread_rng(int test, int idx)
{
    rng r = { base_seed ^ ((uint64_t)test << 40) ^ ((uint64_t)idx << 20) };
    rnd(&r);
    return r;
}

/* ---- "never live twice" (live_table.h), keyed by packet or descriptor address ---- */

static void mark_live(const void *obj)
{
    const char *wrong = live_mark(obj, true);
    if (wrong != NULL)
        report("%p %s", obj, wrong);
}

static void mark_dead(const void *obj)
{
    const char *wrong = live_mark(obj, false);
    if (wrong != NULL)
        report("%p %s", obj, wrong);
}

/* ---- packets ---- */

/* What a fresh packet must look like (decision 14), checked on the fields a race could spoil. */
static void check_fresh(PNDIS_PACKET p, NDIS_HANDLE pool)
{
    static const uint8_t zero[PRL];
    if (p->Private.Head != NULL || p->Private.Pool != pool || p->Private.ValidCounts != TRUE ||
        p->Private.Count != 0 || p->Private.TotalLength != 0 ||
        p->Private.NdisPacketFlags != fPACKET_ALLOCATED_BY_NDIS ||
        memcmp(p->ProtocolReserved, zero, PRL) != 0 ||
        NDIS_OOB_DATA_FROM_PACKET(p)->Status != 0 || NDIS_GET_PACKET_HEADER_SIZE(p) != 0)
        report("packet %p not fresh on allocation", (void *)p);
}

typedef struct stamp {
    uint32_t owner;
    uint32_t seq;
    uint64_t check;
} stamp;
_Static_assert(sizeof(stamp) <= PRL, "a stamp fits ProtocolReserved");

static uint64_t stamp_check(uint32_t owner, uint32_t seq, const void *pkt)
{
    return ((uint64_t)owner << 48) ^ ((uint64_t)seq * 0x9E3779B97F4A7C15ull) ^ (uintptr_t)pkt;
}

/* Written right after allocation, verified right before the free: two holders of one packet, or
 * a packet zeroed while held, both show up as a broken stamp. */
static void stamp_put(PNDIS_PACKET p, uint32_t owner, uint32_t seq)
{
    stamp s = { owner, seq, stamp_check(owner, seq, p) };
    memcpy(p->ProtocolReserved, &s, sizeof(s));
}

static bool stamp_ok(PNDIS_PACKET p, stamp *out)
{
    stamp s;
    memcpy(&s, p->ProtocolReserved, sizeof(s));
    if (out != NULL)
        *out = s;
    return s.check == stamp_check(s.owner, s.seq, p);
}

enum alloc_form { FORM_PLAIN, FORM_DPR, FORM_DPR_NONINTERLOCKED };

/* The Dpr forms are called at DISPATCH_LEVEL, as a DPC would. The NonInterlocked ones are
 * documented as needing the caller's serialization; libndis makes them the same thread-safe
 * call, and using them unserialized here proves it. */
static void alloc_packet(enum alloc_form form, NDIS_STATUS *st, PNDIS_PACKET *p, NDIS_HANDLE pool)
{
    switch (form) {
    case FORM_DPR: NdisDprAllocatePacket(st, p, pool); break;
    case FORM_DPR_NONINTERLOCKED: NdisDprAllocatePacketNonInterlocked(st, p, pool); break;
    default: NdisAllocatePacket(st, p, pool); break;
    }
}

static void free_packet(enum alloc_form form, PNDIS_PACKET p)
{
    switch (form) {
    case FORM_DPR: NdisDprFreePacket(p); break;
    case FORM_DPR_NONINTERLOCKED: NdisDprFreePacketNonInterlocked(p); break;
    default: NdisFreePacket(p); break;
    }
}

static KIRQL enter_form(enum alloc_form form)
{
    KIRQL old = PASSIVE_LEVEL;
    if (form != FORM_PLAIN) {
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        if (old != PASSIVE_LEVEL || KeGetCurrentIrql() != DISPATCH_LEVEL)
            report("raise: old %u, now %u", old, KeGetCurrentIrql());
    }
    return old;
}

static void leave_form(enum alloc_form form, KIRQL old)
{
    if (form != FORM_PLAIN) {
        KeLowerIrql(old);
        if (KeGetCurrentIrql() != PASSIVE_LEVEL)
            report("lower: now %u", KeGetCurrentIrql());
    }
}

static NDIS_HANDLE make_pool(UINT n, UINT overflow)
{
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    NDIS_HANDLE pool = NULL;
    NdisAllocatePacketPoolEx(&st, &pool, n, overflow, PRL);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    assert_non_null(pool);
    return pool;
}

typedef struct worker {
    pthread_t tid;
    int idx;
    void *arg;
} worker;

static void run_workers(void *(*fn)(void *), void *arg, worker *w, int n)
{
    for (int i = 0; i < n; i++) {
        w[i].idx = i;
        w[i].arg = arg;
        assert_int_equal(pthread_create(&w[i].tid, NULL, fn, &w[i]), 0);
    }
}

static void join_workers(worker *w, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
}

/* ---- (a) bursts against the limit ----
 *
 * `out` is incremented after each successful allocation and decremented before each free, so it
 * never exceeds the packets the pool has out: asserting out <= limit after every increment is
 * exact, with no slack. For RESOURCES the bound has to allow for other threads in flight.
 * `allocs` and `frees` count the same events cumulatively. The contract makes RESOURCES mean
 * "exhausted", so there is an instant D inside the failing call at which all `limit` packets
 * are out. Each of them is then either counted (allocs done, frees not) or held by another
 * thread between its pool call and its counter update, and each of the other THREADS-1 threads
 * is in at most one such window at a time. Hence
 *     limit <= allocs(D) - frees(D) + (THREADS - 1) <= allocs(after) - frees(before) + THREADS - 1
 * with frees read before the call and allocs after it. Asserted exactly so:
 *     allocs(after) - frees(before) >= limit - (THREADS - 1)   (here 32 - 3 = 29).
 * Runs reach 29 regularly, so the bound is tight; going below it would mean a RESOURCES answer
 * given while the pool was never exhausted during the call. */

typedef struct burst_ctx {
    NDIS_HANDLE pool;
    atomic_int out;
    atomic_ulong allocs, frees, resources, successes, dpr_calls;
    atomic_int max_out;
    atomic_int min_seen; /* smallest allocs(after) - frees(before) over the RESOURCES answers */
} burst_ctx;

static void note_max(atomic_int *max, int v)
{
    int m = atomic_load(max);
    while (v > m && !atomic_compare_exchange_weak(max, &m, v)) {
    }
}

static void note_min(atomic_int *min, int v)
{
    int m = atomic_load(min);
    while (v < m && !atomic_compare_exchange_weak(min, &m, v)) {
    }
}

static bool burst_alloc(burst_ctx *c, enum alloc_form form, PNDIS_PACKET *slot, uint32_t owner,
                        uint32_t seq)
{
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    PNDIS_PACKET p = (PNDIS_PACKET)(uintptr_t)1;
    unsigned long frees_before = atomic_load(&c->frees);
    alloc_packet(form, &st, &p, c->pool);
    if (st == NDIS_STATUS_RESOURCES) {
        unsigned long allocs_after = atomic_load(&c->allocs);
        if (p != NULL)
            report("RESOURCES with *Packet %p", (void *)p);
        long seen = (long)(allocs_after - frees_before);
        if (seen < BURST_LIMIT - (THREADS - 1))
            report("RESOURCES with at most %ld packets counted out (limit %d, slack %d)", seen,
                   BURST_LIMIT, THREADS - 1);
        note_min(&c->min_seen, (int)seen);
        atomic_fetch_add(&c->resources, 1);
        return false;
    }
    if (st != NDIS_STATUS_SUCCESS || p == NULL) {
        report("allocation: status %#x, packet %p", (unsigned)st, (void *)p);
        return false;
    }
    int now = atomic_fetch_add(&c->out, 1) + 1;
    atomic_fetch_add(&c->allocs, 1);
    if (now > BURST_LIMIT)
        report("%d packets out of a pool limited to %d", now, BURST_LIMIT);
    note_max(&c->max_out, now);
    mark_live(p);
    check_fresh(p, c->pool);
    stamp_put(p, owner, seq);
    *slot = p;
    atomic_fetch_add(&c->successes, 1);
    return true;
}

static void burst_free(burst_ctx *c, enum alloc_form form, PNDIS_PACKET p)
{
    if (!stamp_ok(p, NULL))
        report("packet %p: stamp broken while held", (void *)p);
    mark_dead(p);
    atomic_fetch_add(&c->frees, 1);
    atomic_fetch_sub(&c->out, 1);
    free_packet(form, p);
}

static void *burst_worker(void *arg)
{
    worker *w = arg;
    burst_ctx *c = w->arg;
    rng r = thread_rng(1, w->idx);
    PNDIS_PACKET held[BURST_MAX];
    uint32_t seq = 0;
    for (int round = 0; round < BURST_ROUNDS && !past_deadline(); round++) {
        enum alloc_form form = (enum alloc_form)below(&r, 3);
        KIRQL old = enter_form(form);
        int want = 1 + (int)below(&r, BURST_MAX), got = 0;
        while (got < want && burst_alloc(c, form, &held[got], (uint32_t)w->idx, seq++)) {
            got++;
            if (below(&r, 4) == 0)
                sched_yield(); /* hold on a little: the others must meet a crowded pool */
        }
        /* Free in a shuffled order, sometimes after lowering the level, so that allocation and
         * free forms are mixed as drivers mix them. */
        for (int i = got - 1; i > 0; i--) {
            int j = (int)below(&r, (uint32_t)i + 1);
            PNDIS_PACKET t = held[i];
            held[i] = held[j];
            held[j] = t;
        }
        if (form != FORM_PLAIN)
            atomic_fetch_add(&c->dpr_calls, (unsigned long)got);
        enum alloc_form free_form = below(&r, 4) == 0 ? FORM_PLAIN : form;
        if (free_form == FORM_PLAIN)
            leave_form(form, old);
        for (int i = 0; i < got; i++)
            burst_free(c, free_form, held[i]);
        if (free_form != FORM_PLAIN)
            leave_form(form, old);
        if (below(&r, 8) == 0)
            sched_yield();
    }
    return NULL;
}

static void test_burst_limit(void **state)
{
    (void)state;
    burst_ctx c = { .pool = make_pool(BURST_BASE, BURST_OVERFLOW), .min_seen = INT32_MAX };
    worker w[THREADS];
    run_workers(burst_worker, &c, w, THREADS);
    join_workers(w, THREADS);
    assert_no_errors();
    printf("burst: %lu allocations (%lu at DISPATCH_LEVEL), %lu RESOURCES (seen out >= %d, "
           "bound %d), max %d of %d out\n",
           atomic_load(&c.successes), atomic_load(&c.dpr_calls), atomic_load(&c.resources),
           atomic_load(&c.min_seen), BURST_LIMIT - (THREADS - 1), atomic_load(&c.max_out),
           BURST_LIMIT);
    assert_int_equal(atomic_load(&c.out), 0);
    assert_int_equal(NdisPacketPoolUsage(c.pool), 0);
    assert_true(atomic_load(&c.successes) >= (unsigned long)THREADS * BURST_ROUNDS);
    /* 4 threads wanting up to 16 each against 32: the limit must have been reached. */
    assert_true(atomic_load(&c.resources) > 0);
    assert_true(atomic_load(&c.max_out) > BURST_BASE);
    NdisFreePacketPool(c.pool);
}

/* ---- (b) allocate here, free there ---- */

typedef struct queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    PNDIS_PACKET items[QUEUE_CAP];
    unsigned head, count;
} queue;

static void queue_push(queue *q, PNDIS_PACKET p)
{
    pthread_mutex_lock(&q->lock);
    if (q->count == QUEUE_CAP) {
        /* Cannot happen while the pool limit is below QUEUE_CAP; fail rather than deadlock. */
        report("queue overflow");
        pthread_mutex_unlock(&q->lock);
        return;
    }
    q->items[(q->head + q->count++) % QUEUE_CAP] = p;
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

static PNDIS_PACKET queue_pop(queue *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == 0)
        pthread_cond_wait(&q->nonempty, &q->lock);
    PNDIS_PACKET p = q->items[q->head];
    q->head = (q->head + 1) % QUEUE_CAP;
    q->count--;
    pthread_mutex_unlock(&q->lock);
    return p;
}

#define PC_BASE 32
#define PC_OVERFLOW 32

typedef struct pc_ctx {
    NDIS_HANDLE pool;
    NDIS_HANDLE buffers;
    queue q;
    atomic_ulong produced, consumed, buffers_freed, resources;
    _Atomic uint64_t seq_sum_produced, seq_sum_consumed;
} pc_ctx;

/* The buffers of packet `seq`: a count and lengths both sides can derive, so the consumer checks
 * what it received without any shared record. */
static int pc_buffers(uint32_t seq) { return 1 + (int)(seq % 3); }
static uint32_t pc_len(uint32_t seq, int i) { return (seq * 7u + (uint32_t)i * 13u) % 1500u; }

static bool pc_chain(pc_ctx *c, PNDIS_PACKET p, uint32_t seq, rng *r)
{
    for (int i = 0; i < pc_buffers(seq); i++) {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        PNDIS_BUFFER b = NULL;
        uint32_t len = pc_len(seq, i);
        NdisAllocateBuffer(&st, &b, c->buffers, backing + below(r, BACKING_SIZE - 1500), len);
        if (st != NDIS_STATUS_SUCCESS || b == NULL) {
            report("NdisAllocateBuffer: %#x", (unsigned)st);
            return false;
        }
        mark_live(b);
        NdisChainBufferAtBack(p, b);
    }
    return true;
}

static void *producer(void *arg)
{
    worker *w = arg;
    pc_ctx *c = w->arg;
    rng r = thread_rng(2, w->idx);
    for (uint32_t seq = 0; seq < QUEUE_ITEMS; seq++) {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        PNDIS_PACKET p = NULL;
        enum alloc_form form = (enum alloc_form)below(&r, 3);
        for (;;) {
            KIRQL old = enter_form(form);
            alloc_packet(form, &st, &p, c->pool);
            leave_form(form, old);
            if (st != NDIS_STATUS_RESOURCES)
                break;
            /* Consumers are behind: the whole pool is in the queue. Let them catch up. */
            atomic_fetch_add(&c->resources, 1);
            if (past_deadline()) {
                report("producer starved past the deadline");
                return NULL;
            }
            sched_yield();
        }
        if (st != NDIS_STATUS_SUCCESS || p == NULL) {
            report("producer allocation: %#x", (unsigned)st);
            return NULL;
        }
        mark_live(p);
        check_fresh(p, c->pool);
        if (!pc_chain(c, p, seq, &r))
            return NULL;
        stamp_put(p, (uint32_t)w->idx, seq);
        atomic_fetch_add(&c->produced, 1);
        atomic_fetch_add(&c->seq_sum_produced, seq);
        queue_push(&c->q, p);
    }
    return NULL;
}

static void consume_one(pc_ctx *c, PNDIS_PACKET p, rng *r)
{
    stamp s;
    if (!stamp_ok(p, &s)) {
        report("consumer: packet %p has a broken stamp", (void *)p);
        return;
    }
    UINT count = 0, total = 0;
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    uint32_t want_total = 0;
    for (int i = 0; i < pc_buffers(s.seq); i++)
        want_total += pc_len(s.seq, i);
    if ((int)count != pc_buffers(s.seq) || total != want_total)
        report("consumer: %u buffers / %u bytes, producer chained %d / %u", count, total,
               pc_buffers(s.seq), want_total);
    for (int i = pc_buffers(s.seq) - 1; i >= 0; i--) {
        PNDIS_BUFFER b = NULL;
        bool front = below(r, 2) == 0;
        if (front)
            NdisUnchainBufferAtFront(p, &b);
        else
            NdisUnchainBufferAtBack(p, &b);
        if (b == NULL || b->Next != NULL) {
            report("consumer: unchain gave %p", (void *)b);
            return;
        }
        mark_dead(b);
        NdisFreeBuffer(b);
        atomic_fetch_add(&c->buffers_freed, 1);
    }
    if (p->Private.Head != NULL)
        report("consumer: chain not empty after unchaining everything");
    enum alloc_form form = (enum alloc_form)below(r, 3);
    mark_dead(p);
    atomic_fetch_add(&c->seq_sum_consumed, s.seq);
    atomic_fetch_add(&c->consumed, 1);
    KIRQL old = enter_form(form);
    free_packet(form, p);
    leave_form(form, old);
}

static void *consumer(void *arg)
{
    worker *w = arg;
    pc_ctx *c = w->arg;
    rng r = thread_rng(3, w->idx);
    for (;;) {
        PNDIS_PACKET p = queue_pop(&c->q);
        if (p == NULL)
            return NULL; /* one sentinel per consumer */
        consume_one(c, p, &r);
    }
}

static void test_producer_consumer(void **state)
{
    (void)state;
    static pc_ctx c; /* big queue: not on the stack */
    memset(&c, 0, sizeof(c));
    c.pool = make_pool(PC_BASE, PC_OVERFLOW);
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    NdisAllocateBufferPool(&st, &c.buffers, 64);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    pthread_mutex_init(&c.q.lock, NULL);
    pthread_cond_init(&c.q.nonempty, NULL);

    worker prod[THREADS / 2], cons[THREADS / 2];
    run_workers(consumer, &c, cons, THREADS / 2);
    run_workers(producer, &c, prod, THREADS / 2);
    join_workers(prod, THREADS / 2);
    for (int i = 0; i < THREADS / 2; i++)
        queue_push(&c.q, NULL);
    join_workers(cons, THREADS / 2);
    assert_no_errors();

    printf("producer/consumer: %lu packets, %lu buffers, %lu RESOURCES waits\n",
           atomic_load(&c.consumed), atomic_load(&c.buffers_freed), atomic_load(&c.resources));
    assert_int_equal(atomic_load(&c.produced), (unsigned long)(THREADS / 2) * QUEUE_ITEMS);
    assert_int_equal(atomic_load(&c.consumed), atomic_load(&c.produced));
    assert_true(atomic_load(&c.seq_sum_consumed) == atomic_load(&c.seq_sum_produced));
    assert_int_equal(NdisPacketPoolUsage(c.pool), 0);
    LIBNDIS_POOL_INFO info;
    assert_int_equal(LibNdisQueryBufferPool(c.buffers, &info), NDIS_STATUS_SUCCESS);
    assert_int_equal(info.InUse, 0);
    NdisFreePacketPool(c.pool);
    NdisFreeBufferPool(c.buffers);
    pthread_cond_destroy(&c.q.nonempty);
    pthread_mutex_destroy(&c.q.lock);
}

/* ---- (c) exhaustion is exact across threads ---- */

typedef struct exact_ctx {
    NDIS_HANDLE pool;
    pthread_barrier_t bar;
    PNDIS_PACKET warm[THREADS][EXACT_N];
    int warm_n[THREADS];
    PNDIS_PACKET grabbed[THREADS][EXACT_N + 1];
    int grabbed_n[THREADS];
    int round;
} exact_ctx;

/* Until RESOURCES; more than the pool's whole count is itself an error. */
static int grab_all(exact_ctx *c, PNDIS_PACKET *out, int cap, rng *r)
{
    int n = 0;
    for (;;) {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        PNDIS_PACKET p = (PNDIS_PACKET)(uintptr_t)1;
        enum alloc_form form = (enum alloc_form)below(r, 3);
        KIRQL old = enter_form(form);
        alloc_packet(form, &st, &p, c->pool);
        leave_form(form, old);
        if (st == NDIS_STATUS_RESOURCES) {
            if (p != NULL)
                report("RESOURCES with *Packet %p", (void *)p);
            return n;
        }
        if (st != NDIS_STATUS_SUCCESS || p == NULL) {
            report("grab: status %#x", (unsigned)st);
            return n;
        }
        if (n == cap) {
            report("more than %d packets from a pool of %d", cap, EXACT_N);
            NdisFreePacket(p);
            return n;
        }
        mark_live(p);
        check_fresh(p, c->pool);
        out[n++] = p;
        if (below(r, 3) == 0)
            sched_yield(); /* let the other grabbers in, so the packets split between them */
    }
}

static void release_all(PNDIS_PACKET *v, int n, rng *r)
{
    for (int i = 0; i < n; i++) {
        enum alloc_form form = (enum alloc_form)below(r, 3);
        mark_dead(v[i]);
        KIRQL old = enter_form(form);
        free_packet(form, v[i]);
        leave_form(form, old);
    }
}

static void *exact_worker(void *arg)
{
    worker *w = arg;
    exact_ctx *c = w->arg;
    rng r = thread_rng(4, w->idx * 1000 + c->round);
    int me = w->idx, next = (w->idx + 1) % THREADS;
    /* Warm-up: take some, then free a neighbour's, so free packets end up spread over the
     * caches of threads other than the ones that allocated them. */
    c->warm_n[me] = 0;
    int want = 4 + (int)below(&r, EXACT_N / 2);
    for (int i = 0; i < want; i++) {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        PNDIS_PACKET p = NULL;
        NdisAllocatePacket(&st, &p, c->pool);
        if (st != NDIS_STATUS_SUCCESS)
            break; /* the others took the rest: fine for a warm-up */
        mark_live(p);
        c->warm[me][c->warm_n[me]++] = p;
    }
    pthread_barrier_wait(&c->bar);
    release_all(c->warm[next], c->warm_n[next], &r);
    pthread_barrier_wait(&c->bar);
    c->grabbed_n[me] = grab_all(c, c->grabbed[me], EXACT_N, &r);
    pthread_barrier_wait(&c->bar); /* main checks the totals here */
    pthread_barrier_wait(&c->bar);
    release_all(c->grabbed[next], c->grabbed_n[next], &r);
    return NULL;
}

static void exact_rounds(UINT base, UINT overflow)
{
    static exact_ctx c;
    unsigned long spread = 0;
    for (int round = 0; round < EXACT_ROUNDS; round++) {
        memset(&c, 0, sizeof(c));
        c.pool = make_pool(base, overflow);
        c.round = round;
        pthread_barrier_init(&c.bar, NULL, THREADS + 1);
        worker w[THREADS];
        run_workers(exact_worker, &c, w, THREADS);
        pthread_barrier_wait(&c.bar);
        pthread_barrier_wait(&c.bar);
        pthread_barrier_wait(&c.bar);
        int total = 0, busy = 0;
        for (int i = 0; i < THREADS; i++) {
            total += c.grabbed_n[i];
            busy += c.grabbed_n[i] != 0;
        }
        spread += busy > 1;
        UINT usage = NdisPacketPoolUsage(c.pool);
        pthread_barrier_wait(&c.bar);
        join_workers(w, THREADS);
        pthread_barrier_destroy(&c.bar);
        assert_no_errors();
        if (total != EXACT_N || usage != EXACT_N)
            fail_msg("pool %u+%u, round %d: threads grabbed %d (%d/%d/%d/%d), usage %u; want %d",
                     base, overflow, round, total, c.grabbed_n[0], c.grabbed_n[1],
                     c.grabbed_n[2], c.grabbed_n[3], usage, EXACT_N);
        assert_int_equal(NdisPacketPoolUsage(c.pool), 0);
        NdisFreePacketPool(c.pool);
    }
    printf("exhaustion %u+%u: %d rounds exact, %lu with the packets split over threads\n", base,
           overflow, EXACT_ROUNDS, spread);
}

static void test_exhaustion_exact(void **state)
{
    (void)state;
    exact_rounds(EXACT_N, 0);
    exact_rounds(EXACT_N / 4, EXACT_N - EXACT_N / 4); /* mostly overflow, made on demand */
    exact_rounds(0, EXACT_N);                         /* overflow only */
}

/* ---- (d) retiring a pool while other threads hold packets ---- */

typedef struct retire_ctx {
    NDIS_HANDLE pool;
    NDIS_HANDLE buffers;
    pthread_barrier_t bar;
    bool main_holds;
    int round;
    atomic_ulong failures_seen;
} retire_ctx;

static void *retire_worker(void *arg)
{
    worker *w = arg;
    retire_ctx *c = w->arg;
    rng r = thread_rng(5, w->idx * 1000 + c->round);
    PNDIS_PACKET held[RETIRE_HOLD];
    int n = 0;
    for (; n < RETIRE_HOLD; n++) {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        NdisAllocatePacket(&st, &held[n], c->pool);
        if (st != NDIS_STATUS_SUCCESS) {
            report("retire: allocation %d failed: %#x", n, (unsigned)st);
            break;
        }
        mark_live(held[n]);
        PNDIS_BUFFER b = NULL;
        NdisAllocateBuffer(&st, &b, c->buffers, backing + 64 * (w->idx * RETIRE_HOLD + n), 64);
        if (st == NDIS_STATUS_SUCCESS)
            NdisChainBufferAtBack(held[n], b);
        stamp_put(held[n], (uint32_t)w->idx, (uint32_t)n);
    }
    pthread_barrier_wait(&c->bar); /* main retires the pool */
    pthread_barrier_wait(&c->bar);
    /* Allocation from a retired pool fails with FAILURE, from every form. */
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    PNDIS_PACKET p = (PNDIS_PACKET)(uintptr_t)1;
    enum alloc_form form = (enum alloc_form)below(&r, 3);
    KIRQL old = enter_form(form);
    alloc_packet(form, &st, &p, c->pool);
    leave_form(form, old);
    if (st != NDIS_STATUS_FAILURE || p != NULL)
        report("allocation from a retired pool: status %#x, packet %p", (unsigned)st, (void *)p);
    else
        atomic_fetch_add(&c->failures_seen, 1);
    /* No allocation may follow the frees: the last free releases the pool's storage. */
    pthread_barrier_wait(&c->bar);
    for (int i = 0; i < n; i++) {
        PNDIS_BUFFER b = NULL;
        if (!stamp_ok(held[i], NULL))
            report("retire: packet stamp broken");
        NdisUnchainBufferAtFront(held[i], &b);
        mark_dead(held[i]);
        form = (enum alloc_form)below(&r, 3);
        old = enter_form(form);
        free_packet(form, held[i]);
        leave_form(form, old);
        /* The buffer outlives its packet and the packet's pool. */
        if (b != NULL) {
            if (b->ByteCount != 64)
                report("retire: buffer damaged");
            NdisFreeBuffer(b);
        }
    }
    return NULL;
}

static void test_retire_while_held(void **state)
{
    (void)state;
    static retire_ctx c;
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    NDIS_HANDLE buffers = NULL;
    NdisAllocateBufferPool(&st, &buffers, 32);
    unsigned long attempts = 0;
    for (int round = 0; round < RETIRE_ROUNDS; round++) {
        memset(&c, 0, sizeof(c));
        c.pool = make_pool(THREADS * RETIRE_HOLD / 2, THREADS * RETIRE_HOLD);
        c.buffers = buffers;
        c.round = round;
        /* Every other round the main thread keeps one packet, so the pool can be queried
         * after the workers' frees; in the others a worker's free is the last and releases the
         * storage while the rest are still freeing. */
        c.main_holds = round % 2 == 0;
        PNDIS_PACKET mine = NULL;
        if (c.main_holds) {
            NdisAllocatePacket(&st, &mine, c.pool);
            assert_int_equal(st, NDIS_STATUS_SUCCESS);
        }
        pthread_barrier_init(&c.bar, NULL, THREADS + 1);
        worker w[THREADS];
        run_workers(retire_worker, &c, w, THREADS);
        pthread_barrier_wait(&c.bar);
        UINT held = NdisPacketPoolUsage(c.pool);
        NdisFreePacketPool(c.pool);
        UINT after = NdisPacketPoolUsage(c.pool); /* retired, not released: still queryable */
        pthread_barrier_wait(&c.bar);
        pthread_barrier_wait(&c.bar);
        join_workers(w, THREADS);
        pthread_barrier_destroy(&c.bar);
        assert_no_errors();
        UINT want = THREADS * RETIRE_HOLD + (c.main_holds ? 1 : 0);
        if (held != want || after != want)
            fail_msg("round %d: usage %u before NdisFreePacketPool, %u after; want %u", round,
                     held, after, want);
        if (c.main_holds) {
            assert_int_equal(NdisPacketPoolUsage(c.pool), 1);
            NDIS_STATUS st2 = NDIS_STATUS_PENDING;
            PNDIS_PACKET p = (PNDIS_PACKET)(uintptr_t)1;
            NdisAllocatePacket(&st2, &p, c.pool);
            assert_int_equal(st2, NDIS_STATUS_FAILURE);
            assert_null(p);
            NdisFreePacket(mine); /* the last one: the storage goes now */
        }
        attempts += atomic_load(&c.failures_seen);
    }
    LIBNDIS_POOL_INFO info;
    assert_int_equal(LibNdisQueryBufferPool(buffers, &info), NDIS_STATUS_SUCCESS);
    assert_int_equal(info.InUse, 0);
    NdisFreeBufferPool(buffers);
    assert_int_equal(attempts, (unsigned long)THREADS * RETIRE_ROUNDS);
    printf("retire: %d rounds, %lu allocations refused by retired pools\n", RETIRE_ROUNDS,
           attempts);
}

static void test_side_table_clean(void **state)
{
    (void)state;
    /* Every packet and buffer marked live was marked dead again. */
    assert_int_equal(live_table_count(), 0);
}

static int group_setup(void **state)
{
    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &started);
    return 0;
}

int main(void)
{
    const char *env = getenv("LIBNDIS_TEST_SEED");
    base_seed = env != NULL && *env != '\0' ? strtoull(env, NULL, 0) : 0x636f6e63706b74ull;
    printf("test_concurrency_packet: seed %#llx (set LIBNDIS_TEST_SEED to replay)\n",
           (unsigned long long)base_seed);
    for (uint32_t i = 0; i < BACKING_SIZE; i++)
        backing[i] = (uint8_t)(i * 31u + 5u);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_limit),
        cmocka_unit_test(test_producer_consumer),
        cmocka_unit_test(test_exhaustion_exact),
        cmocka_unit_test(test_retire_while_held),
        cmocka_unit_test(test_side_table_clean),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
