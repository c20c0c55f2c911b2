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

/* scan_feed_file - every line of f into m (LF or CRLF files) */
static inline void scan_feed_file(struct filter_msg *m, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, f)) > 0) {
		size_t l = (size_t)n;

		if (line[l - 1] == '\n') { /* as on the wire: CRLF */
			l--;
			if (l && line[l - 1] == '\r')
				l--;
			scan_filter_ops.feed(m, line, l);
			scan_filter_ops.feed(m, "\r\n", 2);
		} else {
			scan_filter_ops.feed(m, line, l);
		}
	}
	free(line);
}

#endif /* MOAT_TOOLS_SCAN_FEED_H */
