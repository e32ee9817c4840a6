/* SPDX-License-Identifier: MIT */
/* Buffer pools under real concurrency: shared-pool bursts, allocate-here/free-there through a
 * queue, a strict pool's count as a hard limit, NdisCopyBuffer from many threads over one source
 * chain, pool retirement racing the last frees, and fast paths racing the steals that stop their
 * caches. Built to run clean under ThreadSanitizer. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

#include "copy_model.h"

#include "live_table.h"
#include "test_util.h"

#define THREADS 4
#define BURST_ROUNDS 30000  /* per thread; bursts of 1..40 descriptors */
#define QUEUE_ITEMS 100000  /* per producer */
#define STRICT_N 5
#define STRICT_HOLD 3       /* per thread: even two running threads can want 6 > 5 */
#define STRICT_SUCCESSES 100000 /* per thread */
#define COPY_CALLS 25000    /* per thread */
#define RETIRE_ROUNDS 200
#define RETIRE_HOLD 8       /* per thread */
#define DEADLINE_SECONDS 50 /* a livelock fails the test instead of hanging ctest */

#define BACKING_SIZE (24 * CM_PAGE)
#define LARGE_LEN (9 * CM_PAGE + 100) /* more than 8 pages: the separate-allocation path */

static _Alignas(4096) uint8_t backing[BACKING_SIZE];
static uint64_t base_seed;

/* ---- errors from worker threads (cmocka's asserts belong to the main thread) ---- */

static atomic_ulong errors;
static atomic_flag first_error_taken = ATOMIC_FLAG_INIT;
static char first_error[256];

static void report(const char *fmt, ...)
{
    if (atomic_fetch_add(&errors, 1) == 0 && !atomic_flag_test_and_set(&first_error_taken)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(first_error, sizeof(first_error), fmt, ap);
        va_end(ap);
    }
}

static void assert_no_errors(void)
{
    unsigned long n = atomic_load(&errors);
    if (n != 0)
        fail_msg("%lu error(s) in worker threads; first: %s", n, first_error);
}

static void reset_errors(void)
{
    atomic_store(&errors, 0);
    atomic_flag_clear(&first_error_taken);
    first_error[0] = '\0';
}

/* ---- per-thread random numbers ---- */

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

/* ---- "no descriptor is ever live twice" (live_table.h) ---- */

static void mark_live(PMDL m)
{
    const char *wrong = live_mark(m, true);
    if (wrong != NULL)
        report("descriptor %p %s", (void *)m, wrong);
}

static void mark_dead(PMDL m)
{
    const char *wrong = live_mark(m, false);
    if (wrong != NULL)
        report("descriptor %p %s", (void *)m, wrong);
}

/* ---- a held descriptor: original fields plus the owner's token written over them ---- */

typedef struct held {
    PMDL m;
    ULONG len;
    PVOID va;
    uint32_t token;
} held;

static PVOID token_va(uint32_t token)
{
    return (PVOID)(uintptr_t)(0x7A000000u | token);
}

/* A second owner of the same descriptor would overwrite the token before we look again. */
static void take(held *h, PMDL m, uint32_t token)
{
    h->m = m;
    h->len = m->ByteCount;
    h->va = m->MappedSystemVa;
    h->token = token;
    mark_live(m);
    m->ByteCount = token;
    m->MappedSystemVa = token_va(token);
}

static void give_back(held *h)
{
    PMDL m = h->m;
    if (m->ByteCount != h->token || m->MappedSystemVa != token_va(h->token))
        report("descriptor %p: token %#x/%p, expected %#x", (void *)m, (unsigned)m->ByteCount,
               m->MappedSystemVa, (unsigned)h->token);
    m->ByteCount = h->len;
    m->MappedSystemVa = h->va;
    mark_dead(m);
    NdisFreeBuffer(m);
    h->m = NULL;
}

static uint32_t make_token(int thread, uint32_t seq)
{
    return ((uint32_t)(thread + 1) << 24) | (seq & 0xFFFFFF);
}

/* Allocates one descriptor over a random piece of backing and checks what it must look like.
 * Returns NULL (after checking the failure outputs) when the pool refuses. */
