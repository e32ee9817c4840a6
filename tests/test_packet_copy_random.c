/* SPDX-License-Identifier: MIT */
/* Randomized differential test of NdisCopyFromPacketToPacket(Safe) against a byte model of
 * decision 20 (boundary-rule positioning, memmove per segment, overlap allowed), plus a random
 * walk over the chain calls that checks NdisQueryPacket's cached counts, stale cache included.
 * Seed: printed, and overridable with LIBNDIS_TEST_SEED so any failure can be replayed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

#include "test_util.h"

#define COPY_ITERATIONS 20000 /* each one runs the plain and the Safe form: 40000 calls */
#define COUNT_WALKS 3000
#define WALK_STEPS 40
#define MAX_BUFS 12
#define PAGE 4096u
#define ARENA_PAGES 8
#define ARENA_SIZE (ARENA_PAGES * PAGE)
#define DEFAULT_SEED 0x7061636b6574ull /* "packet" */

static _Alignas(4096) uint8_t arena[ARENA_SIZE];
static uint8_t before[ARENA_SIZE];
static uint8_t expect[ARENA_SIZE];
static uint8_t written[ARENA_SIZE]; /* 1 where the model wrote: everything else must not move */
static uint64_t rng_state;
static uint64_t seed;
static char case_desc[1024]; /* what the current iteration did, printed on a failure */

static NDIS_HANDLE packet_pool;
static NDIS_HANDLE buffer_pool;

/* Program-wide totals, so the run proves it reached every outcome it claims to test. */
static unsigned long n_calls, n_zero, n_partial, n_full, n_overlap_segments, n_same_packet,
    n_multi_segment, n_empty_chain, n_io_mdl, n_cache_returns, n_stale_returns, n_queries;

static uint64_t rnd(void) { return test_splitmix64(&rng_state); }

static uint32_t rnd_below(uint64_t n) { return test_below(&rng_state, n); }

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            print_error("seed %#llx: %s\n", (unsigned long long)seed, case_desc);         \
            print_error(__VA_ARGS__);                                                     \
            print_error("\n");                                                            \
            fail();                                                                       \
        }                                                                                 \
    } while (0)

/* ---- one side of a copy: the buffers of a packet as the model sees them ---- */

typedef struct bufrec {
    PMDL mdl;
    uint32_t off; /* into arena */
    uint32_t len;
    bool io;      /* made by IoAllocateMdl, freed by IoFreeMdl */
} bufrec;

typedef struct side {
    PNDIS_PACKET pkt;
    int n;
    bufrec b[MAX_BUFS];
    uint64_t prefix[MAX_BUFS + 1]; /* prefix[i] = bytes before buffer i */
} side;

static void side_prefix(side *s)
{
    s->prefix[0] = 0;
    for (int i = 0; i < s->n; i++)
        s->prefix[i + 1] = s->prefix[i] + s->b[i].len;
}

static uint64_t side_total(const side *s) { return s->prefix[s->n]; }

/* Arena offset of logical byte x (< total): the first buffer whose end lies beyond x. */
static uint32_t side_addr(const side *s, uint64_t x)
{
    for (int i = 0; i < s->n; i++)
        if (s->prefix[i + 1] > x)
            return s->b[i].off + (uint32_t)(x - s->prefix[i]);
    fail_msg("side_addr past the end");
    return 0;
}

/* The smallest buffer end strictly beyond x: where a segment starting at x must stop. */
static uint64_t side_next_end(const side *s, uint64_t x)
{
    for (int i = 0; i < s->n; i++)
        if (s->prefix[i + 1] > x)
            return s->prefix[i + 1];
    return x;
}

/* ---- random chains ---- */

static uint32_t random_len(uint32_t room)
{
    uint32_t r = rnd_below(100), len;
    if (r < 35)
        len = 0;
    else if (r < 60)
        len = 1 + rnd_below(16);
    else if (r < 85)
        len = 17 + rnd_below(496);
    else
        len = 513 + rnd_below(6000);
    return len > room ? room : len;
}

