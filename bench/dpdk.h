/* SPDX-License-Identifier: MIT */
/* dpdk.h - the "dpdk" back-end of bench_pool.c: rte_mempool with per-lcore caches for buffer
 * descriptors (W1, W2, W5), external-buffer mbufs for sub-range mapping (W3) and mbuf chains for
 * the packet cycle (W4), behind out-of-line calls shaped like the NDIS ones, as floor.h's are.
 * Built only when CMake found libdpdk (LIBNDIS_BENCH_DPDK); otherwise the same names exist as
 * stubs that are never reached, because no dpdk row is ever made. */
#ifndef LIBNDIS_BENCH_DPDK_H
#define LIBNDIS_BENCH_DPDK_H

#include "floor.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum {
    DPDK_CACHE = 256,     /* per-lcore cache of every mempool: the DPDK examples' usual size */
    DPDK_POOL_OBJS = 8191, /* 2^n - 1, the ring's best size: two caches, a 512 burst, W5's ring */
    DPDK_MBUF_OBJS = 4095,
    DPDK_SOURCES = 3,     /* W3 source chains: k = 1, 4, 16 */
    DPDK_MAX_PARTS = 16,
};

/* What a descriptor slot of the mempool holds: the MDL and the PFNs of up to 8 pages, as the
 * floor's and the library's slots; DPDK's own object header (pool pointer) precedes it. */
#define DPDK_MDL_BYTES (sizeof(MDL) + FLOOR_SLOT_PAGES * sizeof(PFN_NUMBER))

/* Out of line, as floor.h's entry points are (FLOOR_CALL: noipa). */
#define DPDK_CALL FLOOR_CALL

struct dpdk_memory {
    size_t total;    /* bytes: mempool header (with its per-lcore caches), objects, ring */
    size_t obj_size; /* DPDK header + element + trailer, as rte_mempool_calc_obj_size says */
    size_t header;   /* the mempool's own memzone: struct, private data, RTE_MAX_LCORE caches */
};

#ifdef LIBNDIS_BENCH_DPDK

/* DPDK's headers use SSSE3/SSE4.2 intrinsics (Debian builds DPDK for corei7): only this
 * back-end's code may use them, so that the other back-ends' code stays what it is without
 * DPDK. ISA extensions only, not arch=: floor.h's always_inline helpers must still inline. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("sse4.2,popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("sse4.2,popcnt")
#endif

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <rte_version.h>

#define DPDK_BUILT 1

static int dpdk_up;

/* EAL in this process, the way the spec asks: no hugepages, no PCI, no shared config, 256 MB;
 * lcores are the CPU this process is pinned to (the main lcore) and the other one (-1: none).
 * On failure `why` says what EAL said. */
static int dpdk_start(int main_cpu, int other_cpu, char *why, size_t cap)
{
    char lcores[32], main_lcore[32], prefix[64];
    if (other_cpu >= 0)
        snprintf(lcores, sizeof(lcores), "%d,%d", main_cpu, other_cpu);
    else
        snprintf(lcores, sizeof(lcores), "%d", main_cpu);
    snprintf(main_lcore, sizeof(main_lcore), "--main-lcore=%d", main_cpu);
    snprintf(prefix, sizeof(prefix), "--file-prefix=libndis-bench-%ld", (long)getpid());
    char *args[] = {"bench_pool", "--no-huge", "--no-pci", "--no-shconf", "-m", "256",
                    "-l", lcores, main_lcore, "--proc-type=primary", "--log-level=1",
                    "--no-telemetry", prefix, NULL};
    int argc = (int)(sizeof(args) / sizeof(args[0])) - 1;
    /* EAL's messages go to stderr: a measuring process's stdout is its report to the parent. */
    rte_openlog_stream(stderr);
    if (rte_eal_init(argc, args) < 0) {
        snprintf(why, cap, "%s", rte_strerror(rte_errno));
        return 0;
    }
    dpdk_up = 1;
    return 1;
}

