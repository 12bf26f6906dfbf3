// SPDX-License-Identifier: GPL-2.0-only
/*
 * segd's state file: the objects applied over the socket and the pods the
 * CNI plugin registered, so that a restarted segd wants the same state.
 *
 * The state file is an index (JSON, mode 0600, written to FILE.tmp and
 * renamed over FILE):
 *   {"applied": [{"name": "/x/np.yaml", "item": 7}],
 *    "cni": [{"container_id": "...", "netns": "...", "ifname": "eth0",
 *             "pod_namespace": "default", "pod_name": "a", "ips": ["10.0.0.2"]}]}
 * and each applied text is an item file of its own, FILE.d/applied-<item>,
 * written once, when it is applied. A change writes the small index and the
 * one text that changed, not every applied document: with 1 000 pods and
 * 10 000 policies applied as one 3 MB file, rewriting all of it was a third
 * of segd's time per change.
 *
 * Order of writes: new items, then the index (rename), then the items the
 * previous index named and this one does not are removed. A crash between
 * two of them leaves items no index names; the next load removes them.
 * Item numbers only grow, so an item file is never rewritten in place.
 * An index in the earlier single-file form (the text inline, "content")
 * still loads; the next save writes it as items.
 */
#include "segd.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ITEM_PREFIX "applied-"

static void item_dir(const struct segd *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s.d", d->state_path);
}

static void item_path(const struct segd *d, uint64_t item, char *buf, size_t len)
{
	snprintf(buf, len, "%s.d/" ITEM_PREFIX "%" PRIu64, d->state_path, item);
}

