/* SPDX-License-Identifier: MIT */
/* test_verifier_objects.c - the verifier's object rules (issue 4, verifier contract): every
 * misuse of a descriptor, packet, pool or memory block gives exactly one report naming rule, call,
 * object, pool and sites, and its correct twin gives none; a workload observes the same values with
 * the verifier off and on; misuse_verifier.c, run as a child, shows the stderr text and policies. */
#define _POSIX_C_SOURCE 200809L /* fork, fileno, setenv */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <libndis.h>
#include <ndis.h>

#include "test_util.h"

/* The library keeps freed objects in quarantine for this many frees (the contract's default);
 * every test starts from it so that "still in quarantine" holds for the frees a test makes. */
#define QUARANTINE 256
/* More frees than the quarantine holds: whatever was in it has been checked and released. */
#define FLUSH_CYCLES (QUARANTINE + 44)

static _Alignas(4096) unsigned char data[4 * TEST_PAGE];
static _Alignas(4096) unsigned char sink[2 * TEST_PAGE];
static NDIS_HANDLE scratch_packets; /* flushes the packet quarantine; lives for the whole run */

/* ---- what the callback saw ---- */

#define MAX_SEEN 16
struct seen {
    char rule[48];
    char function[64];
    char call_file[512];
    char alloc_file[512];
    char text[8192];
    PVOID object;
    NDIS_HANDLE pool;
    int call_line;
    int alloc_line;
    bool has_call_file;
    bool has_alloc_file;
    BOOLEAN aborting;
};
static struct seen seen[MAX_SEEN];
static int n_seen; /* may exceed MAX_SEEN: counts every delivery */

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static VOID record_report(const LIBNDIS_VERIFIER_REPORT *r, PVOID context)
{
    (void)context;
    if (n_seen < MAX_SEEN) {
        struct seen *s = &seen[n_seen];
        copy_text(s->rule, sizeof s->rule, r->Rule);
        copy_text(s->function, sizeof s->function, r->Function);
        copy_text(s->call_file, sizeof s->call_file, r->CallFile);
        copy_text(s->alloc_file, sizeof s->alloc_file, r->AllocFile);
        copy_text(s->text, sizeof s->text, r->Text);
        s->object = r->Object;
        s->pool = r->Pool;
        s->call_line = r->CallLine;
        s->alloc_line = r->AllocLine;
        s->has_call_file = r->CallFile != NULL;
        s->has_alloc_file = r->AllocFile != NULL;
        s->aborting = r->Aborting;
    }
    n_seen++;
}

/* Drops what the preparation of a misuse reported, so the misuse itself is counted alone. */
static void forget_reports(void)
{
    LibNdisVerifierResetCounts();
    n_seen = 0;
}

static int verifier_on(void **state)
{
    (void)state;
    char spec[64];
    snprintf(spec, sizeof spec, "all,abort=none,quarantine=%d", QUARANTINE);
    if (LibNdisVerifierConfigure(spec) != NDIS_STATUS_SUCCESS || !LibNdisVerifierEnabled())
        return -1;
    LibNdisVerifierSetCallback(record_report, NULL);
    forget_reports();
    return 0;
}

static int group_setup(void **state)
{
    NDIS_STATUS st;
    if (verifier_on(state) != 0)
        return -1;
    /* Overflow room beyond what the quarantine can hold, so flushing never runs the pool dry. */
    NdisAllocatePacketPoolEx(&st, &scratch_packets, 4, 2 * QUARANTINE, 0);
    return st == NDIS_STATUS_SUCCESS && scratch_packets != NULL ? 0 : -1;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* The line of Text that contains Label, as a separate string (empty when absent). */
static void text_line(const char *text, const char *label, char *out, size_t cap)
{
    const char *at = strstr(text, label);
    out[0] = '\0';
    if (at == NULL)
        return;
    size_t len = strcspn(at, "\n");
    if (len >= cap)
        len = cap - 1;
    memcpy(out, at, len);
    out[len] = '\0';
}

/* "file.c:LINE" occurs in Text, not followed by another digit (":12" must not match ":123"). */
static bool has_site(const char *text, const char *file, int line)
{
    char site[600];
    snprintf(site, sizeof site, "%s:%d", base_name(file), line);
    for (const char *at = strstr(text, site); at != NULL; at = strstr(at + 1, site)) {
        char next = at[strlen(site)];
        if (next < '0' || next > '9')
            return true;
    }
    return false;
}

static void assert_site_in_line(const char *text, const char *label, const char *file, int line)
{
    char found[1024];
    text_line(text, label, found, sizeof found);
    if (found[0] == '\0' || !has_site(found, file, line))
        fail_msg("report text lacks \"%s ...%s:%d\"; text was:\n%s", label, base_name(file), line,
                 text);
}

struct expect {
    const char *rule;
    const char *function; /* NULL: not checked */
    PVOID object;
    bool any_object;      /* the contract names no object for this report */
    NDIS_HANDLE pool;
    bool check_pool;
    int call_line;        /* 0: not checked */
    int alloc_line;       /* 0: not checked */
    int freed_line;       /* 0: not checked; else the text gives this earlier free site */
};

static void check_report(const struct seen *r, const struct expect *e, const char *file)
{
    char head[96];
    snprintf(head, sizeof head, "libndis verifier: %s:", e->rule);
    assert_string_equal(r->rule, e->rule);
    assert_false(r->aborting); /* abort=none: no rule may still say it aborts */
    if (strncmp(r->text, head, strlen(head)) != 0)
        fail_msg("report text does not start with \"%s\":\n%s", head, r->text);
    if (e->function != NULL)
        assert_string_equal(r->function, e->function);
    if (!e->any_object)
        assert_ptr_equal(r->object, e->object);
    if (e->check_pool)
        assert_ptr_equal(r->pool, e->pool);
    if (e->call_line != 0) {
        char label[96];
        assert_true(r->has_call_file);
        assert_string_equal(r->call_file, file);
        assert_int_equal(r->call_line, e->call_line);
        snprintf(label, sizeof label, "call: %s at ", e->function != NULL ? e->function : "");
        assert_site_in_line(r->text, label, file, e->call_line);
    }
    if (e->alloc_line != 0) {
        assert_true(r->has_alloc_file);
        assert_string_equal(r->alloc_file, file);
        assert_int_equal(r->alloc_line, e->alloc_line);
        assert_site_in_line(r->text, "allocated at: ", file, e->alloc_line);
    }
    if (e->freed_line != 0)
        assert_site_in_line(r->text, "freed at: ", file, e->freed_line);
}

static void expect_one_at(const struct expect *e, const char *file)
{
    if (n_seen != 1)
        fail_msg("expected exactly one %s report, the callback saw %d (first: %s)", e->rule, n_seen,
                 n_seen > 0 ? seen[0].rule : "none");
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
    assert_int_equal(LibNdisVerifierReportCount(e->rule), 1);
    check_report(&seen[0], e, file);
}
#define expect_one(...) expect_one_at(&(struct expect){__VA_ARGS__}, __FILE__)

static void expect_none(void)
{
    if (n_seen != 0)
        fail_msg("expected no report, got %d; first:\n%s", n_seen, seen[0].text);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 0);
}

/* ---- making objects inline, so the verifier records the test's own line as their site ---- */

#define NEW_BUFFER(b, pool, va, len)                                 \
    do {                                                             \
        NDIS_STATUS nb_st_ = (NDIS_STATUS)0x12345678;                \
        NdisAllocateBuffer(&nb_st_, &(b), (pool), (va), (len));      \
        assert_int_equal(nb_st_, NDIS_STATUS_SUCCESS);               \
        assert_non_null(b);                                          \
    } while (0)

#define NEW_PACKET(p, pool)                                          \
    do {                                                             \
        NDIS_STATUS np_st_ = (NDIS_STATUS)0x12345678;                \
        NdisAllocatePacket(&np_st_, &(p), (pool));                   \
        assert_int_equal(np_st_, NDIS_STATUS_SUCCESS);               \
        assert_non_null(p);                                          \
    } while (0)

static NDIS_HANDLE new_buffer_pool(UINT n)
{
    NDIS_STATUS st = (NDIS_STATUS)0x12345678;
    NDIS_HANDLE h = NULL;
    NdisAllocateBufferPool(&st, &h, n);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    assert_non_null(h);
    return h;
}

static NDIS_HANDLE new_packet_pool(UINT n)
{
    NDIS_STATUS st = (NDIS_STATUS)0x12345678;
    NDIS_HANDLE h = NULL;
    NdisAllocatePacketPool(&st, &h, n, 16);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    assert_non_null(h);
    return h;
}

static ULONG pool_in_use(NDIS_HANDLE pool)
{
    LIBNDIS_POOL_INFO info;
    assert_int_equal(LibNdisQueryBufferPool(pool, &info), NDIS_STATUS_SUCCESS);
    return info.InUse;
}

/* Frees more descriptors, packets and blocks than the quarantine holds, so every object freed
 * before has left it (and had its poison checked). No cmocka asserts: teardown uses it too. */
static bool flush_quarantine(void)
{
    for (int i = 0; i < FLUSH_CYCLES; i++) {
        NDIS_STATUS st;
        PNDIS_BUFFER b;
        PNDIS_PACKET p;
        PVOID m;
        NdisAllocateBuffer(&st, &b, NULL, sink, 8);
        if (st != NDIS_STATUS_SUCCESS)
            return false;
        NdisFreeBuffer(b);
        NdisAllocatePacket(&st, &p, scratch_packets);
        if (st != NDIS_STATUS_SUCCESS)
            return false;
        NdisFreePacket(p);
        if (NdisAllocateMemoryWithTag(&m, 8, LIBNDIS_TAG('V', 'f', 'F', 'l')) != NDIS_STATUS_SUCCESS)
            return false;
        NdisFreeMemory(m, 8, 0);
    }
    return true;
}

/* A write into freed memory by the library itself (a refused call that still wrote) shows up only
 * when the object leaves quarantine, possibly tests later: make it fail the test that caused it. */
