// SPDX-License-Identifier: GPL-2.0-only
/*
 * segprobe serve: one poll loop over TCP listeners and connections, UDP
 * sockets, raw SCTP sockets (IPv4 and IPv6) and a signalfd. Answers come
 * from the address the request was sent to (IP_PKTINFO / IPV6_PKTINFO).
 */
#include "segprobe.h"
#include "log.h"

#include <errno.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SRV_MAX_CONNS 256
#define SRV_MAX_FDS (PROTO_MAX * PROBE_MAX_PORTS + 3 + SRV_MAX_CONNS)
#define SRV_BUF 65536

enum sock_kind { SK_SIGNAL, SK_TCP_LISTEN, SK_TCP_CONN, SK_UDP, SK_SCTP };

struct srv_sock {
	enum sock_kind kind;
	int family;
	uint16_t port;
};

struct server {
	const struct serve_opts *o;
	struct pollfd pfd[SRV_MAX_FDS];
	struct srv_sock sk[SRV_MAX_FDS];
	int n, nconns;
	uint8_t buf[SRV_BUF];
};

static int srv_add(struct server *s, int fd, enum sock_kind kind, int family, uint16_t port)
{
	if (s->n >= SRV_MAX_FDS) {
		close(fd);
		return -EMFILE;
	}
	s->pfd[s->n] = (struct pollfd){ .fd = fd, .events = POLLIN };
	s->sk[s->n] = (struct srv_sock){ .kind = kind, .family = family, .port = port };
	s->n++;
	return 0;
}

/* Local address to bind: --bind, else the IPv6 wildcard (dual stack). */
static int srv_local(const struct server *s, int family_pref, uint16_t port,
		     struct sockaddr_storage *ss, socklen_t *len)
{
	if (s->o->bind)
		return sockaddr_parse(s->o->bind, port, ss, len);
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family_pref;
	if (family_pref == AF_INET6) {
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
		*len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)ss)->sin_port = htons(port);
		*len = sizeof(struct sockaddr_in);
	}
	return 0;
}

static int sock_want_pktinfo(int fd, int family)
{
	int one = 1;

	if (family == AF_INET6)
		return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
}

/* TCP or UDP socket for one port; falls back to IPv4 without IPv6. */
static int srv_open_port(struct server *s, enum probe_proto proto, uint16_t port)
{
	int type = proto == PROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
	struct sockaddr_storage ss;
	int fd = -1, one = 1, zero = 0;
	char name[64];
	socklen_t len;
	int err;

	if (srv_local(s, AF_INET6, port, &ss, &len))
		return log_err(-EINVAL, "bad --bind address %s", s->o->bind);
	fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && errno == EAFNOSUPPORT && !s->o->bind) {
		srv_local(s, AF_INET, port, &ss, &len);
		fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0)
		return log_err(-errno, "%s socket", proto_name(proto));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (proto == PROTO_UDP && sock_want_pktinfo(fd, ss.ss_family)) {
		err = log_err(-errno, "udp pktinfo");
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, len)) {
		err = log_err(-errno, "bind %s %s", proto_name(proto),
			      sockaddr_str(&ss, name, sizeof(name)));
		goto fail;
	}
	if (proto == PROTO_TCP && listen(fd, 128)) {
		err = log_err(-errno, "listen tcp %s", sockaddr_str(&ss, name, sizeof(name)));
		goto fail;
	}
	return srv_add(s, fd, proto == PROTO_TCP ? SK_TCP_LISTEN : SK_UDP, ss.ss_family, port);
fail:
	close(fd);
	return err;
}

/* A raw IPPROTO_SCTP socket per family (or the --bind one); an optional
 * family the kernel lacks is skipped. */
static int srv_open_sctp(struct server *s, int family, bool optional)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, err;

	if (srv_local(s, family, 0, &ss, &len))
		return log_err(-EINVAL, "bad --bind address %s", s->o->bind);
	fd = socket(ss.ss_family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_SCTP);
	if (fd < 0 && optional && errno == EAFNOSUPPORT)
		return 0;
	if (fd < 0)
		return log_err(-errno, "raw sctp socket (%s)",
			       ss.ss_family == AF_INET6 ? "IPv6" : "IPv4");
	if (sock_want_pktinfo(fd, ss.ss_family)) {
		err = log_err(-errno, "sctp raw socket pktinfo");
		goto fail;
	}
	if (s->o->bind && bind(fd, (struct sockaddr *)&ss, len)) {
		err = log_err(-errno, "bind sctp raw socket to %s", s->o->bind);
		goto fail;
	}
	return srv_add(s, fd, SK_SCTP, ss.ss_family, 0);
