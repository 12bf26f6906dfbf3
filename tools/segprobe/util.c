// SPDX-License-Identifier: GPL-2.0-only
/* Addresses, ports and small helpers shared by serve and connect. */
#include "segprobe.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char *const proto_names[PROTO_MAX] = {
	[PROTO_TCP] = "tcp",
	[PROTO_UDP] = "udp",
	[PROTO_SCTP] = "sctp",
};

const char *proto_name(enum probe_proto p)
{
	return p < PROTO_MAX ? proto_names[p] : "?";
}

int proto_parse(const char *s, enum probe_proto *p)
{
	for (int i = 0; i < PROTO_MAX; i++) {
		if (!strcasecmp(s, proto_names[i])) {
			*p = (enum probe_proto)i;
			return 0;
		}
	}
	return -EINVAL;
}

int sockaddr_parse(const char *s, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2], *pct;
	size_t n = strlen(s);

	if (n >= sizeof(buf))
		return -EINVAL;
	/* Accept "[fd00::1]" as scripts often write it. */
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		memcpy(buf, s, n + 1);
	}
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	pct = strchr(buf, '%');
	if (pct) {
		/* fe80::1%eth0: the zone names the interface of a link-local address */
		*pct++ = '\0';
		s6->sin6_scope_id = if_nametoindex(pct);
		if (!s6->sin6_scope_id)
			return -EINVAL;
	}
	if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

const char *sockaddr_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

	if (ss->ss_family == AF_INET)
		return inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
	if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
	if (ss->ss_family == AF_INET6)
		return inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
	snprintf(buf, len, "?");
	return buf;
}

uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

const char *sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	sockaddr_addr_str(ss, a, sizeof(a));
	snprintf(buf, len, strchr(a, ':') ? "[%s]:%u" : "%s:%u", a, sockaddr_port(ss));
	return buf;
}

int port_parse(const char *s, uint16_t *port, bool allow_zero)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535 || (!v && !allow_zero))
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int port_range_parse(const char *s, uint16_t *lo, uint16_t *hi)
{
	char buf[16];
	const char *dash = strchr(s, '-');
	size_t n;

	if (!dash)
		return port_parse(s, lo, false) ?: port_parse(s, hi, false);
	n = (size_t)(dash - s);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (port_parse(buf, lo, false) || port_parse(dash + 1, hi, false) || *lo > *hi)
		return -EINVAL;
	return 0;
}

int port_list_parse(const char *s, uint16_t *ports, int *n, int max)
{
	char buf[256], *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, strlen(s) + 1);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint16_t lo, hi;

		if (port_range_parse(tok, &lo, &hi))
			return -EINVAL;
		for (uint32_t p = lo; p <= hi; p++) {
			if (*n >= max)
				return -E2BIG;
			ports[(*n)++] = (uint16_t)p;
		}
	}
	return *n ? 0 : -EINVAL;
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t rand_u32(void)
{
	uint32_t v = 0;

	while (!v) {
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			v = (uint32_t)now_ms() * 2654435761u;
	}
	return v;
}
