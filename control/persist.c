/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * persist.c - the last good state of every source, on disk.
 *
 * One base file per zone (STATE_DIR/zone-NAME.state) plus its journal of
 * IXFR deltas (STATE_DIR/zone-NAME.journal, zstate.c: a small IXFR appends
 * one record instead of rewriting the zone; the base is rewritten after an
 * AXFR, a file load, a drop, or when the journal outgrows its bound), one
 * base for operator and moat-smtpd entries (STATE_DIR/entries.state) with
 * its journal of batches (STATE_DIR/entries.journal: a moatctl add of
 * 65,536 entries, or one moat-smtpd report, is one appended record), one
 * per live zone for its listed answers (STATE_DIR/live-ZONE.state, saved
 * at most every CD_LIVE_SAVE_S) and the tarpit's ISN key (STATE_DIR/isn.key,
 * mode 0600), so a restarted moat-controld answers a SYN with the same
 * sequence number as the one before it.  Whole files are written to a
 * temporary file, fsync'd, renamed over the old one: a crash leaves the old
 * or the new file, never half of one.  Read at start before the first
 * transfer, so a cold start filters at once even when every primary is down.
 *
 * Format (host byte order; the files never leave the machine): a header,
 * the records, a uint64 FNV-1a checksum of everything before it
 * (zstate.c).  A file that fails any check is ignored with a log line (a
 * zone then waits for its first transfer).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "controld.h"
#include "log.h"
#include "persist.h"
#include "prefix.h"
#include "sources.h"
#include "zstate.h"

#define PE_MAGIC 0x31544e45414f4dULL /* "MOAENT1" */
#define PK_MAGIC 0x3159454b4e5349ULL /* "ISNKEY1" */

/* zone_paths - file names of a zone's base and journal; the name is a
 * checked DNS name */
static void zone_paths(const struct cd *d, const char *name, char *base, char *journal, size_t sz)
{
	snprintf(base, sz, "%.3800s/zone-%.256s.state", d->cfg.state_dir, name);
	snprintf(journal, sz, "%.3800s/zone-%.256s.journal", d->cfg.state_dir, name);
}

/* atomic_write - a whole state file any local reader may see */
static int atomic_write(const char *path, const void *hdr, size_t hl, const void *body, size_t bl)
{
	return zstate_write_file(path, 0640, hdr, hl, body, bl, NULL);
}

/* zone_meta - what a state file keeps of z besides its listings */
static struct zstate_meta zone_meta(const struct cd_zone *z)
{
	return (struct zstate_meta){
		.serial = z->serial, .state = (uint32_t)z->state,
		.last_success = z->last_success, .expires_at = z->expires_at,
		.soa_refresh = z->soa_refresh, .soa_retry = z->soa_retry,
		.soa_expire = z->soa_expire,
	};
}

/* persist_save_zone - the zone's current data (set: its z->n listings,
 * streamed; NULL: none) as its base state; the journal emptied */
int persist_save_zone(const struct cd *d, struct cd_zone *z, const struct src_set *set)
{
	struct zstate_meta m = zone_meta(z);
	char base[PATH_MAX], journal[PATH_MAX];
	int r;

	zone_paths(d, z->cfg.name, base, journal, sizeof(base));
	if (set) {
		set->rewind(set->ctx);
		r = zstate_save_base_stream(base, journal, z->cfg.name, &m, z->n, set->next,
					    set->ctx, &z->zs);
	} else {
		r = zstate_save_base(base, journal, z->cfg.name, &m, NULL, 0, &z->zs);
	}

	if (r < 0) {
		z->zs.valid = 0; /* the files no longer end at z->serial */
		log_err("zone=%s event=persist path=%s error=\"%s\"", z->cfg.name, base, strerror(-r));
	} else {
		z->persist_bases++;
	}
	return r;
}

/* journal_records_max - ZSTATE_JOURNAL_MAX_RECORDS; the e2e test sets
 * MOAT_TEST_JOURNAL_RECORDS to a tiny value to see a compaction */
