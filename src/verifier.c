/* SPDX-License-Identifier: MIT */
/* verifier.c - the checked mode (docs/verifier.md): the checked versions of the NDIS calls, a
 * registry of every object made while it is on, a quarantine of freed objects, per-thread spin
 * lock stacks, fault injection, and reports by rule to stderr or a callback. Speed is not the
 * point here: one global lock keeps every record consistent, and reports are delivered after it
 * is dropped so that a callback may call back into the library. */
#include <execinfo.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irql.h"
#include "libndis.h"
#include "mdl.h"
#include "verifier.h"

LIBNDIS_API unsigned char __libndis_verifying;
unsigned char verifier_on;

/* ---- rules ---- */

enum policy { POLICY_OFF, POLICY_REPORT, POLICY_ABORT };

enum rule {
    R_LEAK,
    R_POOL_FREED_IN_USE,
    R_RETIRED_POOL_ALLOC,
    R_RETIRED_POOL_FREE,
    R_DOUBLE_FREE,
    R_USE_AFTER_FREE,
    R_FREE_WHILE_CHAINED,
    R_PACKET_FREED_WITH_BUFFERS,
    R_ADJUSTED_LENGTH_NOT_RESTORED,
    R_ADJUST_BEYOND_ORIGINAL,
    R_IRQL_TOO_HIGH,
    R_DPR_NOT_AT_DISPATCH,
    R_SPINLOCK_RELEASE_ORDER,
    R_SPINLOCK_WRONG_KIND,
    R_SPINLOCK_HELD_ACROSS_CALL,
    R_SPINLOCK_HELD_AT_THREAD_EXIT,
    R_FREE_MEMORY_MISMATCH,
    R_MEMORY_OVERRUN,
    R_STALE_PACKET_COUNTS,
    R_COUNT
};

/* Memory-safety violations abort by default: going on would corrupt the process. */
static const struct {
    const char *name;
    enum policy fallback;
} rules[R_COUNT] = {
    [R_LEAK] = {"LEAK", POLICY_REPORT},
    [R_POOL_FREED_IN_USE] = {"POOL_FREED_IN_USE", POLICY_REPORT},
    [R_RETIRED_POOL_ALLOC] = {"RETIRED_POOL_ALLOC", POLICY_REPORT},
    [R_RETIRED_POOL_FREE] = {"RETIRED_POOL_FREE", POLICY_REPORT},
    [R_DOUBLE_FREE] = {"DOUBLE_FREE", POLICY_ABORT},
    [R_USE_AFTER_FREE] = {"USE_AFTER_FREE", POLICY_ABORT},
    [R_FREE_WHILE_CHAINED] = {"FREE_WHILE_CHAINED", POLICY_ABORT},
    [R_PACKET_FREED_WITH_BUFFERS] = {"PACKET_FREED_WITH_BUFFERS", POLICY_REPORT},
    [R_ADJUSTED_LENGTH_NOT_RESTORED] = {"ADJUSTED_LENGTH_NOT_RESTORED", POLICY_REPORT},
    [R_ADJUST_BEYOND_ORIGINAL] = {"ADJUST_BEYOND_ORIGINAL", POLICY_ABORT},
    [R_IRQL_TOO_HIGH] = {"IRQL_TOO_HIGH", POLICY_REPORT},
    [R_DPR_NOT_AT_DISPATCH] = {"DPR_NOT_AT_DISPATCH", POLICY_REPORT},
    [R_SPINLOCK_RELEASE_ORDER] = {"SPINLOCK_RELEASE_ORDER", POLICY_REPORT},
    [R_SPINLOCK_WRONG_KIND] = {"SPINLOCK_WRONG_KIND", POLICY_REPORT},
    [R_SPINLOCK_HELD_ACROSS_CALL] = {"SPINLOCK_HELD_ACROSS_CALL", POLICY_REPORT},
    [R_SPINLOCK_HELD_AT_THREAD_EXIT] = {"SPINLOCK_HELD_AT_THREAD_EXIT", POLICY_REPORT},
    [R_FREE_MEMORY_MISMATCH] = {"FREE_MEMORY_MISMATCH", POLICY_REPORT},
    [R_MEMORY_OVERRUN] = {"MEMORY_OVERRUN", POLICY_ABORT},
    [R_STALE_PACKET_COUNTS] = {"STALE_PACKET_COUNTS", POLICY_REPORT},
};

enum {
    FAULT_BUFFER = 1,
    FAULT_PACKET = 2,
    FAULT_MEMORY = 4,
    FAULT_MAP = 8,
    FAULT_ALL = 15,
    QUARANTINE_DEFAULT = 256,
    GUARD_BYTES = 16,
    LOCK_STACK = 16,
    POISON_FREED = 0xFD,
    FILL_NEW_MEMORY = 0xA5,
    FILL_GUARD = 0xCB,
    /* Header states of objects held in quarantine: not LIVE, so every unchecked path ignores
     * them, and not FREE, so nothing hands them out. */
    MDL_STATE_QUARANTINED = 0x714C444D,    /* "MDLq" */
    PACKET_STATE_QUARANTINED = 0x71544B50, /* "PKTq" */
};

struct config {
    uint8_t policy[R_COUNT];
    unsigned fault_kinds;
    double fault_rate;
    long long fault_after; /* < 0: not set */
    uint64_t fault_seed;
    bool fault_tag_set;
    ULONG fault_tag;
    unsigned quarantine;
    bool backtraces;
    bool fault_reset; /* the spec named a fault_* item: restart the fault sequence */
};

static pthread_mutex_t vlock = PTHREAD_MUTEX_INITIALIZER;
static struct config cfg = {.quarantine = QUARANTINE_DEFAULT, .backtraces = true, .fault_seed = 1,
                            .fault_after = -1};

/* Counters are read without the lock by LibNdisVerifier*Count. */
static _Atomic unsigned report_counts[R_COUNT];
static _Atomic unsigned faults_injected;
static LIBNDIS_VERIFIER_CALLBACK report_callback;
static PVOID report_context;
static struct pool *fault_pool;
static uint64_t fault_rng;
static unsigned long long fault_candidates;

/* ---- call sites (captured by the <ndis.h> macros) ---- */

struct site {
    const char *file;
    int line;
};

static __thread struct site call_site;

LIBNDIS_API void __libndis_set_site(const char *file, int line)
{
    call_site.file = file;
    call_site.line = line;
}

/* Each checked call takes its site once: a later call made without the macros (through a
 * function pointer) must not inherit it. */
static struct site site_take(void)
{
    struct site s = call_site;
    call_site.file = NULL;
    call_site.line = 0;
    return s;
}

/* ---- reports ---- */

struct report {
    struct report *next;
    enum rule rule;
    LIBNDIS_VERIFIER_REPORT pub;
    size_t len;
    char text[2048];
};

/* Reports made under the lock wait here and are delivered once it is dropped. */
static __thread struct report *pending_head, **pending_tail;

static bool rule_on(enum rule r) { return cfg.policy[r] != POLICY_OFF; }