static PMDL alloc_one(NDIS_HANDLE pool, rng *r, BOOLEAN allow_large)
{
    uint32_t len = allow_large && below(r, 32) == 0 ? LARGE_LEN : below(r, 3000);
    uint8_t *va = backing + below(r, BACKING_SIZE - len + 1);
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    PMDL m = (PMDL)(uintptr_t)1;
    NdisAllocateBuffer(&st, &m, pool, va, len);
    if (st != NDIS_STATUS_SUCCESS) {
        if (st != NDIS_STATUS_FAILURE || m != NULL)
            report("failed allocation: status %#x buffer %p", (unsigned)st, (void *)m);
        return NULL;
    }
    if (m == NULL || m->MappedSystemVa != va || m->ByteCount != len || m->Next != NULL ||
        (USHORT)m->MdlFlags != MDL_SOURCE_IS_NONPAGED_POOL ||
        (USHORT)m->Size != cm_mdl_size((uintptr_t)va, len))
        report("fresh descriptor %p does not describe %p/%u", (void *)m, (void *)va, len);
    return m;
}

/* ---- helpers for the main thread ---- */

static LIBNDIS_POOL_INFO query(NDIS_HANDLE pool)
{
    LIBNDIS_POOL_INFO info;
    memset(&info, 0xA5, sizeof(info));
    assert_int_equal(LibNdisQueryBufferPool(pool, &info), NDIS_STATUS_SUCCESS);
    return info;
}

static NDIS_HANDLE new_pool(UINT n)
{
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    NDIS_HANDLE pool = NULL;
    NdisAllocateBufferPool(&st, &pool, n);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    assert_non_null(pool);
    /* Growing unless a test says otherwise, even when LIBNDIS_STRICT_POOLS is set. */
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, FALSE), NDIS_STATUS_SUCCESS);
    return pool;
}

typedef struct worker {
    pthread_t tid;
    int idx;
    NDIS_HANDLE pool;
    void *ctx;
    unsigned long count; /* per-test meaning: successes, items, calls */
} worker;

/* Workers spin here until all exist, so that they really overlap instead of finishing one by
 * one while the next is still being created. */
static atomic_int start_gate;

static void wait_for_start(void)
{
    while (!atomic_load(&start_gate))
        sched_yield();
}

static void run_workers(worker *w, int n, void *(*fn)(void *), NDIS_HANDLE pool, void *ctx)
{
    atomic_store(&start_gate, 0);
    for (int i = 0; i < n; i++) {
        w[i].idx = i;
        w[i].pool = pool;
        w[i].ctx = ctx;
        w[i].count = 0;
        assert_int_equal(pthread_create(&w[i].tid, NULL, fn, &w[i]), 0);
    }
    atomic_store(&start_gate, 1);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double test_start;

static int setup(void **state)
{
    (void)state;
    reset_errors();
    test_start = now_seconds();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    printf("    %.3f s\n", now_seconds() - test_start);
    return 0;
}

/* ---- (a) bursts against one shared pool ---- */

static void *burst_worker(void *arg)
{
    worker *w = arg;
    wait_for_start();
    rng r = thread_rng(1, w->idx);
    held h[40];
    uint32_t seq = 0;
    for (int round = 0; round < BURST_ROUNDS; round++) {
        int k = 1 + (int)below(&r, 40);
        int got = 0;
        for (int i = 0; i < k; i++) {
            PMDL m = alloc_one(w->pool, &r, TRUE);
            if (m == NULL) {
                report("growing pool refused an allocation");
                continue;
            }
            take(&h[got++], m, make_token(w->idx, seq++));
        }
        w->count += (unsigned long)got;
        /* Free in a scrambled order so that free lists interleave between threads. */
        while (got > 0) {
            int j = (int)below(&r, (uint32_t)got);
            give_back(&h[j]);
            h[j] = h[--got];
        }
    }
    return NULL;
}

static void bursts_on(NDIS_HANDLE pool)
{
    worker w[THREADS];
    ULONG before = query(pool).InUse;
    run_workers(w, THREADS, burst_worker, pool, NULL);
    assert_no_errors();
    unsigned long total = 0;
    for (int i = 0; i < THREADS; i++)
        total += w[i].count;
    assert_true(total >= (unsigned long)THREADS * BURST_ROUNDS);
    printf("    %lu descriptors through %d threads\n", total, THREADS);
    LIBNDIS_POOL_INFO info = query(pool);
    assert_int_equal(info.InUse, before);
    assert_false(info.Retired);
}

static void test_shared_pool_bursts(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_HANDLE pool = new_pool(32); /* smaller than the bursts: growth happens under contention */
    bursts_on(pool);
    LIBNDIS_POOL_INFO info = query(pool);
    assert_int_equal(info.DeclaredDescriptors, 32);
    assert_true(info.StorageDescriptors >= 32);
    assert_false(info.Strict);
    NdisFreeBufferPool(pool);
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

static void test_default_pool_bursts(void **state)
{
    (void)state;
    bursts_on(NULL);
}

/* ---- (b) allocate here, free there ---- */

#define QUEUE_CAP 64
typedef struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    held item[QUEUE_CAP];
    int head, count;
} queue;

static void queue_push(queue *q, const held *h)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == QUEUE_CAP)
        pthread_cond_wait(&q->not_full, &q->lock);
    q->item[(q->head + q->count++) % QUEUE_CAP] = *h;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

