/* SPDX-License-Identifier: MIT */
/* bench_pool.c - the cost of the buffer and packet fast paths, libndis against the back-ends of
 * floor.h and, when built with DPDK, of dpdk.h: W1 (allocate + free), W2 (bursts), W3
 * (NdisCopyBuffer of a k-descriptor frame), W4 (the packet cycle), W5 (two threads), W6 (host
 * calibration), and the memory each back-end takes per descriptor. Runs itself in pinned
 * processes; prints a table, the targets beside the floor's figures, JSON lines. See README.md */
#define _GNU_SOURCE
#ifndef LIBNDIS_BENCH_LINK
#define LIBNDIS_BENCH_LINK "unknown"
#endif
#ifndef LIBNDIS_BENCH_NO_DPDK_REASON
#define LIBNDIS_BENCH_NO_DPDK_REASON "libdpdk not found"
#endif
#include <ndis.h>
#include <libndis.h>

#include "floor.h"
#include "dpdk.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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
 * the verifier switched on around its own slices only (outside the timers). `host` is no
 * back-end: it names W6's calibration rows. */
enum backend {
    BE_LIBNDIS,
    BE_FLOOR,
    BE_FLOOR_CACHE,
    BE_MALLOC,
    BE_LIBNDIS_VERIFY,
    BE_DPDK,
    BE_HOST,
    BE_COUNT
};
enum { BE_SELECTABLE = BE_HOST }; /* what --backends may name */

static const char *const be_name[BE_COUNT] = {
    [BE_LIBNDIS] = "libndis",
    [BE_FLOOR] = "floor",
    [BE_FLOOR_CACHE] = "floor-cache",
    [BE_MALLOC] = "malloc",
    [BE_LIBNDIS_VERIFY] = "libndis+verify",
    [BE_DPDK] = "dpdk",
    [BE_HOST] = "host",
};

#define BE_IS_LIBNDIS(be) ((be) == BE_LIBNDIS || (be) == BE_LIBNDIS_VERIFY)

static void be_verifier(enum backend be, int on)
{
    if (be == BE_LIBNDIS_VERIFY)
        LibNdisVerifierConfigure(on ? "all,abort=none,backtrace=0" : "none");
}

static void *be_pool[BE_COUNT];     /* buffer pools (dpdk: an rte_mempool of descriptors) */
static void *be_pool2[BE_COUNT];    /* the second thread's own pool in W5 "private" */
static void *be_w3_pool[BE_COUNT];  /* where W3's results come from (dpdk: an mbuf pool) */
static void *be_pkt_pool[BE_COUNT]; /* packet pools (W4; dpdk: the mbuf pool of segments) */

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
    case BE_DPDK:
        dpdk_allocate(st, b, pool, va, len);
        break;
    default:
        floor_heap_allocate(st, b, pool, va, len);
        break;
    }
}

/* dpdk: the result is an mbuf chain (dpdk.h), handed back to dpdk_free_chain only. */
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
    case BE_DPDK:
        dpdk_copy(st, b, pool, src, off, len);
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
    case BE_DPDK:
        dpdk_free(b);
        break;
    default:
        floor_heap_free(b);
        break;
    }
}

/* W2: dpdk takes and returns a burst in one rte_mempool call each, the others one descriptor
 * per call. A failure part-way gives back what the burst had got. */
BENCH_INLINE NDIS_STATUS be_allocate_burst(enum backend be, PNDIS_BUFFER *bufs, void *pool,
                                           PVOID va, UINT len, unsigned k)
{
    NDIS_STATUS st = NDIS_STATUS_SUCCESS;
    if (be == BE_DPDK) {
        dpdk_allocate_bulk(&st, bufs, pool, va, len, k);
        return st;
    }
    for (unsigned j = 0; j < k; j++) {
        be_allocate(be, &st, &bufs[j], pool, va, len);
        if (BENCH_UNLIKELY(st != NDIS_STATUS_SUCCESS)) {
            while (j-- > 0)
                be_free(be, bufs[j]);
            return st;
        }
    }
    return st;
}

BENCH_INLINE void be_free_burst(enum backend be, PNDIS_BUFFER *bufs, unsigned k)
{
    if (be == BE_DPDK) {
        dpdk_free_bulk(bufs, k);
        return;
    }
    for (unsigned j = 0; j < k; j++)
        be_free(be, bufs[j]);
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

/* dpdk: one rte_pktmbuf_free for the whole mbuf chain. */
BENCH_INLINE void be_free_chain(enum backend be, PMDL m)
{
    if (be == BE_DPDK) {
        dpdk_free_chain(m);
        return;
    }
    while (m != NULL) {
        PMDL next = m->Next;
        be_free(be, m);
        m = next;
    }
}

/* Descriptors out of a pool, where the back-end can tell: -1 where it cannot. */
static long be_in_use(enum backend be, void *pool)
{
    if (BE_IS_LIBNDIS(be)) {
        LIBNDIS_POOL_INFO info;
        if (LibNdisQueryBufferPool(pool, &info) != NDIS_STATUS_SUCCESS)
            return -2;
        return (long)info.InUse;
    }
    if (be == BE_DPDK)
        return (long)dpdk_in_use(pool);
    return -1;
}

static int be_setup_buffers(enum backend be)
{
    NDIS_STATUS st;
    switch (be) {
    case BE_LIBNDIS:
    case BE_LIBNDIS_VERIFY:
        /* A NULL handle here would be the default pool: still the product, still measured. */
        NdisAllocateBufferPool(&st, &be_pool[be], 1024);
        if (st != NDIS_STATUS_SUCCESS)
            return 0;
        NdisAllocateBufferPool(&st, &be_pool2[be], 1024);
        return st == NDIS_STATUS_SUCCESS;
    case BE_FLOOR:
        return (be_pool[be] = floor_list_create()) != NULL &&
               (be_pool2[be] = floor_list_create()) != NULL;
    case BE_FLOOR_CACHE:
        return (be_pool[be] = floor_depot_create()) != NULL &&
               (be_pool2[be] = floor_depot_create()) != NULL;
    case BE_DPDK:
        return (be_pool[be] = dpdk_mdl_pool_create("ndis_mdl0", DPDK_POOL_OBJS)) != NULL &&
               (be_pool2[be] = dpdk_mdl_pool_create("ndis_mdl1", DPDK_POOL_OBJS)) != NULL &&
               (be_w3_pool[be] = dpdk_ext_pool_create("ndis_ext")) != NULL &&
               (be_pkt_pool[be] = dpdk_pkt_pool_create("ndis_seg")) != NULL;
    default:
        return 1;
    }
}

static int be_setup_packets(enum backend be)
{
    if (be == BE_DPDK)
        return 1; /* its W4 segments come from be_pkt_pool, made with the buffers */
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
    if (!be_setup_buffers(be))
        return 0;
    if (be != BE_DPDK)
        be_w3_pool[be] = be_pool[be];
    return be_setup_packets(be);
}

static void be_teardown(enum backend be)
{
    switch (be) {
    case BE_LIBNDIS:
    case BE_LIBNDIS_VERIFY:
        NdisFreeBufferPool(be_pool[be]);
        NdisFreeBufferPool(be_pool2[be]);
        NdisFreePacketPool(be_pkt_pool[be]);
        break;
    case BE_FLOOR:
        floor_list_destroy(be_pool[be]);
        floor_list_destroy(be_pool2[be]);
        floor_pkt_pool_destroy(be_pkt_pool[be]);
        break;
    case BE_FLOOR_CACHE:
        floor_depot_destroy(be_pool[be]);
        floor_depot_destroy(be_pool2[be]);
        floor_pkt_pool_destroy(be_pkt_pool[be]);
        break;
    case BE_DPDK:
        dpdk_pool_free(be_pool[be]);
        dpdk_pool_free(be_pool2[be]);
        dpdk_pool_free(be_w3_pool[be]);
        dpdk_pool_free(be_pkt_pool[be]);
        break;
    default:
        floor_pkt_pool_destroy(be_pkt_pool[be]);
        break;
    }
    be_pool[be] = be_pool2[be] = be_w3_pool[be] = be_pkt_pool[be] = NULL;
}

/* ---- workloads ---- */

enum { W1, W2, W3, W4, W5, W6, WL_COUNT };
static const char *const wl_name[WL_COUNT] = {"W1", "W2", "W3", "W4", "W5", "W6"};

/* Each workload's rows: W2 one per burst size, W3 and W4 one per k, W5 and W6 one per shape. */
enum { W5_PRIVATE, W5_SHARED, W5_HANDOFF };
enum { W6_ATOMIC, W6_RTT, W6_MEMCPY };
enum { N_BURSTS = 2, N_KS = 3, N_W5 = 3, N_W6 = 3, MAX_VARIANTS = 3 };
static const int wl_variants[WL_COUNT] = {1, N_BURSTS, N_KS, N_KS, N_W5, N_W6};
static const char *const w5_name[N_W5] = {"private", "shared", "handoff"};
static const char *const w6_name[N_W6] = {"atomic_rmw", "core_to_core_round_trip", "memcpy_1500"};
static const char *const w6_label[N_W6] = {"atomic", "c2c rtt", "memcpy"};

enum {
    FRAME_LEN = 1514,
    W3_PAIRS = 4096, /* power of two: the loop indexes with a mask */
    MAX_K = 16,
    MAX_BURST = 512,
    MEMCPY_LEN = 1500,
    RING_SIZE = 256, /* W5 handoff: pointers in flight at most */
};
static const int g_k[N_KS] = {1, 4, 16};
static const char *const k_name[N_KS] = {"1", "4", "16"};
static const unsigned g_burst[N_BURSTS] = {32, 512};
static const char *const burst_name[N_BURSTS] = {"32", "512"};

struct w3_pair {
    UINT off;
    UINT len;
};

static _Alignas(4096) unsigned char g_arena[8 * PAGE_SIZE];
static PVOID g_w1_va;                    /* W1, W2, W5 buffer: pages 0-1 of the arena */
static unsigned char *g_frame;           /* W3 and W4 frame: pages 4-5 */
static struct w3_pair g_pairs[W3_PAIRS];
static PMDL g_src[BE_COUNT][N_KS];       /* each back-end's own source chains */
static struct frame_part g_parts[N_KS][MAX_K];
static PNDIS_BUFFER g_burst_bufs[MAX_BURST];

BENCH_INLINE void w1_loop(enum backend be, size_t iters, void *pool)
{
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

/* k allocations, then the k frees in the same order. */
BENCH_INLINE void w2_loop(enum backend be, size_t bursts, unsigned k)
{
    void *pool = be_pool[be];
    PVOID va = g_w1_va;
    PNDIS_BUFFER *bufs = g_burst_bufs;
    for (size_t i = 0; i < bursts; i++) {
        if (BENCH_UNLIKELY(be_allocate_burst(be, bufs, pool, va, FRAME_LEN, k) !=
                           NDIS_STATUS_SUCCESS))
            bench_fail(be, "W2 burst allocate failed");
        be_free_burst(be, bufs, k);
    }
}

/* `start` carries on through the pair table from where the previous slice stopped. */
BENCH_INLINE void w3_loop(enum backend be, size_t iters, PMDL src, size_t start)
{
    void *pool = be_w3_pool[be];
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
 * one by one at its front and freed, then the packet freed. DPDK has no packet apart from its
 * first segment: k mbufs, each allocated with the part's length, chained with rte_pktmbuf_chain
 * and freed together with rte_pktmbuf_free. */
BENCH_INLINE void w4_loop(enum backend be, size_t iters, const struct frame_part *parts, int k)
{
    void *ppool = be_pkt_pool[be], *bpool = be_pool[be];
    if (be == BE_DPDK) {
        for (size_t i = 0; i < iters; i++) {
            NDIS_STATUS st;
            PNDIS_BUFFER head, seg;
            dpdk_seg_allocate(&st, &head, ppool, parts[0].va, parts[0].len);
            if (BENCH_UNLIKELY(st != NDIS_STATUS_SUCCESS))
                bench_fail(be, "W4 segment allocate failed");
            for (int j = 1; j < k; j++) {
                dpdk_seg_allocate(&st, &seg, ppool, parts[j].va, parts[j].len);
                if (BENCH_UNLIKELY(st != NDIS_STATUS_SUCCESS))
                    bench_fail(be, "W4 segment allocate failed");
                if (BENCH_UNLIKELY(dpdk_chain(head, seg) != 0))
                    bench_fail(be, "W4 chain failed");
            }
            dpdk_free_chain(head);
        }
        return;
    }
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

/* ---- W5 handoff: a single-producer single-consumer ring of descriptor pointers ---- */

/* Each side keeps its own index and a stale copy of the other's on its own cache line, and
 * reads the other's line only when the copy says the ring is full (or empty): every back-end
 * pays the same few line transfers per object for the ring, so what differs is the pool. */
struct spsc_ring {
    _Alignas(64) _Atomic size_t head; /* producer: next slot to fill */
    size_t tail_seen;
    _Alignas(64) _Atomic size_t tail; /* consumer: next slot to empty */
    size_t head_seen;
    _Alignas(64) void *slot[RING_SIZE];
};

static struct spsc_ring g_ring;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

BENCH_INLINE void ring_push(struct spsc_ring *r, void *p)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (BENCH_UNLIKELY(h - r->tail_seen == RING_SIZE)) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h - r->tail_seen == RING_SIZE)
            cpu_relax();
    }
    r->slot[h & (RING_SIZE - 1)] = p;
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

BENCH_INLINE void *ring_pop(struct spsc_ring *r)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    while (BENCH_UNLIKELY(t == r->head_seen)) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t == r->head_seen)
            cpu_relax();
    }
    void *p = r->slot[t & (RING_SIZE - 1)];
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return p;
}