fail:
	close(fd);
	return err;
}

static int srv_open_signals(struct server *s)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return log_err(-errno, "sigprocmask");
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return log_err(-errno, "signalfd");
	return srv_add(s, fd, SK_SIGNAL, 0, 0);
}

static int srv_open(struct server *s)
{
	const struct serve_opts *o = s->o;
	int err = srv_open_signals(s);

	for (int p = PROTO_TCP; !err && p <= PROTO_UDP; p++)
		for (int i = 0; !err && i < o->nports[p]; i++)
			err = srv_open_port(s, (enum probe_proto)p, o->ports[p][i]);
	if (err || !o->nports[PROTO_SCTP])
		return err;
	if (o->bind)
		return srv_open_sctp(s, 0, false);
	return srv_open_sctp(s, AF_INET, false) ?: srv_open_sctp(s, AF_INET6, true);
}

/* ---- answering ------------------------------------------------------------ */

/* The destination of a received datagram, to answer from it. */
struct pkt_dst {
	bool have;
	struct in_pktinfo v4;
	struct in6_pktinfo v6;
};

static void pkt_dst_get(struct msghdr *m, struct pkt_dst *d)
{
	struct cmsghdr *c;

	memset(d, 0, sizeof(*d));
	for (c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			memcpy(&d->v4, CMSG_DATA(c), sizeof(d->v4));
			d->v4.ipi_spec_dst = d->v4.ipi_addr;
			d->v4.ipi_ifindex = 0;
			d->have = true;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			memcpy(&d->v6, CMSG_DATA(c), sizeof(d->v6));
			if (!IN6_IS_ADDR_LINKLOCAL(&d->v6.ipi6_addr))
				d->v6.ipi6_ifindex = 0;
			d->have = true;
		}
	}
}

/* sendto() from the address the request went to. */
static ssize_t reply(int fd, int family, const struct pkt_dst *d, const void *buf, size_t len,
		     const struct sockaddr_storage *to, socklen_t tolen)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov,
			    .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (d->have) {
		bool v6 = family == AF_INET6;
		size_t sz = v6 ? sizeof(d->v6) : sizeof(d->v4);

		memset(&cb, 0, sizeof(cb));
		m.msg_control = cb.buf;
		m.msg_controllen = CMSG_SPACE(sz);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
		c->cmsg_type = v6 ? IPV6_PKTINFO : IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sz);
		memcpy(CMSG_DATA(c), v6 ? (const void *)&d->v6 : (const void *)&d->v4, sz);
	}
	n = sendmsg(fd, &m, 0);
	if (n < 0 && d->have && errno == EINVAL) {
		m.msg_control = NULL; /* odd destination: let routing pick */
		m.msg_controllen = 0;
		n = sendmsg(fd, &m, 0);
	}
	return n;
}

static ssize_t recv_dgram(int fd, void *buf, size_t len, struct sockaddr_storage *from,
			  socklen_t *fromlen, struct pkt_dst *d)
{
	union {
		char buf[256];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = { .msg_name = from, .msg_namelen = sizeof(*from), .msg_iov = &iov,
			    .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof(cb) };
	ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);

	if (n >= 0) {
		*fromlen = m.msg_namelen;
		pkt_dst_get(&m, d);
	}
	return n;
}

static void srv_udp(struct server *s, int i)
{
	struct sockaddr_storage from;
	char name[64];
	struct pkt_dst d;
	socklen_t flen;
	ssize_t n;

	n = recv_dgram(s->pfd[i].fd, s->buf, sizeof(s->buf), &from, &flen, &d);
	if (n < 0)
		return;
	log_info("udp %zd bytes from %s to port %u", n, sockaddr_str(&from, name, sizeof(name)),
		 s->sk[i].port);
	if (reply(s->pfd[i].fd, s->sk[i].family, &d, s->buf, (size_t)n, &from, flen) < 0)
		log_warn_err(-errno, "udp reply to %s", name);
}

static bool srv_serves_sctp(const struct server *s, uint16_t port)
{
	for (int i = 0; i < s->o->nports[PROTO_SCTP]; i++)
		if (s->o->ports[PROTO_SCTP][i] == port)
			return true;
	return false;
}

