/* SPDX-License-Identifier: MIT */
/* test_packet.c - the NDIS packet layer against the packet contract (reference §4, decisions
 * 14-21): run-time layouts and constants, packet pools (limits, overflow on demand, retirement),
 * fully zeroed allocation, chaining, the cached counts, packet-to-packet copies, OOB and
 * per-packet info accessors, and the intermediate-driver helpers. */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

#include "test_util.h"

/* Freed small chunks parked in glibc's tcache still count as in use: a bounded slack, far
 * below the storage the tests below expect to see released. */
#define HEAP_SLACK (32u * 1024u)

#define PTR_SIZE sizeof(PVOID)
#define FIELD_SIZE(type, field) sizeof(((type *)0)->field)
/* Values no call may produce: show that an out-parameter was really written. */
#define POISON_PACKET ((PNDIS_PACKET)(ULONG_PTR)0xBADBADB0u)
#define POISON_BUFFER ((PNDIS_BUFFER)(ULONG_PTR)0xBADBADC0u)
#define POISON_HANDLE ((NDIS_HANDLE)(ULONG_PTR)0xBADBADD0u)
#define POISON_UINT 0xDEADBEEFu
#define POISON_STATUS ((NDIS_STATUS)0x12345678)

typedef VOID (*packet_alloc_fn)(PNDIS_STATUS, PNDIS_PACKET *, NDIS_HANDLE);
typedef VOID (*packet_free_fn)(PNDIS_PACKET);

static const packet_alloc_fn alloc_fns[3] = {
    NdisAllocatePacket, NdisDprAllocatePacket, NdisDprAllocatePacketNonInterlocked};
static const packet_free_fn free_fns[3] = {
    NdisFreePacket, NdisDprFreePacket, NdisDprFreePacketNonInterlocked};

/* ---- helpers: sizes ---- */

static size_t round_ptr(size_t n)
{
    return (n + PTR_SIZE - 1) / PTR_SIZE * PTR_SIZE;
}

static size_t oob_offset_for(UINT Prl)
{
    return offsetof(NDIS_PACKET, ProtocolReserved) + round_ptr(Prl);
}

static size_t packet_size_for(UINT Prl)
{
    return oob_offset_for(Prl) + sizeof(NDIS_PACKET_OOB_DATA) + sizeof(NDIS_PACKET_EXTENSION);
}

static void assert_bytes(const void *Got, const void *Want, size_t Length, const char *What)
{
    const unsigned char *g = Got, *w = Want;
    for (size_t i = 0; i < Length; i++) {
        if (g[i] != w[i])
            fail_msg("%s: byte %zu is 0x%02x, expected 0x%02x", What, i, g[i], w[i]);
    }
}

static void assert_all_zero(const void *Block, size_t Length, const char *What)
{
    const unsigned char *b = Block;
    for (size_t i = 0; i < Length; i++) {
        if (b[i] != 0)
            fail_msg("%s: byte %zu is 0x%02x, expected 0", What, i, b[i]);
    }
}

static unsigned char *snapshot(const void *Block, size_t Length)
{
    unsigned char *s = malloc(Length);
    assert_non_null(s);
    memcpy(s, Block, Length);
    return s;
}

/* ---- helpers: pools and packets ---- */

static NDIS_HANDLE pool_ex(UINT Count, UINT Overflow, UINT Prl)
{
    NDIS_STATUS status = POISON_STATUS;
    NDIS_HANDLE pool = POISON_HANDLE;
    NdisAllocatePacketPoolEx(&status, &pool, Count, Overflow, Prl);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(pool);
    assert_ptr_not_equal(pool, POISON_HANDLE);
    return pool;
}

static NDIS_HANDLE pool_new(UINT Count, UINT Prl)
{
    NDIS_STATUS status = POISON_STATUS;
    NDIS_HANDLE pool = POISON_HANDLE;
    NdisAllocatePacketPool(&status, &pool, Count, Prl);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(pool);
    assert_ptr_not_equal(pool, POISON_HANDLE);
    return pool;
}

static PNDIS_PACKET pkt_get_with(packet_alloc_fn Alloc, NDIS_HANDLE Pool)
{
    NDIS_STATUS status = POISON_STATUS;
    PNDIS_PACKET p = POISON_PACKET;
    Alloc(&status, &p, Pool);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(p);
    assert_ptr_not_equal(p, POISON_PACKET);
    return p;
}

static PNDIS_PACKET pkt_get(NDIS_HANDLE Pool)
{
    return pkt_get_with(NdisAllocatePacket, Pool);
}

static void pkt_get_fails(packet_alloc_fn Alloc, NDIS_HANDLE Pool, NDIS_STATUS Want)
{
    NDIS_STATUS status = POISON_STATUS;
    PNDIS_PACKET p = POISON_PACKET;
    Alloc(&status, &p, Pool);
    assert_int_equal(status, Want);
    assert_null(p);
}

static void pkt_get_fails_all(NDIS_HANDLE Pool, NDIS_STATUS Want)
{
    for (int a = 0; a < 3; a++)
        pkt_get_fails(alloc_fns[a], Pool, Want);
}

/* Checks decision 14 byte for byte: an all-zero descriptor of NdisPacketSize(Prl) bytes except
 * the five fields NDIS sets. */
static void assert_fresh(PNDIS_PACKET P, NDIS_HANDLE Pool, UINT Prl, ULONG ProtocolId)
{
    size_t size = packet_size_for(Prl);
    PNDIS_PACKET want = aligned_alloc(16, (size + 15) / 16 * 16);
    assert_non_null(want);
    memset(want, 0, size);
    want->Private.Pool = Pool;
    want->Private.ValidCounts = TRUE;
    want->Private.NdisPacketFlags = fPACKET_ALLOCATED_BY_NDIS;
    want->Private.Flags = ProtocolId;
    want->Private.NdisPacketOobOffset = (USHORT)oob_offset_for(Prl);
    assert_bytes(P, want, size, "fresh packet");
    free(want);
}

/* Allocates until the pool says RESOURCES; the count must be exactly Expect. Frees them all. */
static void assert_pool_serves_exactly(NDIS_HANDLE Pool, UINT Expect)
{
    PNDIS_PACKET *got = calloc((size_t)Expect + 1, sizeof(*got));
    assert_non_null(got);
    for (UINT i = 0; i < Expect; i++) {
        NDIS_STATUS status = POISON_STATUS;
        NdisAllocatePacket(&status, &got[i], Pool);
        if (status != NDIS_STATUS_SUCCESS)
            fail_msg("allocation %u of %u failed with 0x%08x", i + 1, Expect, (unsigned)status);
    }
    pkt_get_fails(NdisAllocatePacket, Pool, NDIS_STATUS_RESOURCES);
    assert_int_equal(NdisPacketPoolUsage(Pool), Expect);
    for (UINT i = 0; i < Expect; i++)
        NdisFreePacket(got[i]);
    assert_int_equal(NdisPacketPoolUsage(Pool), 0);
    free(got);
}

static int in_set(PNDIS_PACKET P, PNDIS_PACKET *Set, int N)
{
    for (int i = 0; i < N; i++) {
        if (Set[i] == P)
            return 1;
    }
    return 0;
}

/* ---- helpers: buffers ---- */

static NDIS_HANDLE bpool_new(UINT Count)
{
    NDIS_STATUS status = POISON_STATUS;
    NDIS_HANDLE pool = POISON_HANDLE;
    NdisAllocateBufferPool(&status, &pool, Count);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(pool);
    return pool;
}

static ULONG bpool_in_use(NDIS_HANDLE Pool)
{
    LIBNDIS_POOL_INFO info;
    memset(&info, 0xCC, sizeof(info));
    assert_int_equal(LibNdisQueryBufferPool(Pool, &info), NDIS_STATUS_SUCCESS);
    return info.InUse;
}

static PNDIS_BUFFER buf_new(NDIS_HANDLE Pool, PVOID Va, UINT Length)
{
    NDIS_STATUS status = POISON_STATUS;
    PNDIS_BUFFER b = POISON_BUFFER;
    NdisAllocateBuffer(&status, &b, Pool, Va, Length);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(b);
    assert_ptr_not_equal(b, POISON_BUFFER);
    return b;
}

/* Test environment: one buffer pool, one packet pool, eight pages of patterned memory. Closing
 * it proves that the test returned every packet and descriptor. */
struct env {
    NDIS_HANDLE bpool;
    NDIS_HANDLE ppool;
    UINT prl;
    unsigned char *mem;
};

enum { ENV_MEM = 8 * TEST_PAGE };

static void env_open(struct env *E, UINT Count, UINT Prl)
{
    E->bpool = bpool_new(32);
    E->ppool = pool_new(Count, Prl);
    E->prl = Prl;
    E->mem = test_backing_alloc(ENV_MEM);
    assert_non_null(E->mem);
}

static void env_close(struct env *E)
{
    assert_int_equal(NdisPacketPoolUsage(E->ppool), 0);
    assert_int_equal(bpool_in_use(E->bpool), 0);
    NdisFreePacketPool(E->ppool);
    NdisFreeBufferPool(E->bpool);
    test_backing_free(E->mem);
}

/* Unchains and frees every descriptor, then the packet. */
static void pkt_release(PNDIS_PACKET P)
{
    PNDIS_BUFFER b;
    /* Bounded: a chain broken into a cycle must fail the test, not hang it. */
    for (int n = 0;; n++) {
        if (n > 4096)
            fail_msg("the packet's chain does not end");
        NdisUnchainBufferAtFront(P, &b);
        if (b == NULL)
            break;
        NdisFreeBuffer(b);
    }
    NdisFreePacket(P);
}

struct piece {
    UINT off; /* into the environment's memory */
    UINT len;
};

/* Allocates one descriptor per piece and chains them at the back, in order. */
static void chain_pieces(struct env *E, PNDIS_PACKET P, const struct piece *Pieces, int N,
                         PNDIS_BUFFER *Out)
{
    for (int i = 0; i < N; i++) {
        PNDIS_BUFFER b = buf_new(E->bpool, E->mem + Pieces[i].off, Pieces[i].len);
        NdisChainBufferAtBack(P, b);
        if (Out != NULL)
            Out[i] = b;
    }
}

/* Links separate descriptors into one NULL-terminated chain, as drivers do by hand. */
static void link_buffers(PNDIS_BUFFER *B, int N)
{
    for (int i = 0; i + 1 < N; i++)
        NDIS_BUFFER_LINKAGE(B[i]) = B[i + 1];
    NDIS_BUFFER_LINKAGE(B[N - 1]) = NULL;
}

static void assert_chain(PNDIS_PACKET P, PNDIS_BUFFER *Want, int N)
{
    PNDIS_BUFFER b = P->Private.Head;
    for (int i = 0; i < N; i++) {
        if (b != Want[i])
            fail_msg("chain element %d is %p, expected %p", i, (void *)b, (void *)Want[i]);
        b = b->Next;
    }
    assert_null(b);
    if (N > 0)
        assert_ptr_equal(P->Private.Tail, Want[N - 1]);
    else
        assert_null(P->Private.Head);
}

/* ======================================================================================== */
/* layouts and constants                                                                     */

static void layout_packet_private(void **state)
{
    (void)state;
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_PRIVATE, PhysicalCount), 4);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_PRIVATE, TotalLength), 4);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_PRIVATE, Count), 4);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_PRIVATE, Flags), 4);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_PRIVATE, ValidCounts), 1);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_PRIVATE, NdisPacketFlags), 1);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_PRIVATE, NdisPacketOobOffset), 2);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_PRIVATE, Pool), PTR_SIZE);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, PhysicalCount), 0x00);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, TotalLength), 0x04);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, Head), 0x08);
#if UINTPTR_MAX > 0xFFFFFFFFu
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, Tail), 0x10);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, Pool), 0x18);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, Count), 0x20);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, Flags), 0x24);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, ValidCounts), 0x28);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, NdisPacketFlags), 0x29);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, NdisPacketOobOffset), 0x2A);
    assert_int_equal(sizeof(NDIS_PACKET_PRIVATE), 0x30);
#else
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, Tail), 0x0C);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, Pool), 0x10);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, Count), 0x14);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, Flags), 0x18);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, ValidCounts), 0x1C);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, NdisPacketFlags), 0x1D);
    assert_int_equal(offsetof(NDIS_PACKET_PRIVATE, NdisPacketOobOffset), 0x1E);
    assert_int_equal(sizeof(NDIS_PACKET_PRIVATE), 0x20);
#endif
}

static void layout_packet_and_reserved_views(void **state)
{
    (void)state;
    size_t u = sizeof(NDIS_PACKET_PRIVATE);
    assert_int_equal(offsetof(NDIS_PACKET, Private), 0);
    assert_int_equal(offsetof(NDIS_PACKET, MiniportReserved), u);
    assert_int_equal(offsetof(NDIS_PACKET, WrapperReserved), u + 2 * PTR_SIZE);
    assert_int_equal(offsetof(NDIS_PACKET, MiniportReservedEx), u);
    assert_int_equal(offsetof(NDIS_PACKET, WrapperReservedEx), u + 3 * PTR_SIZE);
    assert_int_equal(offsetof(NDIS_PACKET, MacReserved), u);
    assert_int_equal(offsetof(NDIS_PACKET, Reserved), u + 4 * PTR_SIZE);
    assert_int_equal(offsetof(NDIS_PACKET, ProtocolReserved), u + 6 * PTR_SIZE);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET, MiniportReserved), 2 * PTR_SIZE);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET, WrapperReserved), 2 * PTR_SIZE);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET, MiniportReservedEx), 3 * PTR_SIZE);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET, WrapperReservedEx), PTR_SIZE);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET, MacReserved), 4 * PTR_SIZE);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET, Reserved), 2 * PTR_SIZE);