static void dpdk_stop(void)
{
    if (dpdk_up)
        rte_eal_cleanup();
    dpdk_up = 0;
}

/* "22.11.11": rte_version() without its "DPDK " prefix. */
static const char *dpdk_version(void)
{
    const char *v = rte_version();
    return strncmp(v, "DPDK ", 5) == 0 ? v + 5 : v;
}

/* The second thread of W5 gets an lcore id, hence its own cache in every mempool. */
static int dpdk_thread_register(void)
{
    return rte_thread_register() == 0 && rte_lcore_id() != LCORE_ID_ANY;
}

static void dpdk_thread_unregister(void)
{
    rte_thread_unregister();
}

/* ---- descriptors in an rte_mempool (W1, W2, W5) ---- */

static void *dpdk_mdl_pool_create(const char *name, unsigned count)
{
    return rte_mempool_create(name, count, (unsigned)DPDK_MDL_BYTES, DPDK_CACHE, 0, NULL, NULL,
                              NULL, NULL, SOCKET_ID_ANY, 0);
}

static void dpdk_pool_free(void *pool)
{
    rte_mempool_free(pool);
}

/* Objects handed out and not back, caches of every lcore counted as free. */
static unsigned dpdk_in_use(void *pool)
{
    return rte_mempool_in_use_count(pool);
}

/* More than 8 pages: a heap block of its own, told apart at free time by its Size. */
static __attribute__((noinline)) PMDL dpdk_big_new(ULONG pages)
{
    if (pages > FLOOR_MAX_PAGES)
        return NULL;
    return malloc(sizeof(MDL) + pages * sizeof(PFN_NUMBER));
}

DPDK_CALL static void dpdk_allocate(NDIS_STATUS *Status, PNDIS_BUFFER *Buffer, void *pool,
                                    PVOID va, UINT len)
{
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, len);
    PMDL m = NULL;
    if (FLOOR_LIKELY(floor_args_ok(va, len))) {
        void *obj;
        if (FLOOR_UNLIKELY(pages > FLOOR_SLOT_PAGES))
            m = dpdk_big_new(pages);
        else if (FLOOR_LIKELY(rte_mempool_get(pool, &obj) == 0))
            m = obj;
    }
    if (FLOOR_LIKELY(m != NULL))
        floor_init_nonpaged(m, va, len, pages);
    *Buffer = m;
    *Status = m != NULL ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

/* The pool comes from DPDK's hidden object header, as the library's comes from its own. */
DPDK_CALL static void dpdk_free(PNDIS_BUFFER Buffer)
{
    if (Buffer == NULL)
        return;
    if (FLOOR_UNLIKELY((size_t)Buffer->Size > DPDK_MDL_BYTES)) {
        free(Buffer);
        return;
    }
    rte_mempool_put(rte_mempool_from_obj(Buffer), Buffer);
}

/* W2: one rte_mempool_get_bulk for the burst, then the same descriptor init into each. */
DPDK_CALL static void dpdk_allocate_bulk(NDIS_STATUS *Status, PNDIS_BUFFER *Buffers, void *pool,
                                         PVOID va, UINT len, unsigned n)
{
    ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, len);
    if (!floor_args_ok(va, len) || pages > FLOOR_SLOT_PAGES ||
        rte_mempool_get_bulk(pool, (void **)Buffers, n) != 0) {
        *Status = NDIS_STATUS_FAILURE;
        return;
    }
    for (unsigned i = 0; i < n; i++)
        floor_init_nonpaged(Buffers[i], va, len, pages);
    *Status = NDIS_STATUS_SUCCESS;
}

/* Every descriptor of a bulk allocation comes from one pool. */
DPDK_CALL static void dpdk_free_bulk(PNDIS_BUFFER *Buffers, unsigned n)
{
    rte_mempool_put_bulk(rte_mempool_from_obj(Buffers[0]), (void **)Buffers, n);
}

/* ---- external-buffer mbufs (W3) ---- */

