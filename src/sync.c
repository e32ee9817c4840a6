/* SPDX-License-Identifier: MIT */
/* sync.c - kernel and NDIS spin locks. The lock is the KSPIN_LOCK word itself (decision 23), so
 * NDIS_SPIN_LOCK keeps its WDK size inside driver structures; the emulated IRQL is raised and
 * restored around it exactly as the WDK macros do (decision 22). */
#include <sched.h>

#include "irql.h"
#include "ndis.h"
#include "verifier.h"

enum { SPIN_BEFORE_YIELD = 64 };

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Test-and-test-and-set: waiters spin on a plain read, which stays in their cache, and give the
 * CPU away now and then because a user-space lock holder can be preempted. */
void spin_acquire_raw(PKSPIN_LOCK lock)
{
    while (__atomic_exchange_n(lock, (ULONG_PTR)1, __ATOMIC_ACQUIRE) != 0) {
        unsigned spins = 0;
        while (__atomic_load_n(lock, __ATOMIC_RELAXED) != 0) {
            cpu_relax();
            if (++spins == SPIN_BEFORE_YIELD) {
                sched_yield();
                spins = 0;
            }
        }
    }
}

void spin_release_raw(PKSPIN_LOCK lock) { __atomic_store_n(lock, (ULONG_PTR)0, __ATOMIC_RELEASE); }

LIBNDIS_API VOID NTAPI KeInitializeSpinLock(PKSPIN_LOCK SpinLock)
{
    __atomic_store_n(SpinLock, (ULONG_PTR)0, __ATOMIC_RELAXED);
}

/* In the checked mode the verifier takes and releases the lock itself, around its checks, so
 * that it sees the thread's lock stack as the code does. */
LIBNDIS_API KIRQL NTAPI KfAcquireSpinLock(PKSPIN_LOCK SpinLock)
{
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL);
    if (VERIFYING())
        verifier_lock_acquire(SpinLock, VLOCK_KE, "KeAcquireSpinLock");
    else
        spin_acquire_raw(SpinLock);
    return old;
}

LIBNDIS_API VOID NTAPI KfReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql)
{
    if (VERIFYING())
        verifier_lock_release(SpinLock, VLOCK_KE, "KeReleaseSpinLock");
    else
        spin_release_raw(SpinLock);
    KeLowerIrql(NewIrql);
}

LIBNDIS_API VOID NTAPI KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock)
{
    if (VERIFYING())
        verifier_lock_acquire(SpinLock, VLOCK_KE_DPC, "KeAcquireSpinLockAtDpcLevel");
    else
        spin_acquire_raw(SpinLock);
}

LIBNDIS_API VOID NTAPI KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock)
{
    if (VERIFYING())
        verifier_lock_release(SpinLock, VLOCK_KE_DPC, "KeReleaseSpinLockFromDpcLevel");
    else
        spin_release_raw(SpinLock);
}

NDISAPI VOID NdisAllocateSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    KeInitializeSpinLock(&SpinLock->SpinLock);
    SpinLock->OldIrql = PASSIVE_LEVEL;
}

NDISAPI VOID NdisFreeSpinLock(PNDIS_SPIN_LOCK SpinLock) { (void)SpinLock; }

/* OldIrql is written only once the lock is held: it belongs to the holder. */
NDISAPI VOID NdisAcquireSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL);
    if (VERIFYING())
        verifier_lock_acquire(&SpinLock->SpinLock, VLOCK_NDIS, "NdisAcquireSpinLock");
    else
        spin_acquire_raw(&SpinLock->SpinLock);
    SpinLock->OldIrql = old;
}

NDISAPI VOID NdisReleaseSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    KIRQL old = SpinLock->OldIrql;
    if (VERIFYING())
        verifier_lock_release(&SpinLock->SpinLock, VLOCK_NDIS, "NdisReleaseSpinLock");
    else
        spin_release_raw(&SpinLock->SpinLock);
    KeLowerIrql(old);
}

NDISAPI VOID NdisDprAcquireSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    if (VERIFYING())
        verifier_lock_acquire(&SpinLock->SpinLock, VLOCK_NDIS_DPR, "NdisDprAcquireSpinLock");
    else
        spin_acquire_raw(&SpinLock->SpinLock);
}

NDISAPI VOID NdisDprReleaseSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    if (VERIFYING())
        verifier_lock_release(&SpinLock->SpinLock, VLOCK_NDIS_DPR, "NdisDprReleaseSpinLock");
    else
        spin_release_raw(&SpinLock->SpinLock);
}