#if UINTPTR_MAX > 0xFFFFFFFFu
    assert_int_equal(offsetof(NDIS_PACKET, MiniportReserved), 0x30);
    assert_int_equal(offsetof(NDIS_PACKET, WrapperReserved), 0x40);
    assert_int_equal(offsetof(NDIS_PACKET, WrapperReservedEx), 0x48);
    assert_int_equal(offsetof(NDIS_PACKET, Reserved), 0x50);
    assert_int_equal(offsetof(NDIS_PACKET, ProtocolReserved), 0x60);
    assert_int_equal(sizeof(NDIS_PACKET), 0x68);
#else
    assert_int_equal(offsetof(NDIS_PACKET, MiniportReserved), 0x20);
    assert_int_equal(offsetof(NDIS_PACKET, Reserved), 0x30);
    assert_int_equal(offsetof(NDIS_PACKET, ProtocolReserved), 0x38);
    assert_int_equal(sizeof(NDIS_PACKET), 0x3C);
#endif
    /* The three union views are the same bytes. */
    NDIS_PACKET pkt;
    memset(&pkt, 0, sizeof(pkt));
    for (unsigned i = 0; i < 4 * PTR_SIZE; i++)
        pkt.MacReserved[i] = (UCHAR)(i + 1);
    assert_int_equal(pkt.MiniportReserved[0], 1);
    assert_int_equal(pkt.WrapperReserved[0], 2 * PTR_SIZE + 1);
    assert_int_equal(pkt.MiniportReservedEx[3 * PTR_SIZE - 1], 3 * PTR_SIZE);
    assert_int_equal(pkt.WrapperReservedEx[0], 3 * PTR_SIZE + 1);
    assert_int_equal(pkt.Reserved[0], 0);
}

static void layout_oob_data(void **state)
{
    (void)state;
    assert_int_equal(offsetof(NDIS_PACKET_OOB_DATA, TimeToSend), 0);
    assert_int_equal(offsetof(NDIS_PACKET_OOB_DATA, TimeSent), 0);
    assert_int_equal(offsetof(NDIS_PACKET_OOB_DATA, TimeReceived), 8);
    assert_int_equal(offsetof(NDIS_PACKET_OOB_DATA, HeaderSize), 16);
    assert_int_equal(offsetof(NDIS_PACKET_OOB_DATA, SizeMediaSpecificInfo), 20);
    assert_int_equal(offsetof(NDIS_PACKET_OOB_DATA, MediaSpecificInformation), 24);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_OOB_DATA, TimeToSend), 8);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_OOB_DATA, TimeReceived), 8);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_OOB_DATA, Status), 4);
#if UINTPTR_MAX > 0xFFFFFFFFu
    assert_int_equal(offsetof(NDIS_PACKET_OOB_DATA, Status), 32);
    assert_int_equal(sizeof(NDIS_PACKET_OOB_DATA), 40);
#else
    assert_int_equal(offsetof(NDIS_PACKET_OOB_DATA, Status), 28);
    assert_int_equal(sizeof(NDIS_PACKET_OOB_DATA), 32);
#endif
}

static void layout_packet_extension_and_info_enum(void **state)
{
    (void)state;
    assert_int_equal(MaxPerPacketInfo, 12);
    assert_int_equal(sizeof(NDIS_PACKET_EXTENSION), 12 * PTR_SIZE);
    assert_int_equal(offsetof(NDIS_PACKET_EXTENSION, NdisPacketInfo), 0);
    assert_int_equal(TcpIpChecksumPacketInfo, 0);
    assert_int_equal(IpSecPacketInfo, 1);
    assert_int_equal(TcpLargeSendPacketInfo, 2);
    assert_int_equal(ClassificationHandlePacketInfo, 3);
    assert_int_equal(NdisReserved, 4);
    assert_int_equal(ScatterGatherListPacketInfo, 5);
    assert_int_equal(Ieee8021QInfo, 6);
    assert_int_equal(OriginalPacketInfo, 7);
    assert_int_equal(PacketCancelId, 8);
    assert_int_equal(OriginalNetBufferList, 9);
    assert_int_equal(CachedNetBufferList, 10);
    assert_int_equal(ShortPacketPaddingInfo, 11);
}

static void layout_packet_stack(void **state)
{
    (void)state;
    assert_int_equal(offsetof(NDIS_PACKET_STACK, IMReserved), 0);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_STACK, IMReserved), 2 * PTR_SIZE);
    assert_int_equal(offsetof(NDIS_PACKET_STACK, NdisReserved), 2 * PTR_SIZE);
    assert_int_equal(FIELD_SIZE(NDIS_PACKET_STACK, NdisReserved), 4 * PTR_SIZE);
    assert_int_equal(sizeof(NDIS_PACKET_STACK), 6 * PTR_SIZE);
}

static void constants_ndis_flags(void **state)
{
    (void)state;
    assert_int_equal(NDIS_FLAGS_PROTOCOL_ID_MASK, 0x0000000F);
    assert_int_equal(NDIS_FLAGS_MULTICAST_PACKET, 0x00000010);
    assert_int_equal(NDIS_FLAGS_RESERVED2, 0x00000020);
    assert_int_equal(NDIS_FLAGS_RESERVED3, 0x00000040);
    assert_int_equal(NDIS_FLAGS_DONT_LOOPBACK, 0x00000080);
    assert_int_equal(NDIS_FLAGS_IS_LOOPBACK_PACKET, 0x00000100);
    assert_int_equal(NDIS_FLAGS_LOOPBACK_ONLY, 0x00000200);
    assert_int_equal(NDIS_FLAGS_RESERVED4, 0x00000400);
    assert_int_equal(NDIS_FLAGS_DOUBLE_BUFFERED, 0x00000800);
    assert_int_equal(NDIS_FLAGS_SENT_AT_DPC, 0x00001000);
    assert_int_equal(NDIS_FLAGS_USES_SG_BUFFER_LIST, 0x00002000);
    assert_int_equal(NDIS_FLAGS_USES_ORIGINAL_PACKET, 0x00004000);
    assert_int_equal(NDIS_FLAGS_ALLOCATED_XFER_DATA_PKT, 0x00008000);
    assert_int_equal(NDIS_FLAGS_PADDED, 0x00010000);
}

static void constants_fpacket_and_protocol_ids(void **state)
{
    (void)state;
    assert_int_equal(fPACKET_WRAPPER_RESERVED, 0x3F);
    assert_int_equal(fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO, 0x40);
    assert_int_equal(fPACKET_ALLOCATED_BY_NDIS, 0x80);
    assert_int_equal(NDIS_PROTOCOL_ID_DEFAULT, 0x00);
    assert_int_equal(NDIS_PROTOCOL_ID_TCP_IP, 0x02);
    assert_int_equal(NDIS_PROTOCOL_ID_IPX, 0x06);
    assert_int_equal(NDIS_PROTOCOL_ID_NBF, 0x07);
    assert_int_equal(NDIS_PROTOCOL_ID_MAX, 0x0F);
    assert_int_equal(NDIS_PROTOCOL_ID_MASK, 0x0F);
    assert_int_equal(PROTOCOL_RESERVED_SIZE_IN_PACKET, 4 * PTR_SIZE);
}

/* ======================================================================================== */
/* NdisAllocatePacketPool(Ex): limits                                                        */

static void pool_alloc_basic_success(void **state)
{
    (void)state;
    NDIS_HANDLE a = pool_new(4, 0);
    NDIS_HANDLE b = pool_ex(4, 2, 16);
    assert_ptr_not_equal(a, b);
    assert_int_equal(NdisPacketPoolUsage(a), 0);
    assert_int_equal(NdisPacketPoolUsage(b), 0);
    NdisFreePacketPool(a);
    NdisFreePacketPool(b);
}

static void pool_more_than_ffff_descriptors_is_resources(void **state)
{
    (void)state;
    static const UINT bad[] = {0x10000, 0x10001, 0x7FFFFFFF, 0xFFFFFFFF};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        NDIS_STATUS status = POISON_STATUS;
        NDIS_HANDLE pool = POISON_HANDLE;
        NdisAllocatePacketPool(&status, &pool, bad[i], 0);
        assert_int_equal(status, NDIS_STATUS_RESOURCES);
        status = POISON_STATUS;
        NdisAllocatePacketPoolEx(&status, &pool, bad[i], 0, 0);
        assert_int_equal(status, NDIS_STATUS_RESOURCES);
        status = POISON_STATUS;
        NdisAllocatePacketPoolEx(&status, &pool, bad[i], 5, 8);
        assert_int_equal(status, NDIS_STATUS_RESOURCES);
    }
    /* The largest legal count is accepted and serves a packet. */
    NDIS_HANDLE pool = pool_new(0xFFFF, 0);
    PNDIS_PACKET p = pkt_get(pool);
    NdisFreePacket(p);
    NdisFreePacketPool(pool);
}

static void pool_protocol_reserved_length_limit(void **state)
{
    (void)state;
    size_t off = offsetof(NDIS_PACKET, ProtocolReserved);
    UINT max_prl = (UINT)((0xFFFF - off) / PTR_SIZE * PTR_SIZE);
    static const UINT too_big_extra[] = {1, PTR_SIZE, 0x100};
    for (size_t i = 0; i < 3; i++) {
        NDIS_STATUS status = POISON_STATUS;
        NDIS_HANDLE pool = POISON_HANDLE;
        NdisAllocatePacketPool(&status, &pool, 2, max_prl + too_big_extra[i]);
        assert_int_equal(status, NDIS_STATUS_RESOURCES);
        status = POISON_STATUS;
        NdisAllocatePacketPoolEx(&status, &pool, 2, 2, max_prl + too_big_extra[i]);
        assert_int_equal(status, NDIS_STATUS_RESOURCES);
    }
    NDIS_STATUS status = POISON_STATUS;
    NDIS_HANDLE pool = POISON_HANDLE;
    NdisAllocatePacketPool(&status, &pool, 2, 0xFFFFFFFFu);
    assert_int_equal(status, NDIS_STATUS_RESOURCES);
    NdisAllocatePacketPool(&status, &pool, 2, 0x10000);
    assert_int_equal(status, NDIS_STATUS_RESOURCES);

    /* The largest accepted length gives an OOB offset that still fits 16 bits, and every byte
     * up to the end of the extension is usable. */
    pool = pool_new(2, max_prl);
    PNDIS_PACKET p = pkt_get(pool);
    assert_int_equal(p->Private.NdisPacketOobOffset, off + max_prl);
    assert_int_equal(NdisPacketSize(max_prl), off + max_prl + sizeof(NDIS_PACKET_OOB_DATA) +
                                                  sizeof(NDIS_PACKET_EXTENSION));
    assert_fresh(p, pool, max_prl, 0);
    p->ProtocolReserved[max_prl - 1] = 0x5A;
    NDIS_SET_PACKET_STATUS(p, NDIS_STATUS_RESOURCES);
    NDIS_PER_PACKET_INFO_FROM_PACKET(p, ShortPacketPaddingInfo) = p;
    assert_int_equal(p->ProtocolReserved[max_prl - 1], 0x5A);
    assert_int_equal(NDIS_GET_PACKET_STATUS(p), NDIS_STATUS_RESOURCES);
    NdisFreePacket(p);
    NdisFreePacketPool(pool);
}

static void pool_ex_total_clamped_to_ffff_without_wrapping(void **state)
{
    (void)state;
    /* 4 + 0xFFFFFFFF wraps to 3 in 32 bits; the contract sums in 64 bits and clamps. */
    NDIS_HANDLE pool = pool_ex(4, 0xFFFFFFFFu, 0);
    assert_pool_serves_exactly(pool, 0xFFFF);
    NdisFreePacketPool(pool);

    pool = pool_ex(0x8000, 0x8000, 0);
    assert_pool_serves_exactly(pool, 0xFFFF);
    NdisFreePacketPool(pool);

    pool = pool_ex(10, 5, 0);
    assert_pool_serves_exactly(pool, 15);
    NdisFreePacketPool(pool);

    pool = pool_ex(0xFFFF, 0xFFFFFFFFu, 0);
    PNDIS_PACKET p = pkt_get(pool);
    NdisFreePacket(p);
    NdisFreePacketPool(pool);
}

static void pool_zero_zero_created_every_allocation_resources(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_ex(0, 0, 0);
    pkt_get_fails_all(pool, NDIS_STATUS_RESOURCES);
    assert_int_equal(NdisPacketPoolUsage(pool), 0);
    NdisFreePacketPool(pool);

    pool = pool_new(0, 24);
    pkt_get_fails_all(pool, NDIS_STATUS_RESOURCES);
    NdisFreePacketPool(pool);
}

