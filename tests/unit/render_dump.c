/* render_dump.c - print the body, rawbody and uri units moat's renderer
 * (scan_render.c) makes of each message file, in the format of
 * sa_render/sa-units.pl, SpamAssassin's own view: test_render_sa.sh diffs
 * the two.  A leading mbox "From " line is skipped.
 *   render_dump FILE... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scan_mime.h"
#include "scan_render.h"

struct dump {
	struct mime_walker w;
	struct render r;
	int subject;
	char **uris;
	size_t nuris;
};

/* esc - a unit as sa-units.pl prints it */
static void esc(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\\')
			fputs("\\\\", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void on_unit(void *ctx, enum render_unit kind, const char *p, size_t n)
{
	struct dump *d = ctx;

	if (kind == RU_URI) {
		char *u = malloc(n + 1), **nu = realloc(d->uris, (d->nuris + 1) * sizeof(*nu));

		if (!u || !nu)
			exit(2);
		memcpy(u, p, n);
		u[n] = 0;
		d->uris = nu;
		d->uris[d->nuris++] = u;
		return;
	}
	fputs(kind == RU_BODY ? "B\t" : "R\t", stdout);
	esc(p, n);
	putchar('\n');
}

static void h_begin(void *ctx, const char *name)
{
	((struct dump *)ctx)->subject = strcasecmp(name, "Subject") == 0;
}

static void h_data(void *ctx, const char *p, size_t n)
{
	struct dump *d = ctx;

	if (d->subject)
		render_subject(&d->r, p, n);
}

static void h_end(void *ctx)
{
	struct dump *d = ctx;

	if (d->subject)
		render_subject_end(&d->r);
	d->subject = 0;
}

static void p_begin(void *ctx, int type)
{
	render_part_begin(&((struct dump *)ctx)->r, (enum render_type)type);
}

static void p_data(void *ctx, const char *p, size_t n)
{
	render_data(&((struct dump *)ctx)->r, p, n);
}

static void p_end(void *ctx)
{
	render_part_end(&((struct dump *)ctx)->r);
}

static void p_skip(void *ctx)
{
	render_part_begin(&((struct dump *)ctx)->r, RT_SKIP);
}

static const struct mime_sink sink = {
	.header_begin = h_begin, .header_data = h_data, .header_end = h_end,
	.part_begin = p_begin, .body_data = p_data, .part_end = p_end, .part_skip = p_skip,
};

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	static struct dump d;

	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		static char buf[1 << 22];
		size_t n, off = 0;
		const char *base = strrchr(argv[i], '/');

		if (!f) {
			perror(argv[i]);
			return 2;
		}
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		if (n >= 5 && memcmp(buf, "From ", 5) == 0) {
			char *nl = memchr(buf, '\n', n);

			off = nl ? (size_t)(nl - buf) + 1 : n;
		}
		printf("== %s\n", base ? base + 1 : argv[i]);
		d.subject = 0;
		d.nuris = 0;
		mime_init(&d.w, NULL, &sink, &d);
		render_init(&d.r, 1u << RU_BODY | 1u << RU_RAWBODY | 1u << RU_URI, on_unit, &d);
		/* pieces of 1,000 bytes: what the engine's chunks do to state */
		for (size_t o = off; o < n; o += 1000)
			mime_feed(&d.w, buf + o, n - o < 1000 ? n - o : 1000);
		mime_finish(&d.w);
		render_finish(&d.r);
		if (d.nuris) /* qsort wants a pointer even for none */
			qsort(d.uris, d.nuris, sizeof(*d.uris), cmp);
		for (size_t k = 0; k < d.nuris; k++) {
			if (k && strcmp(d.uris[k], d.uris[k - 1]) == 0)
				continue;
			fputs("U\t", stdout);
			esc(d.uris[k], strlen(d.uris[k]));
			putchar('\n');
		}
		for (size_t k = 0; k < d.nuris; k++)
			free(d.uris[k]);
	}
	free(d.uris);
	return 0;
}
