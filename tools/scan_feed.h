/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_feed.h - the tools' way of feeding a message file to the content
 * gate: line by line, each line ending in CRLF as on the wire (moat-scan,
 * scan-unitbench).
 */
#ifndef MOAT_TOOLS_SCAN_FEED_H
#define MOAT_TOOLS_SCAN_FEED_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "scan.h"

/* scan_feed_file - every line of f into m (LF or CRLF files), each with
 * its CRLF in one call, as moat-smtpd's session.c feeds its filters */
static inline void scan_feed_file(struct filter_msg *m, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, f)) > 0) {
		size_t l = (size_t)n;

		if (line[l - 1] == '\n') { /* as on the wire: CRLF */
			if (l < 2 || line[l - 2] != '\r') {
				/* getline's buffer holds n + 1 bytes: one more */
				if (cap < l + 2) {
					char *x = realloc(line, l + 2);

					if (!x)
						break;
					line = x, cap = l + 2;
				}
				line[l - 1] = '\r';
				line[l++] = '\n';
			}
			scan_filter_ops.feed(m, line, l);
		} else {
			scan_filter_ops.feed(m, line, l);
		}
	}
	free(line);
}

#endif /* MOAT_TOOLS_SCAN_FEED_H */