static void pool_zero_base_serves_its_overflow(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_ex(0, 3, 8);
    assert_pool_serves_exactly(pool, 3);
    /* And again: the overflow allowance is not used up by the first round. */
    assert_pool_serves_exactly(pool, 3);
    NdisFreePacketPool(pool);
}

static void pool_of_n_never_hands_out_n_plus_one(void **state)
{
    (void)state;
    for (int a = 0; a < 3; a++) {
        NDIS_HANDLE pool = pool_new(3, 0);
        PNDIS_PACKET p[3];
        for (int i = 0; i < 3; i++)
            p[i] = pkt_get_with(alloc_fns[a], pool);
        assert_true(p[0] != p[1] && p[1] != p[2] && p[0] != p[2]);
        pkt_get_fails_all(pool, NDIS_STATUS_RESOURCES);
        assert_int_equal(NdisPacketPoolUsage(pool), 3);
        free_fns[a](p[1]);
        PNDIS_PACKET again = pkt_get_with(alloc_fns[a], pool);
        assert_ptr_equal(again, p[1]);
        pkt_get_fails(alloc_fns[a], pool, NDIS_STATUS_RESOURCES);
        free_fns[a](p[0]);
        free_fns[a](again);
        free_fns[a](p[2]);
        assert_int_equal(NdisPacketPoolUsage(pool), 0);
        NdisFreePacketPool(pool);
    }
}

/* Overflow descriptors appear only when every base descriptor is out: up to then the pool keeps
 * handing back the same N packets, and a freed overflow packet serves the next demand. */
static void pool_overflow_made_only_when_base_all_in_use(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_ex(4, 4, 0);
    PNDIS_PACKET base[4], again[4];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++)
            again[i] = pkt_get(pool);
        if (round == 0)
            memcpy(base, again, sizeof(base));
        for (int i = 0; i < 4; i++) {
            assert_true(in_set(again[i], base, 4));
            NdisFreePacket(again[i]);
        }
    }
    for (int i = 0; i < 4; i++)
        again[i] = pkt_get(pool);
    PNDIS_PACKET extra = pkt_get(pool);
    assert_false(in_set(extra, again, 4));
    assert_int_equal(NdisPacketPoolUsage(pool), 5);
    NdisFreePacket(extra);
    PNDIS_PACKET extra2 = pkt_get(pool);
    assert_ptr_equal(extra2, extra);
    assert_fresh(extra2, pool, 0, 0);
    NdisFreePacket(extra2);
    for (int i = 0; i < 4; i++)
        NdisFreePacket(again[i]);
    assert_pool_serves_exactly(pool, 8);
    NdisFreePacketPool(pool);
}

/* Creating a pool costs its base descriptors only, not its overflow allowance. */
static void pool_overflow_not_preallocated(void **state)
{
    (void)state;
    const UINT prl = 8000;
    size_t psize = packet_size_for(prl);
    (void)psize; /* only the heap checks use it */
#ifdef HAVE_HEAP_BYTES
    size_t before = test_heap_bytes();
#endif
    NDIS_HANDLE pool = pool_ex(0, 3, prl);
#ifdef HAVE_HEAP_BYTES
    size_t created = test_heap_bytes();
    assert_true(created - before < psize); /* not even one packet made yet */
#endif
    PNDIS_PACKET p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = pkt_get(pool);
#ifdef HAVE_HEAP_BYTES
        assert_true(test_heap_bytes() >= created + (size_t)(i + 1) * psize);
#endif
    }
    pkt_get_fails(NdisAllocatePacket, pool, NDIS_STATUS_RESOURCES);
    for (int i = 0; i < 3; i++)
        NdisFreePacket(p[i]);
    NdisFreePacketPool(pool);

#ifdef HAVE_HEAP_BYTES
    before = test_heap_bytes();
#endif
    /* One base packet and almost 64 Ki overflow ones of ~8 KiB: half a gigabyte if made now. */
    pool = pool_ex(1, 0xFFFE, prl);
#ifdef HAVE_HEAP_BYTES
    assert_true(test_heap_bytes() - before < 4 * psize);
#endif
    PNDIS_PACKET a = pkt_get(pool), b = pkt_get(pool), c = pkt_get(pool);
    assert_int_equal(NdisPacketPoolUsage(pool), 3);
    NdisFreePacket(a);
    NdisFreePacket(b);
    NdisFreePacket(c);
    NdisFreePacketPool(pool);
}

struct cache_thread {
    NDIS_HANDLE pool;
    PNDIS_PACKET got[4];
    pthread_barrier_t freed;
    pthread_barrier_t done;
};

static void *cache_thread_main(void *Arg)
{
    struct cache_thread *t = Arg;
    for (int i = 0; i < 4; i++) {
        NDIS_STATUS status = POISON_STATUS;
        NdisAllocatePacket(&status, &t->got[i], t->pool);
        if (status != NDIS_STATUS_SUCCESS)
            t->got[i] = NULL;
    }
    for (int i = 0; i < 4; i++)
        NdisFreePacket(t->got[i]);
    pthread_barrier_wait(&t->freed);
    pthread_barrier_wait(&t->done); /* stay alive: the freed packets sit in this thread's cache */
    return NULL;
}

/* Free packets another thread still caches are taken back before overflow is made. */
static void pool_other_threads_free_packets_reused_before_overflow(void **state)
{
    (void)state;
    struct cache_thread t;
    t.pool = pool_ex(4, 4, 0);
    assert_int_equal(pthread_barrier_init(&t.freed, NULL, 2), 0);
    assert_int_equal(pthread_barrier_init(&t.done, NULL, 2), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cache_thread_main, &t), 0);
    pthread_barrier_wait(&t.freed);
    for (int i = 0; i < 4; i++)
        assert_non_null(t.got[i]);
    assert_int_equal(NdisPacketPoolUsage(t.pool), 0);
    PNDIS_PACKET mine[8];
    for (int i = 0; i < 4; i++) {
        mine[i] = pkt_get(t.pool);
        assert_true(in_set(mine[i], t.got, 4));
    }
    for (int i = 4; i < 8; i++) {
        mine[i] = pkt_get(t.pool);
        assert_false(in_set(mine[i], t.got, 4));
    }
    pkt_get_fails(NdisAllocatePacket, t.pool, NDIS_STATUS_RESOURCES);
    pthread_barrier_wait(&t.done);
    pthread_join(th, NULL);
    for (int i = 0; i < 8; i++)
        NdisFreePacket(mine[i]);
    assert_int_equal(NdisPacketPoolUsage(t.pool), 0);
    NdisFreePacketPool(t.pool);
    pthread_barrier_destroy(&t.freed);
    pthread_barrier_destroy(&t.done);
}

/* ======================================================================================== */
/* NdisFreePacketPool, NdisPacketPoolUsage, NdisPacketSize, NdisGetPoolFromPacket, protocol id */

static void warm_up_thread_state(void)
{
    /* The first pool a thread touches may set up per-thread state that outlives the pool. */
    NDIS_HANDLE pool = pool_new(1, 0);
    NdisFreePacket(pkt_get(pool));
    NdisFreePacketPool(pool);
}

static void free_packet_pool_idle_releases_storage(void **state)
{
    (void)state;
    warm_up_thread_state();
#ifdef HAVE_HEAP_BYTES
    size_t before = test_heap_bytes();
#endif
    NDIS_HANDLE pool = pool_new(256, 1000);
    PNDIS_PACKET p = pkt_get(pool), q = pkt_get(pool);
    NdisFreePacket(p);
    NdisFreePacket(q);
#ifdef HAVE_HEAP_BYTES
    assert_true(test_heap_bytes() >= before + 256 * packet_size_for(1000));
#endif
    NdisFreePacketPool(pool);
#ifdef HAVE_HEAP_BYTES
    assert_true(test_heap_bytes() <= before + HEAP_SLACK);
#endif
}

static void free_packet_pool_with_packets_out_retires(void **state)
{
    (void)state;
    warm_up_thread_state();
    NDIS_HANDLE bpool = bpool_new(4);
    unsigned char *mem = test_backing_alloc(256);
    NdisFreeBuffer(buf_new(bpool, mem, 1)); /* the buffer pool's own per-thread state, now */
#ifdef HAVE_HEAP_BYTES
    size_t before = test_heap_bytes();
#endif
    NDIS_HANDLE pool = pool_new(256, 1000);
    PNDIS_PACKET a = pkt_get(pool);
    PNDIS_PACKET b = pkt_get_with(NdisDprAllocatePacket, pool);
    NdisFreePacketPool(pool);
    pkt_get_fails_all(pool, NDIS_STATUS_FAILURE);
#ifdef HAVE_HEAP_BYTES
    assert_true(test_heap_bytes() >= before + 256 * packet_size_for(1000));
#endif
    /* The packets out stay fully usable. */
    memset(a->ProtocolReserved, 0x77, 1000);
    PNDIS_BUFFER buf = buf_new(bpool, mem, 100);
    NdisChainBufferAtBack(b, buf);
    UINT total = POISON_UINT;
    NdisQueryPacket(b, NULL, NULL, NULL, &total);
    assert_int_equal(total, 100);
    NdisUnchainBufferAtFront(b, &buf);
    NdisFreeBuffer(buf);
    NdisFreePacket(a);
    pkt_get_fails(NdisAllocatePacket, pool, NDIS_STATUS_FAILURE);
#ifdef HAVE_HEAP_BYTES
    assert_true(test_heap_bytes() >= before + 256 * packet_size_for(1000));
#endif
    NdisDprFreePacket(b); /* the last one: the storage goes now */
#ifdef HAVE_HEAP_BYTES
    assert_true(test_heap_bytes() <= before + HEAP_SLACK);
#endif
    assert_int_equal(bpool_in_use(bpool), 0);
    NdisFreeBufferPool(bpool);
    test_backing_free(mem);
}

static void packet_pool_usage_counts_packets_out(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_ex(5, 3, 0);
    PNDIS_PACKET p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = pkt_get_with(alloc_fns[i % 3], pool);
        assert_int_equal(NdisPacketPoolUsage(pool), i + 1);
    }
    for (int i = 0; i < 8; i++) {
        free_fns[(i + 1) % 3](p[i]);
        assert_int_equal(NdisPacketPoolUsage(pool), 7 - i);
    }
    NDIS_HANDLE other = pool_new(2, 0);
    PNDIS_PACKET o = pkt_get(other);
    assert_int_equal(NdisPacketPoolUsage(pool), 0);
    assert_int_equal(NdisPacketPoolUsage(other), 1);
    NdisFreePacket(o);
    NdisFreePacketPool(other);
    NdisFreePacketPool(pool);
}

static void packet_size_formula(void **state)
{
    (void)state;
    static const UINT prls[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 24, 100, 255, 256, 4093};
    for (size_t i = 0; i < sizeof(prls) / sizeof(prls[0]); i++) {
        UINT prl = prls[i];
        assert_int_equal(NdisPacketSize(prl), packet_size_for(prl));
        /* A real packet from such a pool has its OOB block and extension at the end. */
        NDIS_HANDLE pool = pool_new(1, prl);
        PNDIS_PACKET p = pkt_get(pool);
        assert_int_equal(p->Private.NdisPacketOobOffset, oob_offset_for(prl));
        PUCHAR end = (PUCHAR)NDIS_PACKET_EXTENSION_FROM_PACKET(p) + sizeof(NDIS_PACKET_EXTENSION);
        assert_int_equal(end - (PUCHAR)p, NdisPacketSize(prl));
        NdisFreePacket(p);
        NdisFreePacketPool(pool);
    }
#if UINTPTR_MAX > 0xFFFFFFFFu
    assert_int_equal(NdisPacketSize(0), 0x60 + 40 + 96);
    assert_int_equal(NdisPacketSize(1), 0x60 + 8 + 40 + 96);
    assert_int_equal(NdisPacketSize(7), 0x60 + 8 + 40 + 96);
    assert_int_equal(NdisPacketSize(8), 0x60 + 8 + 40 + 96);
    assert_int_equal(NdisPacketSize(9), 0x60 + 16 + 40 + 96);
    assert_int_equal(NdisPacketSize(100), 0x60 + 104 + 40 + 96);
#else
    assert_int_equal(NdisPacketSize(0), 0x38 + 32 + 48);
    assert_int_equal(NdisPacketSize(1), 0x38 + 4 + 32 + 48);
    assert_int_equal(NdisPacketSize(5), 0x38 + 8 + 32 + 48);
#endif
}

static void get_pool_from_packet_returns_its_pool(void **state)
{
    (void)state;
    NDIS_HANDLE a = pool_new(2, 0), b = pool_ex(0, 2, 32);
    PNDIS_PACKET pa = pkt_get(a), pb = pkt_get(b);
    assert_ptr_equal(NdisGetPoolFromPacket(pa), a);
    assert_ptr_equal(NdisGetPoolFromPacket(pb), b);
    assert_ptr_equal(pa->Private.Pool, a);
    assert_ptr_equal(pb->Private.Pool, b);
    NdisFreePacket(pa);
    NdisFreePacket(pb);
    NdisFreePacketPool(a);
    NdisFreePacketPool(b);
}

