/* SPDX-License-Identifier: MIT */
/* packet.c - NDIS 5.x packets: packet pools on the same per-thread-cached pool as buffers,
 * allocation of fully zeroed descriptors (decision 14), the buffer chain with its cached counts
 * exactly as the WDK macros keep them (decision 19), packet-to-packet data copy (decision 20) and
 * the per-packet-info helpers of intermediate drivers. */
#include <string.h>

#include "mdl.h"
#include "ndis.h"
#include "pool.h"
#include "verifier.h"

enum {
    PACKET_POOL_MAGIC = 0x50544B50, /* "PKTP" */
    PACKET_STATE_FREE = 0x30544B50, /* "PKT0" */
    PACKET_STATE_LIVE = 0x31544B50, /* "PKT1" */
    PACKET_MAX_DESCRIPTORS = 0xFFFF,
    PACKET_STACKS = 2,              /* NDIS_PACKET_STACK locations per packet, as documented */
};

/* Hidden in front of every packet: owner and state for NdisFreePacket, and the stack locations
 * NdisIMGetCurrentPacketStack hands out. */
struct packet_hdr {
    struct pool *pool;
    uint32_t state;
    uint32_t stacks_used; /* stacks were handed out: zero them on the next allocation */
    NDIS_PACKET_STACK stacks[PACKET_STACKS];
};
_Static_assert(sizeof(struct packet_hdr) % 16 == 0, "the packet behind it stays 16-byte aligned");

struct packet_pool_data {
    uint32_t packet_size;      /* NdisPacketSize of the pool's ProtocolReservedLength */
    uint16_t oob_offset;
    _Atomic uint32_t protocol_id;
};

static _Atomic unsigned packet_live_pools;


static inline struct packet_hdr *packet_hdr_of(PNDIS_PACKET p)
{
    return (struct packet_hdr *)((char *)p - sizeof(struct packet_hdr));
}

static inline struct packet_pool_data *packet_pool_data(struct pool *p)
{
    return pool_layer_data(p);
}

static inline struct pool *packet_pool(NDIS_HANDLE handle)
{
    struct pool *p = handle;
    return p != NULL && p->magic == PACKET_POOL_MAGIC ? p : NULL;
}

struct pool *packet_pool_of(NDIS_HANDLE PoolHandle) { return packet_pool(PoolHandle); }
uint32_t packet_state_of(PNDIS_PACKET p) { return packet_hdr_of(p)->state; }
void packet_set_state(PNDIS_PACKET p, uint32_t state) { packet_hdr_of(p)->state = state; }
struct pool *packet_owner_pool(PNDIS_PACKET p) { return packet_hdr_of(p)->pool; }
size_t packet_size_of(PNDIS_PACKET p) { return packet_pool_data(packet_hdr_of(p)->pool)->packet_size; }

/* ProtocolReserved rounded up to pointer alignment, then the OOB block, then the per-packet info
 * (decision 15). In 64 bits, so that no UINT length wraps on any host. */
static uint64_t packet_oob_offset(UINT protocol_reserved)
{
    uint64_t pr = ((uint64_t)protocol_reserved + sizeof(PVOID) - 1) & ~(uint64_t)(sizeof(PVOID) - 1);
    return offsetof(NDIS_PACKET, ProtocolReserved) + pr;
}

/* A size beyond UINT saturates: a caller sizing memory by it then fails to allocate instead of
 * getting too little. Such lengths are refused by NdisAllocatePacketPool anyway. */
NDISAPI UINT NdisPacketSize(UINT ProtocolReservedSize)
{
    uint64_t size = packet_oob_offset(ProtocolReservedSize) + sizeof(NDIS_PACKET_OOB_DATA) +
                    sizeof(NDIS_PACKET_EXTENSION);
    return size > MAXULONG ? MAXULONG : (UINT)size;
}

static void packet_obj_init(struct pool *p, void *obj)
{
    struct packet_hdr *h = obj;
    h->pool = p;
    h->state = PACKET_STATE_FREE;
    h->stacks_used = 0;
    memset(h->stacks, 0, sizeof(h->stacks));
}

static const struct pool_ops packet_pool_ops = {
    .magic = PACKET_POOL_MAGIC,
    .layer_bytes = sizeof(struct packet_pool_data),
    .obj_init = packet_obj_init,
};

/* ---- pools ---- */

