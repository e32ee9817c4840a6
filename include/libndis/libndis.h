/* SPDX-License-Identifier: MIT */
/* libndis.h - libndis extensions that are not part of the WDK API: version, buffer-pool strict
 * mode and introspection, memory usage by tag. Names use the LibNdis / libndis_ prefix
 * (decision 26) so driver code that includes only <ndis.h> sees WDK names alone. */
#ifndef LIBNDIS_LIBNDIS_H
#define LIBNDIS_LIBNDIS_H

#include "ndis.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LIBNDIS_VERSION_MAJOR 0
#define LIBNDIS_VERSION_MINOR 1
#define LIBNDIS_VERSION_PATCH 0

/* "major.minor.patch" of the library actually loaded. */
LIBNDIS_API const char *libndis_version(void);

/* A pool tag as the WDK writes it: LIBNDIS_TAG('N','d','i','s') equals the multi-character
 * constant 'sidN', and reads "Ndis" in memory. */
#define LIBNDIS_TAG(a, b, c, d) \
    ((ULONG)(UCHAR)(a) | ((ULONG)(UCHAR)(b) << 8) | ((ULONG)(UCHAR)(c) << 16) | ((ULONG)(UCHAR)(d) << 24))
/* The tag NdisAllocateMemory (untagged) records. */
#define LIBNDIS_DEFAULT_MEMORY_TAG LIBNDIS_TAG('N', 'd', 'i', 's')

/* ---- buffer pools ---- */

/* Environment variable: when set to 1 every buffer pool created afterwards is strict. */
#define LIBNDIS_ENV_STRICT_POOLS "LIBNDIS_STRICT_POOLS"

/* Strict mode (decision 11): allocations fail with NDIS_STATUS_FAILURE once NumberOfDescriptors
 * descriptors are out, instead of growing the pool. NDIS_STATUS_FAILURE for the NULL (default)
 * pool, which is never strict, for a retired pool, and when more than NumberOfDescriptors are
 * out at the time of the call (storage a grown pool no longer needs is parked, not freed). */
LIBNDIS_API NDIS_STATUS LibNdisSetBufferPoolStrict(_In_ NDIS_HANDLE PoolHandle, _In_ BOOLEAN Strict);

typedef struct _LIBNDIS_POOL_INFO {
    ULONG DeclaredDescriptors; /* NumberOfDescriptors given to NdisAllocateBufferPool */
    ULONG StorageDescriptors;  /* descriptors with storage set up (grows unless strict) */
    ULONG InUse;               /* descriptors allocated and not yet freed */
    BOOLEAN Strict;
    BOOLEAN Retired;           /* freed while descriptors were out (decision 13) */
} LIBNDIS_POOL_INFO, *PLIBNDIS_POOL_INFO;

/* Exact when no other thread is using the pool. The NULL handle reports the default pool.
 * A retired pool may be queried until its last descriptor comes back. */
LIBNDIS_API NDIS_STATUS LibNdisQueryBufferPool(_In_opt_ NDIS_HANDLE PoolHandle,
                                               _Out_ PLIBNDIS_POOL_INFO Info);

/* Buffer pools (retired ones included, the default pool excluded) whose storage is still held:
 * lets a test prove that retirement releases everything once the last descriptor is back. */
LIBNDIS_API ULONG LibNdisLiveBufferPools(void);

/* ---- memory usage by tag ---- */
typedef struct _LIBNDIS_TAG_USAGE {
    ULONG Tag;
    ULONG Reserved; /* 1 in the one entry that sums every tag beyond the first 1023 distinct */
    ULONGLONG OutstandingAllocations; /* allocated and not yet freed */
    ULONGLONG OutstandingBytes;
    ULONGLONG TotalAllocations;       /* ever allocated with this tag */
} LIBNDIS_TAG_USAGE, *PLIBNDIS_TAG_USAGE;

/* TRUE and *Usage filled when Tag was ever used; FALSE and *Usage zeroed otherwise. Past 1023
 * distinct tags, a tag without an entry of its own reports the aggregate entry (Reserved 1). */
