/* SPDX-License-Identifier: MIT */
/* mdl.c - the kernel's MDL calls (IoAllocateMdl, IoFreeMdl, IoBuildPartialMdl, MmSizeOfMdl,
 * MmBuildMdlForNonPagedPool, the system-address mappings) and the storage behind every descriptor:
 * the default pool and descriptors too long for a pool slot. */
#include "mdl.h"

#include <stdio.h>

#include "verifier.h"
#include <stdlib.h>

struct pool *mdl_default_pool;

/* A descriptor spanning more than MDL_INLINE_PFNS pages: header and MDL in their own block, and a
 * pool slot held as a token so that pool counts and strict limits include it. Blocks are never
 * given back to the C heap before their pool goes: a freed block waits on the pool's list for
 * the next long descriptor, and its header keeps saying FREE, so that a repeated NdisFreeBuffer
 * reads valid memory and is ignored, as for a descriptor in a pool slot. */
struct mdl_large {
    struct mdl_hdr *token;
    struct mdl_large *next_free; /* on the pool's list of unused blocks */
    struct mdl_large *next_all;  /* every block of the pool, for its release */
    ULONG capacity;              /* PFN entries the block holds */
    struct mdl_hdr hdr;
    MDL mdl;
};
_Static_assert(offsetof(struct mdl_large, mdl) ==
                   offsetof(struct mdl_large, hdr) + sizeof(struct mdl_hdr),
               "a large MDL follows its header directly, like a pooled one");

struct mdl_pool_data {
    pthread_mutex_t lock; /* guards the two lists; long descriptors are not a fast path */
    struct mdl_large *free_blocks;
    struct mdl_large *all_blocks;
};

static void mdl_obj_init(struct pool *p, void *obj)
{
    struct mdl_hdr *h = obj;
    h->pool = p;
    h->state = MDL_STATE_FREE;
    h->reserved = 0;
}

static void mdl_pool_release(struct pool *p)
{
    struct mdl_pool_data *d = pool_layer_data(p);
    for (struct mdl_large *b = d->all_blocks, *next; b != NULL; b = next) {
        next = b->next_all;
        free(b);
    }
    pthread_mutex_destroy(&d->lock);
}

static const struct pool_ops mdl_pool_ops = {
    .magic = MDL_POOL_MAGIC,
    .layer_bytes = sizeof(struct mdl_pool_data),
    .obj_init = mdl_obj_init,
    .on_release = mdl_pool_release,
};

struct pool *mdl_pool_create(uint32_t declared, uint32_t limit, _Atomic unsigned *live_counter)
{
    struct pool *p = pool_create(&mdl_pool_ops, (uint32_t)MDL_OBJ_SIZE, declared, limit,
                                 live_counter);
    if (p != NULL)
        pthread_mutex_init(&((struct mdl_pool_data *)pool_layer_data(p))->lock, NULL);
    return p;
}

__attribute__((constructor)) static void mdl_process_init(void)
{
    mdl_default_pool = mdl_pool_create(0, POOL_UNLIMITED, NULL);
    if (mdl_default_pool == NULL) {
        fputs("libndis: cannot create the default buffer pool\n", stderr);
        abort();
    }
}

