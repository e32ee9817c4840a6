/* SPDX-License-Identifier: MIT */
/* bench_pool.c - single-thread cost of the buffer and packet fast paths, libndis against the
 * back-ends of floor.h: W1 (allocate + free), W3 (NdisCopyBuffer of a k-descriptor frame) and W4
 * (the packet cycle). Runs itself in pinned processes, prints a table and one JSON line per row.
 * How to run and read: README.md. */
#define _GNU_SOURCE
#ifndef LIBNDIS_BENCH_LINK
#define LIBNDIS_BENCH_LINK "unknown"
#endif
#include <ndis.h>
#include <libndis.h>

#include "floor.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_INLINE static inline __attribute__((always_inline))
#define BENCH_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- back-ends ---- */

/* libndis+verify is the product with its checked mode on (LIBNDIS_VERIFY=all): the same calls,
 * the verifier switched on around its own slices only (outside the timers). */
enum backend { BE_LIBNDIS, BE_FLOOR, BE_FLOOR_CACHE, BE_MALLOC, BE_LIBNDIS_VERIFY, BE_COUNT };

static const char *const be_name[BE_COUNT] = {
    [BE_LIBNDIS] = "libndis",
    [BE_FLOOR] = "floor",
    [BE_FLOOR_CACHE] = "floor-cache",
    [BE_MALLOC] = "malloc",
    [BE_LIBNDIS_VERIFY] = "libndis+verify",
};

#define BE_IS_LIBNDIS(be) ((be) == BE_LIBNDIS || (be) == BE_LIBNDIS_VERIFY)

static void be_verifier(enum backend be, int on)
{
    if (be == BE_LIBNDIS_VERIFY)
        LibNdisVerifierConfigure(on ? "all,abort=none,backtrace=0" : "none");
}

static void *be_pool[BE_COUNT];     /* buffer pools */
static void *be_pkt_pool[BE_COUNT]; /* packet pools (W4) */

enum {
    W4_PROTOCOL_RESERVED = 16, /* ProtocolReservedLength of the W4 packet pools */
    W4_POOL_PACKETS = 256,     /* NumberOfDescriptors: far more than W4 ever has out */
    W4_PROTOCOL_ID = 5,        /* set on every packet pool, so the self-check sees Flags copied */
};

static __attribute__((noinline, noreturn, cold)) void bench_fail(enum backend be, const char *what)
{
    fprintf(stderr, "bench_pool: %s: %s\n", be_name[be], what);
    exit(2);
}

/* `be` is a constant wherever the timed loops are instantiated, so the switch folds away and
 * each loop calls its back-end directly: no indirect call per operation. */
BENCH_INLINE void be_allocate(enum backend be, NDIS_STATUS *st, PNDIS_BUFFER *b, void *pool,
                              PVOID va, UINT len)
{
    switch (be) {
    case BE_LIBNDIS:
    case BE_LIBNDIS_VERIFY:
        NdisAllocateBuffer(st, b, pool, va, len);
        break;
    case BE_FLOOR:
        floor_list_allocate(st, b, pool, va, len);
        break;
    case BE_FLOOR_CACHE:
        floor_cache_allocate(st, b, pool, va, len);
        break;
    default:
        floor_heap_allocate(st, b, pool, va, len);
        break;
    }
}

BENCH_INLINE void be_copy(enum backend be, NDIS_STATUS *st, PNDIS_BUFFER *b, void *pool,
                          PMDL src, UINT off, UINT len)
{
    switch (be) {
    case BE_LIBNDIS:
    case BE_LIBNDIS_VERIFY:
        NdisCopyBuffer(st, b, pool, src, off, len);
        break;
    case BE_FLOOR:
        floor_list_copy(st, b, pool, src, off, len);
        break;
    case BE_FLOOR_CACHE:
        floor_cache_copy(st, b, pool, src, off, len);
        break;
    default:
        floor_heap_copy(st, b, pool, src, off, len);
        break;
    }
}

BENCH_INLINE void be_free(enum backend be, PNDIS_BUFFER b)
{
    switch (be) {
    case BE_LIBNDIS:
    case BE_LIBNDIS_VERIFY:
        NdisFreeBuffer(b);
        break;
    case BE_FLOOR:
        floor_list_free(b);
        break;
    case BE_FLOOR_CACHE:
        floor_cache_free(b);
        break;
    default:
        floor_heap_free(b);
        break;
    }
}

BENCH_INLINE void be_pkt_allocate(enum backend be, NDIS_STATUS *st, PNDIS_PACKET *p, void *pool)
{
    switch (be) {
    case BE_LIBNDIS:
    case BE_LIBNDIS_VERIFY:
        NdisAllocatePacket(st, p, pool);
        break;
    case BE_FLOOR:
        floor_list_pkt_allocate(st, p, pool);
        break;
    case BE_FLOOR_CACHE:
        floor_cache_pkt_allocate(st, p, pool);
        break;
    default:
        floor_heap_pkt_allocate(st, p, pool);
        break;
    }
}

BENCH_INLINE void be_pkt_free(enum backend be, PNDIS_PACKET p)
{
    switch (be) {
    case BE_LIBNDIS:
    case BE_LIBNDIS_VERIFY:
        NdisFreePacket(p);
        break;
    case BE_FLOOR:
        floor_list_pkt_free(p);
        break;
    case BE_FLOOR_CACHE:
        floor_cache_pkt_free(p);
        break;
    default:
        floor_heap_pkt_free(p);
        break;
    }
}

BENCH_INLINE void be_chain_back(enum backend be, PNDIS_PACKET p, PNDIS_BUFFER b)
{
    if (BE_IS_LIBNDIS(be))
        NdisChainBufferAtBack(p, b);
    else
        floor_chain_at_back(p, b);
}

BENCH_INLINE void be_unchain_front(enum backend be, PNDIS_PACKET p, PNDIS_BUFFER *b)
{
    if (BE_IS_LIBNDIS(be))
        NdisUnchainBufferAtFront(p, b);
    else
        floor_unchain_at_front(p, b);
}

BENCH_INLINE void be_free_chain(enum backend be, PMDL m)
{
    while (m != NULL) {
        PMDL next = m->Next;
        be_free(be, m);
        m = next;
    }
}

static int be_setup_buffers(enum backend be)
{
    NDIS_STATUS st;
    switch (be) {
    case BE_LIBNDIS:
    case BE_LIBNDIS_VERIFY:
        /* A NULL handle here would be the default pool: still the product, still measured. */
        NdisAllocateBufferPool(&st, &be_pool[be], 1024);
        return st == NDIS_STATUS_SUCCESS;
    case BE_FLOOR:
        return (be_pool[be] = floor_list_create()) != NULL;
    case BE_FLOOR_CACHE:
        return (be_pool[be] = floor_depot_create()) != NULL;
    default:
        return 1;
    }
}