static held queue_pop(queue *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == 0)
        pthread_cond_wait(&q->not_empty, &q->lock);
    held h = q->item[q->head];
    q->head = (q->head + 1) % QUEUE_CAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return h;
}

static void *producer(void *arg)
{
    worker *w = arg;
    wait_for_start();
    rng r = thread_rng(2, w->idx);
    for (uint32_t i = 0; i < QUEUE_ITEMS; i++) {
        PMDL m = alloc_one(w->pool, &r, TRUE);
        if (m == NULL) {
            report("producer %d: allocation refused", w->idx);
            continue;
        }
        held h;
        take(&h, m, make_token(w->idx, i));
        queue_push(w->ctx, &h);
        w->count++;
    }
    return NULL;
}

static void *consumer(void *arg)
{
    worker *w = arg;
    for (;;) {
        held h = queue_pop(w->ctx);
        if (h.m == NULL)
            return NULL; /* end marker */
        give_back(&h);
        w->count++;
    }
}

static void test_alloc_here_free_there(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_HANDLE pool = new_pool(16);
    queue q = { .head = 0, .count = 0 };
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.not_empty, NULL);
    pthread_cond_init(&q.not_full, NULL);
    worker prod[2], cons[2];
    for (int i = 0; i < 2; i++) {
        cons[i] = (worker){ .idx = 10 + i, .pool = pool, .ctx = &q };
        assert_int_equal(pthread_create(&cons[i].tid, NULL, consumer, &cons[i]), 0);
    }
    run_workers(prod, 2, producer, pool, &q);
    held end = { 0 };
    for (int i = 0; i < 2; i++)
        queue_push(&q, &end);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(cons[i].tid, NULL), 0);
    assert_no_errors();
    assert_int_equal(prod[0].count + prod[1].count, 2ul * QUEUE_ITEMS);
    assert_int_equal(cons[0].count + cons[1].count, 2ul * QUEUE_ITEMS);
    assert_int_equal(query(pool).InUse, 0);
    NdisFreeBufferPool(pool);
    assert_int_equal(LibNdisLiveBufferPools(), live);
    pthread_cond_destroy(&q.not_full);
    pthread_cond_destroy(&q.not_empty);
    pthread_mutex_destroy(&q.lock);
}

/* ---- (c) a strict pool's count is a hard limit, and a freed slot is usable again ---- */

static atomic_int outstanding;  /* raised after a success, lowered before the free: <= real */
static atomic_int max_outstanding;
static atomic_ulong strict_failures;
static double deadline;

static void note_outstanding(int now)
{
    int seen = atomic_load(&max_outstanding);
    while (now > seen && !atomic_compare_exchange_weak(&max_outstanding, &seen, now))
        ;
    if (now > STRICT_N)
        report("%d descriptors out of a strict pool of %d", now, STRICT_N);
}

static void strict_release(held *h, int *n)
{
    atomic_fetch_sub(&outstanding, 1);
    give_back(&h[--*n]);
}

static void *strict_worker(void *arg)
{
    worker *w = arg;
    wait_for_start();
    rng r = thread_rng(3, w->idx);
    held h[STRICT_HOLD];
    int n = 0;
    uint32_t seq = 0;
    while (w->count < STRICT_SUCCESSES) {
        if (n == STRICT_HOLD || (n > 0 && below(&r, 2) == 0)) {
            strict_release(h, &n);
            continue;
        }
        PMDL m = alloc_one(w->pool, &r, FALSE);
        if (m == NULL) {
            atomic_fetch_add(&strict_failures, 1);
            if (n > 0)
                strict_release(h, &n);
            else
                sched_yield();
            if ((seq & 1023) == 0 && now_seconds() > deadline) {
                report("strict pool: thread %d starved at %lu successes", w->idx, w->count);
                break;
            }
            seq++;
            continue;
        }
        note_outstanding(atomic_fetch_add(&outstanding, 1) + 1);
        take(&h[n++], m, make_token(w->idx, seq++));
        w->count++;
    }
    while (n > 0)
        strict_release(h, &n);
    return NULL;
}

