/* SPDX-License-Identifier: MIT */
/* irql.c - IRQL emulated per thread. There is no interrupt to mask in user space; the level only
 * records what the code believes, so that NDIS code can be run "at DISPATCH_LEVEL" as from a DPC
 * and the rules that depend on it can be checked. Every thread starts at PASSIVE_LEVEL. */
#include "irql.h"

__thread KIRQL irql_current __attribute__((tls_model("initial-exec"))) = PASSIVE_LEVEL;

LIBNDIS_API KIRQL NTAPI KeGetCurrentIrql(VOID) { return irql_current; }

/* Raising to a lower level is a bugcheck on Windows; here the level simply stays where it is, so
 * the KeLowerIrql that follows still restores the caller's level. */
LIBNDIS_API KIRQL NTAPI KfRaiseIrql(KIRQL NewIrql)
{
    KIRQL old = irql_current;
    if (NewIrql > old)
        irql_current = NewIrql;
    return old;
}

LIBNDIS_API VOID NTAPI KeLowerIrql(KIRQL NewIrql) { irql_current = NewIrql; }

LIBNDIS_API KIRQL NTAPI KeRaiseIrqlToDpcLevel(VOID) { return KfRaiseIrql(DISPATCH_LEVEL); }