static int quarantine_clean(void **state)
{
    (void)state;
    ULONG before = LibNdisVerifierReportCount("USE_AFTER_FREE");
    int seen_before = n_seen;
    if (!flush_quarantine()) {
        print_error("teardown: allocations failed while flushing the quarantine\n");
        return -1;
    }
    if (LibNdisVerifierReportCount("USE_AFTER_FREE") != before) {
        print_error("teardown: a freed object was modified while in quarantine:\n%s\n",
                    seen_before < MAX_SEEN ? seen[seen_before].text : "(not kept)");
        return -1;
    }
    return 0;
}

/* ================================ LEAK ================================ */

static void leak_reports_each_object_with_its_site(void **state)
{
    (void)state;
    const ULONG tag = LIBNDIS_TAG('V', 'f', 'L', 'k');
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d;
    PNDIS_PACKET p;
    PVOID mem = NULL;
    int a_buf = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 100);
    int a_mdl = __LINE__ + 1;
    PMDL mdl = IoAllocateMdl(data + 10, 50, FALSE, FALSE, NULL);
    assert_non_null(mdl);
    int a_pkt = __LINE__ + 1;
    NEW_PACKET(p, pp);
    int a_mem = __LINE__ + 1;
    assert_int_equal(NdisAllocateMemoryWithTag(&mem, 40, tag), NDIS_STATUS_SUCCESS);
    expect_none();

    assert_int_equal(LibNdisVerifierCheckLeaks(), 4);
    assert_int_equal(n_seen, 4);
    assert_int_equal(LibNdisVerifierReportCount("LEAK"), 4);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 4);
    const struct {
        PVOID object;
        int line;
        NDIS_HANDLE pool;
        bool check_pool;
    } want[4] = {{d, a_buf, pool, true}, {mdl, a_mdl, NULL, false}, {p, a_pkt, pp, true},
                 {mem, a_mem, NULL, false}};
    for (int w = 0; w < 4; w++) {
        int hits = 0;
        for (int i = 0; i < 4; i++) {
            if (seen[i].object != want[w].object)
                continue;
            hits++;
            check_report(&seen[i],
                         &(struct expect){.rule = "LEAK", .object = want[w].object,
                                          .pool = want[w].pool, .check_pool = want[w].check_pool,
                                          .alloc_line = want[w].line},
                         __FILE__);
            if (want[w].object == mem && strstr(seen[i].text, "VfLk") == NULL)
                fail_msg("memory leak report does not name its tag VfLk:\n%s", seen[i].text);
        }
        assert_int_equal(hits, 1);
    }

    /* Nothing was freed by the check: the objects are still usable and free cleanly. */
    forget_reports();
    NdisFreeBuffer(d);
    IoFreeMdl(mdl);
    NdisFreePacket(p);
    NdisFreeMemory(mem, 40, 0);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
    assert_int_equal(LibNdisVerifierCheckLeaks(), 0);
    expect_none();
}

static void leak_none_when_everything_freed(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d, copy;
    PNDIS_PACKET p;
    PVOID mem = NULL;
    NDIS_STATUS st;
    NEW_BUFFER(d, pool, data, 100);
    NdisCopyBuffer(&st, &copy, pool, d, 10, 20);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    PMDL mdl = IoAllocateMdl(data, 50, FALSE, FALSE, NULL);
    assert_non_null(mdl);
    NEW_PACKET(p, pp);
    assert_int_equal(NdisAllocateMemoryWithTag(&mem, 40, LIBNDIS_TAG('V', 'f', 'L', 'k')),
                     NDIS_STATUS_SUCCESS);
    NdisFreeBuffer(copy);
    NdisFreeBuffer(d);
    IoFreeMdl(mdl);
    NdisFreePacket(p);
    NdisFreeMemory(mem, 40, 0);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    assert_int_equal(LibNdisVerifierCheckLeaks(), 0);
    expect_none();
}

/* ========================== POOL_FREED_IN_USE ========================== */

static void pool_freed_in_use_buffer_pool(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d1, d2;
    int a1 = __LINE__ + 1;
    NEW_BUFFER(d1, pool, data, 10);
    int a2 = __LINE__ + 1;
    NEW_BUFFER(d2, pool, data + 10, 20);
    int line = __LINE__ + 1;
    NdisFreeBufferPool(pool);
    expect_one(.rule = "POOL_FREED_IN_USE", .function = "NdisFreeBufferPool", .any_object = true,
               .pool = pool, .check_pool = true, .call_line = line);
    /* Both outstanding descriptors are listed with their allocation sites. */
    assert_true(has_site(seen[0].text, __FILE__, a1));
    assert_true(has_site(seen[0].text, __FILE__, a2));

    LIBNDIS_POOL_INFO info;
    assert_int_equal(LibNdisQueryBufferPool(pool, &info), NDIS_STATUS_SUCCESS);
    assert_true(info.Retired);
    assert_int_equal(info.InUse, 2);

    forget_reports();
    NdisFreeBuffer(d1);
    NdisFreeBuffer(d2);
    assert_int_equal(LibNdisVerifierReportCount("RETIRED_POOL_FREE"), 2);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 2);
}

static void pool_freed_in_use_packet_pool(void **state)
{
    (void)state;
    NDIS_HANDLE pp = new_packet_pool(4);
    PNDIS_PACKET p1, p2;
    int a1 = __LINE__ + 1;
    NEW_PACKET(p1, pp);
    int a2 = __LINE__ + 1;
    NEW_PACKET(p2, pp);
    int line = __LINE__ + 1;
    NdisFreePacketPool(pp);
    expect_one(.rule = "POOL_FREED_IN_USE", .function = "NdisFreePacketPool", .any_object = true,
               .pool = pp, .check_pool = true, .call_line = line);
    assert_true(has_site(seen[0].text, __FILE__, a1));
    assert_true(has_site(seen[0].text, __FILE__, a2));

    forget_reports();
    NdisFreePacket(p1);
    NdisFreePacket(p2);
    assert_int_equal(LibNdisVerifierReportCount("RETIRED_POOL_FREE"), 2);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 2);
}

/* Objects POOL_FREED_IN_USE listed are not reported again as leaks. */
static void pool_freed_in_use_objects_not_reported_as_leaks(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d;
    PNDIS_PACKET p;
    NEW_BUFFER(d, pool, data, 10);
    NEW_PACKET(p, pp);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    assert_int_equal(LibNdisVerifierReportCount("POOL_FREED_IN_USE"), 2);
    forget_reports();
    assert_int_equal(LibNdisVerifierCheckLeaks(), 0);
    expect_none();
    NdisFreeBuffer(d);
    NdisFreePacket(p);
}