/* Allocate here (this thread's cache of the pool) ... */
BENCH_INLINE void w5_produce(enum backend be, size_t iters, struct spsc_ring *r)
{
    void *pool = be_pool[be];
    PVOID va = g_w1_va;
    for (size_t i = 0; i < iters; i++) {
        NDIS_STATUS st;
        PNDIS_BUFFER b;
        be_allocate(be, &st, &b, pool, va, FRAME_LEN);
        if (BENCH_UNLIKELY(st != NDIS_STATUS_SUCCESS))
            bench_fail(be, "W5 handoff allocate failed");
        ring_push(r, b);
    }
}

/* ... free there (the other thread, on the other CPU). */
BENCH_INLINE void w5_consume(enum backend be, size_t iters, struct spsc_ring *r)
{
    for (size_t i = 0; i < iters; i++)
        be_free(be, ring_pop(r));
}

/* One instantiation per back-end, named so that callgrind's --toggle-collect can pick it:
 * w1_<tag>, w2_<tag>, w3_<tag>, w4_<tag>; w5_<tag> is W1's loop on a given pool (W5 private and
 * shared), w5p_<tag> / w5c_<tag> the producer and consumer of W5 handoff. */
#define BENCH_INSTANTIATE(tag, be)                                                 \
    static __attribute__((noinline)) void w1_##tag(size_t iters)                   \
    {                                                                              \
        w1_loop(be, iters, be_pool[be]);                                           \
    }                                                                              \
    static __attribute__((noinline)) void w2_##tag(size_t bursts, unsigned k)      \
    {                                                                              \
        w2_loop(be, bursts, k);                                                    \
    }                                                                              \
    static __attribute__((noinline)) void w3_##tag(size_t iters, PMDL src,         \
                                                   size_t start)                   \
    {                                                                              \
        w3_loop(be, iters, src, start);                                            \
    }                                                                              \
    static __attribute__((noinline)) void w4_##tag(size_t iters,                   \
                                                   const struct frame_part *parts, \
                                                   int k)                          \
    {                                                                              \
        w4_loop(be, iters, parts, k);                                              \
    }                                                                              \
    static __attribute__((noinline)) void w5_##tag(size_t iters, void *pool)       \
    {                                                                              \
        w1_loop(be, iters, pool);                                                  \
    }                                                                              \
    static __attribute__((noinline)) void w5p_##tag(size_t iters,                  \
                                                    struct spsc_ring *r)           \
    {                                                                              \
        w5_produce(be, iters, r);                                                  \
    }                                                                              \
    static __attribute__((noinline)) void w5c_##tag(size_t iters,                  \
                                                    struct spsc_ring *r)           \
    {                                                                              \
        w5_consume(be, iters, r);                                                  \
    }

BENCH_INSTANTIATE(libndis, BE_LIBNDIS)
BENCH_INSTANTIATE(floor, BE_FLOOR)
BENCH_INSTANTIATE(floor_cache, BE_FLOOR_CACHE)
BENCH_INSTANTIATE(malloc, BE_MALLOC)
BENCH_INSTANTIATE(libndis_verify, BE_LIBNDIS_VERIFY)
BENCH_INSTANTIATE(dpdk, BE_DPDK)

/* Called once per slice, never per operation. */
#define BE_TABLE(prefix)                                                                     \
    {                                                                                        \
        [BE_LIBNDIS] = prefix##libndis, [BE_FLOOR] = prefix##floor,                          \
        [BE_FLOOR_CACHE] = prefix##floor_cache, [BE_MALLOC] = prefix##malloc,                \
        [BE_LIBNDIS_VERIFY] = prefix##libndis_verify, [BE_DPDK] = prefix##dpdk,              \
    }
static void (*const w1_fn[BE_COUNT])(size_t) = BE_TABLE(w1_);
static void (*const w2_fn[BE_COUNT])(size_t, unsigned) = BE_TABLE(w2_);
static void (*const w3_fn[BE_COUNT])(size_t, PMDL, size_t) = BE_TABLE(w3_);
static void (*const w4_fn[BE_COUNT])(size_t, const struct frame_part *, int) = BE_TABLE(w4_);
static void (*const w5_fn[BE_COUNT])(size_t, void *) = BE_TABLE(w5_);
static void (*const w5p_fn[BE_COUNT])(size_t, struct spsc_ring *) = BE_TABLE(w5p_);
static void (*const w5c_fn[BE_COUNT])(size_t, struct spsc_ring *) = BE_TABLE(w5c_);

/* ---- W6: what the host's basic operations cost, the yardsticks of the other rows ---- */

static _Alignas(64) _Atomic uint64_t g_atomic_word;
static struct {
    _Alignas(64) _Atomic uint64_t ping;
    _Alignas(64) _Atomic uint64_t pong;
} g_pingpong;
static _Alignas(64) unsigned char g_copy_src[2048];
static _Alignas(64) unsigned char g_copy_dst[2048];

/* One uncontended atomic read-modify-write (lock xadd on x86) per operation. */
static __attribute__((noinline)) void w6_atomic(size_t iters)
{
    for (size_t i = 0; i < iters; i++)
        atomic_fetch_add_explicit(&g_atomic_word, 1, memory_order_relaxed);
}

/* A cache line goes to the other CPU and another one comes back: side 0 pings, side 1 answers.
 * Both start from the count the previous slice ended at. */
static __attribute__((noinline)) void w6_round_trips(size_t iters, int side)
{
    if (side == 0) {
        uint64_t base = atomic_load_explicit(&g_pingpong.ping, memory_order_relaxed);
        for (uint64_t i = base + 1; i <= base + iters; i++) {
            atomic_store_explicit(&g_pingpong.ping, i, memory_order_release);
            while (atomic_load_explicit(&g_pingpong.pong, memory_order_acquire) != i)
                cpu_relax();
        }
    } else {
        uint64_t base = atomic_load_explicit(&g_pingpong.pong, memory_order_relaxed);
        for (uint64_t i = base + 1; i <= base + iters; i++) {
            while (atomic_load_explicit(&g_pingpong.ping, memory_order_acquire) != i)
                cpu_relax();
            atomic_store_explicit(&g_pingpong.pong, i, memory_order_release);
        }
    }
}

/* The barrier keeps the compiler from dropping copies whose result nobody reads. */
static __attribute__((noinline)) void w6_memcpy(size_t iters)
{
    for (size_t i = 0; i < iters; i++) {
        memcpy(g_copy_dst, g_copy_src, MEMCPY_LEN);
        __asm__ __volatile__("" ::: "memory");
    }
}

/* ---- the second thread (W5, W6 round trips) ---- */

/* A helper thread pinned to the other CPU sleeps on a condition variable between jobs, so that
 * it costs nothing while single-thread rows run. A job is one function both threads run, side 0
 * here and side 1 there, released together by a spin barrier after the helper has woken up:
 * its wake-up is not timed. */
typedef void (*duo_fn)(void *ctx, int side);

struct duo_times {
    double mine, theirs, wall; /* ns: each side's own run, and from release to both done */
};

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned posted; /* under lock */
    int quit;        /* under lock */
    duo_fn fn;       /* under lock */
    void *ctx;       /* under lock */
    _Atomic int started; /* 1 running, -1 could not pin or register with DPDK */
    _Alignas(64) _Atomic unsigned ready;
    _Alignas(64) _Atomic unsigned go;
    _Alignas(64) _Atomic unsigned done;
    double helper_ns; /* published by `done` */
} g_duo = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int g_cpu = -1, g_helper_cpu = -1; /* this process's CPU and the helper's */
static int g_duo_running;
static int g_dpdk_on; /* EAL is up in this process and the dpdk rows are made */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *duo_main(void *arg)
{
    (void)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(g_helper_cpu, &set);
    int ok = sched_setaffinity(0, sizeof(set), &set) == 0;
    int registered = ok && g_dpdk_on && dpdk_thread_register();
    if (g_dpdk_on && !registered)
        ok = 0;
    pthread_mutex_lock(&g_duo.lock);
    unsigned seen = g_duo.posted;
    pthread_mutex_unlock(&g_duo.lock);
    atomic_store(&g_duo.started, ok ? 1 : -1);
    for (;;) {
        pthread_mutex_lock(&g_duo.lock);
        while (g_duo.posted == seen && !g_duo.quit)
            pthread_cond_wait(&g_duo.cond, &g_duo.lock);
        if (g_duo.quit) {
            pthread_mutex_unlock(&g_duo.lock);
            break;
        }
        seen = g_duo.posted;
        duo_fn fn = g_duo.fn;
        void *ctx = g_duo.ctx;
        pthread_mutex_unlock(&g_duo.lock);
        atomic_store_explicit(&g_duo.ready, seen, memory_order_release);
        while (atomic_load_explicit(&g_duo.go, memory_order_acquire) != seen)
            cpu_relax();
        double t0 = now_ns();
        fn(ctx, 1);
        g_duo.helper_ns = now_ns() - t0;
        atomic_store_explicit(&g_duo.done, seen, memory_order_release);
    }
    /* The depots its floor-cache caches point into are destroyed after this thread ends. */
    floor_tc_detach();
    if (registered)
        dpdk_thread_unregister();
    return NULL;
}

static int duo_start(void)
{
    if (g_duo_running)
        return 1;
    g_duo.quit = 0;
    atomic_store(&g_duo.started, 0);
    if (g_helper_cpu < 0 || pthread_create(&g_duo.thread, NULL, duo_main, NULL) != 0)
        return 0;
    g_duo_running = 1;
    while (atomic_load(&g_duo.started) == 0)
        sched_yield();
    return atomic_load(&g_duo.started) == 1;
}

static void duo_stop(void)
{
    if (!g_duo_running)
        return;
    pthread_mutex_lock(&g_duo.lock);
    g_duo.quit = 1;
    pthread_cond_signal(&g_duo.cond);
    pthread_mutex_unlock(&g_duo.lock);
    pthread_join(g_duo.thread, NULL);
    g_duo_running = 0;
}

static void duo_run(duo_fn fn, void *ctx, struct duo_times *t)
{
    pthread_mutex_lock(&g_duo.lock);
    unsigned seq = ++g_duo.posted;
    g_duo.fn = fn;
    g_duo.ctx = ctx;
    pthread_cond_signal(&g_duo.cond);
    pthread_mutex_unlock(&g_duo.lock);
    while (atomic_load_explicit(&g_duo.ready, memory_order_acquire) != seq)
        cpu_relax();
    double t0 = now_ns();
    atomic_store_explicit(&g_duo.go, seq, memory_order_release);
    fn(ctx, 0);
    double t1 = now_ns();
    while (atomic_load_explicit(&g_duo.done, memory_order_acquire) != seq)
        cpu_relax();
    t->wall = now_ns() - t0;
    t->mine = t1 - t0;
    t->theirs = g_duo.helper_ns;
}

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
            g_parts[ki][j] = (struct frame_part){g_frame + start, len};
        }
    for (size_t i = 0; i < sizeof(g_copy_src); i++)
        g_copy_src[i] = (unsigned char)rng_next();
}

