/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the packet layer: the input decodes into a run of operations on up to
 * three packets from a small pool (allocate, free, chain, unchain, query, recalculate,
 * reinitialize, adjust a length, copy between packets) mirrored in a model of each chain, its
 * Tail and its count cache; any divergence, leaked packet or leaked descriptor traps. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libndis.h>
#include <ndis.h>

#define FUZZ_TARGET_NAME "fuzz_packet"
#include "fuzz_input.h"

#define NPKT 3
#define MAX_BUFS 16 /* per packet */
#define MAX_OPS 256
#define PAGE 4096u
#define ARENA_SIZE (4 * PAGE)

static _Alignas(4096) uint8_t arena[ARENA_SIZE];
static uint8_t shadow[ARENA_SIZE]; /* what the arena must hold: the model's copies applied */

/* ---- the model ---- */

typedef struct fbuf {
    PMDL mdl;
    uint32_t off;  /* into arena */
    uint32_t len;  /* current ByteCount */
    uint32_t orig; /* as allocated: restored before the free */
    bool io;       /* from IoAllocateMdl rather than the input's pool */
} fbuf;

typedef struct fpkt {
    PNDIS_PACKET p; /* NULL: slot unused */
    int n;
    fbuf b[MAX_BUFS];
    PNDIS_BUFFER tail; /* exactly what Private.Tail must hold, stale values included */
    bool valid;
    UINT phys, count, total;
} fpkt;

typedef struct state {
    NDIS_HANDLE pool;
    NDIS_HANDLE buffers;
    UINT limit;
    UINT out;      /* packets allocated and not freed */
    UINT prl;      /* ProtocolReservedLength */
    ULONG pool_bufs; /* descriptors held from `buffers` */
    fpkt pk[NPKT];
} state;

static UINT span_pages(const fbuf *b)
{
    if (b->len == 0)
        return 1;
    uintptr_t va = (uintptr_t)(arena + b->off);
    return (UINT)(((va % PAGE) + b->len + PAGE - 1) / PAGE);
}

static void recount(fpkt *k)
{
    k->phys = k->count = k->total = 0;
    for (int i = 0; i < k->n; i++) {
        k->phys += span_pages(&k->b[i]);
        k->count++;
        k->total += k->b[i].len;
    }
    k->valid = true;
}

static void check_packet(const state *s, int slot)
{
    const fpkt *k = &s->pk[slot];
    if (k->p == NULL)
        return;
    const NDIS_PACKET_PRIVATE *pv = &k->p->Private;
    PNDIS_BUFFER b = pv->Head;
    for (int i = 0; i < k->n; i++, b = b->Next) {
        CHECK(b == k->b[i].mdl, "slot %d element %d: %p, model %p", slot, i, (void *)b,
              (void *)k->b[i].mdl);
        CHECK(b->ByteCount == k->b[i].len, "slot %d element %d: ByteCount %u, model %u", slot,
              i, (unsigned)b->ByteCount, k->b[i].len);
    }
    CHECK(b == NULL, "slot %d: chain longer than the model's %d", slot, k->n);
    CHECK(pv->Tail == k->tail, "slot %d: Tail %p, model %p", slot, (void *)pv->Tail,
          (void *)k->tail);
    CHECK(pv->ValidCounts == (k->valid ? TRUE : FALSE), "slot %d: ValidCounts %d, model %d", slot,
          pv->ValidCounts, k->valid);
    if (k->valid)
        CHECK(pv->PhysicalCount == k->phys && pv->Count == k->count && pv->TotalLength == k->total,
              "slot %d: cache %u/%u/%u, model %u/%u/%u", slot, pv->PhysicalCount, pv->Count,
              pv->TotalLength, k->phys, k->count, k->total);
    CHECK(pv->Pool == s->pool, "slot %d: Pool changed", slot);
}

