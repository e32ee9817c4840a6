/* SPDX-License-Identifier: MIT */
/* ndis.h - the NDIS 5.x buffer, packet, memory and spin-lock API with WDK names, types and
 * semantics.
 * Items that are macros in the WDK stay macros where driver code depends on it (lvalues, casts of
 * out-pointers); the rest are exported functions, as ndis.sys also exports them. Extensions that
 * are not WDK names live in <libndis.h>, never here (decision 26). */
#ifndef LIBNDIS_NDIS_H
#define LIBNDIS_NDIS_H

#include "wdm.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef EXPORT
#define EXPORT
#endif
#ifndef NDISAPI
#define NDISAPI LIBNDIS_API
#endif

/* ---- basic NDIS types ---- */
typedef int NDIS_STATUS, *PNDIS_STATUS; /* int, not LONG, as in the WDK header */
typedef PVOID NDIS_HANDLE, *PNDIS_HANDLE;
typedef PHYSICAL_ADDRESS NDIS_PHYSICAL_ADDRESS, *PNDIS_PHYSICAL_ADDRESS;
typedef MDL NDIS_BUFFER, *PNDIS_BUFFER;
typedef ULONG NDIS_OID, *PNDIS_OID;

#define NDIS_PHYSICAL_ADDRESS_CONST(Low, High) \
    { { (ULONG)(Low), (LONG)(High) } }

/* ---- status values ---- */
#define NDIS_STATUS_SUCCESS ((NDIS_STATUS)0x00000000L)
#define NDIS_STATUS_PENDING ((NDIS_STATUS)0x00000103L)
#define NDIS_STATUS_NOT_RECOGNIZED ((NDIS_STATUS)0x00010001L)
#define NDIS_STATUS_NOT_COPIED ((NDIS_STATUS)0x00010002L)
#define NDIS_STATUS_NOT_ACCEPTED ((NDIS_STATUS)0x00010003L)
#define NDIS_STATUS_CALL_ACTIVE ((NDIS_STATUS)0x00010007L)
#define NDIS_STATUS_INDICATION_REQUIRED ((NDIS_STATUS)0x40230001L)
#define NDIS_STATUS_BUFFER_OVERFLOW ((NDIS_STATUS)0x80000005L)
#define NDIS_STATUS_NOT_RESETTABLE ((NDIS_STATUS)0x80010001L)
#define NDIS_STATUS_SOFT_ERRORS ((NDIS_STATUS)0x80010003L)
#define NDIS_STATUS_HARD_ERRORS ((NDIS_STATUS)0x80010004L)
#define NDIS_STATUS_FAILURE ((NDIS_STATUS)0xC0000001L)
#define NDIS_STATUS_INVALID_PARAMETER ((NDIS_STATUS)0xC000000DL)
#define NDIS_STATUS_INVALID_DEVICE_REQUEST ((NDIS_STATUS)0xC0000010L)
#define NDIS_STATUS_RESOURCES ((NDIS_STATUS)0xC000009AL)
#define NDIS_STATUS_NOT_SUPPORTED ((NDIS_STATUS)0xC00000BBL)
#define NDIS_STATUS_INVALID_STATE ((NDIS_STATUS)0xC0000184L)
#define NDIS_STATUS_NETWORK_UNREACHABLE ((NDIS_STATUS)0xC000023CL)
#define NDIS_STATUS_CLOSING ((NDIS_STATUS)0xC0010002L)
#define NDIS_STATUS_BAD_VERSION ((NDIS_STATUS)0xC0010004L)
#define NDIS_STATUS_BAD_CHARACTERISTICS ((NDIS_STATUS)0xC0010005L)
#define NDIS_STATUS_ADAPTER_NOT_FOUND ((NDIS_STATUS)0xC0010006L)
#define NDIS_STATUS_OPEN_FAILED ((NDIS_STATUS)0xC0010007L)
#define NDIS_STATUS_DEVICE_FAILED ((NDIS_STATUS)0xC0010008L)
#define NDIS_STATUS_MULTICAST_FULL ((NDIS_STATUS)0xC0010009L)
#define NDIS_STATUS_MULTICAST_EXISTS ((NDIS_STATUS)0xC001000AL)
#define NDIS_STATUS_MULTICAST_NOT_FOUND ((NDIS_STATUS)0xC001000BL)
#define NDIS_STATUS_REQUEST_ABORTED ((NDIS_STATUS)0xC001000CL)
#define NDIS_STATUS_RESET_IN_PROGRESS ((NDIS_STATUS)0xC001000DL)
#define NDIS_STATUS_CLOSING_INDICATING ((NDIS_STATUS)0xC001000EL)
#define NDIS_STATUS_INVALID_PACKET ((NDIS_STATUS)0xC001000FL)
#define NDIS_STATUS_OPEN_LIST_FULL ((NDIS_STATUS)0xC0010010L)
#define NDIS_STATUS_ADAPTER_NOT_READY ((NDIS_STATUS)0xC0010011L)
#define NDIS_STATUS_ADAPTER_NOT_OPEN ((NDIS_STATUS)0xC0010012L)
#define NDIS_STATUS_NOT_INDICATING ((NDIS_STATUS)0xC0010013L)
#define NDIS_STATUS_INVALID_LENGTH ((NDIS_STATUS)0xC0010014L)
#define NDIS_STATUS_INVALID_DATA ((NDIS_STATUS)0xC0010015L)
#define NDIS_STATUS_BUFFER_TOO_SHORT ((NDIS_STATUS)0xC0010016L)
#define NDIS_STATUS_INVALID_OID ((NDIS_STATUS)0xC0010017L)
#define NDIS_STATUS_ADAPTER_REMOVED ((NDIS_STATUS)0xC0010018L)
#define NDIS_STATUS_UNSUPPORTED_MEDIA ((NDIS_STATUS)0xC0010019L)
#define NDIS_STATUS_GROUP_ADDRESS_IN_USE ((NDIS_STATUS)0xC001001AL)
#define NDIS_STATUS_FILE_NOT_FOUND ((NDIS_STATUS)0xC001001BL)
#define NDIS_STATUS_ERROR_READING_FILE ((NDIS_STATUS)0xC001001CL)
#define NDIS_STATUS_ALREADY_MAPPED ((NDIS_STATUS)0xC001001DL)
#define NDIS_STATUS_RESOURCE_CONFLICT ((NDIS_STATUS)0xC001001EL)
#define NDIS_STATUS_NO_CABLE ((NDIS_STATUS)0xC001001FL)
#define NDIS_STATUS_PAUSED ((NDIS_STATUS)0xC023002AL)