static void report_append(struct report *r, const char *fmt, ...)
{
    if (r->len >= sizeof(r->text) - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        r->len += (size_t)n < sizeof(r->text) - r->len ? (size_t)n : sizeof(r->text) - r->len - 1;
}

/* Starts a report of rule `rule` (NULL when the rule is off or memory is short). */
static struct report *report_new(enum rule rule, const char *function, const void *object,
                                 const void *pool, struct site call, const char *fmt, ...)
{
    if (!rule_on(rule))
        return NULL;
    struct report *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->rule = rule;
    r->pub.Rule = rules[rule].name;
    r->pub.Function = function;
    r->pub.Object = (PVOID)object;
    r->pub.Pool = (NDIS_HANDLE)pool;
    r->pub.CallFile = call.file;
    r->pub.CallLine = call.line;
    r->pub.Aborting = cfg.policy[rule] == POLICY_ABORT;
    report_append(r, "libndis verifier: %s: ", rules[rule].name);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        r->len = strlen(r->text);
    report_append(r, "\n");
    if (object != NULL)
        report_append(r, "  object: %p\n", object);
    if (pool != NULL)
        report_append(r, "  pool: %p\n", pool);
    return r;
}

static void report_alloc_site(struct report *r, struct site alloc, const char *what)
{
    if (r == NULL)
        return;
    r->pub.AllocFile = alloc.file;
    r->pub.AllocLine = alloc.line;
    if (alloc.file != NULL)
        report_append(r, "  %s at: %s:%d\n", what, alloc.file, alloc.line);
    else
        report_append(r, "  %s at: (no call site: made without the <ndis.h> macros)\n", what);
}

static void report_queue(struct report *r)
{
    if (r == NULL)
        return;
    if (r->pub.CallFile != NULL)
        report_append(r, "  call: %s at %s:%d\n", r->pub.Function, r->pub.CallFile,
                      r->pub.CallLine);
    else
        report_append(r, "  call: %s\n", r->pub.Function);
    r->pub.Text = r->text;
    if (pending_head == NULL)
        pending_tail = &pending_head;
    *pending_tail = r;
    pending_tail = &r->next;
}

/* Delivers what the calling thread queued; never called with the lock held. */
static void reports_flush(void)
{
    while (pending_head != NULL) {
        struct report *r = pending_head;
        pending_head = r->next;
        atomic_fetch_add_explicit(&report_counts[r->rule], 1, memory_order_relaxed);
        LIBNDIS_VERIFIER_CALLBACK cb = report_callback;
        if (cb != NULL) {
            cb(&r->pub, report_context);
        } else {
            fputs(r->text, stderr);
            if (cfg.backtraces) {
                void *frames[32];
                int n = backtrace(frames, 32);
                fputs("  backtrace:\n", stderr);
                backtrace_symbols_fd(frames, n, 2);
            }
            fflush(stderr);
        }
        bool fatal = r->pub.Aborting;
        free(r);
        if (fatal)
            abort();
    }
}

/* ---- registry of tracked objects ---- */

enum kind { K_BUFFER, K_PACKET, K_MEMORY };
enum rstate { S_LIVE, S_QUARANTINED };

struct rec {
    const void *obj;
    uint8_t kind;
    uint8_t state;
    bool reported; /* already named by a LEAK or POOL_FREED_IN_USE report */
    uint32_t live_state;
    struct pool *pool;
    struct site alloc, freed;
    ULONG orig_len;          /* descriptors: the length they were made with */
    PNDIS_PACKET chained_in; /* descriptors: the packet they were chained into */
    UINT stale[3];           /* packets: the stale counts last reported */
    ULONG tag, length, flags; /* memory */
};

#define TOMB ((struct rec *)1)
static struct rec **table;
static size_t table_cap, table_used;
static struct rec *rec_spare; /* freed records, linked through their first word, for reuse */

static void rec_free(struct rec *r)
{
    *(struct rec **)r = rec_spare;
    rec_spare = r;
}

static size_t slot_of(const void *obj)
{
    uint64_t h = (uint64_t)(uintptr_t)obj * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (table_cap - 1);
}

static struct rec *rec_find(const void *obj)
{
    if (table_cap == 0 || obj == NULL)
        return NULL;
    for (size_t i = slot_of(obj);; i = (i + 1) & (table_cap - 1)) {
        struct rec *r = table[i];
        if (r == NULL)
            return NULL;
        if (r != TOMB && r->obj == obj)
            return r;
    }
}

static void rec_remove(struct rec *rec)
{
    for (size_t i = slot_of(rec->obj);; i = (i + 1) & (table_cap - 1)) {
        if (table[i] == rec) {
            table[i] = TOMB;
            return;
        }
        if (table[i] == NULL)
            return;
    }
}

static bool table_grow(void)
{
    size_t cap = table_cap ? table_cap * 2 : 1024;
    struct rec **t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return false;
    struct rec **old = table;
    size_t old_cap = table_cap;
    table = t;
    table_cap = cap;
    table_used = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i] == NULL || old[i] == TOMB)
            continue;
        size_t j = slot_of(old[i]->obj);
        while (table[j] != NULL)
            j = (j + 1) & (table_cap - 1);
        table[j] = old[i];
        table_used++;
    }
    free(old);
    return true;
}

/* A new object at an address the table still knows (tracked, then freed while the verifier was
 * briefly off) replaces the stale record. */
static struct rec *rec_add(const void *obj, enum kind kind, struct pool *pool, struct site alloc)
{
    struct rec *stale = rec_find(obj);
    if (stale != NULL) {
        rec_remove(stale);
        rec_free(stale);
    }
    if ((table_used + 1) * 2 > table_cap && !table_grow())
        return NULL;
    struct rec *r = rec_spare;
    if (r != NULL) {
        rec_spare = *(struct rec **)r;
        memset(r, 0, sizeof(*r));
    } else if ((r = calloc(1, sizeof(*r))) == NULL) {
        return NULL;
    }
    r->obj = obj;
    r->kind = (uint8_t)kind;
    r->pool = pool;
    r->alloc = alloc;
    size_t i = slot_of(obj);
    while (table[i] != NULL && table[i] != TOMB)
        i = (i + 1) & (table_cap - 1);
    if (table[i] == NULL)
        table_used++;
    table[i] = r;
    return r;
}

/* Lock held. The two sites every report about a freed object gives, then the report queued. */
static void report_sites_queue(struct report *rep, const struct rec *r)
{
    report_alloc_site(rep, r->alloc, "allocated");
    if (rep != NULL && r->freed.file != NULL)
        report_append(rep, "  freed at: %s:%d\n", r->freed.file, r->freed.line);
    report_queue(rep);
}

static const char *kind_name(uint8_t kind)
{
    return kind == K_BUFFER ? "descriptor" : kind == K_PACKET ? "packet" : "memory block";
}

/* ---- quarantine ---- */

/* Pools the quarantine has held objects of (a handful of recent ones): a failed allocation of
 * any other pool cannot be the quarantine's doing. */
enum { RECENT_POOLS = 8 };
static const struct pool *recent_pools[RECENT_POOLS];
static unsigned recent_next;

static void note_quarantined_pool(const struct pool *pool)
{
    for (unsigned i = 0; i < RECENT_POOLS; i++)
        if (recent_pools[i] == pool)
            return;
    recent_pools[recent_next++ % RECENT_POOLS] = pool;
}

static bool pool_has_quarantined_before(const struct pool *pool)
{
    pthread_mutex_lock(&vlock);
    bool seen = false;
    for (unsigned i = 0; i < RECENT_POOLS; i++)
        seen |= recent_pools[i] == pool;
    pthread_mutex_unlock(&vlock);
    return seen;
}


static struct rec **quarantine;
static size_t q_cap, q_head, q_len;

static bool poison_intact(const void *p, size_t n, unsigned char pattern)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern)
            return false;
    return true;
}

/* Gives a quarantined object back for good, reporting a write into it since its free; the
 * report names the call that made room in the quarantine. */
static void quarantine_release(struct rec *r, const char *function, struct site s)
{
    void *obj = (void *)r->obj;
    /* `length` is the bytes poisoned at free: descriptor storage, packet or memory block */
    if (!poison_intact(obj, r->length, POISON_FREED)) {
        report_sites_queue(report_new(R_USE_AFTER_FREE, function, obj, r->pool, s,
                                      "%s written after it was freed (found when it left the "
                                      "quarantine)",
                                      kind_name(r->kind)),
                           r);
    }
    if (r->kind == K_BUFFER)
        mdl_release_quarantined((PMDL)obj, r->live_state);
    else if (r->kind == K_PACKET)
        packet_release_quarantined((PNDIS_PACKET)obj);
    else
        mem_free_raw(obj);
    rec_remove(r);
    rec_free(r);
}

