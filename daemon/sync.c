// SPDX-License-Identifier: GPL-2.0-only
/*
 * One sync pass, run from the loop's before-sleep hook when something is
 * dirty:
 *   1. manifests: rebuilt from every label source (dirty_manifests); a
 *      source that fails leaves the last good manifests in force;
 *   2. interfaces: discover_scan, each pod interface matched to a Pod by
 *      address, attached with the mode of its style (calico/flannel VETH,
 *      ovs OVS, macvlan POD inside the pod netns); an interface that is
 *      gone is detached. Unmatched interfaces are left alone;
 *   3. compile (only attached pods get endpoints) and apply (lib/apply:
 *      atomic, and a no-op when the maps already hold the state). When only
 *      the manifests changed (no interface attached or detached, no
 *      reconcile asked for), the compile is seg_compile_update() from the
 *      last one: pod changes cost what they touch, and lib/apply plans
 *      from its delta (sets changed in place, still atomic); anything
 *      else it cannot do incrementally it compiles in full by itself.
 * A failure at 1 or 3 keeps the maps as they were and is recorded in
 * d->last_error (shown by `status`), logged once per distinct message.
 */
#include "segd.h"

#include "dp/dp.h"
#include "log.h"
#include "loop.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void set_error(struct segd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct segd *d, const char *fmt, ...)
{
	char msg[sizeof(d->last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, d->last_error))
		log_error("%s", msg); /* once per distinct error */
	snprintf(d->last_error, sizeof(d->last_error), "%s", msg);
}