/* ---- buffer pools and descriptors ---- */

/* NDIS_STATUS_SUCCESS, always, unless PoolHandle itself is NULL (then FAILURE, nothing made).
 * The handle is opaque; NULL is a valid handle (the default pool), and is what an out-of-memory
 * pool creation returns. */
NDISAPI VOID NdisAllocateBufferPool(_Out_ PNDIS_STATUS Status, _Out_ PNDIS_HANDLE PoolHandle,
                                    _In_ UINT NumberOfDescriptors);
/* NULL does nothing. With descriptors still out the pool is retired, not freed (decision 13). */
NDISAPI VOID NdisFreeBufferPool(_In_ NDIS_HANDLE PoolHandle);

/* Maps [VirtualAddress, VirtualAddress + Length). SUCCESS or FAILURE (NULL address with a
 * non-zero length, a range that wraps the address space, an MDL over 65535 bytes, a strict pool
 * at its count, out of memory); on failure *Buffer = NULL. Length 0 succeeds. */
NDISAPI VOID NdisAllocateBuffer(_Out_ PNDIS_STATUS Status, _Out_ PNDIS_BUFFER *Buffer,
                                _In_opt_ NDIS_HANDLE PoolHandle,
                                _In_reads_bytes_(Length) PVOID VirtualAddress, _In_ UINT Length);
/* Maps [Offset, Offset + Length) of the whole chain starting at MemoryDescriptor, one new
 * MDL_PARTIAL descriptor per source descriptor touched (decision 8). Nothing is copied. */
NDISAPI VOID NdisCopyBuffer(_Out_ PNDIS_STATUS Status, _Out_ PNDIS_BUFFER *Buffer,
                            _In_opt_ NDIS_HANDLE PoolHandle, _In_ PVOID MemoryDescriptor,
                            _In_ UINT Offset, _In_ UINT Length);
/* Frees exactly one descriptor from NdisAllocateBuffer, NdisCopyBuffer or IoAllocateMdl. */
NDISAPI VOID NdisFreeBuffer(_In_ PNDIS_BUFFER Buffer);
/* Writes ByteCount and nothing else (no packet counts, no Size). */
NDISAPI VOID NdisAdjustBufferLength(_Inout_ PNDIS_BUFFER Buffer, _In_ UINT Length);

/* The query family is macros in the WDK and stays macros: drivers pass PUCHAR* and the like for
 * the address out-parameter, which the WDK casts. The descriptor must not be NULL (as in the
 * WDK, a NULL descriptor is dereferenced: a crash, the user-space form of the bugcheck). */
#define NdisQueryBuffer(_Buffer, _VirtualAddress, _Length)                              \
    do {                                                                                \
        PVOID *ndqb_va_ = (PVOID *)(_VirtualAddress);                                   \
        if (ndqb_va_ != NULL)                                                           \
            *ndqb_va_ = MmGetSystemAddressForMdl(_Buffer);                              \
        *(_Length) = MmGetMdlByteCount(_Buffer);                                        \
    } while (0)

#define NdisQueryBufferSafe(_Buffer, _VirtualAddress, _Length, _Priority)               \
    do {                                                                                \
        PVOID *ndqb_va_ = (PVOID *)(_VirtualAddress);                                   \
        if (ndqb_va_ != NULL)                                                           \
            *ndqb_va_ = MmGetSystemAddressForMdlSafe((_Buffer), (_Priority));           \
        *(_Length) = MmGetMdlByteCount(_Buffer);                                        \
    } while (0)

/* *Offset is the offset within the first page (ByteOffset), not an offset in a packet. */
#define NdisQueryBufferOffset(_Buffer, _Offset, _Length)                                \
    do {                                                                                \
        *(_Offset) = MmGetMdlByteOffset(_Buffer);                                       \
        *(_Length) = MmGetMdlByteCount(_Buffer);                                        \
    } while (0)

#define NdisGetNextBuffer(CurrentBuffer, NextBuffer) \
    ((void)(*(NextBuffer) = (CurrentBuffer)->Next))
#define NDIS_BUFFER_LINKAGE(Buffer) ((Buffer)->Next)
#define NdisBufferLength(Buffer) MmGetMdlByteCount(Buffer)
#define NdisBufferVirtualAddress(Buffer) MmGetSystemAddressForMdl(Buffer)
#define NdisBufferVirtualAddressSafe(Buffer, Priority) \
    MmGetSystemAddressForMdlSafe((Buffer), (Priority))
/* A zero-length buffer spans one page here (not zero as ADDRESS_AND_SIZE_TO_SPAN_PAGES says). */
#define NDIS_BUFFER_TO_SPAN_PAGES(_Buffer)                                              \
    (MmGetMdlByteCount(_Buffer) == 0                                                    \
         ? 1                                                                            \
         : ADDRESS_AND_SIZE_TO_SPAN_PAGES(MmGetMdlVirtualAddress(_Buffer),              \
                                          MmGetMdlByteCount(_Buffer)))
#define NdisGetBufferPhysicalArraySize(Buffer, ArraySize) \
    ((void)(*(ArraySize) = NDIS_BUFFER_TO_SPAN_PAGES(Buffer)))

/* ---- packets (reference §4, decisions 14-21) ---- */
typedef NDIS_HANDLE PNDIS_PACKET_POOL;