static uint64_t journal_records_max(void)
{
	const char *e = getenv("MOAT_TEST_JOURNAL_RECORDS");

	return e && atol(e) > 0 ? (uint64_t)atol(e) : ZSTATE_JOURNAL_MAX_RECORDS;
}

/* persist_save_delta - an IXFR (serial_from -> z->serial, add/del as
 * applied) appended to the zone's journal; the base rewritten instead when
 * the journal is due for compaction or the files do not end at serial_from */
int persist_save_delta(const struct cd *d, struct cd_zone *z, uint32_t serial_from,
		       const struct moat_listing *add, size_t nadd,
		       const struct moat_listing *del, size_t ndel, const struct src_set *set)
{
	struct zstate_meta m = zone_meta(z);
	char base[PATH_MAX], journal[PATH_MAX];
	int r;

	zone_paths(d, z->cfg.name, base, journal, sizeof(base));
	if (zstate_compact_due(&z->zs) || z->zs.journal_records >= journal_records_max() ||
	    !z->zs.valid || z->zs.serial != serial_from)
		r = -ESTALE;
	else
		r = zstate_append(journal, serial_from, &m, add, nadd, del, ndel, &z->zs);
	if (r == 0) {
		z->persist_appends++;
		return 0;
	}
	if (r != -ESTALE)
		log_err("zone=%s event=journal path=%s error=\"%s\" (writing the base instead)",
			z->cfg.name, journal, strerror(-r));
	else
		log_info("zone=%s event=journal-compact serial=%u journal_bytes=%llu records=%llu "
			 "base_bytes=%llu", z->cfg.name, z->serial,
			 (unsigned long long)z->zs.journal_bytes,
			 (unsigned long long)z->zs.journal_records,
			 (unsigned long long)z->zs.base_bytes);
	return persist_save_zone(d, z, set);
}

/* persist_load_zone - read a zone's last good state (base + journal):
 * listings in *l, sorted, with the zone's source id */
int persist_load_zone(const struct cd *d, struct cd_zone *z, struct moat_listing **l, size_t *n)
{
	char base[PATH_MAX], journal[PATH_MAX];
	struct zstate_meta m;
	struct zstate_replay rep;
	int r;

	zone_paths(d, z->cfg.name, base, journal, sizeof(base));
	r = zstate_load(base, journal, z->cfg.name, z->id, &m, l, n, &z->zs, &rep);
	if (r < 0)
		return r;
	z->serial = m.serial;
	z->last_success = m.last_success;
	z->expires_at = m.expires_at;
	z->soa_refresh = m.soa_refresh;
	z->soa_retry = m.soa_retry;
	z->soa_expire = m.soa_expire;
	if (rep.applied)
		log_info("zone=%s event=restore journal_records=%llu serial=%u entries=%zu",
			 z->cfg.name, (unsigned long long)rep.applied, m.serial, *n);
	if (m.state == ZS_DROPPED) {
		free(*l);
		*l = NULL;
		return -ENOENT;
	}
	return 0;
}

/* entries_paths - the entries base and journal */
static void entries_paths(const struct cd *d, char *base, char *journal, size_t sz)
{
	snprintf(base, sz, "%.4000s/entries.state", d->cfg.state_dir);
	snprintf(journal, sz, "%.4000s/entries.journal", d->cfg.state_dir);
}

static void to_record(struct pe_record *r, const struct cd_entry *e)
{
	*r = (struct pe_record){
		.pfx = e->pfx, .action = e->action, .source = e->source,
		.added = e->added, .expires = e->expires,
	};
	memcpy(r->reason, e->reason, sizeof(r->reason));
}

static void from_record(struct cd_entry *x, const struct pe_record *r)
{
	*x = (struct cd_entry){
		.pfx = r->pfx, .action = r->action, .source = r->source,
		.added = r->added, .expires = r->expires,
	};
	memcpy(x->reason, r->reason, sizeof(x->reason));
	x->reason[sizeof(x->reason) - 1] = 0;
}

