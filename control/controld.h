/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * controld.h - moat-controld's internal state, shared by its modules:
 *   controld.c  start-up, event loop, signals, reload, privilege drop
 *   ctlsrv.c    control socket (lib/ctlproto.h) and its commands
 *   zonemgr.c   sources (zones, files, operator entries): policy, data,
 *               refresh/expire timers, quarantine, publishing
 *   entries.c   operator and moat-smtpd entries in bulk: their index,
 *               batches applied as one
 *   persist.c   last good state of every source on disk
 *   metrics.c   Prometheus text over HTTP (libmicrohttpd)
 * One thread owns all of it (the event loop); metrics.c serves a text
 * snapshot the loop refreshes, under a mutex.
 */
#ifndef MOAT_CONTROLD_H
#define MOAT_CONTROLD_H

#include <stdint.h>
#include <time.h>

#include "config.h"
#include "fastpath.h"
#include "listing.h"
#include "sanity.h"
#include "vtable.h"
#include "zstate.h"

struct json_object;
struct src_set;

/* Reserved source ids; zones get ids from CD_SRC_ZONE_BASE on. */
#define CD_SRC_OPERATOR 1   /* moatctl add/del */
#define CD_SRC_SMTP 2       /* moat-smtpd reports */
#define CD_SRC_ZONE_BASE 16

enum cd_zone_state {
	ZS_NEW = 0,      /* no data yet (nothing on disk, no transfer) */
	ZS_OK,           /* serving data from a successful load */
	ZS_FAILED,       /* the last attempt failed; previous data serving */
	ZS_STALE,        /* expired, entries kept (on_expire=keep) */
	ZS_DROPPED,      /* expired and dropped (stale_max or on_expire=drop) */
	ZS_QUARANTINED,  /* last data failed sanity: not published */
};

struct cd_zone {
	struct cfg_zone cfg;
	uint16_t id;
	enum cd_zone_state state;
	int have_data;            /* data is in the db (from disk or a load) */
	int from_disk;            /* current data came from the state file */
	uint32_t serial;
	uint32_t soa_refresh, soa_retry, soa_expire;
	time_t last_success;      /* last load that was published */
	time_t last_attempt;
	time_t next_refresh;
	time_t expires_at;        /* last_success + SOA expire (0 = never) */
	uint64_t failures;        /* attempts that failed, total */
	uint64_t loads;           /* successful loads */
	uint64_t quarantines;
	char last_error[256];
	/* listings of the data serving (no copy of them is kept: the table
	 * holds them, and a transfer's zone tree, walked in order) */
	size_t n;
	uint64_t last_added, last_removed;
	/* records whose owner does not decode to an address (zone.h), in the
	 * data serving / in the load being handed over (sources.c sets it) */
	size_t undecodable, load_undecodable;
	/* the sanity result of l (shares, counts, prefix lengths), known after
	 * a checked load: an IXFR's checks then need only the delta */
	struct moat_sanity_result san;
	int san_known;
	double last_duration;     /* seconds of the last successful load */
	int refresh_now;          /* a refresh was asked (NOTIFY, moatctl) */
	int refresh_full;         /* moatctl zone refresh --full: AXFR / re-read */
	int busy;                 /* a transfer is running */
	void *xfr;                /* transfer state (zonemgr.c) */
	/* the state files (persist.c, zstate.h): what base + journal hold */
	struct zstate_info zs;
	uint64_t persist_bases, persist_appends; /* base rewrites, journal appends */
	double load_started_ms;   /* CLOCK_MONOTONIC ms the current load began */
	double notify_ms;         /* when the NOTIFY that started it arrived (0: none) */
	/* rbldnsd: file identity at the last load */
	uint64_t file_ino, file_size;
	int64_t file_mtime_ns;
};

/* An operator or moat-smtpd entry (list, persistence, expiry). */
struct cd_entry {
	struct moat_prefix pfx;
	uint32_t action;          /* enum moat_action */
	uint16_t source;          /* CD_SRC_OPERATOR or CD_SRC_SMTP */
	time_t added;
	time_t expires;           /* 0 = never */
	char reason[128];
};

/* An index of (prefix, source) over an array of entries: open addressing,
 * slot = array index + 1, 0 = empty (entries.c). */
struct ent_index {
	uint32_t *slot;
	size_t nslot, used;       /* nslot a power of 2, at least 2 * used */
};

/* An array of entries with its index (a batch, a journal replay). */
struct ent_set {
	struct cd_entry *e;
	size_t n, cap;
	struct ent_index x;
};

struct cd_stats_sample {
	uint64_t at_ns;           /* moat_clock_ns() when read */
	uint64_t c[MOAT_STAT__MAX];
	int valid;
};

struct ctlsrv;
struct metrics;

