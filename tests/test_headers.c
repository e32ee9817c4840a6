/* SPDX-License-Identifier: MIT */
/* test_headers.c - a small "driver" written the way WDK sources are (SAL 1 and 2, IN/OUT,
 * NTAPI/__stdcall/__cdecl, C_ASSERT, statement macros under unbraced if/else) that must compile
 * against <ndis.h> alone with every -Wall/-Wextra warning an error; then constants and types. */

/* Warnings are errors for this file and for the public headers it includes. */
#pragma GCC diagnostic error "-Wall"
#pragma GCC diagnostic error "-Wextra"

#include <ndis.h>

/* Decision 26: <ndis.h> shows WDK names only. */
#if defined(LIBNDIS_LIBNDIS_H)
#error "<ndis.h> pulled in <libndis.h>"
#endif
#if defined(LIBNDIS_TAG) || defined(LIBNDIS_DEFAULT_MEMORY_TAG) || \
    defined(LIBNDIS_VERSION_MAJOR) || defined(LIBNDIS_ENV_STRICT_POOLS)
#error "<ndis.h> defines a libndis extension macro"
#endif

/* If <ndis.h> declared any extension, these file-scope objects would be redeclarations of a
 * different kind of symbol and the file would not compile. */
static const int LibNdisQueryBufferPool = 1;
static const int LibNdisSetBufferPoolStrict = 2;
static const int LibNdisLiveBufferPools = 3;
static const int LibNdisQueryMemoryTag = 4;
static const int LibNdisEnumerateMemoryTags = 5;
static const int libndis_version = 6;
static const int LIBNDIS_POOL_INFO = 7;
static const int LIBNDIS_TAG_USAGE = 8;

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* ---- the driver part ---- */

#define ADAPTER_SIGNATURE 0x41444150u /* 'ADAP' */
#define ADAPTER_DATA_SIZE (3 * PAGE_SIZE)

typedef struct _ADAPTER {
    ULONG Signature;
    NDIS_SPIN_LOCK Lock;
    LIST_ENTRY Link;
    _Field_size_bytes_(ADAPTER_DATA_SIZE) PUCHAR Data;
    PNDIS_BUFFER Buffer;
    ULONG Touches;
} ADAPTER, *PADAPTER;

/* Compile-time LLP64 rules (decision 2), at file scope as drivers put them. */
C_ASSERT(sizeof(ULONG) == 4);
C_ASSERT(sizeof(LONG) == 4);
C_ASSERT(sizeof(ULONG_PTR) == sizeof(void *));
C_ASSERT(sizeof(SIZE_T) == sizeof(void *));
C_ASSERT(sizeof(PFN_NUMBER) == sizeof(void *));
C_ASSERT(sizeof(LONGLONG) == 8);
C_ASSERT(sizeof(BOOLEAN) == 1);
C_ASSERT(sizeof(NDIS_STATUS) == sizeof(int));
C_ASSERT(FIELD_OFFSET(ADAPTER, Signature) == 0);

typedef VOID (NTAPI *ADAPTER_CALLBACK)(_In_ PADAPTER Adapter, _In_opt_ PVOID Context);
typedef ULONG (__stdcall *ADAPTER_COUNTER)(__in PADAPTER Adapter);

/* SAL 2 prototype, defined below with _Use_decl_annotations_. */
_IRQL_requires_max_(DISPATCH_LEVEL)
_Requires_lock_not_held_(Adapter->Lock)
static VOID NTAPI AdapterTouch(_Inout_ PADAPTER Adapter, _Out_ PULONG Touches,
                               _Inout_opt_ PULONG Extra);

/* SAL 1 prototype, as in WDK 6001/7600-era code. */
__drv_maxIRQL(DISPATCH_LEVEL)
__checkReturn
static NDIS_STATUS __stdcall AdapterQueryFirst(__in PADAPTER Adapter, __out PUINT Length,
                                               __out_opt PVOID *Address,
                                               __in_opt PVOID Reserved);

/* Old-style decorations. */
static ULONG __cdecl AdapterChecksum(IN CONST UCHAR *Data, IN ULONG Length,
                                     OUT PULONG Carry OPTIONAL);