static void pool_freed_empty_no_report(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d1, d2;
    PNDIS_PACKET p;
    NEW_BUFFER(d1, pool, data, 10);
    NEW_BUFFER(d2, pool, data, 10);
    NEW_PACKET(p, pp);
    NdisFreeBuffer(d2);
    NdisFreeBuffer(d1);
    NdisFreePacket(p);
    /* Freed objects sit in quarantine, yet for the pool they are back: freeing it is legal. */
    assert_int_equal(pool_in_use(pool), 0);
    assert_int_equal(NdisPacketPoolUsage(pp), 0);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

/* ========================= RETIRED_POOL_ALLOC ========================= */

static void retired_pool_alloc_buffer(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d, out = (PNDIS_BUFFER)(ULONG_PTR)0xBADBADC0u;
    NDIS_STATUS st = (NDIS_STATUS)0x12345678;
    NEW_BUFFER(d, pool, data, 10);
    NdisFreeBufferPool(pool);
    forget_reports();

    int line = __LINE__ + 1;
    NdisAllocateBuffer(&st, &out, pool, data, 10);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_null(out);
    expect_one(.rule = "RETIRED_POOL_ALLOC", .function = "NdisAllocateBuffer", .any_object = true,
               .pool = pool, .check_pool = true, .call_line = line);

    forget_reports();
    out = (PNDIS_BUFFER)(ULONG_PTR)0xBADBADC0u;
    line = __LINE__ + 1;
    NdisCopyBuffer(&st, &out, pool, d, 0, 5);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_null(out);
    expect_one(.rule = "RETIRED_POOL_ALLOC", .function = "NdisCopyBuffer", .any_object = true,
               .pool = pool, .check_pool = true, .call_line = line);

    forget_reports();
    NdisFreeBuffer(d);
    assert_int_equal(LibNdisVerifierReportCount("RETIRED_POOL_ALLOC"), 0);
}

static void retired_pool_alloc_packet(void **state)
{
    (void)state;
    NDIS_HANDLE pp = new_packet_pool(4);
    PNDIS_PACKET p, out = (PNDIS_PACKET)(ULONG_PTR)0xBADBADB0u;
    NDIS_STATUS st = (NDIS_STATUS)0x12345678;
    NEW_PACKET(p, pp);
    NdisFreePacketPool(pp);
    forget_reports();

    int line = __LINE__ + 1;
    NdisAllocatePacket(&st, &out, pp);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_null(out);
    expect_one(.rule = "RETIRED_POOL_ALLOC", .function = "NdisAllocatePacket", .any_object = true,
               .pool = pp, .check_pool = true, .call_line = line);
    forget_reports();
    NdisFreePacket(p);
}

static void live_pool_alloc_no_report(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(1), pp = new_packet_pool(1);
    PNDIS_BUFFER d, copy;
    PNDIS_PACKET p;
    NDIS_STATUS st;
    NEW_BUFFER(d, pool, data, 10);
    NdisCopyBuffer(&st, &copy, pool, d, 2, 5); /* past the declared count: the pool grows */
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NEW_PACKET(p, pp);
    NdisFreePacket(p);
    NdisFreeBuffer(copy);
    NdisFreeBuffer(d);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

/* ========================= RETIRED_POOL_FREE ========================= */

static void retired_pool_free_buffer(void **state)
{
    (void)state;
    ULONG live = LibNdisLiveBufferPools();
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d;
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 10);
    NdisFreeBufferPool(pool);
    forget_reports();

    int line = __LINE__ + 1;
    NdisFreeBuffer(d);
    expect_one(.rule = "RETIRED_POOL_FREE", .function = "NdisFreeBuffer", .object = d,
               .pool = pool, .check_pool = true, .call_line = line, .alloc_line = a);

    /* The free happened: once the quarantine lets go, the retired pool's storage goes too. */
    forget_reports();
    assert_true(flush_quarantine());
    expect_none();
    assert_int_equal(LibNdisLiveBufferPools(), live);
}

static void retired_pool_free_packet(void **state)
{
    (void)state;
    NDIS_HANDLE pp = new_packet_pool(4);
    PNDIS_PACKET p;
    int a = __LINE__ + 1;
    NEW_PACKET(p, pp);
    NdisFreePacketPool(pp);
    forget_reports();

    int line = __LINE__ + 1;
    NdisFreePacket(p);
    expect_one(.rule = "RETIRED_POOL_FREE", .function = "NdisFreePacket", .object = p, .pool = pp,
               .check_pool = true, .call_line = line, .alloc_line = a);
    forget_reports();
    assert_true(flush_quarantine());
    expect_none();
}

static void retired_pool_free_io_free_mdl(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d;
    NEW_BUFFER(d, pool, data, 10);
    NdisFreeBufferPool(pool);
    forget_reports();
    int line = __LINE__ + 1;
    IoFreeMdl(d);
    expect_one(.rule = "RETIRED_POOL_FREE", .function = "IoFreeMdl", .object = d, .pool = pool,
               .check_pool = true, .call_line = line);
}

static void free_to_live_pool_no_report(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(4);
    PNDIS_BUFFER d;
    PNDIS_PACKET p;
    NEW_BUFFER(d, pool, data, 10);
    NEW_PACKET(p, pp);
    NdisFreeBuffer(d);
    NdisFreePacket(p);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

/* ============================ DOUBLE_FREE ============================ */

static void double_free_ndis_free_buffer(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d;
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 10);
    int first = __LINE__ + 1;
    NdisFreeBuffer(d);
    ULONG in_use = pool_in_use(pool);
    int line = __LINE__ + 1;
    NdisFreeBuffer(d);
    expect_one(.rule = "DOUBLE_FREE", .function = "NdisFreeBuffer", .object = d, .pool = pool,
               .check_pool = true, .call_line = line, .alloc_line = a, .freed_line = first);
    assert_int_equal(pool_in_use(pool), in_use); /* the second free did nothing */
    forget_reports();
    NdisFreeBufferPool(pool);
    expect_none();
}

static void double_free_io_free_mdl(void **state)
{
    (void)state;
    int a = __LINE__ + 1;
    PMDL m = IoAllocateMdl(data, 64, FALSE, FALSE, NULL);
    assert_non_null(m);
    int first = __LINE__ + 1;
    IoFreeMdl(m);
    int line = __LINE__ + 1;
    IoFreeMdl(m);
    expect_one(.rule = "DOUBLE_FREE", .function = "IoFreeMdl", .object = m, .call_line = line,
               .alloc_line = a, .freed_line = first);
}

/* Real drivers mix the two frees (decision 6); the second one is still a double free. */
static void double_free_ndis_then_io_free_mdl(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d;
    NEW_BUFFER(d, pool, data, 10);
    int first = __LINE__ + 1;
    NdisFreeBuffer(d);
    int line = __LINE__ + 1;
    IoFreeMdl(d);
    expect_one(.rule = "DOUBLE_FREE", .function = "IoFreeMdl", .object = d, .pool = pool,
               .check_pool = true, .call_line = line, .freed_line = first);
    forget_reports();
    NdisFreeBufferPool(pool);
    expect_none();
}

static void double_free_packet(void **state)
{
    (void)state;
    NDIS_HANDLE pp = new_packet_pool(4);
    PNDIS_PACKET p;
    int a = __LINE__ + 1;
    NEW_PACKET(p, pp);
    int first = __LINE__ + 1;
    NdisFreePacket(p);
    int line = __LINE__ + 1;
    NdisFreePacket(p);
    expect_one(.rule = "DOUBLE_FREE", .function = "NdisFreePacket", .object = p, .pool = pp,
               .check_pool = true, .call_line = line, .alloc_line = a, .freed_line = first);
    assert_int_equal(NdisPacketPoolUsage(pp), 0);
    forget_reports();
    NdisFreePacketPool(pp);
    expect_none();
}

static void double_free_memory(void **state)
{
    (void)state;
    const ULONG tag = LIBNDIS_TAG('V', 'f', 'D', 'f');
    LIBNDIS_TAG_USAGE u;
    PVOID m = NULL;
    int a = __LINE__ + 1;
    assert_int_equal(NdisAllocateMemoryWithTag(&m, 48, tag), NDIS_STATUS_SUCCESS);
    int first = __LINE__ + 1;
    NdisFreeMemory(m, 48, 0);
    int line = __LINE__ + 1;
    NdisFreeMemory(m, 48, 0);
    expect_one(.rule = "DOUBLE_FREE", .function = "NdisFreeMemory", .object = m,
               .call_line = line, .alloc_line = a, .freed_line = first);
    assert_true(LibNdisQueryMemoryTag(tag, &u));
    assert_int_equal(u.OutstandingAllocations, 0);
    assert_int_equal(u.OutstandingBytes, 0);
    assert_int_equal(u.TotalAllocations, 1);
}

static void single_free_no_report(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(4);
    PNDIS_BUFFER d;
    PNDIS_PACKET p;
    PVOID m;
    NEW_BUFFER(d, pool, data, 10);
    PMDL mdl = IoAllocateMdl(data, 64, FALSE, FALSE, NULL);
    assert_non_null(mdl);
    NEW_PACKET(p, pp);
    assert_int_equal(NdisAllocateMemoryWithTag(&m, 48, LIBNDIS_TAG('V', 'f', 'D', 'f')),
                     NDIS_STATUS_SUCCESS);
    NdisFreeBuffer(d);
    IoFreeMdl(mdl);
    NdisFreePacket(p);
    NdisFreeMemory(m, 48, 0);
    /* Reallocating the same storage and freeing it again is not a double free. */
    NEW_BUFFER(d, pool, data, 10);
    NdisFreeBuffer(d);
    NEW_PACKET(p, pp);
    NdisFreePacket(p);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    assert_true(flush_quarantine());
    expect_none();
}

/* ============================ USE_AFTER_FREE ============================ */

static void uaf_copy_buffer_freed_source(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d, out = NULL;
    NDIS_STATUS st;
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 100);
    int freed = __LINE__ + 1;
    NdisFreeBuffer(d);
    int line = __LINE__ + 1;
    NdisCopyBuffer(&st, &out, pool, d, 0, 10);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisCopyBuffer", .object = d, .pool = pool,
               .check_pool = true, .call_line = line, .alloc_line = a, .freed_line = freed);
    forget_reports();
    if (st == NDIS_STATUS_SUCCESS && out != NULL)
        NdisFreeBuffer(out);
    NdisFreeBufferPool(pool);
}

/* The freed descriptor is the second of the source chain, reached through Next. */
static void uaf_copy_buffer_freed_second_in_chain(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d1, d2, out = NULL;
    NDIS_STATUS st;
    NEW_BUFFER(d1, pool, data, 100);
    NEW_BUFFER(d2, pool, data + 200, 100);
    NdisFreeBuffer(d2);
    NDIS_BUFFER_LINKAGE(d1) = d2;
    int line = __LINE__ + 1;
    NdisCopyBuffer(&st, &out, pool, d1, 90, 20);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisCopyBuffer", .object = d2, .pool = pool,
               .check_pool = true, .call_line = line);
    forget_reports();
    NDIS_BUFFER_LINKAGE(d1) = NULL;
    for (PNDIS_BUFFER b = (st == NDIS_STATUS_SUCCESS) ? out : NULL; b != NULL;) {
        PNDIS_BUFFER next = b->Next;
        NdisFreeBuffer(b);
        b = next;
    }
    NdisFreeBuffer(d1);
    NdisFreeBufferPool(pool);
}

static void uaf_chain_buffer_at_back(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d;
    PNDIS_PACKET p;
    NEW_PACKET(p, pp);
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 100);
    NdisFreeBuffer(d);
    int line = __LINE__ + 1;
    NdisChainBufferAtBack(p, d);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisChainBufferAtBack", .object = d,
               .pool = pool, .check_pool = true, .call_line = line, .alloc_line = a);
    forget_reports();
    NdisReinitializePacket(p);
    NdisFreePacket(p);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
}

static void uaf_chain_buffer_at_front(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d;
    PNDIS_PACKET p;
    NEW_PACKET(p, pp);
    NEW_BUFFER(d, pool, data, 100);
    NdisFreeBuffer(d);
    int line = __LINE__ + 1;
    NdisChainBufferAtFront(p, d);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisChainBufferAtFront", .object = d,
               .pool = pool, .check_pool = true, .call_line = line);
    forget_reports();
    NdisReinitializePacket(p);
    NdisFreePacket(p);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
}

static void uaf_adjust_buffer_length(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d;
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 100);
    NdisFreeBuffer(d);
    int line = __LINE__ + 1;
    NdisAdjustBufferLength(d, 50);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisAdjustBufferLength", .object = d,
               .pool = pool, .check_pool = true, .call_line = line, .alloc_line = a);
    forget_reports();
    NdisFreeBufferPool(pool);
}

/* A refused call on a freed descriptor must leave its poison intact: one misuse, one report,
 * not a second one when the descriptor leaves quarantine. */
static void uaf_adjust_does_not_write_the_freed_descriptor(void **state)
{
    (void)state;
    PNDIS_BUFFER d;
    NEW_BUFFER(d, NULL, data, 100);
    NdisFreeBuffer(d);
    NdisAdjustBufferLength(d, 50);
    assert_int_equal(LibNdisVerifierReportCount("USE_AFTER_FREE"), 1);
    assert_true(flush_quarantine());
    assert_int_equal(LibNdisVerifierReportCount("USE_AFTER_FREE"), 1);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
}

static void uaf_query_packet_freed_packet(void **state)
{
    (void)state;
    NDIS_HANDLE pp = new_packet_pool(2);
    PNDIS_PACKET p;
    UINT phys = 0, count = 0, total = 0;
    PNDIS_BUFFER first = NULL;
    int a = __LINE__ + 1;
    NEW_PACKET(p, pp);
    int freed = __LINE__ + 1;
    NdisFreePacket(p);
    int line = __LINE__ + 1;
    NdisQueryPacket(p, &phys, &count, &first, &total);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisQueryPacket", .object = p, .pool = pp,
               .check_pool = true, .call_line = line, .alloc_line = a, .freed_line = freed);
    forget_reports();
    NdisFreePacketPool(pp);
}