struct cd {
	struct moat_config cfg;
	const char *cfg_path;
	time_t started;
	int check_only;
	/* table and fast path */
	struct vt_db *db;
	struct moat_fastpath fp;  /* name NULL = none open (fastpath.c) */
	int detached;
	uint64_t publishes, publish_updates, publish_errors;
	/* a fast-path publish failed midway: the maps hold a safe prefix of
	 * it, not the table's live image; zm_tick resyncs (fp_resync + a full
	 * recompute) until one succeeds */
	int fp_dirty;
	time_t fp_resync_at;      /* next attempt */
	unsigned fp_resync_backoff;
	uint64_t fp_resyncs, fp_resync_errors;
	uint64_t fp_lost;         /* the fast path's process went away (DPDK) */
	/* [xdp] syn_cookies (fp_cookies_tick): the program answers with
	 * cookies (it may have loaded without), they are held now
	 * (net.ipv4.tcp_syncookies is not 2), times they were held, and
	 * the sysctl's last value seen */
	int fp_cookies, fp_cookies_held, fp_cookies_sysctl;
	uint64_t fp_cookie_holds;
	double last_publish_ms;
	double last_compile_ms, last_fp_ms; /* vt_db_publish, fast path write */
	/* sources */
	struct cd_zone *zones[CFG_MAX_ZONES];
	int nzones;
	uint16_t next_id;
	struct cd_entry *entries;
	size_t nentries, capentries;
	struct ent_index eidx;    /* (prefix, source) -> index in entries */
	/* the entries' files (persist.c): base size, journal size */
	uint64_t entries_base_bytes, entries_journal_bytes;
	uint64_t entries_journal_appends, entries_compactions;
	int entries_unsaved;      /* the last save failed: rewrite the base, not append */
	time_t entries_retry_at;  /* zonemgr's tick retries an unsaved base then */
	uint64_t persist_errors;  /* state files that could not be written */
	uint64_t entries_refused; /* records of the entries' files refused at start */
	int restoring;            /* zm_entries_restore: no publish per entry */
	int live_dirty;           /* live answers changed since they were saved */
	time_t live_saved_at;     /* persist_save_live: at most every CD_LIVE_SAVE_S */
	/* rates */
	struct cd_stats_sample prev, cur;
	/* loop */
	int epfd;
	int quit;
	struct ctlsrv *ctl;
	struct metrics *metrics;
	int notify_fd[4];
	int nnotify;
	uint64_t reloads, reload_errors;
	char last_reload_error[CFG_ERRLEN];
	uint64_t notifies;
	uint64_t notify_tcp_refused;  /* TCP NOTIFY peers that are no primary */
	uint64_t notify_tcp_evicted;  /* closed to stay within the cap */
};

extern struct cd *cd;

/* zonemgr.c */
int zm_init(struct cd *d, char *err, size_t errsz);
int zm_apply_config(struct cd *d, const struct moat_config *c, char *err, size_t errsz);
int zm_publish(struct cd *d, const char *why);
void zm_tick(struct cd *d, time_t now);
struct moat_lvec;
size_t zm_live_answer(struct cd *d, const struct moat_prefix *addr, const struct moat_lvec *l,
		      unsigned nfailed);
struct cd_zone *zm_zone(struct cd *d, const char *name);
int zm_refresh(struct cd *d, const char *name, int full);
const char *zm_state_name(enum cd_zone_state s);
int zm_entry_add(struct cd *d, const struct cd_entry *e, char *err, size_t errsz);
/* zm_entries_restore - operator and moat-smtpd entries from disk (start) */
int zm_entries_restore(struct cd *d);
int zm_entry_del(struct cd *d, const struct moat_prefix *p, uint16_t source, char *err, size_t errsz);
void zm_free(struct cd *d);

/* entries.c: the index, and batches (moatctl add/del with many entries) */
ssize_t ent_index_find(const struct ent_index *x, const struct cd_entry *arr,
		       const struct moat_prefix *p, uint16_t source);
int ent_index_reserve(struct ent_index *x, const struct cd_entry *arr, size_t n);
int ent_index_insert(struct ent_index *x, const struct cd_entry *arr, size_t i);
void ent_index_remove(struct ent_index *x, const struct cd_entry *arr, size_t i);
void ent_index_moved(struct ent_index *x, const struct cd_entry *arr, size_t from, size_t to);
void ent_index_free(struct ent_index *x);
ssize_t ent_set_put(struct ent_set *s, const struct cd_entry *e);
void ent_set_remove(struct ent_set *s, size_t i);
void ent_set_free(struct ent_set *s);
/* d->entries through the index: find (-1 when absent), put (add or
 * replace: index or -ENOMEM), remove (the last entry moves to i) */