/* dpdk's sources are mbuf chains over the same parts (dpdk.h), the others' descriptor chains. */
static int build_sources(enum backend be)
{
    for (int ki = 0; ki < N_KS; ki++) {
        if (be == BE_DPDK) {
            g_src[be][ki] = dpdk_source_chain(be_w3_pool[be], g_parts[ki], g_k[ki], ki);
            if (g_src[be][ki] == NULL)
                return 0;
            continue;
        }
        PMDL *tail = &g_src[be][ki];
        for (int j = 0; j < g_k[ki]; j++) {
            NDIS_STATUS st;
            be_allocate(be, &st, tail, be_pool[be], g_parts[ki][j].va, g_parts[ki][j].len);
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

static const char *verify_w3_dpdk(int ki);

static const char *verify_w3(enum backend be, int ki)
{
    if (be == BE_DPDK)
        return verify_w3_dpdk(ki);
    void *pool = be_w3_pool[be];
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
    const struct frame_part *parts = g_parts[ki];
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
    if (be == BE_DPDK)
        return dpdk_verify_w4(be_pkt_pool[be], g_parts[ki], g_k[ki]);
    const char *err = verify_w4_packets(be);
    return err != NULL ? err : verify_w4_cycle(be, ki);
}


/* The same checks for the external-buffer mbufs: every pair and the whole chain map exactly
 * their range, a copy past the end fails, the source and its reference counts come back. */
static const char *verify_w3_dpdk(int ki)
{
    void *pool = be_w3_pool[BE_DPDK];
    PMDL src = g_src[BE_DPDK][ki];
    long base = be_in_use(BE_DPDK, pool);
    NDIS_STATUS st;
    PNDIS_BUFFER b;
    for (int i = 0; i <= W3_PAIRS; i++) {
        UINT off = i < W3_PAIRS ? g_pairs[i].off : 0;
        UINT len = i < W3_PAIRS ? g_pairs[i].len : FRAME_LEN;
        dpdk_copy(&st, &b, pool, src, off, len);
        if (st != NDIS_STATUS_SUCCESS || b == NULL)
            return "W3 dpdk: copy of an in-range sub-range failed";
        const char *err = dpdk_check_copy(b, g_parts[ki], g_k[ki], ki, off, len);
        dpdk_free_chain(b);
        if (err != NULL)
            return err;
    }
    b = (PNDIS_BUFFER)1;
    dpdk_copy(&st, &b, pool, src, FRAME_LEN, 1);
    if (st != NDIS_STATUS_FAILURE || b != NULL)
        return "W3 dpdk: copy past the end of the chain did not fail with NULL";
    if (be_in_use(BE_DPDK, pool) != base)
        return "W3 dpdk: mbufs leaked by the copies";
    return dpdk_check_source(src, g_parts[ki], g_k[ki], ki);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

/* A burst of k: every descriptor exact, all distinct, k more in use (where the pool says), and
 * all back after the frees. Twice: a free that corrupts the pool shows in the next burst. */
static const char *check_burst(enum backend be, unsigned k)
{
    static PNDIS_BUFFER sorted[MAX_BURST];
    long base = be_in_use(be, be_pool[be]);
    if (be_allocate_burst(be, g_burst_bufs, be_pool[be], g_w1_va, FRAME_LEN, k) !=
        NDIS_STATUS_SUCCESS)
        return "W2: burst allocate failed";
    const char *err = NULL;
    for (unsigned j = 0; j < k && err == NULL; j++) {
        if (g_burst_bufs[j] == NULL || g_burst_bufs[j]->Next != NULL)
            err = "W2: a descriptor of the burst is NULL or has Next set";
        else
            err = check_mdl(g_burst_bufs[j], g_w1_va, FRAME_LEN, MDL_SOURCE_IS_NONPAGED_POOL);
    }
    memcpy(sorted, g_burst_bufs, k * sizeof(sorted[0]));
    qsort(sorted, k, sizeof(sorted[0]), cmp_ptr);
    for (unsigned j = 1; j < k && err == NULL; j++)
        if (sorted[j] == sorted[j - 1])
            err = "W2: one descriptor handed out twice in a burst";
    if (err == NULL && base >= 0 && be_in_use(be, be_pool[be]) != base + (long)k)
        err = "W2: the pool does not count the burst's k descriptors in use";
    be_free_burst(be, g_burst_bufs, k);
    if (err == NULL && base >= 0 && be_in_use(be, be_pool[be]) != base)
        err = "W2: the pool does not count the burst's descriptors back";
    return err;
}

static const char *verify_w2(enum backend be, int ki)
{
    const char *err = check_burst(be, g_burst[ki]);
    return err != NULL ? err : check_burst(be, g_burst[ki]);
}

enum { W5_CHECK_HELD = 300, W5_CHECK_ROUNDS = 4, W5_CHECK_HANDOFF = 20000 };

/* What the two threads of a W5 self-check do and found. */
struct w5_check {
    enum backend be;
    int shape;
    const char *err[2];
};

/* Both threads hold 300 descriptors at once (past every cache), each with lengths of its own:
 * a descriptor handed to both would carry the other thread's length when checked. */
static void w5_check_held(struct w5_check *c, int side)
{
    enum backend be = c->be;
    void *pool = c->shape == W5_PRIVATE && side == 1 ? be_pool2[be] : be_pool[be];
    static PNDIS_BUFFER held[2][W5_CHECK_HELD];
    for (int round = 0; round < W5_CHECK_ROUNDS && c->err[side] == NULL; round++) {
        int n = 0;
        for (; n < W5_CHECK_HELD; n++) {
            NDIS_STATUS st;
            be_allocate(be, &st, &held[side][n], pool, g_w1_va, 1 + side * W5_CHECK_HELD + n);
            if (st != NDIS_STATUS_SUCCESS) {
                c->err[side] = "W5: allocate failed";
                break;
            }
        }
        for (int j = 0; j < n && c->err[side] == NULL; j++)
            c->err[side] = check_mdl(held[side][j], g_w1_va, 1 + side * W5_CHECK_HELD + j,
                                     MDL_SOURCE_IS_NONPAGED_POOL);
        for (int j = 0; j < n; j++)
            be_free(be, held[side][j]);
    }
}

/* The producer numbers its descriptors by length; the consumer, which gets them in ring order,
 * checks each before freeing it: a descriptor reused while still in flight shows up. */
static void w5_check_handoff(struct w5_check *c, int side)
{
    enum backend be = c->be;
    for (int i = 0; i < W5_CHECK_HANDOFF; i++) {
        UINT len = 1 + (UINT)(i % FRAME_LEN);
        if (side == 0) {
            NDIS_STATUS st;
            PNDIS_BUFFER b = NULL;
            be_allocate(be, &st, &b, be_pool[be], g_w1_va, len);
            if (st != NDIS_STATUS_SUCCESS && c->err[0] == NULL)
                c->err[0] = "W5 handoff: allocate failed";
            ring_push(&g_ring, st == NDIS_STATUS_SUCCESS ? b : NULL);
            continue;
        }
        PNDIS_BUFFER b = ring_pop(&g_ring);
        if (b == NULL)
            continue;
        if (c->err[1] == NULL && b->Next != NULL)
            c->err[1] = "W5 handoff: a descriptor arrived with Next set";
        if (c->err[1] == NULL)
            c->err[1] = check_mdl(b, g_w1_va, len, MDL_SOURCE_IS_NONPAGED_POOL);
        be_free(be, b);
    }
}

static void w5_check_side(void *arg, int side)
{
    struct w5_check *c = arg;
    if (c->shape == W5_HANDOFF)
        w5_check_handoff(c, side);
    else
        w5_check_held(c, side);
}

static const char *verify_w5(enum backend be, int shape)
{
    struct w5_check c = {be, shape, {NULL, NULL}};
    struct duo_times t;
    long base = be_in_use(be, be_pool[be]), base2 = be_in_use(be, be_pool2[be]);
    duo_run(w5_check_side, &c, &t);
    if (c.err[0] != NULL || c.err[1] != NULL)
        return c.err[0] != NULL ? c.err[0] : c.err[1];
    if (be_in_use(be, be_pool[be]) != base || be_in_use(be, be_pool2[be]) != base2)
        return "W5: the pools do not count every descriptor back after both threads are done";
    return NULL;
}

struct w6_ctx {
    size_t n;
};

static void w6_rtt_side(void *arg, int side)
{
    w6_round_trips(((struct w6_ctx *)arg)->n, side);
}

static const char *verify_w6(int shape)
{
    struct w6_ctx c = {1000};
    struct duo_times t;
    switch (shape) {
    case W6_ATOMIC: {
        uint64_t before = atomic_load(&g_atomic_word);
        w6_atomic(c.n);
        return atomic_load(&g_atomic_word) == before + c.n ? NULL : "W6: atomic count wrong";
    }
    case W6_RTT: {
        uint64_t before = atomic_load(&g_pingpong.pong);
        duo_run(w6_rtt_side, &c, &t);
        return atomic_load(&g_pingpong.pong) == before + c.n &&
                       atomic_load(&g_pingpong.ping) == before + c.n
                   ? NULL
                   : "W6: round trips lost";
    }
    default:
        memset(g_copy_dst, 0, sizeof(g_copy_dst));
        w6_memcpy(1);
        return memcmp(g_copy_dst, g_copy_src, MEMCPY_LEN) == 0 &&
                       g_copy_dst[MEMCPY_LEN] == 0
                   ? NULL
                   : "W6: memcpy did not copy exactly 1500 bytes";
    }
}

/* ---- options ---- */

/* A LIBNDIS_BENCH_NO_VERIFIER build (the define reaches this file too, so its calls go straight
 * to the unchecked entries): the reference of the verifier-off target, with no checked mode. */
#ifdef LIBNDIS_VERIFIER_COMPILED_OUT
#define VERIFIER_BUILT 0
#else
#define VERIFIER_BUILT 1
#endif

enum dpdk_status { DPDK_NOT_BUILT, DPDK_NOT_SELECTED, DPDK_DISABLED, DPDK_FAILED, DPDK_OK };

struct opts {
    int quick, child, no_fork, no_dpdk, memory, probe;
    const char *vo_bin; /* --verifier-off: the LIBNDIS_BENCH_NO_VERIFIER build of this program */
    int procs, reps, slices;
    size_t iters[WL_COUNT], warmup[WL_COUNT];
    unsigned verify_div; /* libndis+verify rows run 1/verify_div of the operations */
    int cpu;
    uint64_t seed;
    unsigned be_mask, wl_mask, k_mask, burst_mask;
};

static void usage(FILE *f)
{
    fputs("usage: bench_pool [--quick] [--procs N] [--reps N] [--slices N] [--iters N] [--warmup N]\n"
          "                  [--backends libndis,floor,floor-cache,malloc,libndis+verify,dpdk]\n"
          "                  [--workloads W1,W2,W3,W4,W5,W6] [--ks 1,4,16] [--bursts 32,512]\n"
          "                  [--cpu N] [--seed N] [--no-dpdk] [--no-fork] [--verifier-off PATH]\n"
          "  --quick      few iterations (CI smoke test, a few seconds)\n"
          "  --procs N    processes, each a fresh exec of this program (default 5)\n"
          "  --reps N     timed repetitions per row in each process (default 9)\n"
          "  --iters N    operations per repetition, every row (default W1, W2, W5 2^20;\n"
          "               W3, W4 2^17; W6 2^18; W2 counts descriptors, W5 per thread)\n"
          "  --slices N   slices per repetition, rows interleaved slice by slice (default 256)\n"
          "  --warmup N   untimed operations per row before the repetitions (default iters/2)\n"
          "  --ks         k of W3 and W4; --bursts: burst sizes of W2\n"
          "  --cpu N      CPU to pin to (default: the last one this process may use); the\n"
          "               second thread of W5 and W6 takes another one\n"
          "  --no-dpdk    leave the dpdk back-end out (no EAL start)\n"
          "  --no-fork    run everything in this process (for valgrind/callgrind)\n"
          "  --verifier-off PATH\n"
          "               bench_pool built with -DLIBNDIS_BENCH_NO_VERIFIER=ON: its W1 and W3\n"
          "               k=4 rows alternate with this program's, process by process, for the\n"
          "               verifier-off target (scripts/bench.sh builds and passes it)\n",
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
                       .be_mask = (1u << BE_SELECTABLE) - 1, .wl_mask = (1u << WL_COUNT) - 1,
                       .k_mask = (1u << N_KS) - 1, .burst_mask = (1u << N_BURSTS) - 1};
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
        else if (strcmp(a, "--no-dpdk") == 0)
            o->no_dpdk = 1, takes = 0;
        else if (strcmp(a, "--memory") == 0) /* internal: this child also measures memory */
            o->memory = 1, takes = 0;
        else if (strcmp(a, "--dpdk-probe") == 0) /* internal: only try EAL and report */
            o->probe = 1, takes = 0;
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
        else if (strcmp(a, "--verifier-off") == 0)
            o->vo_bin = v;
        else if (strcmp(a, "--backends") == 0)
            o->be_mask = parse_names(v, be_name, BE_SELECTABLE);
        else if (strcmp(a, "--workloads") == 0)
            o->wl_mask = parse_names(v, wl_name, WL_COUNT);
        else if (strcmp(a, "--ks") == 0)
            o->k_mask = parse_names(v, k_name, N_KS);
        else if (strcmp(a, "--bursts") == 0)
            o->burst_mask = parse_names(v, burst_name, N_BURSTS);
        else
            usage(stderr), exit(64);
        i += takes;
    }
    if (o->slices < 0)
        o->slices = o->quick ? 16 : 256;
    if (o->procs < 1 || o->reps < 1 || o->slices < 1 || o->wl_mask == 0 || o->k_mask == 0 ||
        o->burst_mask == 0)
        usage(stderr), exit(64);
    static const size_t full[WL_COUNT] = {1u << 20, 1u << 20, 1u << 17, 1u << 17, 1u << 20, 1u << 18};
    static const size_t quick[WL_COUNT] = {1u << 14, 1u << 14, 1u << 12, 1u << 12, 1u << 14, 1u << 12};
    /* The checked mode costs 10-30 times the fast path: at full length its rows would take
     * most of the run. Fewer operations per slice leave its figures' meaning alone; an explicit
     * --iters (callgrind) runs exactly that many everywhere. */
    o->verify_div = iters ? 1 : 8;
    for (int w = 0; w < WL_COUNT; w++) {
        o->iters[w] = iters ? iters : o->quick ? quick[w] : full[w];
        o->warmup[w] = warmup != (size_t)-1 ? warmup : o->iters[w] / 2;
    }
}

/* ---- rows ---- */

struct row {
    enum backend be;
    int wl;
    int ki; /* W2: burst index; W3, W4: index into g_k; W5, W6: the shape */
};

enum { MAX_ROWS = BE_COUNT * (1 + N_BURSTS + 2 * N_KS + N_W5) + N_W6 };
static struct row g_rows[MAX_ROWS];
static int g_nrows;

static cpu_set_t g_allowed; /* the CPUs this program may use, read before pinning */

static int row_k(const struct row *r)
{
    switch (r->wl) {
    case W2:
        return (int)g_burst[r->ki];
    case W3:
    case W4:
        return g_k[r->ki];
    default:
        return 1;
    }
}

static int row_threads(const struct row *r)
{
    return r->wl == W5 || (r->wl == W6 && r->ki == W6_RTT) ? 2 : 1;
}

static const char *row_variant(const struct row *r)
{
    return r->wl == W5 ? w5_name[r->ki] : r->wl == W6 ? w6_name[r->ki] : NULL;
}

/* What one operation of the row is, for the JSON lines. */
static const char *row_op(const struct row *r)
{
    static const char *const w6_op[N_W6] = {"atomic_rmw", "round_trip", "memcpy_1500_bytes"};
    switch (r->wl) {
    case W1:
        return "allocate_free_pair";
    case W2:
        return "allocate_free_in_burst";
    case W3:
        return "copy_and_free_chain";
    case W4:
        return "packet_cycle";
    case W5:
        return r->ki == W5_HANDOFF ? "allocate_here_free_there" : "allocate_free_pair_per_thread";
    default:
        return w6_op[r->ki];
    }
}

/* Which back-ends have which rows: W6 is the host's alone; the floor's free list has no lock,
 * so it cannot serve two threads at once; the checked mode is measured on W1-W4. */
static int row_exists(enum backend be, int wl, int ki)
{
    int two_cpus = CPU_COUNT(&g_allowed) >= 2;
    if ((wl == W6) != (be == BE_HOST))
        return 0;
    if (be == BE_LIBNDIS_VERIFY && !VERIFIER_BUILT)
        return 0;
    if (be == BE_DPDK && !g_dpdk_on)
        return 0;
    if (wl == W5)
        return two_cpus && be != BE_LIBNDIS_VERIFY && (ki == W5_PRIVATE || be != BE_FLOOR);
    if (wl == W6 && ki == W6_RTT)
        return two_cpus;
    return 1;
}

static int variant_selected(const struct opts *o, int wl, int ki)
{
    if (wl == W2)
        return (o->burst_mask >> ki) & 1;
    if (wl == W3 || wl == W4)
        return (o->k_mask >> ki) & 1;
    return 1;
}

/* W6 first: the calibration rows head the table. */
static void make_rows(const struct opts *o)
{
    static const int order[WL_COUNT] = {W6, W1, W2, W3, W4, W5};
    unsigned be_mask = o->be_mask | 1u << BE_HOST;
    for (int oi = 0; oi < WL_COUNT; oi++) {
        int w = order[oi];
        if (!(o->wl_mask & (1u << w)))
            continue;
        for (int ki = 0; ki < wl_variants[w]; ki++) {
            if (!variant_selected(o, w, ki))
                continue;
            for (int be = 0; be < BE_COUNT; be++)
                if ((be_mask & (1u << be)) && row_exists((enum backend)be, w, ki))
                    g_rows[g_nrows++] = (struct row){(enum backend)be, w, ki};
        }
    }
}

static int rows_need_duo(void)
{
    for (int i = 0; i < g_nrows; i++)
        if (row_threads(&g_rows[i]) == 2)
            return 1;
    return 0;
}

static size_t g_cursor[MAX_ROWS];

/* Operations a run of n asked for really makes: W2 runs whole bursts. */
static size_t row_ops(const struct row *r, size_t n)
{
    if (r->wl != W2)
        return n;
    size_t k = g_burst[r->ki], bursts = n / k ? n / k : 1;
    return bursts * k;
}

/* The two-thread rows: what each side of a slice runs. */
struct duo_row {
    const struct row *r;
    size_t n;
};

static void w5_side(void *arg, int side)
{
    const struct duo_row *d = arg;
    enum backend be = d->r->be;
    switch (d->r->ki) {
    case W5_PRIVATE:
        w5_fn[be](d->n, side == 0 ? be_pool[be] : be_pool2[be]);
        break;
    case W5_SHARED:
        w5_fn[be](d->n, be_pool[be]);
        break;
    default:
        if (side == 0)
            w5p_fn[be](d->n, &g_ring);
        else
            w5c_fn[be](d->n, &g_ring);
        break;
    }
}

static void w6_rtt_row_side(void *arg, int side)
{
    w6_round_trips(((const struct duo_row *)arg)->n, side);
}

/* Runs n operations of row i and gives ns per operation. W5 private and shared: the mean of
 * the two threads' own times, per thread; handoff and round trips: from the release of both
 * threads until both are done, per object or round trip. */
static double time_row(int i, size_t n)
{
    const struct row *r = &g_rows[i];
    size_t ops = row_ops(r, n);
    if (row_threads(r) == 2) {
        struct duo_row d = {r, n};
        struct duo_times t;
        duo_run(r->wl == W5 ? w5_side : w6_rtt_row_side, &d, &t);
        if (r->wl == W5 && r->ki != W5_HANDOFF)
            return (t.mine + t.theirs) / 2 / (double)n;
        return t.wall / (double)n;
    }
    double t0 = now_ns();
    switch (r->wl) {
    case W1:
        w1_fn[r->be](n);
        break;
    case W2:
        w2_fn[r->be](ops / g_burst[r->ki], g_burst[r->ki]);
        break;
    case W3:
        w3_fn[r->be](n, g_src[r->be][r->ki], g_cursor[i]);
        g_cursor[i] += n;
        break;
    case W4:
        w4_fn[r->be](n, g_parts[r->ki], g_k[r->ki]);
        break;
    default:
        if (r->ki == W6_ATOMIC)
            w6_atomic(n);
        else
            w6_memcpy(n);
        break;
    }
    return (now_ns() - t0) / (double)ops;
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

/* ---- one measuring process ---- */

/* The last CPU this program may use unless told; the helper thread takes the first other one. */
static int pick_cpu(int wanted)
{
    if (wanted < 0)
        for (int c = CPU_SETSIZE - 1; c >= 0 && wanted < 0; c--)
            if (CPU_ISSET(c, &g_allowed))
                wanted = c;
    if (wanted < 0 || wanted >= CPU_SETSIZE)
        return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(wanted, &set);
    return sched_setaffinity(0, sizeof(set), &set) == 0 ? wanted : -1;
}

static int other_cpu(int cpu)
{
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (c != cpu && CPU_ISSET(c, &g_allowed))
            return c;
    return -1;
}

static size_t slice_ops(const struct opts *o, int wl)
{
    size_t n = o->iters[wl] / (size_t)o->slices;
    return n ? n : 1;
}

static size_t row_slice_ops(const struct opts *o, const struct row *r)
{
    size_t n = slice_ops(o, r->wl);
    if (r->be == BE_LIBNDIS_VERIFY)
        n /= o->verify_div;
    return n ? n : 1;
}

static size_t row_warmup(const struct opts *o, const struct row *r)
{
    return r->be == BE_LIBNDIS_VERIFY ? o->warmup[r->wl] / o->verify_div : o->warmup[r->wl];
}

static int child_fail(enum backend be, const char *what)
{
    fprintf(stderr, "bench_pool: verification failed for %s: %s\n", be_name[be], what);
    return 2;
}

static unsigned g_setup_mask; /* back-ends with pools and sources in this process */

static int child_setup(const struct opts *o)
{
    for (int be = 0; be < BE_SELECTABLE; be++) {
        if (!(o->be_mask & (1u << be)) || (be == BE_DPDK && !g_dpdk_on))
            continue;
        g_setup_mask |= 1u << be;
        if (!be_setup(be) || !build_sources(be))
            return child_fail(be, "pool setup or source chain allocation failed");
    }
    return 0;
}

static int child_verify(void)
{
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        const char *err;
        switch (r->wl) {
        case W1:
            err = verify_w1(r->be);
            break;
        case W2:
            err = verify_w2(r->be, r->ki);
            break;
        case W3:
            err = verify_w3(r->be, r->ki);
            break;
        case W4:
            err = verify_w4(r->be, r->ki);
            break;
        case W5:
            err = verify_w5(r->be, r->ki);
            break;
        default:
            err = verify_w6(r->ki);
            break;
        }
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
                be_verifier(g_rows[i].be, 1);
                slice_ns[i * o->slices + sl] = time_row(i, row_slice_ops(o, &g_rows[i]));
                be_verifier(g_rows[i].be, 0);
            }
        for (int i = 0; i < g_nrows; i++)
            fprintf(out, "R %d %.4f\n", i, median_of(&slice_ns[i * o->slices], o->slices));
    }
    free(slice_ns);
    return 0;
}

static int child_teardown(void)
{
    for (int be = 0; be < BE_COUNT; be++) {
        if (!(g_setup_mask & (1u << be)))
            continue;
        for (int ki = 0; ki < N_KS; ki++)
            if (g_src[be][ki] != NULL)
                be_free_chain(be, g_src[be][ki]);
        /* Every descriptor and packet the timed loops took must be back: nothing leaked. */
        if (BE_IS_LIBNDIS(be)) {
            if (be_in_use(be, be_pool[be]) != 0 || be_in_use(be, be_pool2[be]) != 0)
                return child_fail(be, "pool InUse is not 0 after the run");
            if (NdisPacketPoolUsage(be_pkt_pool[be]) != 0)
                return child_fail(be, "NdisPacketPoolUsage is not 0 after the run");
        }
        if (be == BE_DPDK) {
            void *pools[] = {be_pool[be], be_pool2[be], be_w3_pool[be], be_pkt_pool[be]};
            for (size_t p = 0; p < sizeof(pools) / sizeof(pools[0]); p++)
                if (dpdk_in_use(pools[p]) != 0)
                    return child_fail(be, "a mempool has objects in use after the run");
        }
        be_teardown(be);
    }
    return 0;
}

/* ---- memory per descriptor ---- */

/* The library's storage for a buffer pool, from its layout in src/pool.h, src/pool.c and
 * src/mdl.h (x86-64, at the time of writing): the pool struct (1216 bytes) and the buffer
 * layer's data (56), each rounded to 64; one cache of 64 pointers per thread that used the
 * pool (528 -> 576); slabs of 128-byte slots (16-byte header, MDL, 8 PFNs) behind a 64-byte
 * header, the first holding min(declared, 65536), later ones max(created, 32) up to 4096; the
 * depot, a pointer array doubling from 64 until it covers every slot. The heap figure beside
 * it (mallinfo2) checks this. */
enum {
    LN_POOL_HEAD = 1216 + 64,
    LN_CACHE = 576,
    LN_SLAB_HEADER = 64,
    LN_SLOT = 128,
    LN_PREALLOC_MAX = 65536,
    LN_GROW_MIN = 32,
    LN_GROW_MAX = 4096,
    LN_DEPOT_MIN = 64,
};

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static size_t libndis_pool_bytes(unsigned declared, unsigned storage, unsigned threads)
{
    size_t bytes = LN_POOL_HEAD + (size_t)LN_CACHE * threads;
    unsigned made = declared < LN_PREALLOC_MAX ? declared : LN_PREALLOC_MAX;
    if (made > storage)
        made = storage;
    if (made != 0)
        bytes += round64(LN_SLAB_HEADER + (size_t)made * LN_SLOT);
    while (made < storage) {
        unsigned want = made < LN_GROW_MIN ? LN_GROW_MIN : made;
        want = want > LN_GROW_MAX ? LN_GROW_MAX : want;
        want = want > storage - made ? storage - made : want;
        bytes += round64(LN_SLAB_HEADER + (size_t)want * LN_SLOT);
        made += want;
    }
    size_t cap = LN_DEPOT_MIN;
    while (cap < storage)
        cap *= 2;
    return bytes + cap * sizeof(void *);
}

/* Bytes the heap hands out, mmapped blocks included; -1 where glibc cannot say. */
static long long heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (long long)(mi.uordblks + mi.hblkhd);
#else
    return -1;
#endif
}

static size_t floor_chunks_bytes(const struct floor_chunk *c)
{
    size_t n = 0;
    for (; c != NULL; c = c->next)
        n += FLOOR_CHUNK_BYTES;
    return n;
}

enum { MEM_SIZES = 2 };
static const unsigned g_mem_n[MEM_SIZES] = {4096, 65536};

struct mem_figure {
    double total; /* bytes of the pool holding n live descriptors, overhead included */
    double heap;  /* what the heap says the same took; < 0: not measured */
    double slot;  /* bytes of one descriptor's own storage */
};

/* n descriptors of the W1 buffer live at once in a fresh pool of the back-end (the declared
 * count n where it has one), one thread. */
static int memory_measure(enum backend be, unsigned n, struct mem_figure *f)
{
    PNDIS_BUFFER *v = calloc(n, sizeof(*v));
    if (v == NULL)
        return 0;
    long long h0 = heap_in_use(), h1;
    NDIS_STATUS st = NDIS_STATUS_SUCCESS;
    int ok = 1;
    f->heap = -1;
    if (BE_IS_LIBNDIS(be)) {
        NDIS_HANDLE pool;
        LIBNDIS_POOL_INFO info;
        NdisAllocateBufferPool(&st, &pool, n);
        for (unsigned i = 0; i < n && st == NDIS_STATUS_SUCCESS; i++)
            NdisAllocateBuffer(&st, &v[i], pool, g_w1_va, FRAME_LEN);
        h1 = heap_in_use();
        ok = st == NDIS_STATUS_SUCCESS &&
             LibNdisQueryBufferPool(pool, &info) == NDIS_STATUS_SUCCESS && info.InUse == n;
        if (ok)
            f->total = (double)libndis_pool_bytes(info.DeclaredDescriptors,
                                                  info.StorageDescriptors, 1);
        f->slot = LN_SLOT;
        for (unsigned i = 0; i < n; i++)
            NdisFreeBuffer(v[i]);
        NdisFreeBufferPool(pool);
    } else if (be == BE_FLOOR) {
        struct floor_list *p = floor_list_create();
        for (unsigned i = 0; i < n && p != NULL && st == NDIS_STATUS_SUCCESS; i++)
            floor_list_allocate(&st, &v[i], p, g_w1_va, FRAME_LEN);
        h1 = heap_in_use();
        ok = p != NULL && st == NDIS_STATUS_SUCCESS;
        if (ok)
            f->total = (double)(floor_chunks_bytes(p->chunks) + sizeof(*p));
        f->slot = FLOOR_SLOT_SIZE;
        floor_list_destroy(p);
    } else if (be == BE_FLOOR_CACHE) {
        struct floor_depot *d = floor_depot_create();
        for (unsigned i = 0; i < n && d != NULL && st == NDIS_STATUS_SUCCESS; i++)
            floor_cache_allocate(&st, &v[i], d, g_w1_va, FRAME_LEN);
        h1 = heap_in_use();
        ok = d != NULL && st == NDIS_STATUS_SUCCESS;
        if (ok)
            f->total = (double)(floor_chunks_bytes(d->chunks) + d->cap * sizeof(void *) +
                                sizeof(*d) + sizeof(struct floor_tcache));
        f->slot = FLOOR_SLOT_SIZE + sizeof(void *);
        for (unsigned i = 0; ok && i < n; i++)
            floor_cache_free(v[i]);
        floor_depot_destroy(d);
    } else if (be == BE_MALLOC) {
        size_t bytes = 0;
        for (unsigned i = 0; i < n && st == NDIS_STATUS_SUCCESS; i++)
            floor_heap_allocate(&st, &v[i], NULL, g_w1_va, FRAME_LEN);
        h1 = heap_in_use();
        ok = st == NDIS_STATUS_SUCCESS;
        /* glibc: the usable size plus the chunk's size word. */
        for (unsigned i = 0; i < n; i++) {
            bytes += v[i] != NULL ? malloc_usable_size(v[i]) + sizeof(size_t) : 0;
            free(v[i]);
        }
        f->total = (double)bytes;
        f->slot = (double)bytes / n;
    } else {
        struct dpdk_memory dm = {0, 0, 0};
        ok = dpdk_memory(n, &dm);
        h1 = h0 = -1;
        f->total = (double)dm.total;
        f->slot = (double)dm.obj_size;
    }
    if (h0 >= 0 && h1 >= 0)
        f->heap = (double)(h1 - h0);
    free(v);
    return ok;
}

static void memory_report(const struct opts *o, FILE *out)
{
    for (int be = 0; be < BE_SELECTABLE; be++) {
        if (!(o->be_mask & (1u << be)) || be == BE_LIBNDIS_VERIFY || (be == BE_DPDK && !g_dpdk_on))
            continue;
        for (int s = 0; s < MEM_SIZES; s++) {
            struct mem_figure f;
            if (memory_measure(be, g_mem_n[s], &f))
                fprintf(out, "M %d %d %.1f %.1f %.1f\n", be, s, f.total, f.heap, f.slot);
        }
    }
}

/* One measuring process: check every row it is about to time, warm it, time it. */
static int child_run(const struct opts *o, FILE *out)
{
    int rc;
    fprintf(out, "P %d\n", g_cpu);
    /* What this binary is and which row each index names: the verifier-off phase reads another
     * build's processes, whose rows it did not make itself. */
    fprintf(out, "V %d\n", VERIFIER_BUILT);
    for (int i = 0; i < g_nrows; i++)
        fprintf(out, "N %d %d %d %d\n", i, (int)g_rows[i].be, g_rows[i].wl, g_rows[i].ki);
    make_inputs(o->seed);
    if (o->memory)
        memory_report(o, out);
    if (rows_need_duo()) {
        if (!duo_start()) {
            fprintf(stderr, "bench_pool: cannot start the second thread on CPU %d%s\n",
                    g_helper_cpu, g_dpdk_on ? " (or register it with DPDK)" : "");
            return 2;
        }
        fprintf(out, "H %d\n", g_helper_cpu);
    }
    if ((rc = child_setup(o)) != 0 || (rc = child_verify()) != 0)
        return rc;
    for (int i = 0; i < g_nrows; i++) {
        if (row_warmup(o, &g_rows[i]) == 0)
            continue;
        be_verifier(g_rows[i].be, 1);
        time_row(i, row_warmup(o, &g_rows[i]));
        be_verifier(g_rows[i].be, 0);
    }
    if ((rc = child_measure(o, out)) != 0)
        return rc;
    duo_stop();
    if ((rc = child_teardown()) != 0)
        return rc;
    fflush(out);
    return ferror(out) ? 3 : 0;
}

/* ---- the parent: processes, statistics, report ---- */

struct ratio {
    int ok;
    double med, min, max;
};

struct stats {
    double *raw; /* ns per operation, one per repetition, in (process, repetition) order */
    double *v;   /* the same, sorted */
    int n;
    double median, min, max;
    struct ratio floor, dpdk, single; /* paired with the floor row, the dpdk row, W1 */
};

static struct stats g_stats[MAX_ROWS];
static int g_pinned = -2, g_helper_seen = -2;
static enum dpdk_status g_dpdk_status;
static char g_dpdk_reason[192], g_dpdk_ver[64];
static int g_probe_ok = -1;

struct mem_slot {
    int valid;
    struct mem_figure f;
};
static struct mem_slot g_mem[BE_COUNT][MEM_SIZES];

static void note_cpu(int *seen, int cpu)
{
    *seen = *seen == -2 || *seen == cpu ? cpu : -1;
}

static int read_results(FILE *in, int cap)
{
    char line[256];
    while (fgets(line, sizeof(line), in) != NULL) {
        int idx, cpu, be, s;
        double ns, total, heap, slot;
        char word[192];
        if (sscanf(line, "R %d %lf", &idx, &ns) == 2 && idx >= 0 && idx < g_nrows &&
            g_stats[idx].n < cap)
            g_stats[idx].raw[g_stats[idx].n++] = ns;
        else if (sscanf(line, "P %d", &cpu) == 1)
            note_cpu(&g_pinned, cpu);
        else if (sscanf(line, "H %d", &cpu) == 1)
            note_cpu(&g_helper_seen, cpu);
        else if (sscanf(line, "M %d %d %lf %lf %lf", &be, &s, &total, &heap, &slot) == 5 &&
                 be >= 0 && be < BE_COUNT && s >= 0 && s < MEM_SIZES)
            g_mem[be][s] = (struct mem_slot){1, {total, heap, slot}};
        else if (sscanf(line, "D ok %63s", word) == 1)
            g_probe_ok = 1, snprintf(g_dpdk_ver, sizeof(g_dpdk_ver), "%.63s", word);
        else if (sscanf(line, "D fail %191[^\n]", word) == 1)
            g_probe_ok = 0, snprintf(g_dpdk_reason, sizeof(g_dpdk_reason), "%s", word);
    }
    return 0;
}

/* A measuring process's arguments: `--child`, `extra`, the user's, then `after` (which override
 * the user's: the last occurrence of an option wins). */
static char **child_args(char *argv0, int argc, char **argv, const char **extra, int nextra,
                         const char **after, int nafter)
{
    char **args = calloc((size_t)argc + (size_t)nextra + (size_t)nafter + 2, sizeof(*args));
    if (args == NULL)
        return NULL;
    int n = 0;
    args[n++] = argv0;
    args[n++] = "--child";
    for (int i = 0; i < nextra; i++)
        args[n++] = (char *)extra[i];
    for (int i = 1; i < argc; i++)
        args[n++] = argv[i];
    for (int i = 0; i < nafter; i++)
        args[n++] = (char *)after[i];
    return args;
}

static int wait_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Starts `path` (or, failing that, `fallback` through PATH) with its stdout on a pipe read
 * through the FILE returned. A fresh exec, not just a fork: new address space layout, cold
 * caches, own heap. */
static FILE *spawn_child(const char *path, const char *fallback, char **args, pid_t *pid)
{
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    fflush(stdout);
    *pid = fork();
    if (*pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (*pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(path, args);
        if (fallback != NULL)
            execvp(fallback, args);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    if (in == NULL) {
        close(fds[0]); /* the child's writes now fail and it ends */
        wait_child(*pid);
    }
    return in;
}

/* One process: a fresh exec of this program with `extra` arguments before the user's. */
static int run_process(const struct opts *o, int argc, char **argv, int cap, const char **extra,
                       int nextra)
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
    char **args = child_args(argv[0], argc, argv, extra, nextra, NULL, 0);
    if (args == NULL)
        return -1;
    pid_t pid;
    FILE *in = spawn_child("/proc/self/exe", argv[0], args, &pid);
    free(args);
    if (in == NULL)
        return -1;
    read_results(in, cap);
    fclose(in);
    return wait_child(pid);
}

/* EAL is tried once in a process of its own first, so that an EAL that aborts or exits cannot
 * take the run down: if it fails there, no measuring process starts it. */
static void dpdk_probe(const struct opts *o, int argc, char **argv)
{
    const char *extra[] = {"--dpdk-probe"};
    struct opts po = *o;
    po.no_fork = 0;
    int rc = run_process(&po, argc, argv, 0, extra, 1);
    if (g_probe_ok == 1 && rc == 0) {
        g_dpdk_status = DPDK_OK;
        return;
    }
    g_dpdk_status = DPDK_FAILED;
    if (g_probe_ok != 0)
        snprintf(g_dpdk_reason, sizeof(g_dpdk_reason), "probe process ended with status %d",
                 rc);
}

static int row_of(enum backend be, int wl, int ki)
{
    for (int j = 0; j < g_nrows; j++)
        if (g_rows[j].be == be && g_rows[j].wl == wl && g_rows[j].ki == ki)
            return j;
    return -1;
}

/* Sample j of every row comes from the same repetition of the same process, so each ratio is
 * taken between figures measured side by side, slice by slice; the reported ratio is the
 * median of those paired ratios. */
static void paired(const struct stats *a, int other, struct ratio *out, double *tmp)
{
    out->ok = 0;
    if (other < 0 || a->n == 0 || g_stats[other].n != a->n)
        return;
    for (int j = 0; j < a->n; j++)
        tmp[j] = a->raw[j] / g_stats[other].raw[j];
    out->med = median_of(tmp, a->n);
    out->min = tmp[0];
    out->max = tmp[a->n - 1];
    out->ok = 1;
}

static void compute_stats(int cap)
{
    double *tmp = calloc((size_t)cap, sizeof(double));
    if (tmp == NULL)
        return;
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        struct stats *s = &g_stats[i];
        if (r->be != BE_HOST) {
            paired(s, row_of(BE_FLOOR, r->wl, r->ki), &s->floor, tmp);
            paired(s, row_of(BE_DPDK, r->wl, r->ki), &s->dpdk, tmp);
        }
        if (r->wl == W5 && r->ki != W5_HANDOFF)
            paired(s, row_of(r->be, W1, 0), &s->single, tmp);
        memcpy(s->v, s->raw, (size_t)s->n * sizeof(double));
        s->median = median_of(s->v, s->n);
        s->min = s->v[0];
        s->max = s->v[s->n - 1];
    }
    free(tmp);
}
/* ---- the verifier-off target: this build against a LIBNDIS_BENCH_NO_VERIFIER build ---- */

/* Two programs cannot share a process, so the two builds take turns, process by process (A B,
 * B A, ...: a drift of the host lands on both), on W1 and W3 k=4 only, with the floor beside
 * libndis in each: the floor's code is the same in both builds, so its ratio between the two
 * processes of a pair is what this comparison shows when nothing differs. */
enum { VO_W1, VO_W3, VO_LOADS, VO_SIDES = 2 /* libndis, floor */ };
static const char *const vo_load_name[VO_LOADS] = {"W1", "W3 k=4"};

struct vo_proc {
    int built;   /* the process's VERIFIER_BUILT, -1 until it says */
    int n[VO_LOADS][VO_SIDES];
    double *ns;  /* [load][side][repetition] */
};

static struct {
    int state;      /* 1 measured, 0 n/a (why says why) */
    char why[256];
    int pairs;
    int have[VO_LOADS];
    struct ratio lib[VO_LOADS], flo[VO_LOADS];
    double ns_this[VO_LOADS], ns_ref[VO_LOADS]; /* medians of libndis's ns per operation */
} g_vo;

static void vo_na(const char *why)
{
    g_vo.state = 0;
    snprintf(g_vo.why, sizeof(g_vo.why), "%s", why);
}

static double *vo_at(struct vo_proc *pr, int load, int side, int cap)
{
    return &pr->ns[(load * VO_SIDES + side) * cap];
}

static void vo_read(FILE *in, struct vo_proc *pr, int cap)
{
    enum { MAX_VO_ROWS = 8 };
    int slot_of[MAX_VO_ROWS];
    for (int i = 0; i < MAX_VO_ROWS; i++)
        slot_of[i] = -1;
    char line[256];
    while (fgets(line, sizeof(line), in) != NULL) {
        int idx, be, wl, ki, v;
        double ns;
        if (sscanf(line, "V %d", &v) == 1) {
            pr->built = v;
        } else if (sscanf(line, "N %d %d %d %d", &idx, &be, &wl, &ki) == 4 && idx >= 0 &&
                   idx < MAX_VO_ROWS) {
            int load = wl == W1 ? VO_W1 : wl == W3 && ki == 1 ? VO_W3 : -1;
            int side = be == BE_LIBNDIS ? 0 : be == BE_FLOOR ? 1 : -1;
            slot_of[idx] = load < 0 || side < 0 ? -1 : load * VO_SIDES + side;
        } else if (sscanf(line, "R %d %lf", &idx, &ns) == 2 && idx >= 0 && idx < MAX_VO_ROWS &&
                   slot_of[idx] >= 0) {
            int load = slot_of[idx] / VO_SIDES, side = slot_of[idx] % VO_SIDES;
            if (pr->n[load][side] < cap)
                vo_at(pr, load, side, cap)[pr->n[load][side]++] = ns;
        }
    }
}

/* One process of `path` measuring only the verifier-off rows (`after` overrides the user's
 * choice of rows; his repetitions, slices, operations, seed and CPU stay). */
static int vo_run_one(const char *path, const char *argv0, int argc, char **argv,
                      const char *workloads, struct vo_proc *pr, int cap)
{
    const char *after[] = {"--no-dpdk", "--workloads", workloads, "--ks", "4",
                           "--backends", "libndis,floor"};
    char **args = child_args((char *)argv0, argc, argv, NULL, 0, after,
                             (int)(sizeof(after) / sizeof(after[0])));
    if (args == NULL)
        return -1;
    pid_t pid;
    FILE *in = spawn_child(path, path == argv0 ? NULL : argv0, args, &pid);
    free(args);
    if (in == NULL)
        return -1;
    pr->built = -1;
    memset(pr->n, 0, sizeof(pr->n));
    vo_read(in, pr, cap);
    fclose(in);
    return wait_child(pid);
}

/* Which of W1 and W3 k=4 the user's choice of rows includes: none means no verifier-off rows. */
static int vo_loads(const struct opts *o, char *workloads, size_t cap)
{
    int mask = 0;
    if (o->wl_mask & (1u << W1))
        mask |= 1 << VO_W1;
    if ((o->wl_mask & (1u << W3)) && (o->k_mask & (1u << 1)))
        mask |= 1 << VO_W3;
    snprintf(workloads, cap, "%s%s%s", mask & (1 << VO_W1) ? "W1" : "",
             mask == 3 ? "," : "", mask & (1 << VO_W3) ? "W3" : "");
    return mask;
}

/* Appends the ratios a / b of repetition j of the two processes of a pair, and a's and b's
 * libndis figures, for every j both have. */
static void vo_pair_up(struct vo_proc *a, struct vo_proc *b, int cap,
                       double *ratios[VO_LOADS][VO_SIDES], double *ns[VO_LOADS][2], int *count)
{
    for (int l = 0; l < VO_LOADS; l++) {
        int n = a->n[l][0];
        for (int s = 0; s < VO_SIDES; s++) {
            n = a->n[l][s] < n ? a->n[l][s] : n;
            n = b->n[l][s] < n ? b->n[l][s] : n;
        }
        for (int j = 0; j < n; j++) {
            for (int s = 0; s < VO_SIDES; s++)
                ratios[l][s][count[l] + j] = vo_at(a, l, s, cap)[j] / vo_at(b, l, s, cap)[j];
            ns[l][0][count[l] + j] = vo_at(a, l, 0, cap)[j];
            ns[l][1][count[l] + j] = vo_at(b, l, 0, cap)[j];
        }
        count[l] += n;
    }
}

static void vo_ratio(double *v, int n, struct ratio *out)
{
    out->ok = n > 0;
    if (n > 0) {
        out->med = median_of(v, n);
        out->min = v[0];
        out->max = v[n - 1];
    }
}

/* Runs the pairs of processes; 0 when measured or not applicable (g_vo says which), non-zero
 * when a process failed. */
static int verifier_off_phase(const struct opts *o, int argc, char **argv)
{
    char workloads[16];
    int mask = vo_loads(o, workloads, sizeof(workloads));
    if (o->vo_bin == NULL) {
        vo_na("no reference build given: scripts/bench.sh builds one and passes --verifier-off");
        return 0;
    }
    if (o->no_fork) {
        vo_na("--no-fork: the two builds need processes of their own");
        return 0;
    }
    if (!VERIFIER_BUILT) {
        vo_na("this program is itself the LIBNDIS_BENCH_NO_VERIFIER build");
        return 0;
    }
    if (!(o->be_mask & (1u << BE_LIBNDIS)) || mask == 0) {
        vo_na("libndis W1 and W3 k=4 not among the rows chosen");
        return 0;
    }
    /* Twice --procs pairs: a process of 4 rows takes a fraction of a second, and the figure
     * moves more between processes than between repetitions. */
    int pairs = 2 * o->procs;
    int cap = o->reps, total = pairs * o->reps, count[VO_LOADS] = {0, 0}, rc = 0;
    /* Per load: the ratios of both sides and both builds' libndis figures over all pairs, then
     * one process's figures for each build. */
    size_t per_run = (size_t)total * VO_LOADS * 4, per_proc = (size_t)cap * VO_LOADS * VO_SIDES;
    double *buf = calloc(per_run + 2 * per_proc, sizeof(double));
    if (buf == NULL)
        return -1;
    double *ratios[VO_LOADS][VO_SIDES], *ns[VO_LOADS][2];
    for (int l = 0; l < VO_LOADS; l++)
        for (int s = 0; s < 2; s++) {
            ratios[l][s] = buf + (size_t)total * (l * 4 + s);
            ns[l][s] = buf + (size_t)total * (l * 4 + 2 + s);
        }
    struct vo_proc this_pr = {.ns = buf + per_run};
    struct vo_proc ref_pr = {.ns = buf + per_run + per_proc};
    for (int p = 0; p < pairs && rc == 0; p++) {
        for (int turn = 0; turn < 2 && rc == 0; turn++) {
            int ref = (p + turn) % 2; /* A B, then B A */
            rc = ref ? vo_run_one(o->vo_bin, o->vo_bin, argc, argv, workloads, &ref_pr, cap)
                     : vo_run_one("/proc/self/exe", argv[0], argc, argv, workloads, &this_pr, cap);
            if (rc != 0)
                fprintf(stderr, "bench_pool: verifier-off process %d of %s failed (status %d)\n",
                        p + 1, ref ? o->vo_bin : "this build", rc);
        }
        if (rc != 0)
            break;
        if (ref_pr.built != 0) {
            char why[256];
            snprintf(why, sizeof(why), "%.160s is not a LIBNDIS_BENCH_NO_VERIFIER build",
                     o->vo_bin);
            vo_na(why);
            free(buf);
            return 0;
        }
        vo_pair_up(&this_pr, &ref_pr, cap, ratios, ns, count);
        g_vo.pairs = p + 1;
    }
    if (rc == 0) {
        g_vo.state = 1;
        for (int l = 0; l < VO_LOADS; l++) {
            g_vo.have[l] = count[l] > 0;
            vo_ratio(ratios[l][0], count[l], &g_vo.lib[l]);
            vo_ratio(ratios[l][1], count[l], &g_vo.flo[l]);
            if (count[l] > 0) {
                g_vo.ns_this[l] = median_of(ns[l][0], count[l]);
                g_vo.ns_ref[l] = median_of(ns[l][1], count[l]);
            }
        }
    }
    free(buf);
    return rc;
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
static int ratio_unstable(const struct ratio *q)
{
    return q->ok && q->max > 1.3 * q->min;
}

static const char *dpdk_status_text(void)
{
    static char text[320];
    switch (g_dpdk_status) {
    case DPDK_NOT_BUILT:
        snprintf(text, sizeof(text), "not built (%s), rows skipped", LIBNDIS_BENCH_NO_DPDK_REASON);
        break;
    case DPDK_NOT_SELECTED:
        snprintf(text, sizeof(text), "not selected (--backends), rows skipped");
        break;
    case DPDK_DISABLED:
        snprintf(text, sizeof(text), "left out (--no-dpdk), rows skipped");
        break;
    case DPDK_FAILED:
        snprintf(text, sizeof(text), "EAL init failed (%s), dpdk rows skipped", g_dpdk_reason);
        break;
    default:
        snprintf(text, sizeof(text),
                 "DPDK %s, EAL in each measuring process (--no-huge --no-pci --no-shconf -m 256), "
                 "rte_mempool per-lcore cache %d",
                 g_dpdk_ver, DPDK_CACHE);
        break;
    }
    return text;
}

static void row_label(const struct row *r, char *buf, size_t cap)
{
    if (r->wl == W5)
        snprintf(buf, cap, "W5 %s", w5_name[r->ki]);
    else if (r->wl == W6)
        snprintf(buf, cap, "W6 %s", w6_label[r->ki]);
    else
        snprintf(buf, cap, "%s", wl_name[r->wl]);
}

static void print_header(const struct opts *o, const struct host *h)
{
    printf("bench_pool: libndis %s (%s library), commit %s, %s\n", libndis_version(),
           LIBNDIS_BENCH_LINK, h->commit, h->compiler);
    printf("host: %s, %ld CPUs online, rows pinned to CPU %d", h->cpu, h->online, g_pinned);
    if (g_helper_seen != -2)
        printf(", second thread (W5, W6 round trip) on CPU %d", g_helper_seen);
    printf("\nmode: %s, %d processes x %d repetitions x %d slices; ops per repetition W1 %zu, "
           "W2 %zu, W3 %zu, W4 %zu, W5 %zu, W6 %zu; seed 0x%" PRIx64 "\n",
           o->quick ? "quick" : "full", o->procs, o->reps, o->slices,
           slice_ops(o, W1) * (size_t)o->slices, slice_ops(o, W2) * (size_t)o->slices,
           slice_ops(o, W3) * (size_t)o->slices, slice_ops(o, W4) * (size_t)o->slices,
           slice_ops(o, W5) * (size_t)o->slices, slice_ops(o, W6) * (size_t)o->slices, o->seed);
    printf("inputs: W1, W2, W5 buffer %d bytes at in-page offset %lu; W3 frame %d bytes at "
           "in-page offset %lu, %d random\n  (offset, length) pairs; W4 the same frame in k "
           "buffers, packets with ProtocolReservedLength %d (%zu bytes zeroed\n  per "
           "allocation); W5 handoff through a ring of %d pointers\n",
           FRAME_LEN, (unsigned long)g_w1_offset, FRAME_LEN, (unsigned long)g_frame_offset,
           W3_PAIRS, W4_PROTOCOL_RESERVED, w4_packet_size(), RING_SIZE);
    printf("dpdk: %s\n", dpdk_status_text());
    if (!VERIFIER_BUILT)
        printf("note: a LIBNDIS_BENCH_NO_VERIFIER build: the checked mode is compiled out, so no "
               "libndis+verify rows;\n  this program is the reference of the verifier-off "
               "target\n");
    else if (g_vo.state == 1)
        printf("verifier off: this build's W1 and W3 k=4 against %s, %d pairs of processes "
               "taking turns\n", o->vo_bin, g_vo.pairs);
    if (CPU_COUNT(&g_allowed) < 2)
        printf("note: one CPU only: the two-thread rows (W5, W6 round trip) are skipped\n");
    if (o->procs < 3 || o->reps < 7)
        printf("note: below the spec's minimum of 3 processes x 7 repetitions\n");
}

static void print_ratio_cell(const struct ratio *q, int with_range)
{
    if (!q->ok)
        printf(with_range ? " %8s  %-13s" : " %7s", "", "");
    else if (with_range)
        printf(" %8.2f  %5.2f - %-5.2f", q->med, q->min, q->max);
    else
        printf(" %7.2f", q->med);
}

static void print_rows(void)
{
    printf("\n%-14s %4s %3s  %-14s %8s %8s %8s %8s  %-13s %7s %10s\n", "load", "k", "thr",
           "backend", "median", "min", "max", "x floor", "x floor range", "x dpdk",
           "x 1-thread");
    printf("%-14s %4s %3s  %-14s %8s %8s %8s %8s  %-13s %7s %10s\n", "", "", "", "", "ns/op",
           "ns/op", "ns/op", "(median)", "(min - max)", "(median)", "(W1)");
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        const struct stats *s = &g_stats[i];
        char label[32];
        if (i > 0 && (r->wl != g_rows[i - 1].wl || r->ki != g_rows[i - 1].ki))
            putchar('\n');
        row_label(r, label, sizeof(label));
        printf("%-14s %4d %3d  %-14s %8.2f %8.2f %8.2f", label, row_k(r), row_threads(r),
               be_name[r->be], s->median, s->min, s->max);
        print_ratio_cell(&s->floor, 1);
        print_ratio_cell(&s->dpdk, 0);
        if (s->single.ok)
            printf(" %10.2f", s->single.med);
        putchar('\n');
    }
    printf("\nx floor, x dpdk: median over repetitions of (this row / the floor or dpdk row of "
           "the same workload,\n  k and repetition); x 1-thread: W5 per-thread ns / the same "
           "back-end's W1 in the same repetition.\n  W2: ns per descriptor of the burst; W5 "
           "private, shared: ns per allocate/free pair per thread;\n  W5 handoff: ns per object "
           "allocated on one thread and freed on the other; W6 round trip: ns per trip\n");
}

/* ---- the issue's targets, each with what the floor shows for the same comparison ---- */

/* T_VS asks libndis to be `threshold` times faster than another back-end (`faster`) or to stay
 * within `threshold` times it; T_FLOOR within `threshold` times the floor; T_SINGLE the W5
 * private per-thread cost within `threshold` times the same back-end's W1; T_VERIFY_ON the
 * checked mode within `threshold` times libndis; T_VERIFY_OFF this build within `threshold`
 * times the LIBNDIS_BENCH_NO_VERIFIER build. */
enum tkind { T_FLOOR, T_VS, T_SINGLE, T_VERIFY_ON, T_VERIFY_OFF };

struct target_spec {
    const char *id;    /* stable key of the JSON line */
    const char *label; /* short form, for tables of several runs */
    enum tkind kind;
    int wl, ki;
    enum backend against;
    int faster;
    double threshold;
    const char *name;
};

static const struct target_spec g_target_specs[] = {
    {"W1_floor", "W1 <= 1.5x floor", T_FLOOR, W1, 0, BE_FLOOR, 0, 1.5,
     "W1 allocate/free pair <= 1.5x floor (time; instructions: bench/callgrind_gate.sh)"},
    {"W1_dpdk", "W1 >= 2.5x faster than dpdk", T_VS, W1, 0, BE_DPDK, 1, 2.5,
     "W1 allocate/free pair >= 2.5x faster than dpdk rte_mempool (cached)"},
    {"W1_malloc", "W1 >= 4x faster than malloc", T_VS, W1, 0, BE_MALLOC, 1, 4.0,
     "W1 allocate/free pair >= 4x faster than glibc malloc"},
    {"W2_512_dpdk", "W2 burst 512 <= dpdk", T_VS, W2, 1, BE_DPDK, 0, 1.0,
     "W2 bursts of 512 <= dpdk rte_mempool bulk of 512"},
    {"W3_4_floor", "W3 k=4 <= 1.2x floor", T_FLOOR, W3, 1, BE_FLOOR, 0, 1.2,
     "W3 NdisCopyBuffer k=4 <= 1.2x floor prototype"},
    {"W3_4_dpdk", "W3 k=4 >= 2.5x faster than dpdk", T_VS, W3, 1, BE_DPDK, 1, 2.5,
     "W3 k=4 >= 2.5x faster than dpdk external-buffer mbufs"},
    {"W4_4_floor", "W4 k=4 <= 1.3x floor", T_FLOOR, W4, 1, BE_FLOOR, 0, 1.3,
     "W4 packet cycle k=4 <= 1.3x floor"},
    {"W4_4_dpdk", "W4 k=4 >= 3x faster than dpdk", T_VS, W4, 1, BE_DPDK, 1, 3.0,
     "W4 k=4 >= 3x faster than dpdk mbuf chains"},
    {"W5_handoff_dpdk", "W5 handoff <= dpdk", T_VS, W5, W5_HANDOFF, BE_DPDK, 0, 1.0,
     "W5 allocate on one thread, free on the other <= 1.0x dpdk rte_mempool"},
    {"W5_private_single", "W5 private <= 1.1x 1-thread", T_SINGLE, W5, W5_PRIVATE, BE_LIBNDIS, 0,
     1.1, "W5 two threads on private caches, per-thread cost <= 1.1x single-thread W1"},
    {"W1_verifier_off", "W1 verifier off <= 1.05x", T_VERIFY_OFF, W1, VO_W1, BE_LIBNDIS, 0, 1.05,
     "W1 verifier off: the cost of its branch <= 1.05x (against a LIBNDIS_BENCH_NO_VERIFIER "
     "build)"},
    {"W3_4_verifier_off", "W3 k=4 verifier off <= 1.05x", T_VERIFY_OFF, W3, VO_W3, BE_LIBNDIS, 0,
     1.05, "W3 k=4 verifier off: the cost of its branch <= 1.05x (against a "
           "LIBNDIS_BENCH_NO_VERIFIER build)"},
    {"W1_verifier_on", "W1 verifier on <= 3x", T_VERIFY_ON, W1, 0, BE_LIBNDIS, 0, 3.0,
     "W1 verifier on (libndis+verify) <= 3x libndis"},
    {"W3_4_verifier_on", "W3 k=4 verifier on <= 3x", T_VERIFY_ON, W3, 1, BE_LIBNDIS, 0, 3.0,
     "W3 k=4 verifier on (libndis+verify) <= 3x libndis"},
};
enum { N_TARGETS = sizeof(g_target_specs) / sizeof(g_target_specs[0]) };

struct target_result {
    const struct target_spec *t;
    struct ratio lib;     /* libndis's ratio to what it is compared with: lower is better */
    struct ratio ref;     /* the floor's ratio in the same comparison */
    enum backend ref_be;  /* the floor, or floor-cache where the floor has no such row */
    char na[256];         /* why the target has no figure, when lib.ok is 0 */
    int met, attainable;  /* 1, 0, or -1 for n/a */
};

static struct target_result g_targets[N_TARGETS];

/* The median over repetitions of row a / row b, both from the same repetitions. */
static struct ratio pair_rows(int a, int b)
{
    struct ratio q = {0, 0, 0, 0};
    if (a < 0 || b < 0 || g_stats[a].n == 0)
        return q;
    double *tmp = calloc((size_t)g_stats[a].n, sizeof(double));
    if (tmp != NULL)
        paired(&g_stats[a], b, &q, tmp);
    free(tmp);
    return q;
}

/* What the issue's thresholds mean: `faster` targets hold when ratio <= 1 / threshold. */
static int ratio_meets(const struct target_spec *t, double ratio)
{
    return t->faster ? ratio <= 1.0 / t->threshold : ratio <= t->threshold;
}

/* The figure as the target states it: "N x faster" or "N x". */
static double shown(const struct target_spec *t, double ratio)
{
    return t->faster ? 1.0 / ratio : ratio;
}

static void eval_vs(const struct target_spec *t, struct target_result *r)
{
    int other = row_of(t->against, t->wl, t->ki);
    if (other < 0) {
        if (t->against == BE_DPDK && g_dpdk_status != DPDK_OK)
            snprintf(r->na, sizeof(r->na), "dpdk %s", dpdk_status_text());
        else
            snprintf(r->na, sizeof(r->na), "no %s row in this run", be_name[t->against]);
        return;
    }
    r->lib = pair_rows(row_of(BE_LIBNDIS, t->wl, t->ki), other);
    /* The lock-free floor has no row where another thread frees: floor-cache is the cheapest
     * reference that has one. */
    r->ref_be = row_of(BE_FLOOR, t->wl, t->ki) >= 0 ? BE_FLOOR : BE_FLOOR_CACHE;
    r->ref = pair_rows(row_of(r->ref_be, t->wl, t->ki), other);
}

static void eval_target(const struct target_spec *t, struct target_result *r)
{
    *r = (struct target_result){.t = t, .ref_be = BE_FLOOR, .met = -1, .attainable = -1};
    int lib = row_of(BE_LIBNDIS, t->wl, t->ki);
    switch (t->kind) {
    case T_FLOOR:
        r->lib = pair_rows(lib, row_of(BE_FLOOR, t->wl, t->ki));
        r->ref = (struct ratio){r->lib.ok, 1.0, 1.0, 1.0};
        break;
    case T_VS:
        if (lib >= 0)
            eval_vs(t, r);
        break;
    case T_SINGLE: {
        int f = row_of(BE_FLOOR, t->wl, t->ki);
        if (lib >= 0)
            r->lib = g_stats[lib].single;
        if (f >= 0)
            r->ref = g_stats[f].single;
        break;
    }
    case T_VERIFY_ON:
        r->lib = pair_rows(row_of(BE_LIBNDIS_VERIFY, t->wl, t->ki), lib);
        if (!r->lib.ok && !VERIFIER_BUILT)
            snprintf(r->na, sizeof(r->na), "the checked mode is compiled out of this build");
        break;
    case T_VERIFY_OFF:
        if (g_vo.state != 1)
            snprintf(r->na, sizeof(r->na), "%s", g_vo.why);
        else if (!g_vo.have[t->ki])
            snprintf(r->na, sizeof(r->na), "%s not among the rows chosen", vo_load_name[t->ki]);
        else {
            r->lib = g_vo.lib[t->ki];
            r->ref = g_vo.flo[t->ki];
        }
        return;
    }
    if (!r->lib.ok && r->na[0] == '\0')
        snprintf(r->na, sizeof(r->na), "the rows it compares are not in this run");
}

static void eval_targets(void)
{
    for (int i = 0; i < N_TARGETS; i++) {
        struct target_result *r = &g_targets[i];
        eval_target(&g_target_specs[i], r);
        if (r->lib.ok)
            r->met = ratio_meets(r->t, r->lib.med);
        if (r->lib.ok && r->ref.ok && r->t->kind == T_VERIFY_OFF)
            /* Nothing differs for the floor: off 1.0 either way, it measures the noise. */
            r->attainable = r->ref.med <= r->t->threshold && r->ref.med >= 1.0 / r->t->threshold;
        else if (r->lib.ok && r->ref.ok && r->t->kind != T_VERIFY_ON)
            r->attainable = ratio_meets(r->t, r->ref.med);
    }
}

static const char *against_name(const struct target_spec *t)
{
    switch (t->kind) {
    case T_FLOOR:
        return "floor";
    case T_VS:
        return be_name[t->against];
    case T_SINGLE:
        return "single_thread";
    case T_VERIFY_ON:
        return "libndis";
    default:
        return "no_verifier_build";
    }
}

static void print_target_value(const struct target_result *r)
{
    const struct target_spec *t = r->t;
    const struct ratio *q = &r->lib;
    if (t->faster)
        printf("%.2fx faster (%.2fx %s, repetitions %.2f - %.2fx)", shown(t, q->med), q->med,
               be_name[t->against], q->min, q->max);
    else
        printf("%.2fx (repetitions %.2f - %.2fx", q->med, q->min, q->max);
    if (t->kind == T_VERIFY_OFF)
        printf("; %.2f vs %.2f ns/op, %d pairs of processes)", g_vo.ns_this[t->ki],
               g_vo.ns_ref[t->ki], g_vo.pairs);
    else if (!t->faster)
        putchar(')');
}

/* The second line of a target: the floor doing the same work in the same run, and whether the
 * target is within its reach at all. */
static void print_target_reference(const struct target_result *r)
{
    const struct target_spec *t = r->t;
    const struct ratio *q = &r->ref;
    const char *who = r->ref_be == BE_FLOOR
                          ? "the floor, the physical minimum doing the same work,"
                          : "floor-cache, the cheapest reference here that frees on another "
                            "thread (the floor's free list has no lock),";
    char fig[96];
    if (t->kind == T_FLOOR || t->kind == T_VERIFY_ON)
        return;
    if (!q->ok) {
        printf("  floor: no figure for the same comparison in this run (no %s row)\n",
               be_name[r->ref_be]);
        return;
    }
    if (t->faster)
        snprintf(fig, sizeof(fig), "%.2fx faster than %s", shown(t, q->med), be_name[t->against]);
    else if (t->kind == T_VS)
        snprintf(fig, sizeof(fig), "%.2fx %s", q->med, be_name[t->against]);
    else
        snprintf(fig, sizeof(fig), "%.2fx", q->med);
    if (t->kind == T_SINGLE)
        printf("  floor: its two threads share nothing and show %s single-thread here", fig);
    else if (t->kind == T_VERIFY_OFF)
        printf("  floor: the same code in both builds shows %s between the same processes", fig);
    else if (t->faster)
        printf("  %s: %s in the same run (%.2fx %s, repetitions %.2f - %.2fx)",
               be_name[r->ref_be], fig, q->med, be_name[t->against], q->min, q->max);
    else
        printf("  %s: %s in the same run (repetitions %.2f - %.2fx)", be_name[r->ref_be], fig,
               q->min, q->max);
    if (r->attainable) {
        printf(t->kind == T_VERIFY_OFF ? " -> resolved\n" : " -> attainable\n");
        return;
    }
    printf(" -> %s in this run: ", t->kind == T_VERIFY_OFF ? "UNRESOLVED" : "UNATTAINABLE");
    if (t->kind == T_SINGLE)
        printf("the floor, whose two threads share nothing, already shows %s: the slowdown is "
               "the host's\n  (both CPUs busy at once), not the pool's\n", fig);
    else if (t->kind == T_VERIFY_OFF)
        printf("the floor, the same code in both builds, already shows %s\n  between the "
               "two processes of a pair (code layout, host noise): this comparison cannot "
               "resolve the %.0f%%\n  the target allows; instruction counts can (README.md)\n",
               fig, (t->threshold - 1.0) * 100);
    else
        printf("%s is %s %s\n", who, t->faster ? "only" : "already", fig);
}

static void print_targets(void)
{
    int met = 0, missed = 0, unattainable = 0, unresolved = 0, na = 0;
    putchar('\n');
    for (int i = 0; i < N_TARGETS; i++) {
        const struct target_result *r = &g_targets[i];
        printf("target: libndis %s: ", r->t->name);
        if (!r->lib.ok) {
            printf("n/a (%s)\n", r->na);
            na++;
            continue;
        }
        print_target_value(r);
        printf(" -> %s%s\n", r->met ? "MET" : "NOT MET",
               ratio_unstable(&r->lib) ? ", UNSTABLE" : "");
        print_target_reference(r);
        met += r->met == 1;
        missed += r->met == 0;
        if (r->t->kind == T_VERIFY_OFF)
            unresolved += r->attainable == 0;
        else
            unattainable += r->met == 0 && r->attainable == 0;
    }
    printf("targets: %d met, %d not met", met, missed);
    if (unattainable > 0)
        printf(" (%d of them UNATTAINABLE in this run: even the floor misses %s)", unattainable,
               unattainable == 1 ? "it" : "them");
    printf(", %d n/a", na);
    if (unresolved > 0)
        printf("; %d UNRESOLVED (verifier off: the run cannot resolve 5%%)", unresolved);
    putchar('\n');
    /* The checked mode's cost on the rows that are not targets, for the record. */
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        int j = row_of(BE_LIBNDIS, r->wl, r->ki);
        if (r->be != BE_LIBNDIS_VERIFY || j < 0 || g_stats[j].median <= 0 ||
            (r->wl == W1 || (r->wl == W3 && r->ki == 1)))
            continue;
        struct ratio q = pair_rows(i, j);
        printf("verifier on: %s k=%d costs %.2fx libndis (%.2f vs %.2f ns/op)\n", wl_name[r->wl],
               row_k(r), q.ok ? q.med : g_stats[i].median / g_stats[j].median,
               g_stats[i].median, g_stats[j].median);
    }
    for (int i = 0; i < g_nrows; i++)
        if (ratio_unstable(&g_stats[i].floor)) {
            printf("unstable: %s %s k=%d moved %.2f - %.2fx against the floor between "
                   "repetitions: one of\n  the two changed speed on its own (a latency-bound "
                   "loop such as the free-list floor's\n  W1 can switch speed with code layout "
                   "and CPU state); compare instruction counts\n  (callgrind, README.md)\n",
                   be_name[g_rows[i].be], wl_name[g_rows[i].wl], row_k(&g_rows[i]),
                   g_stats[i].floor.min, g_stats[i].floor.max);
            break;
        }
}