LIBNDIS_API BOOLEAN LibNdisQueryMemoryTag(_In_ ULONG Tag, _Out_ PLIBNDIS_TAG_USAGE Usage);
/* Fills up to Capacity entries (Array may be NULL when Capacity is 0); returns how many entries
 * exist, which may exceed Capacity: one per tag, the first 1023 distinct tags having their own
 * and all later ones sharing the aggregate entry (Reserved 1), so at most 1024. */
LIBNDIS_API ULONG LibNdisEnumerateMemoryTags(_Out_writes_opt_(Capacity) PLIBNDIS_TAG_USAGE Array,
                                             _In_ ULONG Capacity);


/* ---- the verifier: a run-time checked mode (decision 25; docs/verifier.md) ----
 *
 * Off by default. LIBNDIS_VERIFY=1 in the environment turns every rule on with its default
 * policy; the variable also takes a comma-separated spec (the same text LibNdisVerifierConfigure
 * takes):
 *   1 | all          every rule, default policies          0 | none   everything off
 *   RULE            turn one rule on (default policy)      -RULE      turn it off
 *   RULE=report|abort|off                                  abort=default|none|all
 *   fault=buffer+packet+memory+map|all                     fault_rate=P (0..1)
 *   fault_after=N   fail every allocation after the first N allowed ones
 *   fault_seed=N    fault_tag=ABCD (memory tag, as it reads in memory; fault_tag=- clears)
 *   quarantine=N    freed objects held before reuse (default 256; 0 = none)
 *   backtrace=0|1
 * Every report starts with "libndis verifier: RULE: " on stderr, unless a callback is
 * installed. Objects made before the verifier was switched on are not tracked. */
#define LIBNDIS_ENV_VERIFY "LIBNDIS_VERIFY"

typedef struct _LIBNDIS_VERIFIER_REPORT {
    const char *Rule;        /* stable upper-case name, e.g. "DOUBLE_FREE" */
    const char *Text;        /* the whole report as printed, lines separated by '\n' */
    const char *Function;    /* the NDIS call that found it, e.g. "NdisFreeBuffer" */
    PVOID Object;            /* descriptor, packet, memory block or spin lock concerned */
    NDIS_HANDLE Pool;        /* its pool, when it has one */
    const char *CallFile;    /* the offending call, when the header macros could capture it */
    int CallLine;
    const char *AllocFile;   /* where the object was made, when known */
    int AllocLine;
    BOOLEAN Aborting;        /* the rule's policy is to abort after this report */
} LIBNDIS_VERIFIER_REPORT, *PLIBNDIS_VERIFIER_REPORT;

typedef VOID (*LIBNDIS_VERIFIER_CALLBACK)(_In_ const LIBNDIS_VERIFIER_REPORT *Report,
                                          _In_opt_ PVOID Context);

/* Applies a spec on top of the current configuration; NDIS_STATUS_SUCCESS, or
 * NDIS_STATUS_INVALID_PARAMETER (nothing changed) for an item it does not understand. */
LIBNDIS_API NDIS_STATUS LibNdisVerifierConfigure(_In_ const char *Spec);
/* TRUE when any rule or fault injection is on. */
LIBNDIS_API BOOLEAN LibNdisVerifierEnabled(void);
/* NULL restores stderr. Reports are delivered from the thread that found them. */
LIBNDIS_API VOID LibNdisVerifierSetCallback(_In_opt_ LIBNDIS_VERIFIER_CALLBACK Callback,
                                            _In_opt_ PVOID Context);
/* Reports made so far, of one rule or (NULL) of all: tests assert "no reports" in one call. */
LIBNDIS_API ULONG LibNdisVerifierReportCount(_In_opt_ const char *Rule);
/* Zeroes the report and fault counters. */
LIBNDIS_API VOID LibNdisVerifierResetCounts(void);
/* Reports every tracked object still out (rule LEAK) now, as at process exit; returns how many. */
LIBNDIS_API ULONG LibNdisVerifierCheckLeaks(void);
/* Restricts fault injection to one pool (buffer or packet); NULL lifts the restriction. */
LIBNDIS_API VOID LibNdisVerifierFaultPool(_In_opt_ NDIS_HANDLE PoolHandle);
/* Failures injected so far. */
LIBNDIS_API ULONG LibNdisVerifierFaultsInjected(void);

#ifdef __cplusplus
}
#endif

#endif /* LIBNDIS_LIBNDIS_H */