_Must_inspect_result_
_Success_(return == NDIS_STATUS_SUCCESS)
_IRQL_requires_(PASSIVE_LEVEL)
static NDIS_STATUS NTAPI AdapterInitialize(_Out_ PADAPTER Adapter,
                                           _In_reads_bytes_(Length) PUCHAR Data,
                                           _In_ ULONG Length);

__drv_raisesIRQL(DISPATCH_LEVEL)
__drv_savesIRQL
_IRQL_raises_(DISPATCH_LEVEL)
_IRQL_saves_
static KIRQL NTAPI AdapterRaise(VOID);

_Use_decl_annotations_
static VOID NTAPI AdapterTouch(PADAPTER Adapter, PULONG Touches, PULONG Extra)
{
    NdisAcquireSpinLock(&Adapter->Lock);
    Adapter->Touches++;
    *Touches = Adapter->Touches;
    NdisReleaseSpinLock(&Adapter->Lock);
    if (ARGUMENT_PRESENT(Extra))
        (*Extra)++;
}

static NDIS_STATUS __stdcall AdapterQueryFirst(__in PADAPTER Adapter, __out PUINT Length,
                                               __out_opt PVOID *Address,
                                               __in_opt PVOID Reserved)
{
    UNREFERENCED_PARAMETER(Reserved);
    if (Adapter->Buffer == NULL)
        return NDIS_STATUS_FAILURE;
    if (Address != NULL)
        NdisQueryBuffer(Adapter->Buffer, Address, Length);
    else
        NdisQueryBuffer(Adapter->Buffer, NULL, Length);
    return NDIS_STATUS_SUCCESS;
}

static ULONG __cdecl AdapterChecksum(IN CONST UCHAR *Data, IN ULONG Length,
                                     OUT PULONG Carry OPTIONAL)
{
    ULONG sum = 0;
    for (ULONG i = 0; i < Length; i++)
        sum += Data[i];
    if (ARGUMENT_PRESENT(Carry))
        *Carry = sum >> 16;
    return sum & 0xFFFF;
}

_Use_decl_annotations_
static NDIS_STATUS NTAPI AdapterInitialize(PADAPTER Adapter, PUCHAR Data, ULONG Length)
{
    NDIS_STATUS Status;
    NdisZeroMemory(Adapter, sizeof(*Adapter));
    Adapter->Signature = ADAPTER_SIGNATURE;
    Adapter->Data = Data;
    NdisAllocateSpinLock(&Adapter->Lock);
    Adapter->Link.Flink = Adapter->Link.Blink = &Adapter->Link;
    NdisAllocateBuffer(&Status, &Adapter->Buffer, NULL, Data + 100, Length - 100);
    return Status;
}

static KIRQL NTAPI AdapterRaise(VOID)
{
    KIRQL OldIrql;
    KeRaiseIrql(DISPATCH_LEVEL, &OldIrql);
    return OldIrql;
}

static VOID NTAPI CountCallback(_In_ PADAPTER Adapter, _In_opt_ PVOID Context)
{
    UNREFERENCED_PARAMETER(Adapter);
    (*(PULONG)Context)++;
}

static ULONG __stdcall CountTouches(__in PADAPTER Adapter)
{
    return Adapter->Touches;
}

static _Alignas(4096) UCHAR adapter_data[ADAPTER_DATA_SIZE];

/* ---- tests ---- */

static void no_extension_name_is_declared_by_ndis_h(void **state)
{
    UNREFERENCED_PARAMETER(state);
    /* Reaching here means the objects above compiled; read them so they are not dead code. */
    assert_int_equal(LibNdisQueryBufferPool + LibNdisSetBufferPoolStrict + LibNdisLiveBufferPools +
                         LibNdisQueryMemoryTag + LibNdisEnumerateMemoryTags + libndis_version +
                         LIBNDIS_POOL_INFO + LIBNDIS_TAG_USAGE,
                     36);
}