/* In-page offsets near the interesting edges half of the time. */
static uint32_t random_off(uint32_t lo, uint32_t hi, uint32_t len)
{
    static const uint32_t edges[] = { 0, 1, 7, 8, 2048, 4088, 4095 };
    uint32_t room = hi - lo - len;
    uint32_t off = lo + rnd_below((uint64_t)room + 1);
    if (rnd_below(2) == 0) {
        uint32_t page = off & ~(PAGE - 1);
        uint32_t cand = page + edges[rnd_below(sizeof(edges) / sizeof(edges[0]))];
        if (cand >= lo && cand + len <= hi)
            off = cand;
    }
    return off;
}

static PMDL make_buffer(uint32_t off, uint32_t len, bool io)
{
    PMDL m = NULL;
    if (io) {
        m = IoAllocateMdl(arena + off, len, FALSE, FALSE, NULL);
        n_io_mdl++;
    } else {
        NDIS_STATUS st = NDIS_STATUS_PENDING;
        NdisAllocateBuffer(&st, &m, buffer_pool, arena + off, len);
        assert_int_equal(st, NDIS_STATUS_SUCCESS);
    }
    assert_non_null(m);
    assert_null(m->Next);
    return m;
}

/* Chains the model's buffers so the packet ends up in model order, by a random mixture of
 * back-chaining, front-chaining and splicing a pre-linked sub-chain. */
static void chain_in_order(side *s)
{
    int k = (int)rnd_below((uint64_t)s->n + 1); /* [k, n) goes at the back, [0, k) at the front */
    int i = k;
    while (i < s->n) {
        int run = 1 + (int)rnd_below(3);
        if (i + run > s->n)
            run = s->n - i;
        for (int j = i; j + 1 < i + run; j++)
            s->b[j].mdl->Next = s->b[j + 1].mdl;
        NdisChainBufferAtBack(s->pkt, s->b[i].mdl);
        i += run;
    }
    for (i = k - 1; i >= 0; i--)
        NdisChainBufferAtFront(s->pkt, s->b[i].mdl);
    if (s->n > 0) {
        assert_ptr_equal(s->pkt->Private.Head, s->b[0].mdl);
        assert_ptr_equal(s->pkt->Private.Tail, s->b[s->n - 1].mdl);
    } else {
        assert_null(s->pkt->Private.Head);
    }
}

static PNDIS_PACKET new_packet(void)
{
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    PNDIS_PACKET p = NULL;
    NdisAllocatePacket(&st, &p, packet_pool);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    assert_non_null(p);
    return p;
}

static void build_side(side *s, uint32_t lo, uint32_t hi)
{
    s->pkt = new_packet();
    s->n = rnd_below(40) == 0 ? 0 : 1 + (int)rnd_below(MAX_BUFS);
    for (int i = 0; i < s->n; i++) {
        uint32_t len = random_len(hi - lo);
        uint32_t off = random_off(lo, hi, len);
        bool io = rnd_below(5) == 0;
        s->b[i] = (bufrec){ make_buffer(off, len, io), off, len, io };
    }
    side_prefix(s);
    chain_in_order(s);
    if (s->n == 0)
        n_empty_chain++;
    /* Half the packets carry a valid cache, half an invalid one: neither may change. */
    if (rnd_below(2) == 0) {
        UINT phys, count, total;
        NdisQueryPacket(s->pkt, &phys, &count, NULL, &total);
        assert_int_equal(total, side_total(s));
        assert_int_equal(count, s->n);
    }
}

