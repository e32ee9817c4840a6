/* SPDX-License-Identifier: MIT */
/* test_packet_drivers.c - the packet layer used the way NDIS 5 drivers use it: a miniport's
 * receive ring indicated to a protocol and returned, an 802.1Q tagging send path built from
 * NdisCopyBuffer partials, a protocol churning through thousands of small pools, and a driver
 * chaining IoAllocateMdl MDLs into packets. Every scenario checks data and resource accounting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

#include "test_util.h"

/* Freed small chunks parked in glibc's tcache still count as in use: a bounded slack. */
#define HEAP_SLACK (64u * 1024u)

#define ETH_HEADER 14
#define ETH_MACS 12
#define ETH_MIN 60
#define ETH_MAX 1514

/* ---- common helpers ---- */

static uint32_t rng_next(uint32_t *State)
{
    *State = *State * 1664525u + 1013904223u;
    return *State >> 8;
}

static NDIS_HANDLE ppool_new(UINT Count, UINT Prl)
{
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    NDIS_HANDLE pool = NULL;
    NdisAllocatePacketPool(&status, &pool, Count, Prl);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(pool);
    return pool;
}

static NDIS_HANDLE bpool_new(UINT Count)
{
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    NDIS_HANDLE pool = NULL;
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

static PNDIS_PACKET pkt_get(NDIS_HANDLE Pool)
{
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    PNDIS_PACKET p = NULL;
    NdisAllocatePacket(&status, &p, Pool);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(p);
    return p;
}

static PNDIS_BUFFER buf_new(NDIS_HANDLE Pool, PVOID Va, UINT Length)
{
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    PNDIS_BUFFER b = NULL;
    NdisAllocateBuffer(&status, &b, Pool, Va, Length);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_non_null(b);
    return b;
}

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

/* Reads Length bytes from logical Offset of a packet the way miniports walk chains: buffer by
 * buffer with NdisQueryBufferSafe / NdisGetNextBuffer. Returns the bytes read. */
static UINT packet_read(PNDIS_PACKET P, UINT Offset, UINT Length, unsigned char *Out)
{
    PNDIS_BUFFER b;
    UINT total, done = 0;
    NdisQueryPacket(P, NULL, NULL, &b, &total);
    while (b != NULL && done < Length) {
        PUCHAR va;
        UINT len;
        NdisQueryBufferSafe(b, &va, &len, NormalPagePriority);
        assert_non_null(va);
        if (Offset >= len) {
            Offset -= len;
        } else {
            UINT n = len - Offset < Length - done ? len - Offset : Length - done;
            memcpy(Out + done, va + Offset, n);
            done += n;
            Offset = 0;
        }
        NdisGetNextBuffer(b, &b);
    }
    return done;
}

/* An Ethernet frame whose payload says who it is: sequence number and length after the header,
 * then bytes derived from both, so a frame read from the wrong place or time is caught. */
static unsigned char frame_byte(uint32_t Seq, UINT I)
{
    return (unsigned char)(Seq * 29u + I * 7u + (I >> 5) + 1u);
}

static void frame_build(unsigned char *F, UINT Length, uint32_t Seq, UCHAR DstLast)
{
    static const unsigned char src_mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    const unsigned char dst_mac[6] = {0x02, 0x00, 0x5E, 0x00, 0x01, DstLast};
    memcpy(F, dst_mac, 6);
    memcpy(F + 6, src_mac, 6);
    F[12] = 0x08;
    F[13] = 0x00;
    memcpy(F + 14, &Seq, 4);
    F[18] = (unsigned char)Length;
    F[19] = (unsigned char)(Length >> 8);
    for (UINT i = 20; i < Length; i++)
        F[i] = frame_byte(Seq, i);
}

/* The sequence number of a consistent frame of Length bytes; fails the test otherwise. */
static uint32_t frame_check(const unsigned char *F, UINT Length)
{
    uint32_t seq;
    assert_true(Length >= ETH_MIN);
    assert_int_equal(F[12], 0x08);
    assert_int_equal(F[13], 0x00);
    memcpy(&seq, F + 14, 4);
    assert_int_equal(F[18] | (F[19] << 8), Length);
    for (UINT i = 20; i < Length; i++) {
        if (F[i] != frame_byte(seq, i))
            fail_msg("frame %u byte %u is 0x%02x, expected 0x%02x", seq, i, F[i],
                     frame_byte(seq, i));
    }
    return seq;
}

/* ======================================================================================== */
/* (1) a miniport's receive ring, indicated to a protocol and returned                       */

enum {
    RX_RING = 32,       /* receive slots */
    RX_SLOT = 1536,     /* slot stride: some frames straddle a page boundary */
    RX_POOL = 24,       /* fewer packets than slots, so the pool runs low */
    RX_LOW_WATER = 4,   /* fewer free packets than this: indicate with RESOURCES */
    RX_ROUNDS = 3000,
    RX_COPY_SPLIT = 100, /* the protocol's copy packet: 100 bytes, then 1500 */
};

struct rx_miniport {
    NDIS_HANDLE ppool, bpool;
    unsigned char *ring;
    int filled[RX_RING]; /* the hardware wrote a frame not yet indicated */
    int busy[RX_RING];   /* the frame is out in a packet */
    UINT len[RX_RING];
    uint32_t next_seq, rng;
    uint64_t seq_sum_indicated;
    unsigned long success, resources, dropped, returned;
};

struct rx_protocol {
    NDIS_HANDLE ppool, bpool;
    unsigned char *copy_mem;
    PNDIS_PACKET copy_pkt;
    PNDIS_PACKET held_head, held_tail; /* FIFO linked through ProtocolReserved */
    unsigned held;
    uint64_t seq_sum_received;
    unsigned long received, full_copies, partial_copies;
};

static PNDIS_PACKET held_next(PNDIS_PACKET P)
{
    PNDIS_PACKET next;
    memcpy(&next, P->ProtocolReserved, sizeof(next));
    return next;
}

static void held_set_next(PNDIS_PACKET P, PNDIS_PACKET Next)
{
    memcpy(P->ProtocolReserved, &Next, sizeof(Next));
}

static void rx_hw_fill(struct rx_miniport *M)
{
    for (int i = 0; i < RX_RING; i++) {
        if (M->busy[i] || M->filled[i] || rng_next(&M->rng) % 4 == 0)
            continue;
        UINT len = ETH_MIN + rng_next(&M->rng) % (ETH_MAX - ETH_MIN + 1);
        frame_build(M->ring + (size_t)i * RX_SLOT, len, M->next_seq, (UCHAR)i);
        M->len[i] = len;
        M->filled[i] = 1;
        M->next_seq++;
    }
}

/* MiniportReturnPacket: the slot goes back to the hardware. Runs at DISPATCH_LEVEL. */
static void rx_return_packet(struct rx_miniport *M, PNDIS_PACKET P)
{
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    ULONG_PTR slot;
    memcpy(&slot, P->MiniportReserved, sizeof(slot));
    assert_true(slot < RX_RING);
    assert_true(M->busy[slot]);
    PNDIS_BUFFER b, none;
    NdisUnchainBufferAtFront(P, &b);
    assert_non_null(b);
    assert_ptr_equal(MmGetMdlVirtualAddress(b), M->ring + slot * RX_SLOT);
    NdisUnchainBufferAtFront(P, &none);
    assert_null(none);
    NdisFreeBuffer(b);
    NdisDprFreePacket(P);
    M->busy[slot] = 0;
    M->returned++;
}

static void rx_copy_check(struct rx_protocol *Pr, UINT DstOff, const unsigned char *Want, UINT N)
{
    unsigned char got[ETH_MAX];
    assert_int_equal(packet_read(Pr->copy_pkt, DstOff, N, got), N);
    assert_memory_equal(got, Want, N);
}

/* ProtocolReceivePacket: TRUE when the protocol keeps the packet to return it later. */
static int rx_protocol_receive(struct rx_protocol *Pr, PNDIS_PACKET P)
{
    UINT phys, count, total;
    PNDIS_BUFFER first;
    NdisQueryPacket(P, &phys, &count, &first, &total);
    PNDIS_BUFFER fb;
    PUCHAR va;
    UINT flen, tlen;
    NdisGetFirstBufferFromPacketSafe(P, &fb, &va, &flen, &tlen, NormalPagePriority);
    assert_ptr_equal(fb, first);
    assert_non_null(va);
    assert_int_equal(count, 1);
    assert_int_equal(flen, total);
    assert_int_equal(tlen, total);
    assert_int_equal(phys, ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, total));
    assert_int_equal(NDIS_GET_PACKET_HEADER_SIZE(P), ETH_HEADER);
    uint32_t seq = frame_check(va, total);
    Pr->received++;
    Pr->seq_sum_received += seq;
    UINT copied = 0xDEADBEEFu;
    if (NDIS_GET_PACKET_STATUS(P) == NDIS_STATUS_RESOURCES) {
        /* The miniport needs it back at once: copy everything now. */
        NdisCopyFromPacketToPacket(Pr->copy_pkt, 0, total, P, 0, &copied);
        assert_int_equal(copied, total);
        rx_copy_check(Pr, 0, va, total);
        Pr->full_copies++;
        return 0;
    }
    assert_int_equal(NDIS_GET_PACKET_STATUS(P), NDIS_STATUS_SUCCESS);
    if (Pr->received % 3 == 0) {
        /* Part of the payload, landing across the copy packet's buffer boundary. */
        UINT want = total - ETH_HEADER < 64 ? total - ETH_HEADER : 64;
        NdisCopyFromPacketToPacketSafe(Pr->copy_pkt, RX_COPY_SPLIT - 20, 64, P, ETH_HEADER,
                                       &copied, NormalPagePriority);
        assert_int_equal(copied, want);
        rx_copy_check(Pr, RX_COPY_SPLIT - 20, va + ETH_HEADER, want);
        Pr->partial_copies++;
    }
    if (Pr->received % 5 == 0)
        return 0; /* done with it during the indication */
    held_set_next(P, NULL);
    if (Pr->held_tail != NULL)
        held_set_next(Pr->held_tail, P);
    else
        Pr->held_head = P;
    Pr->held_tail = P;
    Pr->held++;
    return 1;
}

