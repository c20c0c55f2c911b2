/* eval_dump.c - the SpamAssassin evals of scan_eval.c over message files,
 * to compare with SpamAssassin's own hits (tools/sa-eval-check).
 *   eval_dump RULES FILE...
 * RULES: "NAME<TAB>call" lines (the text after "eval:", or "mimeheader:"
 * and the text after a mimeheader rule's name), and "freemail_domains<TAB>
 * words" lines before them (the FreeMail plugin's domains); prints, per file,
 * "FILE<TAB>NAME,NAME..." of the evals that fire; the rules it implements
 * go to stderr, one a line.  A leading mbox "From "
 * line is skipped; lines are fed with CRLF ends, as on the wire. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"
#include "scan_eval.h"
#include "scan_received.h"
#include "scan_mime.h"
#include "scan_render.h"

struct dump {
	struct mime_walker w;
	struct render r;
	char hb[65536];
	size_t hn;
	struct scan_rule *rules; /* for the mimeheader rules, per entity */
	size_t nrules;
	char ent_hit[512];
};

static void add(struct dump *d, const char *p, size_t n)
{
	if (d->hn + n < sizeof(d->hb)) {
		memcpy(d->hb + d->hn, p, n);
		d->hn += n;
	}
}

static void h_begin(void *ctx, const char *name)
{
	add(ctx, name, strlen(name));
	add(ctx, ": ", 2);
}

static void h_data(void *ctx, const char *p, size_t n)
{
	add(ctx, p, n);
}

static void h_end(void *ctx)
{
	add(ctx, "\n", 1);
}