/* Takes the chain apart, proving the copy left its order intact, and frees everything. */
static void destroy_side(side *s)
{
    for (int i = 0; i < s->n; i++) {
        PNDIS_BUFFER b = NULL;
        if (rnd_below(2) == 0) {
            NdisUnchainBufferAtFront(s->pkt, &b);
            CHECK(b == s->b[i].mdl, "unchain front: got %p, want element %d", (void *)b, i);
        } else {
            /* Take the last one off and put it back, to exercise AtBack on the way. */
            NdisUnchainBufferAtBack(s->pkt, &b);
            CHECK(b == s->b[s->n - 1].mdl, "unchain back: wrong descriptor");
            NdisChainBufferAtBack(s->pkt, b);
            NdisUnchainBufferAtFront(s->pkt, &b);
            CHECK(b == s->b[i].mdl, "unchain front after re-chain: wrong descriptor");
        }
        assert_null(b->Next);
    }
    PNDIS_BUFFER none = (PNDIS_BUFFER)(uintptr_t)1;
    NdisUnchainBufferAtFront(s->pkt, &none);
    assert_null(none);
    for (int i = 0; i < s->n; i++) {
        if (s->b[i].io)
            IoFreeMdl(s->b[i].mdl);
        else
            NdisFreeBuffer(s->b[i].mdl);
    }
    NdisFreePacket(s->pkt);
    s->pkt = NULL;
    s->n = 0;
}

/* ---- offsets and counts biased toward the edges ---- */

static uint32_t random_boundary(const side *s) { return (uint32_t)s->prefix[rnd_below((uint64_t)s->n + 1)]; }

static uint32_t random_offset(const side *s)
{
    uint32_t total = (uint32_t)side_total(s);
    switch (rnd_below(32)) {
    case 0:
    case 1:
    case 2: return 0;
    case 3: return total;
    case 4: return total + 1 + rnd_below(100);
    case 5:
    case 6:
    case 7:
    case 8:
    case 9: return random_boundary(s);
    case 10:
    case 11: return random_boundary(s) + (rnd_below(2) ? 1u : -1u);
    case 12: return 0xFFFFFFFFu - rnd_below(3);
    case 13: return (uint32_t)rnd();
    default: return rnd_below(total);
    }
}

static uint32_t random_count(const side *d, uint32_t doff, const side *s, uint32_t soff)
{
    uint32_t td = (uint32_t)side_total(d), ts = (uint32_t)side_total(s);
    uint32_t big = td > ts ? td : ts;
    switch (rnd_below(10)) {
    case 0: return 0;
    case 1: return 1 + rnd_below(8);
    case 2:
    case 3: return rnd_below((uint64_t)big + 2);
    case 4: return big + 1 + rnd_below(1000);
    case 5: return 0xFFFFFFFFu;
    case 6: return random_boundary(d) - doff; /* ends on a destination boundary (or wraps) */
    case 7: return random_boundary(s) - soff;
    case 8: return (uint32_t)rnd();
    default: return rnd_below(64);
    }
}

/* ---- the model (decision 20) ---- */

/* Applies the copy to mem as the contract describes it and returns the expected BytesCopied.
 * Both offsets address logical bytes of their chain; the copy runs over min(count, what is left
 * on each side) bytes and is split wherever either side crosses a buffer end, each piece moved
 * with memmove in order: with overlapping memory a later piece sees what an earlier one wrote. */
static uint32_t model_copy(const side *d, uint32_t doff, uint32_t count, const side *s,
                           uint32_t soff, uint8_t *mem, uint8_t *mask, unsigned long *overlaps,
                           unsigned long *segments)
{
    uint64_t td = side_total(d), ts = side_total(s);
    if (doff >= td || soff >= ts)
        return 0;
    uint64_t n = count;
    if (n > td - doff)
        n = td - doff;
    if (n > ts - soff)
        n = ts - soff;
    *segments = 0;
    for (uint64_t k = 0; k < n;) {
        uint64_t dx = doff + k, sx = soff + k;
        uint64_t stop = n;
        uint64_t dend = side_next_end(d, dx) - doff, send = side_next_end(s, sx) - soff;
        if (dend < stop)
            stop = dend;
        if (send < stop)
            stop = send;
        uint32_t len = (uint32_t)(stop - k);
        uint32_t da = side_addr(d, dx), sa = side_addr(s, sx);
        if (da < sa + len && sa < da + len)
            (*overlaps)++;
        memmove(mem + da, mem + sa, len);
        memset(mask + da, 1, len);
        (*segments)++;
        k = stop;
    }
    return (uint32_t)n;
}

