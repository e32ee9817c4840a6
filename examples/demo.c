/* SPDX-License-Identifier: MIT */
/* demo.c - a receive path on built-in data. Part 1: one TCP/IPv4 Ethernet frame described by a
 * chain of four uneven buffers (one of them empty) is cut into headers and payload with
 * NdisCopyBuffer, and every result is shown pointing into the frame. Part 2: those results become
 * packet A, whose cached counts are traced, and A is copied into packet B's own receive space. */
#include <inttypes.h>
#include <stdio.h>

#include <ndis.h>
#include <libndis.h> /* only for buffer-pool accounting (LibNdisQueryBufferPool) */

#define ETH_HEADER_SIZE 14
#define IP_HEADER_SIZE 20
#define TCP_HEADER_SIZE 20
#define HEADERS_SIZE (ETH_HEADER_SIZE + IP_HEADER_SIZE + TCP_HEADER_SIZE)
#define DEMO_TAG 0x6f6d6544u /* 'omeD': reads "Demo" in a pool dump */

static const char Payload[] =
    "GET /status/health HTTP/1.1\r\n"
    "Host: gateway.example.net\r\n"
    "User-Agent: ndis-probe/5.1\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: identity\r\n"
    "Cache-Control: no-cache\r\n"
    "X-Request-Id: 7f3c9a12-58e4-4b1d-9c2e-0a6b5d4e3f21\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

#define PAYLOAD_SIZE ((UINT)(sizeof(Payload) - 1))
#define FRAME_SIZE (HEADERS_SIZE + PAYLOAD_SIZE)

/* Uneven on purpose: the TCP header straddles buffers 2 and 3, and buffer 1 is the empty
 * placeholder some drivers keep for an 802.1Q tag that this frame does not carry. */
static const UINT FragmentSize[] = {ETH_HEADER_SIZE, 0, 26, FRAME_SIZE - ETH_HEADER_SIZE - 26};
#define FRAGMENTS ((ULONG)RTL_NUMBER_OF(FragmentSize))

/* ---- building the frame (network byte order, real checksums) ---- */

static void PutBe16(PUCHAR p, ULONG v) { p[0] = (UCHAR)(v >> 8); p[1] = (UCHAR)v; }
static void PutBe32(PUCHAR p, ULONG v) { PutBe16(p, v >> 16); PutBe16(p + 2, v & 0xffff); }
static ULONG GetBe16(const UCHAR *p) { return ((ULONG)p[0] << 8) | p[1]; }

static ULONG OnesSum(ULONG sum, const UCHAR *p, ULONG len)
{
    for (ULONG i = 0; i + 1 < len; i += 2)
        sum += GetBe16(p + i);
    if (len & 1)
        sum += (ULONG)p[len - 1] << 8;
    return sum;
}

static ULONG FoldChecksum(ULONG sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return ~sum & 0xffff;
}

static void BuildFrame(PUCHAR f)
{
    static const UCHAR Eth[ETH_HEADER_SIZE] = {0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x5c,  /* dst */
                                               0x52, 0x54, 0x00, 0x12, 0x34, 0x56,  /* src */
                                               0x08, 0x00};                         /* IPv4 */
    static const UCHAR Src[4] = {192, 0, 2, 10}, Dst[4] = {198, 51, 100, 7};
    PUCHAR ip = f + ETH_HEADER_SIZE, tcp = ip + IP_HEADER_SIZE;
    ULONG tcpLen = TCP_HEADER_SIZE + PAYLOAD_SIZE, pseudo;

    NdisMoveMemory(f, Eth, sizeof(Eth));
    NdisZeroMemory(ip, IP_HEADER_SIZE + TCP_HEADER_SIZE);
    ip[0] = 0x45;                                   /* version 4, 5 words */
    PutBe16(ip + 2, IP_HEADER_SIZE + tcpLen);
    PutBe16(ip + 4, 0x1c46);                        /* identification */
    PutBe16(ip + 6, 0x4000);                        /* don't fragment */
    ip[8] = 64;                                     /* TTL */
    ip[9] = 6;                                      /* TCP */
    NdisMoveMemory(ip + 12, Src, 4);
    NdisMoveMemory(ip + 16, Dst, 4);
    PutBe16(ip + 10, FoldChecksum(OnesSum(0, ip, IP_HEADER_SIZE)));

    PutBe16(tcp + 0, 49152);
    PutBe16(tcp + 2, 80);
    PutBe32(tcp + 4, 0x3a4f1c20);                   /* sequence */
    PutBe32(tcp + 8, 0x9b7e0001);                   /* acknowledgment */
    tcp[12] = 0x50;                                 /* 5 words, no options */
    tcp[13] = 0x18;                                 /* PSH|ACK */
    PutBe16(tcp + 14, 64240);                       /* window */
    NdisMoveMemory(tcp + TCP_HEADER_SIZE, Payload, PAYLOAD_SIZE);
    pseudo = OnesSum(OnesSum(0, Src, 4), Dst, 4) + 6 + tcpLen;
    PutBe16(tcp + 16, FoldChecksum(OnesSum(pseudo, tcp, tcpLen)));
}

/* ---- printing ---- */

static const char *StatusName(NDIS_STATUS s)
{
    switch (s) {
    case NDIS_STATUS_SUCCESS: return "NDIS_STATUS_SUCCESS";
    case NDIS_STATUS_FAILURE: return "NDIS_STATUS_FAILURE";
    case NDIS_STATUS_RESOURCES: return "NDIS_STATUS_RESOURCES";
    default: return "(unexpected status)";
    }
}