static void check_pools(const state *s)
{
    CHECK(NdisPacketPoolUsage(s->pool) == s->out, "packet pool usage %u, model %u",
          NdisPacketPoolUsage(s->pool), s->out);
    LIBNDIS_POOL_INFO info;
    CHECK(LibNdisQueryBufferPool(s->buffers, &info) == NDIS_STATUS_SUCCESS, "pool query");
    CHECK(info.InUse == s->pool_bufs, "buffer pool InUse %u, model %u", (unsigned)info.InUse,
          (unsigned)s->pool_bufs);
}

/* ---- buffers ---- */

static bool new_buffer(state *s, reader *r, fbuf *out)
{
    uint32_t off = get16(r) % ARENA_SIZE;
    uint32_t room = ARENA_SIZE - off;
    uint32_t len = get8(r) < 64 ? 0 : get16(r) % (room + 1);
    bool io = get8(r) & 1;
    PMDL m = NULL;
    if (io) {
        m = IoAllocateMdl(arena + off, len, FALSE, FALSE, NULL);
    } else {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        NdisAllocateBuffer(&st, &m, s->buffers, arena + off, len);
        CHECK(st == NDIS_STATUS_SUCCESS, "NdisAllocateBuffer(%u, %u): %#x", off, len, (unsigned)st);
        s->pool_bufs++;
    }
    CHECK(m != NULL && m->Next == NULL && m->ByteCount == len, "fresh descriptor");
    *out = (fbuf){ m, off, len, len, io };
    return true;
}

static void free_buffer(state *s, fbuf *b)
{
    NdisAdjustBufferLength(b->mdl, b->orig);
    b->mdl->Next = NULL;
    if (b->io) {
        IoFreeMdl(b->mdl);
    } else {
        NdisFreeBuffer(b->mdl);
        s->pool_bufs--;
    }
}

/* ---- operations ---- */

static void op_alloc(state *s, reader *r)
{
    fpkt *k = &s->pk[get8(r) % NPKT];
    uint8_t form = get8(r) % 3;
    if (k->p != NULL)
        return;
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    PNDIS_PACKET p = (PNDIS_PACKET)(uintptr_t)1;
    if (form == 0)
        NdisAllocatePacket(&st, &p, s->pool);
    else if (form == 1)
        NdisDprAllocatePacket(&st, &p, s->pool);
    else
        NdisDprAllocatePacketNonInterlocked(&st, &p, s->pool);
    if (s->out == s->limit) {
        CHECK(st == NDIS_STATUS_RESOURCES && p == NULL, "allocation past the limit %u: %#x %p",
              s->limit, (unsigned)st, (void *)p);
        return;
    }
    CHECK(st == NDIS_STATUS_SUCCESS && p != NULL, "allocation %u of %u: %#x", s->out + 1,
          s->limit, (unsigned)st);
    CHECK(p->Private.Head == NULL && p->Private.Tail == NULL && p->Private.ValidCounts == TRUE &&
              p->Private.Count == 0 && p->Private.TotalLength == 0 &&
              p->Private.PhysicalCount == 0 &&
              p->Private.NdisPacketFlags == fPACKET_ALLOCATED_BY_NDIS,
          "fresh packet not zeroed");
    static const uint8_t zero[64];
    CHECK(memcmp(p->ProtocolReserved, zero, s->prl) == 0 && NDIS_GET_PACKET_STATUS(p) == 0 &&
              NDIS_GET_PACKET_HEADER_SIZE(p) == 0,
          "ProtocolReserved or OOB not zeroed");
    /* Dirtied now, so a reallocation of the same packet proves it is zeroed again. */
    memset(p->ProtocolReserved, 0xFF, s->prl);
    NDIS_SET_PACKET_STATUS(p, NDIS_STATUS_FAILURE);
    NDIS_SET_PACKET_HEADER_SIZE(p, 14);
    s->out++;
    *k = (fpkt){ .p = p, .n = 0, .tail = NULL, .valid = true };
}

/* NdisFreePacket leaves the buffers chained and alone; they are freed afterwards through the
 * model's list, after checking the links are as they were. */
