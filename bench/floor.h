/* SPDX-License-Identifier: MIT */
/* floor.h - the reference back-ends bench_pool.c measures libndis against: "floor" (an unlocked
 * intrusive free list), "floor-cache" (a per-thread cache of pointers in front of a locked depot)
 * and "malloc" (one heap block per object), for buffer descriptors and for packets. Each does the
 * full init the contract asks of NdisAllocateBuffer / NdisCopyBuffer / NdisAllocatePacket behind
 * out-of-line calls shaped like the NDIS ones, so what separates libndis from them is overhead,
 * not work the floor skipped. */
#ifndef LIBNDIS_BENCH_FLOOR_H
#define LIBNDIS_BENCH_FLOOR_H

#include <ndis.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Out of line as a library entry point is: noipa also stops GCC from specialising the callee to
 * its one call site (dropping the out-pointers, constant-propagating the pool), which would let
 * the floor do less than a real call into libndis.so can. */
#if defined(__has_attribute)
#if __has_attribute(noipa)
#define FLOOR_CALL __attribute__((noipa))
#endif
#endif
#ifndef FLOOR_CALL
#define FLOOR_CALL __attribute__((noinline))
#endif
#define FLOOR_INLINE static inline __attribute__((always_inline))
#define FLOOR_LIKELY(x) __builtin_expect(!!(x), 1)
#define FLOOR_UNLIKELY(x) __builtin_expect(!!(x), 0)

enum {
    FLOOR_SLOT_PAGES = 8,      /* PFNs a pooled slot holds; bigger descriptors get a heap block */
    FLOOR_SLOT_SIZE = 128,     /* hidden header + MDL + PFNs: two cache lines */
    FLOOR_CHUNK_BYTES = 32768, /* one chunk of slots: 255 descriptor slots after its header */
    FLOOR_CHUNK_HEADER = 128,  /* keeps the slots behind it cache-line aligned */
    FLOOR_MAX_PAGES = (0xFFFF - sizeof(MDL)) / sizeof(PFN_NUMBER), /* 16-bit Size limit */
    FLOOR_TC_CAP = 64,         /* pointers a thread cache holds */
    FLOOR_TC_BATCH = 32,       /* pointers moved per refill or drain */
};

/* Precedes every descriptor and packet, as the library's hidden header does: free finds its pool
 * here. owner == NULL marks a heap block of its own (more than FLOOR_SLOT_PAGES pages). `state`
 * is used by packets only (a second NdisFreePacket must be ignored). */
struct floor_hdr {
    void *owner;
    uint32_t state;
    uint32_t spare;
};

struct floor_chunk {
    struct floor_chunk *next;
};

/* One part of a frame split over k buffers: what the W3 sources and the W4 buffers describe,
 * for every back-end. */
struct frame_part {
    PVOID va;
    UINT len;
};

_Static_assert(sizeof(struct floor_hdr) + sizeof(MDL) + FLOOR_SLOT_PAGES * sizeof(PFN_NUMBER) <=
                   FLOOR_SLOT_SIZE,
               "slot holds header, MDL and PFNs");

FLOOR_INLINE struct floor_hdr *floor_hdr_of(PMDL m)
{
    return (struct floor_hdr *)((char *)m - sizeof(struct floor_hdr));
}

FLOOR_INLINE PMDL floor_slot_mdl(char *slot)
{
    return (PMDL)(slot + sizeof(struct floor_hdr));
}

/* ---- descriptor init: exactly the fields of the behaviour contract ---- */

FLOOR_INLINE CSHORT floor_mdl_size(ULONG pages)
{
    return (CSHORT)(sizeof(MDL) + pages * sizeof(PFN_NUMBER));
}

/* What NdisAllocateBuffer must produce: nonpaged, mapped at va, pseudo-PFNs filled. */
FLOOR_INLINE void floor_init_nonpaged(PMDL m, PVOID va, ULONG len, ULONG pages)
{
    m->Next = NULL;
    m->Size = floor_mdl_size(pages);
    m->MdlFlags = MDL_SOURCE_IS_NONPAGED_POOL;
    m->Process = NULL;
    m->MappedSystemVa = va;
    m->StartVa = PAGE_ALIGN(va);
    m->ByteCount = len;
    m->ByteOffset = BYTE_OFFSET(va);
    PPFN_NUMBER pfn = MmGetMdlPfnArray(m);
    PFN_NUMBER first = (ULONG_PTR)va >> PAGE_SHIFT;
    for (ULONG i = 0; i < pages; i++)
        pfn[i] = first + i;
}

