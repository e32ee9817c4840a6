/* SPDX-License-Identifier: MIT */
/* libFuzzer target for NdisCopyBuffer: the input decodes into a source chain over a static
 * backing buffer and a run of operations (copy, copy of a copy, adjust-length-and-restore, free),
 * each result checked against copy_model.h; any mismatch or leaked descriptor traps. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libndis.h>
#include <ndis.h>

#include "../copy_model.h"

#define FUZZ_TARGET_NAME "fuzz_copybuffer"
#include "fuzz_input.h"

#define MAX_CHAIN 20
#define MAX_SLOTS 16
#define MAX_OPS 64
#define BACKING_PAGES 64
#define BACKING_SIZE (BACKING_PAGES * CM_PAGE)

static _Alignas(4096) uint8_t backing[BACKING_SIZE];
static uint8_t expect_bytes[MAX_CHAIN * 54000];

typedef struct chainset {
    cm_seg seg[CM_MAX_SEGS];
    PMDL elem[CM_MAX_SEGS];
    int n;
} chainset;

typedef struct state {
    NDIS_HANDLE pool;
    BOOLEAN strict;
    ULONG declared;
    ULONG pool_count; /* descriptors this input holds from pool */
    chainset src;
    chainset slot[MAX_SLOTS];
    int nslots;
} state;

static ULONG in_use(NDIS_HANDLE pool)
{
    LIBNDIS_POOL_INFO info;
    CHECK(LibNdisQueryBufferPool(pool, &info) == NDIS_STATUS_SUCCESS, "pool query failed");
    return info.InUse;
}

static void check_pool_count(const state *s)
{
    if (s->pool != NULL)
        CHECK(in_use(s->pool) == s->pool_count, "pool InUse %u, expected %u",
              (unsigned)in_use(s->pool), (unsigned)s->pool_count);
}

/* ---- the source chain ---- */

static uint32_t decode_length(uint8_t cls, uint32_t raw)
{
    switch (cls & 7) {
    case 0:
    case 1: return 0;
    case 2:
    case 3: return raw % 65;
    case 4:
    case 5: return raw % 5000;
    case 6: return raw % 13000;
    default: return 33000 + raw % 20000; /* past 8 pages */
    }
}

static uint32_t decode_in_page(uint8_t sel, uint32_t raw)
{
    static const uint32_t edges[] = { 0, 1, 4095, 4094, 2048, 8, 4088 };
    return sel < 7 ? edges[sel] : raw % CM_PAGE;
}

static PMDL allocate_element(state *s, BOOLEAN io, uint8_t *va, uint32_t len)
{
    if (io)
        return IoAllocateMdl(va, len, FALSE, FALSE, NULL);
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    PMDL m = (PMDL)(uintptr_t)1;
    NdisAllocateBuffer(&st, &m, s->pool, va, len);
    if (s->strict && s->pool_count >= s->declared) {
        CHECK(st == NDIS_STATUS_FAILURE && m == NULL, "strict pool at its count allocated");
        return IoAllocateMdl(va, len, FALSE, FALSE, NULL);
    }
    CHECK(st == NDIS_STATUS_SUCCESS && m != NULL, "NdisAllocateBuffer(%u) failed", (unsigned)len);
    s->pool_count++;
    return m;
}

static void build_source(state *s, reader *r)
{
    s->src.n = 1 + get8(r) % MAX_CHAIN;
    for (int i = 0; i < s->src.n; i++) {
        uint8_t b = get8(r);
        uint32_t len = decode_length(b >> 1, get16(r));
        uint32_t in_page = decode_in_page((b >> 4) & 7, get16(r));
        uint32_t room = BACKING_SIZE - len - in_page;
        uint8_t *va = backing + (uint64_t)(get8(r) % (room / CM_PAGE + 1)) * CM_PAGE + in_page;
        PMDL m = allocate_element(s, b & 1, va, len);
        CHECK(m != NULL && m->Next == NULL && m->MappedSystemVa == va && m->ByteCount == len &&
              (USHORT)m->MdlFlags == MDL_SOURCE_IS_NONPAGED_POOL &&
              (USHORT)m->Size == cm_mdl_size((uintptr_t)va, len),
              "fresh descriptor %d wrong", i);
        s->src.elem[i] = m;
        s->src.seg[i] = (cm_seg){ (uintptr_t)va, len, i };
        if (i > 0)
            s->src.elem[i - 1]->Next = m;
    }
}