static void op_free(state *s, reader *r)
{
    fpkt *k = &s->pk[get8(r) % NPKT];
    uint8_t how = get8(r);
    if (k->p == NULL)
        return;
    switch (how % 3) {
    case 0: NdisFreePacket(k->p); break;
    case 1: NdisDprFreePacket(k->p); break;
    default: NdisDprFreePacketNonInterlocked(k->p); break;
    }
    if (how & 0x80)
        NdisFreePacket(k->p); /* a second free is ignored */
    s->out--;
    CHECK(NdisPacketPoolUsage(s->pool) == s->out, "usage after free");
    for (int i = 0; i < k->n; i++)
        CHECK(k->b[i].mdl->Next == (i + 1 < k->n ? k->b[i + 1].mdl : NULL),
              "NdisFreePacket touched the chain at %d", i);
    for (int i = 0; i < k->n; i++)
        free_buffer(s, &k->b[i]);
    k->p = NULL;
    k->n = 0;
}

static void op_chain(state *s, reader *r)
{
    fpkt *k = &s->pk[get8(r) % NPKT];
    uint8_t how = get8(r);
    int add = 1 + (how >> 1) % 3;
    if (k->p == NULL || k->n + add > MAX_BUFS)
        return;
    fbuf nb[3];
    for (int i = 0; i < add; i++) {
        new_buffer(s, r, &nb[i]);
        if (i > 0)
            nb[i - 1].mdl->Next = nb[i].mdl; /* the argument may itself be a chain */
    }
    if (how & 1) {
        NdisChainBufferAtFront(k->p, nb[0].mdl);
        if (k->n == 0)
            k->tail = nb[add - 1].mdl;
        memmove(k->b + add, k->b, (size_t)k->n * sizeof(fbuf));
        memcpy(k->b, nb, (size_t)add * sizeof(fbuf));
    } else {
        NdisChainBufferAtBack(k->p, nb[0].mdl);
        k->tail = nb[add - 1].mdl;
        memcpy(k->b + k->n, nb, (size_t)add * sizeof(fbuf));
    }
    k->n += add;
    k->valid = false;
}

static void op_unchain(state *s, reader *r)
{
    int slot = get8(r) % NPKT;
    fpkt *k = &s->pk[slot];
    uint8_t how = get8(r);
    if (k->p == NULL)
        return;
    bool front = how & 1;
    PNDIS_BUFFER b = (PNDIS_BUFFER)(uintptr_t)1;
    if (front)
        NdisUnchainBufferAtFront(k->p, &b);
    else
        NdisUnchainBufferAtBack(k->p, &b);
    if (k->n == 0) {
        CHECK(b == NULL, "unchain from an empty packet: %p", (void *)b);
        return;
    }
    fbuf got = front ? k->b[0] : k->b[k->n - 1];
    CHECK(b == got.mdl, "unchain %s: %p, model %p", front ? "front" : "back", (void *)b,
          (void *)got.mdl);
    CHECK(b->Next == NULL, "unchained descriptor keeps Next");
    if (front)
        memmove(k->b, k->b + 1, (size_t)(k->n - 1) * sizeof(fbuf));
    k->n--;
    if (k->n == 0)
        k->tail = NULL;
    else if (!front)
        k->tail = k->b[k->n - 1].mdl;
    k->valid = false;

    /* Either free it or move it to the back of another packet. */
    fpkt *to = &s->pk[(slot + 1 + (how >> 1) % (NPKT - 1)) % NPKT];
    if ((how & 0x80) && to->p != NULL && to->n < MAX_BUFS) {
        NdisChainBufferAtBack(to->p, got.mdl);
        to->b[to->n++] = got;
        to->tail = got.mdl;
        to->valid = false;
    } else {
        free_buffer(s, &got);
    }
}

