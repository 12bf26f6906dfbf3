// SPDX-License-Identifier: GPL-2.0-only
/* segctl: value parsers shared by commands, names, time conversion. */
#include "segctl.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *const segctl_dir_names[] = { "ingress", "egress", NULL };
const char *const segctl_onoff_names[] = { "off", "on", NULL };

static const struct {
	const char *name;
	int proto;
} proto_names[] = {
	{ "any", 0 },
	{ "tcp", IPPROTO_TCP },
	{ "udp", IPPROTO_UDP },
	{ "sctp", IPPROTO_SCTP },
	{ "icmp", IPPROTO_ICMP },
	{ "icmpv6", IPPROTO_ICMPV6 },
};

int segctl_parse_proto(const char *arg, void *field)
{
	unsigned long long v;
	int err;

	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++) {
		if (!strcasecmp(arg, proto_names[i].name)) {
			*(int *)field = proto_names[i].proto;
			return 0;
		}
	}
	err = opts_parse_ull(arg, 0, 255, &v);
	if (err)
		return err;
	*(int *)field = (int)v;
	return 0;
}

const char *segctl_proto_name(unsigned proto, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if ((unsigned)proto_names[i].proto == proto)
			return proto_names[i].name;
	snprintf(buf, len, "%u", proto);
	return buf;
}

int segctl_parse_port(const char *arg, void *field)
{
	struct port_range *r = field;
	unsigned long long lo, hi;
	const char *dash;
	char buf[16];
	int err;

	if (!strcmp(arg, "any")) {
		*r = (struct port_range){ 0, 65535 };
		return 0;
	}
	dash = strchr(arg, '-');
	if (!dash) {
		err = opts_parse_ull(arg, 0, 65535, &lo);
		if (err)
			return err;
		*r = (struct port_range){ (uint16_t)lo, (uint16_t)lo };
		return 0;
	}
	if ((size_t)(dash - arg) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, arg, (size_t)(dash - arg));
	buf[dash - arg] = '\0';
	err = opts_parse_ull(buf, 0, 65535, &lo);
	if (!err)
		err = opts_parse_ull(dash + 1, 0, 65535, &hi);
	if (err)
		return err;
	if (lo > hi)
		return -ERANGE;
	*r = (struct port_range){ (uint16_t)lo, (uint16_t)hi };
	return 0;
}

int segctl_parse_peer(const char *arg, void *field)
{
	unsigned long long v;
	int err;

	if (!strcmp(arg, "any")) {
		*(uint32_t *)field = SEG_ID_ANY;
		return 0;
	}
	err = opts_parse_ull(arg, 1, UINT32_MAX, &v);
	if (err)
		return err;
	*(uint32_t *)field = (uint32_t)v;
	return 0;
}

void segctl_out_ifkey(struct out *o, const char *key, __u32 ifkey)
{
	out_u64(o, OUT_ANY, key, ifkey & SEG_IFKEY_NETNS ? "%#llx" : NULL, ifkey);
}

const char *segctl_netns_path(const char *arg, char *buf, size_t len)
{
	if (strchr(arg, '/'))
		return arg;
	snprintf(buf, len, "/run/netns/%s", arg);
	return buf;
}

unsigned long long segctl_mono_to_real_ns(unsigned long long mono_ns)
{
	struct timespec mono, real;
	long long now_mono, now_real;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	now_mono = mono.tv_sec * 1000000000ll + mono.tv_nsec;
	now_real = real.tv_sec * 1000000000ll + real.tv_nsec;
	return (unsigned long long)(now_real - (now_mono - (long long)mono_ns));
}

const char *segctl_time_str(unsigned long long real_ns, char *buf, size_t len)
{
	time_t sec = (time_t)(real_ns / 1000000000ull);
	struct tm tm;
	char base[32];

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03lluZ", base, (real_ns / 1000000ull) % 1000);
	return buf;
}
