/* SPDX-License-Identifier: MIT */
/* wdm.h - the kernel subset that <ndis.h> builds on: IRQL, spin locks, page arithmetic and the
 * MDL with its Mm/Io helpers, with WDK names, layouts and semantics. Every MDL the library makes
 * is "nonpaged" (decision 5): mapping never fails unless fault injection asks it to. */
#ifndef LIBNDIS_WDM_H
#define LIBNDIS_WDM_H

#include "ntdef.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IRQL (emulated per thread, decision 22) ---- */
typedef UCHAR KIRQL, *PKIRQL;

#define PASSIVE_LEVEL 0
#define LOW_LEVEL 0
#define APC_LEVEL 1
#define DISPATCH_LEVEL 2
#if UINTPTR_MAX > 0xFFFFFFFFu
#define HIGH_LEVEL 15
#else
#define HIGH_LEVEL 31
#endif

LIBNDIS_API KIRQL NTAPI KeGetCurrentIrql(VOID);
LIBNDIS_API KIRQL NTAPI KfRaiseIrql(_In_ KIRQL NewIrql);
LIBNDIS_API VOID NTAPI KeLowerIrql(_In_ KIRQL NewIrql);
LIBNDIS_API KIRQL NTAPI KeRaiseIrqlToDpcLevel(VOID);
/* KeRaiseIrql is a statement-style macro in the WDK: the old level goes through a pointer. */
#define KeRaiseIrql(NewIrql, OldIrql) (*(OldIrql) = KfRaiseIrql(NewIrql))

/* ---- kernel spin locks: a real lock on the pointer-sized word (decision 23) ---- */
typedef ULONG_PTR KSPIN_LOCK, *PKSPIN_LOCK;

LIBNDIS_API VOID NTAPI KeInitializeSpinLock(_Out_ PKSPIN_LOCK SpinLock);
LIBNDIS_API KIRQL NTAPI KfAcquireSpinLock(_Inout_ PKSPIN_LOCK SpinLock);
LIBNDIS_API VOID NTAPI KfReleaseSpinLock(_Inout_ PKSPIN_LOCK SpinLock, _In_ KIRQL NewIrql);
LIBNDIS_API VOID NTAPI KeAcquireSpinLockAtDpcLevel(_Inout_ PKSPIN_LOCK SpinLock);
LIBNDIS_API VOID NTAPI KeReleaseSpinLockFromDpcLevel(_Inout_ PKSPIN_LOCK SpinLock);
#define KeAcquireSpinLock(SpinLock, OldIrql) (*(OldIrql) = KfAcquireSpinLock(SpinLock))
#define KeReleaseSpinLock(SpinLock, NewIrql) KfReleaseSpinLock((SpinLock), (NewIrql))

/* ---- pages (decision 3: the Windows values whatever the host page size) ---- */
#define PAGE_SIZE 0x1000
#define PAGE_SHIFT 12

typedef ULONG_PTR PFN_NUMBER, *PPFN_NUMBER;

#define BYTE_OFFSET(Va) ((ULONG)((LONG_PTR)(Va) & (PAGE_SIZE - 1)))
#define PAGE_ALIGN(Va) ((PVOID)((ULONG_PTR)(Va) & ~((ULONG_PTR)PAGE_SIZE - 1)))
#define ROUND_TO_PAGES(Size) \
    (((ULONG_PTR)(Size) + PAGE_SIZE - 1) & ~((ULONG_PTR)PAGE_SIZE - 1))
#define BYTES_TO_PAGES(Size) \
    ((ULONG)((ULONG)(Size) >> PAGE_SHIFT) + (((ULONG)(Size) & (PAGE_SIZE - 1)) != 0))
/* Whole pages of Size, plus the pages the two sub-page remainders add: no intermediate sum can
 * overflow for any Size up to MAXULONG, unlike the naive ceil((offset + Size) / PAGE_SIZE). */
#define ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Size)                                   \
    ((ULONG)((((ULONG_PTR)(Size)) >> PAGE_SHIFT) +                                 \
             ((BYTE_OFFSET(Va) + ((ULONG_PTR)(Size) & (PAGE_SIZE - 1)) + PAGE_SIZE - 1) \
              >> PAGE_SHIFT)))
#define COMPUTE_PAGES_SPANNED(Va, Size) ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Size)

/* ---- the MDL (NDIS_BUFFER is this structure) ---- */
struct _EPROCESS;
struct _IRP;
typedef struct _EPROCESS *PEPROCESS;
typedef struct _IRP *PIRP;

typedef struct _MDL {
    struct _MDL *Next;
    CSHORT Size;           /* bytes of this MDL including its PFN array */
    CSHORT MdlFlags;
    struct _EPROCESS *Process;
    PVOID MappedSystemVa;  /* first data byte, once mapped or built for nonpaged pool */
    PVOID StartVa;         /* page-aligned base of the described range */
    ULONG ByteCount;
    ULONG ByteOffset;      /* offset of the first byte within the first page */
} MDL, *PMDL;