static void op_query(state *s, reader *r)
{
    fpkt *k = &s->pk[get8(r) % NPKT];
    uint8_t ask = get8(r) & 15; /* bit 0 phys, 1 count, 2 first, 3 total */
    if (k->p == NULL)
        return;
    UINT phys = 0xEEEE, count = 0xEEEE, total = 0xEEEE;
    PNDIS_BUFFER first = (PNDIS_BUFFER)(uintptr_t)1;
    NdisQueryPacket(k->p, (ask & 1) ? &phys : NULL, (ask & 2) ? &count : NULL,
                    (ask & 4) ? &first : NULL, (ask & 8) ? &total : NULL);
    if (ask & 4)
        CHECK(first == (k->n ? k->b[0].mdl : NULL), "FirstBuffer %p", (void *)first);
    if ((ask & 11) && !k->valid)
        recount(k);
    if (ask & 1)
        CHECK(phys == k->phys, "PhysicalBufferCount %u, model %u", phys, k->phys);
    if (ask & 2)
        CHECK(count == k->count, "BufferCount %u, model %u", count, k->count);
    if (ask & 8)
        CHECK(total == k->total, "TotalPacketLength %u, model %u", total, k->total);
    if (!(ask & 11)) {
        CHECK(phys == 0xEEEE && count == 0xEEEE && total == 0xEEEE, "unrequested output written");
    }
}

static void op_query_length(state *s, reader *r)
{
    fpkt *k = &s->pk[get8(r) % NPKT];
    if (k->p == NULL)
        return;
    UINT len = 0xEEEE;
    NdisQueryPacketLength(k->p, &len);
    if (!k->valid)
        recount(k);
    CHECK(len == k->total, "NdisQueryPacketLength %u, model %u", len, k->total);
}

static void recalc(fpkt *k)
{
    NdisRecalculatePacketCounts(k->p);
    if (k->n > 0)
        k->tail = k->b[k->n - 1].mdl;
    k->valid = false;
}

static void op_recalc(state *s, reader *r)
{
    fpkt *k = &s->pk[get8(r) % NPKT];
    if (k->p != NULL)
        recalc(k);
}

/* The old chain stays linked among itself; what happens to it next is the input's choice. */
static void op_reinit(state *s, reader *r)
{
    int slot = get8(r) % NPKT;
    fpkt *k = &s->pk[slot];
    uint8_t how = get8(r) % 4;
    if (k->p == NULL)
        return;
    NdisReinitializePacket(k->p);
    k->valid = false; /* Tail stays stale */
    int n = k->n;
    k->n = 0;
    check_packet(s, slot);
    if (n == 0)
        return;
    fbuf old[MAX_BUFS];
    memcpy(old, k->b, (size_t)n * sizeof(fbuf));
    switch (how) {
    case 0: /* the whole old chain back in, as one multi-descriptor argument */
    case 1:
        if (how == 0)
            NdisChainBufferAtBack(k->p, old[0].mdl);
        else
            NdisChainBufferAtFront(k->p, old[0].mdl);
        memcpy(k->b, old, (size_t)n * sizeof(fbuf));
        k->n = n;
        k->tail = old[n - 1].mdl;
        return;
    case 2: {
        /* A new buffer at the back while Tail is stale: the old last one must not gain a Next. */
        fbuf nb;
        new_buffer(s, r, &nb);
        NdisChainBufferAtBack(k->p, nb.mdl);
        CHECK(old[n - 1].mdl->Next == NULL, "stale Tail used by NdisChainBufferAtBack");
        k->b[0] = nb;
        k->n = 1;
        k->tail = nb.mdl;
        break;
    }
    default:
        break;
    }
    for (int i = 0; i < n; i++)
        free_buffer(s, &old[i]);
}

static void op_adjust(state *s, reader *r)
{
    fpkt *k = &s->pk[get8(r) % NPKT];
    uint8_t idx = get8(r);
    uint32_t want = get16(r);
    uint8_t then = get8(r);
    if (k->p == NULL || k->n == 0)
        return;
    fbuf *b = &k->b[idx % k->n];
    b->len = want % (b->orig + 1); /* never beyond what was allocated */
    NdisAdjustBufferLength(b->mdl, b->len);
    if (then & 1)
        recalc(k); /* otherwise the cache stays as it was: stale while valid */
}

