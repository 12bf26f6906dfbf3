// SPDX-License-Identifier: GPL-2.0-only
#include "ctl.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

const char *seg_ctl_socket_path(const char *explicit_path)
{
	const char *env = getenv(SEG_CTL_SOCKET_ENV);

	if (explicit_path && *explicit_path)
		return explicit_path;
	if (env && *env)
		return env;
	return SEG_CTL_SOCKET_DEFAULT;
}

int seg_ctl_connect(const char *path, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_err(-ENAMETOOLONG, "control socket path %s", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_err(-errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		if (err == -ENOENT || err == -ECONNREFUSED)
			return log_err(err, "connect to segd at %s (is segd running? --socket or $%s)",
				       path, SEG_CTL_SOCKET_ENV);
		return log_err(err, "connect to segd at %s", path);
	}
	*out = fd;
	return 0;
}

int seg_ctl_frame_encode(const json_t *msg, char **buf, size_t *len)
{
	char *body = json_dumps(msg, JSON_COMPACT);
	size_t n;
	uint32_t be;

	if (!body)
		return -ENOMEM;
	n = strlen(body);
	if (n > SEG_CTL_MAX_FRAME) {
		free(body);
		return -EMSGSIZE;
	}
	*buf = malloc(n + 4);
	if (!*buf) {
		free(body);
		return -ENOMEM;
	}
	be = htonl((uint32_t)n);
	memcpy(*buf, &be, 4);
	memcpy(*buf + 4, body, n);
	*len = n + 4;
	free(body);
	return 0;
}

void seg_ctl_decoder_init(struct seg_ctl_decoder *d, uint32_t max_frame)
{
	memset(d, 0, sizeof(*d));
	d->max_frame = max_frame ? max_frame : SEG_CTL_MAX_FRAME;
}

void seg_ctl_decoder_reset(struct seg_ctl_decoder *d)
{
	uint32_t max = d->max_frame;

	free(d->payload);
	seg_ctl_decoder_init(d, max);
}

ssize_t seg_ctl_decoder_feed(struct seg_ctl_decoder *d, const char *data, size_t len,
			     json_t **msg, char *errbuf, size_t errlen)
{
	size_t used = 0;

	*msg = NULL;
	while (d->hdr_have < 4 && used < len)
		d->hdr[d->hdr_have++] = (uint8_t)data[used++];
	if (d->hdr_have < 4)
		return (ssize_t)used;
	if (!d->payload) {
		uint32_t be;

		memcpy(&be, d->hdr, 4);
		d->want = ntohl(be);
		if (d->want > d->max_frame) {
			snprintf(errbuf, errlen, "frame of %u bytes exceeds the %u-byte limit", d->want,
				 d->max_frame);
			return -EMSGSIZE;
		}
		d->payload = malloc(d->want + 1);
		if (!d->payload)
			return -ENOMEM;
		d->have = 0;
	}
	if (len - used > d->want - d->have) {
		memcpy(d->payload + d->have, data + used, d->want - d->have);
		used += d->want - d->have;
		d->have = d->want;
	} else {
		memcpy(d->payload + d->have, data + used, len - used);
		d->have += len - used;
		used = len;
	}
	if (d->have == d->want) {
		json_error_t jerr;
		json_t *j = json_loadb(d->payload, d->want, 0, &jerr);

		seg_ctl_decoder_reset(d);
		if (!j || !json_is_object(j)) {
			snprintf(errbuf, errlen, "bad frame: %s",
				 j ? "not a JSON object" : jerr.text);
			json_decref(j);
			return -EBADMSG;
		}
		*msg = j;
	}
	return (ssize_t)used;
}

json_t *seg_ctl_ok(json_t *result)
{
	return json_pack("{s:i, s:b, s:o}", "v", SEG_CTL_VERSION, "ok", 1,
			 "result", result ? result : json_null());
}

json_t *seg_ctl_error(int code, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:i, s:b, s:{s:i, s:s}}", "v", SEG_CTL_VERSION, "ok", 0, "error", "code",
			 code, "message", msg);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int ms = -1, n;

	if (deadline) {
		long long left = deadline - now_ms();

		ms = left > 0 ? (int)left : 0;
	}
	n = poll(&p, 1, ms);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
	while (len) {
		ssize_t n;
		int err = wait_fd(fd, POLLOUT, deadline);

		if (err)
			return err;
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_msg(int fd, json_t **msg, long long deadline, char *errbuf, size_t errlen)
{
	struct seg_ctl_decoder d;
	char buf[65536];
	int err = 0;

	seg_ctl_decoder_init(&d, 0);
	*msg = NULL;
	while (!*msg) {
		ssize_t n, used;

		err = wait_fd(fd, POLLIN, deadline);
		if (err)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -ECONNRESET;
			break;
		}
		for (ssize_t off = 0; off < n && !*msg; off += used) {
			used = seg_ctl_decoder_feed(&d, buf + off, (size_t)(n - off), msg, errbuf,
						    errlen);
			if (used < 0) {
				err = (int)used;
				goto out;
			}
		}
	}
out:
	seg_ctl_decoder_reset(&d);
	return err;
}

int seg_ctl_call(int fd, const char *op, json_t *args, int timeout_ms, json_t **result,
		 char *errbuf, size_t errlen)
{
	long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	json_t *req, *resp = NULL, *v, *err_obj;
	char *buf = NULL;
	size_t len;
	int err;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	*result = NULL;
	req = json_pack("{s:i, s:s, s:o}", "v", SEG_CTL_VERSION, "op", op,
			"args", args ? json_incref(args) : json_object());
	if (!req)
		return -ENOMEM;
	err = seg_ctl_frame_encode(req, &buf, &len);
	json_decref(req);
	if (err)
		return err;
	err = send_all(fd, buf, len, deadline);
	free(buf);
	if (err)
		return err;
	err = recv_msg(fd, &resp, deadline, errbuf, errlen);
	if (err)
		return err;
	v = json_object_get(resp, "ok");
	if (json_is_true(v)) {
		*result = json_incref(json_object_get(resp, "result"));
		if (!*result)
			*result = json_null();
	} else {
		err_obj = json_object_get(resp, "error");
		err = (int)json_integer_value(json_object_get(err_obj, "code"));
		if (err >= 0)
			err = -EPROTO;
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s",
				 json_string_value(json_object_get(err_obj, "message")) ?:
					 "error without a message");
	}
	json_decref(resp);
	return err;
}
