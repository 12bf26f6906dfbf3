// SPDX-License-Identifier: GPL-2.0-only
#include "ctl_server.h"

#include "ctl.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct ctl_client {
	struct ctl_server *srv;
	int fd;
	struct loop_src *src, *timer;
	struct seg_ctl_decoder dec;
	char *out; /* pending response bytes */
	size_t out_len, out_off;
	struct ctl_client *next;
};

struct ctl_server {
	struct loop *loop;
	struct ctl_server_opts opts;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	struct loop_src *src;
	struct ctl_client *clients;
	unsigned int nclients;
	struct ctl_server_stats st;
};

static void client_close(struct ctl_client *c)
{
	struct ctl_server *s = c->srv;
	struct ctl_client **pp;

	for (pp = &s->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	s->nclients--;
	loop_del(s->loop, c->src);
	loop_del(s->loop, c->timer);
	close(c->fd);
	seg_ctl_decoder_reset(&c->dec);
	free(c->out);
	free(c);
}

static int client_flush(struct ctl_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN)
				return loop_mod_fd(c->srv->loop, c->src, EPOLLOUT);
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return loop_mod_fd(c->srv->loop, c->src, EPOLLIN);
}

/* Appends a response to what is still to be sent, then sends what it can. */
static int client_respond(struct ctl_client *c, json_t *resp)
{
	char *frame, *grown;
	size_t len;
	int err;

	if (!resp)
		return -ENOMEM;
	err = seg_ctl_frame_encode(resp, &frame, &len);
	json_decref(resp);
	if (err)
		return err;
	grown = realloc(c->out, c->out_len + len);
	if (!grown) {
		free(frame);
		return -ENOMEM;
	}
	memcpy(grown + c->out_len, frame, len);
	free(frame);
	c->out = grown;
	c->out_len += len;
	return client_flush(c);
}

static json_t *dispatch(struct ctl_server *s, json_t *req)
{
	json_t *v = json_object_get(req, "v"), *args = json_object_get(req, "args");
	const char *op = json_string_value(json_object_get(req, "op"));
	json_t *result = NULL;
	char err[4096] = "";
	int rc;

	if (!json_is_integer(v) || json_integer_value(v) != SEG_CTL_VERSION)
		return seg_ctl_error(-EPROTONOSUPPORT,
				     "protocol version %lld not supported (segd speaks %d)",
				     (long long)json_integer_value(v), SEG_CTL_VERSION);
	if (!op)
		return seg_ctl_error(-EINVAL, "request has no \"op\"");
	if (args && !json_is_object(args))
		return seg_ctl_error(-EINVAL, "\"args\" must be an object");
	s->st.requests++;
	rc = s->opts.handler(s->opts.ctx, op, args, &result, err, sizeof(err));
	if (rc < 0) {
		json_decref(result);
		return seg_ctl_error(rc, "%s", err[0] ? err : strerror(-rc));
	}
	return seg_ctl_ok(result);
}

static int on_client(struct loop *l, struct loop_src *src, uint32_t events, void *ctx)
{
	struct ctl_client *c = ctx;
	char buf[65536], err[256] = "";
	json_t *req = NULL;
	ssize_t n, used;

	if (events & EPOLLOUT) {
		if (client_flush(c))
			client_close(c);
		return 0;
	}
	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		client_close(c);
		return 0;
	}
	for (ssize_t off = 0; off < n; off += used) {
		used = seg_ctl_decoder_feed(&c->dec, buf + off, (size_t)(n - off), &req, err,
					    sizeof(err));
		if (used < 0) {
			c->srv->st.bad_frames++;
			log_warn("control client: %s; closing it", err);
			client_respond(c, seg_ctl_error((int)used, "%s", err));
			client_close(c);
			return 0;
		}
		if (req) {
			json_t *resp = dispatch(c->srv, req);

			json_decref(req);
			req = NULL;
			if (client_respond(c, resp)) {
				client_close(c);
				return 0;
			}
		}
	}
	/* a request under way must finish within the stall limit */
	if (c->dec.hdr_have)
		loop_timer_arm(c->srv->loop, c->timer, c->srv->opts.stall_ms, 0);
	else
		loop_timer_disarm(c->srv->loop, c->timer);
	return 0;
}