void packet_pool_allocate_raw(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle,
                              UINT NumberOfDescriptors, UINT NumberOfOverflowDescriptors,
                              UINT ProtocolReservedLength)
{
    struct pool *p = NULL;
    uint64_t oob = packet_oob_offset(ProtocolReservedLength);
    if (PoolHandle != NULL && NumberOfDescriptors <= PACKET_MAX_DESCRIPTORS && oob <= MAXUSHORT) {
        /* Summed in 64 bits: a huge overflow count must clamp, not wrap (decision 16). */
        uint64_t total = (uint64_t)NumberOfDescriptors + NumberOfOverflowDescriptors;
        uint32_t limit = total > PACKET_MAX_DESCRIPTORS ? PACKET_MAX_DESCRIPTORS : (uint32_t)total;
        UINT size = NdisPacketSize(ProtocolReservedLength);
        p = pool_create(&packet_pool_ops, (uint32_t)(sizeof(struct packet_hdr) + size),
                        NumberOfDescriptors, limit, &packet_live_pools);
        if (p != NULL) {
            struct packet_pool_data *d = packet_pool_data(p);
            d->packet_size = size;
            d->oob_offset = (uint16_t)oob;
            atomic_init(&d->protocol_id, 0);
        }
    }
    if (PoolHandle != NULL)
        *PoolHandle = p;
    if (Status != NULL)
        *Status = p != NULL ? NDIS_STATUS_SUCCESS : NDIS_STATUS_RESOURCES;
}

NDISAPI VOID NdisAllocatePacketPoolEx(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle,
                                      UINT NumberOfDescriptors, UINT NumberOfOverflowDescriptors,
                                      UINT ProtocolReservedLength)
{
    if (VERIFYING())
        verifier_packet_pool_allocate(Status, PoolHandle, NumberOfDescriptors,
                                      NumberOfOverflowDescriptors, ProtocolReservedLength,
                                      "NdisAllocatePacketPoolEx");
    else
        packet_pool_allocate_raw(Status, PoolHandle, NumberOfDescriptors,
                                 NumberOfOverflowDescriptors, ProtocolReservedLength);
}

NDISAPI VOID NdisAllocatePacketPool(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle,
                                    UINT NumberOfDescriptors, UINT ProtocolReservedLength)
{
    if (VERIFYING())
        verifier_packet_pool_allocate(Status, PoolHandle, NumberOfDescriptors, 0,
                                      ProtocolReservedLength, "NdisAllocatePacketPool");
    else
        packet_pool_allocate_raw(Status, PoolHandle, NumberOfDescriptors, 0,
                                 ProtocolReservedLength);
}

void packet_pool_free_raw(NDIS_HANDLE PoolHandle)
{
    struct pool *p = packet_pool(PoolHandle);
    if (p != NULL)
        pool_retire(p);
}

NDISAPI VOID NdisFreePacketPool(NDIS_HANDLE PoolHandle)
{
    if (VERIFYING())
        verifier_packet_pool_free(PoolHandle);
    else
        packet_pool_free_raw(PoolHandle);
}

NDISAPI UINT NdisPacketPoolUsage(NDIS_HANDLE PoolHandle)
{
    struct pool *p = packet_pool(PoolHandle);
    if (p == NULL)
        return 0;
    struct pool_stats s;
    pool_stats(p, &s);
    if (VERIFYING())
        s.in_use -= verifier_quarantined(p);
    return s.in_use;
}

NDISAPI NDIS_HANDLE NdisGetPoolFromPacket(PNDIS_PACKET Packet) { return Packet->Private.Pool; }

NDISAPI VOID NdisSetPacketPoolProtocolId(NDIS_HANDLE PacketPoolHandle, UINT ProtocolId)
{
    struct pool *p = packet_pool(PacketPoolHandle);
    if (p != NULL)
        atomic_store_explicit(&packet_pool_data(p)->protocol_id, ProtocolId & NDIS_PROTOCOL_ID_MASK,
                              memory_order_relaxed);
}

/* ---- packets ---- */

/* A fresh packet's NDIS_PACKET_PRIVATE is set field by field, its padding included; every byte
 * after it is zeroed by one memset, which then starts 16-byte aligned. */
#define PACKET_FIELDS_END sizeof(NDIS_PACKET_PRIVATE)
#define PACKET_PAD_START (offsetof(NDIS_PACKET_PRIVATE, NdisPacketOobOffset) + sizeof(USHORT))

/* Makes the object `h` a fresh packet of pool `p`, all but the bytes from PACKET_FIELDS_END to
 * the end of the packet, which the caller zeroes with packet_zero_rest(): last, so that the
 * fast path can leave with a tail call to memset. */