static int be_setup_packets(enum backend be)
{
    if (BE_IS_LIBNDIS(be)) {
        NDIS_STATUS st;
        NdisAllocatePacketPool(&st, &be_pkt_pool[be], W4_POOL_PACKETS, W4_PROTOCOL_RESERVED);
        if (st != NDIS_STATUS_SUCCESS || be_pkt_pool[be] == NULL)
            return 0;
        NdisSetPacketPoolProtocolId(be_pkt_pool[be], W4_PROTOCOL_ID);
        return 1;
    }
    enum floor_kind kind = be == BE_FLOOR         ? FLOOR_KIND_LIST
                           : be == BE_FLOOR_CACHE ? FLOOR_KIND_CACHE
                                                  : FLOOR_KIND_HEAP;
    struct floor_pkt_pool *p = floor_pkt_pool_create(kind, W4_POOL_PACKETS, W4_PROTOCOL_RESERVED);
    if (p == NULL)
        return 0;
    floor_pkt_pool_set_protocol_id(p, W4_PROTOCOL_ID);
    be_pkt_pool[be] = p;
    return 1;
}

static int be_setup(enum backend be)
{
    return be_setup_buffers(be) && be_setup_packets(be);
}

static void be_teardown(enum backend be)
{
    switch (be) {
    case BE_LIBNDIS:
    case BE_LIBNDIS_VERIFY:
        NdisFreeBufferPool(be_pool[be]);
        NdisFreePacketPool(be_pkt_pool[be]);
        break;
    case BE_FLOOR:
        floor_list_destroy(be_pool[be]);
        floor_pkt_pool_destroy(be_pkt_pool[be]);
        break;
    case BE_FLOOR_CACHE:
        floor_depot_destroy(be_pool[be]);
        floor_pkt_pool_destroy(be_pkt_pool[be]);
        break;
    default:
        floor_pkt_pool_destroy(be_pkt_pool[be]);
        break;
    }
    be_pool[be] = NULL;
    be_pkt_pool[be] = NULL;
}

/* ---- workloads ---- */

enum { W1, W3, W4, WL_COUNT };
static const char *const wl_name[WL_COUNT] = {"W1", "W3", "W4"};
/* What one operation of each workload is, for the JSON lines. */
static const char *const wl_op[WL_COUNT] = {"allocate_free_pair", "copy_and_free_chain",
                                            "packet_cycle"};

enum {
    FRAME_LEN = 1514,
    W3_PAIRS = 4096, /* power of two: the loop indexes with a mask */
    N_KS = 3,        /* k = 1, 4, 16 of W3 and W4 */
    MAX_K = 16,
};
static const int g_k[N_KS] = {1, 4, 16};
static const char *const k_name[N_KS] = {"1", "4", "16"};

struct w3_pair {
    UINT off;
    UINT len;
};

/* One of the k buffers W4 describes: a part of the frame. */
struct w4_part {
    PVOID va;
    UINT len;
};

static _Alignas(4096) unsigned char g_arena[8 * PAGE_SIZE];
static PVOID g_w1_va;                    /* W1 buffer: pages 0-1 of the arena */
static unsigned char *g_frame;           /* W3 and W4 frame: pages 4-5 */
static struct w3_pair g_pairs[W3_PAIRS];
static PMDL g_src[BE_COUNT][N_KS];       /* each back-end's own source chains */
static struct w4_part g_parts[N_KS][MAX_K];

BENCH_INLINE void w1_loop(enum backend be, size_t iters)
{
    void *pool = be_pool[be];
    PVOID va = g_w1_va;
    for (size_t i = 0; i < iters; i++) {
        NDIS_STATUS st;
        PNDIS_BUFFER b;
        be_allocate(be, &st, &b, pool, va, FRAME_LEN);
        if (BENCH_UNLIKELY(st != NDIS_STATUS_SUCCESS))
            bench_fail(be, "W1 allocate failed");
        be_free(be, b);
    }
}

/* `start` carries on through the pair table from where the previous slice stopped. */
BENCH_INLINE void w3_loop(enum backend be, size_t iters, PMDL src, size_t start)
{
    void *pool = be_pool[be];
    const struct w3_pair *pairs = g_pairs;
    for (size_t i = start; i < start + iters; i++) {
        const struct w3_pair *p = &pairs[i & (W3_PAIRS - 1)];
        NDIS_STATUS st;
        PNDIS_BUFFER b;
        be_copy(be, &st, &b, pool, src, p->off, p->len);
        if (BENCH_UNLIKELY(st != NDIS_STATUS_SUCCESS))
            bench_fail(be, "W3 copy failed");
        be_free_chain(be, b);
    }
}

/* The packet cycle: a packet, k buffers over the frame's parts chained at its back, unchained
 * one by one at its front and freed, then the packet freed. */
BENCH_INLINE void w4_loop(enum backend be, size_t iters, const struct w4_part *parts, int k)
{
    void *ppool = be_pkt_pool[be], *bpool = be_pool[be];
    for (size_t i = 0; i < iters; i++) {
        NDIS_STATUS st;
        PNDIS_PACKET p;
        be_pkt_allocate(be, &st, &p, ppool);
        if (BENCH_UNLIKELY(st != NDIS_STATUS_SUCCESS))
            bench_fail(be, "W4 packet allocate failed");
        for (int j = 0; j < k; j++) {
            PNDIS_BUFFER b;
            be_allocate(be, &st, &b, bpool, parts[j].va, parts[j].len);
            if (BENCH_UNLIKELY(st != NDIS_STATUS_SUCCESS))
                bench_fail(be, "W4 buffer allocate failed");
            be_chain_back(be, p, b);
        }
        for (int j = 0; j < k; j++) {
            PNDIS_BUFFER b;
            be_unchain_front(be, p, &b);
            be_free(be, b);
        }
        be_pkt_free(be, p);
    }
}

/* One instantiation per back-end, named so that callgrind's --toggle-collect can pick it. */
#define BENCH_INSTANTIATE(tag, be)                                                 \
    static __attribute__((noinline)) void w1_##tag(size_t iters)                   \
    {                                                                              \
        w1_loop(be, iters);                                                        \
    }                                                                              \
    static __attribute__((noinline)) void w3_##tag(size_t iters, PMDL src,         \
                                                   size_t start)                   \
    {                                                                              \
        w3_loop(be, iters, src, start);                                            \
    }                                                                              \
    static __attribute__((noinline)) void w4_##tag(size_t iters,                   \
                                                   const struct w4_part *parts,    \
                                                   int k)                          \
    {                                                                              \
        w4_loop(be, iters, parts, k);                                              \
    }

BENCH_INSTANTIATE(libndis, BE_LIBNDIS)
BENCH_INSTANTIATE(floor, BE_FLOOR)
BENCH_INSTANTIATE(floor_cache, BE_FLOOR_CACHE)
BENCH_INSTANTIATE(malloc, BE_MALLOC)
BENCH_INSTANTIATE(libndis_verify, BE_LIBNDIS_VERIFY)