/* A live packet whose chain reaches a freed descriptor through Next. */
static void uaf_query_packet_chain_holds_freed_descriptor(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d1, d2, u;
    PNDIS_PACKET p;
    UINT count = 0, total = 0;
    NEW_PACKET(p, pp);
    NEW_BUFFER(d1, pool, data, 100);
    NEW_BUFFER(d2, pool, data + 100, 100);
    NdisChainBufferAtBack(p, d1);
    NdisFreeBuffer(d2);
    NDIS_BUFFER_LINKAGE(d1) = d2;
    int line = __LINE__ + 1;
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisQueryPacket", .object = d2,
               .pool = pool, .check_pool = true, .call_line = line);
    forget_reports();
    NDIS_BUFFER_LINKAGE(d1) = NULL;
    NdisUnchainBufferAtFront(p, &u);
    assert_ptr_equal(u, d1);
    NdisFreePacket(p);
    NdisFreeBuffer(d1);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

static void uaf_copy_packet_to_packet(bool free_source)
{
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(4);
    PNDIS_BUFFER ds, dd, u;
    PNDIS_PACKET src, dst;
    UINT copied = 12345;
    NEW_PACKET(src, pp);
    NEW_PACKET(dst, pp);
    NEW_BUFFER(ds, pool, data, 100);
    NEW_BUFFER(dd, pool, sink, 100);
    PNDIS_PACKET gone = free_source ? src : dst, live = free_source ? dst : src;
    NdisChainBufferAtBack(live, free_source ? dd : ds);
    NdisFreePacket(gone);
    int line = __LINE__ + 1;
    NdisCopyFromPacketToPacket(dst, 0, 50, src, 0, &copied);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisCopyFromPacketToPacket", .object = gone,
               .pool = pp, .check_pool = true, .call_line = line);
    forget_reports();
    NdisUnchainBufferAtFront(live, &u);
    NdisFreePacket(live);
    NdisFreeBuffer(ds);
    NdisFreeBuffer(dd);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

static void uaf_copy_packet_to_packet_freed_source(void **state)
{
    (void)state;
    uaf_copy_packet_to_packet(true);
}

static void uaf_copy_packet_to_packet_freed_destination(void **state)
{
    (void)state;
    uaf_copy_packet_to_packet(false);
}

/* quarantine=1: the next free evicts the freed descriptor and finds the write. With
 * NamesEvictingCall the report must also name that free as its call (Function, CallFile/Line):
 * the call that found it, as the report structure defines Function. */
static void write_into_freed_descriptor(bool names_evicting_call)
{
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d1, d2;
    assert_int_equal(LibNdisVerifierConfigure("quarantine=1"), NDIS_STATUS_SUCCESS);
    int a = __LINE__ + 1;
    NEW_BUFFER(d1, pool, data, 100);
    NEW_BUFFER(d2, pool, data, 200);
    int freed = __LINE__ + 1;
    NdisFreeBuffer(d1);
    expect_none();
    d1->ByteCount = 0x1234; /* a driver still writing through a stale pointer */
    int line = __LINE__ + 1;
    NdisFreeBuffer(d2);
    if (names_evicting_call)
        expect_one(.rule = "USE_AFTER_FREE", .function = "NdisFreeBuffer", .object = d1,
                   .call_line = line);
    else
        expect_one(.rule = "USE_AFTER_FREE", .object = d1, .pool = pool, .check_pool = true,
                   .alloc_line = a, .freed_line = freed);
    forget_reports();
    NdisFreeBufferPool(pool);
}

static void write_into_freed_packet(bool names_evicting_call)
{
    NDIS_HANDLE pp = new_packet_pool(4);
    PNDIS_PACKET p1, p2;
    assert_int_equal(LibNdisVerifierConfigure("quarantine=1"), NDIS_STATUS_SUCCESS);
    int a = __LINE__ + 1;
    NEW_PACKET(p1, pp);
    NEW_PACKET(p2, pp);
    int freed = __LINE__ + 1;
    NdisFreePacket(p1);
    expect_none();
    p1->Private.TotalLength = 0x4321;
    int line = __LINE__ + 1;
    NdisFreePacket(p2);
    if (names_evicting_call)
        expect_one(.rule = "USE_AFTER_FREE", .function = "NdisFreePacket", .object = p1,
                   .call_line = line);
    else
        expect_one(.rule = "USE_AFTER_FREE", .object = p1, .pool = pp, .check_pool = true,
                   .alloc_line = a, .freed_line = freed);
    forget_reports();
    NdisFreePacketPool(pp);
}

static void uaf_write_into_freed_descriptor_found_at_eviction(void **state)
{
    (void)state;
    write_into_freed_descriptor(false);
}

static void uaf_write_into_freed_packet_found_at_eviction(void **state)
{
    (void)state;
    write_into_freed_packet(false);
}

static void uaf_write_found_at_eviction_names_the_evicting_free(void **state)
{
    (void)state;
    write_into_freed_descriptor(true);
    forget_reports();
    write_into_freed_packet(true);
}

/* The same calls on live objects, and freed objects nobody touches leaving quarantine=1. */
static void use_of_live_objects_no_report(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(4);
    PNDIS_BUFFER d1, d2, copy, u;
    PNDIS_PACKET src, dst;
    NDIS_STATUS st;
    UINT count, total, copied;
    assert_int_equal(LibNdisVerifierConfigure("quarantine=1"), NDIS_STATUS_SUCCESS);
    NEW_BUFFER(d1, pool, data, 100);
    NEW_BUFFER(d2, pool, sink, 100);
    NdisCopyBuffer(&st, &copy, pool, d1, 0, 10);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAdjustBufferLength(d1, 50);
    NdisAdjustBufferLength(d1, 100);
    NEW_PACKET(src, pp);
    NEW_PACKET(dst, pp);
    NdisChainBufferAtBack(src, d1);
    NdisChainBufferAtFront(dst, d2);
    NdisQueryPacket(src, NULL, &count, NULL, &total);
    assert_int_equal(count, 1);
    assert_int_equal(total, 100);
    NdisCopyFromPacketToPacket(dst, 0, 50, src, 0, &copied);
    assert_int_equal(copied, 50);
    NdisUnchainBufferAtFront(src, &u);
    NdisUnchainBufferAtBack(dst, &u);
    NdisFreePacket(src);
    NdisFreePacket(dst);
    NdisFreeBuffer(copy);
    NdisFreeBuffer(d1);
    NdisFreeBuffer(d2);
    for (int i = 0; i < 8; i++) { /* evicts every one of them, untouched */
        PNDIS_BUFFER b;
        PNDIS_PACKET p;
        NEW_BUFFER(b, pool, data, 8);
        NdisFreeBuffer(b);
        NEW_PACKET(p, pp);
        NdisFreePacket(p);
    }
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

/* ========================== FREE_WHILE_CHAINED ========================== */

/* After the report (policy report here) the descriptor may or may not be freed; either way the
 * cleanup leaves nothing out, and a second free can only be the double free it then is. */
static void drop_after_free_while_chained(PNDIS_PACKET p, PNDIS_BUFFER d, NDIS_HANDLE pool,
                                          NDIS_HANDLE pp)
{
    forget_reports();
    NdisReinitializePacket(p);
    NdisFreePacket(p);
    NdisFreeBuffer(d);
    assert_int_equal(LibNdisVerifierReportCount(NULL), LibNdisVerifierReportCount("DOUBLE_FREE"));
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
}

static void free_while_chained_ndis_free_buffer(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d;
    PNDIS_PACKET p;
    NEW_PACKET(p, pp);
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 100);
    NdisChainBufferAtBack(p, d);
    int line = __LINE__ + 1;
    NdisFreeBuffer(d);
    expect_one(.rule = "FREE_WHILE_CHAINED", .function = "NdisFreeBuffer", .object = d,
               .pool = pool, .check_pool = true, .call_line = line, .alloc_line = a);
    drop_after_free_while_chained(p, d, pool, pp);
}

static void free_while_chained_io_free_mdl(void **state)
{
    (void)state;
    NDIS_HANDLE pp = new_packet_pool(2);
    PNDIS_PACKET p;
    NEW_PACKET(p, pp);
    int a = __LINE__ + 1;
    PMDL m = IoAllocateMdl(data, 64, FALSE, FALSE, NULL);
    assert_non_null(m);
    NdisChainBufferAtFront(p, m);
    int line = __LINE__ + 1;
    IoFreeMdl(m);
    expect_one(.rule = "FREE_WHILE_CHAINED", .function = "IoFreeMdl", .object = m,
               .call_line = line, .alloc_line = a);
    drop_after_free_while_chained(p, m, NULL, pp);
}

/* The middle descriptor of a three-element chain. */
static void free_while_chained_middle_of_chain(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d1, d2, d3;
    PNDIS_PACKET p;
    NEW_PACKET(p, pp);
    NEW_BUFFER(d1, pool, data, 10);
    NEW_BUFFER(d2, pool, data + 10, 10);
    NEW_BUFFER(d3, pool, data + 20, 10);
    NdisChainBufferAtBack(p, d1);
    NdisChainBufferAtBack(p, d2);
    NdisChainBufferAtBack(p, d3);
    int line = __LINE__ + 1;
    NdisFreeBuffer(d2);
    expect_one(.rule = "FREE_WHILE_CHAINED", .function = "NdisFreeBuffer", .object = d2,
               .pool = pool, .check_pool = true, .call_line = line);
    forget_reports();
    NdisReinitializePacket(p);
    NdisFreePacket(p);
    NdisFreeBuffer(d1);
    NdisFreeBuffer(d3);
    NdisFreeBuffer(d2);
    assert_int_equal(LibNdisVerifierReportCount(NULL), LibNdisVerifierReportCount("DOUBLE_FREE"));
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
}