#if UINTPTR_MAX > 0xFFFFFFFFu
_Static_assert(sizeof(MDL) == 0x30, "MDL is 48 bytes on x64");
_Static_assert(offsetof(MDL, Size) == 0x08, "MDL.Size");
_Static_assert(offsetof(MDL, MdlFlags) == 0x0A, "MDL.MdlFlags");
_Static_assert(offsetof(MDL, Process) == 0x10, "MDL.Process");
_Static_assert(offsetof(MDL, MappedSystemVa) == 0x18, "MDL.MappedSystemVa");
_Static_assert(offsetof(MDL, StartVa) == 0x20, "MDL.StartVa");
_Static_assert(offsetof(MDL, ByteCount) == 0x28, "MDL.ByteCount");
_Static_assert(offsetof(MDL, ByteOffset) == 0x2C, "MDL.ByteOffset");
#else
_Static_assert(sizeof(MDL) == 0x1C, "MDL is 28 bytes on x86");
_Static_assert(offsetof(MDL, Size) == 0x04, "MDL.Size");
_Static_assert(offsetof(MDL, MdlFlags) == 0x06, "MDL.MdlFlags");
_Static_assert(offsetof(MDL, Process) == 0x08, "MDL.Process");
_Static_assert(offsetof(MDL, MappedSystemVa) == 0x0C, "MDL.MappedSystemVa");
_Static_assert(offsetof(MDL, StartVa) == 0x10, "MDL.StartVa");
_Static_assert(offsetof(MDL, ByteCount) == 0x14, "MDL.ByteCount");
_Static_assert(offsetof(MDL, ByteOffset) == 0x18, "MDL.ByteOffset");
#endif

#define MDL_MAPPED_TO_SYSTEM_VA 0x0001
#define MDL_PAGES_LOCKED 0x0002
#define MDL_SOURCE_IS_NONPAGED_POOL 0x0004
#define MDL_ALLOCATED_FIXED_SIZE 0x0008
#define MDL_PARTIAL 0x0010
#define MDL_PARTIAL_HAS_BEEN_MAPPED 0x0020
#define MDL_IO_PAGE_READ 0x0040
#define MDL_WRITE_OPERATION 0x0080
#define MDL_PARENT_MAPPED_SYSTEM_VA 0x0100
#define MDL_FREE_EXTRA_PTES 0x0200
#define MDL_DESCRIBES_AWE 0x0400
#define MDL_IO_SPACE 0x0800
#define MDL_NETWORK_HEADER 0x1000
#define MDL_MAPPING_CAN_FAIL 0x2000
#define MDL_ALLOCATED_MUST_SUCCEED 0x4000
#define MDL_INTERNAL 0x8000

typedef enum _MM_PAGE_PRIORITY {
    LowPagePriority = 0,
    NormalPagePriority = 16,
    HighPagePriority = 32
} MM_PAGE_PRIORITY;

/* Field readers: macros in the WDK, usable at any IRQL. */
#define MmGetMdlVirtualAddress(Mdl) ((PVOID)((PCHAR)((Mdl)->StartVa) + (Mdl)->ByteOffset))
#define MmGetMdlByteCount(Mdl) ((Mdl)->ByteCount)
#define MmGetMdlByteOffset(Mdl) ((Mdl)->ByteOffset)
#define MmGetMdlBaseVa(Mdl) ((Mdl)->StartVa)
#define MmGetMdlPfnArray(Mdl) ((PPFN_NUMBER)((PMDL)(Mdl) + 1))

LIBNDIS_API SIZE_T NTAPI MmSizeOfMdl(_In_opt_ PVOID Base, _In_ SIZE_T Length);

/* Prepares caller-owned storage of at least MmSizeOfMdl(BaseVa, Length) bytes; leaves Process
 * and MappedSystemVa alone, exactly as the WDK macro does. */
#define MmInitializeMdl(MemoryDescriptorList, BaseVa, Length)                               \
    do {                                                                                    \
        PMDL mmim_mdl_ = (PMDL)(MemoryDescriptorList);                                      \
        PVOID mmim_va_ = (PVOID)(BaseVa);                                                   \
        SIZE_T mmim_len_ = (SIZE_T)(Length);                                                \
        mmim_mdl_->Next = (PMDL)NULL;                                                       \
        mmim_mdl_->Size = (CSHORT)(sizeof(MDL) + sizeof(PFN_NUMBER) *                       \
                                   ADDRESS_AND_SIZE_TO_SPAN_PAGES(mmim_va_, mmim_len_));    \
        mmim_mdl_->MdlFlags = 0;                                                            \
        mmim_mdl_->StartVa = PAGE_ALIGN(mmim_va_);                                          \
        mmim_mdl_->ByteOffset = BYTE_OFFSET(mmim_va_);                                      \
        mmim_mdl_->ByteCount = (ULONG)mmim_len_;                                            \
    } while (0)

/* IoAllocateMdl: Irp must be NULL (there are no IRPs here; a non-NULL Irp fails with NULL).
 * A Length whose MmSizeOfMdl exceeds 65535, or a range that wraps the address space, fails. */