/* What NdisCopyBuffer must produce for [off, off+len) of one source descriptor; the PFNs are
 * copied from the source's array, as IoBuildPartialMdl does. */
FLOOR_INLINE void floor_init_partial(PMDL m, const MDL *src, ULONG off, ULONG len, ULONG pages)
{
    ULONG first_byte = src->ByteOffset + off;
    char *va = (char *)src->StartVa + first_byte;
    m->Next = NULL;
    m->Size = floor_mdl_size(pages);
    m->MdlFlags = (CSHORT)(MDL_PARTIAL |
                           (src->MdlFlags & (MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA |
                                             MDL_IO_PAGE_READ | MDL_IO_SPACE)));
    m->Process = src->Process;
    m->MappedSystemVa = (char *)src->MappedSystemVa + off;
    m->StartVa = PAGE_ALIGN(va);
    m->ByteCount = len;
    m->ByteOffset = BYTE_OFFSET(va);
    const PFN_NUMBER *from = MmGetMdlPfnArray(src) + (first_byte >> PAGE_SHIFT);
    PPFN_NUMBER to = MmGetMdlPfnArray(m);
    for (ULONG i = 0; i < pages; i++)
        to[i] = from[i];
}

/* The argument checks NdisAllocateBuffer owes the contract; the page limit is checked on the
 * cold path, where pages > FLOOR_SLOT_PAGES sends it anyway. */
FLOOR_INLINE int floor_args_ok(PVOID va, UINT len)
{
    return (va != NULL || len == 0) && (ULONG_PTR)va + len >= (ULONG_PTR)va;
}

/* ---- storage shared by the pooled back-ends ---- */

/* A heap block of its own for a descriptor too large for a slot. */
static PMDL floor_big_new(ULONG pages)
{
    if (pages > FLOOR_MAX_PAGES)
        return NULL;
    struct floor_hdr *h = malloc(sizeof(*h) + sizeof(MDL) + pages * sizeof(PFN_NUMBER));
    if (h == NULL)
        return NULL;
    h->owner = NULL;
    return (PMDL)(h + 1);
}

static size_t floor_chunk_slots(size_t slot_size)
{
    return (FLOOR_CHUNK_BYTES - FLOOR_CHUNK_HEADER) / slot_size;
}

/* One chunk of slots owned by `owner`, each header in the free state; the caller threads the
 * slots onto its free structure. */
static char *floor_chunk_new(struct floor_chunk **chunks, void *owner, size_t slot_size)
{
    char *base = aligned_alloc(64, FLOOR_CHUNK_BYTES);
    if (base == NULL)
        return NULL;
    ((struct floor_chunk *)base)->next = *chunks;
    *chunks = (struct floor_chunk *)base;
    char *slots = base + FLOOR_CHUNK_HEADER;
    for (size_t i = 0; i < floor_chunk_slots(slot_size); i++) {
        struct floor_hdr *h = (struct floor_hdr *)(slots + i * slot_size);
        h->owner = owner;
        h->state = 0;
    }
    return slots;
}