static void unchained_then_freed_no_report(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d1, d2, u1, u2;
    PNDIS_PACKET p;
    NEW_PACKET(p, pp);
    NEW_BUFFER(d1, pool, data, 10);
    PMDL m = IoAllocateMdl(data, 64, FALSE, FALSE, NULL);
    assert_non_null(m);
    d2 = m;
    NdisChainBufferAtBack(p, d1);
    NdisChainBufferAtFront(p, d2);
    NdisUnchainBufferAtBack(p, &u1);
    NdisUnchainBufferAtFront(p, &u2);
    assert_ptr_equal(u1, d1);
    assert_ptr_equal(u2, d2);
    NdisFreeBuffer(d1);
    IoFreeMdl(m);
    /* Chained, unchained and chained again to another packet that is then emptied. */
    NEW_BUFFER(d1, pool, data, 10);
    NdisChainBufferAtBack(p, d1);
    NdisUnchainBufferAtFront(p, &u1);
    NdisFreeBuffer(d1);
    NdisFreePacket(p);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

/* ======================= PACKET_FREED_WITH_BUFFERS ======================= */

static void packet_freed_with_buffers(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d;
    PNDIS_PACKET p;
    int a = __LINE__ + 1;
    NEW_PACKET(p, pp);
    NEW_BUFFER(d, pool, data, 10);
    NdisChainBufferAtBack(p, d);
    int line = __LINE__ + 1;
    NdisFreePacket(p);
    expect_one(.rule = "PACKET_FREED_WITH_BUFFERS", .function = "NdisFreePacket", .object = p,
               .pool = pp, .check_pool = true, .call_line = line, .alloc_line = a);
    /* The packet is gone, so its former buffer is no longer in a live packet's chain. */
    forget_reports();
    NdisFreeBuffer(d);
    expect_none();
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

static void packet_freed_empty_no_report(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d, u;
    PNDIS_PACKET p, q;
    NEW_PACKET(p, pp);
    NEW_PACKET(q, pp);
    NEW_BUFFER(d, pool, data, 10);
    NdisChainBufferAtBack(p, d);
    NdisUnchainBufferAtBack(p, &u);
    NdisChainBufferAtBack(q, d);
    NdisReinitializePacket(q); /* Head = NULL: nothing chained any more */
    NdisFreePacket(p);
    NdisFreePacket(q);
    NdisFreeBuffer(d);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

/* ===================== ADJUSTED_LENGTH_NOT_RESTORED ===================== */

static void adjusted_length_not_restored_ndis_free_buffer(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d;
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 100);
    NdisAdjustBufferLength(d, 60);
    int line = __LINE__ + 1;
    NdisFreeBuffer(d);
    expect_one(.rule = "ADJUSTED_LENGTH_NOT_RESTORED", .function = "NdisFreeBuffer", .object = d,
               .pool = pool, .check_pool = true, .call_line = line, .alloc_line = a);
    /* Report and continue: the descriptor was freed, so another free is a double free. */
    forget_reports();
    NdisFreeBuffer(d);
    assert_int_equal(LibNdisVerifierReportCount("DOUBLE_FREE"), 1);
    assert_int_equal(LibNdisVerifierReportCount(NULL), 1);
    forget_reports();
    NdisFreeBufferPool(pool);
    expect_none();
}

static void adjusted_length_not_restored_io_free_mdl(void **state)
{
    (void)state;
    int a = __LINE__ + 1;
    PMDL m = IoAllocateMdl(data, 64, FALSE, FALSE, NULL);
    assert_non_null(m);
    NdisAdjustBufferLength(m, 0);
    int line = __LINE__ + 1;
    IoFreeMdl(m);
    expect_one(.rule = "ADJUSTED_LENGTH_NOT_RESTORED", .function = "IoFreeMdl", .object = m,
               .call_line = line, .alloc_line = a);
}

/* A descriptor from NdisCopyBuffer was made with its sub-range length. */
static void adjusted_length_not_restored_copy(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d, c;
    NDIS_STATUS st;
    NEW_BUFFER(d, pool, data, 100);
    int a = __LINE__ + 1;
    NdisCopyBuffer(&st, &c, pool, d, 10, 30);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAdjustBufferLength(c, 20);
    int line = __LINE__ + 1;
    NdisFreeBuffer(c);
    expect_one(.rule = "ADJUSTED_LENGTH_NOT_RESTORED", .function = "NdisFreeBuffer", .object = c,
               .pool = pool, .check_pool = true, .call_line = line, .alloc_line = a);
    forget_reports();
    NdisFreeBuffer(d);
    NdisFreeBufferPool(pool);
    expect_none();
}

static void adjusted_length_restored_no_report(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d, c;
    NDIS_STATUS st;
    NEW_BUFFER(d, pool, data, 100);
    NdisAdjustBufferLength(d, 60);
    NdisAdjustBufferLength(d, 0);
    NdisAdjustBufferLength(d, 100);
    NdisCopyBuffer(&st, &c, pool, d, 10, 30);
    assert_int_equal(st, NDIS_STATUS_SUCCESS);
    NdisAdjustBufferLength(c, 5);
    NdisAdjustBufferLength(c, 30);
    PMDL m = IoAllocateMdl(data, 64, FALSE, FALSE, NULL);
    assert_non_null(m);
    NdisAdjustBufferLength(m, 64); /* the same length: nothing to restore */
    IoFreeMdl(m);
    NdisFreeBuffer(c);
    NdisFreeBuffer(d);
    NdisFreeBufferPool(pool);
    expect_none();
}

/* ======================== ADJUST_BEYOND_ORIGINAL ======================== */

static void adjust_beyond_original(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d;
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 100);
    int line = __LINE__ + 1;
    NdisAdjustBufferLength(d, 101);
    expect_one(.rule = "ADJUST_BEYOND_ORIGINAL", .function = "NdisAdjustBufferLength",
               .object = d, .pool = pool, .check_pool = true, .call_line = line, .alloc_line = a);
    assert_int_equal(NdisBufferLength(d), 100); /* refused */
    assert_int_equal(MmGetMdlByteCount(d), 100);

    /* Shrunk first: growing back to the original is fine, past it is not, from any length. */
    forget_reports();
    NdisAdjustBufferLength(d, 40);
    NdisAdjustBufferLength(d, 100);
    NdisAdjustBufferLength(d, 40);
    expect_none();
    line = __LINE__ + 1;
    NdisAdjustBufferLength(d, 0xFFFFFFFFu);
    expect_one(.rule = "ADJUST_BEYOND_ORIGINAL", .function = "NdisAdjustBufferLength",
               .object = d, .pool = pool, .check_pool = true, .call_line = line, .alloc_line = a);
    assert_int_equal(NdisBufferLength(d), 40);

    forget_reports();
    NdisAdjustBufferLength(d, 100);
    NdisFreeBuffer(d);
    NdisFreeBufferPool(pool);
    expect_none();
}

static void adjust_within_original_no_report(void **state)
{
    (void)state;
    PNDIS_BUFFER d;
    NEW_BUFFER(d, NULL, data, 100);
    const UINT lengths[] = {100, 0, 1, 99, 50, 100};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        NdisAdjustBufferLength(d, lengths[i]);
        assert_int_equal(NdisBufferLength(d), lengths[i]);
    }
    NdisFreeBuffer(d);
    expect_none();
}

/* ========================= STALE_PACKET_COUNTS ========================= */

