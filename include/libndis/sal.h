/* SPDX-License-Identifier: MIT */
/* sal.h - the Microsoft source-annotation (SAL 1 and SAL 2) and driver-annotation names, all
 * defined empty. Driver sources are full of them; here they only have to compile away. */
#ifndef LIBNDIS_SAL_H
#define LIBNDIS_SAL_H

/* SAL 1 (WDK 6001/7600 era) */
#define __in
#define __out
#define __inout
#define __in_opt
#define __out_opt
#define __inout_opt
#define __deref_out
#define __deref_out_opt
#define __deref_inout
#define __deref_opt_out
#define __in_bcount(x)
#define __in_ecount(x)
#define __out_bcount(x)
#define __out_ecount(x)
#define __out_bcount_full(x)
#define __inout_bcount(x)
#define __in_bcount_opt(x)
#define __out_bcount_opt(x)
#define __reserved
#define __checkReturn
#define __success(x)
#define __nullterminated
#define __drv_maxIRQL(x)
#define __drv_minIRQL(x)
#define __drv_requiresIRQL(x)
#define __drv_setsIRQL(x)
#define __drv_raisesIRQL(x)
#define __drv_savesIRQL
#define __drv_restoresIRQL
#define __drv_savesIRQLGlobal(k, p)
#define __drv_restoresIRQLGlobal(k, p)
#define __drv_at(e, a)
#define __drv_when(c, a)
#define __drv_in(a)
#define __drv_out(a)
#define __drv_allocatesMem(k)
#define __drv_freesMem(k)
#define __drv_aliasesMem
#define __drv_acquiresResource(k)
#define __drv_releasesResource(k)
#define __drv_neverHold(k)
#define __drv_mustHold(k)
#define __drv_isObjectPointer
#define __drv_preferredFunction(f, r)
#define __drv_valueIs(x)
#define __drv_functionClass(x)
#define __drv_dispatchType(x)
#define __drv_strictTypeMatch(x)
#define __drv_nonConstant
#define __drv_reportError(x)
#define __drv_arg(e, a)
#define __drv_inTry
#define __drv_useCancelIRQL

/* SAL 2 (WDK 8 and later, also accepted by older code bases that adopted it) */
#define _In_
#define _Out_
#define _Inout_
#define _In_opt_
#define _Out_opt_
#define _Inout_opt_
#define _Outptr_
#define _Outptr_opt_
#define _Outptr_result_maybenull_
#define _Outptr_result_buffer_(x)
#define _Outptr_result_bytebuffer_(x)
#define _Out_writes_(x)
#define _Out_writes_opt_(x)
#define _Out_writes_bytes_(x)
#define _Out_writes_bytes_opt_(x)
#define _Out_writes_bytes_all_(x)
#define _Out_writes_to_(x, y)
#define _In_reads_(x)
#define _In_reads_opt_(x)
#define _In_reads_bytes_(x)
#define _In_reads_bytes_opt_(x)
#define _Inout_updates_(x)
#define _Inout_updates_bytes_(x)
#define _Reserved_
#define _Must_inspect_result_
#define _Check_return_
#define _Success_(x)
#define _Ret_maybenull_
#define _Ret_notnull_
#define _Ret_range_(a, b)
#define _In_range_(a, b)
#define _Out_range_(a, b)
#define _Pre_notnull_
#define _Post_invalid_
#define _Post_ptr_invalid_
#define _Post_satisfies_(x)
#define _Pre_satisfies_(x)
#define _Field_size_(x)
#define _Field_size_bytes_(x)
#define _Field_range_(a, b)
#define _Struct_size_bytes_(x)
#define _Null_terminated_
#define _Analysis_assume_(x)
#define _When_(c, a)
#define _At_(e, a)
#define _IRQL_requires_(x)
#define _IRQL_requires_max_(x)
#define _IRQL_requires_min_(x)
#define _IRQL_raises_(x)
#define _IRQL_saves_
#define _IRQL_restores_
#define _IRQL_saves_global_(k, p)
#define _IRQL_restores_global_(k, p)
#define _IRQL_always_function_min_(x)
#define _IRQL_always_function_max_(x)
#define _IRQL_requires_same_
#define _IRQL_uses_cancel_
#define _Requires_lock_held_(x)
#define _Requires_lock_not_held_(x)
#define _Acquires_lock_(x)
#define _Releases_lock_(x)
#define _Acquires_exclusive_lock_(x)
#define _Releases_exclusive_lock_(x)
#define _Guarded_by_(x)
#define _Interlocked_
#define _Interlocked_operand_
#define _Function_class_(x)
#define _Dispatch_type_(x)
#define _Kernel_float_saved_
#define _Kernel_float_restored_
#define _Kernel_requires_resource_held_(x)
#define _Kernel_requires_resource_not_held_(x)
#define _Kernel_acquires_resource_(x)
#define _Kernel_releases_resource_(x)
#define _Kernel_clear_do_init_(x)
#define _Frees_ptr_
#define _Frees_ptr_opt_
#define _Post_writable_byte_size_(x)
#define _Mem_type_(x)
#define _Strict_type_match_
#define _Points_to_data_
#define _Literal_
#define _Notliteral_
#define _Use_decl_annotations_
#define _Return_type_success_(x)
#define _Printf_format_string_
#define _Pre_
#define _Post_
#define _Deref_out_
#define _Deref_pre_
#define _Deref_post_

#endif /* LIBNDIS_SAL_H */