/* ---- one differential run ---- */

typedef struct snapshot {
    NDIS_PACKET_PRIVATE priv[2];
    MDL mdl[2][MAX_BUFS];
} snapshot;

static void take_snapshot(snapshot *sn, const side *sides[2])
{
    for (int k = 0; k < 2; k++) {
        sn->priv[k] = sides[k]->pkt->Private;
        for (int i = 0; i < sides[k]->n; i++)
            sn->mdl[k][i] = *sides[k]->b[i].mdl;
    }
}

static void check_snapshot(const snapshot *sn, const side *sides[2])
{
    for (int k = 0; k < 2; k++) {
        const NDIS_PACKET_PRIVATE *now = &sides[k]->pkt->Private, *was = &sn->priv[k];
        CHECK(now->Head == was->Head && now->Tail == was->Tail, "%s packet: Head/Tail changed",
              k ? "source" : "destination");
        CHECK(now->ValidCounts == was->ValidCounts, "%s packet: ValidCounts %d -> %d",
              k ? "source" : "destination", was->ValidCounts, now->ValidCounts);
        CHECK(now->PhysicalCount == was->PhysicalCount && now->Count == was->Count &&
                  now->TotalLength == was->TotalLength,
              "%s packet: cached counts changed", k ? "source" : "destination");
        CHECK(memcmp(now, was, sizeof(*now)) == 0, "%s packet: Private changed",
              k ? "source" : "destination");
        for (int i = 0; i < sides[k]->n; i++)
            CHECK(memcmp(sides[k]->b[i].mdl, &sn->mdl[k][i], sizeof(MDL)) == 0,
                  "%s buffer %d: descriptor header changed", k ? "source" : "destination", i);
    }
}

static void describe_side(char *out, size_t cap, const char *name, const side *s)
{
    size_t used = strlen(out);
    snprintf(out + used, cap - used, " %s[", name);
    for (int i = 0; i < s->n; i++) {
        used = strlen(out);
        snprintf(out + used, cap - used, "%s%u@%u%s", i ? " " : "", s->b[i].len, s->b[i].off,
                 s->b[i].io ? "io" : "");
    }
    used = strlen(out);
    snprintf(out + used, cap - used, "]");
}

static void run_once(const side *d, uint32_t doff, uint32_t count, const side *s, uint32_t soff,
                     bool safe)
{
    const side *sides[2] = { d, s };
    snapshot sn;
    unsigned long overlaps = 0, segments = 0;

    memcpy(expect, arena, ARENA_SIZE);
    memset(written, 0, ARENA_SIZE);
    uint32_t want = model_copy(d, doff, count, s, soff, expect, written, &overlaps, &segments);
    take_snapshot(&sn, sides);

    UINT copied = 0xA5A5A5A5u;
    if (safe) {
        MM_PAGE_PRIORITY prio = rnd_below(2) ? NormalPagePriority : LowPagePriority;
        NdisCopyFromPacketToPacketSafe(d->pkt, doff, count, s->pkt, soff, &copied, prio);
    } else {
        NdisCopyFromPacketToPacket(d->pkt, doff, count, s->pkt, soff, &copied);
    }
    n_calls++;
    CHECK(copied == want, "%s: BytesCopied %u, model %u", safe ? "Safe" : "plain", copied, want);
    /* expect equals before wherever the model did not write, so one compare covers both the
     * destination bytes and "nothing else moved"; the scan only names the first culprit. */
    if (memcmp(arena, expect, ARENA_SIZE) != 0) {
        uint32_t i = 0;
        while (arena[i] == expect[i])
            i++;
        CHECK(written[i], "%s: byte %u changed outside the destination range (%#x -> %#x)",
              safe ? "Safe" : "plain", i, before[i], arena[i]);
        CHECK(false, "%s: destination byte at arena %u is %#x, model %#x", safe ? "Safe" : "plain",
              i, arena[i], expect[i]);
    }
    check_snapshot(&sn, sides);
    if (!safe) {
        if (want == 0)
            n_zero++;
        else if (want == count)
            n_full++;
        else
            n_partial++;
        n_overlap_segments += overlaps;
        n_multi_segment += segments > 1;
    }
}