/* One shared-info block per part of each source frame: the external buffers the sub-range
 * mbufs attach to. The frame is never freed, so the callback has nothing to do. */
static struct rte_mbuf_ext_shared_info dpdk_shinfo[DPDK_SOURCES][DPDK_MAX_PARTS];

static void dpdk_extbuf_unused(void *addr, void *opaque)
{
    (void)addr;
    (void)opaque;
}

/* mbufs that only ever point at external buffers need no data room of their own. */
static void *dpdk_ext_pool_create(const char *name)
{
    return rte_pktmbuf_pool_create(name, DPDK_MBUF_OBJS, DPDK_CACHE, 0, 0, SOCKET_ID_ANY);
}

/* W4's segments: mbufs with the default data room. */
static void *dpdk_pkt_pool_create(const char *name)
{
    return rte_pktmbuf_pool_create(name, DPDK_MBUF_OBJS, DPDK_CACHE, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   SOCKET_ID_ANY);
}

/* The source of W3 in DPDK terms: a chain of k mbufs, each attached to one part of the frame
 * as an external buffer (reference count 1, held by the source). */
static PNDIS_BUFFER dpdk_source_chain(void *pool, const struct frame_part *parts, int k, int slot)
{
    struct rte_mbuf *head = NULL;
    for (int j = 0; j < k; j++) {
        struct rte_mbuf_ext_shared_info *sh = &dpdk_shinfo[slot][j];
        struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
        if (m == NULL) {
            rte_pktmbuf_free(head);
            return NULL;
        }
        sh->free_cb = dpdk_extbuf_unused;
        sh->fcb_opaque = NULL;
        rte_mbuf_ext_refcnt_set(sh, 1);
        rte_pktmbuf_attach_extbuf(m, parts[j].va, (rte_iova_t)(uintptr_t)parts[j].va,
                                  (uint16_t)parts[j].len, sh);
        m->data_len = (uint16_t)parts[j].len;
        m->pkt_len = parts[j].len;
        if (head == NULL)
            head = m;
        else if (rte_pktmbuf_chain(head, m) != 0) {
            rte_pktmbuf_free(m);
            rte_pktmbuf_free(head);
            return NULL;
        }
    }
    return (PNDIS_BUFFER)(void *)head;
}

/* NdisCopyBuffer in DPDK: seek to the segment holding Offset (a boundary offset lands on the
 * next segment), then per source segment touched one new mbuf attached to that segment's
 * external buffer (its reference count raised) and narrowed to the sub-range, linked at the
 * tail. The result is an mbuf chain, carried in a PNDIS_BUFFER that only dpdk_* calls read.
 * Length 0 is refused: no timed pair has it. */
