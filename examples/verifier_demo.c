/* SPDX-License-Identifier: MIT */
/* verifier_demo.c - miniport-style code with three classic NDIS bugs, run under the verifier
 * with every rule on and no aborts: each bug is reported on stderr with the file and line of the
 * offending call. Exits 0 only when the clean traffic gave no report and each bug gave its own. */
#include <stdio.h>
#include <string.h>

#include <ndis.h>
#include <libndis.h>

#define ETH_HEADER_SIZE 14
#define ETH_MIN_FRAME 60
#define MP_TX_AREA_SIZE 1514
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86DD

typedef struct _MP_ADAPTER {
    NDIS_HANDLE BufferPool;
    NDIS_SPIN_LOCK Lock;            /* guards PendingPayload */
    PNDIS_BUFFER PendingPayload;    /* handed to the "upper layer" later */
    UCHAR TxArea[MP_TX_AREA_SIZE];  /* what the NIC would transmit from */
} MP_ADAPTER, *PMP_ADAPTER;

/* Accepts IPv4 only. BUG 1 (DOUBLE_FREE): the reject path frees the header descriptor and then
 * falls through to the common exit, which frees it again. Only a non-IPv4 frame takes that path,
 * which is why such bugs survive testing until a test drives the error path. */
static NDIS_STATUS MpCheckHeader(PMP_ADAPTER Adapter, PNDIS_BUFFER Frame)
{
    NDIS_STATUS Status;
    PNDIS_BUFFER Header;
    PUCHAR Va;
    UINT Length;

    NdisCopyBuffer(&Status, &Header, Adapter->BufferPool, Frame, 0, ETH_HEADER_SIZE);
    if (Status != NDIS_STATUS_SUCCESS)
        return Status;
    NdisQueryBufferSafe(Header, &Va, &Length, NormalPagePriority);
    if (Va == NULL || Length < ETH_HEADER_SIZE || ((Va[12] << 8) | Va[13]) != ETHERTYPE_IPV4) {
        NdisFreeBuffer(Header);
        Status = NDIS_STATUS_NOT_ACCEPTED;
    }
    NdisFreeBuffer(Header);
    return Status;
}

/* BUG 2 (ADJUSTED_LENGTH_NOT_RESTORED): the descriptor is made for the whole transmit area and
 * trimmed to the frame, but goes back to the pool trimmed. The fix is one line before the free:
 * NdisAdjustBufferLength(Buffer, MP_TX_AREA_SIZE). */
static NDIS_STATUS MpSendFrame(PMP_ADAPTER Adapter, UINT FrameLength)
{
    NDIS_STATUS Status;
    PNDIS_BUFFER Buffer;

    NdisAllocateBuffer(&Status, &Buffer, Adapter->BufferPool, Adapter->TxArea, MP_TX_AREA_SIZE);
    if (Status != NDIS_STATUS_SUCCESS)
        return Status;
    if (FrameLength < MP_TX_AREA_SIZE)
        NdisAdjustBufferLength(Buffer, FrameLength);
    /* ... the NIC transmits NdisBufferLength(Buffer) bytes here ... */
    NdisFreeBuffer(Buffer);
    return NDIS_STATUS_SUCCESS;
}

/* BUG 3 (SPINLOCK_HELD_ACROSS_CALL): the payload descriptor is made under the adapter lock.
 * NdisCopyBuffer is one of the calls to make with no spin lock held; the fix is to make the
 * descriptor first and take the lock only to publish it. */
static NDIS_STATUS MpQueuePayload(PMP_ADAPTER Adapter, PNDIS_BUFFER Frame, UINT FrameLength)
{
    NDIS_STATUS Status;
    PNDIS_BUFFER Payload;

    NdisAcquireSpinLock(&Adapter->Lock);
    NdisCopyBuffer(&Status, &Payload, Adapter->BufferPool, Frame, ETH_HEADER_SIZE,
                   FrameLength - ETH_HEADER_SIZE);
    if (Status == NDIS_STATUS_SUCCESS)
        Adapter->PendingPayload = Payload;
    NdisReleaseSpinLock(&Adapter->Lock);
    return Status;
}

static void BuildFrame(PUCHAR Frame, ULONG EtherType)
{
    memset(Frame, 0, ETH_MIN_FRAME);
    memset(Frame, 0xFF, 6);                     /* broadcast destination */
    memcpy(Frame + 6, "\x02\x00\x5e\x10\x20\x30", 6);
    Frame[12] = (UCHAR)(EtherType >> 8);
    Frame[13] = (UCHAR)EtherType;
}

