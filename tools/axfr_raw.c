/*
 * axfr_raw - the transfer floor of tools/bench control and xfr: receive an
 * AXFR over TCP and discard it without parsing a record.
 *
 *   axfr_raw SERVER[@PORT] ZONE RECORDS
 *
 * Sends one AXFR query (built with libknot), then reads length-prefixed
 * messages, looking only at each message's header (ID, QR, RCODE, ANCOUNT),
 * until the answer counts add up to RECORDS (the zone's record count with
 * both SOAs, e.g. moat-zonecheck's "records=") and closes.  Prints
 * "records=N messages=M bytes=B" on stdout.  Exit 0 when exactly RECORDS
 * arrived; 1 when the server answered an error, closed early, sent nothing
 * for 60 s or sent more.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libknot/libknot.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* read_full - read exactly N bytes; 0, -EPIPE at end of stream, or -errno */
static int read_full(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

/* send_query - an AXFR question for ZONE with ID, length-prefixed; 0 or -errno */
static int send_query(int fd, const char *zone, uint16_t id)
{
	knot_dname_t *name = knot_dname_from_str_alloc(zone);
	knot_pkt_t *q = knot_pkt_new(NULL, KNOT_WIRE_MAX_PKTSIZE, NULL);
	uint8_t buf[2 + 512];
	int ret = -EINVAL;

	if (!name || !q)
		goto out;
	knot_wire_set_id(q->wire, id);
	if (knot_pkt_put_question(q, name, KNOT_CLASS_IN, KNOT_RRTYPE_AXFR) != KNOT_EOK ||
	    q->size > sizeof(buf) - 2)
		goto out;
	buf[0] = (uint8_t)(q->size >> 8);
	buf[1] = (uint8_t)q->size;
	memcpy(buf + 2, q->wire, q->size);
	ret = write(fd, buf, q->size + 2) == (ssize_t)(q->size + 2) ? 0 : -EIO;
out:
	knot_pkt_free(q);
	knot_dname_free(name, NULL);
	return ret;
}

int main(int argc, char **argv)
{
	static uint8_t msg[65536];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
	unsigned long long want, records = 0, messages = 0, bytes = 0;
	char host[64], *at;
	struct timeval rcv_timeout = { .tv_sec = 60 };
	uint16_t id = (uint16_t)getpid();
	int fd, ret;

	if (argc != 4) {
		fprintf(stderr, "usage: axfr_raw SERVER[@PORT] ZONE RECORDS\n");
		return 2;
	}
	snprintf(host, sizeof(host), "%s", argv[1]);
	at = strchr(host, '@');
	if (at) {
		*at = '\0';
		sa.sin_port = htons((uint16_t)atoi(at + 1));
	}
	want = strtoull(argv[3], NULL, 10);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || want == 0) {
		fprintf(stderr, "axfr_raw: bad server '%s' or record count '%s'\n", argv[1], argv[3]);
		return 2;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	/* a server that stops sending mid-transfer fails the run, not hangs it */
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv_timeout, sizeof(rcv_timeout));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("axfr_raw: connect");
		return 1;
	}
	ret = send_query(fd, argv[2], id);
	if (ret < 0) {
		fprintf(stderr, "axfr_raw: query: %s\n", strerror(-ret));
		return 1;
	}
	while (records < want) {
		size_t len = 0;

		ret = read_full(fd, msg, 2);
		if (ret == 0) {
			len = (size_t)msg[0] << 8 | msg[1];
			ret = len < KNOT_WIRE_HEADER_SIZE ? -EBADMSG : read_full(fd, msg, len);
		}
		if (ret < 0) {
			fprintf(stderr, "axfr_raw: after %llu of %llu records: %s\n", records, want,
				strerror(-ret));
			return 1;
		}
		if (knot_wire_get_id(msg) != id || !knot_wire_get_qr(msg) ||
		    knot_wire_get_rcode(msg) != KNOT_RCODE_NOERROR) {
			fprintf(stderr, "axfr_raw: message %llu: id %u rcode %u\n", messages,
				knot_wire_get_id(msg), knot_wire_get_rcode(msg));
			return 1;
		}
		records += knot_wire_get_ancount(msg);
		messages++;
		bytes += len + 2;
	}
	close(fd);
	printf("records=%llu messages=%llu bytes=%llu\n", records, messages, bytes);
	if (records != want) {
		fprintf(stderr, "axfr_raw: %llu records, want %llu\n", records, want);
		return 1;
	}
	return 0;
}
