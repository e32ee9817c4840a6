/* SPDX-License-Identifier: MIT */
/* pool.h - fixed-size object pools with a per-thread cache of object pointers in front of a
 * shared depot. Buffer descriptors and packets are both served from here. The fast paths are
 * inline so that NdisAllocateBuffer/NdisFreeBuffer compile to one straight run of code.
 *
 * Rules, stated once:
 * - Each (pool, thread slot) has a cache owned by that thread. The owner touches it with plain
 *   loads and stores only; no lock, no atomic read-modify-write, no write into the objects.
 * - Anyone else who must see or empty a cache (a thread that found a limited pool exhausted, or
 *   the pool being retired) takes the pool lock, raises the POOL_STEAL bit of the cache's count
 *   and waits for `active` to drop: an asymmetric Dekker handshake. The owner's half costs a
 *   compiler barrier, because membarrier(2) supplies the missing hardware fence only when a
 *   stealer asks for it. Under ThreadSanitizer, which cannot see membarrier, the owner uses a
 *   sequentially consistent store instead. Where membarrier is unavailable no cache is ever
 *   made: every thread works on the depot under the lock, slower but exact.
 * - The steal flag lives in the count word so that one load and one compare tell the owner
 *   both that the cache is its own and that it holds (or has room for) an object. The price is
 *   paid by the stealer: an owner that read the word just before the flag went up stores its new
 *   count over it, so the stealer raises the flag again until it survives a quiet owner.
 * - Objects move between caches and depot in batches, under the pool lock.
 * - A pool never creates more than `limit` objects, so a pool of N never hands out N+1, and an
 *   allocation fails only after every cache has been emptied into the depot. */
#ifndef LIBNDIS_POOL_H
#define LIBNDIS_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define POOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define POOL_TSAN 1
#endif
#endif
#ifndef POOL_TSAN
#define POOL_TSAN 0
#endif

#define POOL_LIKELY(x) __builtin_expect(!!(x), 1)
#define POOL_UNLIKELY(x) __builtin_expect(!!(x), 0)

enum {
    POOL_MAX_SLOTS = 128,   /* threads with a private cache; more threads use the depot directly */
    POOL_CACHE_SIZE = 64,   /* pointers a cache holds */
    POOL_CACHE_BATCH = 32,  /* pointers moved per refill or flush */
    POOL_UNLIMITED = UINT32_MAX,
};

/* Set in a cache's count while someone else wants the cache: every fast path then sees a count
 * out of range and takes the slow path. */
#define POOL_STEAL 0x80000000u

struct pool_cache {
    _Atomic unsigned active; /* owner is inside a fast path */
    _Atomic unsigned count;  /* objects held, | POOL_STEAL; written by the owner, or under the lock */
    void *objs[POOL_CACHE_SIZE];
};

struct pool_slab;
struct pool;

/* What the owning layer (buffers, packets) tells the pool about itself. */
struct pool_ops {
    uint32_t magic;                                /* tells a layer's handles from others' */
    size_t layer_bytes;                            /* per-pool data, see pool_layer_data() */
    void (*obj_init)(struct pool *pool, void *obj); /* once per object, when storage is made */
    void (*on_release)(struct pool *pool);         /* before the storage goes; may be NULL */
};

struct pool {
    /* Read by every fast path; written only at creation (caches: once per slot). First, so that
     * the cache of a slot is one indexed load from the handle. */
    _Atomic(struct pool_cache *) caches[POOL_MAX_SLOTS]; /* &pool_no_cache until made; never
                                                           * made for slot 0 */
    uint32_t magic;                 /* which layer owns the pool (buffer, packet, ...) */
    uint32_t obj_size;

    /* Everything below is protected by `lock`. */
    pthread_mutex_t lock __attribute__((aligned(64)));
    void **depot;                   /* free objects not in any cache */
    uint32_t depot_count;
    uint32_t depot_cap;
    uint32_t created;               /* objects with storage */
    uint32_t limit;                 /* at most this many objects ever exist */
    uint32_t declared;              /* the count the driver asked for */
    bool retired;
    struct pool_slab *slabs;
    const struct pool_ops *ops;
    _Atomic unsigned *live_counter; /* decremented when the pool's storage is released */
};