/* ---- Offset and Length: raw 32-bit values or ones placed near the interesting points ---- */

static uint32_t boundary(const chainset *c, uint32_t k)
{
    return (uint32_t)cm_total(c->seg, (int)(k % (uint32_t)(c->n + 1)));
}

static void decode_range(reader *r, const chainset *c, uint32_t *off, uint32_t *len)
{
    uint8_t mode = get8(r);
    uint32_t a = get32(r), b = get32(r);
    uint32_t total = (uint32_t)cm_total(c->seg, c->n);
    uint32_t o;
    switch (mode & 7) {
    case 0: o = a; break;
    case 1: o = a % (total + 2); break;
    case 2: o = boundary(c, a); break;
    case 3: o = total; break;
    case 4: o = boundary(c, a) + (uint32_t)(int32_t)(int8_t)(a >> 8); break;
    case 5: o = 0xFFFFFFFFu - (a & 0xFF); break;
    case 6: o = 0; break;
    default: o = a % (total + 1); break;
    }
    uint32_t rest = o <= total ? total - o : 0;
    switch ((mode >> 3) & 7) {
    case 0: *len = b; break;
    case 1: *len = 0; break;
    case 2: *len = total - o; break;
    case 3: *len = total - o + 1; break;
    case 4: *len = (0u - o) + (b & 0xFF); break; /* Offset+Length wraps 32 bits */
    case 5: *len = b % (rest + 1); break;
    case 6: *len = boundary(c, b) - o; break;
    default: *len = b & 0xFFFF; break;
    }
    *off = o;
}

/* ---- operations ---- */

static void free_chainset(state *s, chainset *c)
{
    PMDL m = c->elem[0];
    for (int i = 0; i < c->n; i++) {
        CHECK(m == c->elem[i], "result chain relinked");
        PMDL next = m->Next;
        NdisFreeBuffer(m);
        m = next;
    }
    if (s->pool != NULL)
        s->pool_count -= (ULONG)c->n;
    c->n = 0;
}

/* One NdisCopyBuffer over c, checked; a success is kept in a slot (or freed if none is free). */
static void do_copy(state *s, const chainset *c, uint32_t off, uint32_t len)
{
    char msg[256];
    cm_seg model[CM_MAX_SEGS];
    int k = cm_copy(c->seg, c->n, off, len, model);
    ULONG before = in_use(s->pool);
    if (k > 0 && s->strict && before + (ULONG)k > s->declared)
        k = -2; /* needs more than the strict pool has left: must fail as a whole */
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    PMDL out = (PMDL)(uintptr_t)1;
    NdisCopyBuffer(&st, &out, s->pool, c->elem[0], off, len);
    if (k < 0) {
        CHECK(st == NDIS_STATUS_FAILURE && out == NULL,
              "Offset %#x Length %#x over %d elems (total %llu): must fail (%d), got %#x", off,
              len, c->n, (unsigned long long)cm_total(c->seg, c->n), k, (unsigned)st);
        CHECK(in_use(s->pool) == before, "failed copy leaked descriptors");
        return;
    }
    CHECK(st == NDIS_STATUS_SUCCESS && out != NULL,
          "Offset %#x Length %#x over %d elems (total %llu): must succeed, got %#x", off, len,
          c->n, (unsigned long long)cm_total(c->seg, c->n), (unsigned)st);
    cm_slice_bytes(c->seg, c->n, off, len, expect_bytes);
    CHECK(cm_check_result(c->elem, model, k, out, expect_bytes, msg, sizeof(msg)),
          "Offset %#x Length %#x: %s", off, len, msg);
    CHECK(in_use(s->pool) == before + (ULONG)k, "InUse did not grow by %d", k);
    if (s->pool != NULL)
        s->pool_count += (ULONG)k;
    chainset res;
    res.n = cm_from_chain(out, res.seg, res.elem, CM_MAX_SEGS);
    CHECK(res.n == k, "result chain has %d elements", res.n);
    if (s->nslots < MAX_SLOTS)
        s->slot[s->nslots++] = res;
    else
        free_chainset(s, &res);
}

