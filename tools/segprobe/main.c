// SPDX-License-Identifier: GPL-2.0-only
/* segprobe: command line, help text and dispatch. */
#include "segprobe.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"Usage: segprobe [-v] serve [--tcp PORTS] [--udp PORTS] [--sctp PORTS] [--bind ADDR]\n"
	"       segprobe [-v] connect ADDR PORT[/PROTO] [--timeout MS] [--count N]\n"
	"                [--interval MS] [--bind ADDR] [--sport PORT] [-o text|json] [-q]\n"
	"       segprobe --help | --version\n";

static const char help_text[] =
	"\n"
	"Real traffic for seg's tests, seglab and the demo: a server answering on TCP,\n"
	"UDP and SCTP ports, and a prober whose exit status says whether a peer\n"
	"answered. IPv4 and IPv6.\n"
	"\n"
	"COMMANDS\n"
	"  serve     Serve until killed (SIGINT, SIGTERM or SIGHUP end it with status 0).\n"
	"            TCP: accept and echo what arrives. UDP: echo each datagram from the\n"
	"            address it was sent to. SCTP: this kernel has no SCTP stack, so a raw\n"
	"            IPPROTO_SCTP socket per family receives INIT chunks and answers\n"
	"            INIT-ACK (verification tag = the INIT's initiate tag, a state\n"
	"            cookie, CRC32c checksum); the association goes no further.\n"
	"            Once every socket is bound it prints one line starting with\n"
	"            \"segprobe: serving\" on stdout: scripts wait for it.\n"
	"\n"
	"  connect   Probe ADDR on PORT/PROTO (PROTO: tcp, udp or sctp; default tcp)\n"
	"            in COUNT rounds and print one result line.\n"
	"            TCP: a handshake, then one line echoed per round on that connection.\n"
	"            UDP: one datagram echoed per round, from one socket.\n"
	"            SCTP: one INIT per round from one source port over a raw socket;\n"
	"            answered by an INIT-ACK carrying the INIT's tag and a cookie.\n"
	"\n"
	"OPTIONS (serve)\n"
	"  --tcp PORTS     TCP ports: a list like 80,443,8000-8003 (at most 64 per protocol)\n"
	"  --udp PORTS     UDP ports\n"
	"  --sctp PORTS    SCTP ports\n"
	"  --bind ADDR     listen on ADDR only (default: every IPv4 and IPv6 address)\n"
	"\n"
	"OPTIONS (connect)\n"
	"  --timeout MS    wait this long for the handshake and for each answer\n"
	"                  (default 1000, range 1-600000)\n"
	"  --count N       rounds (default 1, range 1-1000000); every round must be answered\n"
	"  --interval MS   pause between rounds (default 100, range 0-600000)\n"
	"  --bind ADDR     source address (same family as ADDR)\n"
	"                  (ADDR may be IPv4, IPv6, [IPv6] or fe80::X%IFNAME)\n"
	"  --sport PORT    source port (default: chosen by the kernel, random for SCTP)\n"
	"  -o, --output FORMAT  text (default) or json: one object with result, proto,\n"
	"                  family, src, sport, dst, dport, connected, count, replies,\n"
	"                  rtt_ms, detail\n"
	"  -q, --quiet     print nothing; only the exit status tells\n"
	"\n"
	"COMMON OPTIONS\n"
	"  -v, --verbose   log each connection, datagram and INIT (serve) to stderr\n"
	"  -h, --help      this text\n"
	"  -V, --version   version\n"
	"\n"
	"RESULTS (connect)\n"
	"  ok           every round answered\n"
	"  timeout      no handshake / no answer within the timeout (a silent drop)\n"
	"  refused      TCP RST, ICMP port unreachable; SCTP: ICMP protocol unreachable\n"
	"               (nothing on the peer reads SCTP; a segprobe serve that does not\n"
	"               serve the port stays silent: timeout)\n"
	"  unreachable  no route, or ICMP host/net unreachable\n"
	"  cut          answers came, then stopped (TCP: connected, then an echo timed out)\n"
	"  reset        the connection was reset\n"
	"  error        local failure (permissions, bad --bind, mismatched echo)\n"
	"\n"
	"EXIT STATUS\n"
	"  0  connect: every round answered; serve: ended by a signal\n"
	"  1  connect: blocked, timed out, refused, cut or failed; serve: could not start\n"
	"  2  usage error\n"
	"\n"
	"EXAMPLES\n"
	"  segprobe serve --tcp 80,81 --udp 53 --sctp 9\n"
	"  segprobe connect 10.77.0.3 80/tcp\n"
	"  segprobe connect fd77::3 9/sctp --timeout 500 -o json\n"
	"  segprobe connect 10.77.0.3 80 --count 50 --interval 100   # a long-lived flow\n"
	"\n"
	"Raw SCTP sockets and binding ports below 1024 need CAP_NET_RAW and\n"
	"CAP_NET_BIND_SERVICE.\n";

enum { OPT_TCP = 256, OPT_UDP, OPT_SCTP, OPT_BIND, OPT_TIMEOUT, OPT_COUNT, OPT_INTERVAL, OPT_SPORT };

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "segprobe: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%sTry 'segprobe --help'.\n", usage_text);
	return PROBE_EXIT_USAGE;
}

