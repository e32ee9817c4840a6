/* SPDX-License-Identifier: MIT */
/* misuse_verifier.c - commits the one misuse argv[1] names (a verifier rule), or with argv[2] "ok"
 * the correct variant of the same code. test_verifier_objects.c runs it with LIBNDIS_VERIFY=1 and
 * no callback, to see the report on stderr and the rule's policy (abort or exit 0). Before the
 * offending call it prints that call's line on stdout (for LEAK: the allocation's line). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libndis.h>
#include <ndis.h>

static _Alignas(4096) unsigned char data[2 * 4096];
static bool ok;

static void mark(int line)
{
    printf("%d\n", line);
    fflush(stdout);
}

static void die(const char *what)
{
    fprintf(stdout, "misuse_verifier: %s failed\n", what);
    exit(3);
}

/* Inline on purpose: the verifier records the line of the call as the allocation site. */
#define NEW_BUFFER(b, pool, len)                                    \
    do {                                                            \
        NDIS_STATUS nb_st_;                                         \
        NdisAllocateBuffer(&nb_st_, &(b), (pool), data, (len));     \
        if (nb_st_ != NDIS_STATUS_SUCCESS)                          \
            die("NdisAllocateBuffer");                              \
    } while (0)

#define NEW_PACKET(p, pool)                                         \
    do {                                                            \
        NDIS_STATUS np_st_;                                         \
        NdisAllocatePacket(&np_st_, &(p), (pool));                  \
        if (np_st_ != NDIS_STATUS_SUCCESS)                          \
            die("NdisAllocatePacket");                              \
    } while (0)

static NDIS_HANDLE buffer_pool(void)
{
    NDIS_STATUS st;
    NDIS_HANDLE h;
    NdisAllocateBufferPool(&st, &h, 4);
    if (st != NDIS_STATUS_SUCCESS || h == NULL)
        die("NdisAllocateBufferPool");
    return h;
}

static NDIS_HANDLE packet_pool(void)
{
    NDIS_STATUS st;
    NDIS_HANDLE h;
    NdisAllocatePacketPool(&st, &h, 4, 0);
    if (st != NDIS_STATUS_SUCCESS || h == NULL)
        die("NdisAllocatePacketPool");
    return h;
}

/* Only the rule under test may report: quiet the one a preparation step would trip. */
static void quiet(const char *spec)
{
    if (LibNdisVerifierConfigure(spec) != NDIS_STATUS_SUCCESS)
        die("LibNdisVerifierConfigure");
}

static void leak(void)
{
    PNDIS_BUFFER b;
    mark(__LINE__ + 1);
    NEW_BUFFER(b, NULL, 16);
    if (ok)
        NdisFreeBuffer(b);
}

/* The descriptor stays out: POOL_FREED_IN_USE listed it, so no LEAK follows at exit. */
static void pool_freed_in_use(void)
{
    NDIS_HANDLE pool = buffer_pool();
    PNDIS_BUFFER b;
    NEW_BUFFER(b, pool, 16);
    if (ok)
        NdisFreeBuffer(b);
    mark(__LINE__ + 1);
    NdisFreeBufferPool(pool);
}

static void retired_pool_alloc(void)
{
    NDIS_HANDLE pool = buffer_pool();
    PNDIS_BUFFER b, b2;
    NDIS_STATUS st;
    quiet("POOL_FREED_IN_USE=off,RETIRED_POOL_FREE=off");
    NEW_BUFFER(b, pool, 16);
    if (!ok)
        NdisFreeBufferPool(pool);
    mark(__LINE__ + 1);
    NdisAllocateBuffer(&st, &b2, pool, data, 16);
    if (st == NDIS_STATUS_SUCCESS)
        NdisFreeBuffer(b2);
    NdisFreeBuffer(b);
    if (ok)
        NdisFreeBufferPool(pool);
}

static void retired_pool_free(void)
{
    NDIS_HANDLE pool = buffer_pool();
    PNDIS_BUFFER b;
    quiet("POOL_FREED_IN_USE=off");
    NEW_BUFFER(b, pool, 16);
    if (!ok)
        NdisFreeBufferPool(pool);
    mark(__LINE__ + 1);
    NdisFreeBuffer(b);
    if (ok)
        NdisFreeBufferPool(pool);
}

static void double_free(void)
{
    PNDIS_BUFFER b;
    NEW_BUFFER(b, NULL, 16);
    NdisFreeBuffer(b);
    mark(__LINE__ + 2);
    if (!ok)
        NdisFreeBuffer(b);
}

