/* fuzz_scan_filter.c - the whole content filter (filter_ops) on hostile
 * messages in random pieces: every scope, exists rules, a meta, a reject
 * rule that stops scanning early; no crash, no sanitizer report, a verdict
 * whose strings are terminated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ready;

/* setup - load a small rule set of every kind once */
static void setup(void)
{
	char dir[] = "/tmp/moat-fuzz-scan-XXXXXX", path[64], sa[80];
	char err[512];
	FILE *f;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/r.rules", dir);
	snprintf(sa, sizeof(sa), "%s/50_f.cf", dir);
	f = fopen(path, "w");
	fputs("threshold 3\n"
	      "R1 raw score 1 /--[a-z]{1,3}--/\n"
	      "H1 header:Subject score 1 /^a.{0,3}b$/i\n"
	      "H2 header score 1 /=\\?utf-8\\?/i\n"
	      "B1 body score 1 /hello\\s+world/is\n"
	      "B2 body score -1 /\\x00\\xff/\n"
	      "STOP body reject \"stop\" /STOPNOW/\n", f);
	fclose(f);
	f = fopen(sa, "w");
	fputs("body __X /abc/\nheader __E exists:X-Y\nheader __N To !~ /@/\n"
	      "meta M1 (__X || __E) && !__N\nscore M1 1.5\n", f);
	fclose(f);
	struct scan_config c = { .rules_path = path, .sa_dir = dir,
				 .limits = { .max_depth = 3, .max_parts = 8 } };
	if (scan_init(&c, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_scan_filter: %s\n", err);
		abort();
	}
	unlink(path);
	unlink(sa);
	rmdir(dir);
	if (scan_filter_ops.thread_init() != 0)
		abort();
	ready = 1;
}

static const char *const prefixes[] = {
	"Subject: a b\r\nX-Y: 1\r\nTo: x\r\n",
	"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n",
	"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--q\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
	"",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[8192];
	struct filter_verdict v;
	struct filter_msg *m;
	size_t step, plen, len, stop;

	if (!ready)
		setup();
	if (size < 3)
		return 0;
	const char *pre = prefixes[data[0] % 4];
	step = (size_t)data[1] % 97 + 1;
	stop = data[2] & 1 ? (size_t)-1 : (size_t)data[2] * 13; /* close mid-way */
	plen = strlen(pre);
	len = plen + size - 3 < sizeof(buf) ? plen + size - 3 : sizeof(buf);
	memcpy(buf, pre, plen);
	memcpy(buf + plen, data + 3, len - plen);
	for (size_t i = plen; i < len; i++)
		if ((unsigned char)buf[i] >= 0xf0)
			buf[i] = "-\r\n=:q \t"[(unsigned char)buf[i] & 7];
	if (!(m = scan_filter_ops.open()))
		abort();
	for (size_t off = 0; off < len && off < stop; off += step)
		if (scan_filter_ops.feed(m, buf + off, len - off < step ? len - off : step) != 0)
			abort();
	if (stop == (size_t)-1) {
		if (scan_filter_ops.finish(m, &v) != 0)
			abort();
		if (strnlen(v.rule, sizeof(v.rule)) == sizeof(v.rule) ||
		    strnlen(v.reply, sizeof(v.reply)) == sizeof(v.reply) ||
		    strnlen(v.header, sizeof(v.header)) == sizeof(v.header) ||
		    (v.reject && !v.reply[0]) || (!v.reject && !v.header[0]))
			abort();
	}
	scan_filter_ops.close(m);
	return 0;
}
