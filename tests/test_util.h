/* SPDX-License-Identifier: MIT */
/* test_util.h - shared helpers for the cmocka tests: page-aligned backing memory, so a test can
 * place data at a chosen in-page offset and predict StartVa, ByteOffset and span pages exactly;
 * the seeded tests' random numbers; heap accounting where the C library offers it. */
#ifndef LIBNDIS_TEST_UTIL_H
#define LIBNDIS_TEST_UTIL_H

#include <stdint.h>
#include <stdlib.h>

#define TEST_PAGE 4096u

/* Page-aligned block of at least Bytes bytes, filled with a position-dependent pattern so that
 * a descriptor pointing at the wrong place is caught by comparing data, not only addresses. */
static inline unsigned char *test_backing_alloc(size_t Bytes)
{
    size_t rounded = (Bytes + TEST_PAGE - 1) / TEST_PAGE * TEST_PAGE;
    unsigned char *p = aligned_alloc(TEST_PAGE, rounded ? rounded : TEST_PAGE);
    if (p != NULL) {
        for (size_t i = 0; i < Bytes; i++)
            p[i] = (unsigned char)(i * 131u + (i >> 8) + 7u);
    }
    return p;
}

static inline void test_backing_free(void *Block)
{
    free(Block);
}

/* splitmix64: tiny, good enough, and the same sequence on every libc, so a seed printed by a
 * failing run replays it anywhere. */
static inline uint64_t test_splitmix64(uint64_t *State)
{
    uint64_t z = (*State += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform enough in [0, N); 0 when N is 0. */
static inline uint32_t test_below(uint64_t *State, uint64_t N)
{
    return N == 0 ? 0 : (uint32_t)(test_splitmix64(State) % N);
}

/* Heap accounting proves "released now" / "not preallocated" in plain builds. A sanitizer
 * replaces malloc, so glibc's counters then say nothing; those builds rely on LeakSanitizer. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define TEST_UNDER_SANITIZER 1
#endif
#endif
#if !defined(TEST_UNDER_SANITIZER) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define HAVE_HEAP_BYTES 1
static inline size_t test_heap_bytes(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}
#endif

#endif /* LIBNDIS_TEST_UTIL_H */
