/* SPDX-License-Identifier: MIT */
/* fuzz_input.h - what the libFuzzer targets share: a reader that decodes any input (past its end
 * every read yields zeros) and CHECK, which names the target and traps so that the fuzzer keeps
 * the input. Define FUZZ_TARGET_NAME before including. */
#ifndef LIBNDIS_FUZZ_INPUT_H
#define LIBNDIS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static inline uint8_t get8(reader *r)
{
    if (r->left == 0)
        return 0;
    r->left--;
    return *r->p++;
}

static inline uint32_t get16(reader *r)
{
    uint32_t lo = get8(r);
    return lo | (uint32_t)get8(r) << 8;
}

static inline uint32_t get32(reader *r)
{
    uint32_t lo = get16(r);
    return lo | get16(r) << 16;
}

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            fprintf(stderr, FUZZ_TARGET_NAME ": " __VA_ARGS__);  \
            fputc('\n', stderr);                                 \
            __builtin_trap();                                    \
        }                                                        \
    } while (0)

#endif /* LIBNDIS_FUZZ_INPUT_H */