static void driver_functions_run_through_the_annotated_prototypes(void **state)
{
    UNREFERENCED_PARAMETER(state);
    ADAPTER Adapter;
    ULONG Touches = 0, Extra = 10;
    assert_int_equal(AdapterInitialize(&Adapter, adapter_data, 5100), NDIS_STATUS_SUCCESS);
    assert_non_null(Adapter.Buffer);

    AdapterTouch(&Adapter, &Touches, &Extra);
    assert_int_equal(Touches, 1);
    assert_int_equal(Extra, 11);
    AdapterTouch(&Adapter, &Touches, NULL);
    assert_int_equal(Touches, 2);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);

    UINT Length = 0;
    PVOID Address = NULL;
    assert_int_equal(AdapterQueryFirst(&Adapter, &Length, &Address, NULL), NDIS_STATUS_SUCCESS);
    assert_ptr_equal(Address, adapter_data + 100);
    assert_int_equal(Length, 5000);
    Length = 0;
    assert_int_equal(AdapterQueryFirst(&Adapter, &Length, NULL, NULL), NDIS_STATUS_SUCCESS);
    assert_int_equal(Length, 5000);

    static const UCHAR bytes[4] = { 0xFF, 0xFF, 0x01, 0x02 };
    ULONG Carry = 99;
    assert_int_equal(AdapterChecksum(bytes, 4, &Carry), 0x201);
    assert_int_equal(Carry, 0);
    assert_int_equal(AdapterChecksum(bytes, 2, NULL), 0x1FE);

    ADAPTER_CALLBACK Callback = CountCallback;
    ADAPTER_COUNTER Counter = CountTouches;
    ULONG Calls = 0;
    Callback(&Adapter, &Calls);
    assert_int_equal(Calls, 1);
    assert_int_equal(Counter(&Adapter), 2);

    KIRQL Old = AdapterRaise();
    assert_int_equal(Old, PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(Old);

    NdisFreeBuffer(Adapter.Buffer);
    NdisFreeSpinLock(&Adapter.Lock);
}

static void structure_helpers_behave_as_in_the_wdk(void **state)
{
    UNREFERENCED_PARAMETER(state);
    ADAPTER Adapter;
    PLIST_ENTRY Entry = &Adapter.Link;
    assert_ptr_equal(CONTAINING_RECORD(Entry, ADAPTER, Link), &Adapter);
    assert_ptr_equal(CONTAINING_RECORD(&Adapter.Lock, ADAPTER, Lock), &Adapter);
    assert_int_equal(FIELD_OFFSET(ADAPTER, Link), offsetof(ADAPTER, Link));
    assert_int_equal(sizeof(FIELD_OFFSET(ADAPTER, Link)), sizeof(LONG));
    assert_int_equal(RTL_FIELD_SIZE(ADAPTER, Lock), sizeof(NDIS_SPIN_LOCK));
    PVOID Absent = NULL;
    assert_false(ARGUMENT_PRESENT(Absent));
    assert_true(ARGUMENT_PRESENT(&Adapter));
    CONST ULONG Fixed = 5;
    C_ASSERT(sizeof(Fixed) == 4); /* block scope works too */
    assert_int_equal(Fixed, 5);
}

static void llp64_widths_hold_at_run_time(void **state)
{
    UNREFERENCED_PARAMETER(state);
    assert_int_equal(sizeof(ULONG), 4);
    assert_int_equal(sizeof(LONG), 4);
    assert_int_equal(sizeof(UINT), 4);
    assert_int_equal(sizeof(USHORT), 2);
    assert_int_equal(sizeof(ULONG_PTR), sizeof(void *));
    assert_int_equal(sizeof(SIZE_T), sizeof(void *));
    assert_int_equal(sizeof(PFN_NUMBER), sizeof(void *));
    assert_int_equal(sizeof(KSPIN_LOCK), sizeof(void *));
    assert_int_equal(sizeof(NDIS_HANDLE), sizeof(void *));
    assert_int_equal(sizeof(LONGLONG), 8);
    assert_int_equal(sizeof(ULONGLONG), 8);
    assert_int_equal(sizeof(BOOLEAN), 1);
    assert_int_equal(sizeof(KIRQL), 1);
    assert_true((ULONG)-1 > 0);
    assert_true((LONG)-1 < 0);
    assert_true((ULONG_PTR)-1 > 0);
    assert_int_equal(_Generic((NDIS_STATUS)0, int: 1, default: 0), 1);
    assert_int_equal(_Generic(NDIS_STATUS_FAILURE, int: 1, default: 0), 1);
    assert_int_equal(sizeof(NDIS_PHYSICAL_ADDRESS), 8);
    assert_int_equal(sizeof(LARGE_INTEGER), 8);
}

struct status_row {
    const char *name;
    NDIS_STATUS value;
    uint32_t expected; /* reference §1.4, typed in from the table, not from the header */
    int is_int;
};