static const char *FlagNames(CSHORT flags, char *out, size_t cap)
{
    static const struct { CSHORT bit; const char *name; } Names[] = {
        {MDL_MAPPED_TO_SYSTEM_VA, "MAPPED"},   {MDL_SOURCE_IS_NONPAGED_POOL, "NONPAGED"},
        {MDL_ALLOCATED_FIXED_SIZE, "FIXED"},   {MDL_PARTIAL, "PARTIAL"},
        {MDL_PARTIAL_HAS_BEEN_MAPPED, "PARTIAL_MAPPED"},
        {MDL_IO_PAGE_READ, "IO_PAGE_READ"},    {MDL_IO_SPACE, "IO_SPACE"},
    };
    size_t used = 0;
    CSHORT rest = flags;

    out[0] = '\0';
    for (size_t i = 0; i < RTL_NUMBER_OF(Names); i++) {
        if (!(flags & Names[i].bit))
            continue;
        used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? "|" : "", Names[i].name);
        rest &= (CSHORT)~Names[i].bit;
    }
    if (rest)
        snprintf(out + used, cap - used, "%s0x%04x", used ? "|" : "", (unsigned)(USHORT)rest);
    else if (!used)
        snprintf(out, cap, "0");
    return out;
}

/* Base/BaseName: the memory the "a..b" column counts from (the frame, or packet B's space). */
static void PrintChain(PNDIS_BUFFER Head, const UCHAR *Base, const char *BaseName)
{
    PNDIS_BUFFER b = Head;
    char flags[96];

    printf("    %-2s %-29s %-11s %4s  %-18s %s\n", "#", "virtual address range",
           BaseName, "len", "flags", "first bytes");
    for (ULONG i = 0; b != NULL; i++) {
        PUCHAR va;
        UINT len;
        char range[16];

        NdisQueryBuffer(b, &va, &len);
        snprintf(range, sizeof(range), "%" PRIdPTR "..%" PRIdPTR, (intptr_t)(va - Base),
                 (intptr_t)(va - Base) + (intptr_t)len);
        printf("    %-2lu 0x%012" PRIxPTR "-0x%012" PRIxPTR " %-11s %4u  %-18s", (unsigned long)i,
               (uintptr_t)va, (uintptr_t)(va + len), range, len,
               FlagNames(b->MdlFlags, flags, sizeof(flags)));
        for (UINT k = 0; k < len && k < 8; k++)
            printf(" %02x", va[k]);
        printf("%s\n", len == 0 ? " (empty)" : len > 8 ? " .." : "");
        NdisGetNextBuffer(b, &b);
    }
}

/* ---- the header split ---- */

typedef struct _SEGMENT {
    UINT FrameOffset;
    UINT Length;
} SEGMENT;

typedef struct _SPLIT_CASE {
    const char *What;
    UINT Offset;
    UINT Length;
    NDIS_STATUS Expected;
    ULONG Segments; /* expected result: one per source buffer touched */
    SEGMENT Segment[3];
} SPLIT_CASE;

static const SPLIT_CASE Cases[] = {
    {"Ethernet header: inside buffer 0", 0, ETH_HEADER_SIZE, NDIS_STATUS_SUCCESS, 1, {{0, 14}}},
    {"IPv4 header: offset 14 is a boundary, empty buffer 1 skipped", 14, IP_HEADER_SIZE,
     NDIS_STATUS_SUCCESS, 1, {{14, 20}}},
    {"IPv4 addresses: inside buffer 2", 26, 8, NDIS_STATUS_SUCCESS, 1, {{26, 8}}},
    {"TCP header: across buffers 2 and 3", 34, TCP_HEADER_SIZE, NDIS_STATUS_SUCCESS, 2,
     {{34, 6}, {40, 14}}},
    {"All headers: three buffers, the empty one skipped", 0, HEADERS_SIZE, NDIS_STATUS_SUCCESS, 3,
     {{0, 14}, {14, 26}, {40, 14}}},
    {"Payload: inside buffer 3", HEADERS_SIZE, PAYLOAD_SIZE, NDIS_STATUS_SUCCESS, 1,
     {{HEADERS_SIZE, PAYLOAD_SIZE}}},
    {"Length 0 on the boundary after buffer 0", 14, 0, NDIS_STATUS_SUCCESS, 1, {{14, 0}}},
    {"Length 0 at the end of the frame", FRAME_SIZE, 0, NDIS_STATUS_SUCCESS, 1, {{FRAME_SIZE, 0}}},
    {"Out of range: Offset+Length ends 10 bytes past the frame", FRAME_SIZE - 10, 20, NDIS_STATUS_FAILURE, 0,
     {{0, 0}}},
    {"Out of range: Offset+Length overflows 32 bits", 0xfffffff0u, 0x20, NDIS_STATUS_FAILURE, 0,
     {{0, 0}}},
};

static ULONG Failures;

static void Check(BOOLEAN ok, const char *what)
{
    if (!ok) {
        Failures++;
        printf("    CHECK FAILED: %s\n", what);
    }
}