static void set_packet_pool_protocol_id_tags_later_packets(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_new(2, 0);
    PNDIS_PACKET before = pkt_get(pool);
    assert_int_equal(before->Private.Flags, 0);
    assert_int_equal(NDIS_GET_PACKET_PROTOCOL_TYPE(before), NDIS_PROTOCOL_ID_DEFAULT);
    NdisSetPacketPoolProtocolId(pool, NDIS_PROTOCOL_ID_TCP_IP);
    assert_int_equal(before->Private.Flags, 0); /* packets already out keep theirs */
    PNDIS_PACKET p = pkt_get(pool);
    assert_int_equal(p->Private.Flags, NDIS_PROTOCOL_ID_TCP_IP);
    assert_int_equal(NDIS_GET_PACKET_PROTOCOL_TYPE(p), NDIS_PROTOCOL_ID_TCP_IP);
    assert_fresh(p, pool, 0, NDIS_PROTOCOL_ID_TCP_IP);
    /* Flags set by the driver are gone on the next allocation; the protocol id is back. */
    NdisSetPacketFlags(p, NDIS_FLAGS_DONT_LOOPBACK | NDIS_FLAGS_PROTOCOL_ID_MASK);
    NdisFreePacket(p);
    NdisSetPacketPoolProtocolId(pool, NDIS_PROTOCOL_ID_IPX);
    p = pkt_get(pool);
    assert_int_equal(p->Private.Flags, NDIS_PROTOCOL_ID_IPX);
    NdisFreePacket(p);
    /* Only the low four bits are kept, all four of them. */
    NdisSetPacketPoolProtocolId(pool, 0x17);
    p = pkt_get(pool);
    assert_int_equal(p->Private.Flags, 0x7);
    assert_int_equal(NDIS_GET_PACKET_PROTOCOL_TYPE(p), NDIS_PROTOCOL_ID_NBF);
    NdisFreePacket(p);
    NdisSetPacketPoolProtocolId(pool, 0xFFFFFFFFu);
    p = pkt_get(pool);
    assert_int_equal(p->Private.Flags, NDIS_PROTOCOL_ID_MAX);
    assert_int_equal(NDIS_GET_PACKET_PROTOCOL_TYPE(p), NDIS_PROTOCOL_ID_MAX);
    NdisSetPacketFlags(p, NDIS_FLAGS_MULTICAST_PACKET);
    assert_int_equal(NDIS_GET_PACKET_PROTOCOL_TYPE(p), NDIS_PROTOCOL_ID_MAX);
    NdisFreePacket(p);
    NdisSetPacketPoolProtocolId(pool, NDIS_PROTOCOL_ID_DEFAULT);
    p = pkt_get(pool);
    assert_int_equal(p->Private.Flags, 0);
    NdisFreePacket(p);
    NdisFreePacket(before);
    NdisFreePacketPool(pool);
}

/* ======================================================================================== */
/* allocation and free                                                                       */

static void alloc_free_variants_at_dispatch_level(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_new(4, 12);
    for (int a = 0; a < 3; a++) {
        for (int f = 0; f < 3; f++) {
            KIRQL old = 0xFF;
            KeRaiseIrql(DISPATCH_LEVEL, &old);
            assert_int_equal(old, PASSIVE_LEVEL);
            PNDIS_PACKET p = pkt_get_with(alloc_fns[a], pool);
            assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
            assert_fresh(p, pool, 12, 0);
            assert_int_equal(NdisPacketPoolUsage(pool), 1);
            free_fns[f](p);
            assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
            assert_int_equal(NdisPacketPoolUsage(pool), 0);
            KeLowerIrql(old);
            assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
        }
    }
    /* Plain and Dpr calls mix on one pool. */
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    PNDIS_PACKET x = pkt_get_with(NdisDprAllocatePacket, pool);
    PNDIS_PACKET y = pkt_get_with(NdisDprAllocatePacketNonInterlocked, pool);
    KeLowerIrql(old);
    PNDIS_PACKET z = pkt_get(pool);
    assert_int_equal(NdisPacketPoolUsage(pool), 3);
    NdisFreePacket(x);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    NdisDprFreePacketNonInterlocked(y);
    NdisDprFreePacket(z);
    KeLowerIrql(old);
    assert_int_equal(NdisPacketPoolUsage(pool), 0);
    NdisFreePacketPool(pool);
}

static void fresh_packet_fully_zeroed_on_every_allocation(void **state)
{
    (void)state;
    static const UINT prls[] = {0, 13, 64};
    for (size_t i = 0; i < 3; i++) {
        UINT prl = prls[i];
        ULONG proto = i == 2 ? NDIS_PROTOCOL_ID_IPX : 0;
        NDIS_HANDLE pool = pool_new(1, prl); /* one descriptor: a reallocation must reuse it */
        if (proto != 0)
            NdisSetPacketPoolProtocolId(pool, proto);
        PNDIS_PACKET first = NULL;
        for (int a = 0; a < 3; a++) {
            PNDIS_PACKET p = pkt_get_with(alloc_fns[a], pool);
            if (first == NULL)
                first = p;
            assert_ptr_equal(p, first);
            assert_fresh(p, pool, prl, proto);
            BOOLEAN more;
            PNDIS_PACKET_STACK stack = NdisIMGetCurrentPacketStack(p, &more);
            assert_all_zero(stack, sizeof(*stack), "packet stack");
            /* Dirty every byte a driver can reach, then give it back. Private.Pool is put back:
             * the WDK's free finds the pool through it, and no driver writes it. */
            memset(stack, 0xA5, sizeof(*stack));
            memset(p, 0xA5, packet_size_for(prl));
            p->Private.Pool = pool;
            free_fns[a](p);
        }
        PNDIS_PACKET p = pkt_get(pool);
        assert_ptr_equal(p, first);
        assert_fresh(p, pool, prl, proto);
        BOOLEAN more;
        assert_all_zero(NdisIMGetCurrentPacketStack(p, &more), sizeof(NDIS_PACKET_STACK),
                        "packet stack after reuse");
        NdisFreePacket(p);
        NdisFreePacketPool(pool);
    }
}

static void alloc_null_or_buffer_pool_handle_fails(void **state)
{
    (void)state;
    pkt_get_fails_all(NULL, NDIS_STATUS_FAILURE);
    NDIS_HANDLE bpool = bpool_new(4);
    pkt_get_fails_all(bpool, NDIS_STATUS_FAILURE);
    /* The buffer pool is not disturbed. */
    unsigned char data[16];
    PNDIS_BUFFER b = buf_new(bpool, data, sizeof(data));
    assert_int_equal(bpool_in_use(bpool), 1);
    NdisFreeBuffer(b);
    assert_int_equal(bpool_in_use(bpool), 0);
    NdisFreeBufferPool(bpool);
}

static void free_packet_twice_is_ignored(void **state)
{
    (void)state;
    for (int f = 0; f < 3; f++) {
        NDIS_HANDLE pool = pool_new(2, 0);
        PNDIS_PACKET a = pkt_get(pool), b = pkt_get(pool);
        free_fns[f](a);
        free_fns[f](a);
        free_fns[(f + 1) % 3](a);
        assert_int_equal(NdisPacketPoolUsage(pool), 1);
        /* Had the second free counted, the pool would now hand `a` out twice. */
        PNDIS_PACKET c = pkt_get(pool);
        assert_ptr_equal(c, a);
        pkt_get_fails(NdisAllocatePacket, pool, NDIS_STATUS_RESOURCES);
        NdisFreePacket(b);
        NdisFreePacket(c);
        assert_int_equal(NdisPacketPoolUsage(pool), 0);
        NdisFreePacketPool(pool);
    }
}

static void free_null_packet_is_ignored(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_new(2, 0);
    PNDIS_PACKET a = pkt_get(pool);
    NdisFreePacket(NULL);
    NdisDprFreePacket(NULL);
    NdisDprFreePacketNonInterlocked(NULL);
    assert_int_equal(NdisPacketPoolUsage(pool), 1);
    NdisFreePacket(a);
    assert_int_equal(NdisPacketPoolUsage(pool), 0);
    NdisFreePacketPool(pool);
}

static void free_packet_leaves_buffers_chained(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b[2];
    const struct piece pieces[2] = {{0, 60}, {100, 40}};
    chain_pieces(&e, p, pieces, 2, b);
    NdisFreePacket(p);
    /* Still two live descriptors, still linked, still describing the data. */
    assert_int_equal(bpool_in_use(e.bpool), 2);
    assert_ptr_equal(b[0]->Next, b[1]);
    assert_null(b[1]->Next);
    assert_int_equal(MmGetMdlByteCount(b[0]), 60);
    assert_ptr_equal(MmGetSystemAddressForMdlSafe(b[1], NormalPagePriority), e.mem + 100);
    /* The next user of the descriptor finds an empty chain. */
    PNDIS_PACKET q = pkt_get(e.ppool);
    assert_ptr_equal(q, p);
    assert_null(q->Private.Head);
    NdisFreePacket(q);
    NdisFreeBuffer(b[0]);
    NdisFreeBuffer(b[1]);
    env_close(&e);
}

/* ======================================================================================== */
/* chain and unchain                                                                         */

static void chain_at_front_single_buffers(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b1 = buf_new(e.bpool, e.mem, 10), b0 = buf_new(e.bpool, e.mem + 50, 20);
    assert_true(p->Private.ValidCounts);
    NdisChainBufferAtFront(p, b1);
    assert_false(p->Private.ValidCounts);
    assert_ptr_equal(p->Private.Head, b1);
    assert_ptr_equal(p->Private.Tail, b1);
    assert_null(b1->Next);
    UINT total;
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_true(p->Private.ValidCounts);
    NdisChainBufferAtFront(p, b0);
    assert_false(p->Private.ValidCounts);
    PNDIS_BUFFER want[2] = {b0, b1};
    assert_chain(p, want, 2);
    pkt_release(p);
    env_close(&e);
}

static void chain_at_front_multi_descriptor_chain(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 2, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b[4];
    for (int i = 0; i < 4; i++)
        b[i] = buf_new(e.bpool, e.mem + 100 * i, 10 + i);
    NdisChainBufferAtFront(p, b[3]);
    link_buffers(b, 3); /* b0 -> b1 -> b2 */
    UINT total;
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    NdisChainBufferAtFront(p, b[0]);
    assert_false(p->Private.ValidCounts);
    assert_chain(p, b, 4);
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_int_equal(total, 10 + 11 + 12 + 13);

    /* Into an empty packet: Tail is the argument chain's last element. */
    PNDIS_PACKET q = pkt_get(e.ppool);
    PNDIS_BUFFER c[2] = {buf_new(e.bpool, e.mem + 1000, 5), buf_new(e.bpool, e.mem + 1100, 6)};
    link_buffers(c, 2);
    NdisChainBufferAtFront(q, c[0]);
    assert_chain(q, c, 2);
    pkt_release(q);
    pkt_release(p);
    env_close(&e);
}

static void chain_at_back_single_and_multi(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 2, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b[5];
    for (int i = 0; i < 5; i++)
        b[i] = buf_new(e.bpool, e.mem + 100 * i, 20 + i);
    NdisChainBufferAtBack(p, b[0]);
    assert_false(p->Private.ValidCounts);
    assert_chain(p, b, 1);
    UINT total;
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_true(p->Private.ValidCounts);
    NdisChainBufferAtBack(p, b[1]);
    assert_false(p->Private.ValidCounts);
    assert_chain(p, b, 2);
    link_buffers(b + 2, 3); /* b2 -> b3 -> b4 */
    NdisChainBufferAtBack(p, b[2]);
    assert_chain(p, b, 5);
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_int_equal(total, 20 + 21 + 22 + 23 + 24);

    PNDIS_PACKET q = pkt_get(e.ppool);
    PNDIS_BUFFER c[3] = {buf_new(e.bpool, e.mem + 2000, 1), buf_new(e.bpool, e.mem + 2100, 2),
                         buf_new(e.bpool, e.mem + 2200, 3)};
    link_buffers(c, 3);
    NdisChainBufferAtBack(q, c[0]);
    assert_chain(q, c, 3);
    pkt_release(q);
    pkt_release(p);
    env_close(&e);
}

static void unchain_at_front(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b[3];
    const struct piece pieces[3] = {{0, 10}, {100, 20}, {200, 30}};
    chain_pieces(&e, p, pieces, 3, b);
    UINT total;
    for (int i = 0; i < 3; i++) {
        NdisQueryPacket(p, NULL, NULL, NULL, &total);
        assert_true(p->Private.ValidCounts);
        PNDIS_BUFFER got = POISON_BUFFER;
        NdisUnchainBufferAtFront(p, &got);
        assert_ptr_equal(got, b[i]);
        assert_null(got->Next);
        assert_false(p->Private.ValidCounts);
        assert_chain(p, b + i + 1, 2 - i);
        if (i == 2)
            assert_null(p->Private.Tail);
    }
    /* Empty: *Buffer NULL and nothing else changes, stale Tail and cache included. */
    for (int valid = 0; valid < 2; valid++) {
        p->Private.Tail = b[1];
        p->Private.ValidCounts = (BOOLEAN)valid;
        p->Private.TotalLength = 1234;
        NDIS_PACKET_PRIVATE before;
        memcpy(&before, &p->Private, sizeof(before));
        PNDIS_BUFFER got = POISON_BUFFER;
        NdisUnchainBufferAtFront(p, &got);
        assert_null(got);
        assert_bytes(&p->Private, &before, sizeof(before), "private after empty unchain");
    }
    for (int i = 0; i < 3; i++)
        NdisFreeBuffer(b[i]);
    NdisFreePacket(p);
    env_close(&e);
}

