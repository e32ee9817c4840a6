/* SPDX-License-Identifier: MIT */
/* mdl.h - how the library makes and frees descriptors. Every MDL it hands out sits right behind a
 * hidden 16-byte header that names its pool, so NdisFreeBuffer and IoFreeMdl need no pool
 * argument and accept descriptors from NdisAllocateBuffer, NdisCopyBuffer and IoAllocateMdl alike
 * (decision 6). A descriptor spanning up to MDL_INLINE_PFNS pages lives in a pool slot with its
 * PFN array; a longer one is a separate allocation that still holds one pool slot as a token, so
 * a pool's count covers it too. */
#ifndef LIBNDIS_MDL_H
#define LIBNDIS_MDL_H

#include <string.h>

#include "wdm.h"

#include "pool.h"

enum {
    MDL_INLINE_PFNS = 8, /* a 1514-byte frame spans at most 2 pages; 8 covers up to 28 KiB */
    MDL_POOL_MAGIC = 0x50465542, /* "BUFP": the pool is a buffer pool */
    MDL_MAX_SIZE = 65535,        /* largest MDL.Size the library will describe (decision 7) */
};

/* Descriptor states double as magic numbers: a free of anything not in state SLAB or LARGE is
 * ignored, which is what makes a double free harmless. */
enum {
    MDL_STATE_FREE = 0x304C444D,  /* "MDL0" */
    MDL_STATE_SLAB = 0x314C444D,  /* "MDL1": live, stored in a pool slot */
    MDL_STATE_LARGE = 0x324C444D, /* "MDL2": live, separate allocation */
    MDL_STATE_TOKEN = 0x334C444D, /* "MDL3": a pool slot held on behalf of a large descriptor */
};

struct mdl_hdr {
    struct pool *pool;
    uint32_t state;
    uint32_t reserved; /* for the checked mode: left alone by the fast paths */
} __attribute__((aligned(16)));

_Static_assert(sizeof(struct mdl_hdr) == 16, "the MDL follows its header directly");

#define MDL_OBJ_SIZE (sizeof(struct mdl_hdr) + sizeof(MDL) + MDL_INLINE_PFNS * sizeof(PFN_NUMBER))

/* Pool of the NULL handle and of IoAllocateMdl; never freed. */
extern struct pool *mdl_default_pool;


static inline struct mdl_hdr *mdl_hdr_of(PMDL m) { return (struct mdl_hdr *)m - 1; }

/* NULL when MmSizeOfMdl would exceed 65535 (decision 7) or memory is short. */
PMDL mdl_alloc_large(struct pool *p, ULONG pages);
void mdl_free_other(PMDL m);
struct pool *mdl_pool_create(uint32_t declared, uint32_t limit, _Atomic unsigned *live_counter);

/* Whether [va, va + len) is a range the library may describe: no wrap-around, and a non-NULL
 * address unless `va_optional` (IoAllocateMdl) or len is 0. The MDL Size limit is checked where
 * the descriptor is made, since only descriptors beyond MDL_INLINE_PFNS pages can reach it. */
static inline bool mdl_range_ok(PVOID va, ULONG len, bool va_optional)
{
    uintptr_t start = (uintptr_t)va;
    return (va != NULL || len == 0 || va_optional) && start + len >= start;
}

/* ADDRESS_AND_SIZE_TO_SPAN_PAGES, computed in 64 bits where no sum can overflow. */
static inline ULONG mdl_span(PVOID va, ULONG len)
{
    return (ULONG)((BYTE_OFFSET(va) + (uint64_t)len + PAGE_SIZE - 1) >> PAGE_SHIFT);
}

static inline PMDL mdl_alloc(struct pool *p, ULONG pages)
{
    if (POOL_UNLIKELY(pages > MDL_INLINE_PFNS))
        return mdl_alloc_large(p, pages);
    struct mdl_hdr *h = pool_get(p);
    if (POOL_UNLIKELY(h == NULL))
        return NULL;
    h->state = MDL_STATE_SLAB;
    return (PMDL)(h + 1);
}