DPDK_CALL static void dpdk_copy(NDIS_STATUS *Status, PNDIS_BUFFER *Buffer, void *pool,
                                PVOID MemoryDescriptor, UINT Offset, UINT Length)
{
    struct rte_mbuf *cur = MemoryDescriptor, *head = NULL, *tail = NULL;
    uint32_t off = Offset, len = Length;
    if (FLOOR_UNLIKELY(cur == NULL || len == 0 || off + len < off))
        goto out;
    while (cur != NULL && off >= cur->data_len) {
        off -= cur->data_len;
        cur = cur->next;
    }
    while (cur != NULL && len != 0) {
        uint32_t n = cur->data_len - off;
        if (n > len)
            n = len;
        struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
        if (FLOOR_UNLIKELY(m == NULL))
            break;
        rte_mbuf_ext_refcnt_update(cur->shinfo, 1);
        rte_pktmbuf_attach_extbuf(m, cur->buf_addr, rte_mbuf_iova_get(cur), cur->buf_len,
                                  cur->shinfo);
        m->data_off = (uint16_t)(cur->data_off + off);
        m->data_len = (uint16_t)n;
        if (head == NULL) {
            head = m;
        } else {
            tail->next = m;
            head->nb_segs++;
        }
        head->pkt_len += n;
        tail = m;
        len -= n;
        off = 0;
        cur = cur->next;
    }
    if (FLOOR_UNLIKELY(len != 0)) {
        rte_pktmbuf_free(head);
        head = NULL;
    }
out:
    *Buffer = (PNDIS_BUFFER)(void *)head;
    *Status = head != NULL ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

/* Frees a whole mbuf chain: W3's results, W4's packets, the sources. */
DPDK_CALL static void dpdk_free_chain(PNDIS_BUFFER chain)
{
    rte_pktmbuf_free((struct rte_mbuf *)(void *)chain);
}

/* The result of dpdk_copy must map exactly [off, off+len) of the frame: one segment per part
 * touched, at the right address and length, attached to that part's external buffer (whose
 * count is then 2: the source and this segment), pkt_len and nb_segs in the head. */
static const char *dpdk_check_copy(PNDIS_BUFFER chain, const struct frame_part *parts, int k,
                                   int slot, ULONG off, ULONG len)
{
    struct rte_mbuf *head = (struct rte_mbuf *)(void *)chain, *m = head;
    const char *frame = parts[0].va;
    unsigned segs = 0;
    for (int j = 0; j < k; j++) {
        ULONG start = (ULONG)((const char *)parts[j].va - frame), end = start + parts[j].len;
        ULONG lo = start > off ? start : off, hi = end < off + len ? end : off + len;
        if (lo >= hi)
            continue;
        if (m == NULL)
            return "W3 dpdk: chain shorter than the parts the range touches";
        if (rte_pktmbuf_mtod(m, const char *) != frame + lo || m->data_len != hi - lo)
            return "W3 dpdk: a segment does not map its part of the sub-range";
        if (!RTE_MBUF_HAS_EXTBUF(m) || m->shinfo != &dpdk_shinfo[slot][j])
            return "W3 dpdk: a segment is not attached to its part's external buffer";
        if (rte_mbuf_ext_refcnt_read(m->shinfo) != 2)
            return "W3 dpdk: external buffer reference count is not 2 while attached";
        segs++;
        m = m->next;
    }
    if (m != NULL)
        return "W3 dpdk: chain longer than the parts the range touches";
    if (head->pkt_len != len || head->nb_segs != segs)
        return "W3 dpdk: pkt_len or nb_segs of the head wrong";
    return NULL;
}

/* The source chain as built, and every external buffer back to the source's one reference. */
static const char *dpdk_check_source(PNDIS_BUFFER chain, const struct frame_part *parts, int k,
                                     int slot)
{
    struct rte_mbuf *m = (struct rte_mbuf *)(void *)chain;
    for (int j = 0; j < k; j++, m = m->next) {
        if (m == NULL || rte_pktmbuf_mtod(m, void *) != parts[j].va || m->data_len != parts[j].len)
            return "W3 dpdk: the source chain was modified";
        if (rte_mbuf_ext_refcnt_read(&dpdk_shinfo[slot][j]) != 1)
            return "W3 dpdk: an external buffer's reference count did not return to 1";
    }
    return m == NULL ? NULL : "W3 dpdk: the source chain grew";
}

/* ---- mbuf chains (W4) ---- */

/* One segment of a packet: an mbuf whose data length is the part's. DPDK has no separate packet
 * descriptor: the first segment is the packet. The data stay where they are (not copied into the
 * mbuf's own room), so DPDK is spared that work. */
DPDK_CALL static void dpdk_seg_allocate(NDIS_STATUS *Status, PNDIS_BUFFER *Buffer, void *pool,
                                        PVOID va, UINT len)
{
    (void)va;
    struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
    if (FLOOR_LIKELY(m != NULL) && FLOOR_UNLIKELY(rte_pktmbuf_append(m, (uint16_t)len) == NULL)) {
        rte_pktmbuf_free(m);
        m = NULL;
    }
    *Buffer = (PNDIS_BUFFER)(void *)m;
    *Status = m != NULL ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

/* rte_pktmbuf_chain: walks to the last segment, links, adds counts; non-zero when too long. */
DPDK_CALL static int dpdk_chain(PNDIS_BUFFER head, PNDIS_BUFFER seg)
{
    return rte_pktmbuf_chain((struct rte_mbuf *)(void *)head, (struct rte_mbuf *)(void *)seg);
}

/* The timed cycle, step by step: fresh segments, chain order and counts, pool usage. */
static const char *dpdk_verify_w4(void *pool, const struct frame_part *parts, int k)
{
    if (k < 1 || k > DPDK_MAX_PARTS)
        return "W4 dpdk: k out of range";
    unsigned base = rte_mempool_in_use_count(pool);
    struct rte_mbuf *segs[DPDK_MAX_PARTS] = {NULL};
    uint32_t total = 0;
    for (int j = 0; j < k; j++) {
        NDIS_STATUS st;
        PNDIS_BUFFER b;
        dpdk_seg_allocate(&st, &b, pool, parts[j].va, parts[j].len);
        struct rte_mbuf *m = segs[j] = (struct rte_mbuf *)(void *)b;
        if (st != NDIS_STATUS_SUCCESS || m == NULL)
            return "W4 dpdk: segment allocate failed";
        if (m->next != NULL || m->nb_segs != 1 || rte_mbuf_refcnt_read(m) != 1 ||
            !RTE_MBUF_DIRECT(m) || m->data_len != parts[j].len || m->pkt_len != parts[j].len)
            return "W4 dpdk: a fresh segment is not a one-segment mbuf of the part's length";
        total += parts[j].len;
        if (j > 0 && dpdk_chain((PNDIS_BUFFER)(void *)segs[0], b) != 0)
            return "W4 dpdk: rte_pktmbuf_chain failed";
        if (segs[0]->nb_segs != j + 1 || segs[0]->pkt_len != total ||
            rte_pktmbuf_lastseg(segs[0]) != m)
            return "W4 dpdk: nb_segs, pkt_len or last segment wrong after a chain";
    }
    struct rte_mbuf *m = segs[0];
    for (int j = 0; j < k; j++, m = m->next)
        if (m != segs[j])
            return "W4 dpdk: the chain is not in the order the segments were chained";
    if (m != NULL || total != segs[0]->pkt_len)
        return "W4 dpdk: the chain does not end after k segments";
    if (rte_mempool_in_use_count(pool) != base + (unsigned)k)
        return "W4 dpdk: mempool in-use count is not k with the packet built";
    dpdk_free_chain((PNDIS_BUFFER)(void *)segs[0]);
    if (rte_mempool_in_use_count(pool) != base)
        return "W4 dpdk: freeing the packet did not return its k segments";
    return NULL;
}

/* ---- memory ---- */

static void dpdk_mem_chunk(struct rte_mempool *mp, void *opaque, struct rte_mempool_memhdr *memhdr,
                           unsigned mem_idx)
{
    (void)mp;
    (void)mem_idx;
    *(size_t *)opaque += memhdr->len;
}

/* Storage of a mempool of `count` descriptors: its memzone (the struct, RTE_MAX_LCORE caches),
 * the object chunks and the ring's memzone. */
static int dpdk_memory(unsigned count, struct dpdk_memory *out)
{
    char name[32];
    snprintf(name, sizeof(name), "ndis_mem%u", count);
    struct rte_mempool *mp = dpdk_mdl_pool_create(name, count);
    if (mp == NULL)
        return 0;
    struct rte_mempool_objsz sz;
    size_t chunks = 0;
    out->obj_size = rte_mempool_calc_obj_size((uint32_t)DPDK_MDL_BYTES, 0, &sz);
    rte_mempool_mem_iter(mp, dpdk_mem_chunk, &chunks);
    out->header = mp->mz != NULL ? mp->mz->len : 0;
    const struct rte_ring *r = mp->pool_data;
    size_t ring = r != NULL && r->memzone != NULL ? r->memzone->len : 0;
    out->total = out->header + chunks + ring;
    rte_mempool_free(mp);
    return 1;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else /* !LIBNDIS_BENCH_DPDK: never called, no dpdk row is ever made */

#define DPDK_BUILT 0

static __attribute__((noreturn, cold)) void dpdk_absent(void)
{
    fputs("bench_pool: dpdk back-end called in a build without DPDK\n", stderr);
    abort();
}

static int dpdk_start(int main_cpu, int other_cpu, char *why, size_t cap)
{
    (void)main_cpu;
    (void)other_cpu;
    snprintf(why, cap, "not built");
    return 0;
}
static void dpdk_stop(void) {}
static const char *dpdk_version(void) { return "none"; }
static int dpdk_thread_register(void) { return 0; }
static void dpdk_thread_unregister(void) {}
static void *dpdk_mdl_pool_create(const char *name, unsigned count)
{
    (void)name;
    (void)count;
    return NULL;
}
static void *dpdk_ext_pool_create(const char *name) { return dpdk_mdl_pool_create(name, 0); }
static void *dpdk_pkt_pool_create(const char *name) { return dpdk_mdl_pool_create(name, 0); }
static void dpdk_pool_free(void *pool) { (void)pool; }
static unsigned dpdk_in_use(void *pool) { (void)pool; dpdk_absent(); }
static void dpdk_allocate(NDIS_STATUS *s, PNDIS_BUFFER *b, void *p, PVOID va, UINT len)
{
    (void)s, (void)b, (void)p, (void)va, (void)len;
    dpdk_absent();
}
static void dpdk_free(PNDIS_BUFFER b) { (void)b; dpdk_absent(); }
static void dpdk_allocate_bulk(NDIS_STATUS *s, PNDIS_BUFFER *b, void *p, PVOID va, UINT len,
                               unsigned n)
{
    (void)s, (void)b, (void)p, (void)va, (void)len, (void)n;
    dpdk_absent();
}
static void dpdk_free_bulk(PNDIS_BUFFER *b, unsigned n) { (void)b, (void)n; dpdk_absent(); }
static PNDIS_BUFFER dpdk_source_chain(void *pool, const struct frame_part *parts, int k, int slot)
{
    (void)pool, (void)parts, (void)k, (void)slot;
    dpdk_absent();
}
static void dpdk_copy(NDIS_STATUS *s, PNDIS_BUFFER *b, void *p, PVOID src, UINT off, UINT len)
{
    (void)s, (void)b, (void)p, (void)src, (void)off, (void)len;
    dpdk_absent();
}
static void dpdk_free_chain(PNDIS_BUFFER chain) { (void)chain; dpdk_absent(); }
static const char *dpdk_check_copy(PNDIS_BUFFER chain, const struct frame_part *parts, int k,
                                   int slot, ULONG off, ULONG len)
{
    (void)chain, (void)parts, (void)k, (void)slot, (void)off, (void)len;
    dpdk_absent();
}
static const char *dpdk_check_source(PNDIS_BUFFER chain, const struct frame_part *parts, int k,
                                     int slot)
{
    (void)chain, (void)parts, (void)k, (void)slot;
    dpdk_absent();
}
static void dpdk_seg_allocate(NDIS_STATUS *s, PNDIS_BUFFER *b, void *p, PVOID va, UINT len)
{
    (void)s, (void)b, (void)p, (void)va, (void)len;
    dpdk_absent();
}
static int dpdk_chain(PNDIS_BUFFER head, PNDIS_BUFFER seg) { (void)head, (void)seg; dpdk_absent(); }
static const char *dpdk_verify_w4(void *pool, const struct frame_part *parts, int k)
{
    (void)pool, (void)parts, (void)k;
    dpdk_absent();
}
static int dpdk_memory(unsigned count, struct dpdk_memory *out)
{
    (void)count, (void)out;
    return 0;
}

#endif /* LIBNDIS_BENCH_DPDK */

#endif /* LIBNDIS_BENCH_DPDK_H */