static void unchain_at_back_walks_from_head(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b[3];
    const struct piece pieces[3] = {{0, 10}, {100, 20}, {200, 30}};
    chain_pieces(&e, p, pieces, 3, b);
    /* A wrong Tail must not matter: the last descriptor is found from Head. */
    p->Private.Tail = b[0];
    UINT total;
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    PNDIS_BUFFER got = POISON_BUFFER;
    NdisUnchainBufferAtBack(p, &got);
    assert_ptr_equal(got, b[2]);
    assert_null(got->Next);
    assert_false(p->Private.ValidCounts);
    assert_chain(p, b, 2);
    NdisUnchainBufferAtBack(p, &got);
    assert_ptr_equal(got, b[1]);
    assert_chain(p, b, 1);
    assert_null(b[0]->Next);
    NdisUnchainBufferAtBack(p, &got);
    assert_ptr_equal(got, b[0]);
    assert_null(p->Private.Head);
    assert_null(p->Private.Tail);
    for (int valid = 0; valid < 2; valid++) {
        p->Private.Tail = b[2];
        p->Private.ValidCounts = (BOOLEAN)valid;
        p->Private.Count = 77;
        NDIS_PACKET_PRIVATE before;
        memcpy(&before, &p->Private, sizeof(before));
        got = POISON_BUFFER;
        NdisUnchainBufferAtBack(p, &got);
        assert_null(got);
        assert_bytes(&p->Private, &before, sizeof(before), "private after empty unchain");
    }
    for (int i = 0; i < 3; i++)
        NdisFreeBuffer(b[i]);
    NdisFreePacket(p);
    env_close(&e);
}

static void unchained_buffer_rechains_alone(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 2, 0);
    PNDIS_PACKET p = pkt_get(e.ppool), q = pkt_get(e.ppool);
    PNDIS_BUFFER b[3];
    const struct piece pieces[3] = {{0, 10}, {100, 20}, {200, 30}};
    chain_pieces(&e, p, pieces, 3, b);
    PNDIS_BUFFER got;
    NdisUnchainBufferAtFront(p, &got);
    NdisChainBufferAtBack(q, got); /* a stale Next would drag b1 and b2 along */
    UINT count = POISON_UINT, total = POISON_UINT;
    NdisQueryPacket(q, NULL, &count, NULL, &total);
    assert_int_equal(count, 1);
    assert_int_equal(total, 10);
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    assert_int_equal(count, 2);
    assert_int_equal(total, 50);
    pkt_release(p);
    pkt_release(q);
    env_close(&e);
}

/* ======================================================================================== */
/* NdisQueryPacket, NdisQueryPacketLength, NdisRecalculatePacketCounts, NdisReinitializePacket */

/* Three descriptors: 100 bytes in one page, a zero-length one (counts one page), 5000 bytes from
 * in-page offset 4000 (three pages): 5 physical pages, 3 buffers, 5100 bytes. */
static PNDIS_PACKET query_fixture(struct env *E, PNDIS_BUFFER *B)
{
    PNDIS_PACKET p = pkt_get(E->ppool);
    const struct piece pieces[3] = {{0, 100}, {200, 0}, {TEST_PAGE + 4000, 5000}};
    chain_pieces(E, p, pieces, 3, B);
    return p;
}

static void query_packet_every_optional_combination(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_BUFFER b[3];
    PNDIS_PACKET p = query_fixture(&e, b);
    for (int mask = 0; mask < 16; mask++) {
        p->Private.ValidCounts = FALSE;
        p->Private.PhysicalCount = 91;
        p->Private.TotalLength = 92;
        p->Private.Count = 93;
        UINT phys = POISON_UINT, count = POISON_UINT, total = POISON_UINT;
        PNDIS_BUFFER first = POISON_BUFFER;
        NdisQueryPacket(p, (mask & 1) ? &phys : NULL, (mask & 2) ? &count : NULL,
                        (mask & 4) ? &first : NULL, (mask & 8) ? &total : NULL);
        assert_int_equal(phys, (mask & 1) ? 5 : POISON_UINT);
        assert_int_equal(count, (mask & 2) ? 3 : POISON_UINT);
        assert_ptr_equal(first, (mask & 4) ? b[0] : POISON_BUFFER);
        assert_int_equal(total, (mask & 8) ? 5100 : POISON_UINT);
        if (mask & (1 | 2 | 8)) {
            assert_true(p->Private.ValidCounts);
            assert_int_equal(p->Private.PhysicalCount, 5);
            assert_int_equal(p->Private.Count, 3);
            assert_int_equal(p->Private.TotalLength, 5100);
        } else {
            /* Nothing or only FirstBuffer asked: the cache is neither read nor refreshed. */
            assert_false(p->Private.ValidCounts);
            assert_int_equal(p->Private.PhysicalCount, 91);
            assert_int_equal(p->Private.TotalLength, 92);
            assert_int_equal(p->Private.Count, 93);
        }
    }
    pkt_release(p);
    env_close(&e);
}

static void query_packet_returns_stale_cache_while_valid(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_BUFFER b[3];
    PNDIS_PACKET p = query_fixture(&e, b);
    UINT phys, count, total;
    NdisQueryPacket(p, &phys, &count, NULL, &total);
    assert_int_equal(total, 5100);
    /* Edits behind the packet's back: a length change and a cut chain. */
    NdisAdjustBufferLength(b[0], 50);
    b[1]->Next = NULL;
    NdisQueryPacket(p, &phys, &count, NULL, &total);
    assert_int_equal(phys, 5);
    assert_int_equal(count, 3);
    assert_int_equal(total, 5100);
    NdisQueryPacketLength(p, &total);
    assert_int_equal(total, 5100);
    /* Clearing ValidCounts makes the next query see the real chain. */
    NDIS_PACKET_VALID_COUNTS(p) = FALSE;
    NdisQueryPacket(p, &phys, &count, NULL, &total);
    assert_int_equal(phys, 2);
    assert_int_equal(count, 2);
    assert_int_equal(total, 50);
    b[1]->Next = b[2];
    NdisAdjustBufferLength(b[0], 100);
    pkt_release(p);
    env_close(&e);
}

static void query_packet_first_buffer_only_does_not_recompute(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_BUFFER b[3];
    PNDIS_PACKET p = query_fixture(&e, b);
    assert_false(p->Private.ValidCounts);
    p->Private.TotalLength = 4242;
    PNDIS_BUFFER first = POISON_BUFFER;
    NdisQueryPacket(p, NULL, NULL, &first, NULL);
    assert_ptr_equal(first, b[0]);
    assert_false(p->Private.ValidCounts);
    assert_int_equal(p->Private.TotalLength, 4242);
    /* First is Head even when the cache is stale and valid. */
    p->Private.ValidCounts = TRUE;
    NdisUnchainBufferAtFront(p, &first);
    assert_null(first->Next);
    NdisChainBufferAtBack(p, first);
    p->Private.ValidCounts = TRUE;
    PNDIS_BUFFER head = POISON_BUFFER;
    NdisQueryPacket(p, NULL, NULL, &head, NULL);
    assert_ptr_equal(head, b[1]);
    pkt_release(p);
    env_close(&e);
}

static void query_packet_zero_length_buffers_count_one_page(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    /* Page-aligned, unaligned and NULL-addressed empty descriptors: one page each. */
    PNDIS_BUFFER z[3] = {buf_new(e.bpool, e.mem + TEST_PAGE, 0), buf_new(e.bpool, e.mem + 77, 0),
                         buf_new(e.bpool, NULL, 0)};
    for (int i = 0; i < 3; i++)
        NdisChainBufferAtBack(p, z[i]);
    UINT phys = POISON_UINT, count = POISON_UINT, total = POISON_UINT;
    NdisQueryPacket(p, &phys, &count, NULL, &total);
    assert_int_equal(phys, 3);
    assert_int_equal(count, 3);
    assert_int_equal(total, 0);
    PNDIS_BUFFER one = buf_new(e.bpool, e.mem + 10, 10);
    NdisChainBufferAtFront(p, one);
    NdisQueryPacket(p, &phys, &count, NULL, &total);
    assert_int_equal(phys, 4);
    assert_int_equal(count, 4);
    assert_int_equal(total, 10);
    pkt_release(p);
    env_close(&e);
}

static void query_packet_equal_lengths_different_in_page_offsets(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    static const struct {
        UINT off, len, pages;
    } cases[] = {
        {0, 100, 1},     {4000, 100, 2}, {3996, 100, 1}, {0, 4096, 1},
        {1, 4096, 2},    {0, 8192, 2},   {4095, 8192, 3}, {2048, 4097, 2},
        {2048, 6144, 2}, {2049, 6144, 3},
    };
    UINT sum = 0;
    PNDIS_PACKET all = pkt_get(e.ppool);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        PNDIS_BUFFER b = buf_new(e.bpool, e.mem + cases[i].off, cases[i].len);
        NdisChainBufferAtBack(all, b);
        UINT phys = POISON_UINT;
        all->Private.ValidCounts = FALSE;
        PNDIS_BUFFER last = NULL;
        /* The packet's physical count grows by exactly this descriptor's span. */
        NdisQueryPacket(all, &phys, NULL, &last, NULL);
        sum += cases[i].pages;
        if (phys != sum)
            fail_msg("case %zu (offset %u, length %u): physical count %u, expected %u", i,
                     cases[i].off, cases[i].len, phys, sum);
    }
    pkt_release(all);
    env_close(&e);
}

static void query_packet_length_trusts_cache(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    UINT total = POISON_UINT;
    NdisQueryPacketLength(p, &total);
    assert_int_equal(total, 0);
    PNDIS_BUFFER b[3];
    const struct piece pieces[3] = {{0, 30}, {100, 0}, {200, 12}};
    chain_pieces(&e, p, pieces, 3, b);
    total = POISON_UINT;
    NdisQueryPacketLength(p, &total);
    assert_int_equal(total, 42);
    /* The recomputation fills the whole cache. */
    assert_true(p->Private.ValidCounts);
    assert_int_equal(p->Private.Count, 3);
    assert_int_equal(p->Private.PhysicalCount, 3);
    assert_int_equal(p->Private.TotalLength, 42);
    NdisAdjustBufferLength(b[2], 2);
    NdisQueryPacketLength(p, &total);
    assert_int_equal(total, 42);
    p->Private.TotalLength = 999; /* the cache is returned verbatim */
    NdisQueryPacketLength(p, &total);
    assert_int_equal(total, 999);
    NDIS_PACKET_VALID_COUNTS(p) = FALSE;
    NdisQueryPacketLength(p, &total);
    assert_int_equal(total, 32);
    NdisAdjustBufferLength(b[2], 12);
    pkt_release(p);
    env_close(&e);
}

static void recalculate_packet_counts_fixes_tail_and_invalidates(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b[2];
    const struct piece pieces[2] = {{0, 30}, {100, 40}};
    chain_pieces(&e, p, pieces, 2, b);
    UINT total;
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    PNDIS_BUFFER extra = buf_new(e.bpool, e.mem + 300, 50);
    b[1]->Next = extra; /* appended by hand: Tail and the cache are now wrong */
    assert_ptr_equal(p->Private.Tail, b[1]);
    NdisRecalculatePacketCounts(p);
    assert_ptr_equal(p->Private.Tail, extra);
    assert_false(p->Private.ValidCounts);
    UINT count;
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    assert_int_equal(count, 3);
    assert_int_equal(total, 120);
    /* Empty chain: a stale Tail is left alone. */
    NdisReinitializePacket(p);
    assert_ptr_equal(p->Private.Tail, extra);
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_true(p->Private.ValidCounts);
    NdisRecalculatePacketCounts(p);
    assert_ptr_equal(p->Private.Tail, extra);
    assert_null(p->Private.Head);
    assert_false(p->Private.ValidCounts);
    NdisFreeBuffer(b[0]);
    NdisFreeBuffer(b[1]);
    NdisFreeBuffer(extra);
    NdisFreePacket(p);
    env_close(&e);
}

