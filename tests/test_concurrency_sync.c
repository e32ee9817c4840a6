/* SPDX-License-Identifier: MIT */
/* test_concurrency_sync.c - spin locks under real contention: four threads bump a plain counter
 * through each acquire/release pair (NDIS, NDIS Dpr, Ke, Ke at DPC level, all mixed on one word).
 * A lost update, two holders at once, a wrong OldIrql or an unrestored level fails here. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <ndis.h>

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

#define THREADS 4
#ifdef UNDER_TSAN
#define ITERATIONS 150000u /* per thread and test: TSan makes every lock operation far dearer */
#else
#define ITERATIONS 500000u
#endif
#define HANG_GUARD_SECONDS 100 /* a lock that is never released kills the program, not ctest */

/* ---- errors from worker threads (cmocka's asserts belong to the main thread) ---- */

static atomic_ulong errors;
static atomic_flag first_error_taken = ATOMIC_FLAG_INIT;
static char first_error[256];

static void report(const char *fmt, ...)
{
    atomic_fetch_add(&errors, 1);
    if (!atomic_flag_test_and_set(&first_error_taken)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(first_error, sizeof(first_error), fmt, ap);
        va_end(ap);
    }
}

#define CHECK(cond, ...)            \
    do {                            \
        if (!(cond))                \
            report(__VA_ARGS__);    \
    } while (0)

static void assert_no_errors(void)
{
    unsigned long n = atomic_load(&errors);
    if (n != 0)
        fail_msg("%lu error(s) in worker threads; first: %s", n, first_error);
}

static int reset_errors(void **state)
{
    (void)state;
    atomic_store(&errors, 0);
    atomic_flag_clear(&first_error_taken);
    first_error[0] = '\0';
    return 0;
}

/* ---- the shared state every lock form protects ---- */

static NDIS_SPIN_LOCK ndis_lock;
static KSPIN_LOCK ke_lock;
static unsigned long counter;    /* plain on purpose: only the lock keeps it exact */
static atomic_int holders;       /* catches two holders at once without TSan */
static pthread_barrier_t start_line;

/* Read, let time pass, write back: a broken lock loses updates here quickly. */
static void critical_section(int Id)
{
    if (atomic_fetch_add_explicit(&holders, 1, memory_order_relaxed) != 0)
        report("thread %d: another thread held the lock too", Id);
    unsigned long v = counter;
    atomic_signal_fence(memory_order_seq_cst);
    counter = v + 1;
    atomic_fetch_sub_explicit(&holders, 1, memory_order_relaxed);
}

/* Work between acquisitions: without it the releasing thread wins the lock straight back and
 * the threads take turns only a handful of times per run. */
static void think(unsigned Round)
{
    volatile unsigned sink = 0;
    for (unsigned k = 0; k < (Round * 7u & 63u); k++)
        sink += k;
    (void)sink;
}

enum lock_form { FORM_NDIS, FORM_NDIS_DPR, FORM_KE, FORM_KE_DPC };

struct worker {
    pthread_t thread;
    int id;
    enum lock_form form;
    PKSPIN_LOCK ke_word; /* the word the Ke forms use */
    KIRQL base;          /* level the thread runs at between acquisitions */
};

static void run_ndis(struct worker *w)
{
    for (unsigned i = 0; i < ITERATIONS; i++) {
        think(i);
        NdisAcquireSpinLock(&ndis_lock);
        CHECK(KeGetCurrentIrql() == DISPATCH_LEVEL, "thread %d: NDIS hold not at DISPATCH", w->id);
        /* OldIrql belongs to the holder: it must be this thread's level, never a neighbour's. */
        CHECK(ndis_lock.OldIrql == w->base, "thread %d: OldIrql %d, expected %d", w->id,
              ndis_lock.OldIrql, w->base);
        critical_section(w->id);
        NdisReleaseSpinLock(&ndis_lock);
        CHECK(KeGetCurrentIrql() == w->base, "thread %d: NDIS release left level %d", w->id,
              KeGetCurrentIrql());
    }
}