typedef struct _EXPECTED {
    const char *Rule;
    ULONG Count;
} EXPECTED;

/* Each expected rule reported exactly as often as expected, and nothing else reported. */
static int CheckReports(const EXPECTED *Expected, ULONG N)
{
    ULONG Total = 0;
    int Ok = 1;

    for (ULONG i = 0; i < N; i++) {
        ULONG Seen = LibNdisVerifierReportCount(Expected[i].Rule);
        printf("  %-30s %lu report(s), expected %lu\n", Expected[i].Rule, (unsigned long)Seen,
               (unsigned long)Expected[i].Count);
        Ok &= Seen == Expected[i].Count;
        Total += Expected[i].Count;
    }
    if (LibNdisVerifierReportCount(NULL) != Total) {
        printf("  unexpected: %lu report(s) in all, expected %lu\n",
               (unsigned long)LibNdisVerifierReportCount(NULL), (unsigned long)Total);
        Ok = 0;
    } else if (N == 0) {
        printf("  no report\n");
    }
    return Ok;
}

int main(void)
{
    static MP_ADAPTER Adapter;
    static UCHAR Ipv4Frame[ETH_MIN_FRAME], Ipv6Frame[ETH_MIN_FRAME];
    static const EXPECTED Bugs[] = {
        {"DOUBLE_FREE", 1}, {"ADJUSTED_LENGTH_NOT_RESTORED", 1}, {"SPINLOCK_HELD_ACROSS_CALL", 1}};
    NDIS_STATUS Status;
    PNDIS_BUFFER Ipv4, Ipv6;
    ULONG Leaks;
    int Ok;

    /* Reports go to stderr as they happen; keep this program's own lines in step with them. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* First, before anything is allocated: objects made earlier would not be tracked. Every rule
     * on, and no rule aborts, so the demo runs to the end and can count the reports. */
    if (LibNdisVerifierConfigure("all,abort=none") != NDIS_STATUS_SUCCESS) {
        fprintf(stderr, "verifier_demo: LibNdisVerifierConfigure refused the spec\n");
        return 1;
    }

    NdisAllocateBufferPool(&Status, &Adapter.BufferPool, 32);
    NdisAllocateSpinLock(&Adapter.Lock);
    BuildFrame(Ipv4Frame, ETHERTYPE_IPV4);
    BuildFrame(Ipv6Frame, ETHERTYPE_IPV6);
    NdisAllocateBuffer(&Status, &Ipv4, Adapter.BufferPool, Ipv4Frame, ETH_MIN_FRAME);
    if (Status != NDIS_STATUS_SUCCESS)
        return 1;
    NdisAllocateBuffer(&Status, &Ipv6, Adapter.BufferPool, Ipv6Frame, ETH_MIN_FRAME);
    if (Status != NDIS_STATUS_SUCCESS)
        return 1;

    printf("clean traffic: an IPv4 frame received, a full-size frame sent\n");
    MpCheckHeader(&Adapter, Ipv4);
    MpSendFrame(&Adapter, MP_TX_AREA_SIZE);
    Ok = CheckReports(Bugs, 0);

    printf("the bugs: an IPv6 frame rejected, a short frame sent, a payload queued\n");
    MpCheckHeader(&Adapter, Ipv6);
    MpSendFrame(&Adapter, ETH_MIN_FRAME);
    MpQueuePayload(&Adapter, Ipv4, ETH_MIN_FRAME);
    Ok &= CheckReports(Bugs, RTL_NUMBER_OF(Bugs));

    /* The rest is correct: everything goes back before the pool, so nothing more is reported. */
    NdisFreeBuffer(Adapter.PendingPayload);
    NdisFreeBuffer(Ipv4);
    NdisFreeBuffer(Ipv6);
    NdisFreeSpinLock(&Adapter.Lock);
    NdisFreeBufferPool(Adapter.BufferPool);
    Leaks = LibNdisVerifierCheckLeaks();
    printf("clean-up: %lu leak(s), %lu report(s) in all\n", (unsigned long)Leaks,
           (unsigned long)LibNdisVerifierReportCount(NULL));
    Ok &= Leaks == 0 && LibNdisVerifierReportCount(NULL) == RTL_NUMBER_OF(Bugs);

    printf("verifier_demo: %s\n", Ok ? "every expected report seen, nothing else" : "FAILED");
    return Ok ? 0 : 1;
}
