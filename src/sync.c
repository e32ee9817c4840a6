/* SPDX-License-Identifier: MIT */
/* sync.c - kernel and NDIS spin locks. The lock is the KSPIN_LOCK word itself (decision 23), so
 * NDIS_SPIN_LOCK keeps its WDK size inside driver structures; the emulated IRQL is raised and
 * restored around it exactly as the WDK macros do (decision 22). */
#include <sched.h>

#include "irql.h"
#include "ndis.h"

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
static void spin_acquire(PKSPIN_LOCK lock)
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

static void spin_release(PKSPIN_LOCK lock) { __atomic_store_n(lock, (ULONG_PTR)0, __ATOMIC_RELEASE); }

LIBNDIS_API VOID NTAPI KeInitializeSpinLock(PKSPIN_LOCK SpinLock)
{
    __atomic_store_n(SpinLock, (ULONG_PTR)0, __ATOMIC_RELAXED);
}

LIBNDIS_API KIRQL NTAPI KfAcquireSpinLock(PKSPIN_LOCK SpinLock)
{
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL);
    spin_acquire(SpinLock);
    return old;
}

LIBNDIS_API VOID NTAPI KfReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql)
{
    spin_release(SpinLock);
    KeLowerIrql(NewIrql);
}

LIBNDIS_API VOID NTAPI KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock) { spin_acquire(SpinLock); }

LIBNDIS_API VOID NTAPI KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock) { spin_release(SpinLock); }

NDISAPI VOID NdisAllocateSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    KeInitializeSpinLock(&SpinLock->SpinLock);
    SpinLock->OldIrql = PASSIVE_LEVEL;
}

NDISAPI VOID NdisFreeSpinLock(PNDIS_SPIN_LOCK SpinLock) { (void)SpinLock; }

/* OldIrql is written only once the lock is held: it belongs to the holder. */
NDISAPI VOID NdisAcquireSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    KIRQL old = KfAcquireSpinLock(&SpinLock->SpinLock);
    SpinLock->OldIrql = old;
}

NDISAPI VOID NdisReleaseSpinLock(PNDIS_SPIN_LOCK SpinLock)
{
    KfReleaseSpinLock(&SpinLock->SpinLock, SpinLock->OldIrql);
}

NDISAPI VOID NdisDprAcquireSpinLock(PNDIS_SPIN_LOCK SpinLock) { spin_acquire(&SpinLock->SpinLock); }

NDISAPI VOID NdisDprReleaseSpinLock(PNDIS_SPIN_LOCK SpinLock) { spin_release(&SpinLock->SpinLock); }