/* The receive DPC: wrap every filled slot in a packet and indicate them as one array. */
static void rx_miniport_dpc(struct rx_miniport *M, struct rx_protocol *Pr)
{
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    PNDIS_PACKET batch[RX_RING];
    int kept[RX_RING];
    int n = 0;
    for (int i = 0; i < RX_RING; i++) {
        if (!M->filled[i])
            continue;
        M->filled[i] = 0;
        NDIS_STATUS status;
        PNDIS_PACKET p = (PNDIS_PACKET)(ULONG_PTR)1;
        NdisDprAllocatePacket(&status, &p, M->ppool);
        if (status != NDIS_STATUS_SUCCESS) {
            assert_int_equal(status, NDIS_STATUS_RESOURCES);
            assert_null(p);
            M->dropped++; /* no packet: the frame is lost and the slot reposted */
            continue;
        }
        PNDIS_BUFFER b = buf_new(M->bpool, M->ring + (size_t)i * RX_SLOT, M->len[i]);
        NdisChainBufferAtFront(p, b);
        ULONG_PTR slot = (ULONG_PTR)i;
        memcpy(p->MiniportReserved, &slot, sizeof(slot));
        NDIS_SET_PACKET_HEADER_SIZE(p, ETH_HEADER);
        UINT out = NdisPacketPoolUsage(M->ppool);
        NDIS_SET_PACKET_STATUS(p, out > RX_POOL - RX_LOW_WATER ? NDIS_STATUS_RESOURCES
                                                               : NDIS_STATUS_SUCCESS);
        uint32_t seq;
        memcpy(&seq, M->ring + (size_t)i * RX_SLOT + 14, 4);
        M->seq_sum_indicated += seq;
        M->busy[i] = 1;
        batch[n++] = p;
    }
    for (int k = 0; k < n; k++)
        kept[k] = rx_protocol_receive(Pr, batch[k]);
    for (int k = 0; k < n; k++) {
        if (NDIS_GET_PACKET_STATUS(batch[k]) == NDIS_STATUS_RESOURCES) {
            assert_false(kept[k]);
            M->resources++;
        } else {
            M->success++;
        }
        if (!kept[k])
            rx_return_packet(M, batch[k]);
    }
    KeLowerIrql(old);
}

