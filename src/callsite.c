/* SPDX-License-Identifier: MIT */
/* callsite.c - the checked-mode entries of the hot calls. While the verifier is on, the
 * <ndis.h> and <wdm.h> macros call these with the caller's __FILE__ and __LINE__; they record
 * the site for the reports and make the WDK-named call, which routes to the verifier; the buffer
 * calls, the hottest under the verifier, go straight to its entries that take the site as
 * arguments. One call with the site as arguments, rather than a site-recording call followed by
 * the real one, keeps the cold branch that every call site carries small: the driver's code
 * around the hot call is what it costs. */
#include "ndis.h"
#include "verifier.h"
#include "wdm.h"

NDISAPI VOID __libndis_at_NdisAllocateBuffer(const char *File, int Line, PNDIS_STATUS Status,
                                             PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                                             PVOID VirtualAddress, UINT Length)
{
    verifier_buffer_allocate_at(File, Line, Status, Buffer, PoolHandle, VirtualAddress, Length);
}

NDISAPI VOID __libndis_at_NdisCopyBuffer(const char *File, int Line, PNDIS_STATUS Status,
                                         PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                                         PVOID MemoryDescriptor, UINT Offset, UINT Length)
{
    verifier_buffer_copy_at(File, Line, Status, Buffer, PoolHandle, MemoryDescriptor, Offset,
                            Length);
}

NDISAPI VOID __libndis_at_NdisFreeBuffer(const char *File, int Line, PNDIS_BUFFER Buffer)
{
    verifier_buffer_free_at(File, Line, Buffer, "NdisFreeBuffer");
}

NDISAPI VOID __libndis_at_NdisAllocatePacket(const char *File, int Line, PNDIS_STATUS Status,
                                             PNDIS_PACKET *Packet, NDIS_HANDLE PoolHandle)
{
    __libndis_set_site(File, Line);
    NdisAllocatePacket(Status, Packet, PoolHandle);
}

NDISAPI VOID __libndis_at_NdisFreePacket(const char *File, int Line, PNDIS_PACKET Packet)
{
    __libndis_set_site(File, Line);
    NdisFreePacket(Packet);
}

NDISAPI VOID __libndis_at_NdisChainBufferAtFront(const char *File, int Line, PNDIS_PACKET Packet,
                                                 PNDIS_BUFFER Buffer)
{
    __libndis_set_site(File, Line);
    NdisChainBufferAtFront(Packet, Buffer);
}

NDISAPI VOID __libndis_at_NdisChainBufferAtBack(const char *File, int Line, PNDIS_PACKET Packet,
                                                PNDIS_BUFFER Buffer)
{
    __libndis_set_site(File, Line);
    NdisChainBufferAtBack(Packet, Buffer);
}

NDISAPI VOID __libndis_at_NdisUnchainBufferAtFront(const char *File, int Line, PNDIS_PACKET Packet,
                                                   PNDIS_BUFFER *Buffer)
{
    __libndis_set_site(File, Line);
    NdisUnchainBufferAtFront(Packet, Buffer);
}

NDISAPI VOID __libndis_at_NdisUnchainBufferAtBack(const char *File, int Line, PNDIS_PACKET Packet,
                                                  PNDIS_BUFFER *Buffer)
{
    __libndis_set_site(File, Line);
    NdisUnchainBufferAtBack(Packet, Buffer);
}

LIBNDIS_API PMDL NTAPI __libndis_at_IoAllocateMdl(const char *File, int Line, PVOID VirtualAddress,
                                                  ULONG Length, BOOLEAN SecondaryBuffer,
                                                  BOOLEAN ChargeQuota, PIRP Irp)
{
    __libndis_set_site(File, Line);
    return IoAllocateMdl(VirtualAddress, Length, SecondaryBuffer, ChargeQuota, Irp);
}

LIBNDIS_API VOID NTAPI __libndis_at_IoFreeMdl(const char *File, int Line, PMDL Mdl)
{
    verifier_buffer_free_at(File, Line, Mdl, "IoFreeMdl");
}
