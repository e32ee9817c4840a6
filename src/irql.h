/* SPDX-License-Identifier: MIT */
/* irql.h - the emulated per-thread IRQL (decision 22), for the modules that check or change it. */
#ifndef LIBNDIS_IRQL_H
#define LIBNDIS_IRQL_H

#include "wdm.h"

extern __thread KIRQL irql_current __attribute__((tls_model("initial-exec")));

#endif /* LIBNDIS_IRQL_H */