static void reinitialize_packet_touches_only_head_and_valid_counts(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 16);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b[2];
    const struct piece pieces[2] = {{0, 30}, {100, 40}};
    chain_pieces(&e, p, pieces, 2, b);
    UINT total;
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    NdisSetPacketFlags(p, NDIS_FLAGS_DONT_LOOPBACK);
    NDIS_SET_PACKET_STATUS(p, NDIS_STATUS_PENDING);
    NDIS_SET_PACKET_HEADER_SIZE(p, 14);
    NDIS_SET_PACKET_TIME_RECEIVED(p, 0x1122334455667788ull);
    NDIS_PER_PACKET_INFO_FROM_PACKET(p, Ieee8021QInfo) = (PVOID)(ULONG_PTR)0x1234;
    memset(p->MiniportReserved, 0x11, sizeof(p->MiniportReserved));
    memset(p->WrapperReserved, 0x22, sizeof(p->WrapperReserved));
    p->Reserved[1] = 0x33;
    memset(p->ProtocolReserved, 0x44, 16);
    size_t size = packet_size_for(16);
    unsigned char *before = snapshot(p, size);
    NdisReinitializePacket(p);
    PNDIS_PACKET want = (PNDIS_PACKET)before;
    want->Private.Head = NULL;
    want->Private.ValidCounts = FALSE;
    assert_bytes(p, want, size, "packet after NdisReinitializePacket");
    assert_ptr_equal(p->Private.Tail, b[1]); /* stale */
    free(before);

    /* Chaining after it ignores the stale Tail: the old last buffer is not linked to. */
    PNDIS_BUFFER c = buf_new(e.bpool, e.mem + 500, 5);
    NdisChainBufferAtBack(p, c);
    assert_ptr_equal(p->Private.Head, c);
    assert_ptr_equal(p->Private.Tail, c);
    assert_null(b[1]->Next);
    assert_ptr_equal(b[0]->Next, b[1]);
    NdisReinitializePacket(p);
    PNDIS_BUFFER d = buf_new(e.bpool, e.mem + 600, 6);
    NdisChainBufferAtFront(p, d);
    assert_ptr_equal(p->Private.Head, d);
    assert_ptr_equal(p->Private.Tail, d);
    assert_null(d->Next);
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_int_equal(total, 6);
    NdisFreeBuffer(b[0]);
    NdisFreeBuffer(b[1]);
    NdisFreeBuffer(c);
    pkt_release(p);
    env_close(&e);
}

/* ======================================================================================== */
/* NdisGetFirstBufferFromPacket(Safe) and the Head/Tail/ValidCounts macros                   */

static void get_first_buffer_from_packet_walks_chain(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b[3];
    const struct piece pieces[3] = {{10, 14}, {100, 0}, {300, 200}};
    chain_pieces(&e, p, pieces, 3, b);
    for (int valid = 0; valid < 2; valid++) {
        p->Private.ValidCounts = (BOOLEAN)valid;
        p->Private.TotalLength = 7;
        p->Private.Count = 8;
        p->Private.PhysicalCount = 9;
        NDIS_PACKET_PRIVATE before;
        memcpy(&before, &p->Private, sizeof(before));
        PNDIS_BUFFER first = POISON_BUFFER;
        PUCHAR va = (PUCHAR)POISON_BUFFER; /* drivers pass PUCHAR* */
        UINT flen = POISON_UINT, tlen = POISON_UINT;
        NdisGetFirstBufferFromPacket(p, &first, &va, &flen, &tlen);
        assert_ptr_equal(first, b[0]);
        assert_ptr_equal(va, e.mem + 10);
        assert_int_equal(flen, 14);
        assert_int_equal(tlen, 214);
        assert_bytes(&p->Private, &before, sizeof(before), "private after get-first");
        PVOID sva = POISON_BUFFER;
        NdisGetFirstBufferFromPacketSafe(p, &first, &sva, &flen, &tlen, NormalPagePriority);
        assert_ptr_equal(first, b[0]);
        assert_ptr_equal(sva, e.mem + 10);
        assert_int_equal(flen, 14);
        assert_int_equal(tlen, 214);
        assert_bytes(&p->Private, &before, sizeof(before), "private after get-first safe");
    }
    pkt_release(p);
    env_close(&e);
}

static void get_first_buffer_from_packet_zero_length_first_not_skipped(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    PNDIS_BUFFER b[2];
    const struct piece pieces[2] = {{40, 0}, {300, 60}};
    chain_pieces(&e, p, pieces, 2, b);
    PNDIS_BUFFER first = POISON_BUFFER;
    PVOID va = POISON_BUFFER;
    UINT flen = POISON_UINT, tlen = POISON_UINT;
    NdisGetFirstBufferFromPacket(p, &first, &va, &flen, &tlen);
    assert_ptr_equal(first, b[0]);
    assert_ptr_equal(va, e.mem + 40);
    assert_int_equal(flen, 0);
    assert_int_equal(tlen, 60);
    first = POISON_BUFFER;
    va = POISON_BUFFER;
    NdisGetFirstBufferFromPacketSafe(p, &first, &va, &flen, &tlen, LowPagePriority);
    assert_ptr_equal(first, b[0]);
    assert_ptr_equal(va, e.mem + 40);
    assert_int_equal(flen, 0);
    assert_int_equal(tlen, 60);
    pkt_release(p);
    env_close(&e);
}

static void get_first_buffer_from_empty_packet(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    p->Private.Tail = POISON_BUFFER; /* a stale Tail must not be followed */
    PNDIS_BUFFER first = POISON_BUFFER;
    PUCHAR va = (PUCHAR)POISON_BUFFER;
    UINT flen = POISON_UINT, tlen = POISON_UINT;
    NdisGetFirstBufferFromPacket(p, &first, &va, &flen, &tlen);
    assert_null(first);
    assert_null(va);
    assert_int_equal(flen, 0);
    assert_int_equal(tlen, 0);
    first = POISON_BUFFER;
    va = (PUCHAR)POISON_BUFFER;
    flen = tlen = POISON_UINT;
    NdisGetFirstBufferFromPacketSafe(p, &first, &va, &flen, &tlen, HighPagePriority);
    assert_null(first);
    assert_null(va);
    assert_int_equal(flen, 0);
    assert_int_equal(tlen, 0);
    assert_true(p->Private.ValidCounts);
    p->Private.Tail = NULL;
    NdisFreePacket(p);
    env_close(&e);
}

static void packet_first_last_and_valid_counts_macros(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 1, 0);
    PNDIS_PACKET p = pkt_get(e.ppool);
    assert_null(NDIS_PACKET_FIRST_NDIS_BUFFER(p));
    assert_null(NDIS_PACKET_LAST_NDIS_BUFFER(p));
    assert_true(NDIS_PACKET_VALID_COUNTS(p));
    PNDIS_BUFFER b[3];
    const struct piece pieces[3] = {{0, 10}, {100, 20}, {200, 30}};
    chain_pieces(&e, p, pieces, 3, b);
    assert_ptr_equal(NDIS_PACKET_FIRST_NDIS_BUFFER(p), b[0]);
    assert_ptr_equal(NDIS_PACKET_LAST_NDIS_BUFFER(p), b[2]);
    assert_false(NDIS_PACKET_VALID_COUNTS(p));
    UINT total;
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_true(NDIS_PACKET_VALID_COUNTS(p));
    /* As an lvalue, the way drivers invalidate after editing lengths. */
    NdisAdjustBufferLength(b[1], 5);
    NDIS_PACKET_VALID_COUNTS(p) = FALSE;
    assert_false(p->Private.ValidCounts);
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_int_equal(total, 45);
    NDIS_PACKET_VALID_COUNTS(p) = TRUE;
    assert_true(p->Private.ValidCounts);
    NdisAdjustBufferLength(b[1], 20);
    pkt_release(p);
    env_close(&e);
}

/* ======================================================================================== */
/* NdisCopyFromPacketToPacket(Safe)                                                          */

/* The data bytes of a chain, in order: where each logical byte lives. */
static int chain_byte_map(PNDIS_PACKET P, unsigned char **Map, int Capacity)
{
    int n = 0;
    for (PNDIS_BUFFER b = P->Private.Head; b != NULL; b = b->Next) {
        unsigned char *va = MmGetMdlVirtualAddress(b);
        for (ULONG i = 0; i < MmGetMdlByteCount(b); i++) {
            assert_true(n < Capacity);
            Map[n++] = va + i;
        }
    }
    return n;
}

static void do_copy(int Safe, PNDIS_PACKET Dst, UINT DOff, UINT Count, PNDIS_PACKET Src, UINT SOff,
                    UINT *Copied)
{
    *Copied = POISON_UINT;
    if (Safe)
        NdisCopyFromPacketToPacketSafe(Dst, DOff, Count, Src, SOff, Copied,
                                       Safe == 1 ? NormalPagePriority : LowPagePriority);
    else
        NdisCopyFromPacketToPacket(Dst, DOff, Count, Src, SOff, Copied);
}

/* Source and destination chains with empty descriptors at the ends and in the middle, one
 * destination piece across a page boundary, and gaps that must never be written. */
static const struct piece copy_src_pieces[] = {
    {0, 0}, {16, 5}, {40, 0}, {64, 3}, {100, 7}, {130, 0}};
static const struct piece copy_dst_pieces[] = {
    {2 * TEST_PAGE + 8, 4}, {2 * TEST_PAGE + 30, 0}, {3 * TEST_PAGE - 3, 6},
    {3 * TEST_PAGE + 40, 1}, {3 * TEST_PAGE + 60, 5}};
enum { COPY_SRC_LEN = 15, COPY_DST_LEN = 16, COPY_REGION = 2 * TEST_PAGE };

static void copy_sweep_one(PNDIS_PACKET Dst, PNDIS_PACKET Src, unsigned char *DstRegion,
                           unsigned char *Pristine, unsigned char **SMap, unsigned char **DMap,
                           int Safe, UINT DOff, UINT Count, UINT SOff)
{
    memcpy(DstRegion, Pristine, COPY_REGION);
    NDIS_PACKET_PRIVATE ds, ss;
    memcpy(&ds, &Dst->Private, sizeof(ds));
    memcpy(&ss, &Src->Private, sizeof(ss));
    UINT copied;
    do_copy(Safe, Dst, DOff, Count, Src, SOff, &copied);
    UINT sleft = SOff < COPY_SRC_LEN ? COPY_SRC_LEN - SOff : 0;
    UINT dleft = DOff < COPY_DST_LEN ? COPY_DST_LEN - DOff : 0;
    UINT want = Count < sleft ? Count : sleft;
    want = want < dleft ? want : dleft;
    if (copied != want)
        fail_msg("safe=%d doff=%u count=%u soff=%u: copied %u, expected %u", Safe, DOff, Count,
                 SOff, copied, want);
    static unsigned char expect[COPY_REGION];
    memcpy(expect, Pristine, COPY_REGION);
    for (UINT k = 0; k < want; k++)
        expect[DMap[DOff + k] - DstRegion] = *SMap[SOff + k];
    if (memcmp(DstRegion, expect, COPY_REGION) != 0)
        fail_msg("safe=%d doff=%u count=%u soff=%u: destination bytes differ", Safe, DOff, Count,
                 SOff);
    assert_bytes(&Dst->Private, &ds, sizeof(ds), "destination private");
    assert_bytes(&Src->Private, &ss, sizeof(ss), "source private");
}

static void copy_packet_to_packet_offset_sweep(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 2, 0);
    PNDIS_PACKET src = pkt_get(e.ppool), dst = pkt_get(e.ppool);
    chain_pieces(&e, src, copy_src_pieces, 6, NULL);
    chain_pieces(&e, dst, copy_dst_pieces, 5, NULL);
    UINT total;
    NdisQueryPacket(src, NULL, NULL, NULL, &total);
    assert_int_equal(total, COPY_SRC_LEN);
    unsigned char *smap[COPY_SRC_LEN], *dmap[COPY_DST_LEN];
    assert_int_equal(chain_byte_map(src, smap, COPY_SRC_LEN), COPY_SRC_LEN);
    assert_int_equal(chain_byte_map(dst, dmap, COPY_DST_LEN), COPY_DST_LEN);
    unsigned char *region = e.mem + 2 * TEST_PAGE;
    unsigned char *pristine = snapshot(region, COPY_REGION);
    unsigned char *src_before = snapshot(e.mem, 2 * TEST_PAGE);
    NdisQueryPacket(dst, NULL, NULL, NULL, &total);
    /* Plain, Safe (normal priority), Safe (low priority), with the cached counts of both
     * packets valid and then invalid: a copy changes neither packet's cache. */
    for (int pass = 0; pass < 6; pass++) {
        int safe = pass % 3;
        if (pass == 3) {
            NDIS_PACKET_VALID_COUNTS(src) = FALSE;
            NDIS_PACKET_VALID_COUNTS(dst) = FALSE;
        }
        for (UINT soff = 0; soff <= COPY_SRC_LEN + 2; soff++)
            for (UINT doff = 0; doff <= COPY_DST_LEN + 2; doff++)
                for (UINT count = 0; count <= 20; count++)
                    copy_sweep_one(dst, src, region, pristine, smap, dmap, safe, doff, count,
                                   soff);
        assert_int_equal(dst->Private.ValidCounts, pass < 3);
        assert_int_equal(src->Private.ValidCounts, pass < 3);
    }
    assert_bytes(e.mem, src_before, 2 * TEST_PAGE, "source memory");
    free(pristine);
    free(src_before);
    pkt_release(src);
    pkt_release(dst);
    env_close(&e);
}

