/* SPDX-License-Identifier: MIT */
/* ndis.h - the NDIS 5.x buffer, memory and spin-lock API with WDK names, types and semantics.
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

/* Always NDIS_STATUS_SUCCESS. The handle is opaque; NULL is a valid handle (the default pool),
 * and is what an out-of-memory pool creation returns. */
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

#ifdef __cplusplus
}
#endif

#endif /* LIBNDIS_NDIS_H */