/* Zero-copy means: each result descriptor addresses the frame itself, at the expected place. */
static void CheckResult(const SPLIT_CASE *c, PNDIS_BUFFER Result, const UCHAR *Frame)
{
    PNDIS_BUFFER b = Result;
    ULONG i = 0;

    for (; b != NULL && i < c->Segments; i++) {
        PUCHAR va;
        UINT len;

        NdisQueryBufferSafe(b, &va, &len, NormalPagePriority);
        Check(va == Frame + c->Segment[i].FrameOffset, "address is the frame's own byte");
        Check(len == c->Segment[i].Length, "length");
        Check(b->MdlFlags == (MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL), "flags NONPAGED|PARTIAL");
        Check(b->Size == (CSHORT)MmSizeOfMdl(va, len), "Size == MmSizeOfMdl");
        NdisGetNextBuffer(b, &b);
    }
    Check(i == c->Segments && b == NULL, "one descriptor per source buffer touched, then NULL");
}

static void FreeChain(PNDIS_BUFFER Head)
{
    while (Head != NULL) {
        PNDIS_BUFFER next;

        NdisGetNextBuffer(Head, &next);
        NdisFreeBuffer(Head);
        Head = next;
    }
}

/* What a protocol driver does with a header that may straddle buffers: walk and gather. */
static UINT Gather(PNDIS_BUFFER Head, PUCHAR Out, UINT Capacity)
{
    UINT got = 0;

    for (PNDIS_BUFFER b = Head; b != NULL && got < Capacity; NdisGetNextBuffer(b, &b)) {
        PUCHAR va;
        UINT len;

        NdisQueryBufferSafe(b, &va, &len, NormalPagePriority);
        if (va == NULL)
            break;
        len = len < Capacity - got ? len : Capacity - got;
        NdisMoveMemory(Out + got, va, len);
        got += len;
    }
    return got;
}

static void Decode(ULONG CaseIndex, PNDIS_BUFFER Result)
{
    UCHAR h[64];
    UINT n = Gather(Result, h, sizeof(h));

    if (CaseIndex == 1 && n == IP_HEADER_SIZE) {
        BOOLEAN sumOk = FoldChecksum(OnesSum(0, h, IP_HEADER_SIZE)) == 0;
        printf("    read through the descriptor: IPv4 %u.%u.%u.%u -> %u.%u.%u.%u, TTL %u, "
               "protocol %u, header checksum %s\n", h[12], h[13], h[14], h[15], h[16], h[17],
               h[18], h[19], h[8], h[9], sumOk ? "ok" : "BAD");
        Check(sumOk && h[9] == 6, "IPv4 header intact");
    } else if (CaseIndex == 3 && n == TCP_HEADER_SIZE) {
        printf("    gathered over 2 descriptors: TCP %lu -> %lu, flags 0x%02x (PSH|ACK), "
               "window %lu\n", (unsigned long)GetBe16(h), (unsigned long)GetBe16(h + 2), h[13],
               (unsigned long)GetBe16(h + 14));
        Check(GetBe16(h) == 49152 && GetBe16(h + 2) == 80 && h[13] == 0x18, "TCP header intact");
    } else if (CaseIndex == 5) {
        UINT line = 0;
        while (line < n && h[line] != '\r')
            line++;
        printf("    payload starts: \"%.*s\"\n", (int)line, (const char *)h);
        Check(n == sizeof(h) && NdisEqualMemory(h, Payload, n), "payload intact");
    }
}

static ULONG PoolInUse(NDIS_HANDLE Pool)
{
    LIBNDIS_POOL_INFO info;

    return LibNdisQueryBufferPool(Pool, &info) == NDIS_STATUS_SUCCESS ? info.InUse : ~0u;
}

static void RunCase(ULONG Index, NDIS_HANDLE Pool, PNDIS_BUFFER Chain, const UCHAR *Frame)
{
    const SPLIT_CASE *c = &Cases[Index];
    NDIS_STATUS status;
    PNDIS_BUFFER result = (PNDIS_BUFFER)&status; /* non-NULL: proves failure writes NULL */

    ULONG inUse = PoolInUse(Pool);
    char offset[16];

    NdisCopyBuffer(&status, &result, Pool, Chain, c->Offset, c->Length);
    snprintf(offset, sizeof(offset), c->Offset > 0xffff ? "0x%08X" : "%u", c->Offset);
    printf("\n%lu. %s\n   NdisCopyBuffer(Offset=%s, Length=%u) -> %s (0x%08X)",
           (unsigned long)Index + 1, c->What, offset, c->Length, StatusName(status),
           (unsigned)status);
    Check(status == c->Expected, "status");
    if (status != NDIS_STATUS_SUCCESS) {
        printf(", Buffer = %s, pool unchanged (%lu in use)\n",
               result == NULL ? "NULL" : "NOT NULL", (unsigned long)PoolInUse(Pool));
        Check(result == NULL, "*Buffer is NULL after a failure");
        Check(PoolInUse(Pool) == inUse, "a failure leaves no descriptor behind");
        return;
    }
    printf("\n");
    PrintChain(result, Frame, "frame bytes");
    CheckResult(c, result, Frame);
    Decode(Index, result);
    FreeChain(result);
}

static PNDIS_BUFFER DescribeFrame(NDIS_HANDLE Pool, PUCHAR Frame)
{
    PNDIS_BUFFER head = NULL, tail = NULL;
    UINT offset = 0;

    for (ULONG i = 0; i < FRAGMENTS; i++) {
        NDIS_STATUS status;
        PNDIS_BUFFER b;

        NdisAllocateBuffer(&status, &b, Pool, Frame + offset, FragmentSize[i]);
        if (status != NDIS_STATUS_SUCCESS) {
            FreeChain(head);
            return NULL;
        }
        if (tail != NULL)
            NDIS_BUFFER_LINKAGE(tail) = b;
        else
            head = b;
        tail = b;
        offset += FragmentSize[i];
    }
    return head;
}

