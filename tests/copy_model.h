/* SPDX-License-Identifier: MIT */
/* copy_model.h - an independent reference model of NdisCopyBuffer (decision 8) over plain
 * (address, length) segments, plus a checker that compares a real result chain with it. Shared by
 * test_copy_random.c and fuzz/fuzz_copybuffer.c; deliberately written without the library's
 * macros so that a wrong macro cannot make model and implementation agree by accident. */
#ifndef LIBNDIS_TESTS_COPY_MODEL_H
#define LIBNDIS_TESTS_COPY_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ndis.h>

/* A chain never has more elements than this in the tests (sources: 20; copies: at most that). */
#define CM_MAX_SEGS 64

#define CM_PAGE 4096u
/* Layout constants of the WDK MDL, restated rather than taken from sizeof(MDL). */
#define CM_MDL_HEADER (sizeof(void *) == 8 ? 48u : 28u)
/* The flags a partial descriptor takes over from its source. */
#define CM_INHERITED_FLAGS \
    (MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA | MDL_IO_PAGE_READ | MDL_IO_SPACE)

typedef struct cm_seg {
    uintptr_t va;  /* first byte described */
    uint32_t len;
    int src;       /* index of the source element this one maps (model results only) */
} cm_seg;

static inline uint64_t cm_total(const cm_seg *chain, int n)
{
    uint64_t t = 0;
    for (int i = 0; i < n; i++)
        t += chain[i].len;
    return t;
}

/* Pages touched by [va, va+len); zero length touches the page of va unless va is page aligned. */
static inline uint64_t cm_span_pages(uintptr_t va, uint32_t len)
{
    uint64_t in_page = va % CM_PAGE;
    if (len == 0)
        return in_page != 0;
    return (in_page + len + CM_PAGE - 1) / CM_PAGE;
}

static inline uint64_t cm_mdl_size(uintptr_t va, uint32_t len)
{
    return CM_MDL_HEADER + sizeof(uintptr_t) * cm_span_pages(va, len);
}

/* Expected result of NdisCopyBuffer(chain, offset, length): the number of result descriptors
 * written to out (>= 1), or -1 when the call must fail. n == 0 stands for a NULL source. */
static inline int cm_copy(const cm_seg *chain, int n, uint32_t offset, uint32_t length, cm_seg *out)
{
    uint64_t total = cm_total(chain, n);
    uint64_t end = (uint64_t)offset + length;

    if (n <= 0 || end > 0xFFFFFFFFull || end > total)
        return -1;
    if (length == 0 && offset == total) {
        /* Only the exact total names the end of the last element, even an empty one. */
        out[0].va = chain[n - 1].va + chain[n - 1].len;
        out[0].len = 0;
        out[0].src = n - 1;
        return 1;
    }
    /* Boundary rule: an offset equal to the bytes before an element belongs to the next
     * non-empty element, so empty elements and "end of previous" are both skipped. */
    int i = 0;
    uint64_t rel = offset;
    while (rel >= chain[i].len) {
        rel -= chain[i].len;
        i++;
    }
    if (length == 0) {
        out[0].va = chain[i].va + (uintptr_t)rel;
        out[0].len = 0;
        out[0].src = i;
        return 1;
    }
    int k = 0;
    uint64_t left = length;
    for (; left > 0; i++, rel = 0) {
        if (chain[i].len == 0)
            continue;
        uint64_t avail = chain[i].len - rel;
        uint64_t take = avail < left ? avail : left;
        out[k].va = chain[i].va + (uintptr_t)rel;
        out[k].len = (uint32_t)take;
        out[k].src = i;
        k++;
        left -= take;
    }
    return k;
}

/* The segments an existing descriptor chain describes (via the MDL fields, not MappedSystemVa). */
static inline int cm_from_chain(PMDL head, cm_seg *out, PMDL *elems, int cap)
{
    int n = 0;
    for (PMDL m = head; m != NULL; m = m->Next) {
        if (n == cap)
            return -1;
        out[n].va = (uintptr_t)m->StartVa + m->ByteOffset;
        out[n].len = m->ByteCount;
        out[n].src = n;
        if (elems != NULL)
            elems[n] = m;
        n++;
    }
    return n;
}

/* Bytes [offset, offset+length) of the concatenated chain, read through the segment addresses:
 * a second, model-free derivation of what the result must contain. */