typedef struct _NDIS_PACKET_PRIVATE {
    UINT PhysicalCount;     /* PhysicalCount, TotalLength and Count are a cache, */
    UINT TotalLength;       /* valid only while ValidCounts is TRUE */
    PNDIS_BUFFER Head;      /* an empty chain is Head == NULL; Tail may then be stale */
    PNDIS_BUFFER Tail;
    PNDIS_PACKET_POOL Pool;
    UINT Count;
    ULONG Flags;            /* NDIS_FLAGS_*, protocol ID in the low 4 bits */
    BOOLEAN ValidCounts;
    UCHAR NdisPacketFlags;  /* fPACKET_* */
    USHORT NdisPacketOobOffset;
} NDIS_PACKET_PRIVATE, *PNDIS_PACKET_PRIVATE;

typedef struct _NDIS_PACKET {
    NDIS_PACKET_PRIVATE Private;
    union {
        struct {
            UCHAR MiniportReserved[2 * sizeof(PVOID)];
            UCHAR WrapperReserved[2 * sizeof(PVOID)];
        };
        struct {
            UCHAR MiniportReservedEx[3 * sizeof(PVOID)];
            UCHAR WrapperReservedEx[sizeof(PVOID)];
        };
        struct {
            UCHAR MacReserved[4 * sizeof(PVOID)];
        };
    };
    ULONG_PTR Reserved[2];
    UCHAR ProtocolReserved[1]; /* really ProtocolReservedLength bytes, given to the pool */
} NDIS_PACKET, *PNDIS_PACKET, **PPNDIS_PACKET;

typedef struct _NDIS_PACKET_OOB_DATA {
    union {
        ULONGLONG TimeToSend;
        ULONGLONG TimeSent;
    };
    ULONGLONG TimeReceived;
    UINT HeaderSize;
    UINT SizeMediaSpecificInfo;
    PVOID MediaSpecificInformation;
    NDIS_STATUS Status;
} NDIS_PACKET_OOB_DATA, *PNDIS_PACKET_OOB_DATA;

typedef enum _NDIS_PER_PACKET_INFO {
    TcpIpChecksumPacketInfo,
    IpSecPacketInfo,
    TcpLargeSendPacketInfo,
    ClassificationHandlePacketInfo,
    NdisReserved,
    ScatterGatherListPacketInfo,
    Ieee8021QInfo,
    OriginalPacketInfo,
    PacketCancelId,
    OriginalNetBufferList,
    CachedNetBufferList,
    ShortPacketPaddingInfo,
    MaxPerPacketInfo
} NDIS_PER_PACKET_INFO, *PNDIS_PER_PACKET_INFO;

typedef struct _NDIS_PACKET_EXTENSION {
    PVOID NdisPacketInfo[MaxPerPacketInfo];
} NDIS_PACKET_EXTENSION, *PNDIS_PACKET_EXTENSION;

typedef struct _NDIS_PACKET_STACK {
    ULONG_PTR IMReserved[2];
    ULONG_PTR NdisReserved[4];
} NDIS_PACKET_STACK, *PNDIS_PACKET_STACK;

#if UINTPTR_MAX > 0xFFFFFFFFu
_Static_assert(sizeof(NDIS_PACKET_PRIVATE) == 0x30, "NDIS_PACKET_PRIVATE is 48 bytes on x64");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Head) == 0x08, "Private.Head");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Tail) == 0x10, "Private.Tail");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Pool) == 0x18, "Private.Pool");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Count) == 0x20, "Private.Count");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Flags) == 0x24, "Private.Flags");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, ValidCounts) == 0x28, "Private.ValidCounts");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, NdisPacketFlags) == 0x29, "Private.NdisPacketFlags");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, NdisPacketOobOffset) == 0x2A, "Private.NdisPacketOobOffset");
_Static_assert(offsetof(NDIS_PACKET, MiniportReserved) == 0x30, "NDIS_PACKET reserved union");
_Static_assert(offsetof(NDIS_PACKET, WrapperReserved) == 0x40, "NDIS_PACKET.WrapperReserved");
_Static_assert(offsetof(NDIS_PACKET, WrapperReservedEx) == 0x48, "NDIS_PACKET.WrapperReservedEx");
_Static_assert(offsetof(NDIS_PACKET, Reserved) == 0x50, "NDIS_PACKET.Reserved");
_Static_assert(offsetof(NDIS_PACKET, ProtocolReserved) == 0x60, "NDIS_PACKET.ProtocolReserved");
_Static_assert(sizeof(NDIS_PACKET) == 0x68, "NDIS_PACKET is 0x68 bytes on x64");
_Static_assert(offsetof(NDIS_PACKET_OOB_DATA, TimeReceived) == 8, "OOB.TimeReceived");
_Static_assert(offsetof(NDIS_PACKET_OOB_DATA, HeaderSize) == 16, "OOB.HeaderSize");
_Static_assert(offsetof(NDIS_PACKET_OOB_DATA, SizeMediaSpecificInfo) == 20, "OOB.SizeMediaSpecificInfo");
_Static_assert(offsetof(NDIS_PACKET_OOB_DATA, MediaSpecificInformation) == 24, "OOB.MediaSpecificInformation");
_Static_assert(offsetof(NDIS_PACKET_OOB_DATA, Status) == 32, "OOB.Status");
_Static_assert(sizeof(NDIS_PACKET_OOB_DATA) == 40, "NDIS_PACKET_OOB_DATA is 40 bytes on x64");
_Static_assert(sizeof(NDIS_PACKET_EXTENSION) == 96, "12 per-packet info slots on x64");
_Static_assert(sizeof(NDIS_PACKET_STACK) == 48, "NDIS_PACKET_STACK is 48 bytes on x64");
#else
_Static_assert(sizeof(NDIS_PACKET_PRIVATE) == 0x20, "NDIS_PACKET_PRIVATE is 32 bytes on x86");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Head) == 0x08, "Private.Head");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Tail) == 0x0C, "Private.Tail");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Pool) == 0x10, "Private.Pool");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Count) == 0x14, "Private.Count");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, Flags) == 0x18, "Private.Flags");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, ValidCounts) == 0x1C, "Private.ValidCounts");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, NdisPacketFlags) == 0x1D, "Private.NdisPacketFlags");
_Static_assert(offsetof(NDIS_PACKET_PRIVATE, NdisPacketOobOffset) == 0x1E, "Private.NdisPacketOobOffset");
_Static_assert(offsetof(NDIS_PACKET, MiniportReserved) == 0x20, "NDIS_PACKET reserved union");
_Static_assert(offsetof(NDIS_PACKET, Reserved) == 0x30, "NDIS_PACKET.Reserved");
_Static_assert(offsetof(NDIS_PACKET, ProtocolReserved) == 0x38, "NDIS_PACKET.ProtocolReserved");
_Static_assert(sizeof(NDIS_PACKET) == 0x3C, "NDIS_PACKET is 0x3C bytes on x86");
_Static_assert(offsetof(NDIS_PACKET_OOB_DATA, Status) == 28, "OOB.Status");
_Static_assert(sizeof(NDIS_PACKET_OOB_DATA) == 32, "NDIS_PACKET_OOB_DATA is 32 bytes on x86");
_Static_assert(sizeof(NDIS_PACKET_EXTENSION) == 48, "12 per-packet info slots on x86");
#endif