static void quarantine_push(struct rec *r, const char *function, struct site s)
{
    if (cfg.quarantine == 0) {
        quarantine_release(r, function, s);
        return;
    }
    if (q_cap < cfg.quarantine) {
        struct rec **q = calloc(cfg.quarantine, sizeof(*q));
        if (q == NULL) {
            quarantine_release(r, function, s);
            return;
        }
        for (size_t i = 0; i < q_len; i++)
            q[i] = quarantine[(q_head + i) % q_cap];
        free(quarantine);
        quarantine = q;
        q_cap = cfg.quarantine;
        q_head = 0;
    }
    while (q_len >= cfg.quarantine) {
        quarantine_release(quarantine[q_head], function, s);
        q_head = (q_head + 1) % q_cap;
        q_len--;
    }
    quarantine[(q_head + q_len) % q_cap] = r;
    q_len++;
    if (r->pool != NULL)
        note_quarantined_pool(r->pool);
}

/* Releases what the quarantine holds of one pool (all of it for NULL). */
static void quarantine_drain(const struct pool *pool, const char *function, struct site s)
{
    size_t kept = 0;
    for (size_t i = 0; i < q_len; i++) {
        struct rec *r = quarantine[(q_head + i) % q_cap];
        if (pool == NULL || r->pool == pool)
            quarantine_release(r, function, s);
        else
            quarantine[(q_head + kept++) % q_cap] = r;
    }
    q_len = kept;
}

static unsigned quarantined_in_locked(const struct pool *pool)
{
    unsigned n = 0;
    for (size_t i = 0; i < q_len; i++)
        n += quarantine[(q_head + i) % q_cap]->pool == pool;
    return n;
}

/* For the pool, an object the verifier holds in quarantine is back: usage queries must not
 * tell a driver otherwise. */
unsigned verifier_quarantined(struct pool *pool)
{
    pthread_mutex_lock(&vlock);
    unsigned n = quarantined_in_locked(pool);
    pthread_mutex_unlock(&vlock);
    return n;
}

/* A bounded pool that ran dry while the quarantine holds some of its objects gets them back, so
 * that correct code sized to its need behaves as without the verifier. True if any came back. */
static bool quarantine_give_back(struct pool *pool, const char *function, struct site s)
{
    if (pool == NULL)
        return false;
    pthread_mutex_lock(&vlock);
    bool any = quarantined_in_locked(pool) != 0;
    if (any)
        quarantine_drain(pool, function, s);
    pthread_mutex_unlock(&vlock);
    reports_flush();
    return any;
}

/* Whether a failed allocation from `pool` should be tried again. Under the verifier a small
 * bounded pool keeps most of its free objects in quarantine, and several threads draining it at
 * once hand each other what came back: so a failure is final only after the quarantine has
 * been emptied of the pool and a few rounds, yielding in between, still found nothing. Only a
 * pool the quarantine ever held objects of is retried; a plain failure returns at once. */
static bool retry_after_quarantine(struct pool *pool, int round, const char *function,
                                   struct site s)
{
    enum { ROUNDS = 16 };
    if (pool == NULL || round >= ROUNDS)
        return false;
    bool gave = quarantine_give_back(pool, function, s);
    if (!gave && round == 0 && !pool_has_quarantined_before(pool))
        return false;
    if (!gave)
        sched_yield();
    return true;
}

/* ---- fault injection (lock held) ---- */

static uint64_t rng_next(void)
{
    /* xorshift64*: reproducible from the seed, which is all that is asked of it */
    fault_rng ^= fault_rng >> 12;
    fault_rng ^= fault_rng << 25;
    fault_rng ^= fault_rng >> 27;
    return fault_rng * 2685821657736338717ull;
}

static bool fault_hit(unsigned kind, const struct pool *pool, bool has_tag, ULONG tag)
{
    if (!(cfg.fault_kinds & kind))
        return false;
    if (fault_pool != NULL && (kind == FAULT_BUFFER || kind == FAULT_PACKET) && pool != fault_pool)
        return false;
    if (cfg.fault_tag_set && kind == FAULT_MEMORY && (!has_tag || tag != cfg.fault_tag))
        return false;
    bool fail;
    fault_candidates++;
    if (cfg.fault_after >= 0)
        fail = fault_candidates > (unsigned long long)cfg.fault_after;
    else
        fail = cfg.fault_rate > 0 && (double)(rng_next() >> 11) / 9007199254740992.0 < cfg.fault_rate;
    if (fail)
        atomic_fetch_add_explicit(&faults_injected, 1, memory_order_relaxed);
    return fail;
}

static bool fault(unsigned kind, const struct pool *pool, bool has_tag, ULONG tag)
{
    if (cfg.fault_kinds == 0)
        return false;
    pthread_mutex_lock(&vlock);
    bool f = fault_hit(kind, pool, has_tag, tag);
    pthread_mutex_unlock(&vlock);
    return f;
}

/* ---- per-thread spin lock stacks ---- */

struct held {
    PKSPIN_LOCK lock;
    enum verifier_lock_kind kind;
    struct site site;
};

static __thread struct held held_locks[LOCK_STACK];
static __thread int held_depth;
static pthread_key_t exit_key;

static const char *lock_kind_name(enum verifier_lock_kind k)
{
    switch (k) {
    case VLOCK_NDIS: return "NdisAcquireSpinLock";
    case VLOCK_NDIS_DPR: return "NdisDprAcquireSpinLock";
    case VLOCK_KE: return "KeAcquireSpinLock";
    default: return "KeAcquireSpinLockAtDpcLevel";
    }
}

static void thread_exit_check(void *arg)
{
    (void)arg;
    for (int i = 0; i < held_depth; i++) {
        struct held *h = &held_locks[i];
        struct report *r = report_new(R_SPINLOCK_HELD_AT_THREAD_EXIT, "(thread exit)", h->lock,
                                      NULL, (struct site){0},
                                      "thread ended holding spin lock %p", (void *)h->lock);
        report_alloc_site(r, h->site, "acquired");
        report_queue(r);
    }
    held_depth = 0;
    reports_flush();
}

/* ---- the common checks ---- */

static void check_irql(const char *function, KIRQL max, struct site s, const void *object)
{
    KIRQL now = irql_current;
    if (now > max)
        report_queue(report_new(R_IRQL_TOO_HIGH, function, object, NULL, s,
                                "%s called at IRQL %u; it allows at most %u", function, now, max));
}

static void check_dispatch(const char *function, struct site s, const void *object)
{
    KIRQL now = irql_current;
    if (now != DISPATCH_LEVEL)
        report_queue(report_new(R_DPR_NOT_AT_DISPATCH, function, object, NULL, s,
                                "%s called at IRQL %u; it must be called at DISPATCH_LEVEL (2)",
                                function, now));
}

static void check_no_lock_held(const char *function, struct site s)
{
    if (held_depth == 0)
        return;
    struct held *h = &held_locks[held_depth - 1];
    struct report *r = report_new(R_SPINLOCK_HELD_ACROSS_CALL, function, h->lock, NULL, s,
                                  "%s called while holding spin lock %p; release spin locks "
                                  "before calling it",
                                  function, (void *)h->lock);
    report_alloc_site(r, h->site, "lock acquired");
    report_queue(r);
}

static bool pool_retired_now(struct pool *p) { return p != NULL && pool_is_retired(p); }

/* A descriptor the verifier holds in quarantine, named in a USE_AFTER_FREE report. Lock held. */
/* A descriptor or packet the verifier holds in quarantine, named in a USE_AFTER_FREE report.
 * Lock held. */
static bool freed_object(const void *obj, enum kind kind, const char *function, struct site s)
{
    struct rec *r = rec_find(obj);
    if (r == NULL || r->state != S_QUARANTINED || r->kind != kind)
        return false;
    report_sites_queue(report_new(R_USE_AFTER_FREE, function, obj, r->pool, s,
                                  "%s given %s %p, which was freed", function, kind_name(kind),
                                  obj),
                       r);
    return true;
}

/* Walks a chain and stops at a freed descriptor: its Next is poison. Lock held. */
static bool chain_has_freed(PMDL m, const char *function, struct site s)
{
    for (unsigned steps = 0; m != NULL && steps < (1u << 20); m = m->Next, steps++)
        if (freed_object(m, K_BUFFER, function, s))
            return true;
    return false;
}

