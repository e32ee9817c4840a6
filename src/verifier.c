/* SPDX-License-Identifier: MIT */
/* verifier.c - the checked mode (docs/verifier.md): the checked versions of the NDIS calls, a
 * registry of every object made while it is on, a quarantine of freed objects, per-thread spin
 * lock stacks, fault injection, and reports by rule to stderr or a callback. One global lock
 * keeps every record consistent; a checked call takes it once, and reports are delivered after
 * it is dropped so that a callback may call back into the library. The checked allocate, copy
 * and free of a descriptor are kept to one straight run each (benchmark W1/W3, "verifier on"):
 * what breaks no rule costs no report bookkeeping, and every report is made out of line. */
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

/* The pieces of a checked allocate and free are forced into one function each: their calls'
 * register saves and argument moves cost as much as the work they do. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

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

/* The one lock behind every record, the quarantine and the fault sequence. A checked call takes
 * it once, for a short stretch: a spin lock then costs one atomic exchange, where a mutex costs
 * two atomics and two calls (measured: 2.6 against 8.9 ns a pair). Waiters spin a little, then
 * yield, so that a holder preempted on a busy CPU still gets to run. */
static _Atomic unsigned vlock;

static void vlock_wait(void);

static ALWAYS_INLINE void vlock_take(void)
{
    if (POOL_LIKELY(atomic_exchange_explicit(&vlock, 1, memory_order_acquire) == 0))
        return;
    vlock_wait();
}

static ALWAYS_INLINE void vlock_drop(void)
{
    atomic_store_explicit(&vlock, 0, memory_order_release);
}

static __attribute__((noinline)) void vlock_wait(void)
{
    for (unsigned spins = 0;; spins++) {
        if (atomic_load_explicit(&vlock, memory_order_relaxed) == 0 &&
            atomic_exchange_explicit(&vlock, 1, memory_order_acquire) == 0)
            return;
        if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
}

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

/* The thread-locals every checked call touches are initial-exec, like irql_current: one
 * %fs-relative access, where the general-dynamic model makes each a call to __tls_get_addr in
 * the shared library (and makes the compiler save registers around it even where the static
 * link relaxes the call away). They are a few bytes, well within the static TLS reserve. */
#define HOT_TLS __attribute__((tls_model("initial-exec")))

static __thread struct site call_site HOT_TLS;

LIBNDIS_API void __libndis_set_site(const char *file, int line)
{
    call_site.file = file;
    call_site.line = line;
}

/* Each checked call takes its site once: a later call made without the macros (through a
 * function pointer) must not inherit it. */
static inline struct site site_take(void)
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
static __thread struct report *pending_head HOT_TLS, **pending_tail HOT_TLS;

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
static __attribute__((noinline)) void reports_deliver(void)
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

/* Every checked call ends here, and almost always with nothing queued: one thread-local load. */
static ALWAYS_INLINE void reports_flush(void)
{
    if (POOL_UNLIKELY(pending_head != NULL))
        reports_deliver();
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

/* Open addressing with linear probing, at most a quarter full, and no tombstones: a removal
 * moves the entries after it back, so a run never outgrows what is live. Objects churn through
 * the verifier (the quarantine releases one record per free): tombstones would fill the table.
 * A quarter full, most lookups of an untracked address (every descriptor of a chain made before
 * the verifier was on) stop at their first slot. */
static struct rec **table;
static size_t table_cap, table_used; /* used: records in the table */
static unsigned table_shift;         /* 64 - log2(table_cap): the hash's top bits index it */
static struct rec *rec_spare; /* freed records, linked through their first word, for reuse */

static ALWAYS_INLINE void rec_free(struct rec *r)
{
    *(struct rec **)r = rec_spare;
    rec_spare = r;
}

/* Storage for a record, its contents left to the caller. */
static __attribute__((noinline)) struct rec *rec_more(void) { return malloc(sizeof(struct rec)); }

static ALWAYS_INLINE struct rec *rec_new(void)
{
    struct rec *r = rec_spare;
    if (POOL_UNLIKELY(r == NULL))
        return rec_more();
    rec_spare = *(struct rec **)r;
    return r;
}

/* Multiplicative hashing: the top bits of the product mix every bit of the address. */
static ALWAYS_INLINE size_t slot_of(const void *obj)
{
    return (size_t)(((uint64_t)(uintptr_t)obj * 0x9E3779B97F4A7C15ull) >> table_shift);
}

static ALWAYS_INLINE struct rec *rec_find(const void *obj)
{
    if (table_cap == 0 || obj == NULL)
        return NULL;
    size_t mask = table_cap - 1;
    for (size_t i = slot_of(obj); table[i] != NULL; i = (i + 1) & mask)
        if (table[i]->obj == obj)
            return table[i];
    return NULL;
}

/* Empties slot `hole`: each entry of the run after it that could no longer be reached from its
 * home slot (its home is not between the hole and itself) moves back into the hole. */
static ALWAYS_INLINE void table_close_gap(size_t hole)
{
    size_t mask = table_cap - 1;
    for (size_t j = (hole + 1) & mask; table[j] != NULL; j = (j + 1) & mask) {
        size_t home = slot_of(table[j]->obj);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            table[hole] = table[j];
            hole = j;
        }
    }
    table[hole] = NULL;
}

static ALWAYS_INLINE void rec_remove(struct rec *rec)
{
    size_t mask = table_cap - 1;
    for (size_t i = slot_of(rec->obj); table[i] != NULL; i = (i + 1) & mask)
        if (table[i] == rec) {
            table_close_gap(i);
            table_used--;
            return;
        }
}

static __attribute__((noinline)) bool table_grow(void)
{
    size_t cap = table_cap ? table_cap * 2 : 1024;
    struct rec **t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return false;
    struct rec **old = table;
    size_t old_cap = table_cap;
    table = t;
    table_cap = cap;
    table_shift = 64 - (unsigned)__builtin_ctzll(cap);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i] == NULL)
            continue;
        size_t j = slot_of(old[i]->obj);
        while (table[j] != NULL)
            j = (j + 1) & (cap - 1);
        table[j] = old[i];
    }
    free(old);
    return true;
}