/* What a restore refused: records that pass their checksum yet are no
 * entry moat-controld writes (a file made by something else, damage the
 * checksum cannot see). */
struct refusal {
	uint64_t n;
	char first[200];          /* why the first one was refused */
};

/* record_ok - a record read back as moat-controld writes them: a canonical
 * prefix, drop/tarpit/allow, source operator or smtp (a zone's source id
 * would list the prefix in that zone, another id is no source at all);
 * else counted in *rf, with why for the first one */
static int record_ok(const struct pe_record *r, struct refusal *rf)
{
	char e[160], pb[64];

	if (vt_prefix_check(&r->pfx, e, sizeof(e)) == 0) {
		if (r->action != MOAT_ACT_DROP && r->action != MOAT_ACT_TARPIT &&
		    r->action != MOAT_ACT_ALLOW)
			snprintf(e, sizeof(e), "%s: action %u is not drop, tarpit or allow",
				 moat_prefix_str(&r->pfx, pb, sizeof(pb)), r->action);
		else if (r->source != CD_SRC_OPERATOR && r->source != CD_SRC_SMTP)
			snprintf(e, sizeof(e), "%s: source %u is not operator or smtp",
				 moat_prefix_str(&r->pfx, pb, sizeof(pb)), r->source);
		else
			return 1;
	}
	if (!rf->n++)
		snprintf(rf->first, sizeof(rf->first), "%s", e);
	return 0;
}

/* persist_save_entries - operator and moat-smtpd entries: the base
 * rewritten (tmp, fsync, rename), then the journal emptied (a crash
 * between the two replays the journal on a base that already holds it:
 * its records are idempotent) */
int persist_save_entries(struct cd *d)
{
	char path[PATH_MAX], journal[PATH_MAX];
	struct { uint64_t magic; uint64_t n; } h = { PE_MAGIC, d->nentries };
	struct pe_record *r = calloc(d->nentries ? d->nentries : 1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < d->nentries; i++)
		to_record(&r[i], &d->entries[i]);
	entries_paths(d, path, journal, sizeof(path));
	int e = atomic_write(path, &h, sizeof(h), r, d->nentries * sizeof(*r));

	free(r);
	if (e < 0) {
		log_err("event=persist path=%s error=\"%s\" (entries=%zu live, not on disk: retried)", path,
			strerror(-e), d->nentries);
		d->entries_unsaved = 1;
		d->persist_errors++;
		return e;
	}
	d->entries_base_bytes = sizeof(h) + d->nentries * sizeof(*r);
	if (truncate(journal, 0) < 0 && errno != ENOENT) {
		e = -errno;
		log_err("event=persist path=%s error=\"emptying the journal: %s\"", journal,
			strerror(errno));
		d->entries_unsaved = 1;
		d->persist_errors++;
		return e;
	}
	if (d->entries_unsaved)
		log_warn("event=persist path=%s result=ok entries=%zu (saved again after errors)", path,
			 d->nentries);
	d->entries_unsaved = 0;
	d->entries_journal_bytes = 0;
	d->entries_compactions++;
	return 0;
}

/*
 * The entries journal (STATE_DIR/entries.journal): one record per batch,
 * appended and fsync'd: an ej_head, then n pe_records.  sum is FNV-1a of
 * the head (sum 0) and the records.  Replayed in order on the base at
 * start; a record cut short or failing its sum (a crash mid-append) ends
 * the replay with a log line, and the start's compaction drops it.
 */
#define EJ_MAGIC 0x314a4e45u /* "ENJ1" */
#define EJ_ADD 1u
#define EJ_DEL 2u
#define EJ_MIN_BYTES (1u << 20) /* compaction: journal past max(this, base) */

static uint64_t ej_sum(const struct ej_head *h, const void *rec, size_t len)
{
	struct ej_head z = *h;

	z.sum = 0;
	return zstate_checksum(zstate_checksum(ZSTATE_CHECKSUM_INIT, &z, sizeof(z)), rec, len);
}