#define ROW(name, expected) { #name, name, expected, _Generic((name), int: 1, default: 0) }

static void ndis_status_values_match_the_reference_table(void **state)
{
    UNREFERENCED_PARAMETER(state);
    const struct status_row rows[] = {
        ROW(NDIS_STATUS_SUCCESS, 0x00000000u),
        ROW(NDIS_STATUS_PENDING, 0x00000103u),
        ROW(NDIS_STATUS_NOT_RECOGNIZED, 0x00010001u),
        ROW(NDIS_STATUS_NOT_COPIED, 0x00010002u),
        ROW(NDIS_STATUS_NOT_ACCEPTED, 0x00010003u),
        ROW(NDIS_STATUS_CALL_ACTIVE, 0x00010007u),
        ROW(NDIS_STATUS_INDICATION_REQUIRED, 0x40230001u),
        ROW(NDIS_STATUS_BUFFER_OVERFLOW, 0x80000005u),
        ROW(NDIS_STATUS_NOT_RESETTABLE, 0x80010001u),
        ROW(NDIS_STATUS_SOFT_ERRORS, 0x80010003u),
        ROW(NDIS_STATUS_HARD_ERRORS, 0x80010004u),
        ROW(NDIS_STATUS_FAILURE, 0xC0000001u),
        ROW(NDIS_STATUS_INVALID_DEVICE_REQUEST, 0xC0000010u),
        ROW(NDIS_STATUS_RESOURCES, 0xC000009Au),
        ROW(NDIS_STATUS_NOT_SUPPORTED, 0xC00000BBu),
        ROW(NDIS_STATUS_NETWORK_UNREACHABLE, 0xC000023Cu),
        ROW(NDIS_STATUS_CLOSING, 0xC0010002u),
        ROW(NDIS_STATUS_BAD_VERSION, 0xC0010004u),
        ROW(NDIS_STATUS_BAD_CHARACTERISTICS, 0xC0010005u),
        ROW(NDIS_STATUS_ADAPTER_NOT_FOUND, 0xC0010006u),
        ROW(NDIS_STATUS_OPEN_FAILED, 0xC0010007u),
        ROW(NDIS_STATUS_DEVICE_FAILED, 0xC0010008u),
        ROW(NDIS_STATUS_MULTICAST_FULL, 0xC0010009u),
        ROW(NDIS_STATUS_MULTICAST_EXISTS, 0xC001000Au),
        ROW(NDIS_STATUS_MULTICAST_NOT_FOUND, 0xC001000Bu),
        ROW(NDIS_STATUS_REQUEST_ABORTED, 0xC001000Cu),
        ROW(NDIS_STATUS_RESET_IN_PROGRESS, 0xC001000Du),
        ROW(NDIS_STATUS_CLOSING_INDICATING, 0xC001000Eu),
        ROW(NDIS_STATUS_INVALID_PACKET, 0xC001000Fu),
        ROW(NDIS_STATUS_OPEN_LIST_FULL, 0xC0010010u),
        ROW(NDIS_STATUS_ADAPTER_NOT_READY, 0xC0010011u),
        ROW(NDIS_STATUS_ADAPTER_NOT_OPEN, 0xC0010012u),
        ROW(NDIS_STATUS_NOT_INDICATING, 0xC0010013u),
        ROW(NDIS_STATUS_INVALID_LENGTH, 0xC0010014u),
        ROW(NDIS_STATUS_INVALID_DATA, 0xC0010015u),
        ROW(NDIS_STATUS_BUFFER_TOO_SHORT, 0xC0010016u),
        ROW(NDIS_STATUS_INVALID_OID, 0xC0010017u),
        ROW(NDIS_STATUS_ADAPTER_REMOVED, 0xC0010018u),
        ROW(NDIS_STATUS_UNSUPPORTED_MEDIA, 0xC0010019u),
        ROW(NDIS_STATUS_GROUP_ADDRESS_IN_USE, 0xC001001Au),
        ROW(NDIS_STATUS_FILE_NOT_FOUND, 0xC001001Bu),
        ROW(NDIS_STATUS_ERROR_READING_FILE, 0xC001001Cu),
        ROW(NDIS_STATUS_ALREADY_MAPPED, 0xC001001Du),
        ROW(NDIS_STATUS_RESOURCE_CONFLICT, 0xC001001Eu),
        ROW(NDIS_STATUS_NO_CABLE, 0xC001001Fu),
        /* the NDIS 6 ones the reference lists for completeness */
        ROW(NDIS_STATUS_INVALID_PARAMETER, 0xC000000Du),
        ROW(NDIS_STATUS_INVALID_STATE, 0xC0000184u),
        ROW(NDIS_STATUS_PAUSED, 0xC023002Au),
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if ((uint32_t)rows[i].value != rows[i].expected || !rows[i].is_int)
            fail_msg("%s is 0x%08X (int: %d), reference says 0x%08X", rows[i].name,
                     (unsigned)rows[i].value, rows[i].is_int, (unsigned)rows[i].expected);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(rows[i].value, rows[j].value);
    }
}