static bool freed_packet(PNDIS_PACKET p, const char *function, struct site s)
{
    return freed_object(p, K_PACKET, function, s);
}

static void report_double_free(struct rec *r, const char *function, struct site s)
{
    report_sites_queue(report_new(R_DOUBLE_FREE, function, r->obj, r->pool, s,
                                  "%s of %s %p, which was already freed", function,
                                  kind_name(r->kind), r->obj),
                       r);
}

/* Lists what a freed pool still has out, once per object (lock held). */
static void report_pool_in_use(struct pool *p, enum kind kind, const char *function, struct site s)
{
    struct report *rep = NULL;
    unsigned n = 0;
    for (size_t i = 0; i < table_cap; i++) {
        struct rec *r = table[i];
        if (r == NULL || r == TOMB || r->pool != p || r->kind != kind || r->state != S_LIVE)
            continue;
        if (rep == NULL)
            rep = report_new(R_POOL_FREED_IN_USE, function, p, p, s,
                             "%s of pool %p while %s are still out; its storage lives until "
                             "they come back",
                             function, (void *)p, kind == K_BUFFER ? "descriptors" : "packets");
        if (rep == NULL)
            return;
        r->reported = true;
        if (n++ < 32)
            report_append(rep, "  out: %p allocated at %s:%d\n", r->obj,
                          r->alloc.file ? r->alloc.file : "(unknown)", r->alloc.line);
    }
    if (rep != NULL && n > 32)
        report_append(rep, "  ... and %u more\n", n - 32);
    report_queue(rep);
}

/* Lock held. Frees to a pool already freed still happen (decision 13); the verifier says so. */
static void report_retired_free(struct rec *r, const char *function, const void *obj,
                                const char *what, struct site s)
{
    if (r->pool == NULL || r->pool == mdl_default_pool || !pool_retired_now(r->pool))
        return;
    struct report *rep = report_new(R_RETIRED_POOL_FREE, function, obj, r->pool, s,
                                    "%s of %s %p to pool %p, which was freed", function, what, obj,
                                    (void *)r->pool);
    report_alloc_site(rep, r->alloc, "allocated");
    report_queue(rep);
}

/* Lock held. Into quarantine: poisoned and held, so that a stale pointer is caught on its next
 * use and a write through it when it leaves. The caller has already made the object's own
 * header say it is neither live nor free. */
static void quarantine_object(struct rec *r, void *obj, size_t bytes, const char *function,
                              struct site s)
{
    r->state = S_QUARANTINED;
    r->freed = s;
    r->length = (ULONG)bytes;
    memset(obj, POISON_FREED, bytes);
    quarantine_push(r, function, s);
}

/* ---- buffers ---- */

void verifier_buffer_pool_allocate(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle, UINT N)
{
    struct site s = site_take();
    check_irql("NdisAllocateBufferPool", DISPATCH_LEVEL, s, NULL);
    check_no_lock_held("NdisAllocateBufferPool", s);
    reports_flush();
    buffer_pool_allocate_raw(Status, PoolHandle, N);
}

/* Lock held. A pool being freed: what the quarantine holds of it is back as far as the pool is
 * concerned; what is really still out is named. */
static void check_pool_free(struct pool *p, enum kind kind, const char *function, struct site s)
{
    quarantine_drain(p, function, s);
    report_pool_in_use(p, kind, function, s);
}

void verifier_buffer_pool_free(NDIS_HANDLE PoolHandle)
{
    struct site s = site_take();
    check_irql("NdisFreeBufferPool", DISPATCH_LEVEL, s, PoolHandle);
    check_no_lock_held("NdisFreeBufferPool", s);
    struct pool *p = buffer_pool_of(PoolHandle);
    if (p != NULL && PoolHandle != NULL) {
        pthread_mutex_lock(&vlock);
        check_pool_free(p, K_BUFFER, "NdisFreeBufferPool", s);
        pthread_mutex_unlock(&vlock);
    }
    reports_flush();
    buffer_pool_free_raw(PoolHandle);
}

static void track_descriptors(PMDL m, struct pool *p, struct site s)
{
    for (; m != NULL; m = m->Next) {
        struct rec *r = rec_add(m, K_BUFFER, p, s);
        if (r == NULL)
            return;
        r->orig_len = m->ByteCount;
        r->live_state = mdl_state_of(m);
    }
}

void verifier_buffer_allocate(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                              PVOID va, UINT len)
{
    struct site s = site_take();
    struct pool *p = buffer_pool_of(PoolHandle);
    check_irql("NdisAllocateBuffer", DISPATCH_LEVEL, s, NULL);
    if (pool_retired_now(p))
        report_queue(report_new(R_RETIRED_POOL_ALLOC, "NdisAllocateBuffer", NULL, p, s,
                                "NdisAllocateBuffer from pool %p, which was freed", (void *)p));
    reports_flush();
    if (fault(FAULT_BUFFER, p, false, 0)) {
        if (Buffer != NULL)
            *Buffer = NULL;
        if (Status != NULL)
            *Status = NDIS_STATUS_FAILURE;
        return;
    }
    buffer_allocate_raw(Status, Buffer, p, va, len);
    for (int round = 0; Buffer != NULL && *Buffer == NULL && retry_after_quarantine(p, round,
                                                                                     "NdisAllocateBuffer", s);
         round++)
        buffer_allocate_raw(Status, Buffer, p, va, len);
    if (Buffer != NULL && *Buffer != NULL) {
        pthread_mutex_lock(&vlock);
        track_descriptors(*Buffer, p, s);
        pthread_mutex_unlock(&vlock);
    }
}

void verifier_buffer_copy(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                          PVOID src, UINT off, UINT len)
{
    struct site s = site_take();
    struct pool *p = buffer_pool_of(PoolHandle);
    check_irql("NdisCopyBuffer", DISPATCH_LEVEL, s, src);
    check_no_lock_held("NdisCopyBuffer", s);
    if (pool_retired_now(p))
        report_queue(report_new(R_RETIRED_POOL_ALLOC, "NdisCopyBuffer", NULL, p, s,
                                "NdisCopyBuffer from pool %p, which was freed", (void *)p));
    pthread_mutex_lock(&vlock);
    bool freed = chain_has_freed(src, "NdisCopyBuffer", s);
    pthread_mutex_unlock(&vlock);
    reports_flush();
    if (freed || fault(FAULT_BUFFER, p, false, 0)) {
        if (Buffer != NULL)
            *Buffer = NULL;
        if (Status != NULL)
            *Status = NDIS_STATUS_FAILURE;
        return;
    }
    buffer_copy_raw(Status, Buffer, p, src, off, len);
    for (int round = 0; Buffer != NULL && *Buffer == NULL &&
                        retry_after_quarantine(p, round, "NdisCopyBuffer", s);
         round++)
        buffer_copy_raw(Status, Buffer, p, src, off, len);
    if (Buffer != NULL && *Buffer != NULL) {
        pthread_mutex_lock(&vlock);
        track_descriptors(*Buffer, p, s);
        pthread_mutex_unlock(&vlock);
    }
}

PMDL verifier_io_allocate(PVOID va, ULONG len, PIRP irp)
{
    struct site s = site_take();
    check_irql("IoAllocateMdl", DISPATCH_LEVEL, s, NULL);
    reports_flush();
    if (fault(FAULT_BUFFER, mdl_default_pool, false, 0))
        return NULL;
    PMDL m = mdl_io_allocate_raw(va, len, irp);
    if (m != NULL) {
        pthread_mutex_lock(&vlock);
        track_descriptors(m, mdl_default_pool, s);
        pthread_mutex_unlock(&vlock);
    }
    return m;
}

/* Whether `m` is still somewhere in `p`'s chain (a driver may have edited Next directly). */
static bool chain_contains(PNDIS_PACKET p, PMDL m)
{
    unsigned steps = 0;
    for (PMDL b = p->Private.Head; b != NULL && steps < (1u << 20); b = b->Next, steps++)
        if (b == m)
            return true;
    return false;
}

