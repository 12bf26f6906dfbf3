// SPDX-License-Identifier: GPL-2.0-only
/*
 * segprobe connect: N request/answer rounds against one peer, then one
 * result line. TCP: handshake once, then N line echoes on the connection;
 * UDP: N datagram echoes on one socket; SCTP: N INIT -> INIT-ACK exchanges
 * over a raw socket from one source port. A round answered within the
 * timeout counts as a reply.
 */
#include "segprobe.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct probe {
	const struct connect_opts *o;
	struct sockaddr_storage dst, src;
	socklen_t dstlen;
	bool have_src;
	int fd;
	/* result */
	const char *status; /* ok timeout refused unreachable reset cut error */
	bool connected;
	int replies;
	int64_t rtt_sum_us;
	char detail[160];
	/* SCTP: source port and initiate tag of the INIT in flight */
	uint16_t sctp_sport;
	uint32_t sctp_tag;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void probe_fail(struct probe *p, const char *status, const char *fmt, int err)
{
	p->status = status;
	snprintf(p->detail, sizeof(p->detail), fmt, err ? strerror(err) : "");
}

/* Status for a socket error: what a script wants to tell apart. */
static void probe_errno(struct probe *p, const char *what, int err)
{
	const char *st = "error";
	char fmt[64];

	/* ICMP protocol unreachable (v4) / parameter problem (v6): nothing on
	 * the peer reads this protocol, e.g. SCTP without segprobe serve. */
	if (err == ENOPROTOOPT || err == EPROTO)
		return probe_fail(p, "refused", "the peer does not speak the protocol (ICMP)%s", 0);
	if (err == ECONNREFUSED)
		st = "refused";
	else if (err == EHOSTUNREACH || err == ENETUNREACH)
		st = "unreachable";
	else if (err == ETIMEDOUT)
		st = "timeout";
	else if (err == ECONNRESET || err == EPIPE)
		st = "reset";
	snprintf(fmt, sizeof(fmt), "%s: %%s", what);
	probe_fail(p, st, fmt, err);
}

/* Waits for events until the absolute deadline; 1 ready, 0 timeout. */
static int wait_fd(int fd, short events, int64_t deadline_us)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int64_t left = deadline_us - now_us();
		int n;

		if (left <= 0)
			return 0;
		n = poll(&pfd, 1, (int)((left + 999) / 1000));
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : n;
	}
}

static int64_t deadline(const struct probe *p)
{
	return now_us() + (int64_t)p->o->timeout_ms * 1000;
}

/* Binds the source address/port asked for, if any. */
static int probe_bind(struct probe *p, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	if (!p->o->bind && !port)
		return 0;
	if (p->o->bind) {
		if (sockaddr_parse(p->o->bind, port, &ss, &len) || ss.ss_family != p->dst.ss_family)
			return log_err(-EINVAL, "--bind %s: not an address of the target's family",
				       p->o->bind);
	} else {
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = p->dst.ss_family;
		len = p->dst.ss_family == AF_INET ? sizeof(struct sockaddr_in)
						  : sizeof(struct sockaddr_in6);
		if (p->dst.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	}
	setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(p->fd, (struct sockaddr *)&ss, len))
		return log_err(-errno, "bind source %s", p->o->bind ? p->o->bind : "port");
	return 0;
}

static void probe_local(struct probe *p)
{
	socklen_t len = sizeof(p->src);

	p->have_src = !getsockname(p->fd, (struct sockaddr *)&p->src, &len);
}