#define PROTOCOL_RESERVED_SIZE_IN_PACKET (4 * sizeof(PVOID))

/* Private.Flags */
#define NDIS_FLAGS_PROTOCOL_ID_MASK 0x0000000F
#define NDIS_FLAGS_MULTICAST_PACKET 0x00000010
#define NDIS_FLAGS_RESERVED2 0x00000020
#define NDIS_FLAGS_RESERVED3 0x00000040
#define NDIS_FLAGS_DONT_LOOPBACK 0x00000080
#define NDIS_FLAGS_IS_LOOPBACK_PACKET 0x00000100
#define NDIS_FLAGS_LOOPBACK_ONLY 0x00000200
#define NDIS_FLAGS_RESERVED4 0x00000400
#define NDIS_FLAGS_DOUBLE_BUFFERED 0x00000800
#define NDIS_FLAGS_SENT_AT_DPC 0x00001000
#define NDIS_FLAGS_USES_SG_BUFFER_LIST 0x00002000
#define NDIS_FLAGS_USES_ORIGINAL_PACKET 0x00004000
#define NDIS_FLAGS_ALLOCATED_XFER_DATA_PKT 0x00008000
#define NDIS_FLAGS_PADDED 0x00010000

#define NDIS_PROTOCOL_ID_DEFAULT 0x00
#define NDIS_PROTOCOL_ID_TCP_IP 0x02
#define NDIS_PROTOCOL_ID_IPX 0x06
#define NDIS_PROTOCOL_ID_NBF 0x07
#define NDIS_PROTOCOL_ID_MAX 0x0F
#define NDIS_PROTOCOL_ID_MASK 0x0F

/* Private.NdisPacketFlags, owned by NDIS */
#define fPACKET_WRAPPER_RESERVED 0x3F
#define fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO 0x40
#define fPACKET_ALLOCATED_BY_NDIS 0x80

/* ---- packet pools ---- */
/* SUCCESS, or RESOURCES for more than 0xFFFF descriptors, a ProtocolReservedLength too large for
 * a 16-bit OOB offset, or no memory. N + overflow is clamped to 0xFFFF; the N base descriptors
 * are made now, overflow ones on demand once the base ones are all in use (decision 16). */
NDISAPI VOID NdisAllocatePacketPool(_Out_ PNDIS_STATUS Status, _Out_ PNDIS_HANDLE PoolHandle,
                                    _In_ UINT NumberOfDescriptors, _In_ UINT ProtocolReservedLength);
NDISAPI VOID NdisAllocatePacketPoolEx(_Out_ PNDIS_STATUS Status, _Out_ PNDIS_HANDLE PoolHandle,
                                      _In_ UINT NumberOfDescriptors,
                                      _In_ UINT NumberOfOverflowDescriptors,
                                      _In_ UINT ProtocolReservedLength);
/* With packets still out the pool is retired and released when the last one returns. */
NDISAPI VOID NdisFreePacketPool(_In_ NDIS_HANDLE PoolHandle);
NDISAPI UINT NdisPacketPoolUsage(_In_ NDIS_HANDLE PoolHandle);
NDISAPI UINT NdisPacketSize(_In_ UINT ProtocolReservedSize);
NDISAPI NDIS_HANDLE NdisGetPoolFromPacket(_In_ PNDIS_PACKET Packet);
NDISAPI VOID NdisSetPacketPoolProtocolId(_In_ NDIS_HANDLE PacketPoolHandle, _In_ UINT ProtocolId);

/* SUCCESS with a fully zeroed packet (decision 14); RESOURCES and *Packet = NULL when the pool is
 * exhausted; FAILURE and *Packet = NULL for a NULL or retired pool handle. */
NDISAPI VOID NdisAllocatePacket(_Out_ PNDIS_STATUS Status, _Out_ PNDIS_PACKET *Packet,
                                _In_ NDIS_HANDLE PoolHandle);
NDISAPI VOID NdisDprAllocatePacket(_Out_ PNDIS_STATUS Status, _Out_ PNDIS_PACKET *Packet,
                                   _In_ NDIS_HANDLE PoolHandle);
NDISAPI VOID NdisDprAllocatePacketNonInterlocked(_Out_ PNDIS_STATUS Status,
                                                 _Out_ PNDIS_PACKET *Packet,
                                                 _In_ NDIS_HANDLE PoolHandle);
/* Returns the packet to its pool; chained buffers are neither unchained nor freed. */
NDISAPI VOID NdisFreePacket(_In_ PNDIS_PACKET Packet);
NDISAPI VOID NdisDprFreePacket(_In_ PNDIS_PACKET Packet);
NDISAPI VOID NdisDprFreePacketNonInterlocked(_In_ PNDIS_PACKET Packet);