/* Named cases of the sweep, so that a failure says which rule broke. */
static void copy_packet_to_packet_boundaries_and_ends(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 2, 0);
    PNDIS_PACKET src = pkt_get(e.ppool), dst = pkt_get(e.ppool);
    /* src: "ABCDE" | "" | "FGH"; dst: 4 | 4 zero-filled bytes. */
    memcpy(e.mem, "ABCDE", 5);
    memcpy(e.mem + 64, "FGH", 3);
    memset(e.mem + 1000, 0, 4);
    memset(e.mem + 2000, 0, 4);
    const struct piece sp[3] = {{0, 5}, {32, 0}, {64, 3}};
    const struct piece dp[2] = {{1000, 4}, {2000, 4}};
    chain_pieces(&e, src, sp, 3, NULL);
    chain_pieces(&e, dst, dp, 2, NULL);
    UINT copied;
    /* Source offset on the boundary (5) starts at 'F', past the empty descriptor. */
    do_copy(0, dst, 0, 3, src, 5, &copied);
    assert_int_equal(copied, 3);
    assert_memory_equal(e.mem + 1000, "FGH", 3);
    /* Destination offset on its boundary (4) starts in the second destination descriptor. */
    do_copy(0, dst, 4, 2, src, 0, &copied);
    assert_int_equal(copied, 2);
    assert_memory_equal(e.mem + 2000, "AB", 2);
    assert_memory_equal(e.mem + 1000, "FGH", 3);
    /* Crossing both chains' boundaries at different places. */
    do_copy(0, dst, 2, 6, src, 3, &copied);
    assert_int_equal(copied, 5); /* only 5 source bytes remain from offset 3 */
    assert_memory_equal(e.mem + 1000, "FGDE", 4);
    assert_memory_equal(e.mem + 2000, "FGH", 3);
    /* Count larger than either chain: the shorter side limits. */
    do_copy(0, dst, 0, 1000, src, 0, &copied);
    assert_int_equal(copied, 8);
    assert_memory_equal(e.mem + 1000, "ABCD", 4);
    assert_memory_equal(e.mem + 2000, "EFGH", 4);
    /* Offsets at and beyond the end: nothing, and *BytesCopied is still written. */
    do_copy(0, dst, 0, 4, src, 8, &copied);
    assert_int_equal(copied, 0);
    do_copy(1, dst, 0, 4, src, 9, &copied);
    assert_int_equal(copied, 0);
    do_copy(0, dst, 8, 4, src, 0, &copied);
    assert_int_equal(copied, 0);
    do_copy(1, dst, 0xFFFFFFFFu, 4, src, 0xFFFFFFFFu, &copied);
    assert_int_equal(copied, 0);
    do_copy(0, dst, 0, 0, src, 0, &copied);
    assert_int_equal(copied, 0);
    assert_memory_equal(e.mem + 1000, "ABCD", 4);
    pkt_release(src);
    pkt_release(dst);
    env_close(&e);
}

static void copy_packet_to_packet_empty_chains(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 3, 0);
    PNDIS_PACKET full = pkt_get(e.ppool), empty = pkt_get(e.ppool), zeros = pkt_get(e.ppool);
    const struct piece fp[1] = {{0, 50}};
    const struct piece zp[2] = {{100, 0}, {200, 0}};
    chain_pieces(&e, full, fp, 1, NULL);
    chain_pieces(&e, zeros, zp, 2, NULL);
    unsigned char *before = snapshot(e.mem, 256);
    UINT copied;
    for (int safe = 0; safe < 2; safe++) {
        do_copy(safe, full, 0, 10, empty, 0, &copied);
        assert_int_equal(copied, 0);
        do_copy(safe, empty, 0, 10, full, 0, &copied);
        assert_int_equal(copied, 0);
        do_copy(safe, full, 0, 10, zeros, 0, &copied);
        assert_int_equal(copied, 0);
        do_copy(safe, zeros, 0, 10, full, 0, &copied);
        assert_int_equal(copied, 0);
    }
    assert_bytes(e.mem, before, 256, "memory after copies from/to empty chains");
    free(before);
    pkt_release(full);
    pkt_release(empty);
    pkt_release(zeros);
    env_close(&e);
}

static void copy_packet_to_packet_overlapping_memory(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, 3, 0);
    unsigned char *m = e.mem;
    unsigned char expect[256];
    UINT copied;
    /* One segment each way: destination after and before the source in the same memory. */
    static const int shifts[] = {3, -3, 0, 61};
    for (size_t i = 0; i < 4; i++) {
        int shift = shifts[i];
        for (int k = 0; k < 256; k++)
            m[k] = (unsigned char)(k * 7 + 1);
        memcpy(expect, m, 256);
        memmove(expect + 64 + shift, expect + 64, 100);
        PNDIS_PACKET src = pkt_get(e.ppool), dst = pkt_get(e.ppool);
        NdisChainBufferAtBack(src, buf_new(e.bpool, m + 64, 100));
        NdisChainBufferAtBack(dst, buf_new(e.bpool, m + 64 + shift, 100));
        do_copy((int)(i & 1), dst, 0, 100, src, 0, &copied);
        assert_int_equal(copied, 100);
        assert_bytes(m, expect, 256, "overlapping single-segment copy");
        pkt_release(src);
        pkt_release(dst);
    }
    /* Source and destination the same packet: moving data within it. */
    for (int k = 0; k < 256; k++)
        m[k] = (unsigned char)(k * 5 + 3);
    memcpy(expect, m, 256);
    memmove(expect + 10 + 7, expect + 10, 50);
    PNDIS_PACKET p = pkt_get(e.ppool);
    NdisChainBufferAtBack(p, buf_new(e.bpool, m + 10, 100));
    do_copy(0, p, 7, 50, p, 0, &copied);
    assert_int_equal(copied, 50);
    assert_bytes(m, expect, 256, "copy within one packet");
    pkt_release(p);
    /* Several segments: each one is moved as a unit, in chain order. Source [0,40)+[40,80),
     * destination [10,90): segments are 40 bytes from 0 to 10, then 40 bytes from 40 to 50. */
    for (int k = 0; k < 256; k++)
        m[k] = (unsigned char)(k * 3 + 11);
    memcpy(expect, m, 256);
    memmove(expect + 10, expect + 0, 40);
    memmove(expect + 50, expect + 40, 40);
    PNDIS_PACKET src = pkt_get(e.ppool), dst = pkt_get(e.ppool);
    const struct piece sp[2] = {{0, 40}, {40, 40}};
    const struct piece dp[1] = {{10, 80}};
    chain_pieces(&e, src, sp, 2, NULL);
    chain_pieces(&e, dst, dp, 1, NULL);
    do_copy(0, dst, 0, 80, src, 0, &copied);
    assert_int_equal(copied, 80);
    assert_bytes(m, expect, 256, "overlapping multi-segment copy");
    pkt_release(src);
    pkt_release(dst);
    env_close(&e);
}

/* ======================================================================================== */
/* OOB and per-packet info                                                                   */

static void oob_accessors_status_header_times(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_new(1, 20);
    PNDIS_PACKET p = pkt_get(pool);
    PNDIS_PACKET_OOB_DATA oob = (PNDIS_PACKET_OOB_DATA)((PUCHAR)p + oob_offset_for(20));
    assert_ptr_equal(NDIS_OOB_DATA_FROM_PACKET(p), oob);
    assert_int_equal(NDIS_GET_PACKET_STATUS(p), NDIS_STATUS_SUCCESS);
    NDIS_SET_PACKET_STATUS(p, NDIS_STATUS_RESOURCES);
    assert_int_equal(oob->Status, NDIS_STATUS_RESOURCES);
    assert_int_equal(NDIS_GET_PACKET_STATUS(p), NDIS_STATUS_RESOURCES);
    NDIS_SET_PACKET_HEADER_SIZE(p, 14);
    assert_int_equal(oob->HeaderSize, 14);
    assert_int_equal(NDIS_GET_PACKET_HEADER_SIZE(p), 14);
    NDIS_SET_PACKET_TIME_TO_SEND(p, 0x0102030405060708ull);
    assert_true(NDIS_GET_PACKET_TIME_SENT(p) == 0x0102030405060708ull); /* same storage */
    assert_true(oob->TimeToSend == 0x0102030405060708ull);
    NDIS_SET_PACKET_TIME_SENT(p, 0x8877665544332211ull);
    assert_true(NDIS_GET_PACKET_TIME_TO_SEND(p) == 0x8877665544332211ull);
    NDIS_SET_PACKET_TIME_RECEIVED(p, 0xAABBCCDDEEFF0011ull);
    assert_true(NDIS_GET_PACKET_TIME_RECEIVED(p) == 0xAABBCCDDEEFF0011ull);
    assert_true(oob->TimeReceived == 0xAABBCCDDEEFF0011ull);
    assert_true(NDIS_GET_PACKET_TIME_SENT(p) == 0x8877665544332211ull);
    /* None of it reached the private area, ProtocolReserved or the extension. */
    assert_int_equal(p->Private.Flags, 0);
    assert_all_zero(p->ProtocolReserved, 20, "ProtocolReserved");
    assert_all_zero(NDIS_PACKET_EXTENSION_FROM_PACKET(p), sizeof(NDIS_PACKET_EXTENSION),
                    "extension");
    NdisFreePacket(p);
    NdisFreePacketPool(pool);
}

static void media_specific_info_flag_rules(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_new(1, 0);
    PNDIS_PACKET p = pkt_get(pool);
    PNDIS_PACKET_OOB_DATA oob = NDIS_OOB_DATA_FROM_PACKET(p);
    static UCHAR info[24];
    PVOID got = POISON_BUFFER;
    UINT size = POISON_UINT;
    /* Fresh: no media info yet. */
    NDIS_GET_PACKET_MEDIA_SPECIFIC_INFO(p, &got, &size);
    assert_null(got);
    assert_int_equal(size, 0);
    /* Stored values are not returned without fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO. */
    oob->MediaSpecificInformation = info;
    oob->SizeMediaSpecificInfo = 5;
    got = POISON_BUFFER;
    NDIS_GET_PACKET_MEDIA_SPECIFIC_INFO(p, &got, &size);
    assert_null(got);
    assert_int_equal(size, 0);
    NDIS_SET_PACKET_MEDIA_SPECIFIC_INFO(p, info, sizeof(info));
    assert_int_equal(p->Private.NdisPacketFlags,
                     fPACKET_ALLOCATED_BY_NDIS | fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO);
    assert_ptr_equal(oob->MediaSpecificInformation, info);
    assert_int_equal(oob->SizeMediaSpecificInfo, sizeof(info));
    NDIS_GET_PACKET_MEDIA_SPECIFIC_INFO(p, &got, &size);
    assert_ptr_equal(got, info);
    assert_int_equal(size, sizeof(info));

    /* Without fPACKET_ALLOCATED_BY_NDIS: GET gives nothing, SET does nothing. */
    p->Private.NdisPacketFlags &= (UCHAR)~fPACKET_ALLOCATED_BY_NDIS;
    got = POISON_BUFFER;
    size = POISON_UINT;
    NDIS_GET_PACKET_MEDIA_SPECIFIC_INFO(p, &got, &size);
    assert_null(got);
    assert_int_equal(size, 0);
    p->Private.NdisPacketFlags = 0;
    NDIS_SET_PACKET_MEDIA_SPECIFIC_INFO(p, p, 99);
    assert_int_equal(p->Private.NdisPacketFlags, 0);
    assert_ptr_equal(oob->MediaSpecificInformation, info);
    assert_int_equal(oob->SizeMediaSpecificInfo, sizeof(info));
    NdisFreePacket(p);

    /* A driver-built packet works once it carries the flag (reference §7, item 20). */
    UINT psize = NdisPacketSize(0);
    PNDIS_PACKET own = aligned_alloc(16, (psize + 15) / 16 * 16);
    assert_non_null(own);
    memset(own, 0, psize);
    own->Private.NdisPacketOobOffset = (USHORT)oob_offset_for(0);
    NDIS_SET_PACKET_MEDIA_SPECIFIC_INFO(own, info, 3);
    NDIS_GET_PACKET_MEDIA_SPECIFIC_INFO(own, &got, &size);
    assert_null(got);
    own->Private.NdisPacketFlags = fPACKET_ALLOCATED_BY_NDIS;
    NDIS_SET_PACKET_MEDIA_SPECIFIC_INFO(own, info, 3);
    NDIS_GET_PACKET_MEDIA_SPECIFIC_INFO(own, &got, &size);
    assert_ptr_equal(got, info);
    assert_int_equal(size, 3);
    free(own);
    NdisFreePacketPool(pool);
}

static void per_packet_info_slots_are_lvalues(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_new(1, 5);
    PNDIS_PACKET p = pkt_get(pool);
    PVOID *slots = (PVOID *)((PUCHAR)p + oob_offset_for(5) + sizeof(NDIS_PACKET_OOB_DATA));
    assert_ptr_equal(NDIS_PACKET_EXTENSION_FROM_PACKET(p), (PNDIS_PACKET_EXTENSION)slots);
    for (int i = 0; i < MaxPerPacketInfo; i++)
        NDIS_PER_PACKET_INFO_FROM_PACKET(p, i) = (PVOID)(ULONG_PTR)(0x100 + i);
    for (int i = 0; i < MaxPerPacketInfo; i++) {
        assert_ptr_equal(slots[i], (PVOID)(ULONG_PTR)(0x100 + i));
        assert_ptr_equal(NDIS_PER_PACKET_INFO_FROM_PACKET(p, i), slots[i]);
    }
    NDIS_PER_PACKET_INFO_FROM_PACKET(p, TcpIpChecksumPacketInfo) = NULL;
    assert_null(slots[0]);
    assert_ptr_equal(slots[1], (PVOID)(ULONG_PTR)0x101);
    NdisFreePacket(p);
    NdisFreePacketPool(pool);
}