/* ---- part 2: packets ---- */

#define PACKET_POOL_SIZE 4
#define PROTOCOL_RESERVED 16      /* ProtocolReservedLength: two pointers of protocol context */
#define SPACE_0 128               /* packet B's receive space, in two buffers */
#define SPACE_1 176
#define SPACE_SIZE (SPACE_0 + SPACE_1)
#define HEADROOM 16               /* B keeps room in front for a header it may prepend later */
#define SPACE_FILL 0xee
#define DATAGRAM_SIZE (FRAME_SIZE - ETH_HEADER_SIZE)

typedef struct _COUNTS {
    UINT Physical;
    UINT Buffers;
    UINT Total;
} COUNTS;

/* Counted by hand from the addresses, not with the library's macros, so that NdisQueryPacket is
 * checked against an independent answer. An empty buffer counts one page, as the WDK says. */
static COUNTS ChainCounts(PNDIS_BUFFER Head)
{
    COUNTS c = {0, 0, 0};

    for (PNDIS_BUFFER b = Head; b != NULL; NdisGetNextBuffer(b, &b)) {
        PUCHAR va;
        UINT len;

        NdisQueryBuffer(b, &va, &len);
        c.Physical += len == 0 ? 1
                               : (UINT)(((uintptr_t)va + len - 1) / PAGE_SIZE -
                                        (uintptr_t)va / PAGE_SIZE + 1);
        c.Buffers++;
        c.Total += len;
    }
    return c;
}

static BOOLEAN SameCounts(COUNTS a, COUNTS b)
{
    return a.Physical == b.Physical && a.Buffers == b.Buffers && a.Total == b.Total;
}

/* One row of the counts table. When the cache is expected to be trusted, Expected is what the
 * cache holds, which need not be what the chain holds. */
static COUNTS QueryRow(PNDIS_PACKET P, const char *Step, BOOLEAN ExpectValid, COUNTS Expected,
                       const char *Note)
{
    BOOLEAN valid = NDIS_PACKET_VALID_COUNTS(P);
    COUNTS got = {~0u, ~0u, ~0u};
    PNDIS_BUFFER first = (PNDIS_BUFFER)&got; /* non-NULL: proves FirstBuffer is written */

    NdisQueryPacket(P, &got.Physical, &got.Buffers, &first, &got.Total);
    printf("    %-42s %-17s %4u %4u %5u%s\n", Step, valid ? "TRUE: cache used" : "FALSE: recounted",
           got.Physical, got.Buffers, got.Total, Note);
    Check(valid == ExpectValid, "ValidCounts before the query");
    Check(NDIS_PACKET_VALID_COUNTS(P), "the query leaves ValidCounts TRUE");
    Check(first == NDIS_PACKET_FIRST_NDIS_BUFFER(P), "FirstBuffer is Head");
    Check(SameCounts(got, Expected), "NdisQueryPacket counts");
    return got;
}

static PNDIS_BUFFER LastOf(PNDIS_BUFFER b)
{
    PNDIS_BUFFER next;

    for (NdisGetNextBuffer(b, &next); next != NULL; NdisGetNextBuffer(b, &next))
        b = next;
    return b;
}

static PNDIS_BUFFER Piece(NDIS_HANDLE Pool, PNDIS_BUFFER Chain, UINT Offset, UINT Length)
{
    NDIS_STATUS status;
    PNDIS_BUFFER b;

    NdisCopyBuffer(&status, &b, Pool, Chain, Offset, Length);
    Check(status == NDIS_STATUS_SUCCESS, "NdisCopyBuffer for packet A");
    return status == NDIS_STATUS_SUCCESS ? b : NULL;
}

/* Every byte of a fresh packet is zero except the fields decision 14 names. */
static void CheckFresh(PNDIS_PACKET P, NDIS_HANDLE Pool, UINT OobOffset)
{
    _Alignas(16) UCHAR image[512]; /* read back as an NDIS_PACKET */
    UINT size = NdisPacketSize(PROTOCOL_RESERVED);
    PNDIS_PACKET copy = (PNDIS_PACKET)(void *)image;
    BOOLEAN zero = TRUE;

    Check(size == OobOffset + sizeof(NDIS_PACKET_OOB_DATA) + sizeof(NDIS_PACKET_EXTENSION) &&
              size <= sizeof(image), "NdisPacketSize = packet + reserved + OOB + extension");
    if (size > sizeof(image))
        return;
    NdisMoveMemory(image, P, size);
    Check(copy->Private.Pool == Pool && NdisGetPoolFromPacket(P) == Pool, "Pool");
    Check(copy->Private.ValidCounts == TRUE, "ValidCounts TRUE");
    Check(copy->Private.NdisPacketFlags == fPACKET_ALLOCATED_BY_NDIS, "fPACKET_ALLOCATED_BY_NDIS");
    Check(copy->Private.Flags == NDIS_PROTOCOL_ID_TCP_IP, "Flags = the pool's protocol id");
    Check(copy->Private.NdisPacketOobOffset == OobOffset, "OOB right after ProtocolReserved");
    copy->Private.Pool = NULL;
    copy->Private.ValidCounts = FALSE;
    copy->Private.NdisPacketFlags = 0;
    copy->Private.Flags = 0;
    copy->Private.NdisPacketOobOffset = 0;
    for (UINT i = 0; i < size; i++)
        zero = zero && image[i] == 0;
    Check(zero, "every other byte of a fresh packet is zero");
}