static void stale_packet_counts_reported_once_then_again(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d1, d2, u;
    PNDIS_PACKET p;
    UINT total = 0, count = 0, len = 0;
    NEW_PACKET(p, pp);
    NEW_BUFFER(d1, pool, data, 100);
    NEW_BUFFER(d2, pool, data + 100, 200);
    NdisChainBufferAtBack(p, d1);
    NdisChainBufferAtBack(p, d2);
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    assert_int_equal(total, 300);
    assert_true(p->Private.ValidCounts);
    expect_none();

    NdisAdjustBufferLength(d2, 50); /* the cache still says 300 */
    int line = __LINE__ + 1;
    NdisQueryPacketLength(p, &len);
    assert_int_equal(len, 300); /* the stale cache is returned as is */
    expect_one(.rule = "STALE_PACKET_COUNTS", .function = "NdisQueryPacketLength", .object = p,
               .pool = pp, .check_pool = true, .call_line = line);

    /* Once per staleness: the same stale cache read again is not a new event. */
    forget_reports();
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    NdisQueryPacketLength(p, &len);
    assert_int_equal(total, 300);
    expect_none();

    NdisRecalculatePacketCounts(p);
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    assert_int_equal(total, 150);
    assert_int_equal(count, 2);
    expect_none();

    NdisAdjustBufferLength(d1, 60); /* a new staleness */
    line = __LINE__ + 1;
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    assert_int_equal(total, 150);
    expect_one(.rule = "STALE_PACKET_COUNTS", .function = "NdisQueryPacket", .object = p,
               .pool = pp, .check_pool = true, .call_line = line);

    forget_reports();
    NdisAdjustBufferLength(d1, 100);
    NdisAdjustBufferLength(d2, 200);
    NdisUnchainBufferAtFront(p, &u);
    NdisUnchainBufferAtFront(p, &u);
    NdisFreePacket(p);
    NdisFreeBuffer(d1);
    NdisFreeBuffer(d2);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

/* A buffer linked in by hand through Next also makes the cache stale. */
static void stale_packet_counts_after_manual_link(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d1, d2;
    PNDIS_PACKET p;
    UINT count = 0, total = 0;
    NEW_PACKET(p, pp);
    NEW_BUFFER(d1, pool, data, 100);
    NEW_BUFFER(d2, pool, data + 100, 200);
    NdisChainBufferAtBack(p, d1);
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    NDIS_BUFFER_LINKAGE(d1) = d2;
    int line = __LINE__ + 1;
    NdisQueryPacket(p, NULL, &count, NULL, &total);
    assert_int_equal(count, 1);
    assert_int_equal(total, 100);
    expect_one(.rule = "STALE_PACKET_COUNTS", .function = "NdisQueryPacket", .object = p,
               .pool = pp, .check_pool = true, .call_line = line);
    forget_reports();
    NDIS_BUFFER_LINKAGE(d1) = NULL;
    NdisReinitializePacket(p);
    NdisFreePacket(p);
    NdisFreeBuffer(d1);
    NdisFreeBuffer(d2);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

static void fresh_packet_counts_no_report(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4), pp = new_packet_pool(2);
    PNDIS_BUFFER d1, d2, u;
    PNDIS_PACKET p;
    UINT phys = 0, count = 0, total = 0, len = 0;
    NEW_PACKET(p, pp);
    NdisQueryPacket(p, &phys, &count, NULL, &total); /* empty, counts valid and zero */
    assert_int_equal(total, 0);
    NEW_BUFFER(d1, pool, data, 100);
    NEW_BUFFER(d2, pool, data + 100, 200);
    NdisChainBufferAtBack(p, d1);
    NdisQueryPacketLength(p, &len);
    NdisChainBufferAtFront(p, d2);
    NdisQueryPacket(p, &phys, &count, NULL, &total);
    assert_int_equal(total, 300);
    NdisAdjustBufferLength(d2, 50);
    NdisRecalculatePacketCounts(p); /* the driver owns up to its change */
    NdisQueryPacketLength(p, &len);
    assert_int_equal(len, 150);
    NdisAdjustBufferLength(d2, 200);
    NdisUnchainBufferAtBack(p, &u);
    NdisQueryPacket(p, &phys, &count, NULL, &total);
    assert_int_equal(total, 200);
    NdisUnchainBufferAtBack(p, &u);
    NdisFreePacket(p);
    NdisFreeBuffer(d1);
    NdisFreeBuffer(d2);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

/* ================= verifier off changes nothing observable ================= */

#define MAX_OBS 400
struct obs {
    uint64_t v[MAX_OBS];
    int line[MAX_OBS]; /* where each value was taken, to name a mismatch */
    size_t n;
    uint64_t storage; /* pool storage: the quarantine may legitimately need more */
};

static void put_at(struct obs *o, uint64_t v, int line)
{
    assert_true(o->n < MAX_OBS);
    o->line[o->n] = line;
    o->v[o->n++] = v;
}
#define PUT(o, v) put_at((o), (uint64_t)(v), __LINE__)

static uint64_t rel(const void *p, const void *base)
{
    return (uint64_t)((const unsigned char *)p - (const unsigned char *)base);
}

static void put_mdl(struct obs *o, PMDL m, const void *base)
{
    PUT(o, m->ByteCount);
    PUT(o, m->ByteOffset);
    PUT(o, (USHORT)m->MdlFlags);
    PUT(o, (USHORT)m->Size);
    PUT(o, rel(m->MappedSystemVa, base));
    PUT(o, rel(m->StartVa, base));
    PUT(o, m->Process == NULL);
    PUT(o, MmGetMdlPfnArray(m)[0] - ((ULONG_PTR)base >> PAGE_SHIFT));
}

static void put_pool(struct obs *o, NDIS_HANDLE pool)
{
    LIBNDIS_POOL_INFO info;
    PUT(o, LibNdisQueryBufferPool(pool, &info));
    PUT(o, info.DeclaredDescriptors);
    PUT(o, info.InUse);
    PUT(o, info.Strict);
    PUT(o, info.Retired);
    o->storage += info.StorageDescriptors;
}

static void put_packet(struct obs *o, PNDIS_PACKET p, NDIS_HANDLE pp, UINT prl)
{
    const unsigned char *bytes = (const unsigned char *)p;
    size_t nonzero = 0;
    if (p == NULL) { /* keeps later values aligned with the other run's */
        for (int i = 0; i < 7; i++)
            PUT(o, UINT64_MAX);
        return;
    }
    for (size_t i = 0; i < NdisPacketSize(prl); i++) {
        bool in_pool_field = i >= offsetof(NDIS_PACKET_PRIVATE, Pool) &&
                             i < offsetof(NDIS_PACKET_PRIVATE, Pool) + sizeof(PVOID);
        if (!in_pool_field && bytes[i] != 0)
            nonzero++;
    }
    PUT(o, nonzero);
    PUT(o, p->Private.Pool == pp);
    PUT(o, p->Private.ValidCounts);
    PUT(o, p->Private.NdisPacketFlags);
    PUT(o, p->Private.Flags);
    PUT(o, p->Private.NdisPacketOobOffset);
    PUT(o, p->Private.Head == NULL);
}

static void put_tag(struct obs *o, ULONG tag)
{
    LIBNDIS_TAG_USAGE u;
    PUT(o, LibNdisQueryMemoryTag(tag, &u));
    PUT(o, u.OutstandingAllocations);
    PUT(o, u.OutstandingBytes);
    PUT(o, u.TotalAllocations);
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}

static void free_chain(PNDIS_BUFFER b)
{
    while (b != NULL) {
        PNDIS_BUFFER next = b->Next;
        NdisFreeBuffer(b);
        b = next;
    }
}

static void workload_buffers(struct obs *o, NDIS_HANDLE pool, PNDIS_BUFFER d[4])
{
    NDIS_STATUS st;
    PNDIS_BUFFER c, bad = (PNDIS_BUFFER)(ULONG_PTR)0xBADBADC0u;
    const unsigned char *base = data;

    NdisAllocateBuffer(&st, &d[0], pool, data + 100, 1000);
    PUT(o, st);
    NdisAllocateBuffer(&st, &d[1], pool, data + 5000, 3000);
    PUT(o, st);
    NdisAllocateBuffer(&st, &d[2], pool, data + 2 * TEST_PAGE, 0);
    PUT(o, st);
    NdisAllocateBuffer(&st, &d[3], pool, sink, 2000);
    PUT(o, st);
    for (int i = 0; i < 4; i++)
        put_mdl(o, d[i], i == 3 ? (const void *)sink : (const void *)base);
    NdisAllocateBuffer(&st, &bad, pool, NULL, 10);
    PUT(o, st);
    PUT(o, bad == NULL);
    put_pool(o, pool);

    NDIS_BUFFER_LINKAGE(d[0]) = d[1];
    NdisCopyBuffer(&st, &c, pool, d[0], 500, 1500);
    PUT(o, st);
    for (PNDIS_BUFFER b = c; b != NULL; b = b->Next)
        put_mdl(o, b, base);
    put_pool(o, pool);
    free_chain(c);
    NdisCopyBuffer(&st, &c, pool, d[0], 1000, 0); /* inner boundary: start of d[1] */
    PUT(o, st);
    put_mdl(o, c, base);
    free_chain(c);
    bad = (PNDIS_BUFFER)(ULONG_PTR)0xBADBADC0u;
    NdisCopyBuffer(&st, &bad, pool, d[0], 3999, 2);
    PUT(o, st);
    PUT(o, bad == NULL);
    NDIS_BUFFER_LINKAGE(d[0]) = NULL;
    put_pool(o, pool);

    NdisAdjustBufferLength(d[0], 10);
    PUT(o, NdisBufferLength(d[0]));
    NdisAdjustBufferLength(d[0], 1000);
    PUT(o, NdisBufferLength(d[0]));

    PMDL m = IoAllocateMdl(data + 3, 200, FALSE, FALSE, NULL);
    PUT(o, m != NULL);
    put_mdl(o, m, base);
    IoFreeMdl(m);
    PUT(o, IoAllocateMdl(data, 10, FALSE, FALSE, (PIRP)(ULONG_PTR)0x1000) == NULL);
}

static void workload_packets(struct obs *o, PNDIS_BUFFER d[4])
{
    NDIS_STATUS st;
    NDIS_HANDLE pp;
    PNDIS_PACKET p1, p2, p3 = (PNDIS_PACKET)(ULONG_PTR)0xBADBADB0u;
    PNDIS_BUFFER first, u;
    UINT phys, count, total, len, copied;

    NdisAllocatePacketPool(&st, &pp, 2, 16);
    PUT(o, st);
    PUT(o, NdisPacketSize(16));
    NdisAllocatePacket(&st, &p1, pp);
    PUT(o, st);
    NdisAllocatePacket(&st, &p2, pp);
    PUT(o, st);
    NdisAllocatePacket(&st, &p3, pp);
    PUT(o, st);
    PUT(o, p3 == NULL);
    PUT(o, NdisPacketPoolUsage(pp));
    put_packet(o, p1, pp, 16);

    NdisChainBufferAtBack(p1, d[0]);
    NdisChainBufferAtBack(p1, d[1]);
    NdisChainBufferAtFront(p1, d[2]);
    NdisQueryPacket(p1, &phys, &count, &first, &total);
    PUT(o, phys);
    PUT(o, count);
    PUT(o, first == d[2]);
    PUT(o, total);
    PUT(o, p1->Private.ValidCounts);
    PUT(o, p1->Private.Tail == d[1]);
    NdisQueryPacketLength(p1, &len);
    PUT(o, len);
    PVOID va;
    UINT flen, tlen;
    NdisGetFirstBufferFromPacket(p1, &first, &va, &flen, &tlen);
    PUT(o, first == d[2]);
    PUT(o, flen);
    PUT(o, tlen);

    memset(sink, 0, 2000);
    NdisChainBufferAtBack(p2, d[3]);
    NdisCopyFromPacketToPacket(p2, 10, 1500, p1, 700, &copied);
    PUT(o, copied);
    PUT(o, checksum(sink, 2000));
    copied = 777;
    NdisCopyFromPacketToPacket(p2, 0, 10, p1, 4000, &copied);
    PUT(o, copied);
    PUT(o, p2->Private.ValidCounts);

    NdisUnchainBufferAtBack(p1, &u);
    PUT(o, u == d[1]);
    NdisUnchainBufferAtFront(p1, &u);
    PUT(o, u == d[2]);
    NdisUnchainBufferAtFront(p1, &u);
    PUT(o, u == d[0]);
    PUT(o, u->Next == NULL);
    NdisUnchainBufferAtFront(p1, &u);
    PUT(o, u == NULL);
    NdisUnchainBufferAtBack(p2, &u);
    PUT(o, u == d[3]);

    NdisSetPacketFlags(p1, NDIS_FLAGS_DONT_LOOPBACK);
    p1->ProtocolReserved[0] = 0xAB;
    NDIS_SET_PACKET_STATUS(p1, NDIS_STATUS_RESOURCES);
    NdisFreePacket(p1);
    NdisFreePacket(p2);
    PUT(o, NdisPacketPoolUsage(pp));
    NdisAllocatePacket(&st, &p1, pp); /* the pool of 2 serves a third allocation once both are back */
    PUT(o, st);
    PUT(o, p1 != NULL);
    put_packet(o, p1, pp, 16);
    NdisFreePacket(p1);
    PUT(o, NdisPacketPoolUsage(pp));
    NdisFreePacketPool(pp);
}

static void workload_memory(struct obs *o, ULONG tag)
{
    NDIS_PHYSICAL_ADDRESS highest = NDIS_PHYSICAL_ADDRESS_CONST(-1, -1);
    LIBNDIS_TAG_USAGE def;
    PVOID m = NULL, m2 = NULL, m3 = NULL;
    (void)LibNdisQueryMemoryTag(LIBNDIS_DEFAULT_MEMORY_TAG, &def); /* zeroed if never used */
    ULONGLONG def_out = def.OutstandingAllocations;

    PUT(o, NdisAllocateMemoryWithTag(&m, 100, tag));
    PUT(o, (ULONG_PTR)m & 15);
    memset(m, 0x3C, 100);
    put_tag(o, tag);
    PUT(o, NdisAllocateMemory(&m2, 64, 0, highest));
    PUT(o, (ULONG_PTR)m2 & 15);
    LibNdisQueryMemoryTag(LIBNDIS_DEFAULT_MEMORY_TAG, &def);
    PUT(o, def.OutstandingAllocations - def_out);
    PUT(o, NdisAllocateMemoryWithTag(&m3, 0, tag));
    PUT(o, m3 != NULL && m3 != m);
    put_tag(o, tag);
    PUT(o, checksum(m, 100));
    NdisFreeMemory(m, 100, 0);
    NdisFreeMemory(m2, 64, 0);
    NdisFreeMemory(m3, 0, 0);
    NdisFreeMemory(NULL, 0, 0);
    put_tag(o, tag);
    LibNdisQueryMemoryTag(LIBNDIS_DEFAULT_MEMORY_TAG, &def);
    PUT(o, def.OutstandingAllocations - def_out);
}

static void workload(struct obs *o, ULONG tag)
{
    NDIS_STATUS st;
    NDIS_HANDLE pool;
    PNDIS_BUFFER d[4];
    NDIS_SPIN_LOCK lock;
    ULONG live = LibNdisLiveBufferPools();

    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 131u + (i >> 8) + 7u);
    NdisAllocateBufferPool(&st, &pool, 4);
    PUT(o, st);
    PUT(o, pool != NULL);
    workload_buffers(o, pool, d);
    workload_packets(o, d);
    workload_memory(o, tag);
    for (int i = 0; i < 4; i++)
        NdisFreeBuffer(d[i]);
    NdisFreeBuffer(NULL);
    put_pool(o, pool);
    NdisFreeBufferPool(pool);
    NdisFreeBufferPool(NULL);
    PUT(o, LibNdisLiveBufferPools() - live);

    NdisAllocateSpinLock(&lock);
    NdisAcquireSpinLock(&lock);
    PUT(o, KeGetCurrentIrql());
    PUT(o, lock.OldIrql);
    NdisReleaseSpinLock(&lock);
    NdisFreeSpinLock(&lock);
    PUT(o, KeGetCurrentIrql());
}

/* The quarantine is the verifier's own business: for its pool a freed object is back. A pool
 * sized exactly for a driver's needs keeps serving it under the verifier... */
static void quarantine_keeps_bounded_pools_serving(void **state)
{
    (void)state;
    NDIS_HANDLE pp = new_packet_pool(2), pool = new_buffer_pool(2);
    assert_int_equal(LibNdisSetBufferPoolStrict(pool, TRUE), NDIS_STATUS_SUCCESS);
    for (int round = 0; round < 5; round++) {
        PNDIS_PACKET p[2];
        PNDIS_BUFFER b[2];
        NDIS_STATUS st;
        for (int i = 0; i < 2; i++) {
            NdisAllocatePacket(&st, &p[i], pp);
            if (st != NDIS_STATUS_SUCCESS)
                fail_msg("round %d: packet %d of a pool of 2 gave status 0x%08x", round, i,
                         (unsigned)st);
            NdisAllocateBuffer(&st, &b[i], pool, data, 10);
            if (st != NDIS_STATUS_SUCCESS)
                fail_msg("round %d: descriptor %d of a strict pool of 2 gave status 0x%08x", round,
                         i, (unsigned)st);
        }
        for (int i = 0; i < 2; i++) {
            NdisFreePacket(p[i]);
            NdisFreeBuffer(b[i]);
        }
    }
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

/* ...and its usage reads zero once everything is freed, as with the verifier off. */
static void quarantine_not_counted_as_in_use(void **state)
{
    (void)state;
    NDIS_HANDLE pp = new_packet_pool(4), pool = new_buffer_pool(4);
    PNDIS_PACKET p;
    PNDIS_BUFFER b;
    NEW_PACKET(p, pp);
    NEW_BUFFER(b, pool, data, 10);
    assert_int_equal(NdisPacketPoolUsage(pp), 1);
    assert_int_equal(pool_in_use(pool), 1);
    NdisFreePacket(p);
    NdisFreeBuffer(b);
    assert_int_equal(NdisPacketPoolUsage(pp), 0);
    assert_int_equal(pool_in_use(pool), 0);
    NdisFreeBufferPool(pool);
    NdisFreePacketPool(pp);
    expect_none();
}

static void verifier_off_changes_nothing_observable(void **state)
{
    (void)state;
    static struct obs off, on;
    assert_int_equal(LibNdisVerifierConfigure("none"), NDIS_STATUS_SUCCESS);
    assert_false(LibNdisVerifierEnabled());
    workload(&off, LIBNDIS_TAG('V', 'o', 'f', 'f'));
    expect_none();

    assert_int_equal(LibNdisVerifierConfigure("all,abort=none"), NDIS_STATUS_SUCCESS);
    assert_true(LibNdisVerifierEnabled());
    forget_reports();
    workload(&on, LIBNDIS_TAG('V', 'o', 'n', '1'));
    expect_none();
    assert_int_equal(LibNdisVerifierCheckLeaks(), 0);
    expect_none();

    int mismatches = 0;
    for (size_t i = 0; i < off.n && i < on.n; i++) {
        if (off.v[i] != on.v[i] && mismatches++ < 20)
            print_error("value #%zu (taken at line %d): verifier off %llu, on %llu\n", i,
                        off.line[i], (unsigned long long)off.v[i], (unsigned long long)on.v[i]);
    }
    assert_int_equal(mismatches, 0);
    assert_int_equal(on.n, off.n);
    if (off.storage != on.storage)
        print_message("note: pool storage differs (off %llu, on %llu descriptors)\n",
                      (unsigned long long)off.storage, (unsigned long long)on.storage);
}

/* ============== the misuse program: stderr text and policies ============== */

#ifdef MISUSE_VERIFIER_PATH
struct child_run {
    int status;
    char out[4096];
    char err[65536];
};

static void read_all(FILE *f, char *buf, size_t cap)
{
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void run_misuse(const char *rule, bool ok, struct child_run *r)
{
    FILE *out = tmpfile(), *err = tmpfile();
    assert_non_null(out);
    assert_non_null(err);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fileno(out), STDOUT_FILENO);
        dup2(fileno(err), STDERR_FILENO);
        setenv(LIBNDIS_ENV_VERIFY, "1", 1);
        unsetenv(LIBNDIS_ENV_STRICT_POOLS);
        alarm(60); /* a hung child fails the test instead of hanging it */
        execl(MISUSE_VERIFIER_PATH, "misuse_verifier", rule, ok ? "ok" : (char *)NULL,
              (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &r->status, 0), pid);
    read_all(out, r->out, sizeof r->out);
    read_all(err, r->err, sizeof r->err);
}

static bool is_summary(const char *line)
{
    return strncmp(line, "libndis verifier: summary:", 26) == 0;
}

/* Reports in the text: lines that start a report ("libndis verifier: ..."), summary excluded. */
static int report_lines(const char *text)
{
    int n = 0;
    for (const char *l = text; *l != '\0';) {
        if (strncmp(l, "libndis verifier: ", 18) == 0 && !is_summary(l))
            n++;
        const char *nl = strchr(l, '\n');
        if (nl == NULL)
            break;
        l = nl + 1;
    }
    return n;
}
#endif

static void check_misuse(const char *rule, bool aborts)
{
#ifndef MISUSE_VERIFIER_PATH
    (void)rule;
    (void)aborts;
    skip();
#else
    static struct child_run r;
    char head[96];
    run_misuse(rule, false, &r);
    int line = atoi(r.out);
    assert_true(line > 0);
    snprintf(head, sizeof head, "libndis verifier: %s:", rule);
    if (strncmp(r.err, head, strlen(head)) != 0)
        fail_msg("stderr does not start with \"%s\":\n%s", head, r.err);
    if (!has_site(r.err, "misuse_verifier.c", line))
        fail_msg("report does not mention misuse_verifier.c:%d:\n%s", line, r.err);
    if (aborts) {
        if (!WIFSIGNALED(r.status) || WTERMSIG(r.status) != SIGABRT)
            fail_msg("%s: expected death by SIGABRT, status 0x%x:\n%s", rule, r.status, r.err);
        assert_int_equal(report_lines(r.err), 1);
    } else {
        if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
            fail_msg("%s: expected exit 0, status 0x%x:\n%s", rule, r.status, r.err);
        if (report_lines(r.err) != 1)
            fail_msg("%s: expected one report, got %d:\n%s", rule, report_lines(r.err), r.err);
        assert_non_null(strstr(r.err, "libndis verifier: summary:"));
    }

    run_misuse(rule, true, &r);
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
        fail_msg("%s ok: expected exit 0, status 0x%x:\n%s", rule, r.status, r.err);
    if (report_lines(r.err) != 0)
        fail_msg("%s ok: the correct variant reported:\n%s", rule, r.err);
#endif
}

#define MISUSE_TEST(rule, aborts)                  \
    static void misuse_program_##rule(void **state) \
    {                                              \
        (void)state;                               \
        check_misuse(#rule, aborts);               \
    }
MISUSE_TEST(LEAK, false)
MISUSE_TEST(POOL_FREED_IN_USE, false)
MISUSE_TEST(RETIRED_POOL_ALLOC, false)
MISUSE_TEST(RETIRED_POOL_FREE, false)
MISUSE_TEST(DOUBLE_FREE, true)
MISUSE_TEST(USE_AFTER_FREE, true)
MISUSE_TEST(FREE_WHILE_CHAINED, true)
MISUSE_TEST(PACKET_FREED_WITH_BUFFERS, false)
MISUSE_TEST(ADJUSTED_LENGTH_NOT_RESTORED, false)
MISUSE_TEST(ADJUST_BEYOND_ORIGINAL, true)
MISUSE_TEST(STALE_PACKET_COUNTS, false)

/* An unknown rule name is a usage error of the program, not a silent pass. */
static void misuse_program_rejects_unknown_rule(void **state)
{
    (void)state;
#ifndef MISUSE_VERIFIER_PATH
    skip();
#else
    static struct child_run r;
    run_misuse("NO_SUCH_RULE", false, &r);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 2);
#endif
}

/* ======================= quarantine and registry internals ======================= */

/* With the quarantine full at its configured size, each free lets the oldest object go: a
 * freed descriptor leaves exactly QUARANTINE frees later, wherever the ring then starts, and a
 * write into it is found by that free and not one sooner. */
static void quarantine_full_evicts_after_exactly_its_size(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d, b;
    assert_true(flush_quarantine()); /* full: from here on every free evicts one object */
    forget_reports();
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 100);
    int freed = __LINE__ + 1;
    NdisFreeBuffer(d);
    d->ByteCount = 0x4321; /* a driver still writing through a stale pointer */
    for (int i = 0; i < QUARANTINE - 1; i++) {
        NEW_BUFFER(b, pool, sink, 8);
        NdisFreeBuffer(b);
    }
    expect_none();
    NEW_BUFFER(b, pool, sink, 8);
    int line = __LINE__ + 1;
    NdisFreeBuffer(b);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisFreeBuffer", .object = d, .pool = pool,
               .check_pool = true, .call_line = line, .alloc_line = a, .freed_line = freed);
    forget_reports();
    NdisFreeBufferPool(pool);
    expect_none();
}