static void fill_arena(void)
{
    for (uint32_t i = 0; i < ARENA_SIZE; i += 8) {
        uint64_t v = rnd();
        memcpy(arena + i, &v, 8);
    }
}

enum mode { MODE_DISJOINT, MODE_SAME_PACKET, MODE_OVERLAP, MODE_COUNT };

static void copy_iteration(int it)
{
    static const char *const names[] = { "disjoint", "same-packet", "overlapping" };
    enum mode mode = (enum mode)rnd_below(MODE_COUNT);
    side d, s;
    const side *src = &s;
    switch (mode) {
    case MODE_DISJOINT:
        build_side(&d, ARENA_SIZE / 2, ARENA_SIZE);
        build_side(&s, 0, ARENA_SIZE / 2);
        break;
    case MODE_SAME_PACKET: {
        /* A small region now and then, so a chain's own buffers overlap one another. */
        uint32_t hi = rnd_below(2) ? 2 * PAGE : ARENA_SIZE;
        build_side(&d, 0, hi);
        src = &d;
        n_same_packet++;
        break;
    }
    default: {
        uint32_t lo = PAGE * rnd_below(3), hi = lo + PAGE + rnd_below(2 * PAGE);
        build_side(&d, lo, hi);
        build_side(&s, lo, hi);
        break;
    }
    }
    uint32_t doff = random_offset(&d), soff = random_offset(src);
    uint32_t count = random_count(&d, doff, src, soff);

    snprintf(case_desc, sizeof(case_desc), "iteration %d (%s) DstOff %u SrcOff %u N %u:", it,
             names[mode], doff, soff, count);
    describe_side(case_desc, sizeof(case_desc), "dst", &d);
    if (src != &d)
        describe_side(case_desc, sizeof(case_desc), "src", src);

    fill_arena();
    memcpy(before, arena, ARENA_SIZE);
    run_once(&d, doff, count, src, soff, false);
    memcpy(arena, before, ARENA_SIZE);
    run_once(&d, doff, count, src, soff, true);

    destroy_side(&d);
    if (src != &d)
        destroy_side(&s);
}

static void test_copy_random(void **state)
{
    (void)state;
    for (int it = 0; it < COPY_ITERATIONS; it++)
        copy_iteration(it);
    case_desc[0] = '\0';
    assert_int_equal(NdisPacketPoolUsage(packet_pool), 0);
    LIBNDIS_POOL_INFO info;
    assert_int_equal(LibNdisQueryBufferPool(buffer_pool, &info), NDIS_STATUS_SUCCESS);
    assert_int_equal(info.InUse, 0);
}