static void floor_chunks_free(struct floor_chunk *c)
{
    while (c != NULL) {
        struct floor_chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* ---- floor: intrusive free list, no locking (the physical floor) ---- */

struct floor_list {
    PMDL free;  /* linked through MDL.Next while free */
    struct floor_chunk *chunks;
};

static __attribute__((noinline)) PMDL floor_list_grow(struct floor_list *p)
{
    char *slots = floor_chunk_new(&p->chunks, p, FLOOR_SLOT_SIZE);
    if (slots == NULL)
        return NULL;
    for (int i = (int)floor_chunk_slots(FLOOR_SLOT_SIZE) - 1; i >= 0; i--) {
        PMDL m = floor_slot_mdl(slots + i * FLOOR_SLOT_SIZE);
        m->Next = p->free;
        p->free = m;
    }
    return p->free;
}

FLOOR_INLINE PMDL floor_list_get(struct floor_list *p, ULONG pages)
{
    if (FLOOR_UNLIKELY(pages > FLOOR_SLOT_PAGES))
        return floor_big_new(pages);
    PMDL m = p->free;
    if (FLOOR_UNLIKELY(m == NULL) && (m = floor_list_grow(p)) == NULL)
        return NULL;
    p->free = m->Next;
    return m;
}

FLOOR_INLINE void floor_list_put(PMDL m)
{
    struct floor_hdr *h = floor_hdr_of(m);
    struct floor_list *p = h->owner;
    if (FLOOR_UNLIKELY(p == NULL)) {
        free(h);
        return;
    }
    m->Next = p->free;
    p->free = m;
}

/* Pool heads on cache lines of their own, as the library's: two pools used by two threads
 * (W5) must not share a line. */
static void *floor_head_new(size_t size)
{
    size_t bytes = (size + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

static struct floor_list *floor_list_create(void)
{
    return floor_head_new(sizeof(struct floor_list));
}

static void floor_list_destroy(struct floor_list *p)
{
    if (p != NULL)
        floor_chunks_free(p->chunks);
    free(p);
}

/* ---- floor-cache: per-thread cache of pointers in front of a depot under a spin lock ---- */

/* A depot of objects that sit in slots of `slot_size` bytes behind a struct floor_hdr naming
 * `slot_owner` (the depot itself for descriptors, the packet pool for packets). It never makes
 * more than `limit` objects. */
struct floor_depot {
    atomic_flag lock;
    void **stack;  /* pointer array: a free never writes into the object */
    size_t count;
    size_t cap;
    struct floor_chunk *chunks;
    void *slot_owner;
    uint32_t slot_size;
    uint32_t created;
    uint32_t limit;
};

/* One cache per thread and object kind, bound to the last depot it served: enough for a
 * benchmark that uses one depot per kind and thread; a product would keep one per (thread,
 * pool). Descriptors and packets have a cache each, so that W4, which takes turns between a
 * buffer pool and a packet pool, does not flush one cache per operation. */
struct floor_tcache {
    struct floor_depot *owner;
    unsigned count;
    void *obj[FLOOR_TC_CAP];
};

static _Thread_local _Alignas(64) struct floor_tcache floor_tc;     /* descriptors */
static _Thread_local _Alignas(64) struct floor_tcache floor_pkt_tc; /* packets */

static void floor_depot_lock(struct floor_depot *d)
{
    while (atomic_flag_test_and_set_explicit(&d->lock, memory_order_acquire))
        ;
}

static void floor_depot_unlock(struct floor_depot *d)
{
    atomic_flag_clear_explicit(&d->lock, memory_order_release);
}

/* Depot lock held. */
static int floor_depot_push(struct floor_depot *d, void *m)
{
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 512;
        void **s = realloc(d->stack, cap * sizeof(*s));
        if (s == NULL)
            return 0;
        d->stack = s;
        d->cap = cap;
    }
    d->stack[d->count++] = m;
    return 1;
}

/* Depot lock held. A chunk's slots beyond the limit are never handed out. */
static int floor_depot_grow(struct floor_depot *d)
{
    size_t n = floor_chunk_slots(d->slot_size);
    if (n > d->limit - d->created)
        n = d->limit - d->created;
    if (n == 0)
        return 0;
    char *slots = floor_chunk_new(&d->chunks, d->slot_owner, d->slot_size);
    if (slots == NULL)
        return 0;
    for (size_t i = n; i-- > 0;) {
        if (!floor_depot_push(d, slots + i * d->slot_size + sizeof(struct floor_hdr)))
            return 0;
        d->created++;
    }
    return 1;
}

static void floor_tc_flush(struct floor_tcache *tc, unsigned keep)
{
    struct floor_depot *d = tc->owner;
    floor_depot_lock(d);
    while (tc->count > keep && floor_depot_push(d, tc->obj[tc->count - 1]))
        tc->count--;
    floor_depot_unlock(d);
}

static __attribute__((noinline)) void *floor_cache_refill(struct floor_tcache *tc,
                                                          struct floor_depot *d)
{
    if (tc->owner != d) {
        if (tc->owner != NULL)
            floor_tc_flush(tc, 0);
        tc->owner = d;
    }
    floor_depot_lock(d);
    if (d->count == 0 && !floor_depot_grow(d)) {
        floor_depot_unlock(d);
        return NULL;
    }
    while (tc->count < FLOOR_TC_BATCH && d->count > 0)
        tc->obj[tc->count++] = d->stack[--d->count];
    floor_depot_unlock(d);
    return tc->obj[--tc->count];
}

/* A full cache gives its oldest batch back. A free into another depot than the cache serves
 * rebinds the cache to it, as a get does: a thread that only frees (W5's consumer) would
 * otherwise take the depot lock for every object. */
static __attribute__((noinline)) void floor_cache_drain(struct floor_tcache *tc,
                                                        struct floor_depot *d, void *m)
{
    if (tc->owner == d) {
        floor_tc_flush(tc, FLOOR_TC_CAP - FLOOR_TC_BATCH);
    } else {
        if (tc->owner != NULL)
            floor_tc_flush(tc, 0);
        tc->owner = d;
    }
    tc->obj[tc->count++] = m;
}

FLOOR_INLINE void *floor_tc_get(struct floor_tcache *tc, struct floor_depot *d)
{
    if (FLOOR_LIKELY(tc->owner == d && tc->count != 0))
        return tc->obj[--tc->count];
    return floor_cache_refill(tc, d);
}

FLOOR_INLINE void floor_tc_put(struct floor_tcache *tc, struct floor_depot *d, void *m)
{
    if (FLOOR_LIKELY(tc->owner == d && tc->count < FLOOR_TC_CAP)) {
        tc->obj[tc->count++] = m;
        return;
    }
    floor_cache_drain(tc, d, m);
}

FLOOR_INLINE PMDL floor_cache_get(struct floor_depot *d, ULONG pages)
{
    if (FLOOR_UNLIKELY(pages > FLOOR_SLOT_PAGES))
        return floor_big_new(pages);
    return floor_tc_get(&floor_tc, d);
}

FLOOR_INLINE void floor_cache_put(PMDL m)
{
    struct floor_hdr *h = floor_hdr_of(m);
    struct floor_depot *d = h->owner;
    if (FLOOR_UNLIKELY(d == NULL)) {
        free(h);
        return;
    }
    floor_tc_put(&floor_tc, d, m);
}

static void floor_depot_init(struct floor_depot *d, void *slot_owner, uint32_t slot_size,
                             uint32_t limit)
{
    memset(d, 0, sizeof(*d));
    atomic_flag_clear(&d->lock);
    d->slot_owner = slot_owner;
    d->slot_size = slot_size;
    d->limit = limit;
}

/* Gives everything the calling thread's caches hold back to their depots and unbinds them: a
 * second thread calls it before the depots it used are destroyed. */
static void floor_tc_detach(void)
{
    struct floor_tcache *tcs[] = {&floor_tc, &floor_pkt_tc};
    for (size_t i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++)
        if (tcs[i]->owner != NULL) {
            floor_tc_flush(tcs[i], 0);
            tcs[i]->owner = NULL;
            tcs[i]->count = 0;
        }
}

/* Single-threaded teardown: only the calling thread's caches can still point into the depot. */
static void floor_depot_fini(struct floor_depot *d)
{
    struct floor_tcache *tcs[] = {&floor_tc, &floor_pkt_tc};
    for (size_t i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++)
        if (tcs[i]->owner == d) {
            tcs[i]->owner = NULL;
            tcs[i]->count = 0;
        }
    floor_chunks_free(d->chunks);
    free(d->stack);
}

static struct floor_depot *floor_depot_create(void)
{
    struct floor_depot *d = floor_head_new(sizeof(*d));
    if (d != NULL)
        floor_depot_init(d, d, FLOOR_SLOT_SIZE, UINT32_MAX);
    return d;
}

static void floor_depot_destroy(struct floor_depot *d)
{
    if (d != NULL)
        floor_depot_fini(d);
    free(d);
}

/* ---- malloc: one heap block per descriptor, what IoAllocateMdl-based code pays ---- */

FLOOR_INLINE PMDL floor_heap_get(ULONG pages)
{
    if (FLOOR_UNLIKELY(pages > FLOOR_MAX_PAGES))
        return NULL;
    return malloc(sizeof(MDL) + pages * sizeof(PFN_NUMBER));
}

/* ---- the three back-ends behind one set of NDIS-shaped entry points ---- */

enum floor_kind { FLOOR_KIND_LIST, FLOOR_KIND_CACHE, FLOOR_KIND_HEAP };

/* `kind` is a constant at every call site, so each instantiation keeps only its own branch. */
FLOOR_INLINE PMDL floor_get(enum floor_kind kind, void *pool, ULONG pages)
{
    switch (kind) {
    case FLOOR_KIND_LIST:
        return floor_list_get(pool, pages);
    case FLOOR_KIND_CACHE:
        return floor_cache_get(pool, pages);
    default:
        return floor_heap_get(pages);
    }
}

FLOOR_INLINE void floor_put(enum floor_kind kind, PMDL m)
{
    switch (kind) {
    case FLOOR_KIND_LIST:
        floor_list_put(m);
        break;
    case FLOOR_KIND_CACHE:
        floor_cache_put(m);
        break;
    default:
        free(m);
        break;
    }
}

/* The pop that needs no call: a slot from the free list or the thread cache, else NULL. */
FLOOR_INLINE PMDL floor_try_get(enum floor_kind kind, void *pool)
{
    if (kind == FLOOR_KIND_LIST) {
        struct floor_list *p = pool;
        PMDL m = p->free;
        if (FLOOR_LIKELY(m != NULL))
            p->free = m->Next;
        return m;
    }
    struct floor_tcache *tc = &floor_tc;
    if (FLOOR_LIKELY(tc->owner == pool && tc->count != 0))
        return tc->obj[--tc->count];
    return NULL;
}

/* Everything off the fast path: argument failures, big descriptors, growing, refilling. */
static __attribute__((noinline)) void floor_allocate_slow(enum floor_kind kind,
                                                          NDIS_STATUS *Status,
                                                          PNDIS_BUFFER *Buffer, void *pool,
                                                          PVOID va, UINT len)
{
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, len);
    PMDL m = NULL;
    if (floor_args_ok(va, len))
        m = floor_get(kind, pool, pages);
    if (m != NULL)
        floor_init_nonpaged(m, va, len, pages);
    *Buffer = m;
    *Status = m != NULL ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

/* The fast path makes no call, so it needs no saved registers: the slow path is a tail call. */
FLOOR_INLINE void floor_allocate_impl(enum floor_kind kind, NDIS_STATUS *Status,
                                      PNDIS_BUFFER *Buffer, void *pool, PVOID va, UINT len)
{
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, len);
    PMDL m;
    if (kind != FLOOR_KIND_HEAP && FLOOR_LIKELY(floor_args_ok(va, len)) &&
        FLOOR_LIKELY(pages <= FLOOR_SLOT_PAGES) && (m = floor_try_get(kind, pool)) != NULL) {
        floor_init_nonpaged(m, va, len, pages);
        *Buffer = m;
        *Status = NDIS_STATUS_SUCCESS;
        return;
    }
    floor_allocate_slow(kind, Status, Buffer, pool, va, len);
}

FLOOR_INLINE void floor_free_chain(enum floor_kind kind, PMDL m)
{
    while (m != NULL) {
        PMDL next = m->Next;
        floor_put(kind, m);
        m = next;
    }
}

/* Length 0 is rare and follows its own rule (decision 8): one zero-length descriptor at the
 * position Offset names; only Offset == total names the end of the last descriptor. */
static __attribute__((noinline)) PMDL floor_copy_empty(enum floor_kind kind, void *pool,
                                                       PMDL cur, ULONG offset)
{
    while (offset >= cur->ByteCount && !(offset == cur->ByteCount && cur->Next == NULL)) {
        offset -= cur->ByteCount;
        if ((cur = cur->Next) == NULL)
            return NULL;
    }
    char *va = (char *)MmGetMdlVirtualAddress(cur) + offset;
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, 0);
    PMDL m = floor_get(kind, pool, pages);
    if (m != NULL)
        floor_init_partial(m, cur, offset, 0, pages);
    return m;
}

/* The NdisCopyBuffer prototype: skip to the descriptor holding Offset (a boundary offset lands
 * on the next non-empty one), then one partial per source descriptor touched. */
FLOOR_INLINE PMDL floor_copy_chain(enum floor_kind kind, void *pool, PMDL cur, ULONG offset,
                                   ULONG length)
{
    while (offset >= cur->ByteCount) {
        offset -= cur->ByteCount;
        if ((cur = cur->Next) == NULL)
            return NULL;
    }
    PMDL head = NULL, *tail = &head;
    for (;;) {
        ULONG n = cur->ByteCount - offset;
        if (n > length)
            n = length;
        if (n != 0) {
            char *va = (char *)MmGetMdlVirtualAddress(cur) + offset;
            ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, n);
            PMDL m = floor_get(kind, pool, pages);
            if (FLOOR_UNLIKELY(m == NULL))
                break;
            floor_init_partial(m, cur, offset, n, pages);
            *tail = m;
            tail = &m->Next;
            length -= n;
            if (length == 0)
                return head;
        }
        offset = 0;
        if ((cur = cur->Next) == NULL)
            break;
    }
    *tail = NULL;
    floor_free_chain(kind, head);
    return NULL;
}