/* Packet A maps the frame: the header split of part 1, chained as a driver would. */
static BOOLEAN BuildPacketA(PNDIS_PACKET A, NDIS_HANDLE Pool, PNDIS_BUFFER Chain)
{
    static const COUNTS None = {0, 0, 0};
    PNDIS_BUFFER headers, payload, empty, removed, first;
    COUNTS cache;
    UINT length;
    char step[64], note[48];

    printf("\nPacket A from the frame: NdisCopyBuffer results chained with NdisChainBufferAtBack\n"
           "    %-42s %-17s %4s %4s %5s\n", "NdisQueryPacket after", "ValidCounts was",
           "Phys", "Bufs", "Total");
    QueryRow(A, "NdisAllocatePacket", TRUE, None, "");

    if ((headers = Piece(Pool, Chain, 0, HEADERS_SIZE)) == NULL)
        return FALSE;
    NdisChainBufferAtBack(A, headers);
    Check(NDIS_PACKET_LAST_NDIS_BUFFER(A) == LastOf(headers), "Tail = last of the chained chain");
    snprintf(step, sizeof(step), "AtBack(headers: NdisCopyBuffer(0, %u))", HEADERS_SIZE);
    QueryRow(A, step, FALSE, ChainCounts(A->Private.Head), "");

    if ((payload = Piece(Pool, Chain, HEADERS_SIZE, PAYLOAD_SIZE)) == NULL)
        return FALSE;
    NdisChainBufferAtBack(A, payload);
    snprintf(step, sizeof(step), "AtBack(payload: NdisCopyBuffer(%u, %u))", HEADERS_SIZE,
             PAYLOAD_SIZE);
    QueryRow(A, step, FALSE, ChainCounts(A->Private.Head), "");

    if ((empty = Piece(Pool, Chain, FRAME_SIZE, 0)) == NULL)
        return FALSE;
    NdisChainBufferAtBack(A, empty);
    NdisQueryPacket(A, NULL, NULL, &first, NULL);
    Check(first == headers && !NDIS_PACKET_VALID_COUNTS(A), "a FirstBuffer-only query recounts nothing");
    snprintf(step, sizeof(step), "AtBack(empty: NdisCopyBuffer(%u, 0))", FRAME_SIZE);
    QueryRow(A, step, FALSE, ChainCounts(A->Private.Head), "  <- 0 bytes, 1 page");

    NdisUnchainBufferAtBack(A, &removed);
    Check(removed == empty && removed->Next == NULL && A->Private.Tail == payload,
          "UnchainBufferAtBack: the empty one, unlinked, Tail = payload");
    NdisFreeBuffer(removed);
    cache = QueryRow(A, "NdisUnchainBufferAtBack, NdisFreeBuffer", FALSE,
                     ChainCounts(A->Private.Head), "");

    /* Lengths are not chain changes: the cache stays "valid" and is now wrong. */
    NdisAdjustBufferLength(payload, 100);
    NdisQueryPacketLength(A, &length);
    Check(length == cache.Total, "NdisQueryPacketLength trusts the cache");
    snprintf(note, sizeof(note), "  <- stale; chain: %u", ChainCounts(A->Private.Head).Total);
    QueryRow(A, "NdisAdjustBufferLength(payload, 100)", TRUE, cache, note);
    NdisRecalculatePacketCounts(A);
    QueryRow(A, "NdisRecalculatePacketCounts", FALSE, ChainCounts(A->Private.Head), "");
    NdisAdjustBufferLength(payload, PAYLOAD_SIZE); /* restored before it is ever freed */
    NDIS_PACKET_VALID_COUNTS(A) = FALSE;
    snprintf(step, sizeof(step), "length %u again, VALID_COUNTS(A) = FALSE", PAYLOAD_SIZE);
    QueryRow(A, step, FALSE, ChainCounts(A->Private.Head), "");
    return TRUE;
}

/* Packet B owns its memory: two buffers of receive space, filled so untouched bytes show. */
static BOOLEAN BuildPacketB(PNDIS_PACKET B, NDIS_HANDLE Pool, PUCHAR Space)
{
    static const UINT Size[] = {SPACE_0, SPACE_1};
    UINT offset = 0;

    NdisFillMemory(Space, SPACE_SIZE, SPACE_FILL);
    for (ULONG i = 0; i < RTL_NUMBER_OF(Size); i++) {
        NDIS_STATUS status;
        PNDIS_BUFFER b;

        NdisAllocateBuffer(&status, &b, Pool, Space + offset, Size[i]);
        Check(status == NDIS_STATUS_SUCCESS, "NdisAllocateBuffer for packet B");
        if (status != NDIS_STATUS_SUCCESS)
            return FALSE;
        NdisChainBufferAtBack(B, b);
        offset += Size[i];
    }
    return TRUE;
}

static BOOLEAN Filled(const UCHAR *p, UINT From, UINT To)
{
    for (UINT i = From; i < To; i++)
        if (p[i] != SPACE_FILL)
            return FALSE;
    return TRUE;
}

/* The copy a protocol makes when a miniport indicates with NDIS_STATUS_RESOURCES: the datagram
 * leaves A's four-buffer chain at a boundary and lands across B's two buffers. */