__u32 segd_pod_ep_id(const char *ns, const char *name)
{
	__u32 h = 2166136261u; /* FNV-1a over "ns/name": stable across restarts */

	for (const char *p = ns; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h &= 0x7fffffffu;
	return h ?: 1;
}

const struct segd_att *segd_att_find(const struct segd *d, const char *pod)
{
	for (size_t i = 0; i < d->natt; i++)
		if (!strcmp(d->att[i].pod, pod))
			return &d->att[i];
	return NULL;
}

/* Called for every pod of every compile and apply: compares "ns/name"
 * in place instead of formatting it. */
static const struct segd_att *att_of_pod(const struct segd *d, const struct seg_pod *p)
{
	size_t l = strlen(p->ns);

	for (size_t i = 0; i < d->natt; i++) {
		const char *k = d->att[i].pod;

		if (!strncmp(k, p->ns, l) && k[l] == '/' && !strcmp(k + l + 1, p->name))
			return &d->att[i];
	}
	return NULL;
}

/* ---- interfaces ---------------------------------------------------------------- */

static const struct seg_pod *match_pod(const struct seg_manifests *m, const struct disc_iface *f)
{
	for (size_t i = 0; i < m->npods; i++)
		for (size_t a = 0; a < m->pods[i].naddrs; a++)
			for (size_t k = 0; k < f->n_addrs; k++)
				if (!memcmp(&m->pods[i].addrs[a], &f->addrs[k],
					    sizeof(f->addrs[k])))
					return &m->pods[i];
	return NULL;
}

static bool same_iface(const struct segd_att *a, const struct disc_iface *f)
{
	if (a->style != f->style)
		return false;
	if (f->style == DISC_MACVLAN)
		return a->pod_ifindex == f->pod_ifindex && !strcmp(a->netns, f->netns);
	/* the ifindex, not the name: Calico-style plugins rename the host
	 * veth after it is made, and the attachment (keyed by ifindex)
	 * follows the device. Linux does not reuse an ifindex until the
	 * counter wraps. */
	return a->host_ifindex == f->host_ifindex;
}

static int attach_one(struct segd *d, const struct disc_iface *f, const struct seg_pod *pod,
		      struct segd_att *a)
{
	struct seg_dp_attach at = {};
	int err;

	memset(a, 0, sizeof(*a));
	snprintf(a->pod, sizeof(a->pod), "%s/%s", pod->ns, pod->name);
	a->style = f->style;
	a->host_ifindex = f->host_ifindex;
	a->pod_ifindex = f->pod_ifindex;
	snprintf(a->netns, sizeof(a->netns), "%s", f->netns);
	if (f->style == DISC_MACVLAN) {
		snprintf(a->ifname, sizeof(a->ifname), "%s", f->pod_ifname);
		a->ep_id = segd_pod_ep_id(pod->ns, pod->name);
		at.ifindex = f->pod_ifindex;
		at.netns = f->netns;
		at.mode = SEG_ATTACH_POD;
		at.ep_id = a->ep_id;
	} else {
		snprintf(a->ifname, sizeof(a->ifname), "%s", f->host_ifname);
		at.ifindex = f->host_ifindex;
		at.mode = f->style == DISC_OVS ? SEG_ATTACH_OVS : SEG_ATTACH_VETH;
	}
	err = seg_dp_attach(d->dp, &at, &a->ifkey);
	if (err)
		return err; /* lib/dp logged it, naming the interface */
	a->seen = true;
	d->st.attaches++;
	log_info("attached %s: %s %s%s%s (ifkey %#x)", a->pod, disc_style_str(a->style), a->ifname,
		 a->style == DISC_MACVLAN ? " in " : "", a->style == DISC_MACVLAN ? a->netns : "",
		 a->ifkey);
	return 0;
}

/* Candidate pod netns: every entry of the netns dir plus the CNI pods'
 * netns paths (a runtime may use /proc/PID/ns/net or its own dir). */
static int netns_list(const struct segd *d, char ***out, size_t *n)
{
	const char *dir = d->o.pod_netns_dir;
	DIR *dp = opendir(dir);
	struct dirent *e;
	char **v = calloc(d->ncni + 1, sizeof(*v));
	size_t cap = d->ncni + 1, cnt = 0;
	int err = 0;

	if (!v) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < d->ncni; i++)
		if (d->cni[i].netns[0] && asprintf(&v[cnt++], "%s", d->cni[i].netns) < 0) {
			err = -ENOMEM;
			goto out;
		}
	while (dp && (e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		if (cnt == cap) {
			char **nv = realloc(v, 2 * cap * sizeof(*nv));

			if (!nv) {
				err = -ENOMEM;
				goto out;
			}
			v = nv;
			cap *= 2;
		}
		if (asprintf(&v[cnt++], "%s/%s", dir, e->d_name) < 0) {
			err = -ENOMEM;
			goto out;
		}
	}
out:
	if (dp)
		closedir(dp);
	if (err) {
		for (size_t i = 0; v && i < cnt; i++)
			free(v[i]);
		free(v);
		return err;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* Scans the pod interfaces into d->scan (kept for matching when only the
 * manifests change, so an apply does not wait for netlink dumps). */
static int rescan(struct segd *d)
{
	struct disc_opts o = { .netns_dir = d->o.pod_netns_dir, .ovsdb_sock = d->o.ovsdb };
	struct disc_result res = {};
	char **ns = NULL;
	size_t nns = 0;
	int err;

	err = netns_list(d, &ns, &nns);
	if (err)
		return log_err(err, "list pod netns in %s", d->o.pod_netns_dir);
	o.pod_netns = (const char *const *)ns;
	o.n_pod_netns = nns;
	err = discover_scan(&o, &res);
	if (err) {
		log_err(err, "pod interface scan (attachments kept)");
	} else {
		discover_result_free(&d->scan);
		d->scan = res;
		d->have_scan = true;
	}
	for (size_t i = 0; i < nns; i++)
		free(ns[i]);
	free(ns);
	return err;
}

/* Matches the scanned interfaces to pods: attaches new ones, detaches
 * those gone. fresh: rescan first, else match the last scan. */
static int sync_links(struct segd *d, const struct seg_manifests *m, bool fresh, bool *changed)
{
	const struct disc_result *res = &d->scan;
	int err = 0;

	if (fresh || !d->have_scan) {
		err = rescan(d);
		if (err)
			return err;
	}
	for (size_t i = 0; i < d->natt; i++)
		d->att[i].seen = false;
	for (size_t i = 0; i < res->n; i++) {
		const struct disc_iface *f = &res->ifs[i];
		const struct seg_pod *pod;
		struct segd_att *a = NULL, *na;
		char key[sizeof(a->pod)];

		if (f->style == DISC_UNKNOWN)
			continue;
		for (size_t k = 0; k < d->natt && !a; k++)
			if (same_iface(&d->att[k], f))
				a = &d->att[k];
		pod = m ? match_pod(m, f) : NULL;
		if (a) {
			a->seen = true; /* attached: stays, with or without a Pod (fails closed) */
			if (f->style != DISC_MACVLAN && strcmp(a->ifname, f->host_ifname))
				snprintf(a->ifname, sizeof(a->ifname), "%s", f->host_ifname);
			if (pod) {
				snprintf(key, sizeof(key), "%s/%s", pod->ns, pod->name);
				if (strcmp(key, a->pod)) {
					snprintf(a->pod, sizeof(a->pod), "%s", key);
					*changed = true;
				}
			}
			continue;
		}
		if (!pod)
			continue;
		na = realloc(d->att, (d->natt + 1) * sizeof(*na));
		if (!na)
			return -ENOMEM;
		d->att = na;
		if (attach_one(d, f, pod, &d->att[d->natt]))
			continue; /* logged; retried on the next scan */
		d->natt++;
		*changed = true;
	}
	for (size_t i = 0; i < d->natt;) {
		struct segd_att *a = &d->att[i];
		int e;

		if (a->seen) {
			i++;
			continue;
		}
		/* a renamed interface (ptp's veth renamed cali*) is the same
		 * ifindex, already attached again under its new name: its
		 * links are that entry's now */
		e = 0;
		for (size_t k = 0; k < d->natt; k++)
			if (k != i && d->att[k].seen && d->att[k].ifkey == a->ifkey)
				e = 1;
		if (e) {
			log_info("%s: %s renamed to another name (ifkey %#x)", a->pod, a->ifname,
				 a->ifkey);
		} else {
			e = seg_dp_detach(d->dp, a->ifkey);
			log_info("detached %s: %s gone (ifkey %#x)%s", a->pod, a->ifname, a->ifkey,
				 e ? ", no link was pinned" : "");
		}
		d->st.detaches++;
		memmove(a, a + 1, (d->natt - i - 1) * sizeof(*a));
		d->natt--;
		*changed = true;
	}
	return err;
}

/* ---- compile + apply ------------------------------------------------------------- */

static bool is_local(const struct seg_pod *pod, void *ctx)
{
	return att_of_pod(ctx, pod) != NULL;
}

static __u32 pod_ifkey(const struct seg_pod *pod, void *ctx)
{
	const struct segd_att *a = att_of_pod(ctx, pod);

	return a ? a->ifkey : 0;
}

static __u32 pod_ep_id(const struct seg_pod *pod, void *ctx)
{
	const struct segd_att *a = att_of_pod(ctx, pod);

	return a && a->style == DISC_MACVLAN ? a->ep_id : 0;
}

static int compile_apply(struct segd *d, const struct seg_manifests *m, bool update,
			 struct seg_compiled **out)
{
	struct seg_compile_opts co = {
		.audit_default = d->o.audit_default,
		.is_local = is_local,
		.ctx = d,
		.prev = d->c ? d->c->numbering : NULL,
	};
	struct seg_apply_opts ao = { .pod_ifkey = pod_ifkey, .pod_ep_id = pod_ep_id, .ctx = d };
	struct seg_apply_stats st = {};
	struct seg_compiled *c = NULL;
	struct seg_diag diag = {};
	struct timespec t0, t1;
	double compile_ms;
	int err;

	/* d->c's manifests (d->m) are still alive: the update compares them */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (update && d->c)
		err = seg_compile_update(d->c, m, NULL, &co, &c, &diag);
	else
		err = seg_compile(m, &co, &c, &diag);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	compile_ms =
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	if (err) {
		set_error(d, "compile: %s", diag.msg[0] ? diag.msg : strerror(-err));
		goto out;
	}
	d->st.applies++;
	err = seg_apply(d->apply, c, &ao, &st);
	if (err) {
		d->st.apply_errors++;
		set_error(d, "apply to the maps failed (%s); the previous state stays enforced",
			  strerror(-err));
		goto out;
	}
	d->st.last = st;
	d->st.have_last = true;
	/* "(N us)" is lib/apply's time (bench/run and bench/churn_scale read
	 * it); the compile's follows without parentheses, with its kind when
	 * it was a full one (an update says so at the start) */
	if (st.flipped)
		log_info("applied%s: %u policy ids added, %u removed; %u endpoint, %u ipcache, %u "
			 "policy writes, %u deletes; epoch %u generation %u (%llu us), compiled in "
			 "%.1f ms%s",
			 st.incremental		 ? " (update)" :
			 seg_compiled_updated(c) ? " (update, full plan)" :
						   "",
			 st.policies_added, st.policies_removed, st.endpoint_writes,
			 st.ipcache_writes, st.policy_writes, st.policy_deletes, st.epoch,
			 st.generation, st.duration_us, compile_ms,
			 seg_compiled_updated(c)    ? "" :
			 seg_compiled_ids_reused(c) ? " (full, pod identities kept)" :
						      " (full)");
	*out = c;
	c = NULL;
out:
	seg_compiled_free(c);
	return err;
}

int segd_sync(struct segd *d)
{
	struct seg_manifests *m_new = NULL;
	struct seg_compiled *c_new = NULL;
	const struct seg_manifests *mm;
	struct seg_diag diag = {};
	bool changed = false, build_failed = false;
	int err = 0;

	d->st.syncs++;
	if (d->dirty_manifests) {
		d->dirty_manifests = false;
		err = segd_manifests_build(d, &m_new, &diag);
		if (err) {
			set_error(d, "%s; the last good state stays enforced",
				  diag.msg[0] ? diag.msg : strerror(-err));
			m_new = NULL;
			build_failed = true;
		}
	}
	mm = m_new ?: d->m;
	if (d->dirty_links || m_new) {
		bool fresh = d->dirty_links;

		d->dirty_links = false;
		if (sync_links(d, mm, fresh, &changed))
			d->dirty_links = true; /* retried on the resync timer */
	}
	if (!m_new && !changed && !d->dirty_apply)
		return build_failed ? err : 0;
	err = compile_apply(d, mm, m_new && !changed && !d->dirty_apply, &c_new);
	d->dirty_apply = false;
	if (err) {
		seg_manifests_free(m_new);
		return err;
	}
	seg_compiled_free(d->c);
	d->c = c_new;
	if (m_new) {
		seg_manifests_free(d->m);
		d->m = m_new;
	}
	/* the previous manifests and compile, the plan: freed, and given back
	 * once segd is idle (glibc keeps freed heap otherwise; RSS would stay
	 * at the peak of a sync, two compiles at once). Not after every sync:
	 * the next one would fault all of it in again, which was a third of a
	 * policy change at 1 000 pods x 10 000 policies. */
	if (!d->trim_timer || loop_timer_arm(d->loop, d->trim_timer, SEGD_TRIM_IDLE_MS, 0))
		malloc_trim(0);
	if (!build_failed)
		d->last_error[0] = '\0';
	return build_failed ? -EINVAL : 0;
}

int segd_sync_now(struct segd *d, bool rescan_links, char *err, size_t errlen)
{
	int r;

	d->dirty_manifests = true;
	d->dirty_links |= rescan_links;
	r = segd_sync(d);
	if (r)
		snprintf(err, errlen, "%s", d->last_error[0] ? d->last_error : strerror(-r));
	return r;
}
