/* SPDX-License-Identifier: MIT */
/* pool.c - the slow paths of the object pool (pool.h states its rules): thread slots, cache
 * creation, batch refill and flush against the depot, growth in slabs, emptying every cache when
 * a limited pool looks exhausted, retirement and the release of a pool's storage. */
#include "pool.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#endif

__thread unsigned pool_tls_slot __attribute__((tls_model("initial-exec")));
struct pool_cache pool_no_cache = {.count = POOL_STEAL};
/* Whether threads get caches at all: only where the stealer's half of the handshake works. */
static bool pool_caches_enabled;

enum {
    POOL_ALIGN = 64,
    POOL_PREALLOC_MAX = 65536, /* beyond this, storage for a declared count comes on demand */
    POOL_GROW_MIN = 32,
    POOL_GROW_MAX = 4096,
};

struct pool_slab {
    struct pool_slab *next;
};
#define POOL_SLAB_HEADER POOL_ALIGN /* keeps the objects behind it cache-line aligned */

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* ---- asymmetric fence ---- */

#if defined(__linux__) && defined(SYS_membarrier) && !POOL_TSAN
static bool membarrier_register(void)
{
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        return false;
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

static void heavy_fence(void)
{
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        /* Registered at start-up (and again after fork), so this cannot fail; going on
         * without the barrier could hand one object to two threads. */
        fputs("libndis: membarrier failed after registration\n", stderr);
        abort();
    }
}

/* A forked child may start with a fresh registration state: register again. Caches it
 * inherited cannot be stolen from without it, hence the abort in heavy_fence. */
static void pool_after_fork_child(void)
{
    if (pool_caches_enabled)
        pool_caches_enabled = membarrier_register();
}
#elif POOL_TSAN
/* Owners store `active` sequentially consistently: the stealer's own seq_cst store suffices. */
static bool membarrier_register(void) { return true; }
static void heavy_fence(void) {}
static void pool_after_fork_child(void) {}
#else
static bool membarrier_register(void) { return false; }
static void heavy_fence(void) {}
static void pool_after_fork_child(void) {}
#endif

/* ---- thread slots ---- */

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static bool slot_used[POOL_MAX_SLOTS];
static pthread_key_t slot_key;
static __thread bool slot_tried __attribute__((tls_model("initial-exec")));

/* The caches of a released slot keep their objects: the next thread given the slot inherits
 * them, and a stealer can always empty them, so nothing is stranded. */
static void slot_release(void *arg)
{
    unsigned slot = (unsigned)(uintptr_t)arg;
    pthread_mutex_lock(&slot_lock);
    slot_used[slot] = false;
    pthread_mutex_unlock(&slot_lock);
    pool_tls_slot = 0;
}

static unsigned slot_assign(void)
{
    if (slot_tried)
        return pool_tls_slot;
    slot_tried = true;
    unsigned found = 0;
    pthread_mutex_lock(&slot_lock);
    for (unsigned s = 1; s < POOL_MAX_SLOTS; s++) {
        if (!slot_used[s]) {
            slot_used[s] = true;
            found = s;
            break;
        }
    }
    pthread_mutex_unlock(&slot_lock);
    if (found != 0) {
        pool_tls_slot = found;
        pthread_setspecific(slot_key, (void *)(uintptr_t)found);
    }
    return found;
}

__attribute__((constructor)) static void pool_process_init(void)
{
    pthread_key_create(&slot_key, slot_release);
    /* LIBNDIS_NO_THREAD_CACHE=1 sends every thread through the depot: the exact, locked path
     * that hosts without membarrier take, available for testing it anywhere. */
    const char *off = getenv("LIBNDIS_NO_THREAD_CACHE");
    if (!(off && off[0] == '1'))
        pool_caches_enabled = membarrier_register();
    pthread_atfork(NULL, NULL, pool_after_fork_child);
}

/* ---- caches (pool lock held throughout) ---- */

static unsigned cache_objects(struct pool_cache *c)
{
    return atomic_load_explicit(&c->count, memory_order_relaxed) & ~POOL_STEAL;
}

