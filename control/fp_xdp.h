/* SPDX-License-Identifier: BSD-2-Clause */
/* fp_xdp.h - moat-controld's XDP fast-path glue (see fp_xdp.c). */
#ifndef MOAT_CONTROLD_FP_XDP_H
#define MOAT_CONTROLD_FP_XDP_H

#include <stddef.h>
#include <stdint.h>

struct cd;
struct moat_prefix;

/* fp_open - attach to [xdp] interfaces, adopt pinned maps; 0 or -1 + err */
int fp_open(struct cd *d, char *err, size_t errsz);
/* fp_ring_io - sampled verdict events are waiting */
void fp_ring_io(struct cd *d);
/* fp_detach - stop filtering: detach, remove pins */
int fp_detach(struct cd *d, char *err, size_t errsz);
/* fp_resync - adopt what the maps hold as the table's live image (after a
 * failed publish); 0 or -errno */
int fp_resync(struct cd *d);
/* fp_lookup - the action the fast path's maps give one address */
int fp_lookup(struct cd *d, const struct moat_prefix *addr, uint32_t *action);
/* fp_close - release userspace handles; filtering goes on */
void fp_close(struct cd *d);

#endif /* MOAT_CONTROLD_FP_XDP_H */