static void op_first(state *s, reader *r)
{
    fpkt *k = &s->pk[get8(r) % NPKT];
    bool safe = get8(r) & 1;
    if (k->p == NULL)
        return;
    PNDIS_BUFFER first = (PNDIS_BUFFER)(uintptr_t)1;
    PVOID va = (PVOID)(uintptr_t)1;
    UINT flen = 0xEEEE, tlen = 0xEEEE;
    if (safe)
        NdisGetFirstBufferFromPacketSafe(k->p, &first, &va, &flen, &tlen, NormalPagePriority);
    else
        NdisGetFirstBufferFromPacket(k->p, &first, &va, &flen, &tlen);
    UINT total = 0;
    for (int i = 0; i < k->n; i++)
        total += k->b[i].len;
    if (k->n == 0) {
        CHECK(first == NULL && va == NULL && flen == 0 && tlen == 0, "first of an empty packet");
        return;
    }
    CHECK(first == k->b[0].mdl && va == arena + k->b[0].off && flen == k->b[0].len &&
              tlen == total,
          "NdisGetFirstBufferFromPacket: %u/%u, model %u/%u", flen, tlen, k->b[0].len, total);
}

/* ---- copy ---- */

typedef struct side {
    const fpkt *k;
    uint64_t prefix[MAX_BUFS + 1];
} side;

static void side_init(side *sd, const fpkt *k)
{
    sd->k = k;
    sd->prefix[0] = 0;
    for (int i = 0; i < k->n; i++)
        sd->prefix[i + 1] = sd->prefix[i] + k->b[i].len;
}

/* Arena offset of logical byte x (< total), and the end of the buffer holding it. */
static uint32_t side_at(const side *sd, uint64_t x, uint64_t *end)
{
    for (int i = 0; i < sd->k->n; i++) {
        if (sd->prefix[i + 1] > x) {
            *end = sd->prefix[i + 1];
            return sd->k->b[i].off + (uint32_t)(x - sd->prefix[i]);
        }
    }
    CHECK(false, "model: byte %llu past the chain", (unsigned long long)x);
    return 0;
}

/* Decision 20 on the shadow: min(count, both remainders) bytes, split at every buffer end of
 * either side, each piece memmoved in order. */
static uint32_t model_copy(const side *d, uint32_t doff, uint32_t count, const side *s,
                           uint32_t soff)
{
    uint64_t td = d->prefix[d->k->n], ts = s->prefix[s->k->n];
    if (doff >= td || soff >= ts)
        return 0;
    uint64_t n = count;
    if (n > td - doff)
        n = td - doff;
    if (n > ts - soff)
        n = ts - soff;
    for (uint64_t k = 0; k < n;) {
        uint64_t dend, send;
        uint32_t da = side_at(d, doff + k, &dend), sa = side_at(s, soff + k, &send);
        uint64_t stop = n;
        if (dend - doff < stop)
            stop = dend - doff;
        if (send - soff < stop)
            stop = send - soff;
        memmove(shadow + da, shadow + sa, (size_t)(stop - k));
        k = stop;
    }
    return (uint32_t)n;
}

/* Offsets and counts: raw 32-bit values reach the far ends, the others keep the fuzzer near the
 * chain where the boundary rule matters. */
static uint32_t pick_value(reader *r, const side *sd)
{
    uint8_t mode = get8(r);
    uint64_t total = sd->prefix[sd->k->n];
    switch (mode & 3) {
    case 0: return get32(r);
    case 1: return get8(r);
    case 2: return (uint32_t)(get16(r) % (total + 2));
    default: {
        int i = (int)((mode >> 2) % ((unsigned)sd->k->n + 1));
        return (uint32_t)sd->prefix[i] + (uint32_t)(int32_t)(int8_t)get8(r);
    }
    }
}