static void run_ndis_dpr(struct worker *w)
{
    for (unsigned i = 0; i < ITERATIONS; i++) {
        think(i);
        NdisDprAcquireSpinLock(&ndis_lock);
        CHECK(KeGetCurrentIrql() == DISPATCH_LEVEL, "thread %d: Dpr acquire moved level", w->id);
        critical_section(w->id);
        NdisDprReleaseSpinLock(&ndis_lock);
        CHECK(KeGetCurrentIrql() == DISPATCH_LEVEL, "thread %d: Dpr release moved level", w->id);
    }
}

static void run_ke(struct worker *w)
{
    for (unsigned i = 0; i < ITERATIONS; i++) {
        think(i);
        KIRQL old = 0xFF;
        KeAcquireSpinLock(w->ke_word, &old);
        CHECK(old == w->base, "thread %d: Ke old level %d, expected %d", w->id, old, w->base);
        CHECK(KeGetCurrentIrql() == DISPATCH_LEVEL, "thread %d: Ke hold not at DISPATCH", w->id);
        critical_section(w->id);
        KeReleaseSpinLock(w->ke_word, old);
        CHECK(KeGetCurrentIrql() == w->base, "thread %d: Ke release left level %d", w->id,
              KeGetCurrentIrql());
    }
}

static void run_ke_dpc(struct worker *w)
{
    for (unsigned i = 0; i < ITERATIONS; i++) {
        think(i);
        KeAcquireSpinLockAtDpcLevel(w->ke_word);
        critical_section(w->id);
        KeReleaseSpinLockFromDpcLevel(w->ke_word);
        CHECK(KeGetCurrentIrql() == DISPATCH_LEVEL, "thread %d: DpcLevel form moved level", w->id);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    CHECK(KeGetCurrentIrql() == PASSIVE_LEVEL, "thread %d: did not start at PASSIVE", w->id);
    KIRQL entry;
    KeRaiseIrql(w->base, &entry);
    pthread_barrier_wait(&start_line);
    switch (w->form) {
    case FORM_NDIS: run_ndis(w); break;
    case FORM_NDIS_DPR: run_ndis_dpr(w); break;
    case FORM_KE: run_ke(w); break;
    case FORM_KE_DPC: run_ke_dpc(w); break;
    default: report("bad form"); break;
    }
    KeLowerIrql(entry);
    CHECK(KeGetCurrentIrql() == PASSIVE_LEVEL, "thread %d: ended at level %d", w->id,
          KeGetCurrentIrql());
    return NULL;
}

/* Dpr and DpcLevel forms are only legal at DISPATCH; the others start from PASSIVE or APC so a
 * mixed-up OldIrql shows. */
static KIRQL base_level(enum lock_form Form, int Id)
{
    if (Form == FORM_NDIS_DPR || Form == FORM_KE_DPC)
        return DISPATCH_LEVEL;
    return (Id & 1) ? APC_LEVEL : PASSIVE_LEVEL;
}

static void run_workers(const enum lock_form Forms[THREADS], PKSPIN_LOCK KeWord)
{
    struct worker w[THREADS];
    NdisAllocateSpinLock(&ndis_lock);
    KeInitializeSpinLock(&ke_lock);
    counter = 0;
    assert_int_equal(pthread_barrier_init(&start_line, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++) {
        w[i].id = i;
        w[i].form = Forms[i];
        w[i].ke_word = KeWord;
        w[i].base = base_level(Forms[i], i);
        assert_int_equal(pthread_create(&w[i].thread, NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
    pthread_barrier_destroy(&start_line);

    assert_no_errors();
    assert_int_equal(counter, (unsigned long)THREADS * ITERATIONS);
    assert_int_equal(ndis_lock.SpinLock, 0);
    assert_int_equal(ke_lock, 0);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    NdisFreeSpinLock(&ndis_lock);
}

static void ndis_acquire_release_keeps_a_plain_counter_exact(void **state)
{
    (void)state;
    const enum lock_form f[THREADS] = { FORM_NDIS, FORM_NDIS, FORM_NDIS, FORM_NDIS };
    run_workers(f, &ke_lock);
}

static void ndis_dpr_pair_at_dispatch_keeps_a_plain_counter_exact(void **state)
{
    (void)state;
    const enum lock_form f[THREADS] = { FORM_NDIS_DPR, FORM_NDIS_DPR, FORM_NDIS_DPR,
                                        FORM_NDIS_DPR };
    run_workers(f, &ke_lock);
}

static void ke_acquire_release_keeps_a_plain_counter_exact(void **state)
{
    (void)state;
    const enum lock_form f[THREADS] = { FORM_KE, FORM_KE, FORM_KE, FORM_KE };
    run_workers(f, &ke_lock);
}

static void ke_dpc_level_pair_keeps_a_plain_counter_exact(void **state)
{
    (void)state;
    const enum lock_form f[THREADS] = { FORM_KE_DPC, FORM_KE_DPC, FORM_KE_DPC, FORM_KE_DPC };
    run_workers(f, &ke_lock);
}

/* Drivers pass &Lock.SpinLock to Ke calls while other paths use the NDIS calls on the same lock. */
static void every_form_on_one_lock_word_excludes_the_others(void **state)
{
    (void)state;
    const enum lock_form f[THREADS] = { FORM_NDIS, FORM_NDIS_DPR, FORM_KE, FORM_KE_DPC };
    run_workers(f, &ndis_lock.SpinLock);
}

/* ---- a waiter really waits ---- */

static atomic_int waiter_got_it;
static atomic_int waiter_ready;
static KIRQL waiter_level_inside, waiter_level_after;

static void *waiter_main(void *arg)
{
    (void)arg;
    atomic_store(&waiter_ready, 1);
    NdisAcquireSpinLock(&ndis_lock);
    atomic_store(&waiter_got_it, 1);
    waiter_level_inside = KeGetCurrentIrql();
    NdisReleaseSpinLock(&ndis_lock);
    waiter_level_after = KeGetCurrentIrql();
    return NULL;
}

static void acquire_blocks_while_another_thread_holds_the_lock(void **state)
{
    (void)state;
    NdisAllocateSpinLock(&ndis_lock);
    atomic_store(&waiter_got_it, 0);
    atomic_store(&waiter_ready, 0);
    NdisAcquireSpinLock(&ndis_lock);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter_main, NULL), 0);
    while (!atomic_load(&waiter_ready))
        sched_yield();
    struct timespec pause = { 0, 50 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    assert_int_equal(atomic_load(&waiter_got_it), 0);
    /* The waiter raised before spinning but must not have touched our saved level. */
    assert_int_equal(ndis_lock.OldIrql, PASSIVE_LEVEL);

    NdisReleaseSpinLock(&ndis_lock);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&waiter_got_it), 1);
    assert_int_equal(waiter_level_inside, DISPATCH_LEVEL);
    assert_int_equal(waiter_level_after, PASSIVE_LEVEL);
    assert_int_equal(ndis_lock.SpinLock, 0);
}

int main(void)
{
    alarm(HANG_GUARD_SECONDS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(ndis_acquire_release_keeps_a_plain_counter_exact, reset_errors),
        cmocka_unit_test_setup(ndis_dpr_pair_at_dispatch_keeps_a_plain_counter_exact, reset_errors),
        cmocka_unit_test_setup(ke_acquire_release_keeps_a_plain_counter_exact, reset_errors),
        cmocka_unit_test_setup(ke_dpc_level_pair_keeps_a_plain_counter_exact, reset_errors),
        cmocka_unit_test_setup(every_form_on_one_lock_word_excludes_the_others, reset_errors),
        cmocka_unit_test_setup(acquire_blocks_while_another_thread_holds_the_lock, reset_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