void verifier_buffer_free(PNDIS_BUFFER m, const char *function)
{
    struct site s = site_take();
    if (m == NULL)
        return;
    bool ndis = strcmp(function, "NdisFreeBuffer") == 0; /* IoFreeMdl has no lock rule */
    check_irql(function, DISPATCH_LEVEL, s, m);
    if (ndis)
        check_no_lock_held(function, s);
    pthread_mutex_lock(&vlock);
    struct rec *r = rec_find(m);
    if (r == NULL || r->kind != K_BUFFER) {
        pthread_mutex_unlock(&vlock);
        reports_flush();
        mdl_free(m); /* not tracked: made before the verifier was on, or not by the library */
        return;
    }
    if (r->state == S_QUARANTINED) {
        report_double_free(r, function, s);
        pthread_mutex_unlock(&vlock);
        reports_flush();
        return;
    }
    if (r->chained_in != NULL) {
        struct rec *pr = rec_find(r->chained_in);
        if (pr != NULL && pr->state == S_LIVE && chain_contains(r->chained_in, m)) {
            struct report *rep = report_new(R_FREE_WHILE_CHAINED, function, m, r->pool, s,
                                            "%s of descriptor %p, still chained into packet %p",
                                            function, (void *)m, (void *)r->chained_in);
            report_alloc_site(rep, r->alloc, "allocated");
            report_queue(rep);
        }
    }
    if (m->ByteCount != r->orig_len) {
        struct report *rep = report_new(R_ADJUSTED_LENGTH_NOT_RESTORED, function, m, r->pool, s,
                                        "%s of descriptor %p with ByteCount %u; it was made "
                                        "with %u (restore it after NdisAdjustBufferLength)",
                                        function, (void *)m, m->ByteCount, r->orig_len);
        report_alloc_site(rep, r->alloc, "allocated");
        report_queue(rep);
    }
    report_retired_free(r, function, m, "descriptor", s);
    size_t bytes = mdl_storage_bytes(m); /* read while the header still says what it is */
    mdl_set_state(m, MDL_STATE_QUARANTINED);
    quarantine_object(r, m, bytes, function, s);
    pthread_mutex_unlock(&vlock);
    reports_flush();
}

void verifier_buffer_adjust(PNDIS_BUFFER m, UINT len)
{
    struct site s = site_take();
    pthread_mutex_lock(&vlock);
    bool refuse = freed_object(m, K_BUFFER, "NdisAdjustBufferLength", s);
    struct rec *r = rec_find(m);
    if (!refuse && r != NULL && r->kind == K_BUFFER && len > r->orig_len) {
        struct report *rep = report_new(R_ADJUST_BEYOND_ORIGINAL, "NdisAdjustBufferLength", m,
                                        r->pool, s,
                                        "NdisAdjustBufferLength of descriptor %p to %u bytes; it "
                                        "was made with %u and may not grow beyond it",
                                        (void *)m, len, r->orig_len);
        report_alloc_site(rep, r->alloc, "allocated");
        report_queue(rep);
        refuse = true;
    }
    pthread_mutex_unlock(&vlock);
    check_no_lock_held("NdisAdjustBufferLength", s);
    reports_flush();
    if (!refuse)
        m->ByteCount = len;
}

PVOID verifier_map_safe(PMDL m)
{
    struct site s = site_take();
    check_irql("MmGetSystemAddressForMdlSafe", DISPATCH_LEVEL, s, m);
    reports_flush();
    if (fault(FAULT_MAP, NULL, false, 0))
        return NULL;
    return mdl_map_raw(m);
}

/* ---- packets ---- */

void verifier_packet_pool_allocate(PNDIS_STATUS Status, PNDIS_HANDLE PoolHandle, UINT N,
                                   UINT Overflow, UINT ProtocolReservedLength, const char *function)
{
    struct site s = site_take();
    check_irql(function, DISPATCH_LEVEL, s, NULL);
    check_no_lock_held(function, s);
    reports_flush();
    packet_pool_allocate_raw(Status, PoolHandle, N, Overflow, ProtocolReservedLength);
}

void verifier_packet_pool_free(NDIS_HANDLE PoolHandle)
{
    struct site s = site_take();
    check_irql("NdisFreePacketPool", DISPATCH_LEVEL, s, PoolHandle);
    check_no_lock_held("NdisFreePacketPool", s);
    struct pool *p = packet_pool_of(PoolHandle);
    if (p != NULL) {
        pthread_mutex_lock(&vlock);
        check_pool_free(p, K_PACKET, "NdisFreePacketPool", s);
        pthread_mutex_unlock(&vlock);
    }
    reports_flush();
    packet_pool_free_raw(PoolHandle);
}

void verifier_packet_allocate(PNDIS_STATUS Status, PNDIS_PACKET *Packet, NDIS_HANDLE PoolHandle,
                              const char *function, bool dpr)
{
    struct site s = site_take();
    struct pool *p = packet_pool_of(PoolHandle);
    if (dpr)
        check_dispatch(function, s, NULL);
    else
        check_irql(function, DISPATCH_LEVEL, s, NULL);
    if (pool_retired_now(p))
        report_queue(report_new(R_RETIRED_POOL_ALLOC, function, NULL, p, s,
                                "%s from pool %p, which was freed", function, (void *)p));
    reports_flush();
    if (p != NULL && fault(FAULT_PACKET, p, false, 0)) {
        if (Packet != NULL)
            *Packet = NULL;
        if (Status != NULL)
            *Status = NDIS_STATUS_RESOURCES;
        return;
    }
    packet_allocate_raw(Status, Packet, PoolHandle);
    for (int round = 0; Packet != NULL && *Packet == NULL &&
                        retry_after_quarantine(p, round, function, s);
         round++)
        packet_allocate_raw(Status, Packet, PoolHandle);
    if (Packet != NULL && *Packet != NULL) {
        pthread_mutex_lock(&vlock);
        struct rec *r = rec_add(*Packet, K_PACKET, p, s);
        if (r != NULL)
            r->live_state = packet_state_of(*Packet);
        pthread_mutex_unlock(&vlock);
    }
}

void verifier_packet_free(PNDIS_PACKET Packet, const char *function, bool dpr)
{
    struct site s = site_take();
    if (dpr)
        check_dispatch(function, s, Packet);
    else
        check_irql(function, DISPATCH_LEVEL, s, Packet);
    if (Packet == NULL) {
        reports_flush();
        return;
    }
    pthread_mutex_lock(&vlock);
    struct rec *r = rec_find(Packet);
    if (r == NULL || r->kind != K_PACKET) {
        pthread_mutex_unlock(&vlock);
        reports_flush();
        packet_free_raw(Packet);
        return;
    }
    if (r->state == S_QUARANTINED) {
        report_double_free(r, function, s);
        pthread_mutex_unlock(&vlock);
        reports_flush();
        return;
    }
    if (Packet->Private.Head != NULL) {
        struct report *rep = report_new(R_PACKET_FREED_WITH_BUFFERS, function, Packet, r->pool,
                                        s,
                                        "%s of packet %p with buffers still chained (first %p): "
                                        "they are not freed and are likely leaked",
                                        function, (void *)Packet, (void *)Packet->Private.Head);
        report_alloc_site(rep, r->alloc, "allocated");
        report_queue(rep);
        for (PMDL b = Packet->Private.Head; b != NULL; b = b->Next) {
            struct rec *br = rec_find(b);
            if (br == NULL || br->state != S_LIVE)
                break;
            if (br->chained_in == Packet)
                br->chained_in = NULL;
        }
    }
    report_retired_free(r, function, Packet, "packet", s);
    packet_set_state(Packet, PACKET_STATE_QUARANTINED);
    quarantine_object(r, Packet, packet_size_of(Packet), function, s);
    pthread_mutex_unlock(&vlock);
    reports_flush();
}