/* persist_entries_append - see controld.h */
int persist_entries_append(struct cd *d, int del, const struct cd_entry *e, size_t n)
{
	char base[PATH_MAX], journal[PATH_MAX];
	size_t len = n * sizeof(struct pe_record);
	uint64_t bound = d->entries_base_bytes > EJ_MIN_BYTES ? d->entries_base_bytes : EJ_MIN_BYTES;

	/* after a failed save the files lack earlier changes: a journal
	 * record on top would restore without them; the whole base instead */
	if (d->entries_unsaved || d->entries_journal_bytes + sizeof(struct ej_head) + len > bound)
		return persist_save_entries(d);
	struct pe_record *r = calloc(n ? n : 1, sizeof(*r));

	if (!r)
		return persist_save_entries(d);
	for (size_t i = 0; i < n; i++)
		to_record(&r[i], &e[i]);
	struct ej_head h = { EJ_MAGIC, del ? EJ_DEL : EJ_ADD, n, 0 };

	h.sum = ej_sum(&h, r, len);
	entries_paths(d, base, journal, sizeof(base));
	/* a regular file only: a FIFO there would block the daemon */
	int fd = zstate_open(journal, O_WRONLY | O_APPEND | O_CREAT, 0640), err = 0;

	if (fd < 0) {
		err = -fd;
	} else {
		struct iovec iov[2] = { { &h, sizeof(h) }, { r, len } };
		errno = 0;
		ssize_t w = writev(fd, iov, 2);

		if (w != (ssize_t)(sizeof(h) + len) || fdatasync(fd) < 0) {
			err = errno ? errno : EIO;
			/* a short write sets no errno: the rest tells why */
			if (w >= 0 && w < (ssize_t)(sizeof(h) + len) &&
			    write(fd, (const char *)r + (w > (ssize_t)sizeof(h) ? (size_t)w - sizeof(h) : 0), 1) < 0)
				err = errno;
			/* a partial record is cut off so later appends stay readable */
			if (ftruncate(fd, (off_t)d->entries_journal_bytes) < 0)
				log_err("event=persist path=%s error=\"cutting back: %s\"", journal,
					strerror(errno));
		}
		close(fd);
	}
	free(r);
	if (err) {
		log_err("event=persist path=%s error=\"%s\" (writing the base instead)", journal,
			strerror(err));
		return persist_save_entries(d);
	}
	d->entries_journal_bytes += sizeof(h) + len;
	d->entries_journal_appends++;
	return 0;
}

/* replay_journal - the journal's good records applied to s; *bytes of it
 * good, *records replayed; logs a torn or damaged tail */
static int replay_journal(const char *journal, struct ent_set *s, uint64_t *bytes,
			  uint64_t *records, struct refusal *rf)
{
	int fd = zstate_open(journal, O_RDONLY, 0);
	struct stat st;
	char *data;
	size_t off = 0;

	*bytes = *records = 0;
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (fstat(fd, &st) < 0 || !(data = malloc(st.st_size ? (size_t)st.st_size : 1))) {
		close(fd);
		return -ENOMEM;
	}
	ssize_t got = read(fd, data, (size_t)st.st_size);

	close(fd);
	size_t len = got > 0 ? (size_t)got : 0;
	const char *stop = NULL;

	while (off < len) {
		struct ej_head h;

		if (len - off < sizeof(h)) {
			stop = "a record head cut short";
			break;
		}
		memcpy(&h, data + off, sizeof(h));
		if (h.magic != EJ_MAGIC || (h.op != EJ_ADD && h.op != EJ_DEL)) {
			stop = "not a record";
			break;
		}
		if (h.n > (len - off - sizeof(h)) / sizeof(struct pe_record)) {
			stop = "a record cut short (torn tail)";
			break;
		}
		size_t rl = (size_t)h.n * sizeof(struct pe_record);
		const char *rec = data + off + sizeof(h);

		if (ej_sum(&h, rec, rl) != h.sum) {
			stop = "a record failing its checksum";
			break;
		}
		for (size_t i = 0; i < h.n; i++) {
			struct pe_record pr;
			struct cd_entry x;

			memcpy(&pr, rec + i * sizeof(pr), sizeof(pr));
			from_record(&x, &pr);
			ssize_t at = ent_index_find(&s->x, s->e, &x.pfx, x.source);

			if (h.op == EJ_DEL) {
				if (at >= 0)
					ent_set_remove(s, (size_t)at);
			} else if (!record_ok(&pr, rf)) {
				continue;
			} else if (ent_set_put(s, &x) < 0) {
				free(data);
				return -ENOMEM;
			}
		}
		off += sizeof(h) + rl;
		(*records)++;
	}
	if (stop)
		log_warn("event=restore path=%s result=tail-ignored bytes=%zu at=%zu reason=\"%s\" "
			 "restored_records=%llu (a crash mid-append: the records before it are restored)",
			 journal, len - off, off, stop, (unsigned long long)*records);
	*bytes = off;
	free(data);
	return 0;
}