static inline void mdl_free(PMDL m)
{
    struct mdl_hdr *h = mdl_hdr_of(m);
    if (POOL_LIKELY(h->state == MDL_STATE_SLAB)) {
        h->state = MDL_STATE_FREE;
        pool_put(h->pool, h);
        return;
    }
    mdl_free_other(m);
}

/* Pseudo-PFNs (decision 5): the page address shifted, consistent for every MDL of a page.
 * Writes exactly `pages` entries: safe for MDLs in storage the driver sized. */
static inline void mdl_fill_pfns(PMDL m, PVOID va, ULONG pages)
{
    PPFN_NUMBER pfn = MmGetMdlPfnArray(m);
    PFN_NUMBER first = (PFN_NUMBER)((uintptr_t)va >> PAGE_SHIFT);
    for (ULONG i = 0; i < pages; i++)
        pfn[i] = first + i;
}

/* The same for the library's own descriptors, which always have room for two entries: the one-
 * or two-page buffer of a network frame then costs two stores and no loop. */
static inline void mdl_fill_own_pfns(PMDL m, PVOID va, ULONG pages)
{
    PPFN_NUMBER pfn = MmGetMdlPfnArray(m);
    PFN_NUMBER first = (PFN_NUMBER)((uintptr_t)va >> PAGE_SHIFT);
    pfn[0] = first;
    pfn[1] = first + 1;
    for (ULONG i = 2; i < pages; i++)
        pfn[i] = first + i;
}

/* Fills every field of a library-made descriptor for the range [va, va + len). The mapped
 * address, process and flags are the caller's to adjust afterwards when they differ. */
static inline void mdl_describe(PMDL m, PVOID va, ULONG len, ULONG pages, CSHORT flags)
{
    /* Size and MdlFlags are adjacent 16-bit fields: one 32-bit store writes both. */
    CSHORT size_flags[2] = {(CSHORT)(sizeof(MDL) + pages * sizeof(PFN_NUMBER)), flags};
    m->Next = NULL;
    memcpy(&m->Size, size_flags, sizeof(size_flags));
    m->Process = NULL;
    m->MappedSystemVa = va;
    m->StartVa = PAGE_ALIGN(va);
    m->ByteCount = len;
    m->ByteOffset = BYTE_OFFSET(va);
    mdl_fill_own_pfns(m, va, pages);
}

/* What a partial MDL takes over from its source, as IoBuildPartialMdl documents. */
#define MDL_PARTIAL_INHERITED \
    (MDL_IO_PAGE_READ | MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA | MDL_IO_SPACE)
#define MDL_HAS_SYSTEM_VA (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL)

/* Makes `m`, already describing the bytes at `delta` into `src`, a partial MDL of it: the one
 * rule behind both NdisCopyBuffer's descriptors and IoBuildPartialMdl. `kept` are the flags of
 * `m` that survive. */
static inline void mdl_make_partial(PMDL m, const MDL *src, ULONG delta, CSHORT kept)
{
    CSHORT inherited = src->MdlFlags & MDL_PARTIAL_INHERITED;
    m->MdlFlags = (CSHORT)(kept | inherited | MDL_PARTIAL);
    m->Process = src->Process;
    m->MappedSystemVa =
        (inherited & MDL_HAS_SYSTEM_VA) ? (PCHAR)src->MappedSystemVa + delta : NULL;
}

/* Positions (*cur, *off) on the byte at *off of the chain: skipping while `off >= ByteCount`
 * passes over empty descriptors and turns an offset on a boundary into the first byte of the
 * next non-empty one (decision 8, reference §7 items 1-2). *cur is NULL past the end. */
static inline void mdl_seek(PMDL *cur, ULONG *off)
{
    while (*cur != NULL && *off >= (*cur)->ByteCount) {
        *off -= (*cur)->ByteCount;
        *cur = (*cur)->Next;
    }
}

#endif /* LIBNDIS_MDL_H */
