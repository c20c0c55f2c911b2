/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * persist.c - the last good state of every source, on disk.
 *
 * One file per zone (STATE_DIR/zone-NAME.state), one for operator and
 * moat-smtpd entries (STATE_DIR/entries.state) and the tarpit's ISN key
 * (STATE_DIR/isn.key, mode 0600), so a restarted moat-controld answers a
 * SYN with the same sequence number as the one before it.  Written to a temporary
 * file, fsync'd, renamed over the old one: a crash leaves the old or the
 * new file, never half of one.  Read at start before the first transfer,
 * so a cold start filters at once even when every primary is down.
 *
 * Format (host byte order; the file never leaves the machine):
 *   struct pz_header, then n struct moat_listing, then a uint64 FNV-1a
 *   checksum of everything before it.  A file that fails any check is
 *   ignored with a log line (the zone then waits for its first transfer).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controld.h"
#include "log.h"

#define PZ_MAGIC 0x31545354414f4dULL /* "MOATST1" */
#define PE_MAGIC 0x31544e45414f4dULL /* "MOAENT1" */
#define PK_MAGIC 0x3159454b4e5349ULL /* "ISNKEY1" */

struct pz_header {
	uint64_t magic;
	uint32_t version;
	uint32_t serial;
	int64_t last_success;
	int64_t expires_at;
	uint32_t soa_refresh, soa_retry, soa_expire;
	uint32_t state;     /* enum cd_zone_state at save time */
	uint64_t n;
	char name[256];
};

struct pe_record {
	struct moat_prefix pfx;
	uint32_t action;
	uint16_t source;
	uint16_t pad;
	int64_t added, expires;
	char reason[128];
};

/* fnv - FNV-1a over a buffer, continuing h */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

/* zone_path - file name of a zone's state; the name is a checked DNS name */
static void zone_path(const struct cd *d, const char *name, char *buf, size_t sz)
{
	snprintf(buf, sz, "%.3800s/zone-%.256s.state", d->cfg.state_dir, name);
}

/* write_all - write every byte */
static int write_all(int fd, const void *p, size_t n, uint64_t *h)
{
	const char *c = p;

	if (h)
		*h = fnv(*h, p, n);
	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* atomic_write_mode - header + body + checksum to path via tmp + fsync +
 * rename, the file created with mode */
static int atomic_write_mode(const char *path, mode_t mode, const void *hdr, size_t hl,
			     const void *body, size_t bl)
{
	char tmp[PATH_MAX + 16];
	uint64_t h = FNV_INIT;
	int fd, r;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) < 0) {    /* a leftover tmp keeps its old mode */
		r = -errno;
		close(fd);
		unlink(tmp);
		return r;
	}
	r = write_all(fd, hdr, hl, &h);
	if (!r && bl)
		r = write_all(fd, body, bl, &h);
	if (!r)
		r = write_all(fd, &h, sizeof(h), NULL);
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

/* atomic_write - atomic_write_mode for state any local reader may see */
static int atomic_write(const char *path, const void *hdr, size_t hl, const void *body, size_t bl)
{
	return atomic_write_mode(path, 0640, hdr, hl, body, bl);
}

/* read_file - whole file, checksum verified; body after hl header bytes */
static int read_file(const char *path, void **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(uint64_t)) {
		close(fd);
		return -EINVAL;
	}
	char *buf = malloc((size_t)st.st_size);
	size_t got = 0;

	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	uint64_t h;

	if (got != (size_t)st.st_size)
		goto bad;
	memcpy(&h, buf + got - sizeof(h), sizeof(h));
	if (fnv(FNV_INIT, buf, got - sizeof(h)) != h)
		goto bad;
	*data = buf;
	*len = got - sizeof(h);
	return 0;
bad:
	free(buf);
	return -EBADMSG;
}

/* persist_save_zone - the zone's current data as its last good state */
int persist_save_zone(const struct cd *d, const struct cd_zone *z)
{
	struct pz_header h = {
		.magic = PZ_MAGIC, .version = 1, .serial = z->serial,
		.last_success = z->last_success, .expires_at = z->expires_at,
		.soa_refresh = z->soa_refresh, .soa_retry = z->soa_retry,
		.soa_expire = z->soa_expire, .state = (uint32_t)z->state, .n = z->n,
	};
	char path[PATH_MAX];

	snprintf(h.name, sizeof(h.name), "%s", z->cfg.name);
	zone_path(d, z->cfg.name, path, sizeof(path));
	int r = atomic_write(path, &h, sizeof(h), z->l, z->n * sizeof(*z->l));

	if (r < 0)
		log_err("zone=%s event=persist path=%s error=\"%s\"", z->cfg.name, path, strerror(-r));
	return r;
}