/* Called once per repetition, never per operation. */
static void (*const w1_fn[BE_COUNT])(size_t) = {
    [BE_LIBNDIS] = w1_libndis,
    [BE_FLOOR] = w1_floor,
    [BE_FLOOR_CACHE] = w1_floor_cache,
    [BE_MALLOC] = w1_malloc,
    [BE_LIBNDIS_VERIFY] = w1_libndis_verify,
};
static void (*const w3_fn[BE_COUNT])(size_t, PMDL, size_t) = {
    [BE_LIBNDIS] = w3_libndis,
    [BE_FLOOR] = w3_floor,
    [BE_FLOOR_CACHE] = w3_floor_cache,
    [BE_MALLOC] = w3_malloc,
    [BE_LIBNDIS_VERIFY] = w3_libndis_verify,
};
static void (*const w4_fn[BE_COUNT])(size_t, const struct w4_part *, int) = {
    [BE_LIBNDIS] = w4_libndis,
    [BE_FLOOR] = w4_floor,
    [BE_FLOOR_CACHE] = w4_floor_cache,
    [BE_MALLOC] = w4_malloc,
    [BE_LIBNDIS_VERIFY] = w4_libndis_verify,
};

/* ---- seeded inputs ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static ULONG g_w1_offset, g_frame_offset;

/* Part j of a frame split evenly over k: the first FRAME_LEN % k parts get one byte more. */
static void part_range(int k, int j, ULONG *start, ULONG *len)
{
    ULONG base = FRAME_LEN / k, extra = FRAME_LEN % k;
    *start = (ULONG)j * base + ((ULONG)j < extra ? (ULONG)j : extra);
    *len = base + ((ULONG)j < extra);
}

static void make_inputs(uint64_t seed)
{
    rng_state = seed;
    g_w1_offset = (ULONG)(rng_next() % PAGE_SIZE);
    g_frame_offset = (ULONG)(rng_next() % PAGE_SIZE);
    g_w1_va = g_arena + g_w1_offset;
    g_frame = g_arena + 4 * PAGE_SIZE + g_frame_offset;
    for (int i = 0; i < W3_PAIRS; i++) {
        UINT off = (UINT)(rng_next() % FRAME_LEN);
        g_pairs[i].off = off;
        g_pairs[i].len = 1 + (UINT)(rng_next() % (FRAME_LEN - off));
    }
    for (int ki = 0; ki < N_KS; ki++)
        for (int j = 0; j < g_k[ki]; j++) {
            ULONG start, len;
            part_range(g_k[ki], j, &start, &len);
            g_parts[ki][j] = (struct w4_part){g_frame + start, len};
        }
}

static int build_sources(enum backend be)
{
    for (int ki = 0; ki < N_KS; ki++) {
        PMDL *tail = &g_src[be][ki];
        for (int j = 0; j < g_k[ki]; j++) {
            ULONG start, len;
            NDIS_STATUS st;
            part_range(g_k[ki], j, &start, &len);
            be_allocate(be, &st, tail, be_pool[be], g_frame + start, len);
            if (st != NDIS_STATUS_SUCCESS)
                return 0;
            tail = &(*tail)->Next;
        }
    }
    return 1;
}

/* ---- self-verification: the timed paths must produce what the contract says ---- */

static const char *check_mdl(const MDL *m, const unsigned char *va, ULONG len, CSHORT flags)
{
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, len);
    if (m->Size != (CSHORT)(sizeof(MDL) + pages * sizeof(PFN_NUMBER)))
        return "Size != MmSizeOfMdl(va, len)";
    if (m->MdlFlags != flags)
        return "unexpected MdlFlags";
    if (m->Process != NULL)
        return "Process not NULL";
    if (m->MappedSystemVa != va)
        return "MappedSystemVa is not the data address";
    if (m->StartVa != PAGE_ALIGN(va) || m->ByteOffset != BYTE_OFFSET(va))
        return "StartVa/ByteOffset do not describe the data address";
    if (m->ByteCount != len)
        return "ByteCount is not the length";
    const PFN_NUMBER *pfn = MmGetMdlPfnArray(m);
    for (ULONG i = 0; i < pages; i++)
        if (pfn[i] != ((ULONG_PTR)va >> PAGE_SHIFT) + i)
            return "PFN array does not hold the pseudo-PFNs";
    return NULL;
}

static const char *verify_w1(enum backend be)
{
    NDIS_STATUS st;
    PNDIS_BUFFER b = NULL;
    be_allocate(be, &st, &b, be_pool[be], g_w1_va, FRAME_LEN);
    if (st != NDIS_STATUS_SUCCESS || b == NULL)
        return "W1: allocate failed";
    const char *err = b->Next != NULL ? "W1: Next not NULL"
                                      : check_mdl(b, g_w1_va, FRAME_LEN, MDL_SOURCE_IS_NONPAGED_POOL);
    be_free(be, b);
    return err;
}

/* The result chain must map exactly [off, off+len) of the frame, one partial per part touched. */
static const char *check_copy(PMDL b, int k, ULONG off, ULONG len)
{
    for (int j = 0; j < k; j++) {
        ULONG start, plen;
        part_range(k, j, &start, &plen);
        ULONG lo = start > off ? start : off;
        ULONG hi = start + plen < off + len ? start + plen : off + len;
        if (lo >= hi)
            continue;
        if (b == NULL)
            return "W3: chain shorter than the parts the range touches";
        const char *err = check_mdl(b, g_frame + lo, hi - lo, MDL_PARTIAL | MDL_SOURCE_IS_NONPAGED_POOL);
        if (err != NULL)
            return err;
        b = b->Next;
    }
    return b == NULL ? NULL : "W3: chain longer than the parts the range touches";
}

static const char *verify_w3(enum backend be, int ki)
{
    void *pool = be_pool[be];
    PMDL src = g_src[be][ki];
    NDIS_STATUS st;
    PNDIS_BUFFER b;
    for (int i = 0; i <= W3_PAIRS; i++) {
        /* All the timed pairs, then the whole chain. */
        UINT off = i < W3_PAIRS ? g_pairs[i].off : 0;
        UINT len = i < W3_PAIRS ? g_pairs[i].len : FRAME_LEN;
        be_copy(be, &st, &b, pool, src, off, len);
        if (st != NDIS_STATUS_SUCCESS || b == NULL)
            return "W3: copy of an in-range sub-range failed";
        const char *err = check_copy(b, g_k[ki], off, len);
        be_free_chain(be, b);
        if (err != NULL)
            return err;
    }
    b = (PNDIS_BUFFER)1;
    be_copy(be, &st, &b, pool, src, FRAME_LEN, 1);
    if (st != NDIS_STATUS_FAILURE || b != NULL)
        return "W3: copy past the end of the chain did not fail with *Buffer NULL";
    for (PMDL m = src; m != NULL; m = m->Next)
        if (m->MdlFlags != MDL_SOURCE_IS_NONPAGED_POOL)
            return "W3: the source chain was modified";
    return NULL;
}