static void ndis_status_aliases_and_sign(void **state)
{
    UNREFERENCED_PARAMETER(state);
    assert_int_equal(NDIS_STATUS_SUCCESS, STATUS_SUCCESS);
    assert_int_equal(NDIS_STATUS_PENDING, STATUS_PENDING);
    assert_int_equal(NDIS_STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_OVERFLOW);
    assert_int_equal(NDIS_STATUS_FAILURE, STATUS_UNSUCCESSFUL);
    assert_int_equal(NDIS_STATUS_RESOURCES, STATUS_INSUFFICIENT_RESOURCES);
    assert_int_equal(NDIS_STATUS_NOT_SUPPORTED, STATUS_NOT_SUPPORTED);
    /* Errors are negative ints, so NT_SUCCESS works on NDIS_STATUS as drivers use it. */
    assert_true(NDIS_STATUS_FAILURE < 0);
    assert_true(NT_SUCCESS(NDIS_STATUS_SUCCESS));
    assert_true(NT_SUCCESS(NDIS_STATUS_PENDING));
    assert_false(NT_SUCCESS(NDIS_STATUS_RESOURCES));
    assert_false(NT_SUCCESS(NDIS_STATUS_BUFFER_OVERFLOW));
}

static void irql_page_and_priority_constants(void **state)
{
    UNREFERENCED_PARAMETER(state);
    assert_int_equal(PASSIVE_LEVEL, 0);
    assert_int_equal(LOW_LEVEL, 0);
    assert_int_equal(APC_LEVEL, 1);
    assert_int_equal(DISPATCH_LEVEL, 2);
    assert_int_equal(HIGH_LEVEL, sizeof(void *) == 8 ? 15 : 31);
    assert_int_equal(PAGE_SIZE, 4096);
    assert_int_equal(PAGE_SHIFT, 12);
    assert_int_equal(1u << PAGE_SHIFT, PAGE_SIZE);
    assert_int_equal(LowPagePriority, 0);
    assert_int_equal(NormalPagePriority, 16);
    assert_int_equal(HighPagePriority, 32);
    assert_int_equal(NDIS_MEMORY_CONTIGUOUS, 1);
    assert_int_equal(NDIS_MEMORY_NONCACHED, 2);
}

/* File scope, as drivers keep it. */
static NDIS_PHYSICAL_ADDRESS HighestAcceptableMax = NDIS_PHYSICAL_ADDRESS_CONST(-1, -1);

static void large_integer_and_physical_address_views(void **state)
{
    UNREFERENCED_PARAMETER(state);
    assert_int_equal(HighestAcceptableMax.QuadPart, -1);
    assert_int_equal(HighestAcceptableMax.LowPart, 0xFFFFFFFFu);
    assert_int_equal(HighestAcceptableMax.HighPart, -1);

    NDIS_PHYSICAL_ADDRESS pa = NDIS_PHYSICAL_ADDRESS_CONST(0x12345678, 0x9);
    assert_int_equal(pa.LowPart, 0x12345678u);
    assert_int_equal(pa.HighPart, 9);
    assert_int_equal(pa.u.LowPart, 0x12345678u);
    assert_int_equal(pa.u.HighPart, 9);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    assert_int_equal(pa.QuadPart, 0x912345678LL);

    LARGE_INTEGER li;
    li.QuadPart = -2LL * 0x100000000LL + 0x80000001LL;
    assert_int_equal(li.LowPart, 0x80000001u);
    assert_int_equal(li.HighPart, -2);
    assert_int_equal(li.u.LowPart, 0x80000001u);
    assert_int_equal(li.u.HighPart, -2);
    li.u.HighPart = 0x7FFFFFFF;
    li.LowPart = 0xFFFFFFFFu;
    assert_int_equal(li.QuadPart, MAXLONGLONG);
#endif
    assert_int_equal(offsetof(LARGE_INTEGER, LowPart), 0);
    assert_int_equal(offsetof(LARGE_INTEGER, HighPart), 4);
    assert_int_equal(offsetof(LARGE_INTEGER, u.HighPart), 4);
}

