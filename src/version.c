/* SPDX-License-Identifier: MIT */
/* version.c - the version of the library actually loaded, for programs built against another. */
#include "libndis.h"

#define LIBNDIS_STR2(x) #x
#define LIBNDIS_STR(x) LIBNDIS_STR2(x)

LIBNDIS_API const char *libndis_version(void)
{
    return LIBNDIS_STR(LIBNDIS_VERSION_MAJOR) "." LIBNDIS_STR(LIBNDIS_VERSION_MINOR) "." LIBNDIS_STR(
        LIBNDIS_VERSION_PATCH);
}
