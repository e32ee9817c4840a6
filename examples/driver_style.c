/* SPDX-License-Identifier: MIT */
/* driver_style.c - miniport-style receive code, unchanged from how it reads under the WDK, run as
 * a user-space unit test: a DPC-level helper maps the Ethernet header of a received buffer chain
 * with NdisCopyBuffer and reads the EtherType through NdisQueryBufferSafe. */
#include <stdio.h>

#include <ndis.h>

#define ETH_HEADER_SIZE 14
#define MP_TAG 0x7852704du /* 'MpRx' */

typedef struct _MP_ADAPTER {
    NDIS_HANDLE HeaderPool;
    NDIS_SPIN_LOCK RxLock;
    ULONG FramesReceived;
    ULONG SplitHeaders;
} MP_ADAPTER, *PMP_ADAPTER;

static VOID MpFreeBufferChain(_In_opt_ PNDIS_BUFFER Buffer)
{
    PNDIS_BUFFER Next;

    while (Buffer != NULL) {
        NdisGetNextBuffer(Buffer, &Next);
        NdisFreeBuffer(Buffer);
        Buffer = Next;
    }
}

/* Gathers a header that straddles buffers into Header (the slow path). */
static UINT MpGatherHeader(_In_ PNDIS_BUFFER Buffer, _Out_writes_bytes_(Size) PUCHAR Header,
                           _In_ UINT Size)
{
    UINT Copied = 0;

    for (; Buffer != NULL && Copied < Size; NdisGetNextBuffer(Buffer, &Buffer)) {
        PUCHAR Va;
        UINT Length;

        NdisQueryBufferSafe(Buffer, &Va, &Length, NormalPagePriority);
        if (Va == NULL)
            break;
        if (Length > Size - Copied)
            Length = Size - Copied;
        NdisMoveMemory(Header + Copied, Va, Length);
        Copied += Length;
    }
    return Copied;
}

_IRQL_requires_(DISPATCH_LEVEL)
static NDIS_STATUS NTAPI MpIndicateReceive(IN PMP_ADAPTER Adapter, IN PNDIS_BUFFER FrameChain,
                                           OUT PUSHORT EtherType)
{
    NDIS_STATUS Status;
    PNDIS_BUFFER HeaderBuffer;
    PUCHAR Header;
    UINT HeaderLength;
    UCHAR Gathered[ETH_HEADER_SIZE];

    /* A descriptor for the header only: no bytes move, the frame stays where the NIC put it. */
    NdisCopyBuffer(&Status, &HeaderBuffer, Adapter->HeaderPool, FrameChain, 0, ETH_HEADER_SIZE);
    if (Status != NDIS_STATUS_SUCCESS)
        return Status; /* runt frame */

    NdisQueryBufferSafe(HeaderBuffer, &Header, &HeaderLength, NormalPagePriority);
    if (Header == NULL) {
        Status = NDIS_STATUS_RESOURCES;
    } else if (HeaderLength < ETH_HEADER_SIZE &&
               MpGatherHeader(HeaderBuffer, Gathered, sizeof(Gathered)) != ETH_HEADER_SIZE) {
        Status = NDIS_STATUS_INVALID_PACKET;
    } else {
        if (HeaderLength < ETH_HEADER_SIZE)
            Header = Gathered; /* the header straddles buffers */
        *EtherType = (USHORT)((Header[12] << 8) | Header[13]);
    }

    NdisDprAcquireSpinLock(&Adapter->RxLock);
    Adapter->FramesReceived++;
    if (Header == Gathered)
        Adapter->SplitHeaders++;
    NdisDprReleaseSpinLock(&Adapter->RxLock);

    MpFreeBufferChain(HeaderBuffer);
    return Status;
}

/* ---- the test harness: plays the NIC and the DPC ---- */

static const UCHAR Ipv4Frame[60] = {0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x5c, 0x52, 0x54,
                                    0x00, 0x12, 0x34, 0x56, 0x08, 0x00, 0x45, 0x00};
static const UCHAR Ipv6Frame[60] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x52, 0x54,
                                    0x00, 0x12, 0x34, 0x56, 0x86, 0xdd, 0x60, 0x00};

/* Describes Frame with two buffers split at FirstLength, then indicates it at DISPATCH_LEVEL. */
static BOOLEAN RunFrame(PMP_ADAPTER Adapter, const UCHAR *Frame, UINT FirstLength,
                        USHORT ExpectedType)
{
    NDIS_STATUS Status, Status2;
    PNDIS_BUFFER First, Second;
    PUCHAR Rx;
    USHORT EtherType = 0;
    KIRQL OldIrql;

    if (NdisAllocateMemoryWithTag((PVOID *)&Rx, 60, MP_TAG) != NDIS_STATUS_SUCCESS)
        return FALSE;
    NdisMoveMemory(Rx, Frame, 60);
    NdisAllocateBuffer(&Status, &First, NULL, Rx, FirstLength);
    NdisAllocateBuffer(&Status2, &Second, NULL, Rx + FirstLength, 60 - FirstLength);
    if (Status != NDIS_STATUS_SUCCESS || Status2 != NDIS_STATUS_SUCCESS) {
        NdisFreeBuffer(First); /* NULL after a failure, which NdisFreeBuffer ignores */
        NdisFreeBuffer(Second);
        NdisFreeMemory(Rx, 60, 0);
        return FALSE;
    }
    NDIS_BUFFER_LINKAGE(First) = Second;

    KeRaiseIrql(DISPATCH_LEVEL, &OldIrql);
    Status = MpIndicateReceive(Adapter, First, &EtherType);
    KeLowerIrql(OldIrql);

    printf("first buffer %2u bytes: status 0x%08X, EtherType 0x%04X (expected 0x%04X)\n",
           FirstLength, (unsigned)Status, EtherType, ExpectedType);
    MpFreeBufferChain(First);
    NdisFreeMemory(Rx, 60, 0);
    return Status == NDIS_STATUS_SUCCESS && EtherType == ExpectedType;
}

int main(void)
{
    MP_ADAPTER Adapter = {0};
    NDIS_STATUS Status;
    BOOLEAN Ok;

    NdisAllocateBufferPool(&Status, &Adapter.HeaderPool, 32);
    NdisAllocateSpinLock(&Adapter.RxLock);

    Ok = RunFrame(&Adapter, Ipv4Frame, 34, 0x0800);   /* header inside the first buffer */
    Ok &= RunFrame(&Adapter, Ipv6Frame, 6, 0x86dd);   /* header split after the MAC */
    Ok &= Adapter.FramesReceived == 2 && Adapter.SplitHeaders == 1;
    Ok &= KeGetCurrentIrql() == PASSIVE_LEVEL;

    NdisFreeSpinLock(&Adapter.RxLock);
    NdisFreeBufferPool(Adapter.HeaderPool);
    printf("%s\n", Ok ? "driver_style: ok" : "driver_style: FAILED");
    return Ok ? 0 : 1;
}