/* ---- chains and counts (the WDK macros, as functions with the same effects) ---- */
NDISAPI VOID NdisChainBufferAtFront(_Inout_ PNDIS_PACKET Packet, _In_ PNDIS_BUFFER Buffer);
NDISAPI VOID NdisChainBufferAtBack(_Inout_ PNDIS_PACKET Packet, _In_ PNDIS_BUFFER Buffer);
/* Removes exactly one descriptor and sets its Next to NULL (decision 9). */
NDISAPI VOID NdisUnchainBufferAtFront(_Inout_ PNDIS_PACKET Packet, _Out_ PNDIS_BUFFER *Buffer);
NDISAPI VOID NdisUnchainBufferAtBack(_Inout_ PNDIS_PACKET Packet, _Out_ PNDIS_BUFFER *Buffer);
NDISAPI VOID NdisQueryPacket(_In_ PNDIS_PACKET Packet, _Out_opt_ PUINT PhysicalBufferCount,
                             _Out_opt_ PUINT BufferCount, _Out_opt_ PNDIS_BUFFER *FirstBuffer,
                             _Out_opt_ PUINT TotalPacketLength);
/* TotalPacketLength is required; the cache is trusted when ValidCounts is TRUE. */
NDISAPI VOID NdisQueryPacketLength(_In_ PNDIS_PACKET Packet, _Out_ PUINT TotalPacketLength);
NDISAPI VOID NdisRecalculatePacketCounts(_Inout_ PNDIS_PACKET Packet);
/* Head = NULL and ValidCounts = FALSE, nothing else: Tail is left stale. */
NDISAPI VOID NdisReinitializePacket(_Inout_ PNDIS_PACKET Packet);

#define NDIS_PACKET_FIRST_NDIS_BUFFER(_Packet) ((_Packet)->Private.Head)
#define NDIS_PACKET_LAST_NDIS_BUFFER(_Packet) ((_Packet)->Private.Tail)
#define NDIS_PACKET_VALID_COUNTS(_Packet) ((_Packet)->Private.ValidCounts)

/* Walks the chain every time; never reads or refreshes the packet's cached counts, and does not
 * skip a zero-length first buffer. Both forms share one body; _Map maps the first buffer, which
 * the body names ndgf_b_. */
#define __LIBNDIS_FIRST_BUFFER(_Packet, _FirstBuffer, _FirstBufferVA, _FirstBufferLength,      \
                               _TotalBufferLength, _Map)                                      \
    do {                                                                                      \
        PNDIS_BUFFER ndgf_b_ = (_Packet)->Private.Head;                                       \
        *(_FirstBuffer) = ndgf_b_;                                                            \
        *(PVOID *)(_FirstBufferVA) = NULL;                                                    \
        *(_FirstBufferLength) = *(_TotalBufferLength) = 0;                                    \
        if (ndgf_b_ != NULL) {                                                                \
            *(PVOID *)(_FirstBufferVA) = (_Map);                                              \
            *(_FirstBufferLength) = *(_TotalBufferLength) = MmGetMdlByteCount(ndgf_b_);       \
            for (ndgf_b_ = ndgf_b_->Next; ndgf_b_ != NULL; ndgf_b_ = ndgf_b_->Next)           \
                *(_TotalBufferLength) += MmGetMdlByteCount(ndgf_b_);                          \
        }                                                                                     \
    } while (0)

#define NdisGetFirstBufferFromPacket(_Packet, _FirstBuffer, _FirstBufferVA, _FirstBufferLength, \
                                     _TotalBufferLength)                                       \
    __LIBNDIS_FIRST_BUFFER(_Packet, _FirstBuffer, _FirstBufferVA, _FirstBufferLength,          \
                           _TotalBufferLength, MmGetSystemAddressForMdl(ndgf_b_))

#define NdisGetFirstBufferFromPacketSafe(_Packet, _FirstBuffer, _FirstBufferVA,                 \
                                         _FirstBufferLength, _TotalBufferLength, _Priority)    \
    __LIBNDIS_FIRST_BUFFER(_Packet, _FirstBuffer, _FirstBufferVA, _FirstBufferLength,          \
                           _TotalBufferLength, MmGetSystemAddressForMdlSafe(ndgf_b_, (_Priority)))

/* ---- copying data between packets (decision 20) ---- */
/* Copies up to BytesToCopy bytes; *BytesCopied is always written and may be smaller when either
 * chain ends. Nothing is allocated, no chain or cached count changes. */
NDISAPI VOID NdisCopyFromPacketToPacket(_In_ PNDIS_PACKET Destination, _In_ UINT DestinationOffset,
                                        _In_ UINT BytesToCopy, _In_ PNDIS_PACKET Source,
                                        _In_ UINT SourceOffset, _Out_ PUINT BytesCopied);
NDISAPI VOID NdisCopyFromPacketToPacketSafe(_In_ PNDIS_PACKET Destination,
                                            _In_ UINT DestinationOffset, _In_ UINT BytesToCopy,
                                            _In_ PNDIS_PACKET Source, _In_ UINT SourceOffset,
                                            _Out_ PUINT BytesCopied, _In_ MM_PAGE_PRIORITY Priority);

/* ---- out-of-band data and per-packet info (always found through NdisPacketOobOffset) ---- */
#define NDIS_OOB_DATA_FROM_PACKET(_Packet) \
    ((PNDIS_PACKET_OOB_DATA)((PUCHAR)(_Packet) + (_Packet)->Private.NdisPacketOobOffset))
#define NDIS_GET_PACKET_STATUS(_Packet) (NDIS_OOB_DATA_FROM_PACKET(_Packet)->Status)
#define NDIS_SET_PACKET_STATUS(_Packet, _Status) \
    ((void)(NDIS_OOB_DATA_FROM_PACKET(_Packet)->Status = (_Status)))