/* libndis+verify uses the same pools as libndis: it gets libndis's figures. */
static const struct mem_slot *mem_of(enum backend be, int s)
{
    return &g_mem[be == BE_LIBNDIS_VERIFY ? BE_LIBNDIS : be][s];
}

static void print_memory(void)
{
    int any = 0;
    for (int be = 0; be < BE_COUNT; be++)
        any |= g_mem[be][0].valid;
    if (!any)
        return;
    printf("\nmemory: bytes per descriptor, pool overhead included, with %u and %u descriptors "
           "live in one pool, one thread\n", g_mem_n[0], g_mem_n[1]);
    printf("%-14s %8s %11s %11s %11s %11s\n", "backend", "slot", "per desc", "per desc",
           "heap/desc", "heap/desc");
    printf("%-14s %8s %11u %11u %11u %11u\n", "", "bytes", g_mem_n[0], g_mem_n[1], g_mem_n[0],
           g_mem_n[1]);
    for (int be = 0; be < BE_COUNT; be++) {
        if (!g_mem[be][0].valid)
            continue;
        printf("%-14s %8.1f", be_name[be], g_mem[be][0].f.slot);
        for (int s = 0; s < MEM_SIZES; s++)
            printf(" %11.1f", g_mem[be][s].valid ? g_mem[be][s].f.total / g_mem_n[s] : 0.0);
        for (int s = 0; s < MEM_SIZES; s++) {
            if (g_mem[be][s].valid && g_mem[be][s].f.heap >= 0)
                printf(" %11.1f", g_mem[be][s].f.heap / g_mem_n[s]);
            else
                printf(" %11s", "-");
        }
        putchar('\n');
    }
    printf("  libndis: the pool's layout (src/pool.h, mdl.h): pool head %d B, 128-byte slots in "
           "slabs, the depot's\n  pointer array, one %d-byte cache per thread that uses the "
           "pool (%d B more per further thread)\n",
           LN_POOL_HEAD, LN_CACHE, LN_CACHE);
    printf("  floor: 32 KiB chunks of 128-byte slots; floor-cache: the same plus its depot's "
           "pointer array and\n  a %zu-byte thread cache; malloc: glibc chunk (usable size + "
           "size word) of the W1 descriptor\n", sizeof(struct floor_tcache));
    if (g_mem[BE_DPDK][0].valid)
        printf("  dpdk: the mempool's memzone (with a %d-entry cache for each of RTE_MAX_LCORE "
               "lcores), its objects\n  (header + %zu-byte element, cache-line aligned) and "
               "its ring\n", DPDK_CACHE, (size_t)DPDK_MDL_BYTES);
    printf("  heap/desc: what mallinfo2 saw the heap grow by while the pool was filled\n");
}