FLOOR_INLINE void floor_copy_impl(enum floor_kind kind, NDIS_STATUS *Status, PNDIS_BUFFER *Buffer,
                                  void *pool, PVOID MemoryDescriptor, UINT Offset, UINT Length)
{
    PMDL m = NULL;
    if (FLOOR_LIKELY(MemoryDescriptor != NULL && Offset + Length >= Offset)) {
        if (FLOOR_LIKELY(Length != 0))
            m = floor_copy_chain(kind, pool, MemoryDescriptor, Offset, Length);
        else
            m = floor_copy_empty(kind, pool, MemoryDescriptor, Offset);
    }
    *Buffer = m;
    *Status = m != NULL ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

FLOOR_CALL static void floor_list_allocate(NDIS_STATUS *Status, PNDIS_BUFFER *Buffer,
                                           struct floor_list *pool, PVOID va, UINT len)
{
    floor_allocate_impl(FLOOR_KIND_LIST, Status, Buffer, pool, va, len);
}

FLOOR_CALL static void floor_list_copy(NDIS_STATUS *Status, PNDIS_BUFFER *Buffer,
                                       struct floor_list *pool, PVOID src, UINT off, UINT len)
{
    floor_copy_impl(FLOOR_KIND_LIST, Status, Buffer, pool, src, off, len);
}

FLOOR_CALL static void floor_list_free(PNDIS_BUFFER Buffer)
{
    if (Buffer != NULL)
        floor_list_put(Buffer);
}

FLOOR_CALL static void floor_cache_allocate(NDIS_STATUS *Status, PNDIS_BUFFER *Buffer,
                                            struct floor_depot *pool, PVOID va, UINT len)
{
    floor_allocate_impl(FLOOR_KIND_CACHE, Status, Buffer, pool, va, len);
}

FLOOR_CALL static void floor_cache_copy(NDIS_STATUS *Status, PNDIS_BUFFER *Buffer,
                                        struct floor_depot *pool, PVOID src, UINT off, UINT len)
{
    floor_copy_impl(FLOOR_KIND_CACHE, Status, Buffer, pool, src, off, len);
}

FLOOR_CALL static void floor_cache_free(PNDIS_BUFFER Buffer)
{
    if (Buffer != NULL)
        floor_cache_put(Buffer);
}

FLOOR_CALL static void floor_heap_allocate(NDIS_STATUS *Status, PNDIS_BUFFER *Buffer,
                                           void *pool, PVOID va, UINT len)
{
    floor_allocate_impl(FLOOR_KIND_HEAP, Status, Buffer, pool, va, len);
}

FLOOR_CALL static void floor_heap_copy(NDIS_STATUS *Status, PNDIS_BUFFER *Buffer, void *pool,
                                       PVOID src, UINT off, UINT len)
{
    floor_copy_impl(FLOOR_KIND_HEAP, Status, Buffer, pool, src, off, len);
}

FLOOR_CALL static void floor_heap_free(PNDIS_BUFFER Buffer)
{
    free(Buffer);
}

/* ---- packets: the same three schemes for NDIS_PACKET descriptors (W4) ---- */

enum {
    FLOOR_PKT_POOL_MAGIC = 0x4C504B46, /* tells a packet pool from a buffer pool */
    FLOOR_PKT_FREE = 0,
    FLOOR_PKT_LIVE = 0x31504B46,       /* a free of a packet in any other state is ignored */
    FLOOR_PKT_MAX = 0xFFFF,            /* descriptors a packet pool may have */
};

/* Everything NdisAllocatePacket needs to make a packet of the pool, then the storage of the
 * pool's kind: the free list, the depot, or nothing (malloc). */
struct floor_pkt_pool {
    uint32_t magic;
    uint32_t size;        /* NdisPacketSize(ProtocolReservedLength): the bytes zeroed */
    uint16_t oob_offset;
    uint8_t protocol_id;
    uint8_t kind;
    uint32_t slot_size;   /* hidden header + packet, rounded to cache lines */
    uint32_t limit;       /* malloc: not enforced */
    uint32_t created;     /* free list */
    PNDIS_PACKET free;    /* free list: linked through the first word of each free packet */
    struct floor_chunk *chunks;
    struct floor_depot depot;
};

FLOOR_INLINE struct floor_hdr *floor_pkt_hdr_of(PNDIS_PACKET pkt)
{
    return (struct floor_hdr *)((char *)pkt - sizeof(struct floor_hdr));
}

/* The free-list link lives in the packet's first bytes, zeroed again on allocation. */
FLOOR_INLINE PNDIS_PACKET floor_pkt_link(PNDIS_PACKET pkt)
{
    PNDIS_PACKET next;
    memcpy(&next, pkt, sizeof(next));
    return next;
}

FLOOR_INLINE void floor_pkt_set_link(PNDIS_PACKET pkt, PNDIS_PACKET next)
{
    memcpy(pkt, &next, sizeof(next));
}

/* The contract's layout: ProtocolReserved rounded up to pointer size, then OOB, then the
 * per-packet info. */
static size_t floor_pkt_oob_offset(UINT protocol_reserved)
{
    return offsetof(NDIS_PACKET, ProtocolReserved) +
           (((size_t)protocol_reserved + sizeof(PVOID) - 1) & ~(sizeof(PVOID) - 1));
}

/* NdisAllocatePacketPool's checks and layout; NULL where it gives RESOURCES. */
static struct floor_pkt_pool *floor_pkt_pool_create(enum floor_kind kind, UINT count,
                                                    UINT protocol_reserved)
{
    size_t oob = floor_pkt_oob_offset(protocol_reserved);
    if (count > FLOOR_PKT_MAX || oob > 0xFFFF)
        return NULL;
    struct floor_pkt_pool *p = floor_head_new(sizeof(*p));
    if (p == NULL)
        return NULL;
    p->magic = FLOOR_PKT_POOL_MAGIC;
    p->size = (uint32_t)(oob + sizeof(NDIS_PACKET_OOB_DATA) + sizeof(NDIS_PACKET_EXTENSION));
    p->oob_offset = (uint16_t)oob;
    p->kind = (uint8_t)kind;
    p->slot_size = (uint32_t)((sizeof(struct floor_hdr) + p->size + 63) & ~(size_t)63);
    p->limit = count;
    floor_depot_init(&p->depot, p, p->slot_size, count);
    return p;
}

static void floor_pkt_pool_set_protocol_id(struct floor_pkt_pool *p, UINT id)
{
    p->protocol_id = (uint8_t)(id & NDIS_PROTOCOL_ID_MASK);
}

static void floor_pkt_pool_destroy(struct floor_pkt_pool *p)
{
    if (p == NULL)
        return;
    floor_chunks_free(p->chunks);
    floor_depot_fini(&p->depot);
    free(p);
}

static __attribute__((noinline)) PNDIS_PACKET floor_pkt_list_grow(struct floor_pkt_pool *p)
{
    size_t n = floor_chunk_slots(p->slot_size);
    if (n > p->limit - p->created)
        n = p->limit - p->created;
    if (n == 0)
        return NULL;
    char *slots = floor_chunk_new(&p->chunks, p, p->slot_size);
    if (slots == NULL)
        return NULL;
    for (size_t i = n; i-- > 0;) {
        PNDIS_PACKET pkt = (PNDIS_PACKET)(slots + i * p->slot_size + sizeof(struct floor_hdr));
        floor_pkt_set_link(pkt, p->free);
        p->free = pkt;
    }
    p->created += (uint32_t)n;
    return p->free;
}

/* The pop that needs no call, else NULL. */
FLOOR_INLINE PNDIS_PACKET floor_pkt_try_get(enum floor_kind kind, struct floor_pkt_pool *p)
{
    if (kind == FLOOR_KIND_LIST) {
        PNDIS_PACKET pkt = p->free;
        if (FLOOR_LIKELY(pkt != NULL))
            p->free = floor_pkt_link(pkt);
        return pkt;
    }
    struct floor_tcache *tc = &floor_pkt_tc;
    if (kind == FLOOR_KIND_CACHE && FLOOR_LIKELY(tc->owner == &p->depot && tc->count != 0))
        return tc->obj[--tc->count];
    return NULL;
}

static PNDIS_PACKET floor_pkt_get_slow(enum floor_kind kind, struct floor_pkt_pool *p)
{
    switch (kind) {
    case FLOOR_KIND_LIST:
        if (p->free == NULL && floor_pkt_list_grow(p) == NULL)
            return NULL;
        return floor_pkt_try_get(kind, p);
    case FLOOR_KIND_CACHE:
        return floor_cache_refill(&floor_pkt_tc, &p->depot);
    default: {
        struct floor_hdr *h = malloc(sizeof(*h) + p->size);
        if (h == NULL)
            return NULL;
        h->owner = p;
        return (PNDIS_PACKET)(h + 1);
    }
    }
}

/* Decision 14: every byte zero but the fields NDIS owns, on every allocation. */
FLOOR_INLINE void floor_pkt_init(struct floor_pkt_pool *p, PNDIS_PACKET pkt)
{
    memset(pkt, 0, p->size);
    floor_pkt_hdr_of(pkt)->state = FLOOR_PKT_LIVE;
    pkt->Private.Pool = p;
    pkt->Private.ValidCounts = TRUE;
    pkt->Private.NdisPacketFlags = fPACKET_ALLOCATED_BY_NDIS;
    pkt->Private.Flags = p->protocol_id;
    pkt->Private.NdisPacketOobOffset = p->oob_offset;
}

/* Everything off the fast path: a handle that is not a packet pool, growing, refilling, malloc. */
static __attribute__((noinline)) void floor_pkt_allocate_slow(enum floor_kind kind,
                                                              NDIS_STATUS *Status,
                                                              PNDIS_PACKET *Packet, void *pool)
{
    struct floor_pkt_pool *p = pool;
    PNDIS_PACKET pkt = NULL;
    NDIS_STATUS st = NDIS_STATUS_FAILURE;
    if (p != NULL && p->magic == FLOOR_PKT_POOL_MAGIC) {
        pkt = floor_pkt_get_slow(kind, p);
        st = NDIS_STATUS_RESOURCES;
    }
    if (pkt != NULL) {
        floor_pkt_init(p, pkt);
        st = NDIS_STATUS_SUCCESS;
    }
    *Packet = pkt;
    *Status = st;
}

FLOOR_INLINE void floor_pkt_allocate_impl(enum floor_kind kind, NDIS_STATUS *Status,
                                          PNDIS_PACKET *Packet, void *pool)
{
    struct floor_pkt_pool *p = pool;
    PNDIS_PACKET pkt;
    if (kind != FLOOR_KIND_HEAP && FLOOR_LIKELY(p != NULL && p->magic == FLOOR_PKT_POOL_MAGIC) &&
        (pkt = floor_pkt_try_get(kind, p)) != NULL) {
        floor_pkt_init(p, pkt);
        *Packet = pkt;
        *Status = NDIS_STATUS_SUCCESS;
        return;
    }
    floor_pkt_allocate_slow(kind, Status, Packet, pool);
}

/* Buffers stay chained: NdisFreePacket never touches them. malloc cannot tell a second free. */
FLOOR_INLINE void floor_pkt_free_impl(enum floor_kind kind, PNDIS_PACKET pkt)
{
    if (pkt == NULL)
        return;
    struct floor_hdr *h = floor_pkt_hdr_of(pkt);
    if (kind == FLOOR_KIND_HEAP) {
        free(h);
        return;
    }
    if (FLOOR_UNLIKELY(h->state != FLOOR_PKT_LIVE))
        return;
    h->state = FLOOR_PKT_FREE;
    struct floor_pkt_pool *p = h->owner;
    if (kind == FLOOR_KIND_LIST) {
        floor_pkt_set_link(pkt, p->free);
        p->free = pkt;
    } else {
        floor_tc_put(&floor_pkt_tc, &p->depot, pkt);
    }
}

FLOOR_CALL static void floor_list_pkt_allocate(NDIS_STATUS *Status, PNDIS_PACKET *Packet,
                                               void *pool)
{
    floor_pkt_allocate_impl(FLOOR_KIND_LIST, Status, Packet, pool);
}

FLOOR_CALL static void floor_list_pkt_free(PNDIS_PACKET Packet)
{
    floor_pkt_free_impl(FLOOR_KIND_LIST, Packet);
}

FLOOR_CALL static void floor_cache_pkt_allocate(NDIS_STATUS *Status, PNDIS_PACKET *Packet,
                                                void *pool)
{
    floor_pkt_allocate_impl(FLOOR_KIND_CACHE, Status, Packet, pool);
}

FLOOR_CALL static void floor_cache_pkt_free(PNDIS_PACKET Packet)
{
    floor_pkt_free_impl(FLOOR_KIND_CACHE, Packet);
}

FLOOR_CALL static void floor_heap_pkt_allocate(NDIS_STATUS *Status, PNDIS_PACKET *Packet,
                                               void *pool)
{
    floor_pkt_allocate_impl(FLOOR_KIND_HEAP, Status, Packet, pool);
}

FLOOR_CALL static void floor_heap_pkt_free(PNDIS_PACKET Packet)
{
    floor_pkt_free_impl(FLOOR_KIND_HEAP, Packet);
}

/* The chain rules do not depend on where packets come from: one pair serves every floor kind.
 * The argument may be a chain: Tail becomes its last descriptor; Tail is read only when the
 * packet is non-empty. */
FLOOR_CALL static void floor_chain_at_back(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer)
{
    PNDIS_BUFFER last = Buffer;
    while (last->Next != NULL)
        last = last->Next;
    if (Packet->Private.Head != NULL)
        Packet->Private.Tail->Next = Buffer;
    else
        Packet->Private.Head = Buffer;
    Packet->Private.Tail = last;
    Packet->Private.ValidCounts = FALSE;
}

FLOOR_CALL static void floor_unchain_at_front(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer)
{
    PNDIS_BUFFER b = Packet->Private.Head;
    *Buffer = b;
    if (b == NULL)
        return;
    PNDIS_BUFFER next = b->Next;
    Packet->Private.Head = next;
    if (next == NULL)
        Packet->Private.Tail = NULL;
    b->Next = NULL;
    Packet->Private.ValidCounts = FALSE;
}

#endif /* LIBNDIS_BENCH_FLOOR_H */
