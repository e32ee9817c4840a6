/* SPDX-License-Identifier: MIT */
/* live_table.h - the concurrency tests' "never live twice" check: a lock-free set keyed by object
 * address, in which every thread marks what it was handed out and what it gives back. Two
 * holders of one descriptor or packet show up as a second mark while already live. */
#ifndef LIBNDIS_LIVE_TABLE_H
#define LIBNDIS_LIVE_TABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIVE_TABLE_BITS 16
#define LIVE_TABLE_SIZE (1u << LIVE_TABLE_BITS)

typedef struct live_slot {
    _Atomic uintptr_t key;
    atomic_int live;
} live_slot;

static live_slot live_table[LIVE_TABLE_SIZE];
static atomic_uint live_table_keys; /* addresses given an entry since live_table_forget() */

/* The entry of `obj`, made on first sight; NULL when the table is full. */
static inline live_slot *live_slot_of(const void *obj)
{
    uintptr_t key = (uintptr_t)obj;
    uint64_t h = ((uint64_t)key >> 4) * 0x9E3779B97F4A7C15ull;
    for (uint32_t i = 0; i < LIVE_TABLE_SIZE; i++) {
        live_slot *s = &live_table[(uint32_t)((h >> (64 - LIVE_TABLE_BITS)) + i) &
                                   (LIVE_TABLE_SIZE - 1)];
        uintptr_t k = atomic_load(&s->key);
        if (k == key)
            return s;
        if (k != 0)
            continue;
        uintptr_t expected = 0;
        if (atomic_compare_exchange_strong(&s->key, &expected, key)) {
            atomic_fetch_add_explicit(&live_table_keys, 1, memory_order_relaxed);
            return s;
        }
        if (expected == key)
            return s;
    }
    return NULL;
}

/* Marks `obj` live (handed out) or dead (given back). NULL when that is a consistent change,
 * otherwise what went wrong, for the caller's report. */
static inline const char *live_mark(const void *obj, bool live)
{
    live_slot *s = live_slot_of(obj);
    if (s == NULL)
        return "side table full";
    if (atomic_exchange(&s->live, live ? 1 : 0) != (live ? 0 : 1))
        return live ? "handed out while still live" : "freed but not marked live";
    return NULL;
}

/* How many entries are marked live. */
static inline unsigned long live_table_count(void)
{
    unsigned long n = 0;
    for (uint32_t i = 0; i < LIVE_TABLE_SIZE; i++)
        n += atomic_load(&live_table[i].live) != 0;
    return n;
}

/* Empties the table; the address of an entry still live, or 0. Only at a pause, when nobody
 * holds anything. */
static inline uintptr_t live_table_forget(void)
{
    uintptr_t still_live = 0;
    atomic_store(&live_table_keys, 0);
    for (uint32_t i = 0; i < LIVE_TABLE_SIZE; i++) {
        if (atomic_load(&live_table[i].live) && still_live == 0)
            still_live = atomic_load(&live_table[i].key);
        atomic_store(&live_table[i].live, 0);
        atomic_store(&live_table[i].key, 0);
    }
    return still_live;
}

#endif /* LIBNDIS_LIVE_TABLE_H */