/* The item number of a directory entry's name, or 0 if it is not an item. */
static uint64_t item_of_name(const char *name)
{
	const char *p = name + strlen(ITEM_PREFIX);
	uint64_t v = 0;

	if (strncmp(name, ITEM_PREFIX, strlen(ITEM_PREFIX)) || !*p)
		return 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t r = write(fd, s, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		s += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Writes a's text as a new item and numbers a with it. */
static int item_write(struct segd *d, struct segd_applied *a)
{
	char path[PATH_MAX + 32];
	uint64_t item = d->state_next ? d->state_next : 1;
	int fd, err;

	item_path(d, item, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_err(-errno, "write state item %s", path);
	d->state_next = item + 1;
	err = write_all(fd, a->content, a->len);
	if (close(fd) && !err)
		err = -errno;
	if (err) {
		unlink(path);
		return log_err(err, "write state item %s (%s)", path, a->name);
	}
	a->item = item;
	return 0;
}

/* The text of an item, NUL-terminated, or NULL with errno set. */
static char *item_read(const struct segd *d, uint64_t item, size_t *len)
{
	char path[PATH_MAX + 32];
	struct stat st;
	char *buf = NULL;
	size_t off = 0;
	int fd;

	item_path(d, item, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		if (!errno)
			errno = EINVAL;
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto fail;
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (!r)
				errno = EIO; /* shorter than it was a moment ago */
			goto fail;
		}
		off += (size_t)r;
	}
	buf[off] = '\0';
	if (strlen(buf) != off) {
		errno = EILSEQ; /* a NUL inside: not a text segd wrote */
		goto fail;
	}
	close(fd);
	*len = off;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

void segd_state_retire(struct segd *d, uint64_t item)
{
	uint64_t *v;

	if (!item)
		return;
	v = realloc(d->state_retired, (d->nretired + 1) * sizeof(*v));
	if (!v) {
		/* left behind; the next load removes it */
		log_warn("state item %" PRIu64 " kept: out of memory", item);
		return;
	}
	d->state_retired = v;
	d->state_retired[d->nretired++] = item;
}

static json_t *index_json(const struct segd *d)
{
	json_t *ap = json_array(), *cni = json_array();

	for (size_t i = 0; i < d->napplied; i++)
		json_array_append_new(ap, json_pack("{s:s, s:I}", "name", d->applied[i].name,
						    "item", (json_int_t)d->applied[i].item));
	for (size_t i = 0; i < d->ncni; i++)
		json_array_append_new(cni, segd_cni_pod_json(&d->cni[i]));
	return json_pack("{s:o, s:o}", "applied", ap, "cni", cni);
}

int segd_state_save(struct segd *d)
{
	char dir[PATH_MAX + 8], tmp[PATH_MAX + 8], path[PATH_MAX + 32];
	json_t *root;
	int fd, err = 0;

	item_dir(d, dir, sizeof(dir));
	if (mkdir(dir, 0700) && errno != EEXIST)
		return log_err(-errno, "state item directory %s", dir);
	for (size_t i = 0; i < d->napplied; i++)
		if (!d->applied[i].item && (err = item_write(d, &d->applied[i])))
			return err;
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->state_path);
	root = index_json(d);
	if (!root)
		return log_err(-ENOMEM, "write state file %s", tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = log_err(-errno, "write state file %s", tmp);
	} else {
		if (json_dumpfd(root, fd, JSON_INDENT(1) | JSON_COMPACT))
			err = -EIO;
		if (close(fd) && !err)
			err = -errno;
		if (err)
			log_err(err, "write state file %s", tmp);
		else if (rename(tmp, d->state_path))
			err = log_err(-errno, "rename %s to %s", tmp, d->state_path);
	}
	json_decref(root);
	if (err)
		return err; /* the previous index may still name the retired items */
	for (size_t i = 0; i < d->nretired; i++) {
		item_path(d, d->state_retired[i], path, sizeof(path));
		if (unlink(path) && errno != ENOENT)
			log_warn("remove state item %s: %s", path, strerror(errno));
	}
	d->nretired = 0;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Removes the items the index does not name (left by a crash) and sets the
 * next item number above every item there. */
static void items_collect(struct segd *d)
{
	char dir[PATH_MAX + 8], path[PATH_MAX + 32];
	uint64_t *named = malloc((d->napplied + 1) * sizeof(*named)), top = 0;
	size_t n = 0, removed = 0;
	struct dirent *e;
	DIR *dh;

	for (size_t i = 0; named && i < d->napplied; i++)
		if (d->applied[i].item)
			named[n++] = d->applied[i].item;
	if (named)
		qsort(named, n, sizeof(*named), cmp_u64);
	item_dir(d, dir, sizeof(dir));
	dh = opendir(dir);
	while (dh && (e = readdir(dh))) {
		uint64_t item = item_of_name(e->d_name);

		if (!item)
			continue;
		if (item > top)
			top = item;
		if (!named || bsearch(&item, named, n, sizeof(*named), cmp_u64))
			continue; /* named, or not known to be unnamed */
		item_path(d, item, path, sizeof(path));
		if (unlink(path))
			log_warn("remove state item %s: %s", path, strerror(errno));
		else
			removed++;
	}
	if (dh)
		closedir(dh);
	for (size_t i = 0; i < d->napplied; i++)
		if (d->applied[i].item > top)
			top = d->applied[i].item;
	d->state_next = top + 1;
	if (removed)
		log_info("state file %s: %zu items no index named, removed", d->state_path,
			 removed);
	free(named);
}

/* One entry of "applied": {name, item} or the earlier {name, content}. */
static int applied_load(struct segd *d, json_t *it, size_t i)
{
	const char *name = json_string_value(json_object_get(it, "name"));
	const char *content = json_string_value(json_object_get(it, "content"));
	json_t *item = json_object_get(it, "item");
	struct segd_applied *a = &d->applied[d->napplied];
	char *buf;
	size_t len;
	int err;

	if (!name) {
		log_warn("state file %s: applied[%zu] skipped: no name", d->state_path, i);
		return 0;
	}
	if (content) {
		err = segd_applied_set(a, name, content, strlen(content));
	} else if (json_integer_value(item) > 0) {
		uint64_t n = (uint64_t)json_integer_value(item);

		buf = item_read(d, n, &len);
		if (!buf) {
			log_warn("state file %s: applied[%zu] %s skipped: item %" PRIu64 ": %s",
				 d->state_path, i, name, n, strerror(errno));
			return 0;
		}
		err = segd_applied_set(a, name, buf, len);
		free(buf);
		a->item = n;
	} else {
		log_warn("state file %s: applied[%zu] %s skipped: neither content nor item",
			 d->state_path, i, name);
		return 0;
	}
	if (!err)
		d->napplied++;
	return err;
}

int segd_state_load(struct segd *d)
{
	json_t *root, *ap, *cni, *it;
	json_error_t je;
	size_t i;
	int err = 0;

	if (access(d->state_path, F_OK) && errno == ENOENT) {
		items_collect(d); /* items of an index that never made it */
		return 0;
	}
	root = json_load_file(d->state_path, 0, &je);
	if (!root)
		return log_err(-EINVAL, "state file %s:%d: %s", d->state_path, je.line, je.text);
	ap = json_object_get(root, "applied");
	cni = json_object_get(root, "cni");
	d->applied = calloc(json_array_size(ap) + 1, sizeof(*d->applied));
	d->cni = calloc(json_array_size(cni) + 1, sizeof(*d->cni));
	if (!d->applied || !d->cni) {
		err = -ENOMEM;
		goto out;
	}
	json_array_foreach(ap, i, it)
	{
		err = applied_load(d, it, i);
		if (err)
			goto out;
	}
	json_array_foreach(cni, i, it)
	{
		char msg[128];

		if (segd_cni_pod_parse(it, &d->cni[d->ncni], msg, sizeof(msg)))
			log_warn("state file %s: cni[%zu] skipped: %s", d->state_path, i, msg);
		else
			d->ncni++;
	}
	items_collect(d);
	log_info("state file %s: %zu applied objects, %zu CNI pods", d->state_path, d->napplied,
		 d->ncni);
out:
	json_decref(root);
	return err;
}
