/* SPDX-License-Identifier: MIT */
/* memory.c - NdisAllocateMemory(WithTag) and NdisFreeMemory. Each block carries a 16-byte header
 * recording its tag, length and flags (decision 24), and a lock-free table keeps usage per tag so
 * that it can be queried through <libndis.h> without serializing allocations on one lock. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "libndis.h"
#include "verifier.h"

enum {
    MEM_MAGIC_LIVE = 0x4D4E, /* "NM" */
    MEM_MAGIC_DEAD = 0x5844, /* "DX" */
    TAG_SLOTS = 1024,        /* distinct tags tracked; more share the last-resort entry */
    TAG_EMPTY = 0,
    TAG_CLAIMING = 1,
    TAG_READY = 2,
    MEM_KNOWN_FLAGS = NDIS_MEMORY_CONTIGUOUS | NDIS_MEMORY_NONCACHED,
};

struct mem_hdr {
    ULONG tag;
    ULONG length;
    ULONG flags;
    uint16_t slot;
    uint16_t magic;
};
_Static_assert(sizeof(struct mem_hdr) == 16, "keeps the caller's block 16-byte aligned");

struct tag_entry {
    _Atomic unsigned state;
    _Atomic ULONG tag;
    _Atomic uint64_t outstanding;
    _Atomic uint64_t bytes;
    _Atomic uint64_t total;
};

/* The last entry is never claimed by probing: it absorbs tags once the table is full. */
static struct tag_entry tag_table[TAG_SLOTS];
#define TAG_OVERFLOW_SLOT (TAG_SLOTS - 1)

static unsigned tag_hash(ULONG tag)
{
    uint32_t h = tag * 2654435761u;
    return (h >> 16) % TAG_OVERFLOW_SLOT;
}

/* Finds the entry of `tag`; with `claim`, makes one if the tag is new. -1 when the tag was never
 * used. A full table without it means the tag can only be in the aggregate entry. */
static int tag_slot(ULONG tag, bool claim)
{
    unsigned i = tag_hash(tag);
    for (unsigned probes = 0; probes < TAG_OVERFLOW_SLOT; probes++, i = (i + 1) % TAG_OVERFLOW_SLOT) {
        struct tag_entry *e = &tag_table[i];
        unsigned st = atomic_load_explicit(&e->state, memory_order_acquire);
        if (st == TAG_EMPTY) {
            if (!claim)
                return -1;
            unsigned expect = TAG_EMPTY;
            if (atomic_compare_exchange_strong(&e->state, &expect, TAG_CLAIMING)) {
                atomic_store_explicit(&e->tag, tag, memory_order_relaxed);
                atomic_store_explicit(&e->state, TAG_READY, memory_order_release);
                return (int)i;
            }
            st = expect;
        }
        while (st == TAG_CLAIMING) /* another thread is writing this entry's tag */
            st = atomic_load_explicit(&e->state, memory_order_acquire);
        if (atomic_load_explicit(&e->tag, memory_order_relaxed) == tag)
            return (int)i;
    }
    return TAG_OVERFLOW_SLOT;
}

/* `guard` bytes beyond Length belong to the block too: the checked mode's overrun detector. */
NDIS_STATUS mem_allocate_raw(PVOID *VirtualAddress, UINT Length, ULONG Tag, UINT Flags,
                             UINT guard)
{
    if (VirtualAddress == NULL)
        return NDIS_STATUS_FAILURE;
    *VirtualAddress = NULL;
    /* wraps only where size_t is 32-bit */
    size_t total = sizeof(struct mem_hdr) + (size_t)Length + guard;
    if ((Flags & ~(UINT)MEM_KNOWN_FLAGS) != 0 || total < Length)
        return NDIS_STATUS_FAILURE;
    void *block = NULL;
    if (posix_memalign(&block, 16, total) != 0)
        return NDIS_STATUS_FAILURE;
    int slot = tag_slot(Tag, true);
    struct tag_entry *e = &tag_table[slot];
    atomic_fetch_add_explicit(&e->outstanding, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->bytes, Length, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->total, 1, memory_order_relaxed);
    struct mem_hdr *h = block;
    h->tag = Tag;
    h->length = Length;
    h->flags = Flags;
    h->slot = (uint16_t)slot;
    h->magic = MEM_MAGIC_LIVE;
    *VirtualAddress = h + 1;
    return NDIS_STATUS_SUCCESS;
}

NDISAPI NDIS_STATUS NdisAllocateMemoryWithTag(PVOID *VirtualAddress, UINT Length, ULONG Tag)
{
    if (VERIFYING())
        return verifier_memory_allocate(VirtualAddress, Length, Tag, 0, "NdisAllocateMemoryWithTag");
    return mem_allocate_raw(VirtualAddress, Length, Tag, 0, 0);
}