/* The layout of the packet contract for W4's ProtocolReservedLength. */
static size_t w4_oob_offset(void)
{
    return offsetof(NDIS_PACKET, ProtocolReserved) +
           ((W4_PROTOCOL_RESERVED + sizeof(PVOID) - 1) & ~(sizeof(PVOID) - 1));
}

static size_t w4_packet_size(void)
{
    return w4_oob_offset() + sizeof(NDIS_PACKET_OOB_DATA) + sizeof(NDIS_PACKET_EXTENSION);
}

enum { W4_MAX_PACKET = 512 };
_Static_assert(offsetof(NDIS_PACKET, ProtocolReserved) + W4_PROTOCOL_RESERVED + sizeof(PVOID) +
                       sizeof(NDIS_PACKET_OOB_DATA) + sizeof(NDIS_PACKET_EXTENSION) <=
                   W4_MAX_PACKET,
               "room for an image of a W4 packet");

/* A fresh packet: every byte of NdisPacketSize zero but the five fields NDIS owns. */
static const char *check_fresh_packet(PNDIS_PACKET p, void *pool)
{
    if (p->Private.Pool != pool)
        return "W4: Private.Pool of a fresh packet is not its pool handle";
    if (p->Private.ValidCounts != TRUE)
        return "W4: Private.ValidCounts of a fresh packet is not TRUE";
    if (p->Private.NdisPacketFlags != fPACKET_ALLOCATED_BY_NDIS)
        return "W4: Private.NdisPacketFlags of a fresh packet is not fPACKET_ALLOCATED_BY_NDIS";
    if (p->Private.Flags != W4_PROTOCOL_ID)
        return "W4: Private.Flags of a fresh packet is not the pool's protocol id";
    if (p->Private.NdisPacketOobOffset != w4_oob_offset())
        return "W4: Private.NdisPacketOobOffset is not the contract's OOB offset";
    static _Alignas(16) unsigned char want[W4_MAX_PACKET];
    memset(want, 0, sizeof(want));
    PNDIS_PACKET w = (PNDIS_PACKET)want;
    w->Private.Pool = pool;
    w->Private.ValidCounts = TRUE;
    w->Private.NdisPacketFlags = fPACKET_ALLOCATED_BY_NDIS;
    w->Private.Flags = W4_PROTOCOL_ID;
    w->Private.NdisPacketOobOffset = (USHORT)w4_oob_offset();
    if (memcmp(p, want, w4_packet_size()) != 0)
        return "W4: a fresh packet has a non-zero byte outside the fields NDIS sets";
    return NULL;
}

/* Every byte a driver may write, so that a reallocation must zero them again. */
static void dirty_packet(PNDIS_PACKET p)
{
    p->Private.PhysicalCount = 7;
    p->Private.TotalLength = 9;
    p->Private.Count = 3;
    p->Private.Flags |= NDIS_FLAGS_DONT_LOOPBACK;
    p->Private.ValidCounts = FALSE;
    p->Private.NdisPacketFlags |= fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO;
    memset((char *)p + sizeof(NDIS_PACKET_PRIVATE), 0xA5,
           w4_packet_size() - sizeof(NDIS_PACKET_PRIVATE));
}

/* Allocation, zeroing on reuse, failures, and (pooled back-ends) a second free ignored. */
static const char *verify_w4_packets(enum backend be)
{
    void *ppool = be_pkt_pool[be];
    NDIS_STATUS st;
    PNDIS_PACKET p, q;
    const char *err;
    if (BE_IS_LIBNDIS(be) && NdisPacketSize(W4_PROTOCOL_RESERVED) != w4_packet_size())
        return "W4: NdisPacketSize(16) is not the contract's size";
    be_pkt_allocate(be, &st, &p, ppool);
    if (st != NDIS_STATUS_SUCCESS || p == NULL)
        return "W4: packet allocate failed";
    if ((err = check_fresh_packet(p, ppool)) != NULL)
        return err;
    dirty_packet(p);
    be_pkt_free(be, p);
    be_pkt_allocate(be, &st, &p, ppool);
    if (st != NDIS_STATUS_SUCCESS || p == NULL)
        return "W4: packet allocate failed";
    if ((err = check_fresh_packet(p, ppool)) != NULL)
        return "W4: a packet dirtied, freed and allocated again was not zeroed again";
    be_pkt_free(be, p);
    be_pkt_free(be, NULL);
    if (be != BE_MALLOC) {
        be_pkt_free(be, p); /* a second free must be ignored: no packet handed out twice */
        be_pkt_allocate(be, &st, &p, ppool);
        be_pkt_allocate(be, &st, &q, ppool);
        if (st != NDIS_STATUS_SUCCESS || p == NULL || q == NULL || p == q)
            return "W4: after a second free of one packet, two allocations got the same packet";
        be_pkt_free(be, p);
        be_pkt_free(be, q);
    }
    void *wrong[] = {NULL, be_pool[be]};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        p = (PNDIS_PACKET)&st;
        be_pkt_allocate(be, &st, &p, wrong[i]);
        if (st != NDIS_STATUS_FAILURE || p != NULL)
            return "W4: a NULL or buffer-pool handle did not give FAILURE and *Packet NULL";
    }
    if (BE_IS_LIBNDIS(be) && NdisPacketPoolUsage(ppool) != 0)
        return "W4: NdisPacketPoolUsage is not 0 with every packet freed";
    return NULL;
}

/* Head, Tail and ValidCounts after each chain at the back; the chain in order. */
static const char *check_chained(PNDIS_PACKET p, PNDIS_BUFFER *bufs, int n)
{
    if (p->Private.Head != bufs[0])
        return "W4: Head is not the first buffer chained";
    if (p->Private.Tail != bufs[n - 1])
        return "W4: Tail is not the buffer just chained at the back";
    if (p->Private.ValidCounts != FALSE)
        return "W4: ValidCounts is not FALSE after a chain";
    PNDIS_BUFFER b = p->Private.Head;
    for (int j = 0; j < n; j++, b = b->Next)
        if (b != bufs[j])
            return "W4: the chain is not in the order the buffers were chained";
    return b == NULL ? NULL : "W4: the last buffer's Next is not NULL";
}