/* NdisReturnPackets from the protocol: the oldest packets first, until Keep remain. The data
 * must still be intact: the hardware may not have reused a slot whose packet was out. */
static void rx_protocol_return(struct rx_protocol *Pr, struct rx_miniport *M, unsigned Keep)
{
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    while (Pr->held > Keep) {
        PNDIS_PACKET p = Pr->held_head;
        Pr->held_head = held_next(p);
        if (Pr->held_head == NULL)
            Pr->held_tail = NULL;
        Pr->held--;
        PNDIS_BUFFER fb;
        PUCHAR va;
        UINT flen, tlen;
        NdisGetFirstBufferFromPacket(p, &fb, &va, &flen, &tlen);
        frame_check(va, tlen);
        rx_return_packet(M, p);
    }
    KeLowerIrql(old);
}

static unsigned rx_busy_slots(const struct rx_miniport *M)
{
    unsigned n = 0;
    for (int i = 0; i < RX_RING; i++)
        n += (unsigned)M->busy[i];
    return n;
}

static void rx_protocol_open(struct rx_protocol *Pr)
{
    memset(Pr, 0, sizeof(*Pr));
    Pr->ppool = ppool_new(1, 0);
    Pr->bpool = bpool_new(2);
    Pr->copy_mem = test_backing_alloc(2 * TEST_PAGE);
    assert_non_null(Pr->copy_mem);
    Pr->copy_pkt = pkt_get(Pr->ppool);
    NdisChainBufferAtBack(Pr->copy_pkt, buf_new(Pr->bpool, Pr->copy_mem, RX_COPY_SPLIT));
    NdisChainBufferAtBack(Pr->copy_pkt, buf_new(Pr->bpool, Pr->copy_mem + 4000, 1500));
}

