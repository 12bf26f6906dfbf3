// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/compare/rr: request/response load and enforcement watchers for
 * bench/run (iperf3 has no request/response mode).
 *
 *   rr serve PORT                 echo server (epoll, any number of clients)
 *   rr sink PORT                  the same, but reads and discards (for stream)
 *   rr crr ADDR PORT SECONDS      connect, 1-byte request, 1-byte answer, close;
 *                                 prints connections per second
 *   rr rr ADDR PORT SECONDS       one connection, 1-byte ping-pong; prints
 *                                 round trips per second
 *   rr stream ADDR PORT SECONDS   one connection, 128 KiB writes as fast as
 *                                 it goes (to rr sink); prints bytes per second
 *
 * Load options (after SECONDS), for bench/run's in-run alternation:
 *   -i MS          instead of the total rate, one line per interval of about
 *                  MS ms, flushed at once: "iv START_NS END_NS COUNT CPU_NS"
 *                  (CLOCK_REALTIME ns; COUNT = connections, round trips or
 *                  bytes done in [START, END]; CPU_NS = CPU time this process
 *                  and the --cpu tasks ran in it, from /proc/PID/schedstat)
 *   --cpu PID,...  tasks whose CPU time CPU_NS adds (server, ksoftirqd)
 *   --reconnect    rr: a new connection at the start of every interval, so
 *                  each interval's round trips ride a connection opened
 *                  under the filter configuration of that interval
 *   rr watch-up ADDR PORT MAX_MS  a new non-blocking connect every 200 us
 *                                 (each given up after 20 ms, before any SYN
 *                                 retransmit); prints the CLOCK_REALTIME ns at
 *                                 which the first connect that succeeded (and
 *                                 whose 1-byte request was echoed) was sent
 *   rr watch-down ADDR PORT MAX_MS  1-byte ping-pong on one connection, one
 *                                 every 200 us (not back to back: the watcher
 *                                 must not starve what it measures); prints
 *                                 the CLOCK_REALTIME ns at which the first
 *                                 request left unanswered for 200 ms was sent
 *                                 (on a loaded box a scheduling stall of 20 ms
 *                                 is common and must not read as a cut)
 *
 * Watchers print "ready" on stdout once they run, then "t NS" (or
 * "timeout") and exit 0 (1 on timeout). Addresses: IPv4 or IPv6.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WATCH_INTERVAL_NS 200000LL
#define WATCH_GIVEUP_NS 20000000LL /* watch-up: before any SYN retransmit */
#define WATCH_DOWN_GIVEUP_MS 200
#define WATCH_SLOTS 256

static long long now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int parse_addr(const char *host, const char *port, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	long p = strtol(port, NULL, 10);

	memset(ss, 0, sizeof(*ss));
	if (p <= 0 || p > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)p);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)p);
		*len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* echo: write back what was read (serve); otherwise discard it (sink) */
static int serve(const char *port, int echo)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct epoll_event ev, evs[64];
	int lfd = -1, ep = -1, one = 1, zero = 0, n, i;
	static char buf[1 << 17];

	sa.sin6_port = htons((unsigned short)strtol(port, NULL, 10));
	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ep = epoll_create1(0);
	if (lfd < 0 || ep < 0)
		goto fail;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096))
		goto fail;
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		goto fail;
	printf("serving\n");
	fflush(stdout);
	for (;;) {
		n = epoll_wait(ep, evs, 64, -1);
		if (n < 0 && errno != EINTR)
			goto fail;
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			ssize_t r;

			if (fd == lfd) {
				int c;

				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					nodelay(c);
					ev.events = EPOLLIN;
					ev.data.fd = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev))
						close(c);
				}
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			if (r > 0) {
				if (echo && write(fd, buf, (size_t)r) != r)
					close(fd);
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(fd);
			}
		}
	}
fail:
	perror("rr serve");
	if (lfd >= 0)
		close(lfd);
	if (ep >= 0)
		close(ep);
	return 1;
}

/* One request/response on fd; 0 or -1. */
static int ping(int fd)
{
	char c = 'x';

	if (write(fd, &c, 1) != 1)
		return -1;
	return read(fd, &c, 1) == 1 ? 0 : -1;
}

#define STREAM_CHUNK (1 << 17) /* iperf3's default TCP write */
#define MAX_CPU_PIDS 8

struct load_opts {
	long long iv_ns; /* 0: print the total rate only */
	int reconnect; /* rr: new connection every interval */
	int npids;
	int pids[MAX_CPU_PIDS];
};

/* ns the task ran on a CPU (first field of /proc/PID/schedstat), 0 if gone */
static long long task_cpu_ns(int pid)
{
	char path[64], buf[128];
	long long v = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = 0;
		v = strtoll(buf, NULL, 10);
	}
	return v;
}