/* Hand-made cases the random run reaches only by chance: pinned so a regression names itself. */
static void test_copy_pinned(void **state)
{
    (void)state;
    side d, s;
    fill_arena();
    /* Offsets exactly on boundaries with empty buffers in between. */
    d.pkt = new_packet();
    s.pkt = new_packet();
    const uint32_t dl[] = { 4, 0, 0, 6 }, sl[] = { 0, 3, 0, 0, 7 };
    d.n = 4;
    s.n = 5;
    for (int i = 0; i < d.n; i++)
        d.b[i] = (bufrec){ make_buffer(20000 + 100 * i, dl[i], false), 20000 + 100 * i, dl[i], false };
    for (int i = 0; i < s.n; i++)
        s.b[i] = (bufrec){ make_buffer(100 * i + 1, sl[i], i == 1), 100 * i + 1, sl[i], i == 1 };
    side_prefix(&d);
    side_prefix(&s);
    chain_in_order(&d);
    chain_in_order(&s);
    snprintf(case_desc, sizeof(case_desc), "pinned boundary case");
    memcpy(before, arena, ARENA_SIZE);
    UINT copied = 77;
    /* Dst offset 4 is the start of the 6-byte buffer; src offset 3 the start of the 7-byte one. */
    NdisCopyFromPacketToPacket(d.pkt, 4, 100, s.pkt, 3, &copied);
    assert_int_equal(copied, 6);
    assert_memory_equal(arena + 20300, before + 401, 6);
    assert_memory_equal(arena + 20000, before + 20000, 4);
    /* Offsets at the total: nothing. */
    copied = 77;
    NdisCopyFromPacketToPacket(d.pkt, 10, 5, s.pkt, 0, &copied);
    assert_int_equal(copied, 0);
    copied = 77;
    NdisCopyFromPacketToPacketSafe(d.pkt, 0, 5, s.pkt, 10, &copied, NormalPagePriority);
    assert_int_equal(copied, 0);
    destroy_side(&d);
    destroy_side(&s);

    /* Same buffer, shifted by one in both directions: memmove, not memcpy. */
    d.pkt = new_packet();
    d.n = 1;
    d.b[0] = (bufrec){ make_buffer(4000, 200, false), 4000, 200, false };
    side_prefix(&d);
    chain_in_order(&d);
    memcpy(before, arena, ARENA_SIZE);
    NdisCopyFromPacketToPacket(d.pkt, 1, 199, d.pkt, 0, &copied);
    assert_int_equal(copied, 199);
    assert_memory_equal(arena + 4001, before + 4000, 199);
    memcpy(before, arena, ARENA_SIZE);
    NdisCopyFromPacketToPacket(d.pkt, 0, 199, d.pkt, 1, &copied);
    assert_int_equal(copied, 199);
    assert_memory_equal(arena + 4000, before + 4001, 199);
    destroy_side(&d);
    case_desc[0] = '\0';
}

/* ---- NdisQueryPacket counts after random chain edits ---- */

typedef struct count_model {
    int n;
    bufrec b[MAX_BUFS];
    PNDIS_BUFFER tail;  /* what Private.Tail must hold, stale values included */
    bool valid;
    UINT phys, count, total;
} count_model;

static UINT span_pages(uint32_t off, uint32_t len)
{
    if (len == 0)
        return 1;
    uintptr_t va = (uintptr_t)(arena + off);
    return (UINT)(((va % PAGE) + len + PAGE - 1) / PAGE);
}

static void model_recount(count_model *m)
{
    m->phys = m->count = m->total = 0;
    for (int i = 0; i < m->n; i++) {
        m->phys += span_pages(m->b[i].off, m->b[i].len);
        m->count++;
        m->total += m->b[i].len;
    }
    m->valid = true;
}

static void check_chain(PNDIS_PACKET p, const count_model *m)
{
    PNDIS_BUFFER b = p->Private.Head;
    for (int i = 0; i < m->n; i++, b = b->Next)
        CHECK(b == m->b[i].mdl, "chain element %d: %p, model %p", i, (void *)b,
              (void *)m->b[i].mdl);
    CHECK(b == NULL, "chain longer than the model's %d", m->n);
    CHECK(p->Private.Tail == m->tail, "Tail %p, model %p", (void *)p->Private.Tail,
          (void *)m->tail);
    CHECK(p->Private.ValidCounts == (m->valid ? TRUE : FALSE), "ValidCounts %d, model %d",
          p->Private.ValidCounts, m->valid);
}