ssize_t zm_entries_find(struct cd *d, const struct moat_prefix *p, uint16_t source);
ssize_t zm_entries_put(struct cd *d, const struct cd_entry *e);
void zm_entries_remove(struct cd *d, size_t i);
#define CD_BATCH_MAX (1u << 20)   /* entries in one batch */
#define CD_BATCH_LINE 96          /* "FILE:LINE" a staged entry came from */
struct cd_batch;
struct zm_batch_result {
	size_t staged, added, replaced, removed;
	double ms;
};
struct cd_batch *zm_batch_new(int del, uint16_t source);
int zm_batch_op(const struct cd_batch *b);         /* 1 = del */
uint16_t zm_batch_source(const struct cd_batch *b);
size_t zm_batch_size(const struct cd_batch *b);
const struct cd_entry *zm_batch_entry(const struct cd_batch *b, size_t i); /* i < size */
int zm_batch_stage(struct cd_batch *b, const struct cd_entry *e, const char *line);
int zm_batch_commit(struct cd *d, struct cd_batch *b, struct zm_batch_result *res,
		    char *err, size_t errsz);
void zm_batch_free(struct cd_batch *b);
const char *zm_source_name(struct cd *d, uint16_t id);
struct json_object *zm_zone_json(struct cd *d, const struct cd_zone *z, time_t now);
/* zm_io - a zone's transfer socket is ready (the loop's TAG_ZONE) */
void zm_io(struct cd *d, struct cd_zone *z, uint32_t events);
struct cd_tag;
/* zm_notify_io - a NOTIFY socket is ready (TAG_NOTIFY, TAG_NOTIFY_TCP) */
void zm_notify_io(struct cd *d, struct cd_tag *t);


/* persist.c: a zone's base state from a sorted walk of its set (sources.h) */
int persist_save_zone(const struct cd *d, struct cd_zone *z, const struct src_set *set);
int persist_save_delta(const struct cd *d, struct cd_zone *z, uint32_t serial_from,
		       const struct moat_listing *add, size_t nadd,
		       const struct moat_listing *del, size_t ndel, const struct src_set *set);
int persist_load_zone(const struct cd *d, struct cd_zone *z, struct moat_listing **l, size_t *n);
/* persist_save_entries - the entries base rewritten, the journal emptied */
int persist_save_entries(struct cd *d);
/* persist_entries_append - one batch (del: e[i] removed, else added or
 * replaced) appended to the entries journal and fsync'd, or the base
 * rewritten when the journal is due for compaction */
int persist_entries_append(struct cd *d, int del, const struct cd_entry *e, size_t n);
/* persist_load_entries - the entries base with its journal replayed (*e,
 * *n; the caller frees *e) and the base file's name in path */
int persist_load_entries(struct cd *d, struct cd_entry **e, size_t *n, char *path,
			 size_t pathsz);
#define CD_LIVE_SAVE_S 5
int persist_save_live(struct cd *d);
int persist_load_live(struct cd *d);
int persist_isn_key(const struct cd *d, uint64_t key[2]);

/* fastpath.c: the fast path through lib/fastpath.h */
int fp_open(struct cd *d, char *err, size_t errsz);   /* 0 or -1 + err */
int fp_resync(struct cd *d);
int fp_lookup(struct cd *d, const struct moat_prefix *addr, uint32_t *action);
void fp_ring_io(struct cd *d);
void fp_cookies_tick(struct cd *d);
int fp_has_events(const struct cd *d);
int fp_detach(struct cd *d, char *err, size_t errsz); /* 0 or -1 + err */
void fp_close(struct cd *d);

/* ctlsrv.c */
struct ctlsrv *ctlsrv_open(struct cd *d, char *err, size_t errsz);
void ctlsrv_close(struct ctlsrv *s);
void ctlsrv_io(struct ctlsrv *s, void *tag, uint32_t events);
void ctlsrv_sample(struct ctlsrv *s, struct json_object *ev); /* watch stream */
int ctlsrv_watchers(struct ctlsrv *s);
void ctlsrv_tick(struct ctlsrv *s);

/* metrics.c */
struct metrics *metrics_start(const struct cfg_addr *a, char *err, size_t errsz);
void metrics_update(struct metrics *m, struct cd *d);
void metrics_stop(struct metrics *m);

/* controld.c: the event loop registers fds with a tag handler */
enum cd_tag_kind { TAG_CTL = 1, TAG_ZONE, TAG_NOTIFY, TAG_NOTIFY_TCP, TAG_SIGNAL, TAG_TIMER, TAG_RING,
		   TAG_LIVE, TAG_FLEET };
struct cd_tag {
	enum cd_tag_kind kind;
	void *ptr;
	int fd;
};
int cd_watch(struct cd_tag *t, uint32_t events);
int cd_watch_mod(struct cd_tag *t, uint32_t events);
void cd_unwatch(struct cd_tag *t);
int cd_reload(struct cd *d, char *err, size_t errsz);
int cd_detach(struct cd *d, char *err, size_t errsz);
int cd_read_stats(struct cd *d, uint64_t out[MOAT_STAT__MAX]);

#endif /* MOAT_CONTROLD_H */