static void print_json_ratio(const char *name, const struct ratio *q)
{
    if (q->ok)
        printf("\"%s\":%.3f,\"%s_min\":%.3f,\"%s_max\":%.3f,", name, q->med, name, q->min, name,
               q->max);
    else
        printf("\"%s\":null,", name);
}

static void print_json_memory(enum backend be)
{
    const struct mem_slot *m0 = mem_of(be, 0), *m1 = mem_of(be, 1);
    if (be == BE_HOST || !m0->valid) {
        printf("\"bytes_per_descriptor\":null,\"memory\":null,");
        return;
    }
    printf("\"bytes_per_descriptor\":%.1f,\"memory\":{\"descriptors\":%u,"
           "\"bytes_per_descriptor\":%.1f,\"slot_bytes\":%.1f,\"heap_bytes_per_descriptor\":",
           m0->f.total / g_mem_n[0], g_mem_n[0], m0->f.total / g_mem_n[0], m0->f.slot);
    if (m0->f.heap >= 0)
        printf("%.1f", m0->f.heap / g_mem_n[0]);
    else
        printf("null");
    if (m1->valid)
        printf(",\"descriptors_large\":%u,\"bytes_per_descriptor_large\":%.1f", g_mem_n[1],
               m1->f.total / g_mem_n[1]);
    printf("},");
}