static void rx_protocol_close(struct rx_protocol *Pr)
{
    assert_int_equal(Pr->held, 0);
    pkt_release(Pr->copy_pkt);
    assert_int_equal(NdisPacketPoolUsage(Pr->ppool), 0);
    assert_int_equal(bpool_in_use(Pr->bpool), 0);
    NdisFreePacketPool(Pr->ppool);
    NdisFreeBufferPool(Pr->bpool);
    test_backing_free(Pr->copy_mem);
}

static void receive_ring_indicate_and_return(void **state)
{
    (void)state;
    ULONG live_pools = LibNdisLiveBufferPools();
    struct rx_miniport m;
    memset(&m, 0, sizeof(m));
    m.rng = 12345;
    m.ppool = ppool_new(RX_POOL, PROTOCOL_RESERVED_SIZE_IN_PACKET);
    m.bpool = bpool_new(RX_RING);
    m.ring = test_backing_alloc((size_t)RX_RING * RX_SLOT);
    assert_non_null(m.ring);
    struct rx_protocol pr;
    rx_protocol_open(&pr);
    uint32_t keep_rng = 777;
    for (int round = 0; round < RX_ROUNDS; round++) {
        rx_hw_fill(&m);
        rx_miniport_dpc(&m, &pr);
        rx_protocol_return(&pr, &m, rng_next(&keep_rng) % (RX_POOL + 1));
        /* Everything out is accounted for by what the protocol holds. */
        assert_int_equal(NdisPacketPoolUsage(m.ppool), pr.held);
        assert_int_equal(bpool_in_use(m.bpool), pr.held);
        assert_int_equal(rx_busy_slots(&m), pr.held);
    }
    rx_protocol_return(&pr, &m, 0);
    assert_int_equal(NdisPacketPoolUsage(m.ppool), 0);
    assert_int_equal(bpool_in_use(m.bpool), 0);
    assert_int_equal(rx_busy_slots(&m), 0);
    /* Every path was taken, and every indicated frame arrived intact exactly once. */
    assert_true(m.success > 0);
    assert_true(m.resources > 0);
    assert_true(m.dropped > 0);
    assert_true(pr.full_copies == m.resources);
    assert_true(pr.partial_copies > 0);
    assert_int_equal(pr.received, m.success + m.resources);
    assert_int_equal(m.returned, pr.received);
    assert_true(pr.seq_sum_received == m.seq_sum_indicated);
    NdisFreePacketPool(m.ppool);
    NdisFreeBufferPool(m.bpool);
    test_backing_free(m.ring);
    rx_protocol_close(&pr);
    assert_int_equal(LibNdisLiveBufferPools(), live_pools);
}

/* ======================================================================================== */
/* (2) 802.1Q tag insertion on the send path                                                 */

struct split {
    int n;
    UINT len[16]; /* leading pieces; the rest of the frame is one more piece */
};