static void p_begin(void *ctx, int t)
{
	struct dump *d = ctx;

	render_part_begin(&d->r, (enum render_type)t);
	render_part_charset(&d->r, d->w.leaf_dbcs);
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

static void p_entity(void *ctx)
{
	struct dump *d = ctx;

	for (size_t i = 0; i < d->nrules; i++)
		if (d->rules[i].eval == EVAL_MIMEHEADER && scan_eval_entity(&d->rules[i], &d->w))
			d->ent_hit[i] = 1;
}

static void on_unit(void *ctx, enum render_unit k, const char *p, size_t n)
{
	(void)ctx, (void)k, (void)p, (void)n;
}

static const struct mime_sink sink = {
	.header_begin = h_begin, .header_data = h_data, .header_end = h_end,
	.part_begin = p_begin, .body_data = p_data, .part_end = p_end, .part_skip = p_skip,
	.entity_headers = p_entity,
};

int main(int argc, char **argv)
{
	static struct dump d;
	static struct scan_rule r[512];
	static char *name[512];
	char line[8192], why[200], *freemail = NULL, *lists = NULL;
	size_t nr = 0, fml = 0, nlists = 0;
	FILE *f;

	if (argc < 2 || !(f = fopen(argv[1], "r"))) {
		fprintf(stderr, "usage: eval_dump RULES FILE...\n");
		return 2;
	}
	int relays = getenv("EVAL_DUMP_RELAYS") != NULL;

	while (nr < 512 && fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t');

		if (!tab)
			continue;
		*tab = 0;
		tab[strcspn(tab + 1, "\n") + 1] = 0;
		if (strcmp(line, "freemail_domains") == 0) {
			size_t n = strlen(tab + 1);
			char *nb = realloc(freemail, fml + n + 2);

			if (!nb)
				return 2;
			freemail = nb;
			freemail[fml++] = ' ';
			memcpy(freemail + fml, tab + 1, n + 1);
			fml += n;
			continue;
		}
		if (strcmp(line, "enlist_addrlist") == 0) { /* "NAME glob glob..." */
			char *w = tab + 1, *sp = strchr(w, ' ');
			size_t ln = sp ? (size_t)(sp - w) : 0;

			for (char *g = sp ? strtok(sp + 1, " \t") : NULL; g; g = strtok(NULL, " \t")) {
				size_t n = strlen(g);
				char *nb = realloc(lists, nlists + ln + n + 3);

				if (!nb)
					return 2;
				lists = nb;
				nlists += (size_t)sprintf(lists + nlists, "%.*s ", (int)ln, w);
				for (size_t i = 0; i < n; i++)
					lists[nlists++] = (char)tolower((unsigned char)g[i]);
				lists[nlists++] = '\n';
				lists[nlists] = 0;
			}
			continue;
		}
		memset(&r[nr], 0, sizeof(r[nr]));
		if (strncmp(tab + 1, "check_from_in_list('", 20) == 0) {
			char list[64], *globs;
			size_t nl = strcspn(tab + 21, "'"), k = 1;

			snprintf(list, sizeof(list), "%.*s", (int)nl, tab + 21);
			if (!(globs = malloc(nlists + 2)))
				return 2;
			globs[0] = '\n';
			for (char *l = lists; l && *l;) {
				char *e = strchr(l, '\n');

				if (strncmp(l, list, strlen(list)) == 0 && l[strlen(list)] == ' ') {
					memcpy(globs + k, l + strlen(list) + 1, (size_t)(e - l) - strlen(list));
					k += (size_t)(e - l) - strlen(list);
				}
				l = e + 1;
			}
			globs[k] = 0;
			if (k > 1 && scan_eval_from_in_list(globs, 0, &r[nr]) == 1) {
				fprintf(stderr, "%s\n", line);
				name[nr++] = strdup(line);
			}
			free(globs);
			continue;
		}
		if (strncmp(tab + 1, "mimeheader:", 11) == 0 ?
			    scan_eval_mimeheader(tab + 12, &r[nr], why, sizeof(why)) == 1 :
		    strncmp(tab + 1, "header:", 7) == 0 ? /* header X-Spam-Relays-* */
			    scan_eval_relays(tab + 8, 0, &r[nr], why, sizeof(why)) == 1 :
			    scan_eval_lookup(tab + 1, 0, freemail, &r[nr]) == 1) {
			fprintf(stderr, "%s\n", line); /* the rules implemented */
			name[nr++] = strdup(line);
		}
	}
	fclose(f);
	d.rules = r;
	d.nrules = nr;
	for (int a = 2; a < argc; a++) {
		FILE *m = fopen(argv[a], "r");
		int first = 1, comma = 0;

		if (!m)
			continue;
		d.hn = 0;
		memset(d.ent_hit, 0, sizeof(d.ent_hit));
		mime_init(&d.w, NULL, &sink, &d);
		render_init(&d.r, 1u << RU_BODY | 1u << RU_URI, on_unit, &d);
		while (fgets(line, sizeof(line), m)) {
			size_t n = strlen(line);

			if (first && strncmp(line, "From ", 5) == 0) {
				first = 0;
				continue;
			}
			first = 0;
			if (n && line[n - 1] == '\n') {
				n--;
				if (n && line[n - 1] == '\r')
					n--;
				mime_feed(&d.w, line, n);
				mime_feed(&d.w, "\r\n", 2);
			} else {
				mime_feed(&d.w, line, n);
			}
		}
		fclose(m);
		mime_finish(&d.w);
		render_finish(&d.r);
		if (relays) { /* EVAL_DUMP_RELAYS=1: the four pseudo-headers */
			struct sa_relays rl;

			if (sa_relays_parse(d.hb, d.hn, &rl) == 0) {
				printf("%s\tT=%s\tU=%s\tunparseable=%u\n", argv[a], rl.str[0],
				       rl.str[1], rl.unparseable);
				sa_relays_free(&rl);
			}
			continue;
		}
		printf("%s\t", argv[a]);
		for (size_t i = 0; i < nr; i++) {
			int hit = r[i].eval == EVAL_MIMEHEADER ? d.ent_hit[i] :
				  scan_eval_is_header(&r[i]) ?
				  scan_eval_header(&r[i], d.hb, d.hn) :
				  scan_eval_body(&r[i], d.hb, d.hn, &d.w.st, &d.r.st);
			if (hit) {
				printf("%s%s", comma ? "," : "", name[i]);
				comma = 1;
			}
		}
		putchar('\n');
	}
	free(freemail);
	free(lists);
	return 0;
}