/* persist_load_zone - read a zone's last good state: listings in *l */
int persist_load_zone(const struct cd *d, struct cd_zone *z, struct moat_listing **l, size_t *n)
{
	char path[PATH_MAX];
	void *data;
	size_t len;
	int r;

	zone_path(d, z->cfg.name, path, sizeof(path));
	r = read_file(path, &data, &len);
	if (r < 0)
		return r;
	struct pz_header h;

	if (len < sizeof(h))
		goto bad;
	memcpy(&h, data, sizeof(h));
	if (h.magic != PZ_MAGIC || h.version != 1 || strncmp(h.name, z->cfg.name, sizeof(h.name)) ||
	    h.n != (len - sizeof(h)) / sizeof(struct moat_listing) ||
	    (len - sizeof(h)) % sizeof(struct moat_listing))
		goto bad;
	*l = malloc(h.n ? h.n * sizeof(**l) : 1);
	if (!*l) {
		free(data);
		return -ENOMEM;
	}
	memcpy(*l, (char *)data + sizeof(h), h.n * sizeof(**l));
	*n = h.n;
	z->serial = h.serial;
	z->last_success = h.last_success;
	z->expires_at = h.expires_at;
	z->soa_refresh = h.soa_refresh;
	z->soa_retry = h.soa_retry;
	z->soa_expire = h.soa_expire;
	free(data);
	if (h.state == ZS_DROPPED) {
		free(*l);
		*l = NULL;
		return -ENOENT;
	}
	return 0;
bad:
	log_warn("zone=%s event=restore path=%s result=ignored (not a valid state file)",
		 z->cfg.name, path);
	free(data);
	return -EBADMSG;
}

/* persist_save_entries - operator and moat-smtpd entries */
int persist_save_entries(const struct cd *d)
{
	char path[PATH_MAX];
	struct { uint64_t magic; uint64_t n; } h = { PE_MAGIC, d->nentries };
	struct pe_record *r = calloc(d->nentries ? d->nentries : 1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < d->nentries; i++) {
		r[i].pfx = d->entries[i].pfx;
		r[i].action = d->entries[i].action;
		r[i].source = d->entries[i].source;
		r[i].added = d->entries[i].added;
		r[i].expires = d->entries[i].expires;
		memcpy(r[i].reason, d->entries[i].reason, sizeof(r[i].reason));
	}
	snprintf(path, sizeof(path), "%.4000s/entries.state", d->cfg.state_dir);
	int e = atomic_write(path, &h, sizeof(h), r, d->nentries * sizeof(*r));

	free(r);
	if (e < 0)
		log_err("event=persist path=%s error=\"%s\"", path, strerror(-e));
	return e;
}

/* persist_load_entries - entries back into the table (expired ones dropped) */
int persist_load_entries(struct cd *d)
{
	char path[PATH_MAX], err[256];
	void *data;
	size_t len, ok = 0;
	time_t now = time(NULL);
	struct { uint64_t magic; uint64_t n; } h;

	snprintf(path, sizeof(path), "%.4000s/entries.state", d->cfg.state_dir);
	int r = read_file(path, &data, &len);

	if (r < 0)
		return r;
	memcpy(&h, data, sizeof(h) <= len ? sizeof(h) : 0);
	if (len < sizeof(h) || h.magic != PE_MAGIC ||
	    (len - sizeof(h)) != h.n * sizeof(struct pe_record)) {
		log_warn("event=restore path=%s result=ignored (not a valid entries file)", path);
		free(data);
		return -EBADMSG;
	}
	const struct pe_record *rec = (const struct pe_record *)((char *)data + sizeof(h));

	d->restoring = 1; /* one publish at the end, not one per entry */

	for (size_t i = 0; i < h.n; i++) {
		struct cd_entry e = {
			.pfx = rec[i].pfx, .action = rec[i].action, .source = rec[i].source,
			.added = rec[i].added, .expires = rec[i].expires,
		};

		memcpy(e.reason, rec[i].reason, sizeof(e.reason));
		e.reason[sizeof(e.reason) - 1] = 0;
		if (e.expires && e.expires <= now)
			continue;
		if (zm_entry_add(d, &e, err, sizeof(err)) == 0)
			ok++;
		else
			log_warn("event=restore entry %zu refused: %s", i, err);
	}
	d->restoring = 0;
	free(data);
	log_info("event=restore entries=%zu (operator and moat-smtpd, from %s)", ok, path);
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
	r = read_file(path, &data, &len);
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
	r = atomic_write_mode(path, 0600, &h, sizeof(h), key, 2 * sizeof(uint64_t));
	if (r < 0) {
		log_err("event=isn_key path=%s error=\"%s\" (a random key for this run only)",
			path, strerror(-r));
		return r;
	}
	log_info("event=isn_key path=%s new key saved", path);
	return 1;
}