static const struct split vlan_splits[] = {
    {0, {0}},
    {1, {14}},
    {1, {12}},
    {1, {13}},
    {2, {3, 9}},
    {2, {11, 2}},
    {3, {6, 6, 2}},
    {5, {0, 5, 0, 7, 0}},
    {13, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {3, {100, 0, 200}},
};

static const UINT vlan_lengths[] = {ETH_MIN, 64, 300, ETH_MAX};

/* Descriptors that a sub-range [A, B) of the frame touches, empty ones never counted. */
static UINT pieces_touched(const UINT *Start, const UINT *Len, int N, UINT A, UINT B)
{
    UINT n = 0;
    for (int i = 0; i < N; i++) {
        if (Len[i] != 0 && Start[i] < B && Start[i] + Len[i] > A)
            n++;
    }
    return n;
}

/* The tagging driver's send handler: MAC addresses and the rest are mapped, not copied; the
 * tag is a small buffer of its own. */
static PNDIS_PACKET vlan_tag_packet(NDIS_HANDLE Ppool, NDIS_HANDLE Bpool, PNDIS_PACKET Orig,
                                    unsigned char Tag[4])
{
    PNDIS_BUFFER first;
    UINT total;
    NdisQueryPacket(Orig, NULL, NULL, &first, &total);
    ULONG_PTR tci = (ULONG_PTR)NDIS_PER_PACKET_INFO_FROM_PACKET(Orig, Ieee8021QInfo);
    Tag[0] = 0x81;
    Tag[1] = 0x00;
    Tag[2] = (unsigned char)(tci >> 8);
    Tag[3] = (unsigned char)tci;
    PNDIS_PACKET np = pkt_get(Ppool);
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    PNDIS_BUFFER macs = NULL, rest = NULL;
    NdisCopyBuffer(&status, &macs, Bpool, first, 0, ETH_MACS);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    status = NDIS_STATUS_FAILURE;
    NdisCopyBuffer(&status, &rest, Bpool, first, ETH_MACS, total - ETH_MACS);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    NdisChainBufferAtBack(np, macs);
    NdisChainBufferAtBack(np, buf_new(Bpool, Tag, 4));
    NdisChainBufferAtBack(np, rest);
    NdisIMCopySendPerPacketInfo(np, Orig);
    NDIS_SET_ORIGINAL_PACKET(np, Orig);
    NdisSetPacketFlags(np, NdisGetPacketFlags(Orig));
    return np;
}

static void vlan_one_case(NDIS_HANDLE ProtoB, NDIS_HANDLE ProtoP, NDIS_HANDLE VlanB,
                          NDIS_HANDLE VlanP, PNDIS_PACKET TxPkt,
                          unsigned char *TxMem, unsigned char *Mem, const struct split *S,
                          UINT Len, uint32_t Seq)
{
    UINT lead = 0;
    for (int i = 0; i < S->n; i++)
        lead += S->len[i];
    if (lead > Len)
        return;
    unsigned char frame[ETH_MAX];
    frame_build(frame, Len, Seq, 0x42);
    /* The protocol's packet: the frame scattered over the pieces, with gaps between them and
     * the first piece straddling a page boundary. */
    PNDIS_PACKET orig = pkt_get(ProtoP);
    UINT start[17], lens[17], pos = 0, at = TEST_PAGE - 6;
    int pieces = S->n + 1;
    for (int i = 0; i < pieces; i++) {
        lens[i] = i < S->n ? S->len[i] : Len - lead;
        start[i] = pos;
        memcpy(Mem + at, frame + pos, lens[i]);
        NdisChainBufferAtBack(orig, buf_new(ProtoB, Mem + at, lens[i]));
        pos += lens[i];
        at += lens[i] + 37;
    }
    UINT tci = (5u << 13) | (Seq & 0xFFF); /* priority 5, VLAN id from the sequence */
    NDIS_PER_PACKET_INFO_FROM_PACKET(orig, Ieee8021QInfo) = (PVOID)(ULONG_PTR)tci;
    NdisSetPacketFlags(orig, NDIS_FLAGS_DONT_LOOPBACK);

    unsigned char tag[4];
    PNDIS_PACKET np = vlan_tag_packet(VlanP, VlanB, orig, tag);
    unsigned char ref[ETH_MAX + 4];
    memcpy(ref, frame, ETH_MACS);
    ref[12] = 0x81;
    ref[13] = 0x00;
    ref[14] = (unsigned char)(tci >> 8);
    ref[15] = (unsigned char)tci;
    memcpy(ref + 16, frame + ETH_MACS, Len - ETH_MACS);

    UINT count, total;
    NdisQueryPacket(np, NULL, &count, NULL, &total);
    assert_int_equal(total, Len + 4);
    assert_int_equal(count, pieces_touched(start, lens, pieces, 0, ETH_MACS) + 1 +
                                pieces_touched(start, lens, pieces, ETH_MACS, Len));
    assert_ptr_equal(NDIS_GET_ORIGINAL_PACKET(np), orig);
    assert_int_equal(NdisGetPacketFlags(np) & NDIS_FLAGS_DONT_LOOPBACK, NDIS_FLAGS_DONT_LOOPBACK);
    assert_true(MmGetMdlByteCount(np->Private.Head) > 0);

    /* The miniport flattens it twice: into its contiguous transmit buffer, and by a walk. */
    UINT copied = 0xDEADBEEFu;
    memset(TxMem, 0xEE, ETH_MAX + 4);
    NdisCopyFromPacketToPacket(TxPkt, 0, total, np, 0, &copied);
    assert_int_equal(copied, Len + 4);
    assert_memory_equal(TxMem, ref, Len + 4);
    unsigned char walked[ETH_MAX + 4];
    assert_int_equal(packet_read(np, 0, total, walked), Len + 4);
    assert_memory_equal(walked, ref, Len + 4);
    /* The original is untouched. */
    assert_int_equal(packet_read(orig, 0, Len, walked), Len);
    assert_memory_equal(walked, frame, Len);

    /* Send complete: per-packet info goes back, the mapped descriptors are freed one by one. */
    NDIS_PER_PACKET_INFO_FROM_PACKET(np, TcpIpChecksumPacketInfo) = (PVOID)(ULONG_PTR)0x5;
    NdisIMCopySendCompletePerPacketInfo(orig, np);
    assert_ptr_equal(NDIS_PER_PACKET_INFO_FROM_PACKET(orig, TcpIpChecksumPacketInfo),
                     (PVOID)(ULONG_PTR)0x5);
    pkt_release(np);
    assert_int_equal(bpool_in_use(VlanB), 0);
    assert_int_equal(NdisPacketPoolUsage(VlanP), 0);
    pkt_release(orig);
    assert_int_equal(bpool_in_use(ProtoB), 0);
}

static void vlan_tag_insertion_send_path(void **state)
{
    (void)state;
    NDIS_HANDLE proto_b = bpool_new(16), proto_p = ppool_new(1, 16);
    NDIS_HANDLE vlan_b = bpool_new(16), vlan_p = ppool_new(1, 0);
    NDIS_HANDLE tx_b = bpool_new(1), tx_p = ppool_new(1, 0);
    unsigned char *mem = test_backing_alloc(4 * TEST_PAGE);
    unsigned char *tx_mem = test_backing_alloc(ETH_MAX + 4);
    assert_non_null(mem);
    assert_non_null(tx_mem);
    PNDIS_PACKET tx = pkt_get(tx_p);
    NdisChainBufferAtBack(tx, buf_new(tx_b, tx_mem, ETH_MAX + 4));
    uint32_t seq = 1;
    for (size_t s = 0; s < sizeof(vlan_splits) / sizeof(vlan_splits[0]); s++) {
        for (size_t l = 0; l < sizeof(vlan_lengths) / sizeof(vlan_lengths[0]); l++)
            vlan_one_case(proto_b, proto_p, vlan_b, vlan_p, tx, tx_mem, mem,
                          &vlan_splits[s], vlan_lengths[l], seq++);
    }
    pkt_release(tx);
    NdisFreePacketPool(proto_p);
    NdisFreePacketPool(vlan_p);
    NdisFreePacketPool(tx_p);
    NdisFreeBufferPool(proto_b);
    NdisFreeBufferPool(vlan_b);
    NdisFreeBufferPool(tx_b);
    test_backing_free(mem);
    test_backing_free(tx_mem);
}

/* ======================================================================================== */
/* (3) a protocol creating and destroying thousands of small pools                           */

enum { CHURN_ROUNDS = 4000 };

/* One bind/unbind cycle. Order selects who goes first: 0 packet and buffer back before their
 * pools, 1 packet pool freed with its packet out, 2 buffer pool freed with its buffer out, 3
 * both pools retired first. */
static void churn_once(unsigned char *Mem, ULONG Live, int Order, UINT Length)
{
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    NDIS_HANDLE pp = NULL, bp = NULL;
    NdisAllocatePacketPool(&status, &pp, 1, PROTOCOL_RESERVED_SIZE_IN_PACKET);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    NdisAllocateBufferPool(&status, &bp, 1);
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    assert_int_equal(LibNdisLiveBufferPools(), Live + 1);
    PNDIS_PACKET p = pkt_get(pp);
    PNDIS_PACKET none = (PNDIS_PACKET)(ULONG_PTR)1;
    NdisAllocatePacket(&status, &none, pp);
    assert_int_equal(status, NDIS_STATUS_RESOURCES);
    assert_null(none);
    PNDIS_BUFFER b = buf_new(bp, Mem, Length);
    NdisChainBufferAtBack(p, b);
    memset(p->ProtocolReserved, 0x3C, PROTOCOL_RESERVED_SIZE_IN_PACKET);
    UINT total = 0;
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_int_equal(total, Length);
    if (Order & 1) {
        NdisFreePacketPool(pp);
        NdisAllocatePacket(&status, &none, pp);
        assert_int_equal(status, NDIS_STATUS_FAILURE);
    }
    if (Order & 2) {
        NdisFreeBufferPool(bp);
        assert_int_equal(LibNdisLiveBufferPools(), Live + 1); /* retired, storage still held */
        PNDIS_BUFFER nb = (PNDIS_BUFFER)(ULONG_PTR)1;
        NdisAllocateBuffer(&status, &nb, bp, Mem, 1);
        assert_int_equal(status, NDIS_STATUS_FAILURE);
        assert_null(nb);
    }
    PNDIS_BUFFER got;
    NdisUnchainBufferAtFront(p, &got);
    assert_ptr_equal(got, b);
    NdisFreeBuffer(got);
    NdisFreePacket(p);
    if (!(Order & 1))
        NdisFreePacketPool(pp);
    if (!(Order & 2))
        NdisFreeBufferPool(bp);
    assert_int_equal(LibNdisLiveBufferPools(), Live);
}

static void protocol_pool_churn_leaves_nothing(void **state)
{
    (void)state;
    unsigned char *mem = test_backing_alloc(TEST_PAGE);
    assert_non_null(mem);
    churn_once(mem, LibNdisLiveBufferPools(), 0, 10); /* per-thread state is made once */
    ULONG live = LibNdisLiveBufferPools();
#ifdef HAVE_HEAP_BYTES
    size_t before = test_heap_bytes();
#endif
    for (int i = 0; i < CHURN_ROUNDS; i++)
        churn_once(mem, live, i & 3, 1 + (UINT)i % TEST_PAGE);
    assert_int_equal(LibNdisLiveBufferPools(), live);
#ifdef HAVE_HEAP_BYTES
    /* Thousands of pools later the heap holds what it held before, give or take what glibc's
     * per-thread cache keeps of freed small chunks (counted as in use, bounded); a leak of even
     * one pool per round would be megabytes. */
    assert_true(test_heap_bytes() <= before + HEAP_SLACK);
#endif
    test_backing_free(mem);
}

/* ======================================================================================== */
/* (4) a driver chaining IoAllocateMdl MDLs into packets                                     */

static PMDL mdl_for(unsigned char *Va, ULONG Length)
{
    PMDL m = IoAllocateMdl(Va, Length, FALSE, FALSE, NULL);
    assert_non_null(m);
    MmBuildMdlForNonPagedPool(m);
    assert_ptr_equal(m->MappedSystemVa, Va);
    assert_true(m->MdlFlags & MDL_SOURCE_IS_NONPAGED_POOL);
    assert_ptr_equal(MmGetMdlVirtualAddress(m), Va);
    assert_int_equal(MmGetMdlByteCount(m), Length);
    return m;
}

static void io_mdls_chained_into_packets(void **state)
{
    (void)state;
    ULONG default_in_use = bpool_in_use(NULL);
    NDIS_HANDLE pp = ppool_new(4, 0), bp = bpool_new(4);
    unsigned char *src = test_backing_alloc(16 * TEST_PAGE);
    unsigned char *dst = test_backing_alloc(16 * TEST_PAGE);
    assert_non_null(src);
    assert_non_null(dst);
    memset(dst, 0, 16 * TEST_PAGE);

    /* Source: in one page, across a page boundary, empty, and more than eight pages long. */
    static const struct {
        UINT off, len, pages;
    } sp[4] = {{100, 1400, 1},
               {4000, 200, 2},
               {2 * TEST_PAGE, 0, 1},
               {3 * TEST_PAGE + 5, 40000, 10}};
    PNDIS_PACKET a = pkt_get(pp);
    PMDL am[4];
    UINT want_phys = 0, want_total = 0;
    for (int i = 0; i < 4; i++) {
        am[i] = mdl_for(src + sp[i].off, sp[i].len);
        NdisChainBufferAtBack(a, am[i]);
        want_phys += sp[i].pages;
        want_total += sp[i].len;
    }
    UINT phys, count, total;
    PNDIS_BUFFER first;
    NdisQueryPacket(a, &phys, &count, &first, &total);
    assert_ptr_equal(first, am[0]);
    assert_int_equal(count, 4);
    assert_int_equal(total, want_total);
    assert_int_equal(phys, want_phys);
    PNDIS_BUFFER fb;
    PVOID va;
    UINT flen, tlen;
    NdisGetFirstBufferFromPacket(a, &fb, &va, &flen, &tlen);
    assert_ptr_equal(va, src + 100);
    assert_int_equal(flen, 1400);
    assert_int_equal(tlen, want_total);

    /* Destination: differently cut MDLs over other memory. */
    static const struct {
        UINT off, len;
    } dp[3] = {{7, 10000}, {3 * TEST_PAGE, 0}, {4 * TEST_PAGE + 1, 31600}};
    PNDIS_PACKET b = pkt_get(pp);
    for (int i = 0; i < 3; i++)
        NdisChainBufferAtBack(b, mdl_for(dst + dp[i].off, dp[i].len));
    unsigned char *flat_src = malloc(want_total), *flat_dst = malloc(want_total);
    assert_non_null(flat_src);
    assert_non_null(flat_dst);
    assert_int_equal(packet_read(a, 0, want_total, flat_src), want_total);
    UINT copied = 0;
    NdisCopyFromPacketToPacket(b, 0, want_total, a, 0, &copied);
    assert_int_equal(copied, want_total);
    assert_int_equal(packet_read(b, 0, want_total, flat_dst), want_total);
    assert_memory_equal(flat_dst, flat_src, want_total);
    /* From a source boundary (1400) across a destination boundary (10000). */
    memset(dst + 7, 0, 10000);
    NdisCopyFromPacketToPacketSafe(b, 9900, 300, a, 1400, &copied, NormalPagePriority);
    assert_int_equal(copied, 300);
    assert_memory_equal(dst + 7 + 9900, src + 4000, 100);
    assert_memory_equal(dst + 4 * TEST_PAGE + 1, src + 4100, 100);
    assert_memory_equal(dst + 4 * TEST_PAGE + 101, src + 3 * TEST_PAGE + 5, 100);

    /* A header MDL built over the first MDL by IoBuildPartialMdl, and a mapped sub-range by
     * NdisCopyBuffer, both chained into a third packet and freed with IoFreeMdl. */
    PNDIS_PACKET c = pkt_get(pp);
    PMDL hdr = IoAllocateMdl(src + 100, ETH_HEADER, FALSE, FALSE, NULL);
    assert_non_null(hdr);
    IoBuildPartialMdl(am[0], hdr, src + 100, ETH_HEADER);
    assert_true(hdr->MdlFlags & MDL_PARTIAL);
    NDIS_STATUS status = NDIS_STATUS_FAILURE;
    PNDIS_BUFFER mapped = NULL;
    NdisCopyBuffer(&status, &mapped, bp, am[0], 1300, 400); /* 100 + 200 + (empty skipped) + 100 */
    assert_int_equal(status, NDIS_STATUS_SUCCESS);
    NdisChainBufferAtBack(c, hdr);
    NdisChainBufferAtBack(c, mapped);
    NdisQueryPacket(c, &phys, &count, NULL, &total);
    assert_int_equal(count, 4);
    assert_int_equal(total, ETH_HEADER + 400);
    unsigned char got[ETH_HEADER + 400];
    assert_int_equal(packet_read(c, 0, sizeof(got), got), sizeof(got));
    assert_memory_equal(got, src + 100, ETH_HEADER);
    assert_memory_equal(got + ETH_HEADER, flat_src + 1300, 400);

    /* Tear-down as the driver does it: unchain one at a time, IoFreeMdl each. */
    PNDIS_BUFFER m;
    for (NdisUnchainBufferAtBack(c, &m); m != NULL; NdisUnchainBufferAtBack(c, &m))
        IoFreeMdl(m);
    for (NdisUnchainBufferAtBack(a, &m); m != NULL; NdisUnchainBufferAtBack(a, &m))
        IoFreeMdl(m);
    for (NdisUnchainBufferAtFront(b, &m); m != NULL; NdisUnchainBufferAtFront(b, &m))
        IoFreeMdl(m);
    NdisFreePacket(a);
    NdisFreePacket(b);
    NdisFreePacket(c);
    assert_int_equal(NdisPacketPoolUsage(pp), 0);
    assert_int_equal(bpool_in_use(bp), 0);
    assert_int_equal(bpool_in_use(NULL), default_in_use);
    NdisFreePacketPool(pp);
    NdisFreeBufferPool(bp);
    free(flat_src);
    free(flat_dst);
    test_backing_free(src);
    test_backing_free(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(receive_ring_indicate_and_return),
        cmocka_unit_test(vlan_tag_insertion_send_path),
        cmocka_unit_test(protocol_pool_churn_leaves_nothing),
        cmocka_unit_test(io_mdls_chained_into_packets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