LIBNDIS_API PMDL NTAPI IoAllocateMdl(_In_opt_ PVOID VirtualAddress, _In_ ULONG Length,
                                     _In_ BOOLEAN SecondaryBuffer, _In_ BOOLEAN ChargeQuota,
                                     _Inout_opt_ PIRP Irp);
LIBNDIS_API VOID NTAPI IoFreeMdl(_In_ PMDL Mdl);
LIBNDIS_API VOID NTAPI IoBuildPartialMdl(_In_ PMDL SourceMdl, _Inout_ PMDL TargetMdl,
                                         _In_ PVOID VirtualAddress, _In_ ULONG Length);
LIBNDIS_API VOID NTAPI MmBuildMdlForNonPagedPool(_Inout_ PMDL MemoryDescriptorList);
LIBNDIS_API VOID NTAPI MmPrepareMdlForReuse(_Inout_ PMDL Mdl);
/* Macros in the WDK; functions here so that fault injection can make the Safe form fail. */
LIBNDIS_API PVOID NTAPI MmGetSystemAddressForMdlSafe(_Inout_ PMDL Mdl,
                                                     _In_ ULONG Priority);
LIBNDIS_API PVOID NTAPI MmGetSystemAddressForMdl(_Inout_ PMDL Mdl);

/* ---- checked-mode call sites (docs/verifier.md) ----
 * While the verifier is on, each call below first records its __FILE__ and __LINE__ for the
 * reports; while it is off this costs a load and a predictable branch. Define
 * LIBNDIS_NO_CALL_SITES before including to call the functions directly (for instance in code
 * that declares these functions itself). */
extern LIBNDIS_API unsigned char __libndis_verifying;
LIBNDIS_API void __libndis_set_site(const char *file, int line);
#define __LIBNDIS_AT() \
    (__builtin_expect(__libndis_verifying, 0) ? __libndis_set_site(__FILE__, __LINE__) : (void)0)
/* The hot calls branch at the call site instead: one call to a checked entry that takes the site
 * as arguments, or straight to an entry that does no check at all, so that the verifier off costs
 * them one compare and branch and the cold branch stays a single call. */
#ifdef LIBNDIS_VERIFIER_COMPILED_OUT
#define __LIBNDIS_CALL(fn, ...) __libndis_fast_##fn(__VA_ARGS__)
#else
#define __LIBNDIS_CALL(fn, ...)                                                         \
    (__builtin_expect(__libndis_verifying, 0)                                           \
         ? __libndis_at_##fn(__FILE__, __LINE__, __VA_ARGS__)                           \
         : __libndis_fast_##fn(__VA_ARGS__))
#endif
LIBNDIS_API PMDL NTAPI __libndis_fast_IoAllocateMdl(PVOID VirtualAddress, ULONG Length,
                                                    BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota,
                                                    PIRP Irp);
LIBNDIS_API VOID NTAPI __libndis_fast_IoFreeMdl(PMDL Mdl);
LIBNDIS_API PMDL NTAPI __libndis_at_IoAllocateMdl(const char *File, int Line, PVOID VirtualAddress,
                                                  ULONG Length, BOOLEAN SecondaryBuffer,
                                                  BOOLEAN ChargeQuota, PIRP Irp);
LIBNDIS_API VOID NTAPI __libndis_at_IoFreeMdl(const char *File, int Line, PMDL Mdl);
#if !defined(LIBNDIS_NO_CALL_SITES) && !defined(LIBNDIS_BUILDING)
#define IoAllocateMdl(...) __LIBNDIS_CALL(IoAllocateMdl, __VA_ARGS__)
#define IoFreeMdl(...) __LIBNDIS_CALL(IoFreeMdl, __VA_ARGS__)
#define MmGetSystemAddressForMdlSafe(...) (__LIBNDIS_AT(), MmGetSystemAddressForMdlSafe(__VA_ARGS__))
#define KfAcquireSpinLock(...) (__LIBNDIS_AT(), KfAcquireSpinLock(__VA_ARGS__))
#define KfReleaseSpinLock(...) (__LIBNDIS_AT(), KfReleaseSpinLock(__VA_ARGS__))
#define KeAcquireSpinLockAtDpcLevel(...) (__LIBNDIS_AT(), KeAcquireSpinLockAtDpcLevel(__VA_ARGS__))
#define KeReleaseSpinLockFromDpcLevel(...) \
    (__LIBNDIS_AT(), KeReleaseSpinLockFromDpcLevel(__VA_ARGS__))
#endif

/* ---- memory helpers (Rtl*) ---- */
#define RtlCopyMemory(Destination, Source, Length) memcpy((Destination), (Source), (Length))
#define RtlMoveMemory(Destination, Source, Length) memmove((Destination), (Source), (Length))
#define RtlFillMemory(Destination, Length, Fill) memset((Destination), (Fill), (Length))
#define RtlZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#define RtlEqualMemory(Source1, Source2, Length) (!memcmp((Source1), (Source2), (Length)))

#ifdef __cplusplus
}
#endif

#endif /* LIBNDIS_WDM_H */