static struct pool_cache *cache_of_locked(struct pool *p, unsigned slot)
{
    if (slot == 0 || !pool_caches_enabled)
        return NULL;
    struct pool_cache *c = atomic_load_explicit(&p->caches[slot], memory_order_relaxed);
    if (c != &pool_no_cache) /* a flag still raised under the lock means a retired pool */
        return atomic_load_explicit(&c->count, memory_order_relaxed) & POOL_STEAL ? NULL : c;
    c = aligned_alloc(POOL_ALIGN, round_up(sizeof(*c), POOL_ALIGN));
    if (c == NULL)
        return NULL; /* this thread simply works on the depot */
    atomic_init(&c->active, 0);
    atomic_init(&c->count, p->retired ? POOL_STEAL : 0u);
    atomic_store_explicit(&p->caches[slot], c, memory_order_release);
    return c;
}

static bool caches_hold_objects(struct pool *p)
{
    for (unsigned s = 1; s < POOL_MAX_SLOTS; s++) {
        struct pool_cache *c = atomic_load_explicit(&p->caches[s], memory_order_relaxed);
        if (c != &pool_no_cache && cache_objects(c) != 0)
            return true;
    }
    return false;
}

/* Raises the steal flag of every cache that does not show it; how many it had to raise. */
static unsigned caches_raise_locked(struct pool *p)
{
    unsigned raised = 0;
    for (unsigned s = 1; s < POOL_MAX_SLOTS; s++) {
        struct pool_cache *c = atomic_load_explicit(&p->caches[s], memory_order_relaxed);
        if (c != &pool_no_cache &&
            !(atomic_load_explicit(&c->count, memory_order_relaxed) & POOL_STEAL)) {
            atomic_fetch_or_explicit(&c->count, POOL_STEAL, memory_order_seq_cst);
            raised++;
        }
    }
    return raised;
}

/* The stealer's half of the handshake: after it, no owner is inside a fast path and every owner
 * that enters one will see the flag and come to the lock instead. An owner that was inside one
 * when the flag went up may have stored its count over the flag; seeing the flag still up once
 * every owner has left is what proves it took. */
static void caches_stop_locked(struct pool *p)
{
    while (caches_raise_locked(p) != 0) {
        heavy_fence();
        for (unsigned s = 1; s < POOL_MAX_SLOTS; s++) {
            struct pool_cache *c = atomic_load_explicit(&p->caches[s], memory_order_relaxed);
            if (c == &pool_no_cache)
                continue;
            while (atomic_load_explicit(&c->active, memory_order_seq_cst))
                sched_yield();
        }
    }
}

/* Every cache stopped: the flags stay raised. */
static void caches_drain_locked(struct pool *p)
{
    for (unsigned s = 1; s < POOL_MAX_SLOTS; s++) {
        struct pool_cache *c = atomic_load_explicit(&p->caches[s], memory_order_relaxed);
        if (c == &pool_no_cache)
            continue;
        unsigned n = cache_objects(c);
        memcpy(p->depot + p->depot_count, c->objs, n * sizeof(void *));
        p->depot_count += n;
        atomic_store_explicit(&c->count, POOL_STEAL, memory_order_relaxed);
    }
}

static void caches_restart_locked(struct pool *p)
{
    for (unsigned s = 1; s < POOL_MAX_SLOTS; s++) {
        struct pool_cache *c = atomic_load_explicit(&p->caches[s], memory_order_relaxed);
        if (c != &pool_no_cache)
            atomic_fetch_and_explicit(&c->count, ~POOL_STEAL, memory_order_seq_cst);
    }
}

/* ---- storage ---- */

static bool depot_reserve_locked(struct pool *p, uint32_t total)
{
    if (total <= p->depot_cap)
        return true;
    uint32_t cap = p->depot_cap ? p->depot_cap : 64;
    while (cap < total)
        cap = cap > UINT32_MAX / 2 ? total : cap * 2;
    void **d = realloc(p->depot, (size_t)cap * sizeof(void *));
    if (d == NULL)
        return false;
    p->depot = d;
    p->depot_cap = cap;
    return true;
}

