/* SPDX-License-Identifier: MIT */
/* ntddk.h - drivers that include <ntddk.h> instead of <wdm.h> get the same kernel subset. */
#ifndef LIBNDIS_NTDDK_H
#define LIBNDIS_NTDDK_H
#include "wdm.h"
#endif