static void print_json_host(const struct host *h)
{
    printf("\"host\":{\"cpu\":");
    json_string(h->cpu);
    printf(",\"online_cpus\":%ld,\"pinned_cpu\":%d,\"helper_cpu\":%d,\"compiler\":", h->online,
           g_pinned, g_helper_seen >= 0 ? g_helper_seen : -1);
    json_string(h->compiler);
    printf(",\"commit\":");
    json_string(h->commit);
    printf(",\"libndis\":");
    json_string(libndis_version());
    printf(",\"link\":");
    json_string(LIBNDIS_BENCH_LINK);
    printf(",\"dpdk\":%s,\"dpdk_version\":", g_dpdk_status == DPDK_OK ? "true" : "false");
    if (g_dpdk_status == DPDK_OK)
        json_string(g_dpdk_ver);
    else
        printf("null");
    printf(",\"dpdk_status\":");
    json_string(dpdk_status_text());
    printf("}");
}

static const char *json_status(const struct target_result *r)
{
    if (r->met < 0)
        return "n/a";
    if (r->t->kind == T_VERIFY_OFF && r->attainable == 0)
        return r->met ? "MET, UNRESOLVED" : "NOT MET, UNRESOLVED";
    return r->met ? "MET" : r->attainable == 0 ? "NOT MET, UNATTAINABLE" : "NOT MET";
}

