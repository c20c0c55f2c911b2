/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_chan.c - moat-dpdk's end of the publish channel (dp_chan.h, wire
 * format dp_proto.h): one control thread, off the worker lcores, serving
 * one moat-controld at a time on a unix SOCK_SEQPACKET socket.
 *
 * It applies publishes in the order they come with dp_table_apply (the
 * workers never stop: the table's QSBR does the waiting), answers
 * read_image, lookup and read_stats, and pushes the sampled verdicts the
 * workers put on the events ring to the events connection.  Untrusted
 * input never stops it: a malformed, oversized or unknown request gets an
 * error reply and a counter; a client that goes away (kill -9) only frees
 * its role, the table stays as it is.
 *
 * State on disk: after a commit (a whole table version) the image is
 * written to state_path through lib/outfile.c (at most every save_ms), and
 * at start it is read back before the ports forward, so a restarted
 * moat-dpdk filters with its last table even without moat-controld.
 * File: struct dp_state_hdr, count struct moat_update (the read_image
 * sequence), a 64-bit FNV-1a of those updates.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rte_lcore.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "clock.h"
#include "dp_chan.h"
#include "dp_proto.h"
#include "dp_table.h"
#include "log.h"
#include "outfile.h"

#define STATE_MAGIC "MOATDPIM"
#define STATE_VERSION 1
#define HELLO_TIMEOUT_MS 1000
#define SEND_TIMEOUT_MS 2000
#define POLL_MS 10               /* events ring drain period */

_Static_assert(DP_TABLE_WALK_CHUNK <= DP_PROTO_MAX_UPDATES, "an image chunk fits a message");

struct dp_state_hdr {
	char magic[8];
	uint32_t version;
	uint32_t update_size;    /* sizeof(struct moat_update) */
	uint64_t count;
};

struct dp_chan {
	struct dp_chan_params p;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *state_path;
	int lfd, cfd, efd, stopfd;
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool loaded;
	bool save_pending;
	uint64_t last_save_ms;
	uint8_t *buf;            /* DP_PROTO_MAX_MSG */
	struct dp_chan_counters n;
};

/* cnt - bump a counter other threads read */
#define cnt(c, field, v) __atomic_fetch_add(&(c)->n.field, (v), __ATOMIC_RELAXED)

/* fnv - 64-bit FNV-1a over a buffer, continuing h */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

/* write_all - n bytes to fd */
static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* a state file being written: dp_table_emit_fn context */
struct saver {
	int fd;
	uint64_t count, sum;
};

/* save_chunk - append updates to the state file */
static int save_chunk(void *ctx, const struct moat_update *u, size_t n)
{
	struct saver *sv = ctx;

	sv->count += n;
	sv->sum = fnv(sv->sum, u, n * sizeof(*u));
	return write_all(sv->fd, u, n * sizeof(*u));
}

/* state_save - the table's image to state_path, streamed (outfile:
 * temporary + fsync + rename; the header's count is written last); 0 or
 * -errno */
static int state_save(struct dp_chan *c)
{
	struct dp_state_hdr h = { STATE_MAGIC, STATE_VERSION,
				  sizeof(struct moat_update), 0 };
	struct moat_outfile o;
	struct saver sv;
	int r;

	r = moat_outfile_open(&o, c->state_path, 0600, 0);
	if (r < 0)
		return r;
	sv = (struct saver){ o.fd, 0, FNV_INIT };
	if ((r = write_all(o.fd, &h, sizeof(h))) < 0 ||
	    (r = dp_table_walk_image(c->p.table, save_chunk, &sv)) < 0 ||
	    (r = write_all(o.fd, &sv.sum, sizeof(sv.sum))) < 0)
		goto fail;
	h.count = sv.count;
	if (pwrite(o.fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		r = -errno;
		goto fail;
	}
	r = moat_outfile_commit(&o, 1);
	if (r == 0)
		log_info("dpdk-chan: event=state_saved path=%s updates=%llu", c->state_path,
			 (unsigned long long)sv.count);
	return r;
fail:
	moat_outfile_abort(&o);
	return r;
}

/* read_full - n bytes or -EIO */
static int read_full(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		ssize_t r = read(fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* restore_pass - read the file's updates in chunks: checksum them
 * (apply false) or apply them (true); 0 or -errno */
static int restore_pass(struct dp_chan *c, int fd, const struct dp_state_hdr *h,
			bool apply, uint64_t *sum)
{
	struct moat_update *u = malloc(DP_TABLE_WALK_CHUNK * sizeof(*u));
	uint64_t left = h->count;
	int r = 0;

	if (!u)
		return -ENOMEM;
	*sum = FNV_INIT;
	if (lseek(fd, sizeof(*h), SEEK_SET) < 0)
		r = -errno;
	while (r == 0 && left) {
		size_t k = left < DP_TABLE_WALK_CHUNK ? (size_t)left : DP_TABLE_WALK_CHUNK;

		if ((r = read_full(fd, u, k * sizeof(*u))) < 0)
			break;
		*sum = fnv(*sum, u, k * sizeof(*u));
		if (apply)
			r = dp_table_apply(c->p.table, u, k);
		left -= k;
	}
	free(u);
	return r;
}

/* state_restore - state_path back into the table: checked whole (size,
 * layout, checksum) before anything is applied; 0 (also: no file),
 * -EINVAL a file that is not a whole image of this layout, -errno */
static int state_restore(struct dp_chan *c)
{
	struct dp_state_hdr h;
	uint64_t sum, want;
	struct stat st;
	int fd, r;

	fd = open(c->state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			log_info("dpdk-chan: event=restore path=%s result=none (no saved table)",
				 c->state_path);
			return 0;
		}
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    read_full(fd, &h, sizeof(h)) < 0 ||
	    memcmp(h.magic, STATE_MAGIC, 8) || h.version != STATE_VERSION ||
	    h.update_size != sizeof(struct moat_update) ||
	    h.count > ((uint64_t)1 << 40) ||
	    (uint64_t)st.st_size != sizeof(h) + h.count * sizeof(struct moat_update) + sizeof(sum)) {
		r = -EINVAL;
		goto out;
	}
	if ((r = restore_pass(c, fd, &h, false, &sum)) < 0 ||
	    (r = read_full(fd, &want, sizeof(want))) < 0)
		goto out;
	if (sum != want) {
		r = -EINVAL;
		goto out;
	}
	r = restore_pass(c, fd, &h, true, &sum);
	if (r == 0) {
		c->n.restored = h.count;
		c->loaded = true;
		log_info("dpdk-chan: event=restore path=%s result=ok updates=%llu",
			 c->state_path, (unsigned long long)h.count);
	}
out:
	close(fd);
	return r;
}

/* reply - a DP_MSG_REPLY with err and value */
static int reply(int fd, int err, uint64_t value, const void *payload,
		 uint32_t count, size_t plen)
{
	struct dp_msg m = { .type = DP_MSG_REPLY, .err = err, .value = value,
			    .count = count };

	return dp_msg_send(fd, &m, payload, plen, 0);
}

/* set_timeouts - a stuck client cannot wedge the thread */
static void set_timeouts(int fd)
{
	struct timeval tv = { SEND_TIMEOUT_MS / 1000, (SEND_TIMEOUT_MS % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* recv_msg - one datagram into c->buf, checked; returns its length, 0 at
 * EOF, or -errno; *bad gets the errno to reply for a malformed one */
static ssize_t recv_msg(struct dp_chan *c, int fd, int *bad)
{
	ssize_t r;
	const struct dp_msg *m = (const struct dp_msg *)c->buf;
	static const size_t esize[DP_MSG__MAX] = {
		[DP_MSG_PUBLISH] = sizeof(struct moat_update),
		[DP_MSG_LOOKUP] = sizeof(struct moat_prefix),
	};

	*bad = 0;
	do
		r = recv(fd, c->buf, DP_PROTO_MAX_MSG, MSG_TRUNC);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r < 0 ? -errno : 0;
	if ((size_t)r > DP_PROTO_MAX_MSG)
		*bad = -EMSGSIZE;
	else if ((size_t)r < sizeof(*m) || m->magic != DP_PROTO_MAGIC ||
		 m->version != DP_PROTO_VERSION)
		*bad = -EPROTO;
	else if (m->type == 0 || m->type >= DP_MSG__MAX || m->len != (size_t)r ||
		 (uint64_t)m->count * esize[m->type] != (size_t)r - sizeof(*m) ||
		 (m->type == DP_MSG_LOOKUP && m->count != 1))
		*bad = -EBADMSG;
	return r;
}

/* close_fd - close and forget */
static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* image_chunk - one DP_MSG_IMAGE part (not the last) */
static int image_chunk(void *ctx, const struct moat_update *u, size_t n)
{
	struct dp_chan *c = ctx;
	struct dp_msg m = { .type = DP_MSG_IMAGE, .count = (uint32_t)n };

	return dp_msg_send(c->cfd, &m, u, n * sizeof(*u), 0);
}

/* do_read_image - the image streamed in DP_MSG_IMAGE parts, then an
 * empty one with DP_F_END (err set there when the walk failed) */
static void do_read_image(struct dp_chan *c)
{
	struct dp_msg m = { .type = DP_MSG_IMAGE, .flags = DP_F_END };
	int r = dp_table_walk_image(c->p.table, image_chunk, c);

	m.err = r;
	if (r < 0)
		log_warn("dpdk-chan: event=read_image result=error error=\"%s\"", strerror(-r));
	dp_msg_send(c->cfd, &m, NULL, 0, 0);
}

/* serve_cmd - one request on the command connection; false: drop it */
static bool serve_cmd(struct dp_chan *c)
{
	const struct dp_msg *m = (const struct dp_msg *)c->buf;
	const void *pl = c->buf + sizeof(*m);
	int bad, r;
	ssize_t len = recv_msg(c, c->cfd, &bad);

	if (len <= 0) {
		log_info("dpdk-chan: event=client_gone role=command%s%s", len ? " error=" : "",
			 len ? strerror((int)-len) : "");
		return false;
	}
	if (bad) {
		cnt(c, bad_requests, 1);
		log_warn("dpdk-chan: event=bad_request bytes=%zd error=\"%s\"", len, strerror(-bad));
		return reply(c->cfd, bad, 0, NULL, 0, 0) == 0;
	}
	cnt(c, requests, 1);
	switch (m->type) {
	case DP_MSG_PUBLISH:
		r = dp_table_apply(c->p.table, pl, m->count);
		if (r < 0) {
			cnt(c, publish_errors, 1);
			log_err("dpdk-chan: event=publish result=error updates=%u error=\"%s\"",
				m->count, strerror(-r));
		} else {
			cnt(c, publishes, 1);
			cnt(c, updates, m->count);
		}
		return reply(c->cfd, r, r ? 0 : m->count, NULL, 0, 0) == 0;
	case DP_MSG_COMMIT:
		cnt(c, commits, 1);
		dp_table_sync(c->p.table);
		pthread_mutex_lock(&c->mu);
		if (!c->loaded)
			log_info("dpdk-chan: event=loaded source=controld");
		c->loaded = true;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		c->save_pending = c->state_path != NULL;
		return reply(c->cfd, 0, 0, NULL, 0, 0) == 0;
	case DP_MSG_READ_IMAGE:
		do_read_image(c);
		return true;
	case DP_MSG_LOOKUP: {
		const struct moat_prefix *p = pl;
		bool ok = (p->family == MOAT_AF_INET && p->plen == 32) ||
			  (p->family == MOAT_AF_INET6 && p->plen == 128);

		return reply(c->cfd, ok ? 0 : -EINVAL,
			     ok ? dp_table_lookup(c->p.table, p) : 0, NULL, 0, 0) == 0;
	}
	case DP_MSG_READ_STATS: {
		uint64_t st[MOAT_STAT__MAX] = { 0 };

		if (c->p.read_stats)
			c->p.read_stats(c->p.ud, st);
		return reply(c->cfd, 0, 0, st, MOAT_STAT__MAX, sizeof(st)) == 0;
	}
	default:
		/* HELLO twice, or a type only moat-dpdk sends */
		cnt(c, bad_requests, 1);
		log_warn("dpdk-chan: event=bad_request type=%u error=\"not a request\"", m->type);
		return reply(c->cfd, -EBADMSG, 0, NULL, 0, 0) == 0;
	}
}

/* accept_client - a new connection: its HELLO names the role */
static void accept_client(struct dp_chan *c)
{
	int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC), bad;
	const struct dp_msg *m = (const struct dp_msg *)c->buf;
	struct pollfd pf;
	int *slot;

	if (fd < 0)
		return;
	cnt(c, clients, 1);
	set_timeouts(fd);
	pf = (struct pollfd){ fd, POLLIN, 0 };
	if (poll(&pf, 1, HELLO_TIMEOUT_MS) != 1 || recv_msg(c, fd, &bad) <= 0) {
		log_warn("dpdk-chan: event=bad_client error=\"no hello\"");
		cnt(c, bad_requests, 1);
		close(fd);
		return;
	}
	if (!bad && (m->type != DP_MSG_HELLO ||
		     (m->flags != DP_ROLE_COMMAND && m->flags != DP_ROLE_EVENTS)))
		bad = -EBADMSG;
	if (bad) {
		cnt(c, bad_requests, 1);
		log_warn("dpdk-chan: event=bad_client error=\"%s\"", strerror(-bad));
		reply(fd, bad, 0, NULL, 0, 0);
		close(fd);
		return;
	}
	slot = m->flags == DP_ROLE_COMMAND ? &c->cfd : &c->efd;
	if (*slot >= 0) {
		cnt(c, busy, 1);
		log_warn("dpdk-chan: event=client_refused role=%s error=\"another moat-controld is connected\"",
			 slot == &c->cfd ? "command" : "events");
		reply(fd, -EBUSY, 0, NULL, 0, 0);
		close(fd);
		return;
	}
	if (reply(fd, 0, dp_table_view(c->p.table)->groups_max, NULL, 0, 0) < 0) {
		close(fd);
		return;
	}
	*slot = fd;
	log_info("dpdk-chan: event=client role=%s", slot == &c->cfd ? "command" : "events");
}

/* drain_events - what the workers sampled, to the events client */
static void drain_events(struct dp_chan *c)
{
	struct moat_event *ev = (struct moat_event *)(c->buf + sizeof(struct dp_msg));
	unsigned n;

	if (!c->p.events)
		return;
	while ((n = rte_ring_sc_dequeue_burst_elem(c->p.events, ev, sizeof(*ev),
						   DP_PROTO_MAX_EVENTS, NULL)) > 0) {
		struct dp_msg m = { .type = DP_MSG_EVENTS, .count = n };

		if (c->efd < 0 || dp_msg_send(c->efd, &m, ev, n * sizeof(*ev), MSG_DONTWAIT) < 0)
			cnt(c, events_dropped, n);
		else
			cnt(c, events_sent, n);
		if (n < DP_PROTO_MAX_EVENTS)
			break;
	}
}

/* maybe_save - a committed table not saved yet, at most every save_ms */
static void maybe_save(struct dp_chan *c, bool force)
{
	uint64_t now = (uint64_t)moat_clock_ms();
	int r;

	if (!c->save_pending || (!force && now - c->last_save_ms < c->p.save_ms))
		return;
	c->save_pending = false;
	c->last_save_ms = now;
	r = state_save(c);
	if (r < 0) {
		cnt(c, save_errors, 1);
		log_err("dpdk-chan: event=state_save path=%s result=error error=\"%s\"",
			c->state_path, strerror(-r));
	} else {
		cnt(c, saves, 1);
	}
}

/* chan_main - the control thread */
static void *chan_main(void *arg)
{
	struct dp_chan *c = arg;

	for (;;) {
		struct pollfd pf[4] = {
			{ c->stopfd, POLLIN, 0 }, { c->lfd, POLLIN, 0 },
			{ c->cfd, POLLIN, 0 }, { c->efd, POLLIN, 0 },
		};
		int r = poll(pf, 4, POLL_MS);

		if (r < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;
		if (pf[2].revents && !serve_cmd(c))
			close_fd(&c->cfd);
		if (pf[3].revents) {
			/* the events client sends nothing: readable = gone */
			log_info("dpdk-chan: event=client_gone role=events");
			close_fd(&c->efd);
		}
		if (pf[1].revents)
			accept_client(c);
		drain_events(c);
		maybe_save(c, false);
	}
	return NULL;
}

/* bind_socket - the listening socket at path, mode 0660; -EADDRINUSE when
 * a live moat-dpdk answers there */
static int bind_socket(struct dp_chan *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(c->p.path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, c->p.path);
	strcpy(c->path, c->p.path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a stale socket of a dead moat-dpdk: nobody answered on it */
	{
		struct stat st;

		if (lstat(sa.sun_path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				close(fd);
				return -EEXIST;
			}
			unlink(sa.sun_path);
		}
	}
	mode_t old = umask(0117);

	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(sa.sun_path, 0660) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	c->lfd = fd;
	return 0;
}

/* dp_chan_free - release what start allocated */
static void dp_chan_free(struct dp_chan *c)
{
	close_fd(&c->lfd);
	close_fd(&c->cfd);
	close_fd(&c->efd);
	close_fd(&c->stopfd);
	free(c->state_path);
	free(c->buf);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

int dp_chan_start(const struct dp_chan_params *p, struct dp_chan **out)
{
	struct dp_chan *c;
	int r;

	*out = NULL;
	if (!p || !p->path || !p->table)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->p = *p;
	c->lfd = c->cfd = c->efd = c->stopfd = -1;
	if (!c->p.save_ms)
		c->p.save_ms = DP_CHAN_SAVE_MS_DEFAULT;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->buf = malloc(DP_PROTO_MAX_MSG);
	c->state_path = p->state_path ? strdup(p->state_path) : NULL;
	c->p.state_path = NULL;
	c->stopfd = eventfd(0, EFD_CLOEXEC);
	if (!c->buf || (p->state_path && !c->state_path) || c->stopfd < 0) {
		dp_chan_free(c);
		return -ENOMEM;
	}
	if (c->state_path && (r = state_restore(c)) < 0) {
		cnt(c, save_errors, 1);
		log_err("dpdk-chan: event=restore path=%s result=error error=\"%s\" "
			"(the table starts empty: waiting for moat-controld)",
			c->state_path, strerror(-r));
	}
	r = bind_socket(c);
	if (r < 0) {
		log_err("dpdk-chan: socket %s: %s", p->path, strerror(-r));
		dp_chan_free(c);
		return r;
	}
	r = rte_ctrl_thread_create(&c->th, "moat-chan", NULL, chan_main, c);
	if (r != 0) {
		unlink(c->path);
		dp_chan_free(c);
		return r < 0 ? r : -r;
	}
	c->started = true;
	log_info("dpdk-chan: event=listening path=%s", c->path);
	*out = c;
	return 0;
}

int dp_chan_wait_loaded(struct dp_chan *c, int timeout_ms)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&c->mu);
	while (!c->loaded && r == 0)
		r = timeout_ms < 0 ? pthread_cond_wait(&c->cv, &c->mu) :
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	r = c->loaded ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&c->mu);
	return r;
}

void dp_chan_counters(const struct dp_chan *c, struct dp_chan_counters *out)
{
	const uint64_t *src = (const uint64_t *)&c->n;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void dp_chan_stop(struct dp_chan *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	if (c->started) {
		if (write(c->stopfd, &one, sizeof(one)) < 0)
			log_warn("dpdk-chan: stop: %s", strerror(errno));
		pthread_join(c->th, NULL);
	}
	maybe_save(c, true);
	unlink(c->path);
	dp_chan_free(c);
}
