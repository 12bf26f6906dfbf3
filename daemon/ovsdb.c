// SPDX-License-Identifier: GPL-2.0-only
#include "ovsdb.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define OVSDB_REQ_ID 4711
#define OVSDB_MAX_REPLY (16u << 20) /* a node with ~100k ports stays below this */

static const char ovsdb_req[] = "{\"id\":4711,\"method\":\"transact\",\"params\":[\"Open_vSwitch\","
				"{\"op\":\"select\",\"table\":\"Interface\",\"where\":[],"
				"\"columns\":[\"name\",\"external_ids\",\"ofport\"]}]}";

struct ovsdb_conn {
	int fd;
	struct timespec deadline;
	char *buf;
	size_t len, cap;
};

static int ovsdb_ms_left(const struct ovsdb_conn *c)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (c->deadline.tv_sec - now.tv_sec) * 1000LL +
	     (c->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

/* Waits for events on c->fd until the deadline: 0 or -ETIMEDOUT/-errno. */
static int ovsdb_wait(struct ovsdb_conn *c, short events)
{
	struct pollfd p = { .fd = c->fd, .events = events };
	int n;

	do {
		n = poll(&p, 1, ovsdb_ms_left(c));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

static int ovsdb_connect(struct ovsdb_conn *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return -errno;
	err = ovsdb_wait(c, POLLOUT);
	return err;
}

static int ovsdb_send(struct ovsdb_conn *c, const char *msg, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, msg, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int err = ovsdb_wait(c, POLLOUT);

			if (err)
				return err;
			continue;
		}
		if (n < 0)
			return -errno;
		msg += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more bytes into c->buf: 0, -ECONNRESET on EOF, -ETIMEDOUT, -errno. */
static int ovsdb_recv_more(struct ovsdb_conn *c)
{
	ssize_t n;

	if (c->cap - c->len < 4096) {
		size_t cap = c->cap ? c->cap * 2 : 65536;
		char *b;

		if (cap > OVSDB_MAX_REPLY)
			return -EMSGSIZE;
		b = realloc(c->buf, cap);
		if (!b)
			return -ENOMEM;
		c->buf = b;
		c->cap = cap;
	}
	for (;;) {
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			return 0;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (errno == EAGAIN) {
			int err = ovsdb_wait(c, POLLIN);

			if (err)
				return err;
		}
	}
}

/* Reads messages until the reply to our request: *reply is a new reference.
 * Anything else the server sends first (an "echo" probe, notifications) is
 * skipped. */
static int ovsdb_read_reply(struct ovsdb_conn *c, json_t **reply)
{
	for (;;) {
		json_error_t jerr;
		json_t *msg = NULL;
		size_t used;

		if (c->len)
			msg = json_loadb(c->buf, c->len, JSON_DISABLE_EOF_CHECK, &jerr);
		if (!msg) {
			int err;

			if (c->len && json_error_code(&jerr) != json_error_premature_end_of_input)
				return -EPROTO;
			err = ovsdb_recv_more(c);
			if (err)
				return err;
			continue;
		}
		used = (size_t)jerr.position;
		if (json_integer_value(json_object_get(msg, "id")) == OVSDB_REQ_ID &&
		    json_object_get(msg, "result")) {
			*reply = msg;
			return 0;
		}
		json_decref(msg);
		if (used == 0 || used > c->len)
			return -EPROTO;
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
	}
}

/* external_ids is ["map", [[k, v], ...]] */
static const char *ovsdb_map_get(json_t *map, const char *key)
{
	json_t *pairs = json_array_get(map, 1), *kv;
	size_t i;

	if (!json_is_string(json_array_get(map, 0)) ||
	    strcmp(json_string_value(json_array_get(map, 0)), "map"))
		return NULL;
	json_array_foreach (pairs, i, kv) {
		const char *k = json_string_value(json_array_get(kv, 0));

		if (k && !strcmp(k, key))
			return json_string_value(json_array_get(kv, 1));
	}
	return NULL;
}

static void ovsdb_copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static int ovsdb_parse_rows(json_t *reply, struct ovsdb_iface **out, size_t *n)
{
	json_t *res0 = json_array_get(json_object_get(reply, "result"), 0);
	json_t *rows = json_object_get(res0, "rows"), *row;
	struct ovsdb_iface *v;
	size_t i, k = 0;

	if (!json_is_array(rows)) {
		const char *e = json_string_value(json_object_get(res0, "error"));

		if (e)
			log_warn("ovsdb: select Interface: %s", e);
		return -EPROTO;
	}
	v = calloc(json_array_size(rows) + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	json_array_foreach (rows, i, row) {
		const char *name = json_string_value(json_object_get(row, "name"));
		json_t *ids = json_object_get(row, "external_ids");
		json_t *ofport = json_object_get(row, "ofport");

		if (!name || strlen(name) >= IF_NAMESIZE)
			continue;
		ovsdb_copy(v[k].name, sizeof(v[k].name), name);
		ovsdb_copy(v[k].iface_id, sizeof(v[k].iface_id), ovsdb_map_get(ids, "iface-id"));
		ovsdb_copy(v[k].attached_mac, sizeof(v[k].attached_mac),
			   ovsdb_map_get(ids, "attached-mac"));
		/* an unset optional column is ["set", []] */
		v[k].ofport = json_is_integer(ofport) ? json_integer_value(ofport) : -1;
		k++;
	}
	*out = v;
	*n = k;
	return 0;
}

int ovsdb_list_ifaces(const char *sock_path, int timeout_ms, struct ovsdb_iface **out, size_t *n)
{
	struct ovsdb_conn c = { .fd = -1 };
	json_t *reply = NULL;
	int err;

	*out = NULL;
	*n = 0;
	clock_gettime(CLOCK_MONOTONIC, &c.deadline);
	c.deadline.tv_sec += timeout_ms / 1000;
	c.deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (c.deadline.tv_nsec >= 1000000000) {
		c.deadline.tv_sec++;
		c.deadline.tv_nsec -= 1000000000;
	}
	err = ovsdb_connect(&c, sock_path);
	if (err) {
		log_err(err, "ovsdb: connect %s", sock_path);
		goto out;
	}
	err = ovsdb_send(&c, ovsdb_req, sizeof(ovsdb_req) - 1);
	if (!err)
		err = ovsdb_read_reply(&c, &reply);
	if (!err)
		err = ovsdb_parse_rows(reply, out, n);
	if (err)
		log_err(err, "ovsdb: select Interface via %s", sock_path);
out:
	json_decref(reply);
	free(c.buf);
	if (c.fd >= 0)
		close(c.fd);
	return err;
}