/* keep_aside - a damaged file (a regular one) renamed to PATH.bad for the
 * operator, unless something other than a regular file has that name */
static void keep_aside(const char *path, const char *what)
{
	char bad[PATH_MAX + 8];
	struct stat st;

	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	snprintf(bad, sizeof(bad), "%s.bad", path);
	if (lstat(bad, &st) == 0 && !S_ISREG(st.st_mode))
		bad[0] = 0;
	log_warn("event=restore path=%s result=ignored (not a valid %s file%s%s)", path, what,
		 bad[0] ? "; kept as " : "", bad);
	if (bad[0] && rename(path, bad) < 0)
		log_warn("event=restore path=%s error=\"%s\" (not kept)", bad, strerror(errno));
}

/* read_records - a file of fixed-size records after a {magic, n} header
 * (entries, live answers): *data to free, the records at *rec, *n of them */
static int read_records(const char *path, uint64_t magic, size_t recsz, const char *what,
			void **data, const void **rec, size_t *n)
{
	struct { uint64_t magic; uint64_t n; } h = { 0, 0 };
	size_t len = 0;
	int r = zstate_read_file(path, data, &len, NULL);

	if (r == 0) {
		if (len >= sizeof(h))
			memcpy(&h, *data, sizeof(h));
		if (len < sizeof(h) || h.magic != magic || (len - sizeof(h)) % recsz ||
		    (len - sizeof(h)) / recsz != h.n) {
			free(*data);
			*data = NULL;
			r = -EBADMSG;
		}
	}
	if (r == -EINVAL || r == -EBADMSG) {
		/* damaged (bad checksum, cut short, not ours): kept aside for
		 * the operator, the next save writes a fresh file */
		keep_aside(path, what);
		return -EBADMSG;
	}
	if (r == -EISDIR || r == -ENODEV) {
		log_warn("event=restore path=%s result=ignored error=\"%s\" (not a regular file: left "
			 "alone, not read)", path, strerror(-r));
		return r;
	}
	if (r < 0) {
		if (r != -ENOENT)
			log_warn("event=restore path=%s result=error error=\"%s\"", path, strerror(-r));
		return r;
	}
	*rec = (const char *)*data + sizeof(h);
	*n = (size_t)h.n;
	return 0;
}

/* persist_load_entries - the entries base and its journal replayed on it:
 * every entry (the caller drops the expired ones and adds the rest) */