static void CopyAToB(PNDIS_PACKET A, PNDIS_PACKET B, const UCHAR *Frame, const UCHAR *Space)
{
    COUNTS a0, b0, a1, b1;
    PNDIS_BUFFER headA = A->Private.Head, headB = B->Private.Head, first;
    PUCHAR va;
    UINT copied = ~0u, firstLen, totalLen;

    NdisQueryPacket(A, &a0.Physical, &a0.Buffers, NULL, &a0.Total);
    NdisQueryPacket(B, &b0.Physical, &b0.Buffers, NULL, &b0.Total);
    NdisCopyFromPacketToPacket(B, HEADROOM, DATAGRAM_SIZE, A, ETH_HEADER_SIZE, &copied);
    printf("\nNdisCopyFromPacketToPacket(B, %u, %u, A, %u) -> BytesCopied %u: the IPv4 datagram from\n"
           "    A's buffers 1-3 (offset %u is A's first boundary) into B past B's boundary at %u\n",
           HEADROOM, DATAGRAM_SIZE, ETH_HEADER_SIZE, copied, ETH_HEADER_SIZE, SPACE_0);
    Check(copied == DATAGRAM_SIZE, "BytesCopied");
    Check(NdisEqualMemory(Space + HEADROOM, Frame + ETH_HEADER_SIZE, DATAGRAM_SIZE),
          "B holds the datagram");
    Check(Filled(Space, 0, HEADROOM) && Filled(Space, HEADROOM + DATAGRAM_SIZE, SPACE_SIZE),
          "bytes outside the copy untouched");
    NdisQueryPacket(A, &a1.Physical, &a1.Buffers, NULL, &a1.Total);
    NdisQueryPacket(B, &b1.Physical, &b1.Buffers, NULL, &b1.Total);
    Check(SameCounts(a0, a1) && SameCounts(b0, b1) && A->Private.Head == headA &&
              B->Private.Head == headB && A->Private.ValidCounts && B->Private.ValidCounts,
          "a copy changes no chain and no count");
    printf("    checked: B bytes %u..%u = frame bytes %u..%u, B bytes 0..%u and %u..%u still 0x%02x,\n"
           "    chains and cached counts of A and B unchanged\n", HEADROOM,
           HEADROOM + DATAGRAM_SIZE, ETH_HEADER_SIZE, FRAME_SIZE, HEADROOM,
           HEADROOM + DATAGRAM_SIZE, SPACE_SIZE, SPACE_FILL);

    NdisGetFirstBufferFromPacket(B, &first, &va, &firstLen, &totalLen);
    Check(first == headB && va == Space && firstLen == SPACE_0 && totalLen == SPACE_SIZE,
          "NdisGetFirstBufferFromPacket");
    if (va != NULL && firstLen >= HEADROOM + IP_HEADER_SIZE) {
        const UCHAR *ip = va + HEADROOM;
        BOOLEAN sumOk = FoldChecksum(OnesSum(0, ip, IP_HEADER_SIZE)) == 0;

        printf("    NdisGetFirstBufferFromPacket(B): %u of %u bytes; at +%u IPv4 %u.%u.%u.%u -> "
               "%u.%u.%u.%u, checksum %s\n", firstLen, totalLen, HEADROOM, ip[12], ip[13], ip[14],
               ip[15], ip[16], ip[17], ip[18], ip[19], sumOk ? "ok" : "BAD");
        Check(sumOk, "IPv4 header intact in B");
    }

    NdisCopyFromPacketToPacket(B, 200, 200, A, 0, &copied);
    printf("NdisCopyFromPacketToPacket(B, 200, 200, A, 0) -> BytesCopied %u: B's chain ends first\n",
           copied);
    Check(copied == SPACE_SIZE - 200 && NdisEqualMemory(Space + 200, Frame, copied),
          "a copy stops where the destination chain ends");
    NdisCopyFromPacketToPacket(B, 0, 10, A, FRAME_SIZE, &copied);
    printf("NdisCopyFromPacketToPacket(B, 0, 10, A, %u) -> BytesCopied %u: the offset is A's end\n",
           FRAME_SIZE, copied);
    Check(copied == 0, "offset at the end copies nothing");
}

static void DescribeFlags(const NDIS_PACKET *P, char *out, size_t cap)
{
    static const char *const Protocol[16] = {[NDIS_PROTOCOL_ID_DEFAULT] = "DEFAULT",
                                             [NDIS_PROTOCOL_ID_TCP_IP] = "TCP_IP",
                                             [NDIS_PROTOCOL_ID_IPX] = "IPX",
                                             [NDIS_PROTOCOL_ID_NBF] = "NBF"};
    static const struct { ULONG bit; const char *name; } Names[] = {
        {NDIS_FLAGS_MULTICAST_PACKET, "MULTICAST"}, {NDIS_FLAGS_DONT_LOOPBACK, "DONT_LOOPBACK"},
        {NDIS_FLAGS_IS_LOOPBACK_PACKET, "IS_LOOPBACK"}, {NDIS_FLAGS_LOOPBACK_ONLY, "LOOPBACK_ONLY"},
        {NDIS_FLAGS_DOUBLE_BUFFERED, "DOUBLE_BUFFERED"}, {NDIS_FLAGS_SENT_AT_DPC, "SENT_AT_DPC"},
        {NDIS_FLAGS_PADDED, "PADDED"},
    };
    UCHAR nf = P->Private.NdisPacketFlags;
    ULONG f = P->Private.Flags, id = NDIS_GET_PACKET_PROTOCOL_TYPE(P);
    size_t used;

    used = (size_t)snprintf(out, cap, "NdisPacketFlags 0x%02x%s%s; Flags 0x%08lx = protocol %s",
                            nf, nf & fPACKET_ALLOCATED_BY_NDIS ? " ALLOCATED_BY_NDIS" : "",
                            nf & fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO ? " MEDIA_SPECIFIC_INFO" : "",
                            (unsigned long)f, Protocol[id] ? Protocol[id] : "(other)");
    for (size_t i = 0; i < RTL_NUMBER_OF(Names) && used < cap; i++)
        if (f & Names[i].bit)
            used += (size_t)snprintf(out + used, cap - used, " | %s", Names[i].name);
}

