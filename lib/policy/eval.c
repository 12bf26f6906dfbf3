// SPDX-License-Identifier: GPL-2.0-only
/*
 * Userspace evaluator over the compiled state: decides a new flow the way
 * the data path does (docs/architecture.md, "Pipeline" and "Policy
 * lookup"): egress on the source's endpoint, then ingress on the
 * destination's; per side the remote identity from the ipcache (exact,
 * LPM, WORLD), the isolated flag, the policy probes, the audit flag.
 */
#include "compiled.h"
#include "addr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *dir_name(__u8 dir)
{
	return dir == SEG_DIR_INGRESS ? "ingress" : "egress";
}

static void isolators(const struct seg_compiled *c, const struct seg_ep_entry *ep, __u8 dir,
		      struct sbuf *sb)
{
	for (size_t i = 0; i < ep->nsel[dir]; i++) {
		const struct seg_netpol *np = &c->m->pols[ep->sel[dir][i]];

		sb_printf(sb, "%s%s/%s", i ? ", " : "", np->ns, np->name);
	}
}

static void decide(const struct seg_compiled *c, const struct seg_ep_entry *ep, __u8 dir,
		   __u32 remote, __u16 port, __u8 proto, struct seg_dir_verdict *dv,
		   struct sbuf *why)
{
	const struct seg_pod *pod = &c->m->pods[ep->pod];
	const struct seg_pol_entry *e;
	char rule[256];

	dv->evaluated = true;
	dv->remote_id = remote;
	if (!(ep->ep.flags[dir] & SEG_EPF_ISOLATED)) {
		dv->verdict = SEG_VERDICT_ALLOW;
		dv->reason = SEG_R_ALLOW_NOT_ISOLATED;
		sb_printf(why, "not isolated: no policy selects %s/%s for %s", pod->ns, pod->name,
			  dir_name(dir));
		return;
	}
	e = seg_policy_lookup(c, &ep->ep, dir, remote, port, proto);
	if (e && e->val.action == SEG_ACT_ALLOW) {
		dv->verdict = SEG_VERDICT_ALLOW;
		dv->reason = SEG_R_ALLOW_RULE;
		dv->rule_id = e->val.rule_id;
		seg_rule_describe(c, e->val.rule_id, rule, sizeof(rule));
		sb_printf(why, "allowed by %s", rule);
		return;
	}
	if (e) { /* any action but allow denies (fail closed), audit or not */
		bool audit = ep->ep.flags[dir] & SEG_EPF_AUDIT;

		dv->verdict = audit ? SEG_VERDICT_AUDIT : SEG_VERDICT_DENY;
		dv->reason = audit ? SEG_R_AUDIT : SEG_DROP_DENY_RULE;
		dv->rule_id = e->val.rule_id;
		seg_rule_describe(c, e->val.rule_id, rule, sizeof(rule));
		sb_printf(why, "%sdenied by %s%s", audit ? "audit: " : "", rule,
			  audit ? "; passed" : "");
		return;
	}
	if (ep->ep.flags[dir] & SEG_EPF_AUDIT) {
		dv->verdict = SEG_VERDICT_AUDIT;
		dv->reason = SEG_R_AUDIT;
		sb_printf(why, "audit: isolated by ");
	} else {
		dv->verdict = SEG_VERDICT_DENY;
		dv->reason = SEG_DROP_POLICY;
		sb_printf(why, "isolated by ");
	}
	isolators(c, ep, dir, why);
	sb_printf(why, " (%s); no rule allows%s", dir_name(dir),
		  dv->verdict == SEG_VERDICT_AUDIT ? "; passed" : "");
}

int seg_eval(const struct seg_compiled *c, const struct seg_endpoint_ref *src,
	     const struct seg_endpoint_ref *dst, __u16 port, __u8 proto, struct seg_verdict *v)
{
	const struct seg_ep_entry *sep = src->pod ? seg_compiled_endpoint(c, src->pod) : NULL;
	const struct seg_ep_entry *dep = dst->pod ? seg_compiled_endpoint(c, dst->pod) : NULL;
	struct sbuf why[SEG_DIR_MAX] = {};
	int err = 0;

	memset(v, 0, sizeof(*v));
	v->verdict = SEG_VERDICT_ALLOW;
	if (src->pod && src->pod == dst->pod) {
		snprintf(v->reason, sizeof(v->reason),
			 "loopback: %s/%s reaching itself never leaves the pod", src->pod->ns,
			 src->pod->name);
		return 0;
	}
	if (sep)
		decide(c, sep, SEG_DIR_EGRESS, seg_ipcache_lookup(c, &dst->addr), port, proto,
		       &v->dir[SEG_DIR_EGRESS], &why[SEG_DIR_EGRESS]);
	if (dep)
		decide(c, dep, SEG_DIR_INGRESS, seg_ipcache_lookup(c, &src->addr), port, proto,
		       &v->dir[SEG_DIR_INGRESS], &why[SEG_DIR_INGRESS]);
	for (int d = SEG_DIR_EGRESS; d >= SEG_DIR_INGRESS; d--) {
		if (v->dir[d].verdict == SEG_VERDICT_DENY) {
			v->verdict = SEG_VERDICT_DENY;
			snprintf(v->reason, sizeof(v->reason), "%s", why[d].p ? why[d].p : "");
			goto out;
		}
		if (v->dir[d].verdict == SEG_VERDICT_AUDIT)
			v->verdict = SEG_VERDICT_AUDIT;
	}
	if (!sep && !dep)
		snprintf(v->reason, sizeof(v->reason), "no endpoint on this node for either side");
	else
		snprintf(v->reason, sizeof(v->reason), "%s%s%s",
			 why[SEG_DIR_EGRESS].p ? why[SEG_DIR_EGRESS].p : "",
			 why[SEG_DIR_EGRESS].p && why[SEG_DIR_INGRESS].p ? "; " : "",
			 why[SEG_DIR_INGRESS].p ? why[SEG_DIR_INGRESS].p : "");
out:
	if (why[0].oom || why[1].oom)
		err = -ENOMEM;
	sb_free(&why[0]);
	sb_free(&why[1]);
	return err;
}

static const struct in6_addr *pod_addr(const struct seg_pod *p, bool v4)
{
	for (size_t i = 0; i < p->naddrs; i++) {
		if (seg_addr_is_v4(&p->addrs[i]) == v4)
			return &p->addrs[i];
	}
	return NULL;
}

int seg_eval_pods(const struct seg_compiled *c, const struct seg_pod *src,
		  const struct seg_pod *dst, int family, __u16 port, __u8 proto,
		  struct seg_verdict *v)
{
	struct seg_endpoint_ref s = { .pod = src }, d = { .pod = dst };
	bool v4 = family != 6;
	const struct in6_addr *sa, *da;

	if (!family && (!pod_addr(src, true) || !pod_addr(dst, true)))
		v4 = false;
	sa = pod_addr(src, v4);
	da = pod_addr(dst, v4);
	if (!sa || !da) {
		memset(v, 0, sizeof(*v));
		snprintf(v->reason, sizeof(v->reason), "%s/%s and %s/%s have no IPv%d address",
			 src->ns, src->name, dst->ns, dst->name, v4 ? 4 : 6);
		return -ENOENT;
	}
	s.addr = *sa;
	d.addr = *da;
	return seg_eval(c, &s, &d, port, proto, v);
}
