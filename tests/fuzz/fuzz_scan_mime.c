/* fuzz_scan_mime.c - the MIME walker and decoders on hostile input: no
 * crash, no sanitizer report, output bounded by input, any piece sizes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t out_bytes, hdr_bytes;
static int open_hdr, open_part;

static void f_hbegin(void *ctx, const char *name)
{
	(void)ctx;
	if (open_hdr || strlen(name) >= MIME_NAME_MAX)
		abort();
	open_hdr = 1;
}

static void f_hdata(void *ctx, const char *p, size_t n)
{
	(void)ctx, (void)p;
	if (!open_hdr)
		abort();
	hdr_bytes += n;
}

static void f_hend(void *ctx)
{
	(void)ctx;
	open_hdr = 0;
}

static void f_pbegin(void *ctx, int type)
{
	(void)ctx;
	if (open_part || type < MPT_PLAIN || type > MPT_CALENDAR)
		abort();
	open_part = 1;
}

static void f_body(void *ctx, const char *p, size_t n)
{
	(void)ctx;
	if (!open_part || n > MIME_OUT_MAX)
		abort();
	for (size_t i = 0; i < n; i++) /* touch every byte for ASan */
		out_bytes += p[i] == 0x7f ? 0 : 0;
	out_bytes += n;
}

static void f_pend(void *ctx)
{
	(void)ctx;
	if (!open_part)
		abort();
	open_part = 0;
}

static const struct mime_sink sink = {
	.header_begin = f_hbegin, .header_data = f_hdata, .header_end = f_hend,
	.part_begin = f_pbegin, .body_data = f_body, .part_end = f_pend,
};

/* A prefix that makes the random tail multipart, base64 or QP often. */
static const char *const prefixes[] = {
	"",
	"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n",
	"Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n--a\r\n"
	"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\n",
	"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mime_walker w;
	static char buf[8192];
	struct mime_limits lim = { .max_depth = 3, .max_parts = 5 };
	size_t step, plen, len;
	const char *pre;

	if (size < 2)
		return 0;
	pre = prefixes[data[0] % 4];
	step = (size_t)data[1] % 64 + 1;
	plen = strlen(pre);
	len = plen + size - 2 < sizeof(buf) ? plen + size - 2 : sizeof(buf);
	memcpy(buf, pre, plen);
	memcpy(buf + plen, data + 2, len - plen);
	/* '-' and '=' and CRLF often, so boundaries and escapes form */
	for (size_t i = plen; i < len; i++)
		if ((unsigned char)buf[i] >= 0xf8)
			buf[i] = "-\r\n=a--"[(unsigned char)buf[i] & 7];
	out_bytes = hdr_bytes = 0;
	open_hdr = open_part = 0;
	mime_init(&w, data[0] & 4 ? &lim : NULL, &sink, NULL);
	for (size_t off = 0; off < len; off += step)
		mime_feed(&w, buf + off, len - off < step ? len - off : step);
	mime_finish(&w);
	if (open_hdr || open_part || out_bytes > len || hdr_bytes > len)
		abort();
	return 0;
}