static void walk_query(PNDIS_PACKET p, count_model *m)
{
    unsigned ask = rnd_below(16); /* bit 0 phys, 1 count, 2 first, 3 total */
    UINT phys = 0xEEEE, count = 0xEEEE, total = 0xEEEE;
    PNDIS_BUFFER first = (PNDIS_BUFFER)(uintptr_t)1;
    NdisQueryPacket(p, (ask & 1) ? &phys : NULL, (ask & 2) ? &count : NULL,
                    (ask & 4) ? &first : NULL, (ask & 8) ? &total : NULL);
    n_queries++;
    if (ask & 4)
        CHECK(first == (m->n ? m->b[0].mdl : NULL), "FirstBuffer %p", (void *)first);
    if (ask & 11) {
        if (!m->valid) {
            model_recount(m);
        } else {
            count_model fresh = *m;
            model_recount(&fresh);
            n_cache_returns++;
            n_stale_returns += fresh.total != m->total || fresh.phys != m->phys;
        }
    }
    if (ask & 1)
        CHECK(phys == m->phys, "PhysicalBufferCount %u, model %u", phys, m->phys);
    if (ask & 2)
        CHECK(count == m->count, "BufferCount %u, model %u", count, m->count);
    if (ask & 8)
        CHECK(total == m->total, "TotalPacketLength %u, model %u", total, m->total);
}

static void walk_add(PNDIS_PACKET p, count_model *m)
{
    int k = 1 + (int)rnd_below(3);
    if (m->n + k > MAX_BUFS)
        return;
    bufrec nb[3];
    for (int i = 0; i < k; i++) {
        uint32_t len = random_len(2 * PAGE);
        uint32_t off = random_off(0, ARENA_SIZE, len);
        bool io = rnd_below(4) == 0;
        nb[i] = (bufrec){ make_buffer(off, len, io), off, len, io };
        if (i > 0)
            nb[i - 1].mdl->Next = nb[i].mdl;
    }
    if (rnd_below(2) == 0) {
        NdisChainBufferAtFront(p, nb[0].mdl);
        if (m->n == 0)
            m->tail = nb[k - 1].mdl;
        memmove(m->b + k, m->b, (size_t)m->n * sizeof(bufrec));
        memcpy(m->b, nb, (size_t)k * sizeof(bufrec));
    } else {
        NdisChainBufferAtBack(p, nb[0].mdl);
        m->tail = nb[k - 1].mdl;
        memcpy(m->b + m->n, nb, (size_t)k * sizeof(bufrec));
    }
    m->n += k;
    m->valid = false;
}

static void free_rec(const bufrec *r)
{
    /* Every descriptor goes through whichever free the coin picks: both accept both kinds. */
    if (rnd_below(2))
        IoFreeMdl(r->mdl);
    else
        NdisFreeBuffer(r->mdl);
}

static void walk_remove(PNDIS_PACKET p, count_model *m, bool front)
{
    PNDIS_BUFFER b = (PNDIS_BUFFER)(uintptr_t)1;
    if (front)
        NdisUnchainBufferAtFront(p, &b);
    else
        NdisUnchainBufferAtBack(p, &b);
    if (m->n == 0) {
        CHECK(b == NULL, "unchain from an empty packet gave %p", (void *)b);
        return; /* nothing else may change, ValidCounts included */
    }
    bufrec r = front ? m->b[0] : m->b[m->n - 1];
    CHECK(b == r.mdl, "unchain %s: %p, model %p", front ? "front" : "back", (void *)b,
          (void *)r.mdl);
    CHECK(b->Next == NULL, "unchained descriptor keeps Next %p", (void *)b->Next);
    if (front)
        memmove(m->b, m->b + 1, (size_t)(m->n - 1) * sizeof(bufrec));
    m->n--;
    if (front)
        m->tail = m->n == 0 ? NULL : m->tail;
    else
        m->tail = m->n == 0 ? NULL : m->b[m->n - 1].mdl;
    m->valid = false;
    free_rec(&r);
}

/* Lengths changed behind the packet's back: the cache stays valid and stale until recomputed. */
static void walk_adjust(count_model *m)
{
    if (m->n == 0)
        return;
    int i = (int)rnd_below((uint64_t)m->n);
    uint32_t len = rnd_below((uint64_t)m->b[i].len + 1);
    NdisAdjustBufferLength(m->b[i].mdl, len);
    m->b[i].len = len;
}