/* A descriptor too long for a pool slot has its own block: all of it, the MDL and every PFN
 * entry, is poisoned at its free and checked when it leaves the quarantine. */
static void long_descriptor_written_after_free_found_at_eviction(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER big, b;
    const UINT len = 12 * TEST_PAGE; /* described, never touched: data itself is shorter */
    const ULONG pages = ADDRESS_AND_SIZE_TO_SPAN_PAGES(data, len);
    assert_true(pages > 8);
    assert_int_equal(LibNdisVerifierConfigure("quarantine=1"), NDIS_STATUS_SUCCESS);

    /* Clean: it leaves the quarantine without a report. */
    NEW_BUFFER(big, pool, data, len);
    assert_int_equal(MmGetMdlPfnArray(big)[pages - 1],
                     ((ULONG_PTR)data >> PAGE_SHIFT) + pages - 1);
    NdisFreeBuffer(big);
    NEW_BUFFER(b, pool, sink, 8);
    NdisFreeBuffer(b);
    expect_none();

    /* Written after its free, in its last PFN entry (beyond any pool slot): found. */
    int a = __LINE__ + 1;
    NEW_BUFFER(big, pool, data, len);
    int freed = __LINE__ + 1;
    NdisFreeBuffer(big);
    MmGetMdlPfnArray(big)[pages - 1] = 0;
    expect_none();
    NEW_BUFFER(b, pool, sink, 8);
    int line = __LINE__ + 1;
    NdisFreeBuffer(b);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisFreeBuffer", .object = big, .pool = pool,
               .check_pool = true, .call_line = line, .alloc_line = a, .freed_line = freed);
    forget_reports();
    NdisFreeBufferPool(pool);
}

