/* SPDX-License-Identifier: BSD-2-Clause */
/* livelk.h - live DNSBL lookups for `lookup` (see livelk.c). */
#ifndef MOAT_CONTROLD_LIVELK_H
#define MOAT_CONTROLD_LIVELK_H

#include <stddef.h>
#include <stdint.h>

#include "live.h"

struct cd;
struct cd_tag;

/* livelk_open - (re)create the c-ares channel for [zone] type = live */
int livelk_open(struct cd *d, char *err, size_t errsz);
void livelk_close(void);
/* livelk_active - 1 when live zones are configured */
int livelk_active(void);
/* livelk_lookup - look addr up in every live zone; cb runs once */
int livelk_lookup(const struct moat_prefix *addr, moat_live_done_cb cb, void *arg);
void livelk_io(struct cd_tag *t, uint32_t events);
void livelk_tick(void);

#endif /* MOAT_CONTROLD_LIVELK_H */