static inline void cm_slice_bytes(const cm_seg *chain, int n, uint64_t offset, uint64_t length,
                                  uint8_t *out)
{
    uint64_t pos = 0;
    for (int i = 0; i < n && length > 0; i++) {
        uint64_t s = chain[i].len;
        if (offset < pos + s) {
            uint64_t from = offset > pos ? offset - pos : 0;
            uint64_t take = s - from < length ? s - from : length;
            memcpy(out, (const uint8_t *)chain[i].va + from, (size_t)take);
            out += take;
            offset += take;
            length -= take;
        }
        pos += s;
    }
}

#define CM_FAIL(...)                              \
    do {                                          \
        snprintf(msg, msgsz, __VA_ARGS__);        \
        return false;                             \
    } while (0)

/* Compares one successful NdisCopyBuffer result with the model. srcs[] are the source elements
 * (indexed like the model's src field); bytes is the expected concatenated data or NULL. On a
 * mismatch, returns false with a description in msg. */
static inline bool cm_check_result(PMDL const *srcs, const cm_seg *expect, int n, PMDL result,
                                   const uint8_t *bytes, char *msg, size_t msgsz)
{
    PMDL m = result;
    uint64_t pos = 0;
    for (int i = 0; i < n; i++, m = m->Next) {
        if (m == NULL)
            CM_FAIL("result has %d descriptors, model %d", i, n);
        PMDL s = srcs[expect[i].src];
        uintptr_t va = expect[i].va;
        uintptr_t src_va = (uintptr_t)s->StartVa + s->ByteOffset;
        uintptr_t got_va = (uintptr_t)MmGetMdlVirtualAddress(m);
        if (got_va != va)
            CM_FAIL("elem %d: VA %#lx, model %#lx", i, (unsigned long)got_va, (unsigned long)va);
        if ((uintptr_t)m->MappedSystemVa != (uintptr_t)s->MappedSystemVa + (va - src_va))
            CM_FAIL("elem %d: MappedSystemVa %p, want source's + %lu", i, m->MappedSystemVa,
                    (unsigned long)(va - src_va));
        if (m->ByteCount != expect[i].len)
            CM_FAIL("elem %d: ByteCount %u, model %u", i, (unsigned)m->ByteCount,
                    (unsigned)expect[i].len);
        if (m->ByteOffset != va % CM_PAGE || (uintptr_t)m->StartVa != va - va % CM_PAGE)
            CM_FAIL("elem %d: StartVa %p ByteOffset %u for VA %#lx", i, m->StartVa,
                    (unsigned)m->ByteOffset, (unsigned long)va);
        unsigned want_flags = MDL_PARTIAL | ((unsigned)(USHORT)s->MdlFlags & CM_INHERITED_FLAGS);
        if ((unsigned)(USHORT)m->MdlFlags != want_flags)
            CM_FAIL("elem %d: MdlFlags %#x, want %#x", i, (unsigned)(USHORT)m->MdlFlags, want_flags);
        uint64_t want_size = cm_mdl_size(va, expect[i].len);
        if ((uint64_t)(USHORT)m->Size != want_size ||
            MmSizeOfMdl((PVOID)va, expect[i].len) != want_size)
            CM_FAIL("elem %d: Size %u, MmSizeOfMdl %lu, model %lu", i, (unsigned)(USHORT)m->Size,
                    (unsigned long)MmSizeOfMdl((PVOID)va, expect[i].len),
                    (unsigned long)want_size);
        if (m->Process != s->Process)
            CM_FAIL("elem %d: Process %p, source has %p", i, (void *)m->Process, (void *)s->Process);
        uint64_t pages = cm_span_pages(va, expect[i].len);
        PPFN_NUMBER pfn = MmGetMdlPfnArray(m);
        for (uint64_t p = 0; p < pages; p++)
            if (pfn[p] != (va / CM_PAGE) + p)
                CM_FAIL("elem %d: PFN[%lu] %#lx, want %#lx", i, (unsigned long)p,
                        (unsigned long)pfn[p], (unsigned long)(va / CM_PAGE + p));
        if (bytes != NULL && m->ByteCount != 0 &&
            memcmp(m->MappedSystemVa, bytes + pos, m->ByteCount) != 0)
            CM_FAIL("elem %d: data differs from the source range", i);
        pos += expect[i].len;
        if (i == n - 1 && m->Next != NULL)
            CM_FAIL("result has more than the model's %d descriptors", n);
    }
    return true;
}

#undef CM_FAIL

#endif /* LIBNDIS_TESTS_COPY_MODEL_H */