static int IndexIn(PNDIS_BUFFER Head, PNDIS_BUFFER Target)
{
    int i = 0;

    for (; Head != NULL && Head != Target; NdisGetNextBuffer(Head, &Head))
        i++;
    return Head != NULL ? i : -1;
}

static void PrintPacket(const char *Name, PNDIS_PACKET P, const UCHAR *Base, const char *BaseName)
{
    PNDIS_PACKET_PRIVATE pv = &P->Private;
    PNDIS_PACKET original = NDIS_GET_ORIGINAL_PACKET(P);
    char flags[160];

    DescribeFlags(P, flags, sizeof(flags));
    printf("\nPacket %s at 0x%012" PRIxPTR ", pool 0x%012" PRIxPTR "\n    %s\n", Name,
           (uintptr_t)P, (uintptr_t)NdisGetPoolFromPacket(P), flags);
    printf("    ValidCounts %s, cached PhysicalCount %u, Count %u, TotalLength %u; Head #%d, Tail #%d\n",
           pv->ValidCounts ? "TRUE" : "FALSE", pv->PhysicalCount, pv->Count, pv->TotalLength,
           IndexIn(pv->Head, pv->Head), IndexIn(pv->Head, pv->Tail));
    printf("    OOB at +0x%x: HeaderSize %u, Status %s; OriginalPacketInfo %s\n",
           (unsigned)pv->NdisPacketOobOffset, NDIS_GET_PACKET_HEADER_SIZE(P),
           StatusName(NDIS_GET_PACKET_STATUS(P)), original == NULL ? "NULL" : "packet A");
    PrintChain(pv->Head, Base, BaseName);
}

/* Unchains one buffer at a time, as a driver must before NdisFreePacket. */
static ULONG EmptyPacket(PNDIS_PACKET P, BOOLEAN FromBack)
{
    PNDIS_BUFFER b;
    ULONG n = 0;

    for (;;) {
        if (FromBack)
            NdisUnchainBufferAtBack(P, &b);
        else
            NdisUnchainBufferAtFront(P, &b);
        if (b == NULL)
            break;
        Check(b->Next == NULL, "an unchained buffer is unlinked");
        NdisFreeBuffer(b);
        n++;
    }
    Check(P->Private.Head == NULL && P->Private.Tail == NULL, "emptied: Head and Tail NULL");
    return n;
}

static void TearDown(NDIS_HANDLE PacketPool, PNDIS_PACKET A, PNDIS_PACKET B)
{
    ULONG fromA = A != NULL ? EmptyPacket(A, FALSE) : 0;
    ULONG fromB = B != NULL ? EmptyPacket(B, TRUE) : 0;
    UINT usage;

    NdisFreePacket(A);
    NdisFreePacket(B);
    usage = NdisPacketPoolUsage(PacketPool);
    printf("\nTeardown: %lu buffers off A (NdisUnchainBufferAtFront), %lu off B (AtBack), "
           "NdisFreeBuffer each;\n    NdisFreePacket x2 -> NdisPacketPoolUsage %u; "
           "NdisFreePacketPool\n", (unsigned long)fromA, (unsigned long)fromB, usage);
    Check(usage == 0, "every packet back in its pool");
    NdisFreePacketPool(PacketPool);
}