/* What NdisQueryPacket must find in the packet of k frame parts, and leave cached. */
static const char *check_query(PNDIS_PACKET p, int ki, PNDIS_BUFFER first)
{
    UINT phys = 0, want_phys = 0, count = 0, total = 0;
    PNDIS_BUFFER got = NULL;
    for (int j = 0; j < g_k[ki]; j++)
        want_phys += ADDRESS_AND_SIZE_TO_SPAN_PAGES(g_parts[ki][j].va, g_parts[ki][j].len);
    NdisQueryPacket(p, &phys, &count, &got, &total);
    if (got != first || count != (UINT)g_k[ki] || total != FRAME_LEN || phys != want_phys)
        return "W4: NdisQueryPacket counts, length or first buffer wrong";
    if (p->Private.ValidCounts != TRUE || p->Private.Count != count ||
        p->Private.TotalLength != total || p->Private.PhysicalCount != phys)
        return "W4: NdisQueryPacket did not leave valid cached counts";
    NdisQueryPacketLength(p, &total);
    return total == FRAME_LEN ? NULL : "W4: NdisQueryPacketLength is not the frame length";
}

/* The timed cycle, step by step: every buffer exact, chain order, Tail, counts, unchain order,
 * Next cleared, the emptied packet, and NdisFreePacket leaving chained buffers alone. */
static const char *verify_w4_cycle(enum backend be, int ki)
{
    void *ppool = be_pkt_pool[be], *bpool = be_pool[be];
    int k = g_k[ki];
    const struct w4_part *parts = g_parts[ki];
    PNDIS_BUFFER bufs[MAX_K], b;
    NDIS_STATUS st;
    PNDIS_PACKET p;
    const char *err;
    be_pkt_allocate(be, &st, &p, ppool);
    if (st != NDIS_STATUS_SUCCESS || p == NULL)
        return "W4: packet allocate failed";
    for (int j = 0; j < k; j++) {
        be_allocate(be, &st, &bufs[j], bpool, parts[j].va, parts[j].len);
        if (st != NDIS_STATUS_SUCCESS || bufs[j] == NULL)
            return "W4: buffer allocate failed";
        if ((err = check_mdl(bufs[j], parts[j].va, parts[j].len, MDL_SOURCE_IS_NONPAGED_POOL)))
            return err;
        be_chain_back(be, p, bufs[j]);
        if ((err = check_chained(p, bufs, j + 1)) != NULL)
            return err;
    }
    if (BE_IS_LIBNDIS(be) && (err = check_query(p, ki, bufs[0])) != NULL)
        return err;
    for (int j = 0; j < k; j++) {
        be_unchain_front(be, p, &b);
        if (b != bufs[j])
            return "W4: unchain at front did not give the buffers in chain order";
        if (b->Next != NULL)
            return "W4: an unchained buffer's Next is not NULL";
        if (p->Private.Head != (j + 1 < k ? bufs[j + 1] : NULL))
            return "W4: Head is not the next buffer after an unchain at front";
        if (p->Private.Tail != (j + 1 < k ? bufs[k - 1] : NULL))
            return "W4: Tail is not the last buffer (or NULL once empty) after an unchain";
        if (p->Private.ValidCounts != FALSE)
            return "W4: ValidCounts is not FALSE after an unchain";
        if ((err = check_mdl(b, parts[j].va, parts[j].len, MDL_SOURCE_IS_NONPAGED_POOL)))
            return err;
        be_free(be, b);
    }
    static _Alignas(16) unsigned char before[W4_MAX_PACKET];
    memcpy(before, p, w4_packet_size());
    b = (PNDIS_BUFFER)&st;
    be_unchain_front(be, p, &b);
    if (b != NULL || memcmp(before, p, w4_packet_size()) != 0)
        return "W4: unchain from an empty packet did not give NULL and leave the packet alone";
    /* A two-descriptor chain chained at the back: Tail is the last of it. The packet is then
     * freed with it chained, which must leave both descriptors as they were. */
    for (int j = 0; j < 2; j++) {
        be_allocate(be, &st, &bufs[j], bpool, parts[0].va, parts[0].len);
        if (st != NDIS_STATUS_SUCCESS)
            return "W4: buffer allocate failed";
    }
    bufs[0]->Next = bufs[1];
    be_chain_back(be, p, bufs[0]);
    if (p->Private.Head != bufs[0] || p->Private.Tail != bufs[1])
        return "W4: chaining a chain at the back did not set Tail to its last descriptor";
    be_pkt_free(be, p);
    for (int j = 0; j < 2; j++)
        if ((err = check_mdl(bufs[j], parts[0].va, parts[0].len, MDL_SOURCE_IS_NONPAGED_POOL)))
            return "W4: freeing a packet changed the buffers chained to it";
    if (bufs[0]->Next != bufs[1] || bufs[1]->Next != NULL)
        return "W4: freeing a packet changed the chain of buffers chained to it";
    be_free_chain(be, bufs[0]);
    if (BE_IS_LIBNDIS(be) && NdisPacketPoolUsage(ppool) != 0)
        return "W4: NdisPacketPoolUsage is not 0 with every packet freed";
    return NULL;
}

static const char *verify_w4(enum backend be, int ki)
{
    const char *err = verify_w4_packets(be);
    return err != NULL ? err : verify_w4_cycle(be, ki);
}

/* ---- options ---- */

struct opts {
    int quick, child, no_fork;
    int procs, reps, slices;
    size_t iters[WL_COUNT], warmup[WL_COUNT];
    int cpu;
    uint64_t seed;
    unsigned be_mask, wl_mask, k_mask;
};

static void usage(FILE *f)
{
    fputs("usage: bench_pool [--quick] [--procs N] [--reps N] [--slices N] [--iters N] [--warmup N]\n"
          "                  [--backends libndis,floor,floor-cache,malloc] [--workloads W1,W3,W4]\n"
          "                  [--ks 1,4,16]\n"
          "                  [--cpu N] [--seed N] [--no-fork]\n"
          "  --quick      few iterations (CI smoke test, a few seconds)\n"
          "  --procs N    processes, each a fresh exec of this program (default 5)\n"
          "  --reps N     timed repetitions per row in each process (default 9)\n"
          "  --iters N    operations per repetition, every row (default W1 2^20, W3 and W4 2^17)\n"
          "  --slices N   slices per repetition, rows interleaved slice by slice (default 256)\n"
          "  --warmup N   untimed operations per row before the repetitions (default iters/2)\n"
          "  --cpu N      CPU to pin to (default: the last one this process may use)\n"
          "  --no-fork    run everything in this process (for valgrind/callgrind)\n",
          f);
}