static inline PNDIS_PACKET packet_fresh_fields(struct pool *p, struct packet_hdr *h)
{
    struct packet_pool_data *d = packet_pool_data(p);
    PNDIS_PACKET pkt = (PNDIS_PACKET)(h + 1);
    /* The stack locations are zeroed only when a driver has used them: few drivers ever do. */
    if (POOL_UNLIKELY(h->stacks_used)) {
        memset(h->stacks, 0, sizeof(h->stacks));
        h->stacks_used = 0;
    }
    h->state = PACKET_STATE_LIVE;
    pkt->Private.PhysicalCount = 0;
    pkt->Private.TotalLength = 0;
    pkt->Private.Head = NULL;
    pkt->Private.Tail = NULL;
    pkt->Private.Pool = p;
    pkt->Private.Count = 0;
    pkt->Private.Flags = atomic_load_explicit(&d->protocol_id, memory_order_relaxed);
    pkt->Private.ValidCounts = TRUE;
    pkt->Private.NdisPacketFlags = fPACKET_ALLOCATED_BY_NDIS;
    pkt->Private.NdisPacketOobOffset = d->oob_offset;
    memset((char *)pkt + PACKET_PAD_START, 0, PACKET_FIELDS_END - PACKET_PAD_START);
    return pkt;
}

/* Zeroed on every allocation (decision 14): reserved areas, OOB and per-packet info alike. */
static inline void packet_zero_rest(struct pool *p, PNDIS_PACKET pkt)
{
    memset((char *)pkt + PACKET_FIELDS_END, 0, packet_pool_data(p)->packet_size - PACKET_FIELDS_END);
}

static inline PNDIS_PACKET packet_fresh(struct pool *p, struct packet_hdr *h)
{
    PNDIS_PACKET pkt = packet_fresh_fields(p, h);
    packet_zero_rest(p, pkt);
    return pkt;
}