/* A freed descriptor is known by its address, not by its contents: one a driver has rebuilt
 * with MmInitializeMdl, so that it looks like any live MDL, is still refused as a source. */
static void uaf_copy_buffer_rebuilt_freed_source(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER d, out = NULL;
    NDIS_STATUS st = NDIS_STATUS_SUCCESS;
    unsigned char poison[sizeof(MDL)];
    int a = __LINE__ + 1;
    NEW_BUFFER(d, pool, data, 100);
    int freed = __LINE__ + 1;
    NdisFreeBuffer(d);
    memcpy(poison, d, sizeof(MDL));
    memset(d, 0, sizeof(MDL));
    MmInitializeMdl(d, data, 100);
    d->MdlFlags = MDL_SOURCE_IS_NONPAGED_POOL;
    d->MappedSystemVa = data;
    int line = __LINE__ + 1;
    NdisCopyBuffer(&st, &out, pool, d, 0, 10);
    expect_one(.rule = "USE_AFTER_FREE", .function = "NdisCopyBuffer", .object = d, .pool = pool,
               .check_pool = true, .call_line = line, .alloc_line = a, .freed_line = freed);
    assert_int_equal(st, NDIS_STATUS_FAILURE);
    assert_null(out);
    /* Put the poison back, so that the descriptor leaves the quarantine as it was freed. */
    memcpy(d, poison, sizeof(MDL));
    forget_reports();
    NdisFreeBufferPool(pool);
}

/* Switching the verifier off forgets every record, however often it is done: a descriptor made
 * before is untracked afterwards (no leak, its frees unchecked), one made after is tracked. */
static void verifier_switched_off_and_on_forgets_then_tracks(void **state)
{
    (void)state;
    NDIS_HANDLE pool = new_buffer_pool(4);
    PNDIS_BUFFER old, b;
    NEW_BUFFER(old, pool, data, 100);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(LibNdisVerifierConfigure("none"), NDIS_STATUS_SUCCESS);
        assert_false(LibNdisVerifierEnabled());
        assert_int_equal(LibNdisVerifierConfigure("all,abort=none,quarantine=256"),
                         NDIS_STATUS_SUCCESS);
        NEW_BUFFER(b, pool, sink, 8); /* one object tracked, freed and held in each session */
        NdisFreeBuffer(b);
    }
    expect_none();
    assert_int_equal(LibNdisVerifierCheckLeaks(), 0); /* `old` was forgotten */
    NdisFreeBuffer(old);
    NdisFreeBuffer(old); /* untracked: the pool ignores the second free, nothing reports it */
    expect_none();
    int a = __LINE__ + 1;
    NEW_BUFFER(b, pool, sink, 16);
    NdisFreeBuffer(b);
    int line = __LINE__ + 1;
    NdisFreeBuffer(b);
    expect_one(.rule = "DOUBLE_FREE", .function = "NdisFreeBuffer", .object = b, .pool = pool,
               .check_pool = true, .call_line = line, .alloc_line = a);
    forget_reports();
    NdisFreeBufferPool(pool);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, verifier_on, quarantine_clean)

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: the leak checks see every tracked object, so nothing else may be out yet */
        T(leak_reports_each_object_with_its_site),
        T(leak_none_when_everything_freed),
        T(pool_freed_in_use_buffer_pool),
        T(pool_freed_in_use_packet_pool),
        T(pool_freed_in_use_objects_not_reported_as_leaks),
        T(pool_freed_empty_no_report),
        T(retired_pool_alloc_buffer),
        T(retired_pool_alloc_packet),
        T(live_pool_alloc_no_report),
        T(retired_pool_free_buffer),
        T(retired_pool_free_packet),
        T(retired_pool_free_io_free_mdl),
        T(free_to_live_pool_no_report),
        T(double_free_ndis_free_buffer),
        T(double_free_io_free_mdl),
        T(double_free_ndis_then_io_free_mdl),
        T(double_free_packet),
        T(double_free_memory),
        T(single_free_no_report),
        T(uaf_copy_buffer_freed_source),
        T(uaf_copy_buffer_freed_second_in_chain),
        T(uaf_chain_buffer_at_back),
        T(uaf_chain_buffer_at_front),
        T(uaf_adjust_buffer_length),
        T(uaf_adjust_does_not_write_the_freed_descriptor),
        T(uaf_query_packet_freed_packet),
        T(uaf_query_packet_chain_holds_freed_descriptor),
        T(uaf_copy_packet_to_packet_freed_source),
        T(uaf_copy_packet_to_packet_freed_destination),
        T(uaf_write_into_freed_descriptor_found_at_eviction),
        T(uaf_write_into_freed_packet_found_at_eviction),
        T(uaf_write_found_at_eviction_names_the_evicting_free),
        T(use_of_live_objects_no_report),
        T(free_while_chained_ndis_free_buffer),
        T(free_while_chained_io_free_mdl),
        T(free_while_chained_middle_of_chain),
        T(unchained_then_freed_no_report),
        T(packet_freed_with_buffers),
        T(packet_freed_empty_no_report),
        T(adjusted_length_not_restored_ndis_free_buffer),
        T(adjusted_length_not_restored_io_free_mdl),
        T(adjusted_length_not_restored_copy),
        T(adjusted_length_restored_no_report),
        T(adjust_beyond_original),
        T(adjust_within_original_no_report),
        T(stale_packet_counts_reported_once_then_again),
        T(stale_packet_counts_after_manual_link),
        T(fresh_packet_counts_no_report),
        T(quarantine_keeps_bounded_pools_serving),
        T(quarantine_not_counted_as_in_use),
        T(verifier_off_changes_nothing_observable),
        T(misuse_program_LEAK),
        T(misuse_program_POOL_FREED_IN_USE),
        T(misuse_program_RETIRED_POOL_ALLOC),
        T(misuse_program_RETIRED_POOL_FREE),
        T(misuse_program_DOUBLE_FREE),
        T(misuse_program_USE_AFTER_FREE),
        T(misuse_program_FREE_WHILE_CHAINED),
        T(misuse_program_PACKET_FREED_WITH_BUFFERS),
        T(misuse_program_ADJUSTED_LENGTH_NOT_RESTORED),
        T(misuse_program_ADJUST_BEYOND_ORIGINAL),
        T(misuse_program_STALE_PACKET_COUNTS),
        T(misuse_program_rejects_unknown_rule),
        T(quarantine_full_evicts_after_exactly_its_size),
        T(long_descriptor_written_after_free_found_at_eviction),
        T(uaf_copy_buffer_rebuilt_freed_source),
        T(verifier_switched_off_and_on_forgets_then_tracks),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