static unsigned parse_names(const char *arg, const char *const *names, int count)
{
    unsigned mask = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", arg);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < count; i++)
            if (strcasecmp(tok, names[i]) == 0) {
                mask |= 1u << i;
                found = 1;
            }
        if (!found) {
            fprintf(stderr, "bench_pool: unknown name '%s'\n", tok);
            exit(64);
        }
    }
    return mask;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
    size_t iters = 0, warmup = (size_t)-1;
    *o = (struct opts){.procs = 5, .reps = 9, .slices = -1, .cpu = -1, .seed = 0x6C69626E646973ull,
                       .be_mask = (1u << BE_COUNT) - 1, .wl_mask = (1u << WL_COUNT) - 1,
                       .k_mask = (1u << N_KS) - 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--quick") == 0)
            o->quick = 1, takes = 0;
        else if (strcmp(a, "--child") == 0)
            o->child = 1, takes = 0;
        else if (strcmp(a, "--no-fork") == 0)
            o->no_fork = 1, takes = 0;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            usage(stdout), exit(0);
        else if (v == NULL)
            usage(stderr), exit(64);
        else if (strcmp(a, "--procs") == 0)
            o->procs = atoi(v);
        else if (strcmp(a, "--reps") == 0)
            o->reps = atoi(v);
        else if (strcmp(a, "--slices") == 0)
            o->slices = atoi(v);
        else if (strcmp(a, "--iters") == 0)
            iters = strtoull(v, NULL, 0);
        else if (strcmp(a, "--warmup") == 0)
            warmup = strtoull(v, NULL, 0);
        else if (strcmp(a, "--cpu") == 0)
            o->cpu = atoi(v);
        else if (strcmp(a, "--seed") == 0)
            o->seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--backends") == 0)
            o->be_mask = parse_names(v, be_name, BE_COUNT);
        else if (strcmp(a, "--workloads") == 0)
            o->wl_mask = parse_names(v, wl_name, WL_COUNT);
        else if (strcmp(a, "--ks") == 0)
            o->k_mask = parse_names(v, k_name, N_KS);
        else
            usage(stderr), exit(64);
        i += takes;
    }
    if (o->slices < 0)
        o->slices = o->quick ? 16 : 256;
    if (o->procs < 1 || o->reps < 1 || o->slices < 1 || o->be_mask == 0 || o->wl_mask == 0 ||
        o->k_mask == 0)
        usage(stderr), exit(64);
    o->iters[W1] = iters ? iters : o->quick ? (size_t)1 << 14 : (size_t)1 << 20;
    o->iters[W3] = iters ? iters : o->quick ? (size_t)1 << 12 : (size_t)1 << 17;
    o->iters[W4] = iters ? iters : o->quick ? (size_t)1 << 12 : (size_t)1 << 17;
    for (int w = 0; w < WL_COUNT; w++)
        o->warmup[w] = warmup != (size_t)-1 ? warmup : o->iters[w] / 2;
}

/* ---- rows ---- */

struct row {
    enum backend be;
    int wl;
    int ki; /* W3, W4: index into g_k */
};

static struct row g_rows[BE_COUNT * (1 + 2 * N_KS)];
static int g_nrows;

static int row_k(const struct row *r)
{
    return r->wl == W1 ? 1 : g_k[r->ki];
}

static void make_rows(const struct opts *o)
{
    for (int w = 0; w < WL_COUNT; w++) {
        if (!(o->wl_mask & (1u << w)))
            continue;
        for (int ki = 0; ki < (w == W1 ? 1 : N_KS); ki++) {
            if (w != W1 && !(o->k_mask & (1u << ki)))
                continue;
            for (int be = 0; be < BE_COUNT; be++)
                if (o->be_mask & (1u << be))
                    g_rows[g_nrows++] = (struct row){(enum backend)be, w, ki};
        }
    }
}

static size_t g_cursor[BE_COUNT * (1 + 2 * N_KS)];

static void run_row(int i, size_t iters)
{
    const struct row *r = &g_rows[i];
    if (r->wl == W1)
        w1_fn[r->be](iters);
    else if (r->wl == W3)
        w3_fn[r->be](iters, g_src[r->be][r->ki], g_cursor[i]);
    else
        w4_fn[r->be](iters, g_parts[r->ki], g_k[r->ki]);
    g_cursor[i] += iters;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place. */
static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- one measuring process ---- */

static int pick_cpu(int wanted)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return -1;
    if (wanted < 0)
        for (int c = CPU_SETSIZE - 1; c >= 0 && wanted < 0; c--)
            if (CPU_ISSET(c, &set))
                wanted = c;
    if (wanted < 0 || wanted >= CPU_SETSIZE)
        return -1;
    CPU_ZERO(&set);
    CPU_SET(wanted, &set);
    return sched_setaffinity(0, sizeof(set), &set) == 0 ? wanted : -1;
}

static size_t slice_ops(const struct opts *o, int wl)
{
    size_t n = o->iters[wl] / (size_t)o->slices;
    return n ? n : 1;
}

static int child_fail(enum backend be, const char *what)
{
    fprintf(stderr, "bench_pool: verification failed for %s: %s\n", be_name[be], what);
    return 2;
}

static int child_setup(const struct opts *o)
{
    for (int be = 0; be < BE_COUNT; be++) {
        if (!(o->be_mask & (1u << be)))
            continue;
        if (!be_setup(be) || !build_sources(be))
            return child_fail(be, "pool setup or source chain allocation failed");
    }
    return 0;
}

static int child_verify(void)
{
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        const char *err = r->wl == W1   ? verify_w1(r->be)
                          : r->wl == W3 ? verify_w3(r->be, r->ki)
                                        : verify_w4(r->be, r->ki);
        if (err != NULL)
            return child_fail(r->be, err);
    }
    return 0;
}

/* A repetition is cut into short slices, every row taking a turn in each in rotating order, so
 * a slow spell of the host (a busy neighbour of this virtual CPU, a frequency change) lands on
 * all rows alike; the repetition's figure per row is the median of its slices, so a slice that
 * was preempted or interrupted does not decide it. */
static int child_measure(const struct opts *o, FILE *out)
{
    double *slice_ns = calloc((size_t)g_nrows * (size_t)o->slices, sizeof(double));
    if (slice_ns == NULL)
        return 3;
    for (int rep = 0; rep < o->reps; rep++) {
        for (int sl = 0; sl < o->slices; sl++)
            for (int j = 0; j < g_nrows; j++) {
                int i = (j + sl + rep) % g_nrows;
                size_t n = slice_ops(o, g_rows[i].wl);
                be_verifier(g_rows[i].be, 1);
                double t0 = now_ns();
                run_row(i, n);
                double t1 = now_ns();
                be_verifier(g_rows[i].be, 0);
                slice_ns[i * o->slices + sl] = (t1 - t0) / (double)n;
            }
        for (int i = 0; i < g_nrows; i++)
            fprintf(out, "R %d %.4f\n", i, median_of(&slice_ns[i * o->slices], o->slices));
    }
    free(slice_ns);
    return 0;
}