void verifier_packet_chain(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer, bool front)
{
    struct site s = site_take();
    const char *function = front ? "NdisChainBufferAtFront" : "NdisChainBufferAtBack";
    pthread_mutex_lock(&vlock);
    bool refuse = freed_packet(Packet, function, s) || chain_has_freed(Buffer, function, s);
    if (!refuse) {
        for (PMDL b = Buffer; b != NULL; b = b->Next) {
            struct rec *r = rec_find(b);
            if (r != NULL && r->kind == K_BUFFER)
                r->chained_in = Packet;
        }
    }
    pthread_mutex_unlock(&vlock);
    reports_flush();
    if (refuse)
        return;
    if (front)
        packet_chain_front_raw(Packet, Buffer);
    else
        packet_chain_back_raw(Packet, Buffer);
}

void verifier_packet_unchain(PNDIS_PACKET Packet, PNDIS_BUFFER *Buffer, bool front)
{
    struct site s = site_take();
    const char *function = front ? "NdisUnchainBufferAtFront" : "NdisUnchainBufferAtBack";
    pthread_mutex_lock(&vlock);
    bool refuse = freed_packet(Packet, function, s) ||
                  chain_has_freed(Packet->Private.Head, function, s);
    pthread_mutex_unlock(&vlock);
    reports_flush();
    if (refuse) {
        *Buffer = NULL;
        return;
    }
    if (front)
        packet_unchain_front_raw(Packet, Buffer);
    else
        packet_unchain_back_raw(Packet, Buffer);
    if (*Buffer != NULL) {
        pthread_mutex_lock(&vlock);
        struct rec *r = rec_find(*Buffer);
        if (r != NULL && r->chained_in == Packet)
            r->chained_in = NULL;
        pthread_mutex_unlock(&vlock);
    }
}

void verifier_packet_query(PNDIS_PACKET Packet, PUINT Phys, PUINT Count, PNDIS_BUFFER *First,
                           PUINT Total, const char *function)
{
    struct site s = site_take();
    pthread_mutex_lock(&vlock);
    bool refuse = freed_packet(Packet, function, s) ||
                  chain_has_freed(Packet->Private.Head, function, s);
    bool counts = Phys != NULL || Count != NULL || Total != NULL;
    if (!refuse && counts && Packet->Private.ValidCounts) {
        UINT fresh[3] = {0, 0, 0};
        for (PMDL b = Packet->Private.Head; b != NULL; b = b->Next) {
            fresh[0] += NDIS_BUFFER_TO_SPAN_PAGES(b);
            fresh[1]++;
            fresh[2] += MmGetMdlByteCount(b);
        }
        UINT cached[3] = {Packet->Private.PhysicalCount, Packet->Private.Count,
                          Packet->Private.TotalLength};
        struct rec *r = rec_find(Packet);
        bool stale = memcmp(fresh, cached, sizeof(fresh)) != 0;
        bool known = r != NULL && memcmp(r->stale, cached, sizeof(cached)) == 0;
        if (stale && !known) {
            struct report *rep = report_new(
                R_STALE_PACKET_COUNTS, function, Packet, r != NULL ? r->pool : NULL, s,
                "%s of packet %p: ValidCounts is TRUE but the cached counts (physical %u, "
                "buffers %u, length %u) no longer match the chain (%u, %u, %u); clear "
                "NDIS_PACKET_VALID_COUNTS or call NdisRecalculatePacketCounts after editing it",
                function, (void *)Packet, cached[0], cached[1], cached[2], fresh[0], fresh[1],
                fresh[2]);
            if (r != NULL)
                report_alloc_site(rep, r->alloc, "allocated");
            report_queue(rep);
            if (r != NULL)
                memcpy(r->stale, cached, sizeof(cached));
        }
    }
    pthread_mutex_unlock(&vlock);
    reports_flush();
    if (refuse) {
        if (Phys != NULL)
            *Phys = 0;
        if (Count != NULL)
            *Count = 0;
        if (First != NULL)
            *First = NULL;
        if (Total != NULL)
            *Total = 0;
        return;
    }
    packet_query_raw(Packet, Phys, Count, First, Total);
}

UINT verifier_packet_copy(PNDIS_PACKET Dst, UINT DstOff, UINT N, PNDIS_PACKET Src, UINT SrcOff,
                          bool safe, ULONG Priority, const char *function)
{
    struct site s = site_take();
    check_irql(function, DISPATCH_LEVEL, s, Dst);
    check_no_lock_held(function, s);
    pthread_mutex_lock(&vlock);
    bool refuse = freed_packet(Dst, function, s) || freed_packet(Src, function, s) ||
                  chain_has_freed(Dst->Private.Head, function, s) ||
                  chain_has_freed(Src->Private.Head, function, s);
    pthread_mutex_unlock(&vlock);
    reports_flush();
    return refuse ? 0 : packet_copy_raw(Dst, DstOff, N, Src, SrcOff, safe, Priority);
}

/* ---- memory ---- */

NDIS_STATUS verifier_memory_allocate(PVOID *VirtualAddress, UINT Length, ULONG Tag, UINT Flags,
                                     const char *function)
{
    struct site s = site_take();
    check_irql(function, Flags != 0 ? PASSIVE_LEVEL : DISPATCH_LEVEL, s, NULL);
    reports_flush();
    if (fault(FAULT_MEMORY, NULL, true, Tag)) {
        if (VirtualAddress != NULL)
            *VirtualAddress = NULL;
        return NDIS_STATUS_FAILURE;
    }
    NDIS_STATUS st = mem_allocate_raw(VirtualAddress, Length, Tag, Flags, GUARD_BYTES);
    if (st != NDIS_STATUS_SUCCESS)
        return st;
    unsigned char *p = *VirtualAddress;
    memset(p, FILL_NEW_MEMORY, Length); /* drivers must not rely on zeroed memory */
    memset(p + Length, FILL_GUARD, GUARD_BYTES);
    pthread_mutex_lock(&vlock);
    struct rec *r = rec_add(p, K_MEMORY, NULL, s);
    if (r != NULL) {
        r->tag = Tag;
        r->length = Length;
        r->flags = Flags;
    }
    pthread_mutex_unlock(&vlock);
    return st;
}

/* A pool tag as it reads in memory ("Ndis" for 'sidN'), unprintable bytes shown as dots. */
static const char *tag_text(ULONG tag, char text[5])
{
    memcpy(text, &tag, 4);
    text[4] = 0;
    for (int i = 0; i < 4; i++)
        if (text[i] < 32 || text[i] > 126)
            text[i] = '.';
    return text;
}

static void report_memory(struct report *rep, struct rec *r)
{
    char tag[5];
    if (rep != NULL)
        report_append(rep, "  tag: '%s' (0x%08x), %u bytes\n", tag_text(r->tag, tag), r->tag,
                      r->length);
    report_alloc_site(rep, r->alloc, "allocated");
    report_queue(rep);
}

void verifier_memory_free(PVOID VirtualAddress, UINT Length, UINT Flags)
{
    struct site s = site_take();
    if (VirtualAddress == NULL)
        return;
    pthread_mutex_lock(&vlock);
    struct rec *r = rec_find(VirtualAddress);
    if (r == NULL || r->kind != K_MEMORY) {
        pthread_mutex_unlock(&vlock);
        ULONG tag, len, flags;
        bool live;
        if (mem_info(VirtualAddress, &tag, &len, &flags, &live) && live)
            mem_free_raw(VirtualAddress);
        return;
    }
    if (r->state == S_QUARANTINED) {
        report_double_free(r, "NdisFreeMemory", s);
        pthread_mutex_unlock(&vlock);
        reports_flush();
        return;
    }
    KIRQL max = (r->flags & NDIS_MEMORY_CONTIGUOUS)  ? PASSIVE_LEVEL
                : (r->flags & NDIS_MEMORY_NONCACHED) ? APC_LEVEL
                                                     : DISPATCH_LEVEL;
    check_irql("NdisFreeMemory", max, s, VirtualAddress);
    if (Length != r->length || Flags != r->flags)
        report_memory(report_new(R_FREE_MEMORY_MISMATCH, "NdisFreeMemory", VirtualAddress, NULL,
                                 s,
                                 "NdisFreeMemory of %p with Length %u and MemoryFlags 0x%x; it "
                                 "was allocated with Length %u and MemoryFlags 0x%x",
                                 VirtualAddress, Length, Flags, r->length, r->flags),
                      r);
    if (!poison_intact((unsigned char *)VirtualAddress + r->length, GUARD_BYTES, FILL_GUARD))
        report_memory(report_new(R_MEMORY_OVERRUN, "NdisFreeMemory", VirtualAddress, NULL, s,
                                 "NdisFreeMemory of %p: the %u guard bytes after its %u bytes "
                                 "were overwritten",
                                 VirtualAddress, (unsigned)GUARD_BYTES, r->length),
                      r);
    mem_mark_dead(VirtualAddress);
    quarantine_object(r, VirtualAddress, r->length, "NdisFreeMemory", s);
    pthread_mutex_unlock(&vlock);
    reports_flush();
}

