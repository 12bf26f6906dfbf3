// SPDX-License-Identifier: GPL-2.0-only
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void seg_addr_from_v4(struct in6_addr *out, __u32 be_addr)
{
	memset(out, 0, sizeof(*out));
	out->s6_addr[10] = 0xff;
	out->s6_addr[11] = 0xff;
	memcpy(&out->s6_addr[12], &be_addr, 4);
}

bool seg_addr_is_v4(const struct in6_addr *a)
{
	return IN6_IS_ADDR_V4MAPPED(a);
}

int seg_addr_parse(const char *s, struct in6_addr *out)
{
	struct in_addr v4;

	if (inet_pton(AF_INET, s, &v4) == 1) {
		seg_addr_from_v4(out, v4.s_addr);
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1)
		return 0;
	return -EINVAL;
}

int seg_prefix_parse(const char *s, struct in6_addr *out, __u32 *prefixlen)
{
	const char *slash = strchr(s, '/');
	char buf[INET6_ADDRSTRLEN];
	unsigned long len;
	char *end;
	size_t n;
	int err;

	if (!slash)
		return -EINVAL;
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	err = seg_addr_parse(buf, out);
	if (err)
		return err;
	if (slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (errno || *end || len > (seg_addr_is_v4(out) && !strchr(buf, ':') ? 32 : 128))
		return -EINVAL;
	if (seg_addr_is_v4(out) && !strchr(buf, ':'))
		len += 96;
	*prefixlen = (__u32)len;
	return 0;
}

/* Dotted quad, as inet_ntop(AF_INET) writes it (glibc's goes through
 * sprintf; the compiler formats an address for every ipBlock key). */
static const char *v4_str(const unsigned char *b, char *buf)
{
	char *p = buf;

	for (int i = 0; i < 4; i++) {
		unsigned int v = b[i];

		if (i)
			*p++ = '.';
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
	}
	*p = 0;
	return buf;
}

const char *seg_addr_str(const struct in6_addr *a, char *buf, size_t len)
{
	if (seg_addr_is_v4(a) && len >= INET_ADDRSTRLEN)
		return v4_str(&a->s6_addr[12], buf);
	if (seg_addr_is_v4(a))
		return inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)len);
	return inet_ntop(AF_INET6, a, buf, (socklen_t)len);
}

#define SEG_REASON_STR(sym, num, verdict, text) [num] = text,
static const char *const seg_reason_text[SEG_REASON_MAX] = { SEG_REASONS(SEG_REASON_STR) };
#undef SEG_REASON_STR

const char *seg_reason_str(__u32 reason)
{
	if (reason < SEG_REASON_MAX && seg_reason_text[reason])
		return seg_reason_text[reason];
	return "unknown reason";
}

const char *seg_verdict_str(__u32 verdict)
{
	switch (verdict) {
	case SEG_VERDICT_ALLOW:
		return "allow";
	case SEG_VERDICT_DENY:
		return "deny";
	case SEG_VERDICT_AUDIT:
		return "audit";
	}
	return "unknown";
}