static long long cpu_ns(const struct load_opts *o)
{
	long long v = now_ns(CLOCK_PROCESS_CPUTIME_ID);

	for (int i = 0; i < o->npids; i++)
		v += task_cpu_ns(o->pids[i]);
	return v;
}

static void close_rst(int fd)
{
	/* RST instead of FIN: no TIME_WAIT pile-up over a run */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* One operation of MODE on *fd (connected on demand): the count it adds
 * (1 or bytes written), or -1. */
static long long load_op(int mode, int *fd, const struct sockaddr_storage *ss, socklen_t len)
{
	static char chunk[STREAM_CHUNK];
	ssize_t w;

	if (*fd < 0) {
		*fd = socket(ss->ss_family, SOCK_STREAM, 0);
		if (*fd < 0 || connect(*fd, (const struct sockaddr *)ss, len))
			return -1;
		if (mode != 's')
			nodelay(*fd);
	}
	if (mode == 's') {
		w = write(*fd, chunk, sizeof(chunk));
		return w > 0 ? w : -1;
	}
	if (ping(*fd))
		return -1;
	if (mode == 'c') {
		close_rst(*fd);
		*fd = -1;
	}
	return 1;
}

/* MODE 'c' (crr), 'r' (rr) or 's' (stream) for SECS: prints the rate per
 * second, or with o->iv_ns one "iv" line per interval. */
static int load(int mode, const struct sockaddr_storage *ss, socklen_t len, double secs,
		const struct load_opts *o)
{
	long long start = now_ns(CLOCK_MONOTONIC), end = start + (long long)(secs * 1e9);
	long long off = now_ns(CLOCK_REALTIME) - start, t = start, ivs = start, cpu0 = 0;
	unsigned long long n = 0, n0 = 0;
	int fd = -1;

	if (o->iv_ns)
		cpu0 = cpu_ns(o);
	while (t < end) {
		long long k = load_op(mode, &fd, ss, len);

		if (k < 0)
			goto fail;
		n += (unsigned long long)k;
		t = now_ns(CLOCK_MONOTONIC);
		if (o->iv_ns && (t - ivs >= o->iv_ns || t >= end)) {
			long long c = cpu_ns(o);

			printf("iv %lld %lld %llu %lld\n", ivs + off, t + off, n - n0, c - cpu0);
			fflush(stdout);
			ivs = t;
			n0 = n;
			cpu0 = c;
			if (o->reconnect && fd >= 0) {
				close_rst(fd);
				fd = -1;
			}
		}
	}
	if (!o->iv_ns)
		printf("%.0f\n", (double)n * 1e9 / (double)(t - start));
	if (fd >= 0)
		close(fd);
	return 0;
fail:
	perror("rr load");
	if (fd >= 0)
		close(fd);
	return 1;
}

/* -i MS, --cpu PID,..., --reconnect after the positional arguments */
static int parse_load_opts(int argc, char **argv, struct load_opts *o)
{
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-i") && i + 1 < argc) {
			o->iv_ns = strtoll(argv[++i], NULL, 10) * 1000000LL;
			if (o->iv_ns <= 0)
				return -EINVAL;
		} else if (!strcmp(argv[i], "--cpu") && i + 1 < argc) {
			char *p = argv[++i];

			while (*p && o->npids < MAX_CPU_PIDS) {
				o->pids[o->npids++] = (int)strtol(p, &p, 10);
				if (*p == ',')
					p++;
			}
		} else if (!strcmp(argv[i], "--reconnect")) {
			o->reconnect = 1;
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

/* 0 if a 1-byte request on the connected non-blocking fd gets its answer
 * within WATCH_GIVEUP_NS: a poll that only says "writable" is not taken as
 * a connection the policy let through. */
static int echoes(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	char c = 'u';

	if (write(fd, &c, 1) != 1)
		return -1;
	if (poll(&pf, 1, (int)(WATCH_GIVEUP_NS / 1000000)) != 1)
		return -1;
	return read(fd, &c, 1) == 1 ? 0 : -1;
}

static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					       ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int watch_up(const struct sockaddr_storage *ss, socklen_t len, long long max_ns)
{
	struct pollfd pf[WATCH_SLOTS];
	long long sent[WATCH_SLOTS], deadline, next = 0, t;
	int i, rc = 1, best_port = 0;

	for (i = 0; i < WATCH_SLOTS; i++)
		pf[i].fd = -1;
	printf("ready\n");
	fflush(stdout);
	deadline = now_ns(CLOCK_MONOTONIC) + max_ns;
	while ((t = now_ns(CLOCK_MONOTONIC)) < deadline) {
		if (t >= next) {
			for (i = 0; i < WATCH_SLOTS && pf[i].fd >= 0; i++)
				;
			if (i < WATCH_SLOTS) {
				pf[i].fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
				pf[i].events = POLLOUT;
				sent[i] = now_ns(CLOCK_REALTIME);
				if (pf[i].fd >= 0 &&
				    connect(pf[i].fd, (const struct sockaddr *)ss, len) &&
				    errno != EINPROGRESS) {
					close(pf[i].fd);
					pf[i].fd = -1;
				}
			}
			next = t + WATCH_INTERVAL_NS;
		}
		struct timespec wait = { 0, next > t ? next - t : 0 };

		if (ppoll(pf, WATCH_SLOTS, &wait, NULL) < 0 && errno != EINTR)
			break;
		long long best = -1, rt = now_ns(CLOCK_REALTIME);

		for (i = 0; i < WATCH_SLOTS; i++) {
			int err = 0;
			socklen_t el = sizeof(err);

			if (pf[i].fd < 0)
				continue;
			if (pf[i].revents & (POLLOUT | POLLERR | POLLHUP)) {
				if (getsockopt(pf[i].fd, SOL_SOCKET, SO_ERROR, &err, &el))
					err = errno;
				/* connected for real: the echo server answers */
				if (!err && !echoes(pf[i].fd) && (best < 0 || sent[i] < best)) {
					best = sent[i];
					best_port = local_port(pf[i].fd);
				}
				close(pf[i].fd);
				pf[i].fd = -1;
			} else if (rt - sent[i] > WATCH_GIVEUP_NS) {
				close(pf[i].fd);
				pf[i].fd = -1;
			}
		}
		if (best >= 0) {
			printf("t %lld\nport %d\n", best, best_port);
			rc = 0;
			break;
		}
	}
	if (rc)
		printf("timeout\n");
	for (i = 0; i < WATCH_SLOTS; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	return rc;
}

static int watch_down(const struct sockaddr_storage *ss, socklen_t len, long long max_ns)
{
	long long deadline, sent;
	int fd, rc = 1;
	char c = 'x';

	fd = socket(ss->ss_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)ss, len)) {
		perror("rr watch-down: connect");
		goto out;
	}
	nodelay(fd);
	printf("ready\n");
	fflush(stdout);
	deadline = now_ns(CLOCK_MONOTONIC) + max_ns;
	while (now_ns(CLOCK_MONOTONIC) < deadline) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		struct timespec gap = { 0, WATCH_INTERVAL_NS };

		nanosleep(&gap, NULL);

		sent = now_ns(CLOCK_REALTIME);
		if (write(fd, &c, 1) != 1) {
			printf("t %lld\n", sent);
			rc = 0;
			goto out;
		}
		if (poll(&pf, 1, WATCH_DOWN_GIVEUP_MS) <= 0 || read(fd, &c, 1) != 1) {
			printf("t %lld\n", sent);
			rc = 0;
			goto out;
		}
	}
	printf("timeout\n");
out:
	if (fd >= 0) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	return rc;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rr serve|sink PORT |\n"
		"       rr crr|rr|stream ADDR PORT SECONDS [-i MS] [--cpu PID,...] [--reconnect] |\n"
		"       rr watch-up|watch-down ADDR PORT MAX_MS\n");
}

int main(int argc, char **argv)
{
	struct load_opts lo = { 0 };
	struct sockaddr_storage ss;
	socklen_t len;

	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && (!strcmp(argv[1], "serve") || !strcmp(argv[1], "sink")))
		return serve(argv[2], !strcmp(argv[1], "serve"));
	if (argc < 5 || parse_addr(argv[2], argv[3], &ss, &len)) {
		usage();
		return 2;
	}
	if (!strcmp(argv[1], "crr") || !strcmp(argv[1], "rr") || !strcmp(argv[1], "stream")) {
		if (parse_load_opts(argc - 5, argv + 5, &lo)) {
			usage();
			return 2;
		}
		return load(argv[1][0] == 'c' ? 'c' :
			    argv[1][0] == 's' ? 's' :
						'r',
			    &ss, len, strtod(argv[4], NULL), &lo);
	}
	if (argc != 5) {
		usage();
		return 2;
	}
	if (!strcmp(argv[1], "watch-up"))
		return watch_up(&ss, len, strtoll(argv[4], NULL, 10) * 1000000LL);
	if (!strcmp(argv[1], "watch-down"))
		return watch_down(&ss, len, strtoll(argv[4], NULL, 10) * 1000000LL);
	usage();
	return 2;
}