static void print_json_bool(const char *name, int v)
{
    printf("\"%s\":%s,", name, v < 0 ? "null" : v ? "true" : "false");
}

/* A figure in the target's own terms ("x faster" or "x"), with its range over repetitions. */
static void print_json_shown(const char *name, const struct target_spec *t, const struct ratio *q)
{
    if (!q->ok) {
        printf("\"%s\":null,", name);
        return;
    }
    double a = shown(t, q->min), b = shown(t, q->max);
    printf("\"%s\":%.3f,\"%s_min\":%.3f,\"%s_max\":%.3f,", name, shown(t, q->med), name,
           a < b ? a : b, name, a < b ? b : a);
}

/* One line per target: libndis's figure, the floor's for the same comparison, the threshold,
 * met and attainable (null when the run has no figure for it). */
static void print_json_targets(const struct opts *o, const struct host *h)
{
    for (int i = 0; i < N_TARGETS; i++) {
        const struct target_result *r = &g_targets[i];
        const struct target_spec *t = r->t;
        printf("{\"bench\":\"bench_pool\",\"record\":\"target\",\"target\":\"%s\",\"name\":",
               t->id);
        json_string(t->name);
        printf(",\"label\":");
        json_string(t->label);
        printf(",\"workload\":\"%s\",\"against\":\"%s\",\"sense\":\"%s\",\"unit\":\"%s\","
               "\"threshold\":%.3f,",
               wl_name[t->wl], against_name(t), t->faster ? ">=" : "<=",
               t->faster ? "times_faster" : "ratio", t->threshold);
        print_json_shown("libndis", t, &r->lib);
        print_json_ratio("libndis_ratio", &r->lib);
        print_json_shown("floor", t, r->t->kind == T_VERIFY_ON ? &(struct ratio){0} : &r->ref);
        if (t->kind == T_VERIFY_ON || !r->ref.ok)
            printf("\"floor_backend\":null,");
        else
            printf("\"floor_backend\":\"%s\",", t->kind == T_VS ? be_name[r->ref_be] : "floor");
        print_json_bool("met", r->met);
        print_json_bool("attainable", r->attainable);
        print_json_bool("unstable", r->lib.ok ? ratio_unstable(&r->lib) : -1);
        printf("\"status\":\"%s\",\"note\":", json_status(r));
        if (r->lib.ok)
            printf("null");
        else
            json_string(r->na);
        if (t->kind == T_VERIFY_OFF && r->lib.ok)
            printf(",\"ns_this_build\":%.3f,\"ns_no_verifier_build\":%.3f,\"pairs\":%d",
                   g_vo.ns_this[t->ki], g_vo.ns_ref[t->ki], g_vo.pairs);
        printf(",\"procs\":%d,\"reps\":%d,\"mode\":\"%s\",", o->procs, o->reps,
               o->quick ? "quick" : "full");
        print_json_host(h);
        printf("}\n");
    }
}