static void RunPackets(NDIS_HANDLE BufferPool, PNDIS_BUFFER Chain, const UCHAR *Frame)
{
    const UINT oob = (UINT)(offsetof(NDIS_PACKET, ProtocolReserved) +
                            ((PROTOCOL_RESERVED + sizeof(PVOID) - 1) & ~(sizeof(PVOID) - 1)));
    NDIS_STATUS status;
    NDIS_HANDLE pool;
    PNDIS_PACKET a = NULL, b = NULL;
    PUCHAR space = NULL;
    KIRQL irql;

    NdisAllocatePacketPool(&status, &pool, PACKET_POOL_SIZE, PROTOCOL_RESERVED);
    printf("\nPart 2: packets. NdisAllocatePacketPool(%u, ProtocolReservedLength %u) -> %s,\n"
           "    NdisPacketSize(%u) = %u bytes; NdisSetPacketPoolProtocolId(TCP_IP)\n",
           PACKET_POOL_SIZE, PROTOCOL_RESERVED, StatusName(status), PROTOCOL_RESERVED,
           NdisPacketSize(PROTOCOL_RESERVED));
    Check(status == NDIS_STATUS_SUCCESS, "NdisAllocatePacketPool");
    if (status != NDIS_STATUS_SUCCESS)
        return;
    NdisSetPacketPoolProtocolId(pool, NDIS_PROTOCOL_ID_TCP_IP);
    NdisAllocatePacket(&status, &a, pool);
    Check(status == NDIS_STATUS_SUCCESS, "NdisAllocatePacket");
    if (a == NULL)
        goto out;
    CheckFresh(a, pool, oob);
    printf("Fresh packet A: all zero except Pool, ValidCounts, NdisPacketFlags, Flags (TCP_IP), "
           "OOB offset 0x%x\n", oob);
    if (!BuildPacketA(a, BufferPool, Chain))
        goto out;

    /* The miniport's side: header size for the protocol, and "copy this now". */
    NDIS_SET_PACKET_HEADER_SIZE(a, ETH_HEADER_SIZE);
    NDIS_SET_PACKET_STATUS(a, NDIS_STATUS_RESOURCES);
    Check(NDIS_GET_PACKET_HEADER_SIZE(a) == ETH_HEADER_SIZE &&
              NDIS_GET_PACKET_STATUS(a) == NDIS_STATUS_RESOURCES, "OOB HeaderSize and Status");

    /* The protocol's side runs in a DPC: hence the Dpr allocation at DISPATCH_LEVEL. */
    KeRaiseIrql(DISPATCH_LEVEL, &irql);
    NdisDprAllocatePacket(&status, &b, pool);
    Check(status == NDIS_STATUS_SUCCESS && NdisPacketPoolUsage(pool) == 2, "NdisDprAllocatePacket");
    printf("\nA indicated with HeaderSize %u, Status %s: the receiver must copy it now.\n"
           "Packet B: NdisDprAllocatePacket at DISPATCH_LEVEL, receive space %u + %u bytes of 0x%02x\n",
           NDIS_GET_PACKET_HEADER_SIZE(a), StatusName(NDIS_GET_PACKET_STATUS(a)), SPACE_0,
           SPACE_1, SPACE_FILL);
    if (b != NULL &&
        NdisAllocateMemoryWithTag((PVOID *)&space, SPACE_SIZE, DEMO_TAG) == NDIS_STATUS_SUCCESS &&
        BuildPacketB(b, BufferPool, space)) {
        CopyAToB(a, b, Frame, space);
        NDIS_SET_ORIGINAL_PACKET(b, a); /* a per-packet info slot: where B's data came from */
        Check(NDIS_GET_ORIGINAL_PACKET(b) == a && NDIS_GET_ORIGINAL_PACKET(a) == NULL,
              "OriginalPacketInfo slot");
        Check(NDIS_GET_PACKET_HEADER_SIZE(b) == 0 && NDIS_GET_PACKET_STATUS(b) == 0,
              "the data copy leaves B's OOB alone");
    }
    KeLowerIrql(irql);
    Check(KeGetCurrentIrql() == PASSIVE_LEVEL, "back at PASSIVE_LEVEL");

    PrintPacket("A", a, Frame, "frame bytes");
    if (space != NULL)
        PrintPacket("B", b, space, "space bytes");
out:
    TearDown(pool, a, b);
    NdisFreeMemory(space, SPACE_SIZE, 0);
}

int main(void)
{
    NDIS_STATUS status;
    NDIS_HANDLE pool;
    PUCHAR frame;
    PNDIS_BUFFER chain;

    if (NdisAllocateMemoryWithTag((PVOID *)&frame, FRAME_SIZE, DEMO_TAG) != NDIS_STATUS_SUCCESS)
        return 1;
    BuildFrame(frame);
    NdisAllocateBufferPool(&status, &pool, 16);
    chain = DescribeFrame(pool, frame);
    if (chain == NULL) {
        printf("NdisAllocateBuffer failed\n");
        return 1;
    }

    printf("libndis %s demo. Part 1: header split with NdisCopyBuffer, nothing is copied\n\n",
           libndis_version());
    printf("Frame: %u bytes at 0x%012" PRIxPTR " (Ethernet 14 + IPv4 20 + TCP 20 + HTTP %u)\n",
           FRAME_SIZE, (uintptr_t)frame, PAYLOAD_SIZE);
    printf("Source chain: %lu buffers from NdisAllocateBuffer (sizes 14, 0, 26, %u); "
           "\"frame bytes a..b\" = bytes [a, b) of the frame\n",
           (unsigned long)FRAGMENTS, FragmentSize[3]);
    PrintChain(chain, frame, "frame bytes");

    for (ULONG i = 0; i < RTL_NUMBER_OF(Cases); i++)
        RunCase(i, pool, chain, frame);

    printf("\nPool: %lu descriptors in use after freeing every result (the source chain)\n",
           (unsigned long)PoolInUse(pool));
    Check(PoolInUse(pool) == FRAGMENTS, "results all returned to the pool");

    RunPackets(pool, chain, frame);
    printf("Buffer pool: %lu descriptors in use after the packets (the source chain)",
           (unsigned long)PoolInUse(pool));
    Check(PoolInUse(pool) == FRAGMENTS, "packet buffers all returned to the pool");
    FreeChain(chain);
    printf(", %lu after freeing the chain\n", (unsigned long)PoolInUse(pool));
    Check(PoolInUse(pool) == 0, "source chain returned to the pool");
    NdisFreeBufferPool(pool);
    NdisFreeMemory(frame, FRAME_SIZE, 0);

    if (Failures != 0) {
        printf("\n%lu check(s) FAILED\n", (unsigned long)Failures);
        return 1;
    }
    printf("\nAll checks passed: every NdisCopyBuffer result points into the original frame, and\n"
           "every packet count, copied byte and descriptor is accounted for.\n");
    return 0;
}