static bool pool_add_slab_locked(struct pool *p, uint32_t n)
{
    if (n == 0 || !depot_reserve_locked(p, p->created + n))
        return false;
    size_t bytes = POOL_SLAB_HEADER + (size_t)n * p->obj_size;
    struct pool_slab *slab = aligned_alloc(POOL_ALIGN, round_up(bytes, POOL_ALIGN));
    if (slab == NULL)
        return false;
    slab->next = p->slabs;
    p->slabs = slab;
    char *base = (char *)slab + POOL_SLAB_HEADER;
    /* Pushed highest first so that a fresh pool hands out ascending addresses. */
    for (uint32_t i = n; i-- > 0;) {
        void *obj = base + (size_t)i * p->obj_size;
        if (p->ops->obj_init != NULL)
            p->ops->obj_init(p, obj);
        p->depot[p->depot_count++] = obj;
    }
    p->created += n;
    return true;
}

/* Unbounded pools grow in roughly doubling slabs. A bounded pool (strict buffer pool, packet
 * pool) past its declared count makes its overflow descriptors one at a time, on demand. */
static uint32_t pool_growth(const struct pool *p)
{
    uint32_t room = p->limit - p->created;
    if (p->limit != POOL_UNLIMITED && p->created >= p->declared)
        return room < 1 ? room : 1;
    uint32_t want = p->created < POOL_GROW_MIN ? POOL_GROW_MIN : p->created;
    if (want > POOL_GROW_MAX)
        want = POOL_GROW_MAX;
    if (p->limit != POOL_UNLIMITED && want > p->declared - p->created)
        want = p->declared - p->created;
    return want < room ? want : room;
}

static void caches_steal_locked(struct pool *p)
{
    caches_stop_locked(p);
    caches_drain_locked(p);
    caches_restart_locked(p);
}

/* Makes the depot non-empty if the pool may still hand anything out. An unbounded pool grows
 * rather than interrupt other threads; a bounded one past its declared count first takes back
 * what other threads' caches hold, so that overflow is made only when everything is in use.
 * The scan of cache counts that decides whether to bother is racy (an object can move between
 * two caches behind it), so only a full stop may conclude that the pool is exhausted. */
static bool depot_refill_locked(struct pool *p)
{
    if (p->limit != POOL_UNLIMITED && p->created >= p->declared && caches_hold_objects(p))
        caches_steal_locked(p);
    if (p->depot_count == 0 && p->created < p->limit)
        pool_add_slab_locked(p, pool_growth(p));
    if (p->depot_count == 0)
        caches_steal_locked(p);
    return p->depot_count != 0;
}

static void pool_release(struct pool *p)
{
    if (p->ops->on_release != NULL)
        p->ops->on_release(p);
    for (struct pool_slab *s = p->slabs, *next; s != NULL; s = next) {
        next = s->next;
        free(s);
    }
    for (unsigned s = 0; s < POOL_MAX_SLOTS; s++) {
        struct pool_cache *c = atomic_load_explicit(&p->caches[s], memory_order_relaxed);
        if (c != &pool_no_cache)
            free(c);
    }
    free(p->depot);
    pthread_mutex_destroy(&p->lock);
    if (p->live_counter != NULL)
        atomic_fetch_sub_explicit(p->live_counter, 1, memory_order_relaxed);
    free(p);
}

/* ---- public (internal) entry points ---- */

struct pool *pool_create(const struct pool_ops *ops, uint32_t obj_size, uint32_t prealloc,
                         uint32_t limit, _Atomic unsigned *live_counter)
{
    size_t bytes = round_up(sizeof(struct pool), POOL_ALIGN) + round_up(ops->layer_bytes, POOL_ALIGN);
    struct pool *p = aligned_alloc(POOL_ALIGN, bytes);
    if (p == NULL)
        return NULL;
    memset(p, 0, bytes);
    for (unsigned s = 0; s < POOL_MAX_SLOTS; s++)
        atomic_init(&p->caches[s], &pool_no_cache);
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return NULL;
    }
    p->magic = ops->magic;
    p->ops = ops;
    p->obj_size = (uint32_t)round_up(obj_size, 16);
    p->limit = limit;
    p->declared = prealloc;
    p->live_counter = live_counter;
    uint32_t now = prealloc < limit ? prealloc : limit;
    if (now > POOL_PREALLOC_MAX)
        now = POOL_PREALLOC_MAX;
    if (now != 0 && !pool_add_slab_locked(p, now)) {
        p->live_counter = NULL;
        pool_release(p);
        return NULL;
    }
    if (live_counter != NULL)
        atomic_fetch_add_explicit(live_counter, 1, memory_order_relaxed);
    return p;
}