static void op_copy(state *s, reader *r)
{
    fpkt *dk = &s->pk[get8(r) % NPKT], *sk = &s->pk[get8(r) % NPKT];
    uint8_t flags = get8(r);
    if (dk->p == NULL || sk->p == NULL)
        return;
    side d, sd;
    side_init(&d, dk);
    side_init(&sd, sk);
    uint32_t doff = pick_value(r, &d), soff = pick_value(r, &sd);
    uint32_t count = (flags & 2) ? 0xFFFFFFFFu : pick_value(r, &d);
    NDIS_PACKET_PRIVATE dpv = dk->p->Private, spv = sk->p->Private;
    uint32_t want = model_copy(&d, doff, count, &sd, soff);
    UINT copied = 0xA5A5A5A5u;
    if (flags & 1)
        NdisCopyFromPacketToPacketSafe(dk->p, doff, count, sk->p, soff, &copied,
                                       NormalPagePriority);
    else
        NdisCopyFromPacketToPacket(dk->p, doff, count, sk->p, soff, &copied);
    CHECK(copied == want, "copy(%u, %u, %u): BytesCopied %u, model %u", doff, count, soff,
          copied, want);
    if (memcmp(arena, shadow, ARENA_SIZE) != 0) {
        uint32_t i = 0;
        while (arena[i] == shadow[i])
            i++;
        CHECK(false, "copy(%u, %u, %u): arena byte %u is %#x, model %#x", doff, count, soff, i,
              arena[i], shadow[i]);
    }
    CHECK(memcmp(&dk->p->Private, &dpv, sizeof(dpv)) == 0 &&
              memcmp(&sk->p->Private, &spv, sizeof(spv)) == 0,
          "copy changed a packet's Private area");
}

/* ---- driver ---- */

static void setup(state *s, reader *r)
{
    memset(s, 0, sizeof(*s));
    UINT base = get8(r) % 4, overflow = get8(r) % 4, prl = get8(r) % 64;
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    NdisAllocatePacketPoolEx(&st, &s->pool, base, overflow, prl);
    CHECK(st == NDIS_STATUS_SUCCESS && s->pool != NULL, "packet pool");
    s->limit = base + overflow;
    s->prl = prl;
    NdisAllocateBufferPool(&st, &s->buffers, 8);
    CHECK(st == NDIS_STATUS_SUCCESS && s->buffers != NULL, "buffer pool");
    for (uint32_t i = 0; i < ARENA_SIZE; i++)
        arena[i] = (uint8_t)(i * 131u + (i >> 8) + 7u);
    memcpy(shadow, arena, ARENA_SIZE);
}

static void teardown(state *s, reader *r)
{
    for (int slot = 0; slot < NPKT; slot++) {
        fpkt *k = &s->pk[slot];
        if (k->p == NULL)
            continue;
        while (k->n > 0) {
            /* front or back, never the move-to-another-packet option */
            uint8_t args[2] = { (uint8_t)slot, (uint8_t)(get8(r) & 1) };
            reader one = { args, sizeof(args) };
            op_unchain(s, &one);
            check_packet(s, slot);
        }
        NdisFreePacket(k->p);
        k->p = NULL;
        s->out--;
    }
    check_pools(s);
    CHECK(NdisPacketPoolUsage(s->pool) == 0, "packets leaked");
    NdisFreePacketPool(s->pool);
    NdisFreeBufferPool(s->buffers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void (*const ops[])(state *, reader *) = {
        op_alloc, op_alloc,   op_free,         op_chain,  op_chain,  op_chain, op_unchain,
        op_query, op_query_length, op_recalc, op_reinit, op_adjust, op_first, op_copy,
        op_copy,
    };
    reader r = { data, size };
    state s;
    setup(&s, &r);
    for (int i = 0; i < MAX_OPS && r.left > 0; i++) {
        ops[get8(&r) % (sizeof(ops) / sizeof(ops[0]))](&s, &r);
        for (int slot = 0; slot < NPKT; slot++)
            check_packet(&s, slot);
        check_pools(&s);
    }
    teardown(&s, &r);
    return 0;
}