static void print_json(const struct opts *o, const struct host *h)
{
    for (int i = 0; i < g_nrows; i++) {
        const struct row *r = &g_rows[i];
        const struct stats *s = &g_stats[i];
        const char *variant = row_variant(r);
        printf("{\"bench\":\"bench_pool\",\"record\":\"row\",\"backend\":\"%s\","
               "\"workload\":\"%s\",\"k\":%d,\"threads\":%d,\"variant\":",
               be_name[r->be], wl_name[r->wl], row_k(r), row_threads(r));
        if (variant != NULL)
            json_string(variant);
        else
            printf("null");
        printf(",\"op\":\"%s\",\"unit\":\"ns_per_op\",\"median\":%.3f,\"min\":%.3f,\"max\":%.3f,",
               row_op(r), s->median, s->min, s->max);
        if (s->floor.ok)
            printf("\"ratio_floor\":%.3f,\"ratio_floor_min\":%.3f,\"ratio_floor_max\":%.3f,",
                   s->floor.med, s->floor.min, s->floor.max);
        else
            printf("\"ratio_floor\":null,");
        print_json_ratio("ratio_dpdk", &s->dpdk);
        print_json_ratio("ratio_single_thread", &s->single);
        print_json_memory(r->be);
        printf("\"samples\":%d,\"procs\":%d,\"reps\":%d,\"ops_per_rep\":%zu,\"mode\":\"%s\","
               "\"verified\":true,",
               s->n, o->procs, o->reps, row_ops(r, row_slice_ops(o, r)) * (size_t)o->slices,
               o->quick ? "quick" : "full");
        print_json_host(h);
        printf("}\n");
    }
    print_json_targets(o, h);
}

/* A measuring process (or --no-fork) pins itself first, then starts EAL with itself as the
 * main lcore; the parent only learns from a probe whether EAL can start here. */
static void decide_dpdk(const struct opts *o, int argc, char **argv)
{
    if (!DPDK_BUILT)
        g_dpdk_status = DPDK_NOT_BUILT;
    else if (!(o->be_mask & (1u << BE_DPDK)))
        g_dpdk_status = DPDK_NOT_SELECTED;
    else if (o->no_dpdk)
        g_dpdk_status = DPDK_DISABLED;
    else if (o->child || o->no_fork) {
        char why[160];
        if (dpdk_start(g_cpu, g_helper_cpu, why, sizeof(why))) {
            g_dpdk_status = DPDK_OK;
            snprintf(g_dpdk_ver, sizeof(g_dpdk_ver), "%s", dpdk_version());
        } else {
            g_dpdk_status = DPDK_FAILED;
            snprintf(g_dpdk_reason, sizeof(g_dpdk_reason), "%s", why);
        }
    } else {
        dpdk_probe(o, argc, argv);
    }
    g_dpdk_on = g_dpdk_status == DPDK_OK;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    if (sched_getaffinity(0, sizeof(g_allowed), &g_allowed) != 0) {
        CPU_ZERO(&g_allowed);
        CPU_SET(0, &g_allowed);
    }
    if (o.child || o.no_fork) {
        g_cpu = pick_cpu(o.cpu);
        g_helper_cpu = other_cpu(g_cpu);
    }
    decide_dpdk(&o, argc, argv);
    if (o.probe) {
        if (g_dpdk_on)
            printf("D ok %s\n", g_dpdk_ver);
        else
            printf("D fail %s\n", g_dpdk_reason);
        dpdk_stop();
        return 0;
    }
    if (o.child && !o.no_dpdk && g_dpdk_status == DPDK_FAILED) {
        fprintf(stderr, "bench_pool: dpdk: EAL init failed in a measuring process (%s)\n",
                g_dpdk_reason);
        return 2;
    }
    make_rows(&o);
    if (g_nrows == 0) {
        fprintf(stderr, "bench_pool: nothing to measure with these options\n");
        return 64;
    }
    if (o.child) {
        int rc = child_run(&o, stdout);
        dpdk_stop();
        return rc;
    }

    if (o.vo_bin != NULL && access(o.vo_bin, X_OK) != 0) {
        fprintf(stderr, "bench_pool: --verifier-off %s: not an executable file\n", o.vo_bin);
        return 64;
    }
    int cap = o.procs * o.reps;
    for (int i = 0; i < g_nrows; i++)
        if ((g_stats[i].raw = calloc((size_t)cap, sizeof(double))) == NULL ||
            (g_stats[i].v = calloc((size_t)cap, sizeof(double))) == NULL)
            return 1;
    const char *extra[2];
    int nextra = 0;
    if (DPDK_BUILT && g_dpdk_status != DPDK_OK)
        extra[nextra++] = "--no-dpdk";
    for (int p = 0; p < o.procs; p++) {
        /* Memory is measured once, by the first process. */
        int n = nextra;
        if (p == 0)
            extra[n++] = "--memory";
        o.memory = p == 0;
        int rc = run_process(&o, argc, argv, cap, extra, n);
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
    if (verifier_off_phase(&o, argc, argv) != 0) {
        fprintf(stderr, "bench_pool: a verifier-off measuring process failed\n");
        return 1;
    }
    dpdk_stop();
    make_inputs(o.seed); /* for the offsets the header reports */
    compute_stats(cap);
    eval_targets();
    struct host h;
    get_host(&h);
    print_header(&o, &h);
    print_rows();
    print_targets();
    print_memory();
    putchar('\n');
    print_json(&o, &h);
    return 0;
}