int persist_load_entries(struct cd *d, struct cd_entry **e, size_t *n, char *path,
			 size_t pathsz)
{
	char journal[PATH_MAX];
	struct ent_set s = { 0 };
	struct refusal rf = { 0 };
	void *data = NULL;
	const struct pe_record *rec;
	size_t nrec = 0;
	uint64_t jbytes, jrec;
	int r;

	*e = NULL;
	*n = 0;
	entries_paths(d, path, journal, sizeof(journal));
	(void)pathsz;
	r = read_records(path, PE_MAGIC, sizeof(*rec), "entries", &data, (const void **)&rec, &nrec);
	/* a damaged base (kept aside): its journal's batches are still the
	 * latest changes, replayed onto nothing; the start's compaction then
	 * writes files holding what the daemon holds, so no later append
	 * follows records of the lost base */
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	for (size_t i = 0; i < nrec; i++) {
		struct cd_entry x;
		struct pe_record pr;

		memcpy(&pr, &rec[i], sizeof(pr));
		from_record(&x, &pr);
		if (!record_ok(&pr, &rf))
			continue;
		if (ent_set_put(&s, &x) < 0) {
			free(data);
			ent_set_free(&s);
			return -ENOMEM;
		}
	}
	free(data);
	r = replay_journal(journal, &s, &jbytes, &jrec, &rf);
	if (r < 0)
		log_err("event=restore path=%s error=\"%s\" (the base alone is restored)", journal,
			strerror(-r));
	else if (jrec)
		log_info("event=restore path=%s journal_records=%llu journal_bytes=%llu", journal,
			 (unsigned long long)jrec, (unsigned long long)jbytes);
	if (rf.n) {
		d->entries_refused += rf.n;
		log_warn("event=restore path=%s refused=%llu first=\"%s\" (records of it or its "
			 "journal no moat-controld writes: not restored)", path,
			 (unsigned long long)rf.n, rf.first);
	}
	/* without either file there is nothing to restore; a journal alone
	 * (no base saved yet), even one without a good record, is restored
	 * and then compacted, so no later append follows its bad tail */
	if (!nrec && !jrec && access(path, F_OK) < 0 && access(journal, F_OK) < 0) {
		ent_set_free(&s);
		return -ENOENT;
	}
	ent_index_free(&s.x);
	*e = s.e;
	*n = s.n;
	return 0;
}

struct pk_header {
	uint64_t magic;
	uint32_t version;
	uint32_t pad;
};

/*
 * persist_isn_key - the tarpit's SipHash key (key[2]) from STATE_DIR/isn.key;
 * when the file is absent or damaged, a new random key saved there (mode
 * 0600: whoever knows it can predict the tarpit's sequence numbers).  A file
 * that exists but cannot be read (permissions) is left alone and this run
 * gets a random key.  Returns 0 for the persisted key, 1 for a new saved
 * one, -errno when the key is random and not saved.
 */
int persist_isn_key(const struct cd *d, uint64_t key[2])
{
	struct pk_header h = { .magic = PK_MAGIC, .version = 1 };
	char path[PATH_MAX];
	void *data = NULL;
	size_t len = 0;
	int r;

	snprintf(path, sizeof(path), "%.4000s/isn.key", d->cfg.state_dir);
	r = zstate_read_file(path, &data, &len, NULL);
	if (r == -EINVAL)               /* shorter than a checksum */
		r = -EBADMSG;
	if (r == 0) {
		struct pk_header got;

		if (len == sizeof(got) + 2 * sizeof(uint64_t)) {
			memcpy(&got, data, sizeof(got));
			memcpy(key, (char *)data + sizeof(got), 2 * sizeof(uint64_t));
			if (got.magic == PK_MAGIC && got.version == 1 && (key[0] | key[1])) {
				free(data);
				return 0;
			}
		}
		free(data);
		r = -EBADMSG;
	}
	do {
		if (getrandom(key, 2 * sizeof(uint64_t), 0) != (ssize_t)(2 * sizeof(uint64_t))) {
			key[0] = key[1] = 0;    /* the loader picks its own */
			return -EIO;
		}
	} while (!(key[0] | key[1]));  /* all zero means "random" to the loader */
	if (r != -ENOENT && r != -EBADMSG) {
		log_err("event=isn_key path=%s error=\"%s\" (a random key for this run only)",
			path, strerror(-r));
		return r;
	}
	if (r == -EBADMSG)
		log_warn("event=isn_key path=%s damaged: a new key", path);
	r = zstate_write_file(path, 0600, &h, sizeof(h), key, 2 * sizeof(uint64_t), NULL);
	if (r < 0) {
		log_err("event=isn_key path=%s error=\"%s\" (a random key for this run only)",
			path, strerror(-r));
		return r;
	}
	log_info("event=isn_key path=%s new key saved", path);
	return 1;
}