static void original_packet_and_cancel_id_accessors(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_new(2, 0);
    PNDIS_PACKET p = pkt_get(pool), orig = pkt_get(pool);
    PNDIS_PACKET_EXTENSION ext = NDIS_PACKET_EXTENSION_FROM_PACKET(p);
    assert_null(NDIS_GET_ORIGINAL_PACKET(p));
    NDIS_SET_ORIGINAL_PACKET(p, orig);
    assert_ptr_equal(ext->NdisPacketInfo[OriginalPacketInfo], orig);
    assert_ptr_equal(NDIS_GET_ORIGINAL_PACKET(p), orig);
    assert_null(NDIS_GET_PACKET_CANCEL_ID(p));
    NDIS_SET_PACKET_CANCEL_ID(p, (PVOID)(ULONG_PTR)0xC0FFEE);
    assert_ptr_equal(ext->NdisPacketInfo[PacketCancelId], (PVOID)(ULONG_PTR)0xC0FFEE);
    assert_ptr_equal(NDIS_GET_PACKET_CANCEL_ID(p), (PVOID)(ULONG_PTR)0xC0FFEE);
    assert_ptr_equal(NdisGetPacketCancelId(p), (PVOID)(ULONG_PTR)0xC0FFEE);
    NdisSetPacketCancelId(p, (PVOID)(ULONG_PTR)0xBEEF);
    assert_ptr_equal(ext->NdisPacketInfo[PacketCancelId], (PVOID)(ULONG_PTR)0xBEEF);
    assert_ptr_equal(NDIS_GET_PACKET_CANCEL_ID(p), (PVOID)(ULONG_PTR)0xBEEF);
    assert_ptr_equal(NDIS_GET_ORIGINAL_PACKET(p), orig); /* neighbours untouched */
    for (int i = 0; i < MaxPerPacketInfo; i++) {
        if (i != OriginalPacketInfo && i != PacketCancelId)
            assert_null(ext->NdisPacketInfo[i]);
    }
    NdisFreePacket(p);
    NdisFreePacket(orig);
    NdisFreePacketPool(pool);
}

static void packet_flags_set_ors_clear_removes(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_new(1, 0);
    NdisSetPacketPoolProtocolId(pool, NDIS_PROTOCOL_ID_TCP_IP);
    PNDIS_PACKET p = pkt_get(pool);
    assert_int_equal(NdisGetPacketFlags(p), NDIS_PROTOCOL_ID_TCP_IP);
    NdisSetPacketFlags(p, NDIS_FLAGS_MULTICAST_PACKET);
    NdisSetPacketFlags(p, NDIS_FLAGS_DONT_LOOPBACK);
    assert_int_equal(NdisGetPacketFlags(p), NDIS_PROTOCOL_ID_TCP_IP |
                                                NDIS_FLAGS_MULTICAST_PACKET |
                                                NDIS_FLAGS_DONT_LOOPBACK);
    assert_int_equal(NDIS_GET_PACKET_PROTOCOL_TYPE(p), NDIS_PROTOCOL_ID_TCP_IP);
    NdisClearPacketFlags(p, NDIS_FLAGS_MULTICAST_PACKET);
    assert_int_equal(p->Private.Flags, NDIS_PROTOCOL_ID_TCP_IP | NDIS_FLAGS_DONT_LOOPBACK);
    NdisSetPacketFlags(p, NDIS_FLAGS_PADDED | NDIS_FLAGS_DONT_LOOPBACK);
    assert_int_equal(p->Private.Flags,
                     NDIS_PROTOCOL_ID_TCP_IP | NDIS_FLAGS_DONT_LOOPBACK | NDIS_FLAGS_PADDED);
    NdisClearPacketFlags(p, NDIS_FLAGS_PROTOCOL_ID_MASK);
    assert_int_equal(NDIS_GET_PACKET_PROTOCOL_TYPE(p), 0);
    assert_int_equal(NdisGetPacketFlags(p), NDIS_FLAGS_DONT_LOOPBACK | NDIS_FLAGS_PADDED);
    assert_int_equal(p->Private.NdisPacketFlags, fPACKET_ALLOCATED_BY_NDIS); /* other field */
    NdisFreePacket(p);
    NdisFreePacketPool(pool);
}

/* ======================================================================================== */
/* intermediate-driver helpers                                                               */

typedef VOID (*im_copy_fn)(PNDIS_PACKET, PNDIS_PACKET);

static void im_copy_case(im_copy_fn Copy)
{
    struct env e;
    env_open(&e, 1, 40); /* destination pool */
    NDIS_HANDLE spool = pool_new(1, 0); /* different OOB offset on purpose */
    PNDIS_PACKET src = pkt_get(spool), dst = pkt_get(e.ppool);
    for (int i = 0; i < MaxPerPacketInfo; i++) {
        NDIS_PER_PACKET_INFO_FROM_PACKET(src, i) = (PVOID)(ULONG_PTR)(0x1000 + i);
        NDIS_PER_PACKET_INFO_FROM_PACKET(dst, i) = (PVOID)(ULONG_PTR)(0x2000 + i);
    }
    NDIS_SET_PACKET_STATUS(src, NDIS_STATUS_FAILURE);
    NDIS_SET_PACKET_HEADER_SIZE(src, 22);
    NdisSetPacketFlags(src, NDIS_FLAGS_LOOPBACK_ONLY);
    NDIS_SET_PACKET_STATUS(dst, NDIS_STATUS_PENDING);
    NDIS_SET_PACKET_TIME_RECEIVED(dst, 777);
    NdisSetPacketFlags(dst, NDIS_FLAGS_SENT_AT_DPC);
    memset(dst->ProtocolReserved, 0x5C, 40);
    memset(dst->MiniportReserved, 0x6D, sizeof(dst->MiniportReserved));
    NdisChainBufferAtBack(dst, buf_new(e.bpool, e.mem, 33));
    BOOLEAN more;
    PNDIS_PACKET_STACK stack = NdisIMGetCurrentPacketStack(dst, &more);
    stack->IMReserved[0] = 0xABC;
    size_t dsize = packet_size_for(40), ssize = packet_size_for(0);
    unsigned char *want = snapshot(dst, dsize);
    unsigned char *src_before = snapshot(src, ssize);
    memcpy(want + oob_offset_for(40) + sizeof(NDIS_PACKET_OOB_DATA),
           NDIS_PACKET_EXTENSION_FROM_PACKET(src), sizeof(NDIS_PACKET_EXTENSION));
    Copy(dst, src);
    for (int i = 0; i < MaxPerPacketInfo; i++)
        assert_ptr_equal(NDIS_PER_PACKET_INFO_FROM_PACKET(dst, i), (PVOID)(ULONG_PTR)(0x1000 + i));
    assert_bytes(dst, want, dsize, "destination after IM copy");
    assert_bytes(src, src_before, ssize, "source after IM copy");
    assert_int_equal(stack->IMReserved[0], 0xABC);
    free(want);
    free(src_before);
    pkt_release(dst);
    NdisFreePacket(src);
    NdisFreePacketPool(spool);
    env_close(&e);
}

static void im_copy_send_per_packet_info_copies_all_slots_only(void **state)
{
    (void)state;
    im_copy_case(NdisIMCopySendPerPacketInfo);
}

static void im_copy_send_complete_per_packet_info_copies_all_slots_only(void **state)
{
    (void)state;
    im_copy_case(NdisIMCopySendCompletePerPacketInfo);
}

static void im_get_current_packet_stack(void **state)
{
    (void)state;
    NDIS_HANDLE pool = pool_new(2, 8);
    PNDIS_PACKET p = pkt_get(pool), q = pkt_get(pool);
    BOOLEAN more = 0x5A;
    PNDIS_PACKET_STACK s = NdisIMGetCurrentPacketStack(p, &more);
    assert_non_null(s);
    assert_int_equal(more, TRUE);
    assert_all_zero(s, sizeof(*s), "fresh packet stack");
    /* The stack is not part of the descriptor a driver sees. */
    size_t size = packet_size_for(8);
    unsigned char *before = snapshot(p, size);
    assert_true((PUCHAR)s + sizeof(*s) <= (PUCHAR)p || (PUCHAR)s >= (PUCHAR)p + size);
    s->IMReserved[0] = (ULONG_PTR)p;
    s->IMReserved[1] = 0x12345;
    assert_bytes(p, before, size, "packet after writing its stack");
    more = FALSE;
    PNDIS_PACKET_STACK again = NdisIMGetCurrentPacketStack(p, &more);
    assert_ptr_equal(again, s);
    assert_int_equal(more, TRUE);
    assert_int_equal(again->IMReserved[0], (ULONG_PTR)p);
    assert_int_equal(again->IMReserved[1], 0x12345);
    PNDIS_PACKET_STACK other = NdisIMGetCurrentPacketStack(q, &more);
    assert_ptr_not_equal(other, s);
    assert_int_equal(other->IMReserved[0], 0);
    free(before);
    NdisFreePacket(p);
    NdisFreePacket(q);
    NdisFreePacketPool(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* layouts and constants */
        cmocka_unit_test(layout_packet_private),
        cmocka_unit_test(layout_packet_and_reserved_views),
        cmocka_unit_test(layout_oob_data),
        cmocka_unit_test(layout_packet_extension_and_info_enum),
        cmocka_unit_test(layout_packet_stack),
        cmocka_unit_test(constants_ndis_flags),
        cmocka_unit_test(constants_fpacket_and_protocol_ids),
        /* NdisAllocatePacketPool(Ex) */
        cmocka_unit_test(pool_alloc_basic_success),
        cmocka_unit_test(pool_more_than_ffff_descriptors_is_resources),
        cmocka_unit_test(pool_protocol_reserved_length_limit),
        cmocka_unit_test(pool_ex_total_clamped_to_ffff_without_wrapping),
        cmocka_unit_test(pool_zero_zero_created_every_allocation_resources),
        cmocka_unit_test(pool_zero_base_serves_its_overflow),
        cmocka_unit_test(pool_of_n_never_hands_out_n_plus_one),
        cmocka_unit_test(pool_overflow_made_only_when_base_all_in_use),
        cmocka_unit_test(pool_overflow_not_preallocated),
        cmocka_unit_test(pool_other_threads_free_packets_reused_before_overflow),
        /* pool management */
        cmocka_unit_test(free_packet_pool_idle_releases_storage),
        cmocka_unit_test(free_packet_pool_with_packets_out_retires),
        cmocka_unit_test(packet_pool_usage_counts_packets_out),
        cmocka_unit_test(packet_size_formula),
        cmocka_unit_test(get_pool_from_packet_returns_its_pool),
        cmocka_unit_test(set_packet_pool_protocol_id_tags_later_packets),
        /* allocation and free */
        cmocka_unit_test(alloc_free_variants_at_dispatch_level),
        cmocka_unit_test(fresh_packet_fully_zeroed_on_every_allocation),
        cmocka_unit_test(alloc_null_or_buffer_pool_handle_fails),
        cmocka_unit_test(free_packet_twice_is_ignored),
        cmocka_unit_test(free_null_packet_is_ignored),
        cmocka_unit_test(free_packet_leaves_buffers_chained),
        /* chain and unchain */
        cmocka_unit_test(chain_at_front_single_buffers),
        cmocka_unit_test(chain_at_front_multi_descriptor_chain),
        cmocka_unit_test(chain_at_back_single_and_multi),
        cmocka_unit_test(unchain_at_front),
        cmocka_unit_test(unchain_at_back_walks_from_head),
        cmocka_unit_test(unchained_buffer_rechains_alone),
        /* counts and queries */
        cmocka_unit_test(query_packet_every_optional_combination),
        cmocka_unit_test(query_packet_returns_stale_cache_while_valid),
        cmocka_unit_test(query_packet_first_buffer_only_does_not_recompute),
        cmocka_unit_test(query_packet_zero_length_buffers_count_one_page),
        cmocka_unit_test(query_packet_equal_lengths_different_in_page_offsets),
        cmocka_unit_test(query_packet_length_trusts_cache),
        cmocka_unit_test(recalculate_packet_counts_fixes_tail_and_invalidates),
        cmocka_unit_test(reinitialize_packet_touches_only_head_and_valid_counts),
        cmocka_unit_test(get_first_buffer_from_packet_walks_chain),
        cmocka_unit_test(get_first_buffer_from_packet_zero_length_first_not_skipped),
        cmocka_unit_test(get_first_buffer_from_empty_packet),
        cmocka_unit_test(packet_first_last_and_valid_counts_macros),
        /* NdisCopyFromPacketToPacket(Safe) */
        cmocka_unit_test(copy_packet_to_packet_offset_sweep),
        cmocka_unit_test(copy_packet_to_packet_boundaries_and_ends),
        cmocka_unit_test(copy_packet_to_packet_empty_chains),
        cmocka_unit_test(copy_packet_to_packet_overlapping_memory),
        /* OOB and per-packet info */
        cmocka_unit_test(oob_accessors_status_header_times),
        cmocka_unit_test(media_specific_info_flag_rules),
        cmocka_unit_test(per_packet_info_slots_are_lvalues),
        cmocka_unit_test(original_packet_and_cancel_id_accessors),
        cmocka_unit_test(packet_flags_set_ors_clear_removes),
        /* intermediate drivers */
        cmocka_unit_test(im_copy_send_per_packet_info_copies_all_slots_only),
        cmocka_unit_test(im_copy_send_complete_per_packet_info_copies_all_slots_only),
        cmocka_unit_test(im_get_current_packet_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