/* Each macro used as the lone statement of an if and of its else, without braces: only a
 * single-statement expansion compiles (and pairs the else) correctly. */
static void statement_macros_work_under_unbraced_if_else(void **state)
{
    UNREFERENCED_PARAMETER(state);
    PUCHAR va = adapter_data + 100;
    const UINT len = 5000;
    PNDIS_BUFFER first = NULL, second = NULL, next = NULL;
    NDIS_STATUS Status;
    NdisAllocateBuffer(&Status, &first, NULL, va, len);
    assert_int_equal(Status, NDIS_STATUS_SUCCESS);
    NdisAllocateBuffer(&Status, &second, NULL, adapter_data, 0);
    assert_int_equal(Status, NDIS_STATUS_SUCCESS);
    first->Next = second;

    for (int pass = 0; pass < 2; pass++) {
        PUCHAR got_va = NULL;
        UINT got_len = 0, offset = 0, pages = 0;
        if (pass == 0)
            NdisQueryBuffer(first, &got_va, &got_len);
        else
            NdisQueryBufferOffset(first, &offset, &got_len);
        assert_int_equal(got_len, len);
        if (pass == 0)
            assert_ptr_equal(got_va, va);
        else
            assert_int_equal(offset, 100);

        if (pass == 0)
            NdisGetNextBuffer(first, &next);
        else
            NdisGetNextBuffer(second, &next);
        assert_ptr_equal(next, pass == 0 ? second : NULL);

        if (pass == 0)
            NdisGetBufferPhysicalArraySize(first, &pages);
        else
            NdisGetBufferPhysicalArraySize(second, &pages);
        assert_int_equal(pages, pass == 0 ? 2 : 1); /* [100, 5100) spans 2; empty counts 1 */

        KIRQL old = 0xFF;
        if (pass == 0)
            KeRaiseIrql(APC_LEVEL, &old);
        else
            KeRaiseIrql(DISPATCH_LEVEL, &old);
        assert_int_equal(KeGetCurrentIrql(), pass == 0 ? APC_LEVEL : DISPATCH_LEVEL);
        assert_int_equal(old, PASSIVE_LEVEL);
        KeLowerIrql(old);

        UCHAR word[6] = { 0 };
        if (pass == 0)
            NdisStoreUlong(word + 1, 0x01020304u);
        else
            NdisZeroMemory(word, sizeof(word));
        ULONG back = 0;
        NdisRetrieveUlong(&back, word + 1);
        assert_int_equal(back, pass == 0 ? 0x01020304u : 0);

        UINT safe_len = 0;
        PVOID safe_va = NULL;
        if (pass == 0)
            NdisQueryBufferSafe(first, &safe_va, &safe_len, NormalPagePriority);
        else
            NdisQueryBufferSafe(second, &safe_va, &safe_len, HighPagePriority);
        assert_ptr_equal(safe_va, pass == 0 ? (PVOID)va : (PVOID)adapter_data);
        assert_int_equal(safe_len, pass == 0 ? len : 0);
    }
    first->Next = NULL;
    NdisFreeBuffer(second);
    NdisFreeBuffer(first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_extension_name_is_declared_by_ndis_h),
        cmocka_unit_test(driver_functions_run_through_the_annotated_prototypes),
        cmocka_unit_test(structure_helpers_behave_as_in_the_wdk),
        cmocka_unit_test(llp64_widths_hold_at_run_time),
        cmocka_unit_test(ndis_status_values_match_the_reference_table),
        cmocka_unit_test(ndis_status_aliases_and_sign),
        cmocka_unit_test(irql_page_and_priority_constants),
        cmocka_unit_test(large_integer_and_physical_address_views),
        cmocka_unit_test(statement_macros_work_under_unbraced_if_else),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