static int parse_int(const char *flag, const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "segprobe: %s: '%s' is not a number in %ld-%ld\n", flag, s, min,
			max);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int cmd_serve(int argc, char **argv, bool verbose)
{
	static const struct option lopts[] = {
		{ "tcp", required_argument, NULL, OPT_TCP },
		{ "udp", required_argument, NULL, OPT_UDP },
		{ "sctp", required_argument, NULL, OPT_SCTP },
		{ "bind", required_argument, NULL, OPT_BIND },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct serve_opts o = { .verbose = verbose };
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", lopts, NULL)) != -1) {
		enum probe_proto p = c == OPT_TCP ? PROTO_TCP : c == OPT_UDP ? PROTO_UDP : PROTO_SCTP;
		int err;

		switch (c) {
		case OPT_TCP:
		case OPT_UDP:
		case OPT_SCTP:
			err = port_list_parse(optarg, o.ports[p], &o.nports[p], PROBE_MAX_PORTS);
			if (err)
				return usage_error(err == -E2BIG ? "--%s: more than 64 ports"
								 : "bad port list: %s",
						   err == -E2BIG ? proto_name(p) : optarg);
			break;
		case OPT_BIND:
			o.bind = optarg;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			printf("%s%s", usage_text, help_text);
			return 0;
		default:
			return usage_error("%s", "bad option for serve");
		}
	}
	if (optind != argc)
		return usage_error("serve: unexpected argument '%s'", argv[optind]);
	if (!o.nports[PROTO_TCP] && !o.nports[PROTO_UDP] && !o.nports[PROTO_SCTP])
		return usage_error("%s", "serve: give at least one of --tcp, --udp, --sctp");
	if (o.bind) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (sockaddr_parse(o.bind, 0, &ss, &len))
			return usage_error("--bind: not an IPv4 or IPv6 address: %s", o.bind);
	}
	log_set_level(o.verbose ? LOG_LVL_INFO : LOG_LVL_WARN);
	return serve_run(&o) ? PROBE_EXIT_FAIL : PROBE_EXIT_OK;
}

/* "80", "80/tcp", "53/udp", "9/sctp" */
static int parse_port_proto(const char *s, struct connect_opts *o)
{
	const char *slash = strchr(s, '/');
	char port[8];
	size_t n = slash ? (size_t)(slash - s) : strlen(s);

	if (n == 0 || n >= sizeof(port))
		return -1;
	memcpy(port, s, n);
	port[n] = '\0';
	if (port_parse(port, &o->port, false))
		return -1;
	o->proto = PROTO_TCP;
	return slash ? proto_parse(slash + 1, &o->proto) : 0;
}

static int cmd_connect(int argc, char **argv, bool verbose)
{
	static const struct option lopts[] = {
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "bind", required_argument, NULL, OPT_BIND },
		{ "sport", required_argument, NULL, OPT_SPORT },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct connect_opts o = { .timeout_ms = 1000, .count = 1, .interval_ms = 100 };
	int c, v;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:qvh", lopts, NULL)) != -1) {
		switch (c) {
		case OPT_TIMEOUT:
			if (parse_int("--timeout", optarg, 1, 600000, &o.timeout_ms))
				return PROBE_EXIT_USAGE;
			break;
		case OPT_COUNT:
			if (parse_int("--count", optarg, 1, 1000000, &o.count))
				return PROBE_EXIT_USAGE;
			break;
		case OPT_INTERVAL:
			if (parse_int("--interval", optarg, 0, 600000, &o.interval_ms))
				return PROBE_EXIT_USAGE;
			break;
		case OPT_SPORT:
			if (parse_int("--sport", optarg, 1, 65535, &v))
				return PROBE_EXIT_USAGE;
			o.sport = (uint16_t)v;
			break;
		case OPT_BIND:
			o.bind = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "text"))
				return usage_error("-o: '%s' is not text or json", optarg);
			o.json = !strcmp(optarg, "json");
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			printf("%s%s", usage_text, help_text);
			return 0;
		default:
			return usage_error("%s", "bad option for connect");
		}
	}
	if (argc - optind != 2)
		return usage_error("%s", "connect: need ADDR and PORT[/PROTO]");
	o.addr = argv[optind];
	if (parse_port_proto(argv[optind + 1], &o))
		return usage_error("connect: '%s' is not PORT or PORT/tcp|udp|sctp",
				   argv[optind + 1]);
	log_set_level(verbose ? LOG_LVL_INFO : LOG_LVL_WARN);
	return connect_run(&o);
}

int main(int argc, char **argv)
{
	bool verbose = false;
	int i;

	log_init(argv[0], LOG_LVL_WARN);
	/* Global options come before the command; the rest is the command's. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("%s%s", usage_text, help_text);
			return 0;
		}
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			printf("segprobe %s\n", SEG_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "-v") && strcmp(argv[i], "--verbose"))
			return usage_error("unknown option '%s'", argv[i]);
		verbose = true;
	}
	if (i == argc)
		return usage_error("%s", "no command given");
	if (!strcmp(argv[i], "serve"))
		return cmd_serve(argc - i, argv + i, verbose);
	if (!strcmp(argv[i], "connect"))
		return cmd_connect(argc - i, argv + i, verbose);
	if (!strcmp(argv[i], "help"))
		return printf("%s%s", usage_text, help_text) < 0;
	return usage_error("unknown command '%s'", argv[i]);
}