/* The owning layer's own per-pool data, `layer_bytes` given at creation, stored right after the
 * pool and released with it. */
static inline void *pool_layer_data(struct pool *pool)
{
    return (char *)pool + ((sizeof(struct pool) + 63) & ~(size_t)63);
}

/* Which slot this thread's caches live in; 0 until the thread's first slow path. */
extern __thread unsigned pool_tls_slot __attribute__((tls_model("initial-exec")));

/* Every slot without a cache of its own points here: its count is always POOL_STEAL, so the fast
 * paths need no NULL test, only the range test they make anyway. */
extern struct pool_cache pool_no_cache;

void *pool_get_slow(struct pool *pool);
void pool_put_slow(struct pool *pool, void *obj);

/* Creates a pool of `prealloc` objects that may grow to `limit`. NULL when out of memory. */
struct pool *pool_create(const struct pool_ops *ops, uint32_t obj_size, uint32_t prealloc,
                         uint32_t limit, _Atomic unsigned *live_counter);
/* True once the pool has been retired (its handle freed while objects were out). */
bool pool_is_retired(struct pool *pool);
/* Frees the pool now if nothing is out, else retires it: gets fail, puts still work, and the
 * storage goes with the last put. Returns true when the storage was released now. */
bool pool_retire(struct pool *pool);
struct pool_stats {
    uint32_t declared, created, in_use, limit;
    bool retired;
};
/* A consistent snapshot; in_use is exact when no other thread is using the pool. */
void pool_stats(struct pool *pool, struct pool_stats *out);
/* Changes the limit; fails (false) for a retired pool or when more than `limit` objects are
 * handed out. Free objects beyond the new limit are parked: kept, never handed out again. */
bool pool_set_limit(struct pool *pool, uint32_t limit);

static inline void pool_cache_enter(struct pool_cache *c)
{
#if POOL_TSAN
    atomic_store_explicit(&c->active, 1, memory_order_seq_cst);
#else
    atomic_store_explicit(&c->active, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

static inline void pool_cache_leave(struct pool_cache *c)
{
    atomic_store_explicit(&c->active, 0, memory_order_release);
}

static inline struct pool_cache *pool_my_cache(struct pool *pool)
{
    return atomic_load_explicit(&pool->caches[pool_tls_slot], memory_order_acquire);
}

/* The owner's read of its count. seq_cst costs nothing more than relaxed on x86 and is what makes
 * the handshake hold under ThreadSanitizer, where no membarrier stands behind the owner. */
static inline unsigned pool_cache_count(struct pool_cache *c)
{
    return atomic_load_explicit(&c->count, memory_order_seq_cst);
}

/* The fast path alone: false whenever the slow path would be needed, so that callers can keep
 * the fast path a leaf and hand everything else to one tail call. */
static inline bool pool_try_get(struct pool *pool, void **out)
{
    struct pool_cache *c = pool_my_cache(pool);
    pool_cache_enter(c);
    unsigned n = pool_cache_count(c);
    /* One compare: an empty cache wraps to UINT_MAX, a raised steal flag is above the size. */
    bool ok = POOL_LIKELY(n - 1 < POOL_CACHE_SIZE);
    if (ok) {
        *out = c->objs[n - 1];
        atomic_store_explicit(&c->count, n - 1, memory_order_relaxed);
    }
    pool_cache_leave(c);
    return ok;
}

static inline void *pool_get(struct pool *pool)
{
    void *obj;
    return pool_try_get(pool, &obj) ? obj : pool_get_slow(pool);
}

static inline void pool_put(struct pool *pool, void *obj)
{
    struct pool_cache *c = pool_my_cache(pool);
    pool_cache_enter(c);
    unsigned n = pool_cache_count(c);
    if (POOL_UNLIKELY(n >= POOL_CACHE_SIZE)) { /* full, or the steal flag is up */
        pool_cache_leave(c);
        pool_put_slow(pool, obj);
        return;
    }
    c->objs[n] = obj;
    atomic_store_explicit(&c->count, n + 1, memory_order_relaxed);
    pool_cache_leave(c);
}

#endif /* LIBNDIS_POOL_H */