static int on_stall(struct loop *l, struct loop_src *src, uint32_t n, void *ctx)
{
	struct ctl_client *c = ctx;

	c->srv->st.stalled++;
	log_warn("control client stalled for %u ms mid-request; closing it",
		 c->srv->opts.stall_ms);
	client_close(c);
	return 0;
}

static bool peer_allowed(struct ctl_server *s, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		log_warn_err(-errno, "SO_PEERCRED");
		return false;
	}
	if (cred.uid == 0 || cred.uid == s->opts.allowed_uid)
		return true;
	log_warn("control socket: refused pid %d uid %u (root only)", cred.pid, cred.uid);
	return false;
}

static int on_accept(struct loop *l, struct loop_src *src, uint32_t events, void *ctx)
{
	struct ctl_server *s = ctx;
	struct ctl_client *c;
	int fd, err;

	fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (!peer_allowed(s, fd)) {
		s->st.refused_cred++;
		close(fd);
		return 0;
	}
	if (s->nclients >= CTL_MAX_CLIENTS) {
		s->st.refused_busy++;
		log_warn("control socket: %u clients already; refusing one", s->nclients);
		close(fd);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->srv = s;
	c->fd = fd;
	seg_ctl_decoder_init(&c->dec, 0);
	err = loop_add_fd(l, fd, EPOLLIN, "control client", on_client, c, &c->src);
	if (!err)
		err = loop_add_timer(l, s->opts.stall_ms, 0, "control stall", on_stall, c,
				     &c->timer);
	if (!err)
		err = loop_timer_disarm(l, c->timer);
	c->next = s->clients;
	s->clients = c;
	s->nclients++;
	s->st.accepted++;
	if (err)
		client_close(c);
	return err;
}

static int make_parent_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return log_err(-errno, "mkdir %s", dir);
		*p = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return log_err(-errno, "mkdir %s", dir);
	return 0;
}

int ctl_server_start(struct loop *l, const struct ctl_server_opts *o, struct ctl_server **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_server *s = NULL;
	mode_t old_umask;
	int err;

	if (strlen(o->path) >= sizeof(sa.sun_path))
		return log_err(-ENAMETOOLONG, "control socket path %s", o->path);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->opts = *o;
	if (!s->opts.stall_ms)
		s->opts.stall_ms = CTL_STALL_MS;
	snprintf(s->path, sizeof(s->path), "%s", o->path);
	s->fd = -1;
	err = make_parent_dir(o->path);
	if (err)
		goto fail;
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		err = log_err(-errno, "socket");
		goto fail;
	}
	strcpy(sa.sun_path, o->path);
	if (unlink(o->path) && errno != ENOENT) {
		err = log_err(-errno, "remove stale %s", o->path);
		goto fail;
	}
	old_umask = umask(0177); /* born 0600: no window with a wider mode */
	err = bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old_umask);
	if (err) {
		log_err(err, "bind %s", o->path);
		goto fail;
	}
	if (chmod(o->path, 0600) || listen(s->fd, 16)) {
		err = log_err(-errno, "listen on %s", o->path);
		goto fail;
	}
	err = loop_add_fd(l, s->fd, EPOLLIN, "control socket", on_accept, s, &s->src);
	if (err)
		goto fail;
	*out = s;
	return 0;
fail:
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return err;
}

void ctl_server_stop(struct ctl_server *s)
{
	if (!s)
		return;
	while (s->clients)
		client_close(s->clients);
	loop_del(s->loop, s->src);
	close(s->fd);
	unlink(s->path);
	free(s);
}

void ctl_server_stats(const struct ctl_server *s, struct ctl_server_stats *st)
{
	*st = s->st;
}