/* ---- spin locks ---- */

void verifier_lock_acquire(PKSPIN_LOCK lock, enum verifier_lock_kind kind, const char *function)
{
    struct site s = site_take();
    if (kind == VLOCK_NDIS_DPR || kind == VLOCK_KE_DPC)
        check_dispatch(function, s, lock);
    else
        check_irql(function, DISPATCH_LEVEL, s, lock);
    reports_flush();
    spin_acquire_raw(lock);
    if (held_depth == 0)
        pthread_setspecific(exit_key, (void *)1);
    if (held_depth < LOCK_STACK)
        held_locks[held_depth++] = (struct held){lock, kind, s};
}

void verifier_lock_release(PKSPIN_LOCK lock, enum verifier_lock_kind kind, const char *function)
{
    struct site s = site_take();
    if (kind == VLOCK_NDIS_DPR || kind == VLOCK_KE_DPC)
        check_dispatch(function, s, lock);
    int at = -1;
    for (int i = held_depth - 1; i >= 0; i--)
        if (held_locks[i].lock == lock) {
            at = i;
            break;
        }
    if (at < 0) {
        report_queue(report_new(R_SPINLOCK_WRONG_KIND, function, lock, NULL, s,
                                "%s of spin lock %p, which this thread does not hold", function,
                                (void *)lock));
    } else {
        struct held h = held_locks[at];
        if (h.kind != kind) {
            struct report *r = report_new(R_SPINLOCK_WRONG_KIND, function, lock, NULL, s,
                                          "%s of spin lock %p, which was acquired with %s",
                                          function, (void *)lock, lock_kind_name(h.kind));
            report_alloc_site(r, h.site, "acquired");
            report_queue(r);
        }
        if (at != held_depth - 1) {
            struct report *r = report_new(
                R_SPINLOCK_RELEASE_ORDER, function, lock, NULL, s,
                "%s of spin lock %p while spin lock %p, acquired after it, is still held: "
                "release spin locks in the reverse order of acquisition",
                function, (void *)lock, (void *)held_locks[held_depth - 1].lock);
            report_alloc_site(r, h.site, "acquired");
            report_queue(r);
        }
        memmove(&held_locks[at], &held_locks[at + 1],
                (size_t)(held_depth - at - 1) * sizeof(held_locks[0]));
        held_depth--;
    }
    reports_flush();
    spin_release_raw(lock);
}

/* ---- leaks and exit ---- */

static unsigned leaks_report(void)
{
    unsigned n = 0;
    pthread_mutex_lock(&vlock);
    for (size_t i = 0; i < table_cap; i++) {
        struct rec *r = table[i];
        if (r == NULL || r == TOMB || r->state != S_LIVE || r->reported)
            continue;
        r->reported = true;
        n++;
        const char *what = kind_name(r->kind);
        struct report *rep = report_new(R_LEAK, "(leak check)", r->obj, r->pool, (struct site){0},
                                        "%s %p was never freed", what, r->obj);
        if (r->kind == K_MEMORY) {
            report_memory(rep, r);
        } else {
            report_alloc_site(rep, r->alloc, "allocated");
            report_queue(rep);
        }
    }
    pthread_mutex_unlock(&vlock);
    reports_flush();
    return n;
}

/* The exit summary's leak lines, under its first: what is still out, by pool and by memory tag. */
static void leaks_grouped(void)
{
    enum { GROUPS = 16 };
    struct pool_group {
        const void *pool;
        unsigned descriptors, packets;
    } pools[GROUPS];
    struct tag_group {
        ULONG tag;
        unsigned blocks;
        unsigned long long bytes;
    } tags[GROUPS];
    unsigned npools = 0, ntags = 0;
    pthread_mutex_lock(&vlock);
    for (size_t i = 0; i < table_cap; i++) {
        struct rec *r = table[i];
        if (r == NULL || r == TOMB || r->state != S_LIVE)
            continue;
        if (r->kind == K_MEMORY) {
            unsigned t = 0;
            while (t < ntags && tags[t].tag != r->tag)
                t++;
            if (t == ntags && ntags < GROUPS)
                tags[ntags++] = (struct tag_group){r->tag, 0, 0};
            if (t < ntags) {
                tags[t].blocks++;
                tags[t].bytes += r->length;
            }
        } else {
            unsigned g = 0;
            while (g < npools && pools[g].pool != r->pool)
                g++;
            if (g == npools && npools < GROUPS)
                pools[npools++] = (struct pool_group){r->pool, 0, 0};
            if (g < npools) {
                pools[g].descriptors += r->kind == K_BUFFER;
                pools[g].packets += r->kind == K_PACKET;
            }
        }
    }
    pthread_mutex_unlock(&vlock);
    for (unsigned g = 0; g < npools; g++)
        fprintf(stderr, "  still out of pool %p: %u descriptors, %u packets\n",
                pools[g].pool, pools[g].descriptors, pools[g].packets);
    for (unsigned t = 0; t < ntags; t++) {
        char tag[5];
        fprintf(stderr, "  still allocated with tag '%s': %u blocks, %llu bytes\n",
                tag_text(tags[t].tag, tag), tags[t].blocks, tags[t].bytes);
    }
}

static void verifier_at_exit(void)
{
    if (!verifier_on)
        return;
    thread_exit_check(NULL); /* the thread that exits the process gets no key destructor */
    leaks_report();
    unsigned total = 0;
    char line[1024];
    size_t len = 0;
    for (int r = 0; r < R_COUNT; r++) {
        unsigned c = atomic_load(&report_counts[r]);
        total += c;
        if (c != 0 && len < sizeof(line) - 64)
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s %u", len ? ", " : "",
                                    rules[r].name, c);
    }
    fprintf(stderr, "libndis verifier: summary: %u report%s%s%s%s, %u fault%s injected\n", total,
            total == 1 ? "" : "s", len ? " (" : "", len ? line : "", len ? ")" : "",
            atomic_load(&faults_injected), atomic_load(&faults_injected) == 1 ? "" : "s");
    leaks_grouped();
}

/* ---- configuration ---- */

static int rule_by_name(const char *name, size_t n)
{
    for (int r = 0; r < R_COUNT; r++)
        if (strlen(rules[r].name) == n && strncmp(rules[r].name, name, n) == 0)
            return r;
    return -1;
}

static bool parse_unsigned(const char *v, size_t n, unsigned long long *out)
{
    if (n == 0 || n > 20)
        return false;
    unsigned long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (unsigned)(v[i] - '0');
    }
    *out = x;
    return true;
}

static bool parse_fault_kinds(const char *v, size_t n, unsigned *kinds)
{
    unsigned k = 0;
    while (n > 0) {
        size_t w = 0;
        while (w < n && v[w] != '+')
            w++;
        if (w == 3 && !strncmp(v, "all", 3))
            k |= FAULT_ALL;
        else if (w == 4 && !strncmp(v, "none", 4))
            k |= 0;
        else if (w == 6 && !strncmp(v, "buffer", 6))
            k |= FAULT_BUFFER;
        else if (w == 6 && !strncmp(v, "packet", 6))
            k |= FAULT_PACKET;
        else if (w == 6 && !strncmp(v, "memory", 6))
            k |= FAULT_MEMORY;
        else if (w == 3 && !strncmp(v, "map", 3))
            k |= FAULT_MAP;
        else
            return false;
        v += w;
        n -= w;
        if (n > 0) {
            v++;
            n--;
        }
    }
    *kinds = k;
    return true;
}

