/* SPDX-License-Identifier: MIT */
/* test_sync.c - the emulated per-thread IRQL and the kernel / NDIS spin locks, one thread at a
 * time: the level each call leaves behind, where NdisAcquireSpinLock keeps the old level, the WDK
 * outcome of a non-LIFO release, and the lock word. Contention is test_concurrency_sync.c's job. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <ndis.h>

#define HANG_GUARD_SECONDS 30 /* a lock that never frees must fail the program, not hang ctest */

/* A failed assertion must not leave the next test running at a raised level. */
static int back_to_passive(void **state)
{
    (void)state;
    KeLowerIrql(PASSIVE_LEVEL);
    return 0;
}

/* ---- IRQL ---- */

static void main_thread_starts_at_passive(void **state)
{
    (void)state;
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

struct thread_view {
    KIRQL at_start;
    KIRQL after_raise;
};

static void *observe_irql(void *arg)
{
    struct thread_view *v = arg;
    KIRQL old;
    v->at_start = KeGetCurrentIrql();
    KeRaiseIrql(APC_LEVEL, &old);
    v->after_raise = KeGetCurrentIrql();
    KeLowerIrql(old);
    return NULL;
}

static void new_thread_starts_at_passive_whatever_its_creator_runs_at(void **state)
{
    (void)state;
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    struct thread_view v = { 0xFF, 0xFF };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, observe_irql, &v), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(v.at_start, PASSIVE_LEVEL);
    assert_int_equal(v.after_raise, APC_LEVEL);
    /* The other thread's raise did not touch this thread's level. */
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(old);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void raise_returns_old_level_and_lower_restores_it(void **state)
{
    (void)state;
    KIRQL o1 = 0xFF, o2 = 0xFF, o3 = 0xFF;
    KeRaiseIrql(APC_LEVEL, &o1);
    assert_int_equal(o1, PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeRaiseIrql(DISPATCH_LEVEL, &o2);
    assert_int_equal(o2, APC_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeRaiseIrql(HIGH_LEVEL, &o3);
    assert_int_equal(o3, DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), HIGH_LEVEL);
    KeLowerIrql(o3);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(o2);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(o1);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void raise_to_same_level_keeps_it(void **state)
{
    (void)state;
    KIRQL o1, o2;
    KeRaiseIrql(DISPATCH_LEVEL, &o1);
    KeRaiseIrql(DISPATCH_LEVEL, &o2);
    assert_int_equal(o2, DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(o2);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(o1);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void raise_to_lower_level_leaves_level_and_returns_old(void **state)
{
    (void)state;
    KIRQL o1, o2 = 0xFF;
    KeRaiseIrql(DISPATCH_LEVEL, &o1);
    KeRaiseIrql(APC_LEVEL, &o2);
    assert_int_equal(o2, DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeRaiseIrql(PASSIVE_LEVEL, &o2);
    assert_int_equal(o2, DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    /* The matching lower therefore still returns to DISPATCH, not below. */
    KeLowerIrql(o2);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(o1);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void raise_irql_to_dpc_level(void **state)
{
    (void)state;
    assert_int_equal(KeRaiseIrqlToDpcLevel(), PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(APC_LEVEL);
    assert_int_equal(KeRaiseIrqlToDpcLevel(), APC_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(KeRaiseIrqlToDpcLevel(), DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void kf_raise_irql_is_the_function_behind_the_macro(void **state)
{
    (void)state;
    assert_int_equal(KfRaiseIrql(APC_LEVEL), PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(PASSIVE_LEVEL);
}

/* ---- NDIS spin locks ---- */

static void ndis_spin_lock_layout_at_run_time(void **state)
{
    (void)state;
    assert_int_equal(sizeof(KSPIN_LOCK), sizeof(void *));
    assert_int_equal(sizeof(NDIS_SPIN_LOCK), 2 * sizeof(void *)); /* 16 on x64, 8 on x86 */
    assert_int_equal(offsetof(NDIS_SPIN_LOCK, SpinLock), 0);
    assert_int_equal(offsetof(NDIS_SPIN_LOCK, OldIrql), sizeof(void *));
    assert_int_equal(sizeof(((NDIS_SPIN_LOCK *)0)->OldIrql), 1);
}

static void allocate_spin_lock_makes_a_free_lock_from_garbage(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK lock;
    memset(&lock, 0xA5, sizeof(lock));
    NdisAllocateSpinLock(&lock);
    assert_int_equal(lock.SpinLock, 0);
    /* Usable straight away, and free again afterwards. */
    NdisAcquireSpinLock(&lock);
    NdisReleaseSpinLock(&lock);
    assert_int_equal(lock.SpinLock, 0);
    NdisFreeSpinLock(&lock);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void acquire_raises_to_dispatch_and_keeps_old_level_in_the_lock(KIRQL From)
{
    NDIS_SPIN_LOCK lock;
    KIRQL old;
    NdisAllocateSpinLock(&lock);
    KeRaiseIrql(From, &old);
    assert_int_equal(KeGetCurrentIrql(), From);
    lock.OldIrql = 0x7E; /* must be overwritten by the acquire */

    NdisAcquireSpinLock(&lock);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(lock.OldIrql, From);
    assert_int_not_equal(lock.SpinLock, 0);

    NdisReleaseSpinLock(&lock);
    assert_int_equal(KeGetCurrentIrql(), From);
    assert_int_equal(lock.SpinLock, 0);
    KeLowerIrql(old);
    NdisFreeSpinLock(&lock);
}

static void acquire_from_passive_restores_passive(void **state)
{
    (void)state;
    acquire_raises_to_dispatch_and_keeps_old_level_in_the_lock(PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void acquire_from_apc_restores_apc(void **state)
{
    (void)state;
    acquire_raises_to_dispatch_and_keeps_old_level_in_the_lock(APC_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void acquire_from_dispatch_stays_at_dispatch(void **state)
{
    (void)state;
    acquire_raises_to_dispatch_and_keeps_old_level_in_the_lock(DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void nested_locks_released_lifo_restore_each_level(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK a, b;
    NdisAllocateSpinLock(&a);
    NdisAllocateSpinLock(&b);
    NdisAcquireSpinLock(&a);
    NdisAcquireSpinLock(&b);
    assert_int_equal(a.OldIrql, PASSIVE_LEVEL);
    assert_int_equal(b.OldIrql, DISPATCH_LEVEL);
    NdisReleaseSpinLock(&b);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(b.SpinLock, 0);
    assert_int_not_equal(a.SpinLock, 0);
    NdisReleaseSpinLock(&a);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(a.SpinLock, 0);
}

/* Reference §5.2 / §7 item 14: OldIrql lives in the lock, so releasing A before B drops to
 * PASSIVE while B is still held, and releasing B then "restores" DISPATCH. The WDK macros do
 * exactly this; the emulation must not quietly fix it. */
static void non_lifo_release_restores_the_wrong_level_as_the_wdk_does(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK a, b;
    NdisAllocateSpinLock(&a);
    NdisAllocateSpinLock(&b);
    NdisAcquireSpinLock(&a);
    NdisAcquireSpinLock(&b);

    NdisReleaseSpinLock(&a);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL); /* B still held at PASSIVE */
    assert_int_not_equal(b.SpinLock, 0);
    assert_int_equal(a.SpinLock, 0);

    NdisReleaseSpinLock(&b);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL); /* left raised */
    assert_int_equal(b.SpinLock, 0);
    KeLowerIrql(PASSIVE_LEVEL);
}

static void dpr_forms_change_no_level(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK lock;
    KIRQL old;
    NdisAllocateSpinLock(&lock);
    KeRaiseIrql(DISPATCH_LEVEL, &old);

    NdisDprAcquireSpinLock(&lock);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_not_equal(lock.SpinLock, 0);
    NdisDprReleaseSpinLock(&lock);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(lock.SpinLock, 0);

    KeLowerIrql(old);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void dpr_acquire_inside_a_plain_one_keeps_the_plain_old_level(void **state)
{
    (void)state;
    NDIS_SPIN_LOCK outer, inner;
    NdisAllocateSpinLock(&outer);
    NdisAllocateSpinLock(&inner);
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    NdisAcquireSpinLock(&outer);
    NdisDprAcquireSpinLock(&inner);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    NdisDprReleaseSpinLock(&inner);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(outer.OldIrql, APC_LEVEL);
    NdisReleaseSpinLock(&outer);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(old);
}

/* ---- kernel spin locks ---- */

static void ke_initialize_spin_lock_zeroes_the_word(void **state)
{
    (void)state;
    KSPIN_LOCK lock = (KSPIN_LOCK)0xDEADBEEFu;
    KeInitializeSpinLock(&lock);
    assert_int_equal(lock, 0);
}

static void ke_acquire_release_from(KIRQL From)
{
    KSPIN_LOCK lock;
    KIRQL before, old = 0xFF;
    KeInitializeSpinLock(&lock);
    KeRaiseIrql(From, &before);
    KeAcquireSpinLock(&lock, &old);
    assert_int_equal(old, From);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_not_equal(lock, 0);
    KeReleaseSpinLock(&lock, old);
    assert_int_equal(KeGetCurrentIrql(), From);
    assert_int_equal(lock, 0);
    KeLowerIrql(before);
}

static void ke_acquire_spin_lock_raises_and_release_restores(void **state)
{
    (void)state;
    ke_acquire_release_from(PASSIVE_LEVEL);
    ke_acquire_release_from(APC_LEVEL);
    ke_acquire_release_from(DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void ke_release_spin_lock_lowers_to_the_level_given(void **state)
{
    (void)state;
    KSPIN_LOCK lock;
    KIRQL old;
    KeInitializeSpinLock(&lock);
    KeAcquireSpinLock(&lock, &old);
    KeReleaseSpinLock(&lock, APC_LEVEL); /* the caller's value wins, not a saved one */
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    assert_int_equal(lock, 0);
    KeLowerIrql(PASSIVE_LEVEL);
}

static void ke_dpc_level_forms_change_no_level(void **state)
{
    (void)state;
    KSPIN_LOCK lock;
    KIRQL old;
    KeInitializeSpinLock(&lock);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeAcquireSpinLockAtDpcLevel(&lock);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_not_equal(lock, 0);
    KeReleaseSpinLockFromDpcLevel(&lock);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    assert_int_equal(lock, 0);
    KeLowerIrql(old);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void ndis_lock_word_is_a_kspin_lock(void **state)
{
    (void)state;
    /* Drivers hand &Lock.SpinLock to Ke calls; both views must agree on "held". */
    NDIS_SPIN_LOCK lock;
    KIRQL old;
    NdisAllocateSpinLock(&lock);
    KeAcquireSpinLock(&lock.SpinLock, &old);
    assert_int_not_equal(lock.SpinLock, 0);
    KeReleaseSpinLock(&lock.SpinLock, old);
    assert_int_equal(lock.SpinLock, 0);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

#define T(f) cmocka_unit_test_teardown(f, back_to_passive)

int main(void)
{
    alarm(HANG_GUARD_SECONDS);
    const struct CMUnitTest tests[] = {
        T(main_thread_starts_at_passive),
        T(new_thread_starts_at_passive_whatever_its_creator_runs_at),
        T(raise_returns_old_level_and_lower_restores_it),
        T(raise_to_same_level_keeps_it),
        T(raise_to_lower_level_leaves_level_and_returns_old),
        T(raise_irql_to_dpc_level),
        T(kf_raise_irql_is_the_function_behind_the_macro),
        T(ndis_spin_lock_layout_at_run_time),
        T(allocate_spin_lock_makes_a_free_lock_from_garbage),
        T(acquire_from_passive_restores_passive),
        T(acquire_from_apc_restores_apc),
        T(acquire_from_dispatch_stays_at_dispatch),
        T(nested_locks_released_lifo_restore_each_level),
        T(non_lifo_release_restores_the_wrong_level_as_the_wdk_does),
        T(dpr_forms_change_no_level),
        T(dpr_acquire_inside_a_plain_one_keeps_the_plain_old_level),
        T(ke_initialize_spin_lock_zeroes_the_word),
        T(ke_acquire_spin_lock_raises_and_release_restores),
        T(ke_release_spin_lock_lowers_to_the_level_given),
        T(ke_dpc_level_forms_change_no_level),
        T(ndis_lock_word_is_a_kspin_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