static struct mdl_large *mdl_large_block(struct pool *p, ULONG pages)
{
    struct mdl_pool_data *d = pool_layer_data(p);
    pthread_mutex_lock(&d->lock);
    struct mdl_large **link = &d->free_blocks;
    while (*link != NULL && (*link)->capacity < pages)
        link = &(*link)->next_free;
    struct mdl_large *b = *link;
    if (b != NULL) {
        *link = b->next_free;
    } else {
        size_t bytes = sizeof(struct mdl_large) + (size_t)pages * sizeof(PFN_NUMBER);
        b = aligned_alloc(16, (bytes + 15) & ~(size_t)15);
        if (b != NULL) {
            b->capacity = pages;
            b->hdr.pool = p;
            b->next_all = d->all_blocks;
            d->all_blocks = b;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return b;
}

PMDL mdl_alloc_large(struct pool *p, ULONG pages)
{
    if (sizeof(MDL) + (size_t)pages * sizeof(PFN_NUMBER) > MDL_MAX_SIZE)
        return NULL;
    struct mdl_hdr *token = pool_get(p);
    if (token == NULL)
        return NULL;
    token->state = MDL_STATE_TOKEN;
    struct mdl_large *b = mdl_large_block(p, pages);
    if (b == NULL) {
        token->state = MDL_STATE_FREE;
        pool_put(p, token);
        return NULL;
    }
    b->token = token;
    b->hdr.state = MDL_STATE_LARGE;
    return &b->mdl;
}

/* Anything but a live long descriptor (a second free, a foreign MDL) is ignored. */
void mdl_free_other(PMDL m)
{
    struct mdl_hdr *h = mdl_hdr_of(m);
    if (h->state != MDL_STATE_LARGE)
        return;
    struct mdl_large *b = (struct mdl_large *)((char *)h - offsetof(struct mdl_large, hdr));
    struct pool *p = h->pool;
    struct mdl_hdr *token = b->token;
    struct mdl_pool_data *d = pool_layer_data(p);
    h->state = MDL_STATE_FREE;
    pthread_mutex_lock(&d->lock);
    b->next_free = d->free_blocks;
    d->free_blocks = b;
    pthread_mutex_unlock(&d->lock);
    token->state = MDL_STATE_FREE;
    pool_put(p, token);
}

/* ---- Mm / Io entry points ---- */

LIBNDIS_API SIZE_T NTAPI MmSizeOfMdl(PVOID Base, SIZE_T Length)
{
    /* ADDRESS_AND_SIZE_TO_SPAN_PAGES truncates to ULONG; a SIZE_T length needs the full width. */
    SIZE_T pages = (Length >> PAGE_SHIFT) +
                   ((BYTE_OFFSET(Base) + (Length & (PAGE_SIZE - 1)) + PAGE_SIZE - 1) >> PAGE_SHIFT);
    return sizeof(MDL) + pages * sizeof(PFN_NUMBER);
}

LIBNDIS_API PMDL NTAPI __libndis_fast_IoAllocateMdl(PVOID VirtualAddress, ULONG Length,
                                                    BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota,
                                                    PIRP Irp)
{
    return mdl_io_allocate_raw(VirtualAddress, Length, Irp);
}

/* As for the buffer calls: the export checks for the verifier, the <wdm.h> macro at the call
 * site, which then calls the __libndis_fast_ entry. */
LIBNDIS_API PMDL NTAPI IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer,
                                     BOOLEAN ChargeQuota, PIRP Irp)
{
    if (VERIFYING())
        return verifier_io_allocate(VirtualAddress, Length, Irp);
    return __libndis_fast_IoAllocateMdl(VirtualAddress, Length, SecondaryBuffer, ChargeQuota, Irp);
}

PMDL mdl_io_allocate_raw(PVOID VirtualAddress, ULONG Length, PIRP Irp)
{
    if (Irp != NULL || !mdl_range_ok(VirtualAddress, Length, true))
        return NULL;
    ULONG pages = mdl_span(VirtualAddress, Length);
    PMDL m = mdl_alloc(mdl_default_pool, pages);
    if (m == NULL)
        return NULL;
    /* With an address the MDL is built for nonpaged pool at once (decision 5); without one it is
     * a template for IoBuildPartialMdl and describes no pages yet. */
    mdl_describe(m, VirtualAddress, Length, pages,
                 VirtualAddress != NULL ? MDL_SOURCE_IS_NONPAGED_POOL : 0);
    return m;
}

LIBNDIS_API VOID NTAPI __libndis_fast_IoFreeMdl(PMDL Mdl)
{
    if (Mdl != NULL)
        mdl_free(Mdl);
}

LIBNDIS_API VOID NTAPI IoFreeMdl(PMDL Mdl)
{
    if (VERIFYING())
        verifier_buffer_free(Mdl, "IoFreeMdl");
    else
        __libndis_fast_IoFreeMdl(Mdl);
}

struct pool *mdl_pool_of(PMDL m) { return mdl_hdr_of(m)->pool; }
uint32_t mdl_state_of(PMDL m) { return mdl_hdr_of(m)->state; }
void mdl_set_state(PMDL m, uint32_t state) { mdl_hdr_of(m)->state = state; }

void mdl_release_quarantined(PMDL m, uint32_t live_state)
{
    mdl_hdr_of(m)->state = live_state;
    mdl_free(m);
}

size_t mdl_storage_bytes(PMDL m)
{
    struct mdl_hdr *h = mdl_hdr_of(m);
    if (h->state != MDL_STATE_LARGE)
        return MDL_OBJ_SIZE - sizeof(struct mdl_hdr);
    struct mdl_large *b = (struct mdl_large *)((char *)h - offsetof(struct mdl_large, hdr));
    return sizeof(MDL) + (size_t)b->capacity * sizeof(PFN_NUMBER);
}

/* PFN entries the MDL's own storage holds, judged by its Size: the bound every write obeys when
 * the MDL may live in memory the driver sized itself. */
static ULONG mdl_pfn_capacity(const MDL *m)
{
    USHORT size = (USHORT)m->Size;
    return size > sizeof(MDL) ? (ULONG)((size - sizeof(MDL)) / sizeof(PFN_NUMBER)) : 0;
}

LIBNDIS_API VOID NTAPI IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress,
                                         ULONG Length)
{
    if (SourceMdl == NULL || TargetMdl == NULL)
        return;
    uintptr_t base = (uintptr_t)MmGetMdlVirtualAddress(SourceMdl);
    uintptr_t at = (uintptr_t)VirtualAddress;
    /* No status to return: a range outside the source or a target too small for it leaves the
     * target untouched rather than describing memory the source does not. */
    if (at < base || at - base > SourceMdl->ByteCount)
        return;
    ULONG delta = (ULONG)(at - base);
    ULONG avail = SourceMdl->ByteCount - delta;
    if (Length == 0)
        Length = avail;
    if (Length > avail || !mdl_range_ok(VirtualAddress, Length, false))
        return;
    ULONG pages = mdl_span(VirtualAddress, Length);
    if (pages > mdl_pfn_capacity(TargetMdl))
        return;
    /* The target keeps its own Size (its storage) and Next. */
    TargetMdl->StartVa = PAGE_ALIGN(VirtualAddress);
    TargetMdl->ByteOffset = BYTE_OFFSET(VirtualAddress);
    TargetMdl->ByteCount = Length;
    mdl_make_partial(TargetMdl, SourceMdl, delta,
                     TargetMdl->MdlFlags & (MDL_ALLOCATED_FIXED_SIZE | MDL_ALLOCATED_MUST_SUCCEED));
    mdl_fill_pfns(TargetMdl, VirtualAddress, pages);
}