static void srv_sctp(struct server *s, int i)
{
	struct sockaddr_storage from;
	uint8_t out[SCTP_PKT_MAX];
	const uint8_t *pkt = s->buf;
	struct sctp_info in;
	char name[64];
	struct pkt_dst d;
	socklen_t flen;
	ssize_t n;
	size_t len;

	n = recv_dgram(s->pfd[i].fd, s->buf, sizeof(s->buf), &from, &flen, &d);
	if (n <= 0)
		return;
	len = (size_t)n;
	if (s->sk[i].family == AF_INET) {
		/* IPv4 raw sockets see the IP header; IPv6 ones do not. */
		size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;

		if (len < sizeof(struct iphdr) || ihl < sizeof(struct iphdr) || ihl > len)
			return;
		pkt += ihl;
		len -= ihl;
	}
	if (sctp_parse(pkt, len, &in)) {
		log_info("sctp: ignored malformed packet from %s",
			 sockaddr_addr_str(&from, name, sizeof(name)));
		return;
	}
	if (in.type != SCTP_CHUNK_INIT || in.vtag != 0 || !srv_serves_sctp(s, in.dport))
		return;
	len = sctp_build_init_ack(out, sizeof(out), &in, rand_u32(), rand_u32());
	if (log_get_level() >= LOG_LVL_INFO) {
		/* A copy: raw IPv6 sockets reject a sendto() address with a port. */
		struct sockaddr_storage shown = from;

		if (shown.ss_family == AF_INET)
			((struct sockaddr_in *)&shown)->sin_port = htons(in.sport);
		else
			((struct sockaddr_in6 *)&shown)->sin6_port = htons(in.sport);
		log_info("sctp INIT from %s to port %u, tag 0x%08x: INIT-ACK",
			 sockaddr_str(&shown, name, sizeof(name)), in.dport, in.init_tag);
	}
	if (reply(s->pfd[i].fd, s->sk[i].family, &d, out, len, &from, flen) < 0)
		log_warn_err(-errno, "sctp INIT-ACK to %s",
			     sockaddr_addr_str(&from, name, sizeof(name)));
}

static void srv_accept(struct server *s, int i)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	char name[64];
	int fd;

	fd = accept4(s->pfd[i].fd, (struct sockaddr *)&from, &flen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (s->nconns >= SRV_MAX_CONNS) {
		log_warn("tcp: %d connections open, refusing %s", s->nconns,
			 sockaddr_str(&from, name, sizeof(name)));
		close(fd);
		return;
	}
	log_info("tcp connection from %s to port %u", sockaddr_str(&from, name, sizeof(name)),
		 s->sk[i].port);
	if (!srv_add(s, fd, SK_TCP_CONN, from.ss_family, s->sk[i].port))
		s->nconns++;
}

/* Echo what arrives; returns false when the connection is done. */
static bool srv_echo(struct server *s, int i)
{
	ssize_t n = read(s->pfd[i].fd, s->buf, sizeof(s->buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0)
		return false;
	/* Lines are short: a full socket buffer means a client not reading. */
	return write(s->pfd[i].fd, s->buf, (size_t)n) == n;
}

static void srv_drop(struct server *s, int i)
{
	close(s->pfd[i].fd);
	s->n--;
	s->nconns--;
	s->pfd[i] = s->pfd[s->n];
	s->sk[i] = s->sk[s->n];
}

static int srv_loop(struct server *s)
{
	for (;;) {
		int n = poll(s->pfd, (nfds_t)s->n, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return log_err(-errno, "poll");
		/* Backwards, so srv_drop()'s swap with the last slot is safe. */
		for (int i = s->n - 1; i >= 0; i--) {
			if (!s->pfd[i].revents)
				continue;
			switch (s->sk[i].kind) {
			case SK_SIGNAL:
				return 0;
			case SK_TCP_LISTEN:
				srv_accept(s, i);
				break;
			case SK_TCP_CONN:
				if (!srv_echo(s, i))
					srv_drop(s, i);
				break;
			case SK_UDP:
				srv_udp(s, i);
				break;
			case SK_SCTP:
				srv_sctp(s, i);
				break;
			}
		}
	}
}

static void srv_banner(const struct server *s)
{
	const struct serve_opts *o = s->o;

	printf("segprobe: serving on %s:", o->bind ? o->bind : "all addresses");
	for (int p = 0; p < PROTO_MAX; p++) {
		if (!o->nports[p])
			continue;
		printf(" %s", proto_name((enum probe_proto)p));
		for (int i = 0; i < o->nports[p]; i++)
			printf("%c%u", i ? ',' : ' ', o->ports[p][i]);
	}
	printf("\n");
	fflush(stdout);
}

int serve_run(const struct serve_opts *o)
{
	struct server *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return log_err(-ENOMEM, "server state");
	s->o = o;
	err = srv_open(s);
	if (!err) {
		srv_banner(s);
		err = srv_loop(s);
	}
	for (int i = 0; i < s->n; i++)
		close(s->pfd[i].fd);
	free(s);
	return err;
}