static int child_teardown(const struct opts *o)
{
    for (int be = 0; be < BE_COUNT; be++) {
        if (!(o->be_mask & (1u << be)))
            continue;
        for (int ki = 0; ki < N_KS; ki++)
            be_free_chain(be, g_src[be][ki]);
        if (BE_IS_LIBNDIS(be)) {
            /* Every descriptor and packet the timed loops took must be back: nothing leaked. */
            LIBNDIS_POOL_INFO info;
            if (LibNdisQueryBufferPool(be_pool[be], &info) != NDIS_STATUS_SUCCESS ||
                info.InUse != 0)
                return child_fail(be, "pool InUse is not 0 after the run");
            if (NdisPacketPoolUsage(be_pkt_pool[be]) != 0)
                return child_fail(be, "NdisPacketPoolUsage is not 0 after the run");
        }
        be_teardown(be);
    }
    return 0;
}

/* One measuring process: check every row it is about to time, warm it, time it. */
static int child_run(const struct opts *o, FILE *out)
{
    int rc;
    fprintf(out, "P %d\n", pick_cpu(o->cpu));
    make_inputs(o->seed);
    if ((rc = child_setup(o)) != 0 || (rc = child_verify()) != 0)
        return rc;
    for (int i = 0; i < g_nrows; i++) {
        be_verifier(g_rows[i].be, 1);
        run_row(i, o->warmup[g_rows[i].wl]);
        be_verifier(g_rows[i].be, 0);
    }
    if ((rc = child_measure(o, out)) != 0 || (rc = child_teardown(o)) != 0)
        return rc;
    fflush(out);
    return ferror(out) ? 3 : 0;
}

/* ---- the parent: processes, statistics, report ---- */

struct stats {
    double *v; /* ns per operation, one per repetition, in (process, repetition) order */
    double *r; /* the same repetitions divided by the floor row's */
    int n;
    double median, min, max, ratio, ratio_min, ratio_max;
};

static struct stats g_stats[BE_COUNT * (1 + 2 * N_KS)];
static int g_pinned = -2;

static int read_results(FILE *in, int cap)
{
    char line[128];
    while (fgets(line, sizeof(line), in) != NULL) {
        int idx, cpu;
        double ns;
        if (sscanf(line, "R %d %lf", &idx, &ns) == 2 && idx >= 0 && idx < g_nrows &&
            g_stats[idx].n < cap)
            g_stats[idx].v[g_stats[idx].n++] = ns;
        else if (sscanf(line, "P %d", &cpu) == 1)
            g_pinned = g_pinned == -2 || g_pinned == cpu ? cpu : -1;
    }
    return 0;
}

static int run_process(const struct opts *o, int argc, char **argv, int cap)
{
    if (o->no_fork) {
        FILE *tmp = tmpfile();
        if (tmp == NULL)
            return -1;
        int rc = child_run(o, tmp);
        rewind(tmp);
        read_results(tmp, cap);
        fclose(tmp);
        return rc;
    }
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* A fresh exec, not just a fork: new address space layout, cold caches, own heap. */
        char **args = calloc((size_t)argc + 2, sizeof(*args));
        args[0] = argv[0];
        args[1] = "--child";
        for (int i = 1; i < argc; i++)
            args[i + 1] = argv[i];
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv("/proc/self/exe", args);
        execvp(argv[0], args);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    read_results(in, cap);
    fclose(in);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int floor_row_of(int i)
{
    for (int j = 0; j < g_nrows; j++)
        if (g_rows[j].be == BE_FLOOR && g_rows[j].wl == g_rows[i].wl &&
            g_rows[j].ki == g_rows[i].ki)
            return j;
    return -1;
}

/* Sample j of every row comes from the same repetition of the same process, so each ratio is
 * taken between figures measured side by side, slice by slice; the reported ratio is the
 * median of those paired ratios. */
static void compute_stats(void)
{
    for (int i = 0; i < g_nrows; i++) {
        struct stats *s = &g_stats[i];
        int f = floor_row_of(i);
        s->ratio = s->ratio_min = s->ratio_max = 0;
        if (f < 0)
            continue;
        for (int j = 0; j < s->n; j++)
            s->r[j] = s->v[j] / g_stats[f].v[j];
    }
    for (int i = 0; i < g_nrows; i++) {
        struct stats *s = &g_stats[i];
        s->median = median_of(s->v, s->n);
        s->min = s->v[0];
        s->max = s->v[s->n - 1];
        if (floor_row_of(i) < 0)
            continue;
        s->ratio = median_of(s->r, s->n);
        s->ratio_min = s->r[0];
        s->ratio_max = s->r[s->n - 1];
    }
}

struct host {
    char cpu[128];
    char commit[64];
    char compiler[128];
    long online;
};

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static void read_cpu_model(char *dst, size_t cap)
{
    snprintf(dst, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            snprintf(dst, cap, "%s", colon + 1 + (colon[1] == ' '));
            trim(dst);
            break;
        }
    }
    fclose(f);
}

