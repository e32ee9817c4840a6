/* SPDX-License-Identifier: MIT */
/* buffer.c - the NDIS buffer API: buffer pools, NdisAllocateBuffer, NdisCopyBuffer (a zero-copy
 * map of a sub-range of a whole chain, decision 8), NdisFreeBuffer, and the <libndis.h> pool
 * extensions (strict mode, introspection). Descriptors themselves come from mdl.h. */
#include <stdlib.h>

#include "libndis.h"
#include "mdl.h"
#include "verifier.h"

static _Atomic unsigned buffer_live_pools;

/* The NULL handle is the default pool (decision 12); a handle of another kind (a packet pool
 * passed by mistake) is refused rather than misused. */
static inline struct pool *buffer_pool(NDIS_HANDLE handle)
{
    if (handle == NULL)
        return mdl_default_pool;
    struct pool *p = handle;
    return POOL_LIKELY(p->magic == MDL_POOL_MAGIC) ? p : NULL;
}

static bool strict_by_environment(void)
{
    const char *v = getenv(LIBNDIS_ENV_STRICT_POOLS);
    return v != NULL && v[0] == '1';
}

struct pool *buffer_pool_of(NDIS_HANDLE PoolHandle) { return buffer_pool(PoolHandle); }

void buffer_pool_allocate_raw(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle, UINT N)
{
    if (PoolHandle == NULL) {
        /* Nowhere to put the pool: creating it would only leak it. */
        if (Status != NULL)
            *Status = NDIS_STATUS_FAILURE;
        return;
    }
    uint32_t limit = strict_by_environment() ? N : POOL_UNLIMITED;
    /* Out of memory still succeeds, with the NULL handle: the default pool then serves it. */
    *PoolHandle = mdl_pool_create(N, limit, &buffer_live_pools);
    if (Status != NULL)
        *Status = NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisAllocateBufferPool(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle,
                                    UINT NumberOfDescriptors)
{
    if (VERIFYING())
        verifier_buffer_pool_allocate(Status, PoolHandle, NumberOfDescriptors);
    else
        buffer_pool_allocate_raw(Status, PoolHandle, NumberOfDescriptors);
}

void buffer_pool_free_raw(NDIS_HANDLE PoolHandle)
{
    struct pool *p = buffer_pool(PoolHandle);
    if (p != NULL && p != mdl_default_pool)
        pool_retire(p);
}

NDISAPI VOID NdisFreeBufferPool(NDIS_HANDLE PoolHandle)
{
    if (VERIFYING())
        verifier_buffer_pool_free(PoolHandle);
    else
        buffer_pool_free_raw(PoolHandle);
}

/* Everything the fast path below does not handle: bad arguments, an empty per-thread cache, a
 * descriptor too long for a pool slot, a strict or retired pool. */
__attribute__((noinline)) void buffer_allocate_raw(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer,
                                                   struct pool *p, PVOID va, UINT len)
{
    PMDL m = NULL;
    if (Buffer != NULL && p != NULL && mdl_range_ok(va, len, false)) {
        ULONG pages = mdl_span(va, len);
        m = mdl_alloc(p, pages);
        if (m != NULL)
            mdl_describe(m, va, len, pages, MDL_SOURCE_IS_NONPAGED_POOL);
    }
    if (Buffer != NULL)
        *Buffer = m;
    if (Status != NULL)
        *Status = m != NULL ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

/* The hot path of every NDIS data path: kept a leaf with one tail call so that the common case
 * is a straight run of loads and stores (performance.md). It takes only what a network frame
 * needs, a non-NULL range of one or two pages; everything else is the slow path's. */
LIBNDIS_API VOID __libndis_fast_NdisAllocateBuffer(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer,
                                                   NDIS_HANDLE PoolHandle, PVOID VirtualAddress,
                                                   UINT Length)
{
    struct pool *p = PoolHandle != NULL ? (struct pool *)PoolHandle : mdl_default_pool;
    uintptr_t start = (uintptr_t)VirtualAddress;
    ULONG pages = mdl_span(VirtualAddress, Length);
    if (POOL_LIKELY(Status != NULL && Buffer != NULL && VirtualAddress != NULL && pages <= 2 &&
                    start + Length >= start && p->magic == MDL_POOL_MAGIC)) {
        void *obj;
        if (pool_try_get(p, &obj)) {
            struct mdl_hdr *h = obj;
            h->state = MDL_STATE_SLAB;
            PMDL m = (PMDL)(h + 1);
            mdl_describe(m, VirtualAddress, Length, pages, MDL_SOURCE_IS_NONPAGED_POOL);
            *Buffer = m;
            *Status = NDIS_STATUS_SUCCESS;
            return;
        }
    }
    buffer_allocate_raw(Status, Buffer, buffer_pool(PoolHandle), VirtualAddress, Length);
}

/* The WDK-named exports check for the verifier themselves, for callers that do not come through
 * the <ndis.h> macros (function pointers, loaders); the macros test the flag at the call site
 * and call the __libndis_fast_ entries directly. */
NDISAPI VOID NdisAllocateBuffer(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer,
                                NDIS_HANDLE PoolHandle, PVOID VirtualAddress, UINT Length)
{
    if (VERIFYING())
        verifier_buffer_allocate(Status, Buffer, PoolHandle, VirtualAddress, Length);
    else
        __libndis_fast_NdisAllocateBuffer(Status, Buffer, PoolHandle, VirtualAddress, Length);
}

LIBNDIS_API VOID __libndis_fast_NdisFreeBuffer(PNDIS_BUFFER Buffer)
{
    if (Buffer != NULL)
        mdl_free(Buffer);
}

NDISAPI VOID NdisFreeBuffer(PNDIS_BUFFER Buffer)
{
    if (VERIFYING())
        verifier_buffer_free(Buffer, "NdisFreeBuffer");
    else
        __libndis_fast_NdisFreeBuffer(Buffer);
}

NDISAPI VOID NdisAdjustBufferLength(PNDIS_BUFFER Buffer, UINT Length)
{
    if (VERIFYING())
        verifier_buffer_adjust(Buffer, Length);
    else
        Buffer->ByteCount = Length;
}

/* ---- NdisCopyBuffer ---- */

static void buffer_free_chain(PMDL m)
{
    while (m != NULL) {
        PMDL next = m->Next;
        mdl_free(m);
        m = next;
    }
}

/* The copy is one function at run time: the partials are made inline in the walk, and only the
 * rare cases (long spans, an empty cache, failure) leave it. */
#define BUFFER_INLINE static inline __attribute__((always_inline))

/* One partial descriptor for [off, off + len) of `src`, as IoBuildPartialMdl would make it. */
BUFFER_INLINE PMDL buffer_partial(struct pool *p, PMDL src, ULONG off, ULONG len)
{
    PCHAR va = (PCHAR)MmGetMdlVirtualAddress(src) + off;
    if (!mdl_range_ok(va, len, false))
        return NULL;
    ULONG pages = mdl_span(va, len);
    PMDL m = mdl_alloc(p, pages);
    if (m == NULL)
        return NULL;
    mdl_describe(m, va, len, pages, 0);
    mdl_make_partial(m, src, off, 0);
    return m;
}

/* Length > 0: one partial per non-empty descriptor the range touches. */
BUFFER_INLINE PMDL buffer_copy_range(struct pool *p, PMDL cur, ULONG off, ULONG len)
{
    mdl_seek(&cur, &off);
    if (cur == NULL)
        return NULL;
    PMDL head = NULL, *link = &head;
    for (;;) {
        ULONG take = cur->ByteCount - off;
        if (take > len)
            take = len;
        PMDL m = buffer_partial(p, cur, off, take);
        if (m == NULL)
            break;
        *link = m;
        link = &m->Next;
        len -= take;
        if (len == 0)
            return head;
        off = 0;
        do
            cur = cur->Next;
        while (cur != NULL && cur->ByteCount == 0);
        if (cur == NULL)
            break;
    }
    buffer_free_chain(head);
    return NULL;
}

/* Length == 0: one empty descriptor at the position Offset names. An inner boundary names the
 * next non-empty descriptor's first byte; only the total names the end of the last descriptor. */
static PMDL buffer_copy_point(struct pool *p, PMDL cur, ULONG off)
{
    while (off >= cur->ByteCount) {
        if (cur->Next == NULL) {
            if (off != cur->ByteCount)
                return NULL;
            break;
        }
        off -= cur->ByteCount;
        cur = cur->Next;
    }
    return buffer_partial(p, cur, off, 0);
}

BUFFER_INLINE void buffer_copy(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, struct pool *p,
                               PMDL src, UINT Offset, UINT Length)
{
    PMDL head = NULL;
    if (Buffer != NULL && p != NULL && src != NULL && Length <= MAXULONG - Offset)
        head = POOL_LIKELY(Length != 0) ? buffer_copy_range(p, src, Offset, Length)
                                        : buffer_copy_point(p, src, Offset);
    if (Buffer != NULL)
        *Buffer = head;
    if (Status != NULL)
        *Status = head != NULL ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

void buffer_copy_raw(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, struct pool *p, PMDL src,
                     UINT Offset, UINT Length)
{
    buffer_copy(Status, Buffer, p, src, Offset, Length);
}

LIBNDIS_API VOID __libndis_fast_NdisCopyBuffer(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer,
                                               NDIS_HANDLE PoolHandle, PVOID MemoryDescriptor,
                                               UINT Offset, UINT Length)
{
    buffer_copy(Status, Buffer, buffer_pool(PoolHandle), MemoryDescriptor, Offset, Length);
}

NDISAPI VOID NdisCopyBuffer(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                            PVOID MemoryDescriptor, UINT Offset, UINT Length)
{
    if (VERIFYING())
        verifier_buffer_copy(Status, Buffer, PoolHandle, MemoryDescriptor, Offset, Length);
    else
        __libndis_fast_NdisCopyBuffer(Status, Buffer, PoolHandle, MemoryDescriptor, Offset, Length);
}

/* ---- <libndis.h> pool extensions ---- */

LIBNDIS_API NDIS_STATUS LibNdisSetBufferPoolStrict(NDIS_HANDLE PoolHandle, BOOLEAN Strict)
{
    struct pool *p = PoolHandle != NULL ? buffer_pool(PoolHandle) : NULL;
    if (p == NULL)
        return NDIS_STATUS_FAILURE;
    return pool_set_limit(p, Strict ? p->declared : POOL_UNLIMITED) ? NDIS_STATUS_SUCCESS
                                                                     : NDIS_STATUS_FAILURE;
}

LIBNDIS_API NDIS_STATUS LibNdisQueryBufferPool(NDIS_HANDLE PoolHandle, PLIBNDIS_POOL_INFO Info)
{
    struct pool *p = buffer_pool(PoolHandle);
    if (p == NULL || Info == NULL)
        return NDIS_STATUS_FAILURE;
    struct pool_stats s;
    pool_stats(p, &s);
    if (VERIFYING())
        s.in_use -= verifier_quarantined(p);
    Info->DeclaredDescriptors = s.declared;
    Info->StorageDescriptors = s.created;
    Info->InUse = s.in_use;
    Info->Strict = s.limit != POOL_UNLIMITED;
    Info->Retired = s.retired;
    return NDIS_STATUS_SUCCESS;
}

LIBNDIS_API ULONG LibNdisLiveBufferPools(void)
{
    return atomic_load_explicit(&buffer_live_pools, memory_order_relaxed);
}