static void test_strict_pool_shared(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_HANDLE pool = new_pool(STRICT_N);
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, TRUE), NDIS_STATUS_SUCCESS);
    atomic_store(&outstanding, 0);
    atomic_store(&max_outstanding, 0);
    atomic_store(&strict_failures, 0);
    deadline = now_seconds() + DEADLINE_SECONDS;
    worker w[THREADS];
    run_workers(w, THREADS, strict_worker, pool, NULL);
    assert_no_errors();
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(w[i].count, STRICT_SUCCESSES);
    printf("    strict pool: max %d out of %d, %lu refusals\n", atomic_load(&max_outstanding),
           STRICT_N, atomic_load(&strict_failures));
    LIBNDIS_POOL_INFO info = query(pool);
    assert_int_equal(info.InUse, 0);
    assert_true(info.Strict);
    assert_int_equal(info.StorageDescriptors, STRICT_N);

    /* Nothing leaked in the count: exactly N fit again, the N+1st is refused. */
    rng r = thread_rng(3, 99);
    PMDL m[STRICT_N];
    for (int i = 0; i < STRICT_N; i++) {
        m[i] = alloc_one(pool, &r, FALSE);
        assert_non_null(m[i]);
    }
    assert_null(alloc_one(pool, &r, FALSE));
    assert_no_errors();
    for (int i = 0; i < STRICT_N; i++)
        NdisFreeBuffer(m[i]);
    NdisFreeBufferPool(pool);
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

/* ---- (d) NdisCopyBuffer from many threads over one read-only chain ---- */

#define SRC_ELEMS 12
typedef struct shared_src {
    PMDL elem[SRC_ELEMS];
    cm_seg seg[SRC_ELEMS];
    MDL snapshot[SRC_ELEMS];
    uint32_t total;
} shared_src;

static void random_range(rng *r, const shared_src *s, uint32_t *off, uint32_t *len)
{
    uint32_t o = below(r, 8) == 0 ? s->total + below(r, 3) : below(r, s->total + 1);
    if (below(r, 4) == 0)
        o = (uint32_t)cm_total(s->seg, (int)below(r, SRC_ELEMS + 1)); /* a boundary */
    uint32_t rest = o <= s->total ? s->total - o : 0;
    uint32_t l = below(r, rest + 1);
    switch (below(r, 8)) {
    case 0: l = 0; break;
    case 1: l = rest + 1; break;
    case 2: l = 0u - o; break; /* wraps to exactly 0 */
    default: break;
    }
    *off = o;
    *len = l;
}

typedef struct copy_ctx {
    const shared_src *src;
    unsigned long failures[THREADS];
} copy_ctx;

static void release_copy(PMDL head, held *h, int n)
{
    PMDL m = head;
    for (int i = 0; i < n; i++, m = m->Next)
        if (m != h[i].m)
            report("copy result chain changed while owned");
    for (int i = 0; i < n; i++)
        give_back(&h[i]);
}

static void *copy_worker(void *arg)
{
    worker *w = arg;
    wait_for_start();
    copy_ctx *ctx = w->ctx;
    const shared_src *s = ctx->src;
    rng r = thread_rng(4, w->idx);
    uint8_t *bytes = malloc(s->total + 1);
    cm_seg model[CM_MAX_SEGS];
    char msg[256];
    uint32_t seq = 0;
    for (int call = 0; call < COPY_CALLS; call++) {
        uint32_t off, len;
        random_range(&r, s, &off, &len);
        int k = cm_copy(s->seg, SRC_ELEMS, off, len, model);
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        PMDL out = (PMDL)(uintptr_t)1;
        NdisCopyBuffer(&st, &out, w->pool, s->elem[0], off, len);
        w->count++;
        if (k < 0) {
            if (st != NDIS_STATUS_FAILURE || out != NULL)
                report("copy %#x+%#x must fail: status %#x", off, len, (unsigned)st);
            ctx->failures[w->idx]++;
            continue;
        }
        if (st != NDIS_STATUS_SUCCESS || out == NULL) {
            report("copy %#x+%#x must succeed: status %#x", off, len, (unsigned)st);
            continue;
        }
        cm_slice_bytes(s->seg, SRC_ELEMS, off, len, bytes);
        if (!cm_check_result(s->elem, model, k, out, bytes, msg, sizeof(msg)))
            report("copy %#x+%#x: %s", off, len, msg);
        held h[CM_MAX_SEGS];
        PMDL m = out;
        for (int i = 0; i < k && m != NULL; i++, m = m->Next)
            take(&h[i], m, make_token(w->idx, seq++));
        if (below(&r, 4) == 0)
            sched_yield(); /* hold the result a little while others allocate */
        release_copy(out, h, k);
    }
    free(bytes);
    return NULL;
}