static int probe_socket(struct probe *p, int type, int proto)
{
	p->fd = socket(p->dst.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	if (p->fd < 0) {
		probe_errno(p, "socket", errno);
		return -errno;
	}
	return 0;
}

/* Reads exactly len bytes equal to want before the deadline; 1 ok, 0 timeout, <0 error. */
static int tcp_read_echo(struct probe *p, const char *want, size_t len, int64_t dl)
{
	char buf[128];
	size_t got = 0;

	while (got < len) {
		int r = wait_fd(p->fd, POLLIN, dl);
		ssize_t n;

		if (r <= 0)
			return r;
		n = read(p->fd, buf + got, len - got);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return memcmp(buf, want, len) ? -EBADMSG : 1;
}

static void probe_tcp(struct probe *p)
{
	uint32_t nonce = rand_u32();
	int64_t dl;
	int err, r;
	socklen_t elen = sizeof(err);

	if (probe_socket(p, SOCK_STREAM, 0) || probe_bind(p, p->o->sport))
		goto bad_setup;
	dl = deadline(p);
	if (connect(p->fd, (struct sockaddr *)&p->dst, p->dstlen) && errno != EINPROGRESS)
		return probe_errno(p, "connect", errno);
	probe_local(p); /* the SYN's source, also when nothing answers */
	r = wait_fd(p->fd, POLLOUT, dl);
	if (r == 0)
		return probe_fail(p, "timeout", "no handshake within the timeout%s", 0);
	if (r < 0 || getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &elen))
		return probe_errno(p, "poll", r < 0 ? -r : errno);
	if (err)
		return probe_errno(p, "connect", err);
	p->connected = true;
	for (int i = 0; i < p->o->count; i++) {
		char line[64];
		int64_t t0;
		int n;

		if (i)
			sleep_ms(p->o->interval_ms);
		n = snprintf(line, sizeof(line), "segprobe %d %08x\n", i, nonce);
		t0 = now_us();
		if (send(p->fd, line, (size_t)n, MSG_NOSIGNAL) != n)
			return probe_errno(p, "send", errno);
		r = tcp_read_echo(p, line, (size_t)n, t0 + (int64_t)p->o->timeout_ms * 1000);
		if (r == 0)
			return probe_fail(p, "cut", "connected, then no echo within the timeout%s", 0);
		if (r == -EBADMSG)
			return probe_fail(p, "error", "echo does not match what was sent%s", 0);
		if (r < 0)
			return probe_errno(p, "read", -r);
		p->replies++;
		p->rtt_sum_us += now_us() - t0;
	}
	p->status = "ok";
	return;
bad_setup:
	if (!p->status)
		probe_fail(p, "error", "local setup failed%s", 0);
}

/* One datagram round on a connected socket; ok() tells a matching answer. */
typedef bool (*dgram_ok_fn)(struct probe *p, const uint8_t *buf, size_t len, const void *sent);

static int dgram_round(struct probe *p, const void *req, size_t len, dgram_ok_fn ok)
{
	int64_t t0 = now_us(), dl = t0 + (int64_t)p->o->timeout_ms * 1000;
	uint8_t buf[2048];

	if (send(p->fd, req, len, 0) != (ssize_t)len)
		return -errno;
	for (;;) {
		int r = wait_fd(p->fd, POLLIN, dl);
		ssize_t n;

		if (r <= 0)
			return r;
		n = recv(p->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if (ok(p, buf, (size_t)n, req)) {
			p->rtt_sum_us += now_us() - t0;
			return 1;
		}
	}
}

/* Runs the rounds of a datagram protocol; build() makes round i's request. */
typedef size_t (*dgram_build_fn)(struct probe *p, int i, uint8_t *buf, size_t len);

static void dgram_rounds(struct probe *p, dgram_build_fn build, dgram_ok_fn ok)
{
	for (int i = 0; i < p->o->count; i++) {
		uint8_t req[SCTP_PKT_MAX];
		size_t len = build(p, i, req, sizeof(req));
		int r;

		if (i)
			sleep_ms(p->o->interval_ms);
		r = dgram_round(p, req, len, ok);
		if (r == 0 && p->replies)
			return probe_fail(p, "cut", "answers stopped: no answer within the timeout%s",
					  0);
		if (r == 0)
			return probe_fail(p, "timeout", "no answer within the timeout%s", 0);
		if (r < 0)
			return probe_errno(p, "send/receive", -r);
		p->replies++;
	}
	p->status = "ok";
}

static size_t udp_build(struct probe *p, int i, uint8_t *buf, size_t len)
{
	return (size_t)snprintf((char *)buf, len, "segprobe %d %08x\n", i, rand_u32());
}

static bool udp_ok(struct probe *p, const uint8_t *buf, size_t len, const void *sent)
{
	return len == strlen(sent) && !memcmp(buf, sent, len);
}

static void probe_udp(struct probe *p)
{
	if (probe_socket(p, SOCK_DGRAM, 0) || probe_bind(p, p->o->sport)) {
		if (!p->status)
			probe_fail(p, "error", "local setup failed%s", 0);
		return;
	}
	if (connect(p->fd, (struct sockaddr *)&p->dst, p->dstlen))
		return probe_errno(p, "connect", errno);
	probe_local(p);
	dgram_rounds(p, udp_build, udp_ok);
}

static size_t sctp_build(struct probe *p, int i, uint8_t *buf, size_t len)
{
	p->sctp_tag = rand_u32();
	return sctp_build_init(buf, len, p->sctp_sport, p->o->port, p->sctp_tag, rand_u32());
}

static bool sctp_ok(struct probe *p, const uint8_t *buf, size_t len, const void *sent)
{
	struct sctp_info in;

	if (p->dst.ss_family == AF_INET) {
		size_t ihl = (size_t)(buf[0] & 0x0f) * 4;

		if (len < sizeof(struct iphdr) || ihl < sizeof(struct iphdr) || ihl > len)
			return false;
		buf += ihl;
		len -= ihl;
	}
	if (sctp_parse(buf, len, &in) || in.sport != p->o->port || in.dport != p->sctp_sport ||
	    in.vtag != p->sctp_tag)
		return false;
	/* A valid INIT-ACK names its own non-zero tag and carries a cookie. */
	return in.type == SCTP_CHUNK_INIT_ACK && in.init_tag && in.cookie_len;
}

static void probe_sctp(struct probe *p)
{
	struct sockaddr_storage to = p->dst;

	if (probe_socket(p, SOCK_RAW, IPPROTO_SCTP) || probe_bind(p, 0)) {
		if (!p->status)
			probe_fail(p, "error", "local setup failed%s", 0);
		return;
	}
	/* Raw sockets take no port; connecting filters what we receive. */
	if (to.ss_family == AF_INET)
		((struct sockaddr_in *)&to)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&to)->sin6_port = 0;
	if (connect(p->fd, (struct sockaddr *)&to, p->dstlen))
		return probe_errno(p, "connect", errno);
	probe_local(p);
	/* Our port is only what the INIT says; shown as the source port. */
	p->sctp_sport = p->o->sport ? p->o->sport : (uint16_t)(32768 + rand_u32() % 28232);
	if (p->src.ss_family == AF_INET)
		((struct sockaddr_in *)&p->src)->sin_port = htons(p->sctp_sport);
	else
		((struct sockaddr_in6 *)&p->src)->sin6_port = htons(p->sctp_sport);
	dgram_rounds(p, sctp_build, sctp_ok);
}

static void print_result(const struct probe *p)
{
	const struct connect_opts *o = p->o;
	char src[64] = "-", dst[64];
	double rtt = p->replies ? (double)p->rtt_sum_us / p->replies / 1000.0 : 0;

	sockaddr_str(&p->dst, dst, sizeof(dst));
	if (p->have_src)
		sockaddr_str(&p->src, src, sizeof(src));
	if (o->json) {
		char a[INET6_ADDRSTRLEN];
		json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:i, s:i, s:b, s:i, s:i}", "result",
				      p->status, "proto", proto_name(o->proto), "family",
				      p->dst.ss_family == AF_INET6 ? 6 : 4, "dst",
				      sockaddr_addr_str(&p->dst, a, sizeof(a)), "dport", o->port,
				      "sport", p->have_src ? sockaddr_port(&p->src) : 0,
				      "connected", p->connected, "count", o->count, "replies",
				      p->replies);

		if (!j)
			return;
		if (p->have_src)
			json_object_set_new(j, "src",
					    json_string(sockaddr_addr_str(&p->src, a, sizeof(a))));
		json_object_set_new(j, "rtt_ms", p->replies ? json_real((double)(int64_t)(rtt * 1000 + 0.5) / 1000) : json_null());
		json_object_set_new(j, "detail", json_string(p->detail));
		json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
		putchar('\n');
		json_decref(j);
		return;
	}
	printf("%-7s %s %s -> %s  replies %d/%d", p->status, proto_name(o->proto), src, dst,
	       p->replies, o->count);
	if (p->replies)
		printf("  rtt %.3f ms", rtt);
	if (p->detail[0])
		printf("  (%s)", p->detail);
	printf("\n");
}

int connect_run(const struct connect_opts *o)
{
	struct probe p = { .o = o, .fd = -1 };

	if (sockaddr_parse(o->addr, o->port, &p.dst, &p.dstlen)) {
		log_error("not an IPv4 or IPv6 address: %s", o->addr);
		return PROBE_EXIT_USAGE;
	}
	if (o->proto == PROTO_TCP)
		probe_tcp(&p);
	else if (o->proto == PROTO_UDP)
		probe_udp(&p);
	else
		probe_sctp(&p);
	if (!o->quiet)
		print_result(&p);
	if (p.fd >= 0)
		close(p.fd);
	return strcmp(p.status, "ok") ? PROBE_EXIT_FAIL : PROBE_EXIT_OK;
}