/* Forgets every record (the verifier switched off). The table stays for the next session: a
 * test or benchmark may switch the verifier on and off thousands of times, and with the
 * quarantine just drained there is usually nothing left in it. */
static void table_clear(void)
{
    if (table_used == 0)
        return;
    for (size_t i = 0; i < table_cap; i++)
        if (table[i] != NULL)
            rec_free(table[i]);
    memset(table, 0, table_cap * sizeof(*table));
    table_used = 0;
}

/* Field by field: a struct assignment of this size compiles to a string store, slow to start. */
static ALWAYS_INLINE void rec_init(struct rec *r, const void *obj, enum kind kind,
                                   struct pool *pool, struct site alloc)
{
    r->obj = obj;
    r->kind = (uint8_t)kind;
    r->state = S_LIVE;
    r->reported = false;
    r->live_state = 0;
    r->pool = pool;
    r->alloc = alloc;
    r->freed = (struct site){NULL, 0};
    r->orig_len = 0;
    r->chained_in = NULL;
    r->stale[0] = r->stale[1] = r->stale[2] = 0;
    r->tag = r->length = r->flags = 0;
}

/* A new object at an address the table still knows (tracked, then freed while the verifier was
 * briefly off) replaces the stale record, in its slot. */
static ALWAYS_INLINE struct rec *rec_add(const void *obj, enum kind kind, struct pool *pool,
                                         struct site alloc)
{
    if (POOL_UNLIKELY((table_used + 1) * 4 > table_cap) && !table_grow())
        return NULL;
    struct rec *r = rec_new();
    if (r == NULL)
        return NULL;
    rec_init(r, obj, kind, pool, alloc);
    size_t mask = table_cap - 1, i = slot_of(obj);
    for (; table[i] != NULL; i = (i + 1) & mask)
        if (table[i]->obj == obj) {
            rec_free(table[i]);
            table[i] = r;
            return r;
        }
    table[i] = r;
    table_used++;
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

static ALWAYS_INLINE void note_quarantined_pool(const struct pool *pool)
{
    static const struct pool *last; /* frees come in runs from one pool */
    if (pool == last)
        return;
    last = pool;
    for (unsigned i = 0; i < RECENT_POOLS; i++)
        if (recent_pools[i] == pool)
            return;
    recent_pools[recent_next++ % RECENT_POOLS] = pool;
}

static bool pool_has_quarantined_before(const struct pool *pool)
{
    vlock_take();
    bool seen = false;
    for (unsigned i = 0; i < RECENT_POOLS; i++)
        seen |= recent_pools[i] == pool;
    vlock_drop();
    return seen;
}


static struct rec **quarantine;
static size_t q_cap, q_head, q_len;

/* Ring position of the i-th oldest entry (i < q_cap): no division, q_cap being any number. */
static inline size_t q_at(size_t i)
{
    size_t j = q_head + i;
    return j >= q_cap ? j - q_cap : j;
}

/* What nearly every checked free poisons, and checks when the object leaves the quarantine: a
 * descriptor in a pool slot. Its size known at compile time, both are a few vector stores or
 * loads in line instead of a call and a byte loop. */
#define SLAB_MDL_BYTES (MDL_OBJ_SIZE - sizeof(struct mdl_hdr))
_Static_assert(SLAB_MDL_BYTES % 16 == 0, "a slab descriptor is checked 16 bytes at a time");
#define POISON_WORD (0x0101010101010101ull * POISON_FREED)

static ALWAYS_INLINE void poison_fill(void *obj, size_t n)
{
    if (n == SLAB_MDL_BYTES)
        memset(obj, POISON_FREED, SLAB_MDL_BYTES);
    else
        memset(obj, POISON_FREED, n);
}

/* Sixteen bytes at a time, without an early exit: seven loads and compares the compiler keeps in
 * vector registers. */
typedef uint64_t poison_vec __attribute__((vector_size(16)));

static ALWAYS_INLINE bool slab_mdl_poison_intact(const unsigned char *b)
{
    const poison_vec want = {POISON_WORD, POISON_WORD};
    poison_vec diff = {0, 0};
#pragma GCC unroll 8
    for (size_t i = 0; i < SLAB_MDL_BYTES; i += sizeof(poison_vec)) {
        poison_vec v;
        memcpy(&v, b + i, sizeof(v));
        diff |= v ^ want;
    }
    return (diff[0] | diff[1]) == 0;
}

/* Other sizes are compared with reference blocks of the pattern, which memcmp does vectorized. */
enum { PATTERN_BLOCK = 256 };
static const unsigned char poison_block[PATTERN_BLOCK] = {[0 ... PATTERN_BLOCK - 1] = POISON_FREED};
static const unsigned char guard_block[PATTERN_BLOCK] = {[0 ... PATTERN_BLOCK - 1] = FILL_GUARD};

static bool pattern_intact(const unsigned char *b, size_t n, const unsigned char *ref)
{
    for (size_t step; n > 0; b += step, n -= step) {
        step = n < PATTERN_BLOCK ? n : PATTERN_BLOCK;
        if (memcmp(b, ref, step) != 0)
            return false;
    }
    return true;
}

static ALWAYS_INLINE bool poison_intact(const void *p, size_t n)
{
    if (n == SLAB_MDL_BYTES)
        return slab_mdl_poison_intact(p);
    return pattern_intact(p, n, poison_block);
}

static bool guard_intact(const void *p) { return pattern_intact(p, GUARD_BYTES, guard_block); }

/* Gives a quarantined object back for good, reporting a write into it since its free; the
 * report names the call that made room in the quarantine. */
static __attribute__((noinline, cold)) void report_written_after_free(struct rec *r,
                                                                      const char *function,
                                                                      struct site s)
{
    report_sites_queue(report_new(R_USE_AFTER_FREE, function, r->obj, r->pool, s,
                                  "%s written after it was freed (found when it left the "
                                  "quarantine)",
                                  kind_name(r->kind)),
                       r);
}

/* The descriptor's header gets back the state it had while live, then the descriptor goes back
 * to its pool (mdl_release_quarantined, in line: this runs on every checked free). */
static ALWAYS_INLINE void release_descriptor(PMDL m, uint32_t live_state)
{
    mdl_hdr_of(m)->state = live_state;
    mdl_free(m);
}

static ALWAYS_INLINE void quarantine_release(struct rec *r, const char *function,
                                             struct site s)
{
    void *obj = (void *)r->obj;
    /* `length` is the bytes poisoned at free: descriptor storage, packet or memory block */
    if (POOL_UNLIKELY(!poison_intact(obj, r->length)))
        report_written_after_free(r, function, s);
    if (POOL_LIKELY(r->kind == K_BUFFER))
        release_descriptor((PMDL)obj, r->live_state);
    else if (r->kind == K_PACKET)
        packet_release_quarantined((PNDIS_PACKET)obj);
    else
        mem_free_raw(obj);
    rec_remove(r);
    rec_free(r);
}

/* False when `r` could not be held and was released at once. */
static __attribute__((noinline)) bool quarantine_push_slow(struct rec *r, const char *function,
                                                           struct site s)
{
    if (cfg.quarantine == 0) {
        quarantine_release(r, function, s);
        return false;
    }
    if (q_cap < cfg.quarantine) {
        struct rec **q = calloc(cfg.quarantine, sizeof(*q));
        if (q == NULL) {
            quarantine_release(r, function, s);
            return false;
        }
        for (size_t i = 0; i < q_len; i++)
            q[i] = quarantine[q_at(i)];
        free(quarantine);
        quarantine = q;
        q_cap = cfg.quarantine;
        q_head = 0;
    }
    while (q_len >= cfg.quarantine) {
        quarantine_release(quarantine[q_head], function, s);
        q_head = q_at(1);
        q_len--;
    }
    quarantine[q_at(q_len)] = r;
    q_len++;
    return true;
}

/* In the steady state the ring is full at its configured size: the oldest object leaves and the
 * new one takes its slot. Filling up, resizing and quarantine=0 take the general path. */
static ALWAYS_INLINE void quarantine_push(struct rec *r, const char *function, struct site s)
{
    if (POOL_LIKELY(q_len == cfg.quarantine && q_len == q_cap && q_len != 0)) {
        struct rec *oldest = quarantine[q_head];
        quarantine[q_head] = r;
        q_head = q_head + 1 == q_cap ? 0 : q_head + 1;
        quarantine_release(oldest, function, s);
    } else if (!quarantine_push_slow(r, function, s)) {
        return;
    }
    if (r->pool != NULL)
        note_quarantined_pool(r->pool);
}

/* Releases what the quarantine holds of one pool (all of it for NULL). */
static void quarantine_drain(const struct pool *pool, const char *function, struct site s)
{
    size_t kept = 0;
    for (size_t i = 0; i < q_len; i++) {
        struct rec *r = quarantine[q_at(i)];
        if (pool == NULL || r->pool == pool)
            quarantine_release(r, function, s);
        else
            quarantine[q_at(kept++)] = r;
    }
    q_len = kept;
}

static unsigned quarantined_in_locked(const struct pool *pool)
{
    unsigned n = 0;
    for (size_t i = 0; i < q_len; i++)
        n += quarantine[q_at(i)]->pool == pool;
    return n;
}

/* For the pool, an object the verifier holds in quarantine is back: usage queries must not
 * tell a driver otherwise. */
unsigned verifier_quarantined(struct pool *pool)
{
    vlock_take();
    unsigned n = quarantined_in_locked(pool);
    vlock_drop();
    return n;
}

/* A bounded pool that ran dry while the quarantine holds some of its objects gets them back, so
 * that correct code sized to its need behaves as without the verifier. True if any came back. */
static bool quarantine_give_back(struct pool *pool, const char *function, struct site s)
{
    if (pool == NULL)
        return false;
    vlock_take();
    bool any = quarantined_in_locked(pool) != 0;
    if (any)
        quarantine_drain(pool, function, s);
    vlock_drop();
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

static bool fault_draw(unsigned kind, const struct pool *pool, bool has_tag, ULONG tag)
{
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

/* Lock held. Whether this call fails by injection; a kind not configured costs one test. */
static ALWAYS_INLINE bool fault_hit(unsigned kind, const struct pool *pool, bool has_tag,
                                    ULONG tag)
{
    return POOL_UNLIKELY(cfg.fault_kinds & kind) && fault_draw(kind, pool, has_tag, tag);
}

static bool fault(unsigned kind, const struct pool *pool, bool has_tag, ULONG tag)
{
    if (cfg.fault_kinds == 0)
        return false;
    vlock_take();
    bool f = fault_hit(kind, pool, has_tag, tag);
    vlock_drop();
    return f;
}

/* ---- per-thread spin lock stacks ---- */

struct held {
    PKSPIN_LOCK lock;
    enum verifier_lock_kind kind;
    struct site site;
};

static __thread struct held held_locks[LOCK_STACK];
static __thread int held_depth HOT_TLS;
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

/* Each check is an inline test; its report is made out of line, keeping the checked calls that
 * break no rule short. */
static __attribute__((noinline, cold)) void report_irql(const char *function, KIRQL max,
                                                        struct site s, const void *object)
{
    report_queue(report_new(R_IRQL_TOO_HIGH, function, object, NULL, s,
                            "%s called at IRQL %u; it allows at most %u", function, irql_current,
                            max));
}

static inline void check_irql(const char *function, KIRQL max, struct site s, const void *object)
{
    if (POOL_UNLIKELY(irql_current > max))
        report_irql(function, max, s, object);
}

static void check_dispatch(const char *function, struct site s, const void *object)
{
    KIRQL now = irql_current;
    if (now != DISPATCH_LEVEL)
        report_queue(report_new(R_DPR_NOT_AT_DISPATCH, function, object, NULL, s,
                                "%s called at IRQL %u; it must be called at DISPATCH_LEVEL (2)",
                                function, now));
}

static __attribute__((noinline, cold)) void report_lock_held(const char *function, struct site s)
{
    struct held *h = &held_locks[held_depth - 1];
    struct report *r = report_new(R_SPINLOCK_HELD_ACROSS_CALL, function, h->lock, NULL, s,
                                  "%s called while holding spin lock %p; release spin locks "
                                  "before calling it",
                                  function, (void *)h->lock);
    report_alloc_site(r, h->site, "lock acquired");
    report_queue(r);
}

static inline void check_no_lock_held(const char *function, struct site s)
{
    if (POOL_UNLIKELY(held_depth != 0))
        report_lock_held(function, s);
}

static bool pool_retired_now(struct pool *p) { return p != NULL && pool_is_retired(p); }

/* A descriptor or packet the verifier holds in quarantine, named in a USE_AFTER_FREE report.
 * Lock held. */
static __attribute__((noinline, cold)) void report_given_freed(struct rec *r,
                                                                const char *function,
                                                                struct site s)
{
    report_sites_queue(report_new(R_USE_AFTER_FREE, function, r->obj, r->pool, s,
                                  "%s given %s %p, which was freed", function,
                                  kind_name(r->kind), r->obj),
                       r);
}

static ALWAYS_INLINE bool freed_object(const void *obj, enum kind kind, const char *function,
                                       struct site s)
{
    struct rec *r = rec_find(obj);
    if (POOL_LIKELY(r == NULL || r->state != S_QUARANTINED || r->kind != kind))
        return false;
    report_given_freed(r, function, s);
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
        if (r == NULL || r->pool != p || r->kind != kind || r->state != S_LIVE)
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
static __attribute__((noinline, cold)) void report_retired_free_now(struct rec *r,
                                                                   const char *function,
                                                                   const void *obj,
                                                                   const char *what,
                                                                   struct site s)
{
    struct report *rep = report_new(R_RETIRED_POOL_FREE, function, obj, r->pool, s,
                                    "%s of %s %p to pool %p, which was freed", function, what, obj,
                                    (void *)r->pool);
    report_alloc_site(rep, r->alloc, "allocated");
    report_queue(rep);
}

/* Set (lock held, never cleared) once a pool is freed under the verifier. Until then no tracked
 * object can belong to a retired pool, so a free need not ask: records are forgotten whenever
 * the verifier goes off, and a pool retired before cannot hand out objects to track. */
static bool pools_freed;

static inline void report_retired_free(struct rec *r, const char *function, const void *obj,
                                       const char *what, struct site s)
{
    if (POOL_UNLIKELY(pools_freed) && r->pool != NULL && r->pool != mdl_default_pool &&
        pool_is_retired(r->pool))
        report_retired_free_now(r, function, obj, what, s);
}

/* Lock held. Into quarantine: poisoned and held, so that a stale pointer is caught on its next
 * use and a write through it when it leaves. The caller has already made the object's own
 * header say it is neither live nor free. */
static ALWAYS_INLINE void quarantine_object(struct rec *r, void *obj, size_t bytes,
                                            const char *function, struct site s)
{
    r->state = S_QUARANTINED;
    r->freed = s;
    r->length = (ULONG)bytes;
    poison_fill(obj, bytes);
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
    pools_freed = true;
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
        vlock_take();
        check_pool_free(p, K_BUFFER, "NdisFreeBufferPool", s);
        vlock_drop();
    }
    reports_flush();
    buffer_pool_free_raw(PoolHandle);
}

static ALWAYS_INLINE void track_descriptors(PMDL m, struct pool *p, struct site s)
{
    for (; m != NULL; m = m->Next) {
        struct rec *r = rec_add(m, K_BUFFER, p, s);
        if (r == NULL)
            return;
        r->orig_len = m->ByteCount;
        r->live_state = mdl_hdr_of(m)->state;
    }
}

static __attribute__((noinline, cold)) void report_retired_alloc(const char *function,
                                                                 struct pool *p, struct site s)
{
    report_queue(report_new(R_RETIRED_POOL_ALLOC, function, NULL, p, s,
                            "%s from pool %p, which was freed", function, (void *)p));
}

static inline void check_retired_alloc(const char *function, struct pool *p, struct site s)
{
    if (POOL_UNLIKELY(pool_retired_now(p)))
        report_retired_alloc(function, p, s);
}

static void buffer_fail(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer)
{
    if (Buffer != NULL)
        *Buffer = NULL;
    if (Status != NULL)
        *Status = NDIS_STATUS_FAILURE;
}

/* The allocation failed: the pool may be bounded and dry because the quarantine holds its
 * descriptors. */
static __attribute__((noinline)) void buffer_allocate_retry(PNDIS_STATUS Status,
                                                            PNDIS_BUFFER *Buffer, struct pool *p,
                                                            PVOID va, UINT len, struct site s)
{
    for (int round = 0; *Buffer == NULL &&
                        retry_after_quarantine(p, round, "NdisAllocateBuffer", s);
         round++)
        buffer_allocate_raw(Status, Buffer, p, va, len);
}

/* Every check in order, for any call the fast path below does not finish. */
static __attribute__((noinline)) void buffer_allocate_checked(struct site s, PNDIS_STATUS Status,
                                                              PNDIS_BUFFER *Buffer,
                                                              NDIS_HANDLE PoolHandle, PVOID va,
                                                              UINT len)
{
    struct pool *p = buffer_pool_of(PoolHandle);
    check_irql("NdisAllocateBuffer", DISPATCH_LEVEL, s, NULL);
    check_retired_alloc("NdisAllocateBuffer", p, s);
    reports_flush();
    if (fault(FAULT_BUFFER, p, false, 0)) {
        buffer_fail(Status, Buffer);
        return;
    }
    buffer_allocate_raw(Status, Buffer, p, va, len);
    if (Buffer == NULL)
        return;
    if (*Buffer == NULL) {
        buffer_allocate_retry(Status, Buffer, p, va, len, s);
        if (*Buffer == NULL)
            return;
    }
    vlock_take();
    track_descriptors(*Buffer, p, s);
    vlock_drop();
}

/* The common case: no report to make, no fault to inject, and the unchecked entry succeeds. A
 * descriptor made means its pool was not retired, so that test is left to the checked path,
 * which also takes any call that failed here (a failed allocation changes nothing). */
static ALWAYS_INLINE void buffer_allocate(struct site s, PNDIS_STATUS Status,
                                          PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle, PVOID va,
                                          UINT len)
{
    if (POOL_LIKELY(irql_current <= DISPATCH_LEVEL && cfg.fault_kinds == 0 &&
                    pending_head == NULL && Buffer != NULL)) {
        __libndis_fast_NdisAllocateBuffer(Status, Buffer, PoolHandle, va, len);
        PMDL m = *Buffer;
        if (POOL_LIKELY(m != NULL)) {
            vlock_take();
            track_descriptors(m, mdl_hdr_of(m)->pool, s);
            vlock_drop();
            return;
        }
    }
    buffer_allocate_checked(s, Status, Buffer, PoolHandle, va, len);
}

void verifier_buffer_allocate(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                              PVOID va, UINT len)
{
    buffer_allocate(site_take(), Status, Buffer, PoolHandle, va, len);
}

void verifier_buffer_allocate_at(const char *file, int line, PNDIS_STATUS Status,
                                 PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle, PVOID va, UINT len)
{
    if (POOL_UNLIKELY(!verifier_on)) {
        __libndis_fast_NdisAllocateBuffer(Status, Buffer, PoolHandle, va, len);
        return;
    }
    buffer_allocate((struct site){file, line}, Status, Buffer, PoolHandle, va, len);
}

/* Lock held: the source chain checked, the fault sequence consulted and the copy made in one
 * stretch. False when the call is refused (a freed descriptor in the chain, or a fault). */
static bool buffer_copy_locked(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, struct pool *p,
                               PVOID src, UINT off, UINT len, struct site s)
{
    if (chain_has_freed(src, "NdisCopyBuffer", s) || fault_hit(FAULT_BUFFER, p, false, 0))
        return false;
    buffer_copy_raw(Status, Buffer, p, src, off, len);
    if (Buffer != NULL && *Buffer != NULL)
        track_descriptors(*Buffer, p, s);
    return true;
}

static inline void buffer_copy(struct site s, PNDIS_STATUS Status, PNDIS_BUFFER *Buffer,
                               NDIS_HANDLE PoolHandle, PVOID src, UINT off, UINT len)
{
    struct pool *p = buffer_pool_of(PoolHandle);
    check_irql("NdisCopyBuffer", DISPATCH_LEVEL, s, src);
    check_no_lock_held("NdisCopyBuffer", s);
    check_retired_alloc("NdisCopyBuffer", p, s);
    vlock_take();
    bool done = buffer_copy_locked(Status, Buffer, p, src, off, len, s);
    vlock_drop();
    reports_flush();
    if (!done) {
        buffer_fail(Status, Buffer);
        return;
    }
    if (Buffer == NULL || *Buffer != NULL)
        return;
    for (int round = 0; *Buffer == NULL && retry_after_quarantine(p, round, "NdisCopyBuffer", s);
         round++)
        buffer_copy_raw(Status, Buffer, p, src, off, len);
    if (*Buffer != NULL) {
        vlock_take();
        track_descriptors(*Buffer, p, s);
        vlock_drop();
    }
}

void verifier_buffer_copy(PNDIS_STATUS Status, PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle,
                          PVOID src, UINT off, UINT len)
{
    buffer_copy(site_take(), Status, Buffer, PoolHandle, src, off, len);
}

void verifier_buffer_copy_at(const char *file, int line, PNDIS_STATUS Status,
                             PNDIS_BUFFER *Buffer, NDIS_HANDLE PoolHandle, PVOID src, UINT off,
                             UINT len)
{
    if (POOL_UNLIKELY(!verifier_on)) {
        __libndis_fast_NdisCopyBuffer(Status, Buffer, PoolHandle, src, off, len);
        return;
    }
    buffer_copy((struct site){file, line}, Status, Buffer, PoolHandle, src, off, len);
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
        vlock_take();
        track_descriptors(m, mdl_default_pool, s);
        vlock_drop();
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

static __attribute__((noinline, cold)) void check_free_while_chained(struct rec *r, PMDL m,
                                                                     const char *function,
                                                                     struct site s)
{
    struct rec *pr = rec_find(r->chained_in);
    if (pr == NULL || pr->state != S_LIVE || !chain_contains(r->chained_in, m))
        return;
    struct report *rep = report_new(R_FREE_WHILE_CHAINED, function, m, r->pool, s,
                                    "%s of descriptor %p, still chained into packet %p",
                                    function, (void *)m, (void *)r->chained_in);
    report_alloc_site(rep, r->alloc, "allocated");
    report_queue(rep);
}

static __attribute__((noinline, cold)) void report_length_not_restored(struct rec *r, PMDL m,
                                                                       const char *function,
                                                                       struct site s)
{
    struct report *rep = report_new(R_ADJUSTED_LENGTH_NOT_RESTORED, function, m, r->pool, s,
                                    "%s of descriptor %p with ByteCount %u; it was made "
                                    "with %u (restore it after NdisAdjustBufferLength)",
                                    function, (void *)m, m->ByteCount, r->orig_len);
    report_alloc_site(rep, r->alloc, "allocated");
    report_queue(rep);
}

/* Lock held. The free of a descriptor the registry knows: checked, then into quarantine. */
static ALWAYS_INLINE void buffer_free_tracked(struct rec *r, PMDL m, const char *function,
                                              struct site s)
{
    if (POOL_UNLIKELY(r->state == S_QUARANTINED)) {
        report_double_free(r, function, s);
        return;
    }
    if (POOL_UNLIKELY(r->chained_in != NULL))
        check_free_while_chained(r, m, function, s);
    if (POOL_UNLIKELY(m->ByteCount != r->orig_len))
        report_length_not_restored(r, m, function, s);
    report_retired_free(r, function, m, "descriptor", s);
    /* the storage size is read while the header still says what the descriptor is */
    struct mdl_hdr *h = mdl_hdr_of(m);
    size_t bytes = POOL_LIKELY(h->state == MDL_STATE_SLAB) ? SLAB_MDL_BYTES : mdl_storage_bytes(m);
    h->state = MDL_STATE_QUARANTINED;
    quarantine_object(r, m, bytes, function, s);
}

static ALWAYS_INLINE void buffer_free(struct site s, PNDIS_BUFFER m, const char *function)
{
    if (m == NULL)
        return;
    check_irql(function, DISPATCH_LEVEL, s, m);
    if (function[0] == 'N') /* NdisFreeBuffer; IoFreeMdl has no lock rule */
        check_no_lock_held(function, s);
    vlock_take();
    struct rec *r = rec_find(m);
    bool tracked = r != NULL && r->kind == K_BUFFER;
    if (POOL_LIKELY(tracked))
        buffer_free_tracked(r, m, function, s);
    vlock_drop();
    reports_flush();
    if (!tracked)
        mdl_free(m); /* made before the verifier was on, or not by the library */
}

void verifier_buffer_free(PNDIS_BUFFER m, const char *function)
{
    buffer_free(site_take(), m, function);
}

void verifier_buffer_free_at(const char *file, int line, PNDIS_BUFFER m, const char *function)
{
    if (POOL_UNLIKELY(!verifier_on)) {
        if (m != NULL)
            mdl_free(m);
        return;
    }
    buffer_free((struct site){file, line}, m, function);
}

void verifier_buffer_adjust(PNDIS_BUFFER m, UINT len)
{
    struct site s = site_take();
    vlock_take();
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
    vlock_drop();
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
        vlock_take();
        check_pool_free(p, K_PACKET, "NdisFreePacketPool", s);
        vlock_drop();
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
        vlock_take();
        struct rec *r = rec_add(*Packet, K_PACKET, p, s);
        if (r != NULL)
            r->live_state = packet_state_of(*Packet);
        vlock_drop();
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
    vlock_take();
    struct rec *r = rec_find(Packet);
    if (r == NULL || r->kind != K_PACKET) {
        vlock_drop();
        reports_flush();
        packet_free_raw(Packet);
        return;
    }
    if (r->state == S_QUARANTINED) {
        report_double_free(r, function, s);
        vlock_drop();
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
    vlock_drop();
    reports_flush();
}

void verifier_packet_chain(PNDIS_PACKET Packet, PNDIS_BUFFER Buffer, bool front)
{
    struct site s = site_take();
    const char *function = front ? "NdisChainBufferAtFront" : "NdisChainBufferAtBack";
    vlock_take();
    bool refuse = freed_packet(Packet, function, s) || chain_has_freed(Buffer, function, s);
    if (!refuse) {
        for (PMDL b = Buffer; b != NULL; b = b->Next) {
            struct rec *r = rec_find(b);
            if (r != NULL && r->kind == K_BUFFER)
                r->chained_in = Packet;
        }
    }
    vlock_drop();
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
    vlock_take();
    bool refuse = freed_packet(Packet, function, s) ||
                  chain_has_freed(Packet->Private.Head, function, s);
    vlock_drop();
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
        vlock_take();
        struct rec *r = rec_find(*Buffer);
        if (r != NULL && r->chained_in == Packet)
            r->chained_in = NULL;
        vlock_drop();
    }
}

void verifier_packet_query(PNDIS_PACKET Packet, PUINT Phys, PUINT Count, PNDIS_BUFFER *First,
                           PUINT Total, const char *function)
{
    struct site s = site_take();
    vlock_take();
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
    vlock_drop();
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
    vlock_take();
    bool refuse = freed_packet(Dst, function, s) || freed_packet(Src, function, s) ||
                  chain_has_freed(Dst->Private.Head, function, s) ||
                  chain_has_freed(Src->Private.Head, function, s);
    vlock_drop();
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
    vlock_take();
    struct rec *r = rec_add(p, K_MEMORY, NULL, s);
    if (r != NULL) {
        r->tag = Tag;
        r->length = Length;
        r->flags = Flags;
    }
    vlock_drop();
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
    vlock_take();
    struct rec *r = rec_find(VirtualAddress);
    if (r == NULL || r->kind != K_MEMORY) {
        vlock_drop();
        ULONG tag, len, flags;
        bool live;
        if (mem_info(VirtualAddress, &tag, &len, &flags, &live) && live)
            mem_free_raw(VirtualAddress);
        return;
    }
    if (r->state == S_QUARANTINED) {
        report_double_free(r, "NdisFreeMemory", s);
        vlock_drop();
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
    if (!guard_intact((unsigned char *)VirtualAddress + r->length))
        report_memory(report_new(R_MEMORY_OVERRUN, "NdisFreeMemory", VirtualAddress, NULL, s,
                                 "NdisFreeMemory of %p: the %u guard bytes after its %u bytes "
                                 "were overwritten",
                                 VirtualAddress, (unsigned)GUARD_BYTES, r->length),
                      r);
    mem_mark_dead(VirtualAddress);
    quarantine_object(r, VirtualAddress, r->length, "NdisFreeMemory", s);
    vlock_drop();
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
    vlock_take();
    for (size_t i = 0; i < table_cap; i++) {
        struct rec *r = table[i];
        if (r == NULL || r->state != S_LIVE || r->reported)
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
    vlock_drop();
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
    vlock_take();
    for (size_t i = 0; i < table_cap; i++) {
        struct rec *r = table[i];
        if (r == NULL || r->state != S_LIVE)
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
    vlock_drop();
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
    vlock_take();
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
            vlock_drop();
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
        table_clear();
    }
    __atomic_store_n(&verifier_on, now, __ATOMIC_RELEASE);
    __atomic_store_n(&__libndis_verifying, now, __ATOMIC_RELEASE);
    vlock_drop();
    reports_flush();
    return NDIS_STATUS_SUCCESS;
}

LIBNDIS_API BOOLEAN LibNdisVerifierEnabled(void) { return verifier_on != 0; }

LIBNDIS_API VOID LibNdisVerifierSetCallback(LIBNDIS_VERIFIER_CALLBACK Callback, PVOID Context)
{
    vlock_take();
    report_callback = Callback;
    report_context = Context;
    vlock_drop();
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
    vlock_take();
    fault_pool = PoolHandle;
    vlock_drop();
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