LIBNDIS_API VOID NTAPI MmBuildMdlForNonPagedPool(PMDL MemoryDescriptorList)
{
    PMDL m = MemoryDescriptorList;
    PVOID va = MmGetMdlVirtualAddress(m);
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, m->ByteCount);
    ULONG capacity = mdl_pfn_capacity(m);
    m->Process = NULL;
    m->MappedSystemVa = va;
    m->MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
    mdl_fill_pfns(m, va, pages < capacity ? pages : capacity);
}

/* User space maps by identity: "mapping" an MDL that has no system address records the one it
 * describes, with the flags a kernel mapping would leave. */
PVOID mdl_map_raw(PMDL m)
{
    if (m->MdlFlags & MDL_HAS_SYSTEM_VA)
        return m->MappedSystemVa;
    m->MappedSystemVa = MmGetMdlVirtualAddress(m);
    m->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    if (m->MdlFlags & MDL_PARTIAL)
        m->MdlFlags |= MDL_PARTIAL_HAS_BEEN_MAPPED;
    return m->MappedSystemVa;
}

/* Only the Safe form may fail, and only when fault injection asks it to. */
LIBNDIS_API PVOID NTAPI MmGetSystemAddressForMdlSafe(PMDL Mdl, ULONG Priority)
{
    (void)Priority;
    if (VERIFYING())
        return verifier_map_safe(Mdl);
    return mdl_map_raw(Mdl);
}

LIBNDIS_API PVOID NTAPI MmGetSystemAddressForMdl(PMDL Mdl) { return mdl_map_raw(Mdl); }

LIBNDIS_API VOID NTAPI MmPrepareMdlForReuse(PMDL Mdl)
{
    if (Mdl->MdlFlags & MDL_PARTIAL_HAS_BEEN_MAPPED) {
        Mdl->MdlFlags &= (CSHORT)~(MDL_PARTIAL_HAS_BEEN_MAPPED | MDL_MAPPED_TO_SYSTEM_VA);
        Mdl->MappedSystemVa = NULL;
    }
}