/* Physical placement means nothing in user space: HighestAcceptableAddress is accepted and
 * ignored, and CONTIGUOUS / NONCACHED memory is ordinary memory recorded with its flags. */
NDISAPI NDIS_STATUS NdisAllocateMemory(PVOID *VirtualAddress, UINT Length, UINT MemoryFlags,
                                       NDIS_PHYSICAL_ADDRESS HighestAcceptableAddress)
{
    (void)HighestAcceptableAddress;
    if (VERIFYING())
        return verifier_memory_allocate(VirtualAddress, Length, LIBNDIS_DEFAULT_MEMORY_TAG,
                                        MemoryFlags, "NdisAllocateMemory");
    return mem_allocate_raw(VirtualAddress, Length, LIBNDIS_DEFAULT_MEMORY_TAG, MemoryFlags, 0);
}

/* Usage is debited when the block stops being live (a checked-mode free keeps the block in
 * quarantine a while longer, already debited). */
static void mem_debit(struct mem_hdr *h)
{
    struct tag_entry *e = &tag_table[h->slot];
    atomic_fetch_sub_explicit(&e->outstanding, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&e->bytes, h->length, memory_order_relaxed);
    h->magic = MEM_MAGIC_DEAD;
}

bool mem_info(PVOID VirtualAddress, ULONG *tag, ULONG *length, ULONG *flags, bool *live)
{
    struct mem_hdr *h = (struct mem_hdr *)VirtualAddress - 1;
    if (h->magic != MEM_MAGIC_LIVE && h->magic != MEM_MAGIC_DEAD)
        return false;
    *tag = h->tag;
    *length = h->length;
    *flags = h->flags;
    *live = h->magic == MEM_MAGIC_LIVE;
    return true;
}

void mem_mark_dead(PVOID VirtualAddress)
{
    struct mem_hdr *h = (struct mem_hdr *)VirtualAddress - 1;
    if (h->magic == MEM_MAGIC_LIVE)
        mem_debit(h);
}

/* Frees a live block, or a dead one the checked mode held in quarantine. */
void mem_free_raw(PVOID VirtualAddress)
{
    struct mem_hdr *h = (struct mem_hdr *)VirtualAddress - 1;
    if (h->magic == MEM_MAGIC_LIVE)
        mem_debit(h);
    else if (h->magic != MEM_MAGIC_DEAD)
        return;
    free(h);
}

/* Usage is debited by what the block recorded, whatever Length the caller passes. */
NDISAPI VOID NdisFreeMemory(PVOID VirtualAddress, UINT Length, UINT MemoryFlags)
{
    if (VERIFYING()) {
        verifier_memory_free(VirtualAddress, Length, MemoryFlags);
        return;
    }
    if (VirtualAddress == NULL)
        return;
    struct mem_hdr *h = (struct mem_hdr *)VirtualAddress - 1;
    if (h->magic == MEM_MAGIC_LIVE)
        mem_free_raw(VirtualAddress);
}

static void tag_usage_of(struct tag_entry *e, PLIBNDIS_TAG_USAGE u)
{
    u->Tag = atomic_load_explicit(&e->tag, memory_order_relaxed);
    u->Reserved = 0;
    u->OutstandingAllocations = atomic_load_explicit(&e->outstanding, memory_order_relaxed);
    u->OutstandingBytes = atomic_load_explicit(&e->bytes, memory_order_relaxed);
    u->TotalAllocations = atomic_load_explicit(&e->total, memory_order_relaxed);
}

LIBNDIS_API BOOLEAN LibNdisQueryMemoryTag(ULONG Tag, PLIBNDIS_TAG_USAGE Usage)
{
    if (Usage == NULL)
        return FALSE;
    memset(Usage, 0, sizeof(*Usage));
    int slot = tag_slot(Tag, false);
    if (slot < 0)
        return FALSE;
    tag_usage_of(&tag_table[slot], Usage);
    if (slot == TAG_OVERFLOW_SLOT) {
        Usage->Tag = Tag;
        Usage->Reserved = 1; /* the figures are those of every tag past the table's size */
    }
    return TRUE;
}

LIBNDIS_API ULONG LibNdisEnumerateMemoryTags(PLIBNDIS_TAG_USAGE Array, ULONG Capacity)
{
    ULONG found = 0;
    for (unsigned i = 0; i < TAG_SLOTS; i++) {
        struct tag_entry *e = &tag_table[i];
        bool overflow = i == TAG_OVERFLOW_SLOT;
        if (overflow ? atomic_load_explicit(&e->total, memory_order_relaxed) == 0
                     : atomic_load_explicit(&e->state, memory_order_acquire) != TAG_READY)
            continue;
        if (Array != NULL && found < Capacity) {
            tag_usage_of(e, &Array[found]);
            Array[found].Reserved = overflow; /* the entry of all tags past the table's size */
        }
        found++;
    }
    return found;
}