static void build_shared_source(shared_src *s, NDIS_HANDLE pool)
{
    static const uint32_t lens[SRC_ELEMS] = { 0, 100, 0, 0, 4096, 1, 7000, 0, 3, 2500, 64, 0 };
    uint8_t *va = backing + 4090;
    s->total = 0;
    for (int i = 0; i < SRC_ELEMS; i++) {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        NdisAllocateBuffer(&st, &s->elem[i], pool, va, lens[i]);
        assert_int_equal(st, NDIS_STATUS_SUCCESS);
        s->seg[i] = (cm_seg){ (uintptr_t)va, lens[i], i };
        if (i > 0)
            s->elem[i - 1]->Next = s->elem[i];
        s->total += lens[i];
        va += lens[i] + 13; /* leave gaps so a wrong element shows in the data */
    }
    for (int i = 0; i < SRC_ELEMS; i++)
        s->snapshot[i] = *s->elem[i];
}

static void test_copy_from_many_threads(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_HANDLE pool = new_pool(8);
    shared_src src;
    build_shared_source(&src, pool);
    copy_ctx ctx = { .src = &src };
    worker w[THREADS];
    run_workers(w, THREADS, copy_worker, pool, &ctx);
    assert_no_errors();
    unsigned long calls = 0, fails = 0;
    for (int i = 0; i < THREADS; i++) {
        calls += w[i].count;
        fails += ctx.failures[i];
    }
    assert_int_equal(calls, (unsigned long)THREADS * COPY_CALLS);
    assert_true(fails > calls / 20 && fails < calls / 2); /* both outcomes exercised */
    for (int i = 0; i < SRC_ELEMS; i++)
        assert_memory_equal(src.elem[i], &src.snapshot[i], sizeof(MDL));
    assert_int_equal(query(pool).InUse, SRC_ELEMS);
    for (int i = 0; i < SRC_ELEMS; i++)
        NdisFreeBuffer(src.elem[i]);
    assert_int_equal(query(pool).InUse, 0);
    NdisFreeBufferPool(pool);
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

/* ---- (e) retiring a pool while other threads still hold its descriptors ---- */

typedef struct retire_ctx {
    pthread_barrier_t holding, go;
    BOOLEAN racing; /* main frees the pool while workers free, instead of before */
} retire_ctx;

static void *retire_worker(void *arg)
{
    worker *w = arg;
    retire_ctx *ctx = w->ctx;
    rng r = thread_rng(5, w->idx * 1000 + (int)w->count);
    held h[RETIRE_HOLD];
    int n = 0;
    for (int i = 0; i < RETIRE_HOLD; i++) {
        PMDL m = alloc_one(w->pool, &r, i == 0);
        if (m == NULL)
            report("live pool refused an allocation"); /* keep going: the barriers need us */
        else
            take(&h[n++], m, make_token(w->idx, (uint32_t)i));
    }
    pthread_barrier_wait(&ctx->holding);
    pthread_barrier_wait(&ctx->go);
    if (!ctx->racing) {
        /* Retired before we got here: allocations must fail, our frees must still work. */
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        PMDL m = (PMDL)(uintptr_t)1;
        NdisAllocateBuffer(&st, &m, w->pool, backing, 16);
        if (st != NDIS_STATUS_FAILURE || m != NULL)
            report("retired pool allocated: status %#x", (unsigned)st);
    }
    for (int i = n - 1; i >= 0; i--) {
        if (below(&r, 3) == 0)
            sched_yield();
        give_back(&h[i]);
    }
    return NULL;
}

static void retire_round(int round, ULONG live)
{
    retire_ctx ctx = { .racing = (BOOLEAN)(round % 2) };
    pthread_barrier_init(&ctx.holding, NULL, THREADS + 1);
    pthread_barrier_init(&ctx.go, NULL, THREADS + 1);
    NDIS_HANDLE pool = new_pool(4);
    assert_int_equal(LibNdisLiveBufferPools(), live + 1);
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){ .idx = i, .pool = pool, .ctx = &ctx, .count = (unsigned long)round };
        assert_int_equal(pthread_create(&w[i].tid, NULL, retire_worker, &w[i]), 0);
    }
    pthread_barrier_wait(&ctx.holding);
    if (!ctx.racing) {
        NdisFreeBufferPool(pool);
        LIBNDIS_POOL_INFO info = query(pool); /* still queryable: descriptors are out */
        assert_true(info.Retired);
        assert_int_equal(info.InUse, THREADS * RETIRE_HOLD);
        pthread_barrier_wait(&ctx.go);
    } else {
        pthread_barrier_wait(&ctx.go);
        NdisFreeBufferPool(pool); /* races the workers' frees, the last one included */
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
    pthread_barrier_destroy(&ctx.go);
    pthread_barrier_destroy(&ctx.holding);
    assert_no_errors();
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

static void test_retire_under_concurrency(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    for (int round = 0; round < RETIRE_ROUNDS; round++)
        retire_round(round, live);
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

/* ---- (f) fast paths racing stealers whose flag they may overwrite ---- */

/* The steal flag lives in the cache's count word, so an owner whose fast path read the count just
 * before a stealer raised the flag stores its new count over it, and goes on using its cache;
 * caches_stop_locked must raise the flag again until it survives an owner that has left. Here
 * owners run tight allocate/free loops on one pool while the main thread forces steals as often as
 * it can: making the pool strict below its storage (pool_set_limit then empties the caches), the
 * owners' own exhaustion of the pool while it is strict (each refusal first stops every cache),
 * and retirement. A stop that ends while an owner still works on a stale count shows as a
 * descriptor live twice or with someone else's token, a count off at a pause, a descriptor handed
 * out by a retired pool, or a retired pool whose storage is never released. */

#define STEAL_OWNERS THREADS
#define STEAL_DECLARED 8    /* far below what the owners' caches soon hold: strict mode steals */
#define STEAL_HOLD 3        /* an owner takes 1..STEAL_HOLD descriptors, then frees them */
#define STEAL_TOGGLES 16    /* strict on/off pairs per round */
#define STEAL_SECONDS 2.0   /* rounds go on until this much time has passed... */
#define STEAL_MIN_ROUNDS 10 /* ...and at least this many have run */

enum { STEAL_RUN = 1, STEAL_PAUSE, STEAL_EXIT };

typedef struct steal_ctx {
    pthread_barrier_t go, paused; /* the main thread and every owner */
    NDIS_HANDLE pool;             /* written before `go`, read after it */
    atomic_int phase;
    atomic_int may_refuse;        /* a refusal is legitimate: the pool may be strict or retired */
    atomic_int retired;           /* NdisFreeBufferPool has returned: no success after this */
    atomic_ulong refusals;
    struct {
        _Alignas(64) atomic_ulong n; /* a line per owner: counting must not serialize them */
    } attempts[STEAL_OWNERS];
} steal_ctx;

/* A range of one or two pages at an address that moves: the inline fast path whenever the
 * thread's cache has a descriptor. */
static PMDL steal_alloc(NDIS_HANDLE pool, uint32_t seq)
{
    uint8_t *va = backing + (seq & 0xFFF);
    ULONG len = 1 + (seq & 0x3FF);
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    PMDL m = (PMDL)(uintptr_t)1;
    NdisAllocateBuffer(&st, &m, pool, va, len);
    if (st != NDIS_STATUS_SUCCESS) {
        if (st != NDIS_STATUS_FAILURE || m != NULL)
            report("failed allocation: status %#x buffer %p", (unsigned)st, (void *)m);
        return NULL;
    }
    if (m == NULL || m->MappedSystemVa != va || m->ByteCount != len || m->Next != NULL)
        report("fresh descriptor %p does not describe %p/%u", (void *)m, (void *)va,
               (unsigned)len);
    return m;
}

static void *steal_owner(void *arg)
{
    worker *w = arg;
    steal_ctx *ctx = w->ctx;
    rng r = thread_rng(6, w->idx);
    held h[STEAL_HOLD];
    uint32_t seq = 0;
    unsigned long attempts = 0;
    for (;;) {
        pthread_barrier_wait(&ctx->go);
        if (atomic_load(&ctx->phase) == STEAL_EXIT)
            return NULL;
        NDIS_HANDLE pool = ctx->pool;
        while (atomic_load_explicit(&ctx->phase, memory_order_relaxed) == STEAL_RUN) {
            int k = 1 + (int)below(&r, STEAL_HOLD), n = 0;
            while (n < k) {
                int retired = atomic_load(&ctx->retired);
                PMDL m = steal_alloc(pool, seq);
                atomic_store_explicit(&ctx->attempts[w->idx].n, ++attempts, memory_order_relaxed);
                if (m == NULL) {
                    /* Read after the refusal: whoever made it legitimate said so before. */
                    if (!atomic_load(&ctx->may_refuse))
                        report("owner %d: a growing, live pool refused", w->idx);
                    atomic_fetch_add_explicit(&ctx->refusals, 1, memory_order_relaxed);
                    if (n == 0)
                        sched_yield(); /* the others hold it all: let them free */
                    break;
                }
                if (retired)
                    report("owner %d: descriptor %p from a retired pool", w->idx, (void *)m);
                take(&h[n++], m, make_token(w->idx, seq++));
                w->count++;
            }
            while (n > 0) /* newest first: the count of the owner's cache goes up and down */
                give_back(&h[--n]);
        }
        pthread_barrier_wait(&ctx->paused);
    }
}

static unsigned long steal_attempts(steal_ctx *ctx)
{
    unsigned long sum = 0;
    for (int i = 0; i < STEAL_OWNERS; i++)
        sum += atomic_load_explicit(&ctx->attempts[i].n, memory_order_relaxed);
    return sum;
}

/* Lets the owners make a few allocations between two steals. Counted in their work rather than
 * in time, so that a sanitizer build, which slows them far more than the stealer, still sees its
 * steals land among their fast paths; the time limit covers owners that are all descheduled. */
static void steal_gap(steal_ctx *ctx, rng *r)
{
    unsigned long target = steal_attempts(ctx) + below(r, 64);
    double until = now_seconds() + 0.002;
    for (unsigned i = 1; steal_attempts(ctx) < target; i++) {
        if (i % 64 == 0) {
            if (now_seconds() > until)
                break;
            sched_yield();
        }
    }
}

/* At a pause nobody holds a descriptor: every table entry must be dead, and they can all be
 * forgotten, which keeps the table from filling up with the addresses of released pools. Done
 * only once it is a quarter full: a sweep costs more under ThreadSanitizer than a whole round. */
static void steal_forget_table(bool always)
{
    if (!always && atomic_load(&live_table_keys) < LIVE_TABLE_SIZE / 4)
        return;
    uintptr_t still_live = live_table_forget();
    if (still_live != 0)
        report("descriptor %#lx still live at a pause", (unsigned long)still_live);
}

/* A broken handshake can corrupt a pool into a lock nobody releases or a stop that never ends:
 * fail with what the workers saw instead of hanging ctest. Only async-signal-safe calls. */
static void steal_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_fast_paths_racing_steals: still running after the deadline; "
                              "first error: ";
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0 ||
        write(STDERR_FILENO, first_error, strnlen(first_error, sizeof(first_error))) < 0 ||
        write(STDERR_FILENO, "\n", 1) < 0)
        _exit(3);
    _exit(2);
}