void packet_allocate_raw(PNDIS_STATUS Status, PNDIS_PACKET *Packet, NDIS_HANDLE PoolHandle)
{
    struct pool *p = packet_pool(PoolHandle);
    struct packet_hdr *h = p != NULL ? pool_get(p) : NULL;
    if (POOL_UNLIKELY(h == NULL)) {
        if (Packet != NULL)
            *Packet = NULL;
        if (Status != NULL)
            *Status = p != NULL && !pool_is_retired(p) ? NDIS_STATUS_RESOURCES
                                                       : NDIS_STATUS_FAILURE;
        return;
    }
    PNDIS_PACKET pkt = packet_fresh(p, h);
    if (Packet != NULL)
        *Packet = pkt;
    else
        packet_free_raw(pkt); /* nowhere to return it: do not leak it */
    if (Status != NULL)
        *Status = Packet != NULL ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

/* The common case inline, as NdisAllocateBuffer's: everything else (no cached packet, bad
 * arguments) goes to packet_allocate_raw in one tail call. */
LIBNDIS_API VOID __libndis_fast_NdisAllocatePacket(PNDIS_STATUS Status, PNDIS_PACKET *Packet,
                                                   NDIS_HANDLE PoolHandle)
{
    struct pool *p = PoolHandle;
    void *obj;
    if (POOL_LIKELY(p != NULL && Status != NULL && Packet != NULL &&
                    p->magic == PACKET_POOL_MAGIC) &&
        pool_try_get(p, &obj)) {
        PNDIS_PACKET pkt = packet_fresh_fields(p, obj);
        *Packet = pkt;
        *Status = NDIS_STATUS_SUCCESS;
        packet_zero_rest(p, pkt);
        return;
    }
    packet_allocate_raw(Status, Packet, PoolHandle);
}

/* The hot packet calls come in pairs, as the buffer ones: the WDK-named export checks for the
 * verifier, the __libndis_fast_ entry (what the <ndis.h> macros call while it is off) does not. */
NDISAPI VOID NdisAllocatePacket(PNDIS_STATUS Status, PNDIS_PACKET *Packet, NDIS_HANDLE PoolHandle)
{
    if (VERIFYING())
        verifier_packet_allocate(Status, Packet, PoolHandle, "NdisAllocatePacket", false);
    else
        __libndis_fast_NdisAllocatePacket(Status, Packet, PoolHandle);
}

NDISAPI VOID NdisDprAllocatePacket(PNDIS_STATUS Status, PNDIS_PACKET *Packet,
                                   NDIS_HANDLE PoolHandle)
{
    if (VERIFYING())
        verifier_packet_allocate(Status, Packet, PoolHandle, "NdisDprAllocatePacket", true);
    else
        packet_allocate_raw(Status, Packet, PoolHandle);
}

/* The pool is thread-safe without the caller's exclusive access, so this is the same call. */
NDISAPI VOID NdisDprAllocatePacketNonInterlocked(PNDIS_STATUS Status, PNDIS_PACKET *Packet,
                                                 NDIS_HANDLE PoolHandle)
{
    if (VERIFYING())
        verifier_packet_allocate(Status, Packet, PoolHandle,
                                 "NdisDprAllocatePacketNonInterlocked", true);
    else
        packet_allocate_raw(Status, Packet, PoolHandle);
}

/* A second free, or a packet that no pool made, is ignored. */
static inline void packet_free(PNDIS_PACKET Packet)
{
    if (Packet == NULL)
        return;
    struct packet_hdr *h = packet_hdr_of(Packet);
    if (h->state != PACKET_STATE_LIVE)
        return;
    h->state = PACKET_STATE_FREE;
    pool_put(h->pool, h);
}

void packet_free_raw(PNDIS_PACKET Packet) { packet_free(Packet); }

void packet_release_quarantined(PNDIS_PACKET p)
{
    packet_hdr_of(p)->state = PACKET_STATE_LIVE;
    packet_free_raw(p);
}

LIBNDIS_API VOID __libndis_fast_NdisFreePacket(PNDIS_PACKET Packet) { packet_free(Packet); }

NDISAPI VOID NdisFreePacket(PNDIS_PACKET Packet)
{
    if (VERIFYING())
        verifier_packet_free(Packet, "NdisFreePacket", false);
    else
        __libndis_fast_NdisFreePacket(Packet);
}

NDISAPI VOID NdisDprFreePacket(PNDIS_PACKET Packet)
{
    if (VERIFYING())
        verifier_packet_free(Packet, "NdisDprFreePacket", true);
    else
        packet_free_raw(Packet);
}

NDISAPI VOID NdisDprFreePacketNonInterlocked(PNDIS_PACKET Packet)
{
    if (VERIFYING())
        verifier_packet_free(Packet, "NdisDprFreePacketNonInterlocked", true);
    else
        packet_free_raw(Packet);
}

/* ---- chain ---- */

static PNDIS_BUFFER chain_last(PNDIS_BUFFER b)
{
    while (b->Next != NULL)
        b = b->Next;
    return b;
}

/* The argument may itself be a chain: all of it is spliced in. Tail is consulted only when the
 * packet is non-empty, which is what makes a stale Tail harmless. */
void packet_chain_front_raw(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer)
{
    PNDIS_BUFFER last = chain_last(Buffer);
    if (Packet->Private.Head == NULL)
        Packet->Private.Tail = last;
    last->Next = Packet->Private.Head;
    Packet->Private.Head = Buffer;
    Packet->Private.ValidCounts = FALSE;
}

void packet_chain_back_raw(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer)
{
    PNDIS_BUFFER last = chain_last(Buffer);
    if (Packet->Private.Head != NULL)
        Packet->Private.Tail->Next = Buffer;
    else
        Packet->Private.Head = Buffer;
    Packet->Private.Tail = last;
    Packet->Private.ValidCounts = FALSE;
}

void packet_unchain_front_raw(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer)
{
    PNDIS_BUFFER b = Packet->Private.Head;
    *Buffer = b;
    if (b == NULL)
        return;
    Packet->Private.Head = b->Next;
    if (b->Next == NULL)
        Packet->Private.Tail = NULL;
    b->Next = NULL;
    Packet->Private.ValidCounts = FALSE;
}

/* Finds the last descriptor by walking from Head (decision 9): a driver that edited the chain
 * directly may have left Tail wrong. */
void packet_unchain_back_raw(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer)
{
    PNDIS_BUFFER b = Packet->Private.Head;
    *Buffer = b;
    if (b == NULL)
        return;
    PNDIS_BUFFER prev = NULL;
    while (b->Next != NULL) {
        prev = b;
        b = b->Next;
    }
    if (prev != NULL)
        prev->Next = NULL;
    else
        Packet->Private.Head = NULL;
    Packet->Private.Tail = prev;
    *Buffer = b;
    Packet->Private.ValidCounts = FALSE;
}

/* Counts are recomputed only when the cache is invalid, and only when some count is asked for:
 * a stale cache with ValidCounts TRUE is returned as it is, as in the WDK. */
void packet_query_raw(PNDIS_PACKET Packet, PUINT PhysicalBufferCount, PUINT BufferCount,
                      PNDIS_BUFFER *FirstBuffer, PUINT TotalPacketLength)
{
    if (FirstBuffer != NULL)
        *FirstBuffer = Packet->Private.Head;
    if (PhysicalBufferCount == NULL && BufferCount == NULL && TotalPacketLength == NULL)
        return;
    if (!Packet->Private.ValidCounts) {
        UINT physical = 0, count = 0, total = 0;
        for (PNDIS_BUFFER b = Packet->Private.Head; b != NULL; b = b->Next) {
            physical += NDIS_BUFFER_TO_SPAN_PAGES(b);
            count++;
            total += MmGetMdlByteCount(b);
        }
        Packet->Private.PhysicalCount = physical;
        Packet->Private.Count = count;
        Packet->Private.TotalLength = total;
        Packet->Private.ValidCounts = TRUE;
    }
    if (PhysicalBufferCount != NULL)
        *PhysicalBufferCount = Packet->Private.PhysicalCount;
    if (BufferCount != NULL)
        *BufferCount = Packet->Private.Count;
    if (TotalPacketLength != NULL)
        *TotalPacketLength = Packet->Private.TotalLength;
}

NDISAPI VOID NdisQueryPacket(PNDIS_PACKET Packet, PUINT PhysicalBufferCount, PUINT BufferCount,
                             PNDIS_BUFFER *FirstBuffer, PUINT TotalPacketLength)
{
    if (VERIFYING())
        verifier_packet_query(Packet, PhysicalBufferCount, BufferCount, FirstBuffer,
                              TotalPacketLength, "NdisQueryPacket");
    else
        packet_query_raw(Packet, PhysicalBufferCount, BufferCount, FirstBuffer, TotalPacketLength);
}

/* The same as asking NdisQueryPacket for the length alone: the cache when valid. */
NDISAPI VOID NdisQueryPacketLength(PNDIS_PACKET Packet, PUINT TotalPacketLength)
{
    if (VERIFYING())
        verifier_packet_query(Packet, NULL, NULL, NULL, TotalPacketLength, "NdisQueryPacketLength");
    else if (!Packet->Private.ValidCounts)
        packet_query_raw(Packet, NULL, NULL, NULL, TotalPacketLength);
    else
        *TotalPacketLength = Packet->Private.TotalLength;
}

/* With an empty chain a stale Tail stays as it is (reference §4.10). */
NDISAPI VOID NdisRecalculatePacketCounts(PNDIS_PACKET Packet)
{
    if (Packet->Private.Head != NULL)
        Packet->Private.Tail = chain_last(Packet->Private.Head);
    Packet->Private.ValidCounts = FALSE;
}

NDISAPI VOID NdisReinitializePacket(PNDIS_PACKET Packet)
{
    Packet->Private.Head = NULL;
    Packet->Private.ValidCounts = FALSE;
}

LIBNDIS_API VOID __libndis_fast_NdisChainBufferAtFront(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer)
{
    packet_chain_front_raw(Packet, Buffer);
}

NDISAPI VOID NdisChainBufferAtFront(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer)
{
    if (VERIFYING())
        verifier_packet_chain(Packet, Buffer, true);
    else
        __libndis_fast_NdisChainBufferAtFront(Packet, Buffer);
}

LIBNDIS_API VOID __libndis_fast_NdisChainBufferAtBack(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer)
{
    packet_chain_back_raw(Packet, Buffer);
}

NDISAPI VOID NdisChainBufferAtBack(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer)
{
    if (VERIFYING())
        verifier_packet_chain(Packet, Buffer, false);
    else
        __libndis_fast_NdisChainBufferAtBack(Packet, Buffer);
}

LIBNDIS_API VOID __libndis_fast_NdisUnchainBufferAtFront(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer)
{
    packet_unchain_front_raw(Packet, Buffer);
}

NDISAPI VOID NdisUnchainBufferAtFront(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer)
{
    if (VERIFYING())
        verifier_packet_unchain(Packet, Buffer, true);
    else
        __libndis_fast_NdisUnchainBufferAtFront(Packet, Buffer);
}

LIBNDIS_API VOID __libndis_fast_NdisUnchainBufferAtBack(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer)
{
    packet_unchain_back_raw(Packet, Buffer);
}

NDISAPI VOID NdisUnchainBufferAtBack(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer)
{
    if (VERIFYING())
        verifier_packet_unchain(Packet, Buffer, false);
    else
        __libndis_fast_NdisUnchainBufferAtBack(Packet, Buffer);
}

/* ---- data copy ---- */

/* Both sides are positioned with NdisCopyBuffer's boundary rule (mdl_seek); a mapping failure
 * (fault injection only) stops the copy with what was done so far. */
UINT packet_copy_raw(PNDIS_PACKET Destination, UINT DestinationOffset, UINT BytesToCopy,
                     PNDIS_PACKET Source, UINT SourceOffset, bool safe, ULONG Priority)
{
    PMDL dst = Destination->Private.Head, src = Source->Private.Head;
    ULONG doff = DestinationOffset, soff = SourceOffset;
    mdl_seek(&dst, &doff);
    mdl_seek(&src, &soff);
    UINT done = 0;
    while (done < BytesToCopy && dst != NULL && src != NULL) {
        /* Only the Safe form maps in a way that may fail (fault injection); the plain one is
         * the kernel's MmGetSystemAddressForMdl, which never returns NULL. */
        PCHAR dva = safe ? MmGetSystemAddressForMdlSafe(dst, Priority) : mdl_map_raw(dst);
        PCHAR sva = safe ? MmGetSystemAddressForMdlSafe(src, Priority) : mdl_map_raw(src);
        if (dva == NULL || sva == NULL)
            break;
        ULONG n = BytesToCopy - done;
        if (n > dst->ByteCount - doff)
            n = dst->ByteCount - doff;
        if (n > src->ByteCount - soff)
            n = src->ByteCount - soff;
        memmove(dva + doff, sva + soff, n);
        done += n;
        doff += n;
        soff += n;
        mdl_seek(&dst, &doff);
        mdl_seek(&src, &soff);
    }
    return done;
}

NDISAPI VOID NdisCopyFromPacketToPacket(PNDIS_PACKET Destination, UINT DestinationOffset,
                                        UINT BytesToCopy, PNDIS_PACKET Source, UINT SourceOffset,
                                        PUINT BytesCopied)
{
    *BytesCopied = VERIFYING()
                       ? verifier_packet_copy(Destination, DestinationOffset, BytesToCopy, Source,
                                              SourceOffset, false, NormalPagePriority,
                                              "NdisCopyFromPacketToPacket")
                       : packet_copy_raw(Destination, DestinationOffset, BytesToCopy, Source,
                                         SourceOffset, false, NormalPagePriority);
}

NDISAPI VOID NdisCopyFromPacketToPacketSafe(PNDIS_PACKET Destination, UINT DestinationOffset,
                                            UINT BytesToCopy, PNDIS_PACKET Source,
                                            UINT SourceOffset, PUINT BytesCopied,
                                            MM_PAGE_PRIORITY Priority)
{
    *BytesCopied = VERIFYING()
                       ? verifier_packet_copy(Destination, DestinationOffset, BytesToCopy, Source,
                                              SourceOffset, true, (ULONG)Priority,
                                              "NdisCopyFromPacketToPacketSafe")
                       : packet_copy_raw(Destination, DestinationOffset, BytesToCopy, Source,
                                         SourceOffset, true, (ULONG)Priority);
}

/* ---- intermediate drivers ---- */

NDISAPI VOID NdisIMCopySendPerPacketInfo(PNDIS_PACKET DstPacket, PNDIS_PACKET SrcPacket)
{
    memmove(NDIS_PACKET_EXTENSION_FROM_PACKET(DstPacket),
            NDIS_PACKET_EXTENSION_FROM_PACKET(SrcPacket), sizeof(NDIS_PACKET_EXTENSION));
}

NDISAPI VOID NdisIMCopySendCompletePerPacketInfo(PNDIS_PACKET DstPacket, PNDIS_PACKET SrcPacket)
{
    NdisIMCopySendPerPacketInfo(DstPacket, SrcPacket);
}

NDISAPI PNDIS_PACKET_STACK NdisIMGetCurrentPacketStack(PNDIS_PACKET Packet,
                                                       BOOLEAN *StacksRemaining)
{
    struct packet_hdr *h = packet_hdr_of(Packet);
    h->stacks_used = 1;
    *StacksRemaining = TRUE;
    return &h->stacks[0];
}
