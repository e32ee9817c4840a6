/* SPDX-License-Identifier: MIT */
/* demo.c - a receive path's header split on built-in data: one TCP/IPv4 Ethernet frame described
 * by a chain of four uneven buffers (one of them empty) is cut into headers and payload with
 * NdisCopyBuffer. Every chain is printed so the reader sees that results point into the frame. */
#include <inttypes.h>
#include <stdio.h>

#include <ndis.h>
#include <libndis.h> /* only for the final pool accounting (LibNdisQueryBufferPool) */

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

static void PrintChain(PNDIS_BUFFER Head, const UCHAR *Frame)
{
    PNDIS_BUFFER b = Head;
    char flags[96];

    printf("    %-2s %-29s %-11s %4s  %-18s %s\n", "#", "virtual address range",
           "frame bytes", "len", "flags", "first bytes");
    for (ULONG i = 0; b != NULL; i++) {
        PUCHAR va;
        UINT len;
        char range[16];

        NdisQueryBuffer(b, &va, &len);
        snprintf(range, sizeof(range), "%" PRIdPTR "..%" PRIdPTR, (intptr_t)(va - Frame),
                 (intptr_t)(va - Frame) + (intptr_t)len);
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
    PrintChain(result, Frame);
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

    printf("libndis %s demo: header split with NdisCopyBuffer, nothing is copied\n\n",
           libndis_version());
    printf("Frame: %u bytes at 0x%012" PRIxPTR " (Ethernet 14 + IPv4 20 + TCP 20 + HTTP %u)\n",
           FRAME_SIZE, (uintptr_t)frame, PAYLOAD_SIZE);
    printf("Source chain: %lu buffers from NdisAllocateBuffer (sizes 14, 0, 26, %u); "
           "\"frame bytes a..b\" = bytes [a, b) of the frame\n",
           (unsigned long)FRAGMENTS, FragmentSize[3]);
    PrintChain(chain, frame);

    for (ULONG i = 0; i < RTL_NUMBER_OF(Cases); i++)
        RunCase(i, pool, chain, frame);

    printf("\nPool: %lu descriptors in use after freeing every result (the source chain)",
           (unsigned long)PoolInUse(pool));
    Check(PoolInUse(pool) == FRAGMENTS, "results all returned to the pool");
    FreeChain(chain);
    printf(", %lu after freeing the chain\n", (unsigned long)PoolInUse(pool));
    Check(PoolInUse(pool) == 0, "source chain returned to the pool");
    NdisFreeBufferPool(pool);
    NdisFreeMemory(frame, FRAME_SIZE, 0);

    if (Failures != 0) {
        printf("\n%lu check(s) FAILED\n", (unsigned long)Failures);
        return 1;
    }
    printf("\nAll checks passed: every result descriptor points into the original frame.\n");
    return 0;
}