static void use_after_free(void)
{
    PNDIS_BUFFER b, c;
    NDIS_STATUS st;
    NEW_BUFFER(b, NULL, 16);
    if (!ok)
        NdisFreeBuffer(b);
    mark(__LINE__ + 1);
    NdisCopyBuffer(&st, &c, NULL, b, 0, 8);
    if (ok) {
        NdisFreeBuffer(c);
        NdisFreeBuffer(b);
    }
}

static void free_while_chained(void)
{
    NDIS_HANDLE pp = packet_pool();
    PNDIS_PACKET p;
    PNDIS_BUFFER b, u;
    NEW_PACKET(p, pp);
    NEW_BUFFER(b, NULL, 16);
    NdisChainBufferAtBack(p, b);
    if (ok)
        NdisUnchainBufferAtFront(p, &u);
    mark(__LINE__ + 1);
    NdisFreeBuffer(b);
    NdisReinitializePacket(p);
    NdisFreePacket(p);
    NdisFreePacketPool(pp);
}

static void packet_freed_with_buffers(void)
{
    NDIS_HANDLE pp = packet_pool();
    PNDIS_PACKET p;
    PNDIS_BUFFER b, u;
    NEW_PACKET(p, pp);
    NEW_BUFFER(b, NULL, 16);
    NdisChainBufferAtBack(p, b);
    if (ok)
        NdisUnchainBufferAtFront(p, &u);
    mark(__LINE__ + 1);
    NdisFreePacket(p);
    NdisFreeBuffer(b); /* the packet is gone: its buffer is not chained in a live one */
    NdisFreePacketPool(pp);
}

static void adjusted_length_not_restored(void)
{
    PNDIS_BUFFER b;
    NEW_BUFFER(b, NULL, 16);
    NdisAdjustBufferLength(b, 8);
    if (ok)
        NdisAdjustBufferLength(b, 16);
    mark(__LINE__ + 1);
    NdisFreeBuffer(b);
}

static void adjust_beyond_original(void)
{
    PNDIS_BUFFER b;
    NEW_BUFFER(b, NULL, 16);
    mark(__LINE__ + 1);
    NdisAdjustBufferLength(b, ok ? 16 : 17);
    NdisFreeBuffer(b);
}

static void stale_packet_counts(void)
{
    NDIS_HANDLE pp = packet_pool();
    PNDIS_PACKET p;
    PNDIS_BUFFER b, u;
    UINT total, len;
    NEW_PACKET(p, pp);
    NEW_BUFFER(b, NULL, 16);
    NdisChainBufferAtBack(p, b);
    NdisQueryPacket(p, NULL, NULL, NULL, &total);
    NdisAdjustBufferLength(b, 8);
    if (ok)
        NdisRecalculatePacketCounts(p);
    mark(__LINE__ + 1);
    NdisQueryPacketLength(p, &len);
    NdisAdjustBufferLength(b, 16);
    NdisUnchainBufferAtFront(p, &u);
    NdisFreePacket(p);
    NdisFreeBuffer(b);
    NdisFreePacketPool(pp);
}

static const struct {
    const char *rule;
    void (*commit)(void);
} misuses[] = {
    {"LEAK", leak},
    {"POOL_FREED_IN_USE", pool_freed_in_use},
    {"RETIRED_POOL_ALLOC", retired_pool_alloc},
    {"RETIRED_POOL_FREE", retired_pool_free},
    {"DOUBLE_FREE", double_free},
    {"USE_AFTER_FREE", use_after_free},
    {"FREE_WHILE_CHAINED", free_while_chained},
    {"PACKET_FREED_WITH_BUFFERS", packet_freed_with_buffers},
    {"ADJUSTED_LENGTH_NOT_RESTORED", adjusted_length_not_restored},
    {"ADJUST_BEYOND_ORIGINAL", adjust_beyond_original},
    {"STALE_PACKET_COUNTS", stale_packet_counts},
};

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "ok") != 0)) {
        fprintf(stdout, "usage: misuse_verifier RULE [ok]\n");
        return 2;
    }
    if (!LibNdisVerifierEnabled()) {
        fprintf(stdout, "misuse_verifier: run with %s=1\n", LIBNDIS_ENV_VERIFY);
        return 3;
    }
    ok = argc == 3;
    for (size_t i = 0; i < sizeof misuses / sizeof misuses[0]; i++) {
        if (strcmp(argv[1], misuses[i].rule) == 0) {
            misuses[i].commit();
            return 0;
        }
    }
    fprintf(stdout, "misuse_verifier: unknown rule %s\n", argv[1]);
    return 2;
}