void *pool_get_slow(struct pool *p)
{
    unsigned slot = pool_tls_slot ? pool_tls_slot : slot_assign();
    void *obj = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->retired || (p->depot_count == 0 && !depot_refill_locked(p)))
        goto out;
    obj = p->depot[--p->depot_count];
    struct pool_cache *c = cache_of_locked(p, slot);
    if (c != NULL) {
        /* Under the lock no stealer is running, and a live pool's caches have their flags
         * down, so the owner may fill its cache directly. */
        unsigned n = atomic_load_explicit(&c->count, memory_order_relaxed);
        unsigned k = POOL_CACHE_BATCH;
        if (k > p->depot_count)
            k = p->depot_count;
        if (k > POOL_CACHE_SIZE - n)
            k = POOL_CACHE_SIZE - n;
        p->depot_count -= k;
        memcpy(c->objs + n, p->depot + p->depot_count, k * sizeof(void *));
        atomic_store_explicit(&c->count, n + k, memory_order_relaxed);
    }
out:
    pthread_mutex_unlock(&p->lock);
    return obj;
}

void pool_put_slow(struct pool *p, void *obj)
{
    unsigned slot = pool_tls_slot ? pool_tls_slot : slot_assign();
    bool release = false;
    pthread_mutex_lock(&p->lock);
    struct pool_cache *c = p->retired ? NULL : cache_of_locked(p, slot);
    if (c != NULL) {
        unsigned n = atomic_load_explicit(&c->count, memory_order_relaxed);
        if (n == POOL_CACHE_SIZE) {
            /* Flush the oldest half: the newest pointers are the ones still warm in cache. */
            memcpy(p->depot + p->depot_count, c->objs, POOL_CACHE_BATCH * sizeof(void *));
            p->depot_count += POOL_CACHE_BATCH;
            n -= POOL_CACHE_BATCH;
            memmove(c->objs, c->objs + POOL_CACHE_BATCH, n * sizeof(void *));
        }
        c->objs[n] = obj;
        atomic_store_explicit(&c->count, n + 1, memory_order_relaxed);
    } else {
        p->depot[p->depot_count++] = obj;
        release = p->retired && p->depot_count == p->created;
    }
    pthread_mutex_unlock(&p->lock);
    if (release)
        pool_release(p);
}

bool pool_retire(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    __atomic_store_n(&p->retired, true, __ATOMIC_RELEASE);
    caches_stop_locked(p); /* the flags stay raised: every later put goes to the depot */
    caches_drain_locked(p);
    bool release = p->depot_count == p->created;
    pthread_mutex_unlock(&p->lock);
    if (release)
        pool_release(p);
    return release;
}

void pool_stats(struct pool *p, struct pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    uint32_t free_now = p->depot_count;
    for (unsigned s = 1; s < POOL_MAX_SLOTS; s++) {
        struct pool_cache *c = atomic_load_explicit(&p->caches[s], memory_order_relaxed);
        free_now += cache_objects(c); /* no cache: 0 */
    }
    out->declared = p->declared;
    out->created = p->created;
    /* With other threads running, an object moving between two caches can be counted twice. */
    out->in_use = free_now < p->created ? p->created - free_now : 0;
    out->limit = p->limit;
    out->retired = p->retired;
    pthread_mutex_unlock(&p->lock);
}

/* Read without the lock: a flag that only ever goes from false to true. */
bool pool_is_retired(struct pool *p) { return __atomic_load_n(&p->retired, __ATOMIC_ACQUIRE); }

bool pool_set_limit(struct pool *p, uint32_t limit)
{
    pthread_mutex_lock(&p->lock);
    bool ok = !p->retired;
    if (ok && p->created > limit) {
        /* Storage never shrinks, but free objects beyond the limit can leave circulation: they
         * stay in their slab (released with the pool) and are no longer counted as created. */
        uint32_t surplus = p->created - limit;
        /* The scan of cache counts is racy (an object can move between two caches behind it),
         * so only a full stop may conclude that too few objects are free. */
        if (p->depot_count < surplus)
            caches_steal_locked(p);
        ok = p->depot_count >= surplus;
        if (ok) {
            p->depot_count -= surplus;
            p->created -= surplus;
        }
    }
    if (ok)
        p->limit = limit;
    pthread_mutex_unlock(&p->lock);
    return ok;
}