#define NDIS_GET_PACKET_HEADER_SIZE(_Packet) (NDIS_OOB_DATA_FROM_PACKET(_Packet)->HeaderSize)
#define NDIS_SET_PACKET_HEADER_SIZE(_Packet, _HdrSize) \
    ((void)(NDIS_OOB_DATA_FROM_PACKET(_Packet)->HeaderSize = (_HdrSize)))
#define NDIS_GET_PACKET_TIME_TO_SEND(_Packet) (NDIS_OOB_DATA_FROM_PACKET(_Packet)->TimeToSend)
#define NDIS_SET_PACKET_TIME_TO_SEND(_Packet, _TimeToSend) \
    ((void)(NDIS_OOB_DATA_FROM_PACKET(_Packet)->TimeToSend = (_TimeToSend)))
#define NDIS_GET_PACKET_TIME_SENT(_Packet) (NDIS_OOB_DATA_FROM_PACKET(_Packet)->TimeSent)
#define NDIS_SET_PACKET_TIME_SENT(_Packet, _TimeSent) \
    ((void)(NDIS_OOB_DATA_FROM_PACKET(_Packet)->TimeSent = (_TimeSent)))
#define NDIS_GET_PACKET_TIME_RECEIVED(_Packet) (NDIS_OOB_DATA_FROM_PACKET(_Packet)->TimeReceived)
#define NDIS_SET_PACKET_TIME_RECEIVED(_Packet, _TimeReceived) \
    ((void)(NDIS_OOB_DATA_FROM_PACKET(_Packet)->TimeReceived = (_TimeReceived)))

/* Silently does nothing unless the packet carries fPACKET_ALLOCATED_BY_NDIS. */
#define NDIS_SET_PACKET_MEDIA_SPECIFIC_INFO(_Packet, _MediaSpecificInfo, _SizeMediaSpecificInfo) \
    do {                                                                                       \
        if ((_Packet)->Private.NdisPacketFlags & fPACKET_ALLOCATED_BY_NDIS) {                  \
            (_Packet)->Private.NdisPacketFlags |= fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO;        \
            NDIS_OOB_DATA_FROM_PACKET(_Packet)->MediaSpecificInformation =                     \
                (PVOID)(_MediaSpecificInfo);                                                   \
            NDIS_OOB_DATA_FROM_PACKET(_Packet)->SizeMediaSpecificInfo =                        \
                (UINT)(_SizeMediaSpecificInfo);                                                \
        }                                                                                      \
    } while (0)

/* NULL and 0 unless both fPACKET_ALLOCATED_BY_NDIS and fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO. */
#define NDIS_GET_PACKET_MEDIA_SPECIFIC_INFO(_Packet, _pMediaSpecificInfo,                       \
                                            _pSizeMediaSpecificInfo)                           \
    do {                                                                                       \
        UCHAR ndgm_f_ = (_Packet)->Private.NdisPacketFlags;                                    \
        if (!(ndgm_f_ & fPACKET_ALLOCATED_BY_NDIS) ||                                          \
            !(ndgm_f_ & fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO)) {                               \
            *(PVOID *)(_pMediaSpecificInfo) = NULL;                                            \
            *(_pSizeMediaSpecificInfo) = 0;                                                    \
        } else {                                                                               \
            *(PVOID *)(_pMediaSpecificInfo) =                                                  \
                NDIS_OOB_DATA_FROM_PACKET(_Packet)->MediaSpecificInformation;                  \
            *(_pSizeMediaSpecificInfo) = NDIS_OOB_DATA_FROM_PACKET(_Packet)->SizeMediaSpecificInfo; \
        }                                                                                      \
    } while (0)

#define NDIS_PACKET_EXTENSION_FROM_PACKET(_Packet)                                  \
    ((PNDIS_PACKET_EXTENSION)((PUCHAR)(_Packet) + (_Packet)->Private.NdisPacketOobOffset + \
                              sizeof(NDIS_PACKET_OOB_DATA)))
#define NDIS_PER_PACKET_INFO_FROM_PACKET(_Packet, _InfoType) \
    (NDIS_PACKET_EXTENSION_FROM_PACKET(_Packet)->NdisPacketInfo[(_InfoType)])
#define NDIS_GET_ORIGINAL_PACKET(_Packet) \
    ((PNDIS_PACKET)NDIS_PER_PACKET_INFO_FROM_PACKET(_Packet, OriginalPacketInfo))
#define NDIS_SET_ORIGINAL_PACKET(_Packet, _OriginalPacket) \
    ((void)(NDIS_PER_PACKET_INFO_FROM_PACKET(_Packet, OriginalPacketInfo) = (PVOID)(_OriginalPacket)))
#define NDIS_GET_PACKET_CANCEL_ID(_Packet) NDIS_PER_PACKET_INFO_FROM_PACKET(_Packet, PacketCancelId)
#define NDIS_SET_PACKET_CANCEL_ID(_Packet, _CancelId) \
    ((void)(NDIS_PER_PACKET_INFO_FROM_PACKET(_Packet, PacketCancelId) = (PVOID)(_CancelId)))
#define NdisGetPacketCancelId(_Packet) NDIS_GET_PACKET_CANCEL_ID(_Packet)
#define NdisSetPacketCancelId(_Packet, _CancelId) NDIS_SET_PACKET_CANCEL_ID(_Packet, _CancelId)

#define NdisGetPacketFlags(_Packet) ((_Packet)->Private.Flags)
/* ORs the bits in; NdisClearPacketFlags removes them. */
#define NdisSetPacketFlags(_Packet, _Flags) ((void)((_Packet)->Private.Flags |= (_Flags)))
#define NdisClearPacketFlags(_Packet, _Flags) ((void)((_Packet)->Private.Flags &= ~(_Flags)))
#define NDIS_GET_PACKET_PROTOCOL_TYPE(_Packet) ((_Packet)->Private.Flags & NDIS_PROTOCOL_ID_MASK)