typedef struct steal_totals {
    unsigned long strict_ok, strict_refused;
} steal_totals;

/* One pool's life: owners hammer it while it is toggled strict and back, pause for exact counts,
 * hammer it again while it is retired under them. Checks report() rather than assert, so that
 * the owners are always let go of and joined. */
static void steal_round(steal_ctx *ctx, rng *r, ULONG live, steal_totals *t)
{
    NDIS_HANDLE pool = new_pool(STEAL_DECLARED);
    ctx->pool = pool;
    atomic_store(&ctx->may_refuse, 1);
    atomic_store(&ctx->retired, 0);
    atomic_store(&ctx->phase, STEAL_RUN);
    pthread_barrier_wait(&ctx->go);
    for (int i = 0; i < STEAL_TOGGLES; i++) {
        steal_gap(ctx, r);
        /* Refused when the owners hold more than declared; the caches are emptied either way. */
        if (LibNdisSetBufferPoolStrict(pool, TRUE) == NDIS_STATUS_SUCCESS)
            t->strict_ok++;
        else
            t->strict_refused++;
        steal_gap(ctx, r);
        if (LibNdisSetBufferPoolStrict(pool, FALSE) != NDIS_STATUS_SUCCESS)
            report("a live pool refused to stop being strict");
    }
    atomic_store(&ctx->phase, STEAL_PAUSE);
    pthread_barrier_wait(&ctx->paused);

    /* Quiet: the counts are exact, and a lost or doubled descriptor shows. */
    LIBNDIS_POOL_INFO info = query(pool);
    if (info.InUse != 0 || info.Retired || info.Strict)
        report("paused pool: InUse %lu, Retired %d, Strict %d", (unsigned long)info.InUse,
               info.Retired, info.Strict);
    if (LibNdisSetBufferPoolStrict(pool, TRUE) != NDIS_STATUS_SUCCESS)
        report("an idle pool refused to become strict");
    held h[STEAL_DECLARED + 1];
    int got = 0;
    for (int i = 0; i < STEAL_DECLARED + 1; i++) {
        PMDL m = steal_alloc(pool, (uint32_t)i);
        if (m != NULL)
            take(&h[got++], m, make_token(STEAL_OWNERS, (uint32_t)i));
    }
    if (got != STEAL_DECLARED)
        report("strict pool of %d handed out %d", STEAL_DECLARED, got);
    while (got > 1)
        give_back(&h[--got]);
    /* The remaining one keeps the pool's storage alive through its retirement below, so that the
     * owners never touch a released pool, and its return is what must release it. */
    if (LibNdisSetBufferPoolStrict(pool, FALSE) != NDIS_STATUS_SUCCESS)
        report("a live pool refused to stop being strict");

    atomic_store(&ctx->may_refuse, 0);
    atomic_store(&ctx->phase, STEAL_RUN);
    pthread_barrier_wait(&ctx->go);
    steal_gap(ctx, r);
    atomic_store(&ctx->may_refuse, 1);
    NdisFreeBufferPool(pool); /* stops every cache while the owners are inside them */
    atomic_store(&ctx->retired, 1);
    steal_gap(ctx, r);
    atomic_store(&ctx->phase, STEAL_PAUSE);
    pthread_barrier_wait(&ctx->paused);

    info = query(pool);
    if (info.InUse != (ULONG)got || !info.Retired)
        report("retired pool: InUse %lu (expected %d), Retired %d", (unsigned long)info.InUse,
               got, info.Retired);
    if (LibNdisLiveBufferPools() != live + 1)
        report("%lu live pools while one is retired, expected %lu",
               (unsigned long)LibNdisLiveBufferPools(), (unsigned long)live + 1);
    while (got > 0)
        give_back(&h[--got]);
    if (LibNdisLiveBufferPools() != live)
        report("retired pool not released after its last descriptor came back");
    steal_forget_table(false);
}

