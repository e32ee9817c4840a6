/* SPDX-License-Identifier: MIT */
/* verifier.h - how the other modules hand a call to the checked mode. Every public entry point
 * starts with `if (VERIFYING()) return verifier_...(...)`: one load and one predictable branch
 * while the verifier is off (decision 25). The checked versions live in verifier.c and call the
 * modules' *_raw functions below, which do the work without any check. */
#ifndef LIBNDIS_VERIFIER_H
#define LIBNDIS_VERIFIER_H

#include "ndis.h"

#include "pool.h"

/* Exported so that the <ndis.h> call-site macros can test it in the caller. */
extern LIBNDIS_API unsigned char __libndis_verifying;
/* The library's own copy, written together with it: a hidden variable is one RIP-relative
 * compare, where the exported one costs an address load first (and could be a copy-relocated
 * duplicate in a non-PIE program, which is why this is not an alias). */
extern unsigned char verifier_on;
#ifdef LIBNDIS_VERIFIER_COMPILED_OUT
/* Benchmark-only build (cmake -DLIBNDIS_BENCH_NO_VERIFIER=ON): the reference against which the
 * cost of the verifier's branch is measured. Never installed. */
#define VERIFYING() 0
#else
#define VERIFYING() POOL_UNLIKELY(verifier_on)
#endif

/* ---- the unchecked work, for verifier.c ---- */
void buffer_pool_allocate_raw(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle, UINT N);
void buffer_pool_free_raw(NDIS_HANDLE PoolHandle);
struct pool *buffer_pool_of(NDIS_HANDLE PoolHandle);
void buffer_allocate_raw(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, struct pool *p, PVOID va,
                         UINT len);
void buffer_copy_raw(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, struct pool *p, PMDL src,
                     UINT off, UINT len);
PMDL mdl_io_allocate_raw(PVOID va, ULONG len, PIRP irp);
PVOID mdl_map_raw(PMDL m);
/* The pool a descriptor made by the library belongs to, NULL for any other MDL: read from the
 * hidden header, so only for descriptors the registry knows. */
struct pool *mdl_pool_of(PMDL m);
/* Puts a descriptor the verifier held in quarantine back into its pool. */
void mdl_release_quarantined(PMDL m, uint32_t live_state);
uint32_t mdl_state_of(PMDL m);
void mdl_set_state(PMDL m, uint32_t state);
size_t mdl_storage_bytes(PMDL m); /* MDL + PFN array the descriptor owns */

struct pool *packet_pool_of(NDIS_HANDLE PoolHandle);
void packet_pool_allocate_raw(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle, UINT N, UINT Overflow,
                              UINT ProtocolReservedLength);
void packet_pool_free_raw(NDIS_HANDLE PoolHandle);
void packet_allocate_raw(PNDIS_STATUS Status, PNDIS_PACKET *Packet, NDIS_HANDLE PoolHandle);
uint32_t packet_state_of(PNDIS_PACKET p);
void packet_set_state(PNDIS_PACKET p, uint32_t state);
size_t packet_size_of(PNDIS_PACKET p);
struct pool *packet_owner_pool(PNDIS_PACKET p);
void packet_release_quarantined(PNDIS_PACKET p);
void packet_query_raw(PNDIS_PACKET Packet, PUINT Phys, PUINT Count, PNDIS_BUFFER *First,
                      PUINT Total);
UINT packet_copy_raw(PNDIS_PACKET Dst, UINT DstOff, UINT N, PNDIS_PACKET Src, UINT SrcOff,
                     bool safe, ULONG Priority);
void packet_chain_front_raw(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer);
void packet_chain_back_raw(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer);
void packet_unchain_front_raw(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer);
void packet_unchain_back_raw(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer);
void packet_free_raw(PNDIS_PACKET Packet);

/* memory.c: a block with `guard` extra bytes after the caller's Length */
NDIS_STATUS mem_allocate_raw(PVOID *VirtualAddress, UINT Length, ULONG Tag, UINT Flags,
                             UINT guard);
void mem_free_raw(PVOID VirtualAddress);
bool mem_info(PVOID VirtualAddress, ULONG *tag, ULONG *length, ULONG *flags, bool *live);
void mem_mark_dead(PVOID VirtualAddress); /* the block stays allocated: quarantine */

void spin_acquire_raw(PKSPIN_LOCK lock);
void spin_release_raw(PKSPIN_LOCK lock);

/* ---- the checked versions, in verifier.c ---- */
unsigned verifier_quarantined(struct pool *pool); /* objects of `pool` held in quarantine */
enum verifier_lock_kind { VLOCK_NDIS, VLOCK_NDIS_DPR, VLOCK_KE, VLOCK_KE_DPC };

void verifier_buffer_pool_allocate(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle, UINT N);
void verifier_buffer_pool_free(NDIS_HANDLE PoolHandle);
void verifier_buffer_allocate(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                              PVOID va, UINT len);
void verifier_buffer_copy(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                          PVOID src, UINT off, UINT len);
void verifier_buffer_free(PNDIS_BUFFER Buffer, const char *function);
/* The same for the <ndis.h> call-site entries (__libndis_at_*): the site comes as arguments
 * rather than through __libndis_set_site, and a verifier switched off in the meantime gives the
 * unchecked call. `function` is "NdisFreeBuffer" or "IoFreeMdl". */
void verifier_buffer_allocate_at(const char *file, int line, PNDIS_STATUS Status,
                                 PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle, PVOID va, UINT len);
void verifier_buffer_copy_at(const char *file, int line, PNDIS_STATUS Status,
                             PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle, PVOID src, UINT off,
                             UINT len);
void verifier_buffer_free_at(const char *file, int line, PNDIS_BUFFER Buffer,
                             const char *function);
void verifier_buffer_adjust(PNDIS_BUFFER Buffer, UINT Length);
PMDL verifier_io_allocate(PVOID va, ULONG len, PIRP irp);
PVOID verifier_map_safe(PMDL m);

void verifier_packet_pool_allocate(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle, UINT N,
                                   UINT Overflow, UINT ProtocolReservedLength, const char *function);
void verifier_packet_pool_free(NDIS_HANDLE PoolHandle);
void verifier_packet_allocate(PNDIS_STATUS Status, PNDIS_PACKET *Packet, NDIS_HANDLE PoolHandle,
                              const char *function, bool dpr);
void verifier_packet_free(PNDIS_PACKET Packet, const char *function, bool dpr);
void verifier_packet_chain(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer, bool front);
void verifier_packet_unchain(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer, bool front);
void verifier_packet_query(PNDIS_PACKET Packet, PUINT Phys, PUINT Count, PNDIS_BUFFER *First,
                           PUINT Total, const char *function);
UINT verifier_packet_copy(PNDIS_PACKET Dst, UINT DstOff, UINT N, PNDIS_PACKET Src, UINT SrcOff,
                          bool safe, ULONG Priority, const char *function);

NDIS_STATUS verifier_memory_allocate(PVOID *VirtualAddress, UINT Length, ULONG Tag, UINT Flags,
                                     const char *function);
void verifier_memory_free(PVOID VirtualAddress, UINT Length, UINT Flags);

void verifier_lock_acquire(PKSPIN_LOCK lock, enum verifier_lock_kind kind, const char *function);
void verifier_lock_release(PKSPIN_LOCK lock, enum verifier_lock_kind kind, const char *function);

#endif /* LIBNDIS_VERIFIER_H */
