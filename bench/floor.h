/* SPDX-License-Identifier: MIT */
/* floor.h - the reference back-ends bench_pool.c measures libndis against: "floor" (an unlocked
 * intrusive free list), "floor-cache" (a per-thread cache of pointers in front of a locked depot)
 * and "malloc" (one heap block per descriptor). Each does the full descriptor init the contract
 * asks of NdisAllocateBuffer / NdisCopyBuffer behind out-of-line calls shaped like the NDIS ones,
 * so what separates libndis from them is overhead, not work the floor skipped. */
#ifndef LIBNDIS_BENCH_FLOOR_H
#define LIBNDIS_BENCH_FLOOR_H

#include <ndis.h>

#include <stdatomic.h>
#include <stdlib.h>

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
    FLOOR_CHUNK_SLOTS = 255,   /* slots per chunk after the 128-byte chunk header */
    FLOOR_MAX_PAGES = (0xFFFF - sizeof(MDL)) / sizeof(PFN_NUMBER), /* 16-bit Size limit */
    FLOOR_TC_CAP = 64,         /* pointers a thread cache holds */
    FLOOR_TC_BATCH = 32,       /* pointers moved per refill or drain */
};

/* Precedes every descriptor, as the library's hidden header does: free finds its pool here.
 * owner == NULL marks a heap block of its own (more than FLOOR_SLOT_PAGES pages). */
struct floor_hdr {
    void *owner;
    void *spare;
};

struct floor_chunk {
    struct floor_chunk *next;
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

/* One chunk of slots owned by `owner`; the caller threads the slots onto its free structure. */
static char *floor_chunk_new(struct floor_chunk **chunks, void *owner)
{
    char *base = aligned_alloc(64, FLOOR_SLOT_SIZE * (FLOOR_CHUNK_SLOTS + 1));
    if (base == NULL)
        return NULL;
    ((struct floor_chunk *)base)->next = *chunks;
    *chunks = (struct floor_chunk *)base;
    char *slots = base + FLOOR_SLOT_SIZE;
    for (int i = 0; i < FLOOR_CHUNK_SLOTS; i++)
        ((struct floor_hdr *)(slots + i * FLOOR_SLOT_SIZE))->owner = owner;
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
    char *slots = floor_chunk_new(&p->chunks, p);
    if (slots == NULL)
        return NULL;
    for (int i = FLOOR_CHUNK_SLOTS - 1; i >= 0; i--) {
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

static struct floor_list *floor_list_create(void)
{
    return calloc(1, sizeof(struct floor_list));
}

static void floor_list_destroy(struct floor_list *p)
{
    if (p != NULL)
        floor_chunks_free(p->chunks);
    free(p);
}

/* ---- floor-cache: per-thread cache of pointers in front of a depot under a spin lock ---- */

struct floor_depot {
    atomic_flag lock;
    PMDL *stack;  /* pointer array: a free never writes into the descriptor */
    size_t count;
    size_t cap;
    struct floor_chunk *chunks;
};

/* One cache per thread, bound to the last depot it served: enough for a benchmark that uses one
 * depot per thread; a product would keep one per (thread, pool). */
struct floor_tcache {
    struct floor_depot *owner;
    unsigned count;
    PMDL obj[FLOOR_TC_CAP];
};

static _Thread_local _Alignas(64) struct floor_tcache floor_tc;

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
static int floor_depot_push(struct floor_depot *d, PMDL m)
{
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 512;
        PMDL *s = realloc(d->stack, cap * sizeof(*s));
        if (s == NULL)
            return 0;
        d->stack = s;
        d->cap = cap;
    }
    d->stack[d->count++] = m;
    return 1;
}

/* Depot lock held. */
static int floor_depot_grow(struct floor_depot *d)
{
    char *slots = floor_chunk_new(&d->chunks, d);
    if (slots == NULL)
        return 0;
    for (int i = FLOOR_CHUNK_SLOTS - 1; i >= 0; i--)
        if (!floor_depot_push(d, floor_slot_mdl(slots + i * FLOOR_SLOT_SIZE)))
            return 0;
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

static __attribute__((noinline)) PMDL floor_cache_refill(struct floor_depot *d)
{
    struct floor_tcache *tc = &floor_tc;
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

static __attribute__((noinline)) void floor_cache_drain(struct floor_depot *d, PMDL m)
{
    struct floor_tcache *tc = &floor_tc;
    if (tc->owner == d) {
        floor_tc_flush(tc, FLOOR_TC_CAP - FLOOR_TC_BATCH);
        tc->obj[tc->count++] = m;
        return;
    }
    floor_depot_lock(d);
    floor_depot_push(d, m);
    floor_depot_unlock(d);
}

FLOOR_INLINE PMDL floor_cache_get(struct floor_depot *d, ULONG pages)
{
    if (FLOOR_UNLIKELY(pages > FLOOR_SLOT_PAGES))
        return floor_big_new(pages);
    struct floor_tcache *tc = &floor_tc;
    if (FLOOR_LIKELY(tc->owner == d && tc->count != 0))
        return tc->obj[--tc->count];
    return floor_cache_refill(d);
}

FLOOR_INLINE void floor_cache_put(PMDL m)
{
    struct floor_hdr *h = floor_hdr_of(m);
    struct floor_depot *d = h->owner;
    if (FLOOR_UNLIKELY(d == NULL)) {
        free(h);
        return;
    }
    struct floor_tcache *tc = &floor_tc;
    if (FLOOR_LIKELY(tc->owner == d && tc->count < FLOOR_TC_CAP)) {
        tc->obj[tc->count++] = m;
        return;
    }
    floor_cache_drain(d, m);
}

static struct floor_depot *floor_depot_create(void)
{
    struct floor_depot *d = calloc(1, sizeof(*d));
    if (d != NULL)
        atomic_flag_clear(&d->lock);
    return d;
}

/* Single-threaded teardown: only the calling thread's cache can still point into the depot. */
static void floor_depot_destroy(struct floor_depot *d)
{
    if (d == NULL)
        return;
    if (floor_tc.owner == d) {
        floor_tc.owner = NULL;
        floor_tc.count = 0;
    }
    floor_chunks_free(d->chunks);
    free(d->stack);
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

#endif /* LIBNDIS_BENCH_FLOOR_H */