static void test_fast_paths_racing_steals(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    signal(SIGALRM, steal_watchdog);
    alarm(DEADLINE_SECONDS);
    /* Static: should an assert end this test early, owners still waiting at its barriers must
     * not be left with a dead stack frame. */
    static steal_ctx ctx;
    pthread_barrier_init(&ctx.go, NULL, STEAL_OWNERS + 1);
    pthread_barrier_init(&ctx.paused, NULL, STEAL_OWNERS + 1);
    atomic_store(&ctx.phase, 0);
    atomic_store(&ctx.refusals, 0);
    worker w[STEAL_OWNERS];
    for (int i = 0; i < STEAL_OWNERS; i++) {
        w[i] = (worker){ .idx = i, .ctx = &ctx };
        assert_int_equal(pthread_create(&w[i].tid, NULL, steal_owner, &w[i]), 0);
    }
    steal_forget_table(true); /* other tests' addresses: none live, no room wasted on them */
    rng r = thread_rng(6, 99);
    steal_totals t = { 0, 0 };
    double start = now_seconds();
    int rounds = 0;
    while (atomic_load(&errors) == 0 &&
           (rounds < STEAL_MIN_ROUNDS || now_seconds() - start < STEAL_SECONDS)) {
        steal_round(&ctx, &r, live, &t);
        rounds++;
    }
    atomic_store(&ctx.phase, STEAL_EXIT);
    pthread_barrier_wait(&ctx.go);
    unsigned long total = 0;
    for (int i = 0; i < STEAL_OWNERS; i++) {
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
        total += w[i].count;
    }
    pthread_barrier_destroy(&ctx.paused);
    pthread_barrier_destroy(&ctx.go);
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    steal_forget_table(true); /* the last rounds' descriptors: none may be live */
    printf("    %d rounds, %lu descriptors, strict on %lu times (%lu refused), %lu refusals\n",
           rounds, total, t.strict_ok, t.strict_refused, atomic_load(&ctx.refusals));
    assert_no_errors();
    assert_true(t.strict_ok > 0);
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

int main(void)
{
    const char *env = getenv("LIBNDIS_TEST_SEED");
    base_seed = env != NULL && *env != '\0' ? strtoull(env, NULL, 0) : 0x636f6e63ull;
    printf("test_concurrency_pool: seed %#llx (set LIBNDIS_TEST_SEED to change)\n",
           (unsigned long long)base_seed);
    for (uint32_t i = 0; i < BACKING_SIZE; i++)
        backing[i] = (uint8_t)((i * 2654435761u) >> 24);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shared_pool_bursts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_pool_bursts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_here_free_there, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict_pool_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_from_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retire_under_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_paths_racing_steals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
