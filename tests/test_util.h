/* SPDX-License-Identifier: MIT */
/* test_util.h - shared helper for the cmocka tests: page-aligned backing memory, so a test can
 * place data at a chosen in-page offset and predict StartVa, ByteOffset and span pages exactly. */
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

#endif /* LIBNDIS_TEST_UTIL_H */