static void op_copy_of_copy(state *s, reader *r)
{
    uint32_t off, len;
    if (s->nslots == 0)
        return;
    chainset c = s->slot[get8(r) % s->nslots]; /* by value: do_copy may append to slot[] */
    decode_range(r, &c, &off, &len);
    do_copy(s, &c, off, len);
}

/* Shortens one source element (a driver's NdisAdjustBufferLength), copies over the shortened
 * chain, and restores the length as the rules require before anything is freed. */
static void op_adjust(state *s, reader *r)
{
    uint32_t off, len;
    int i = get8(r) % s->src.n;
    uint32_t orig = s->src.seg[i].len;
    uint32_t shorter = get16(r) % (orig + 1);
    NdisAdjustBufferLength(s->src.elem[i], shorter);
    CHECK(s->src.elem[i]->ByteCount == shorter, "NdisAdjustBufferLength did not set ByteCount");
    s->src.seg[i].len = shorter;
    decode_range(r, &s->src, &off, &len);
    do_copy(s, &s->src, off, len);
    NdisAdjustBufferLength(s->src.elem[i], orig);
    s->src.seg[i].len = orig;
}

static void op_free(state *s, reader *r)
{
    if (s->nslots == 0)
        return;
    int i = get8(r) % s->nslots;
    free_chainset(s, &s->slot[i]);
    s->slot[i] = s->slot[--s->nslots];
    check_pool_count(s);
}

static void run_ops(state *s, reader *r)
{
    for (int ops = 0; ops < MAX_OPS && r->left > 0; ops++) {
        uint32_t off, len;
        switch (get8(r) % 4) {
        case 0:
            decode_range(r, &s->src, &off, &len);
            do_copy(s, &s->src, off, len);
            break;
        case 1: op_copy_of_copy(s, r); break;
        case 2: op_adjust(s, r); break;
        default: op_free(s, r); break;
        }
    }
}

static void release_all(state *s)
{
    while (s->nslots > 0)
        free_chainset(s, &s->slot[--s->nslots]);
    for (int i = 0; i < s->src.n; i++) {
        s->src.elem[i]->Next = NULL;
        NdisFreeBuffer(s->src.elem[i]);
    }
    s->pool_count = 0;
    check_pool_count(s);
}

static void init_backing(void)
{
    static int done;
    if (done)
        return;
    for (uint32_t i = 0; i < BACKING_SIZE; i++)
        backing[i] = (uint8_t)((i * 2654435761u) >> 24);
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = { data, size };
    state s;
    memset(&s, 0, sizeof(s));
    init_backing();
    ULONG live = LibNdisLiveBufferPools();
    ULONG default_base = in_use(NULL);
    uint8_t flags = get8(&r);
    if (flags & 1) {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        s.declared = 1 + ((flags >> 2) & 31);
        NdisAllocateBufferPool(&st, &s.pool, s.declared);
        CHECK(st == NDIS_STATUS_SUCCESS && s.pool != NULL, "pool creation failed");
        s.strict = (flags & 2) != 0; /* explicit either way: LIBNDIS_STRICT_POOLS may be set */
        CHECK(LibNdisSetBufferPoolStrict(s.pool, s.strict) == NDIS_STATUS_SUCCESS, "strict");
    }
    build_source(&s, &r);
    check_pool_count(&s);
    run_ops(&s, &r);
    release_all(&s);
    if (s.pool != NULL)
        NdisFreeBufferPool(s.pool);
    CHECK(LibNdisLiveBufferPools() == live, "a buffer pool outlived its last descriptor");
    CHECK(in_use(NULL) == default_base, "default pool InUse %u, was %u",
          (unsigned)in_use(NULL), (unsigned)default_base);
    return 0;
}