static bool parse_item(struct config *c, const char *item, size_t n)
{
    const char *eq = memchr(item, '=', n);
    size_t key = eq ? (size_t)(eq - item) : n;
    const char *v = eq ? eq + 1 : NULL;
    size_t vn = eq ? n - key - 1 : 0;
    if (!eq) {
        if ((n == 1 && item[0] == '1') || (n == 3 && !strncmp(item, "all", 3))) {
            for (int r = 0; r < R_COUNT; r++)
                c->policy[r] = rules[r].fallback;
            return true;
        }
        if ((n == 1 && item[0] == '0') || (n == 4 && !strncmp(item, "none", 4))) {
            memset(c->policy, 0, sizeof(c->policy));
            c->fault_kinds = 0;
            return true;
        }
        bool off = n > 0 && item[0] == '-';
        int r = rule_by_name(item + off, n - off);
        if (r < 0)
            return false;
        c->policy[r] = off ? POLICY_OFF : (c->policy[r] ? c->policy[r] : rules[r].fallback);
        return true;
    }
    int r = rule_by_name(item, key);
    if (r >= 0) {
        if (vn == 6 && !strncmp(v, "report", 6))
            c->policy[r] = POLICY_REPORT;
        else if (vn == 5 && !strncmp(v, "abort", 5))
            c->policy[r] = POLICY_ABORT;
        else if (vn == 3 && !strncmp(v, "off", 3))
            c->policy[r] = POLICY_OFF;
        else
            return false;
        return true;
    }
    unsigned long long x;
    if (key == 5 && !strncmp(item, "abort", 5)) {
        for (int k = 0; k < R_COUNT; k++) {
            if (c->policy[k] == POLICY_OFF)
                continue;
            if (vn == 4 && !strncmp(v, "none", 4))
                c->policy[k] = POLICY_REPORT;
            else if (vn == 3 && !strncmp(v, "all", 3))
                c->policy[k] = POLICY_ABORT;
            else if (vn == 7 && !strncmp(v, "default", 7))
                c->policy[k] = rules[k].fallback;
            else
                return false;
        }
        return true;
    }
    if (key == 5 && !strncmp(item, "fault", 5)) {
        c->fault_reset = true;
        return parse_fault_kinds(v, vn, &c->fault_kinds);
    }
    if (key == 10 && !strncmp(item, "fault_rate", 10)) {
        char buf[32];
        if (vn == 0 || vn >= sizeof(buf))
            return false;
        memcpy(buf, v, vn);
        buf[vn] = 0;
        char *end;
        double d = strtod(buf, &end);
        if (*end != 0 || !(d >= 0 && d <= 1))
            return false;
        c->fault_rate = d;
        c->fault_after = -1;
        c->fault_reset = true;
        return true;
    }
    if (key == 11 && !strncmp(item, "fault_after", 11) && parse_unsigned(v, vn, &x)) {
        c->fault_after = (long long)x;
        c->fault_reset = true;
        return true;
    }
    if (key == 10 && !strncmp(item, "fault_seed", 10) && parse_unsigned(v, vn, &x)) {
        c->fault_seed = x;
        c->fault_reset = true;
        return true;
    }
    if (key == 9 && !strncmp(item, "fault_tag", 9)) {
        c->fault_reset = true;
        if (vn == 4) {
            c->fault_tag_set = true;
            c->fault_tag = LIBNDIS_TAG(v[0], v[1], v[2], v[3]);
            return true;
        }
        if (vn == 1 && v[0] == '-') {
            c->fault_tag_set = false;
            return true;
        }
        return false;
    }
    if (key == 10 && !strncmp(item, "quarantine", 10) && parse_unsigned(v, vn, &x) && x <= 1000000) {
        c->quarantine = (unsigned)x;
        return true;
    }
    if (key == 9 && !strncmp(item, "backtrace", 9) && vn == 1 && (v[0] == '0' || v[0] == '1')) {
        c->backtraces = v[0] == '1';
        return true;
    }
    return false;
}

static bool config_active(const struct config *c)
{
    if (c->fault_kinds != 0)
        return true;
    for (int r = 0; r < R_COUNT; r++)
        if (c->policy[r] != POLICY_OFF)
            return true;
    return false;
}

LIBNDIS_API NDIS_STATUS LibNdisVerifierConfigure(const char *Spec)
{
    if (Spec == NULL)
        return NDIS_STATUS_INVALID_PARAMETER;
    pthread_mutex_lock(&vlock);
    struct config c = cfg;
    c.fault_reset = false;
    for (const char *p = Spec; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0 && !parse_item(&c, p, n)) {
            pthread_mutex_unlock(&vlock);
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        p = end ? end + 1 : p + strlen(p);
    }
    if (c.fault_reset) {
        fault_rng = c.fault_seed ? c.fault_seed : 0x9E3779B97F4A7C15ull;
        fault_candidates = 0;
    }
    bool now = config_active(&c);
    cfg = c;
    if (q_len > cfg.quarantine || !now)
        quarantine_drain(NULL, "LibNdisVerifierConfigure", (struct site){0});
    if (!now) {
        /* Off: forget every record, so that no stale one meets a reused address later. */
        for (size_t i = 0; i < table_cap; i++)
            if (table[i] != NULL && table[i] != TOMB)
                free(table[i]);
        free(table);
        table = NULL;
        table_cap = table_used = 0;
    }
    __atomic_store_n(&verifier_on, now, __ATOMIC_RELEASE);
    __atomic_store_n(&__libndis_verifying, now, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&vlock);
    reports_flush();
    return NDIS_STATUS_SUCCESS;
}

LIBNDIS_API BOOLEAN LibNdisVerifierEnabled(void) { return verifier_on != 0; }

LIBNDIS_API VOID LibNdisVerifierSetCallback(LIBNDIS_VERIFIER_CALLBACK Callback, PVOID Context)
{
    pthread_mutex_lock(&vlock);
    report_callback = Callback;
    report_context = Context;
    pthread_mutex_unlock(&vlock);
}

LIBNDIS_API ULONG LibNdisVerifierReportCount(const char *Rule)
{
    if (Rule == NULL) {
        ULONG total = 0;
        for (int r = 0; r < R_COUNT; r++)
            total += atomic_load_explicit(&report_counts[r], memory_order_relaxed);
        return total;
    }
    int r = rule_by_name(Rule, strlen(Rule));
    return r < 0 ? 0 : atomic_load_explicit(&report_counts[r], memory_order_relaxed);
}

LIBNDIS_API VOID LibNdisVerifierResetCounts(void)
{
    for (int r = 0; r < R_COUNT; r++)
        atomic_store(&report_counts[r], 0);
    atomic_store(&faults_injected, 0);
}

LIBNDIS_API ULONG LibNdisVerifierCheckLeaks(void) { return leaks_report(); }

LIBNDIS_API VOID LibNdisVerifierFaultPool(NDIS_HANDLE PoolHandle)
{
    pthread_mutex_lock(&vlock);
    fault_pool = PoolHandle;
    pthread_mutex_unlock(&vlock);
}

LIBNDIS_API ULONG LibNdisVerifierFaultsInjected(void) { return atomic_load(&faults_injected); }

__attribute__((constructor)) static void verifier_process_init(void)
{
    pthread_key_create(&exit_key, thread_exit_check);
    atexit(verifier_at_exit);
    const char *spec = getenv(LIBNDIS_ENV_VERIFY);
    if (spec != NULL && spec[0] != 0 && LibNdisVerifierConfigure(spec) != NDIS_STATUS_SUCCESS)
        fprintf(stderr, "libndis verifier: cannot parse %s=\"%s\"; checked mode stays off\n",
                LIBNDIS_ENV_VERIFY, spec);
}