#define PL_MAGIC 0x32564c45414f4dULL /* "MOAELV2" */

/* live_path - file name of a live zone's answers */
static void live_path(const struct cd *d, const char *zone, char *buf, size_t sz)
{
	snprintf(buf, sz, "%.3800s/live-%.256s.state", d->cfg.state_dir, zone);
}

/* save_live_zone - one live zone's listed answers still in the table,
 * with their absolute expiry */
static int save_live_zone(struct cd *d, const struct cd_zone *z, time_t now, size_t *saved)
{
	char path[PATH_MAX];
	struct moat_listing *l = NULL;
	struct pl_record *rec;
	size_t nl = 0, n = 0;
	int r = vt_db_source_dump(d->db, z->id, &l, &nl);

	if (r == -ENOENT)
		r = 0;
	if (r < 0)
		return r;
	rec = calloc(nl ? nl : 1, sizeof(*rec));
	if (!rec) {
		free(l);
		return -ENOMEM;
	}
	for (size_t k = 0; k < nl; k++) {
		if (l[k].exclude || !l[k].ttl)
			continue;
		rec[n].pfx = l[k].pfx;
		rec[n].code = l[k].code;
		rec[n++].expires = now + l[k].ttl;
	}
	free(l);
	struct { uint64_t magic; uint64_t n; } h = { PL_MAGIC, n };

	live_path(d, z->cfg.name, path, sizeof(path));
	r = atomic_write(path, &h, sizeof(h), rec, n * sizeof(*rec));
	free(rec);
	if (r < 0)
		log_err("zone=%s event=persist path=%s error=\"%s\"", z->cfg.name, path, strerror(-r));
	*saved += n;
	return r;
}

/* persist_save_live - the listed answers of every live zone still in the
 * table, each zone's to its STATE_DIR/live-ZONE.state */
int persist_save_live(struct cd *d)
{
	time_t now = time(NULL);
	size_t n = 0;
	int r = 0;

	for (int i = 0; i < d->nzones; i++)
		if (d->zones[i]->cfg.type == CFG_SRC_LIVE) {
			int e = save_live_zone(d, d->zones[i], now, &n);

			if (e < 0)
				r = e;
		}
	d->live_saved_at = now;
	if (r < 0)
		return r; /* still dirty: the next tick tries again */
	d->live_dirty = 0;
	log_debug("event=persist-live live=%zu", n);
	return 0;
}

/* persist_load_live - live answers back into the table with the time they
 * have left; expired ones are dropped */
int persist_load_live(struct cd *d)
{
	char path[PATH_MAX], err[256];
	size_t ok = 0, expired = 0;
	time_t now = time(NULL);
	int files = 0;

	vt_db_set_time(d->db, (uint64_t)now);
	for (int z = 0; z < d->nzones; z++) {
		const struct cd_zone *zn = d->zones[z];
		const struct pl_record *rec;
		void *data;
		size_t n;

		if (zn->cfg.type != CFG_SRC_LIVE)
			continue;
		live_path(d, zn->cfg.name, path, sizeof(path));
		if (read_records(path, PL_MAGIC, sizeof(*rec), "live state", &data,
				 (const void **)&rec, &n) < 0)
			continue;
		files++;
		for (size_t i = 0; i < n; i++) {
			if (rec[i].expires <= now) {
				expired++;
				continue;
			}
			int64_t left = rec[i].expires - now;
			struct moat_listing l = { .pfx = rec[i].pfx, .code = rec[i].code,
						  .source = zn->id,
						  .ttl = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left };

			if (vt_db_source_apply(d->db, zn->id, &l, 1, NULL, 0, err, sizeof(err)) == 0)
				ok++;
			else
				log_warn("zone=%s event=restore live answer %zu refused: %s",
					 zn->cfg.name, i, err);
		}
		free(data);
	}
	if (files)
		log_info("event=restore live=%zu expired=%zu (listed live answers, from %s)", ok,
			 expired, d->cfg.state_dir);
	return 0;
}