static void walk_step(PNDIS_PACKET p, count_model *m)
{
    switch (rnd_below(12)) {
    case 0:
    case 1:
    case 2: walk_add(p, m); break;
    case 3: walk_remove(p, m, true); break;
    case 4: walk_remove(p, m, false); break;
    case 5: walk_adjust(m); break;
    case 6:
        NdisRecalculatePacketCounts(p);
        if (m->n)
            m->tail = m->b[m->n - 1].mdl;
        m->valid = false;
        break;
    case 7: {
        UINT len = 0xEEEE;
        NdisQueryPacketLength(p, &len);
        if (!m->valid)
            model_recount(m);
        CHECK(len == m->total, "NdisQueryPacketLength %u, model %u", len, m->total);
        break;
    }
    case 8:
        if (rnd_below(3) == 0) {
            /* Reinitialize drops the chain; the buffers are still ours to free. Tail stays. */
            NdisReinitializePacket(p);
            for (int i = 0; i < m->n; i++)
                free_rec(&m->b[i]);
            m->n = 0;
            m->valid = false;
        }
        break;
    default: walk_query(p, m); break;
    }
}

static void test_counts_random(void **state)
{
    (void)state;
    for (int w = 0; w < COUNT_WALKS; w++) {
        PNDIS_PACKET p = new_packet();
        count_model m = { .n = 0, .tail = NULL, .valid = true };
        snprintf(case_desc, sizeof(case_desc), "count walk %d", w);
        check_chain(p, &m);
        for (int s = 0; s < WALK_STEPS; s++) {
            walk_step(p, &m);
            check_chain(p, &m);
        }
        while (m.n > 0) {
            walk_remove(p, &m, rnd_below(2));
            check_chain(p, &m);
        }
        NdisFreePacket(p);
    }
    case_desc[0] = '\0';
    assert_int_equal(NdisPacketPoolUsage(packet_pool), 0);
}

static void test_coverage(void **state)
{
    (void)state;
    printf("test_packet_copy_random: %lu copy calls: %lu zero, %lu partial, %lu full; %lu "
           "same-packet, %lu multi-segment, %lu overlapping segments, %lu empty chains, %lu "
           "IoAllocateMdl buffers; %lu queries, %lu answered from a valid cache, %lu of them "
           "stale\n",
           n_calls, n_zero, n_partial, n_full, n_same_packet, n_multi_segment,
           n_overlap_segments, n_empty_chain, n_io_mdl, n_queries, n_cache_returns, n_stale_returns);
    assert_true(n_calls >= 2ul * COPY_ITERATIONS);
    unsigned long plain = n_calls / 2;
    assert_true(n_zero > plain / 20 && n_partial > plain / 20 && n_full > plain / 20);
    assert_true(n_multi_segment > plain / 10);
    assert_true(n_overlap_segments > plain / 50);
    assert_true(n_cache_returns > 1000 && n_stale_returns > 100);
}

static int setup(void **state)
{
    (void)state;
    NDIS_STATUS st = NDIS_STATUS_PENDING;
    NdisAllocatePacketPool(&st, &packet_pool, 4, 16);
    if (st != NDIS_STATUS_SUCCESS || packet_pool == NULL)
        return -1;
    NdisAllocateBufferPool(&st, &buffer_pool, 64);
    return st == NDIS_STATUS_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    NdisFreePacketPool(packet_pool);
    NdisFreeBufferPool(buffer_pool);
    return 0;
}

int main(void)
{
    const char *env = getenv("LIBNDIS_TEST_SEED");
    seed = env != NULL && *env != '\0' ? strtoull(env, NULL, 0) : DEFAULT_SEED;
    printf("test_packet_copy_random: seed %#llx (set LIBNDIS_TEST_SEED to replay)\n",
           (unsigned long long)seed);
    rng_state = seed;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_pinned),
        cmocka_unit_test(test_copy_random),
        cmocka_unit_test(test_counts_random),
        cmocka_unit_test(test_coverage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