/* ---- intermediate drivers ---- */
/* Both copy every per-packet info slot, and nothing else (decision 21). */
NDISAPI VOID NdisIMCopySendPerPacketInfo(_Out_ PNDIS_PACKET DstPacket, _In_ PNDIS_PACKET SrcPacket);
NDISAPI VOID NdisIMCopySendCompletePerPacketInfo(_Out_ PNDIS_PACKET DstPacket,
                                                 _In_ PNDIS_PACKET SrcPacket);
/* Each packet has two stack locations, zeroed on allocation. With no driver stack to traverse
 * here, the current location is always the first and *StacksRemaining is TRUE. */
NDISAPI PNDIS_PACKET_STACK NdisIMGetCurrentPacketStack(_In_ PNDIS_PACKET Packet,
                                                       _Out_ BOOLEAN *StacksRemaining);

/* ---- memory ---- */
#define NDIS_MEMORY_CONTIGUOUS 0x00000001
#define NDIS_MEMORY_NONCACHED 0x00000002

/* SUCCESS or FAILURE; memory is not zeroed and is aligned to at least 16 bytes. */
NDISAPI NDIS_STATUS NdisAllocateMemoryWithTag(_Outptr_ PVOID *VirtualAddress,
                                              _In_ UINT Length, _In_ ULONG Tag);
NDISAPI NDIS_STATUS NdisAllocateMemory(_Outptr_ PVOID *VirtualAddress, _In_ UINT Length,
                                       _In_ UINT MemoryFlags,
                                       _In_ NDIS_PHYSICAL_ADDRESS HighestAcceptableAddress);
/* Length and MemoryFlags must be those of the allocation; NULL does nothing. */
NDISAPI VOID NdisFreeMemory(_In_ PVOID VirtualAddress, _In_ UINT Length, _In_ UINT MemoryFlags);

/* NdisMoveMemory is memcpy: overlapping ranges are undefined, as documented. */
#define NdisMoveMemory(Destination, Source, Length) RtlCopyMemory(Destination, Source, Length)
#define NdisMoveMappedMemory(Destination, Source, Length) \
    RtlCopyMemory(Destination, Source, Length)
#define NdisZeroMemory(Destination, Length) RtlZeroMemory(Destination, Length)
#define NdisZeroMappedMemory(Destination, Length) RtlZeroMemory(Destination, Length)
#define NdisFillMemory(Destination, Length, Fill) RtlFillMemory(Destination, Length, Fill)
#define NdisEqualMemory(Source1, Source2, Length) \
    ((ULONG)RtlEqualMemory(Source1, Source2, Length))
#define NdisRetrieveUlong(Destination, Source) RtlCopyMemory((Destination), (Source), 4)
#define NdisStoreUlong(Destination, Value)                              \
    do {                                                                \
        ULONG ndsu_v_ = (ULONG)(Value);                                 \
        RtlCopyMemory((Destination), &ndsu_v_, sizeof(ndsu_v_));        \
    } while (0)

/* ---- spin locks (decisions 22-23) ---- */
typedef struct _NDIS_SPIN_LOCK {
    KSPIN_LOCK SpinLock;
    KIRQL OldIrql;
} NDIS_SPIN_LOCK, *PNDIS_SPIN_LOCK;

#if UINTPTR_MAX > 0xFFFFFFFFu
_Static_assert(sizeof(NDIS_SPIN_LOCK) == 16, "NDIS_SPIN_LOCK is 16 bytes on x64");
_Static_assert(offsetof(NDIS_SPIN_LOCK, OldIrql) == 8, "NDIS_SPIN_LOCK.OldIrql");
#else
_Static_assert(sizeof(NDIS_SPIN_LOCK) == 8, "NDIS_SPIN_LOCK is 8 bytes on x86");
_Static_assert(offsetof(NDIS_SPIN_LOCK, OldIrql) == 4, "NDIS_SPIN_LOCK.OldIrql");
#endif

NDISAPI VOID NdisAllocateSpinLock(_Out_ PNDIS_SPIN_LOCK SpinLock);
NDISAPI VOID NdisFreeSpinLock(_In_ PNDIS_SPIN_LOCK SpinLock);
/* Raises to DISPATCH_LEVEL and keeps the previous level in SpinLock->OldIrql. */
NDISAPI VOID NdisAcquireSpinLock(_Inout_ PNDIS_SPIN_LOCK SpinLock);
/* Releases and returns to SpinLock->OldIrql: release in reverse order of acquisition. */
NDISAPI VOID NdisReleaseSpinLock(_Inout_ PNDIS_SPIN_LOCK SpinLock);
/* Caller is already at DISPATCH_LEVEL; the level is not changed. */
NDISAPI VOID NdisDprAcquireSpinLock(_Inout_ PNDIS_SPIN_LOCK SpinLock);
NDISAPI VOID NdisDprReleaseSpinLock(_Inout_ PNDIS_SPIN_LOCK SpinLock);

/* ---- checked-mode call sites (see wdm.h) ---- */
NDISAPI VOID __libndis_fast_NdisAllocateBuffer(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer,
                                               NDIS_HANDLE PoolHandle, PVOID VirtualAddress,
                                               UINT Length);
NDISAPI VOID __libndis_fast_NdisCopyBuffer(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer,
                                           NDIS_HANDLE PoolHandle, PVOID MemoryDescriptor,
                                           UINT Offset, UINT Length);
NDISAPI VOID __libndis_fast_NdisFreeBuffer(PNDIS_BUFFER Buffer);
NDISAPI VOID __libndis_fast_NdisAllocatePacket(PNDIS_STATUS Status, PNDIS_PACKET *Packet,
                                               NDIS_HANDLE PoolHandle);
NDISAPI VOID __libndis_fast_NdisFreePacket(PNDIS_PACKET Packet);
NDISAPI VOID __libndis_fast_NdisChainBufferAtFront(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer);
NDISAPI VOID __libndis_fast_NdisChainBufferAtBack(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer);
NDISAPI VOID __libndis_fast_NdisUnchainBufferAtFront(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer);
NDISAPI VOID __libndis_fast_NdisUnchainBufferAtBack(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer);
NDISAPI VOID __libndis_at_NdisAllocateBuffer(const char *File, int Line, PNDIS_STATUS Status,
                                             PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                                             PVOID VirtualAddress, UINT Length);