/* LIBNDIS_COMMIT wins; else the git checkout this file was compiled from, if there is one. */
static void read_commit(char *dst, size_t cap)
{
    snprintf(dst, cap, "unknown");
    const char *env = getenv("LIBNDIS_COMMIT");
    if (env != NULL && *env != '\0') {
        snprintf(dst, cap, "%s", env);
        return;
    }
    char dir[512], cmd[700];
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || strchr(dir, '\'') != NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        *slash = '\0';
    snprintf(cmd, sizeof(cmd), "git -C '%s' rev-parse HEAD 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return;
    char line[128];
    if (fgets(line, sizeof(line), p) != NULL && strlen(line) >= 40) {
        trim(line);
        snprintf(dst, cap, "%s", line);
    }
    pclose(p);
}

static void get_host(struct host *h)
{
    read_cpu_model(h->cpu, sizeof(h->cpu));
    read_commit(h->commit, sizeof(h->commit));
#if defined(__clang__)
    snprintf(h->compiler, sizeof(h->compiler), "%s", __VERSION__);
#elif defined(__GNUC__)
    snprintf(h->compiler, sizeof(h->compiler), "gcc %s", __VERSION__);
#else
    snprintf(h->compiler, sizeof(h->compiler), "unknown");
#endif
    h->online = sysconf(_SC_NPROCESSORS_ONLN);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* Host slow spells hit all rows of a repetition alike; a paired ratio that still moves by more
 * than 30% means one back-end changed speed by itself. */
static int ratio_unstable(const struct stats *s)
{
    return s->ratio > 0 && s->ratio_max > 1.3 * s->ratio_min;
}

static void print_table(const struct opts *o, const struct host *h)
{
    printf("bench_pool: libndis %s (%s library), commit %s, %s\n", libndis_version(),
           LIBNDIS_BENCH_LINK, h->commit, h->compiler);
    printf("host: %s, %ld CPUs online, rows pinned to CPU %d\n", h->cpu, h->online, g_pinned);
    printf("mode: %s, %d processes x %d repetitions x %d slices; ops per repetition W1 %zu, "
           "W3 %zu, W4 %zu; seed 0x%" PRIx64 "\n",
           o->quick ? "quick" : "full", o->procs, o->reps, o->slices,
           slice_ops(o, W1) * (size_t)o->slices, slice_ops(o, W3) * (size_t)o->slices,
           slice_ops(o, W4) * (size_t)o->slices, o->seed);
    printf("inputs: W1 buffer %d bytes at in-page offset %lu; W3 frame %d bytes at in-page "
           "offset %lu, %d random (offset, length) pairs;\n  W4 the same frame in k buffers, "
           "packets with ProtocolReservedLength %d (%zu bytes zeroed per allocation)\n",
           FRAME_LEN, (unsigned long)g_w1_offset, FRAME_LEN, (unsigned long)g_frame_offset,
           W3_PAIRS, W4_PROTOCOL_RESERVED, w4_packet_size());
    printf("dpdk: not part of this benchmark yet\n");
    if (o->procs < 3 || o->reps < 7)
        printf("note: below the spec's minimum of 3 processes x 7 repetitions\n");
    printf("\n%-4s %3s  %-12s %9s %9s %9s %8s  %s\n", "load", "k", "backend", "median", "min",
           "max", "x floor", "x floor range");
    printf("%-4s %3s  %-12s %9s %9s %9s %8s  %s\n", "", "", "", "ns/op", "ns/op", "ns/op",
           "(median)", "(min - max)");
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        const struct stats *s = &g_stats[i];
        if (i > 0 && (r->wl != g_rows[i - 1].wl || r->ki != g_rows[i - 1].ki))
            putchar('\n');
        printf("%-4s %3d  %-12s %9.2f %9.2f %9.2f ", wl_name[r->wl], row_k(r), be_name[r->be],
               s->median, s->min, s->max);
        if (s->ratio > 0)
            printf("%8.2f  %.2f - %.2f\n", s->ratio, s->ratio_min, s->ratio_max);
        else
            printf("%8s\n", "n/a");
    }
    printf("\nx floor: median over repetitions of (this row / the floor row of the same "
           "repetition)\n");
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        const struct stats *s = &g_stats[i];
        double limit = r->wl == W1 ? 1.5 : 1.3;
        char what[64];
        if (r->be != BE_LIBNDIS || r->wl == W3 || s->ratio <= 0)
            continue;
        if (r->wl == W1)
            snprintf(what, sizeof(what), "W1 allocate/free pair");
        else
            snprintf(what, sizeof(what), "W4 packet cycle k=%d", row_k(r));
        printf("target: libndis %s within %.1fx floor: %.2fx (repetitions %.2f - %.2fx) -> %s%s\n",
               what, limit, s->ratio, s->ratio_min, s->ratio_max,
               s->ratio <= limit ? "MET" : "NOT MET",
               ratio_unstable(s) ? ", UNSTABLE (see below)" : "");
    }
    /* The checked mode's cost: each libndis+verify row against the libndis row of the same run
     * (both medians of the same interleaved slices). */
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        if (r->be != BE_LIBNDIS_VERIFY)
            continue;
        for (int j = 0; j < g_nrows; j++) {
            const struct row *q = &g_rows[j];
            if (q->be == BE_LIBNDIS && q->wl == r->wl && q->ki == r->ki && g_stats[j].median > 0)
                printf("verifier on: %s k=%d costs %.2fx libndis (%.2f vs %.2f ns/op)\n",
                       wl_name[r->wl], row_k(r), g_stats[i].median / g_stats[j].median,
                       g_stats[i].median, g_stats[j].median);
        }
    }
    for (int i = 0; i < g_nrows; i++)
        if (ratio_unstable(&g_stats[i])) {
            printf("unstable: %s %s k=%d moved %.2f - %.2fx against the floor between "
                   "repetitions: one of\n  the two changed speed on its own (a latency-bound "
                   "loop such as the free-list floor's\n  W1 can switch speed with code layout "
                   "and CPU state); compare instruction counts\n  (callgrind, README.md)\n",
                   be_name[g_rows[i].be], wl_name[g_rows[i].wl], row_k(&g_rows[i]),
                   g_stats[i].ratio_min, g_stats[i].ratio_max);
            break;
        }
    putchar('\n');
}

static void print_json(const struct opts *o, const struct host *h)
{
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        const struct stats *s = &g_stats[i];
        printf("{\"bench\":\"bench_pool\",\"backend\":\"%s\",\"workload\":\"%s\",\"k\":%d,"
               "\"threads\":1,\"op\":\"%s\",\"unit\":\"ns_per_op\",\"median\":%.3f,\"min\":%.3f,"
               "\"max\":%.3f,",
               be_name[r->be], wl_name[r->wl], row_k(r), wl_op[r->wl], s->median, s->min, s->max);
        if (s->ratio > 0)
            printf("\"ratio_floor\":%.3f,\"ratio_floor_min\":%.3f,\"ratio_floor_max\":%.3f,",
                   s->ratio, s->ratio_min, s->ratio_max);
        else
            printf("\"ratio_floor\":null,");
        printf("\"samples\":%d,\"procs\":%d,\"reps\":%d,\"ops_per_rep\":%zu,\"mode\":\"%s\","
               "\"verified\":true,\"host\":{\"cpu\":",
               s->n, o->procs, o->reps, o->iters[r->wl], o->quick ? "quick" : "full");
        json_string(h->cpu);
        printf(",\"online_cpus\":%ld,\"pinned_cpu\":%d,\"compiler\":", h->online, g_pinned);
        json_string(h->compiler);
        printf(",\"commit\":");
        json_string(h->commit);
        printf(",\"libndis\":");
        json_string(libndis_version());
        printf(",\"link\":");
        json_string(LIBNDIS_BENCH_LINK);
        printf(",\"dpdk\":false}}\n");
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    make_rows(&o);
    if (o.child)
        return child_run(&o, stdout);

    int cap = o.procs * o.reps;
    for (int i = 0; i < g_nrows; i++)
        if ((g_stats[i].v = calloc((size_t)cap, sizeof(double))) == NULL ||
            (g_stats[i].r = calloc((size_t)cap, sizeof(double))) == NULL)
            return 1;
    for (int p = 0; p < o.procs; p++) {
        int rc = run_process(&o, argc, argv, cap);
        if (rc != 0) {
            fprintf(stderr, "bench_pool: measuring process %d failed (status %d)\n", p + 1, rc);
            return 1;
        }
    }
    for (int i = 0; i < g_nrows; i++)
        if (g_stats[i].n != cap) {
            fprintf(stderr, "bench_pool: row %d got %d of %d samples\n", i, g_stats[i].n, cap);
            return 1;
        }
    make_inputs(o.seed); /* for the offsets the header reports */
    compute_stats();
    struct host h;
    get_host(&h);
    print_table(&o, &h);
    print_json(&o, &h);
    return 0;
}