NDISAPI VOID __libndis_at_NdisCopyBuffer(const char *File, int Line, PNDIS_STATUS Status,
                                         PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                                         PVOID MemoryDescriptor, UINT Offset, UINT Length);
NDISAPI VOID __libndis_at_NdisFreeBuffer(const char *File, int Line, PNDIS_BUFFER Buffer);
NDISAPI VOID __libndis_at_NdisAllocatePacket(const char *File, int Line, PNDIS_STATUS Status,
                                             PNDIS_PACKET *Packet, NDIS_HANDLE PoolHandle);
NDISAPI VOID __libndis_at_NdisFreePacket(const char *File, int Line, PNDIS_PACKET Packet);
NDISAPI VOID __libndis_at_NdisChainBufferAtFront(const char *File, int Line, PNDIS_PACKET Packet,
                                                 PNDIS_BUFFER Buffer);
NDISAPI VOID __libndis_at_NdisChainBufferAtBack(const char *File, int Line, PNDIS_PACKET Packet,
                                                PNDIS_BUFFER Buffer);
NDISAPI VOID __libndis_at_NdisUnchainBufferAtFront(const char *File, int Line, PNDIS_PACKET Packet,
                                                   PNDIS_BUFFER *Buffer);
NDISAPI VOID __libndis_at_NdisUnchainBufferAtBack(const char *File, int Line, PNDIS_PACKET Packet,
                                                  PNDIS_BUFFER *Buffer);
#if !defined(LIBNDIS_NO_CALL_SITES) && !defined(LIBNDIS_BUILDING)
#define NdisAllocateBufferPool(...) (__LIBNDIS_AT(), NdisAllocateBufferPool(__VA_ARGS__))
#define NdisFreeBufferPool(...) (__LIBNDIS_AT(), NdisFreeBufferPool(__VA_ARGS__))
#define NdisAllocateBuffer(...) __LIBNDIS_CALL(NdisAllocateBuffer, __VA_ARGS__)
#define NdisCopyBuffer(...) __LIBNDIS_CALL(NdisCopyBuffer, __VA_ARGS__)
#define NdisFreeBuffer(...) __LIBNDIS_CALL(NdisFreeBuffer, __VA_ARGS__)
#define NdisAdjustBufferLength(...) (__LIBNDIS_AT(), NdisAdjustBufferLength(__VA_ARGS__))
#define NdisAllocatePacketPool(...) (__LIBNDIS_AT(), NdisAllocatePacketPool(__VA_ARGS__))
#define NdisAllocatePacketPoolEx(...) (__LIBNDIS_AT(), NdisAllocatePacketPoolEx(__VA_ARGS__))
#define NdisFreePacketPool(...) (__LIBNDIS_AT(), NdisFreePacketPool(__VA_ARGS__))
#define NdisAllocatePacket(...) __LIBNDIS_CALL(NdisAllocatePacket, __VA_ARGS__)
#define NdisDprAllocatePacket(...) (__LIBNDIS_AT(), NdisDprAllocatePacket(__VA_ARGS__))
#define NdisDprAllocatePacketNonInterlocked(...) \
    (__LIBNDIS_AT(), NdisDprAllocatePacketNonInterlocked(__VA_ARGS__))
#define NdisFreePacket(...) __LIBNDIS_CALL(NdisFreePacket, __VA_ARGS__)
#define NdisDprFreePacket(...) (__LIBNDIS_AT(), NdisDprFreePacket(__VA_ARGS__))
#define NdisDprFreePacketNonInterlocked(...) \
    (__LIBNDIS_AT(), NdisDprFreePacketNonInterlocked(__VA_ARGS__))
#define NdisChainBufferAtFront(...) __LIBNDIS_CALL(NdisChainBufferAtFront, __VA_ARGS__)
#define NdisChainBufferAtBack(...) __LIBNDIS_CALL(NdisChainBufferAtBack, __VA_ARGS__)
#define NdisUnchainBufferAtFront(...) __LIBNDIS_CALL(NdisUnchainBufferAtFront, __VA_ARGS__)
#define NdisUnchainBufferAtBack(...) __LIBNDIS_CALL(NdisUnchainBufferAtBack, __VA_ARGS__)
#define NdisQueryPacket(...) (__LIBNDIS_AT(), NdisQueryPacket(__VA_ARGS__))
#define NdisQueryPacketLength(...) (__LIBNDIS_AT(), NdisQueryPacketLength(__VA_ARGS__))
#define NdisCopyFromPacketToPacket(...) (__LIBNDIS_AT(), NdisCopyFromPacketToPacket(__VA_ARGS__))
#define NdisCopyFromPacketToPacketSafe(...) \
    (__LIBNDIS_AT(), NdisCopyFromPacketToPacketSafe(__VA_ARGS__))
#define NdisAllocateMemoryWithTag(...) (__LIBNDIS_AT(), NdisAllocateMemoryWithTag(__VA_ARGS__))
#define NdisAllocateMemory(...) (__LIBNDIS_AT(), NdisAllocateMemory(__VA_ARGS__))
#define NdisFreeMemory(...) (__LIBNDIS_AT(), NdisFreeMemory(__VA_ARGS__))
#define NdisAcquireSpinLock(...) (__LIBNDIS_AT(), NdisAcquireSpinLock(__VA_ARGS__))
#define NdisReleaseSpinLock(...) (__LIBNDIS_AT(), NdisReleaseSpinLock(__VA_ARGS__))
#define NdisDprAcquireSpinLock(...) (__LIBNDIS_AT(), NdisDprAcquireSpinLock(__VA_ARGS__))
#define NdisDprReleaseSpinLock(...) (__LIBNDIS_AT(), NdisDprReleaseSpinLock(__VA_ARGS__))
#endif

#ifdef __cplusplus
}
#endif

#endif /* LIBNDIS_NDIS_H */
