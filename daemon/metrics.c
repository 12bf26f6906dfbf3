// SPDX-License-Identifier: GPL-2.0-only
/*
 * /metrics (Prometheus text format 0.0.4) and /healthz, served by
 * libmicrohttpd on its own thread. The loop thread refreshes a text
 * snapshot of segd's state (at most once a second) under a mutex; verdict
 * counters are read live from the per-CPU map at each scrape.
 */
#include "segd.h"

#include "addr.h"
#include "dp/dp.h"
#include "export.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SEGD_HAVE_MHD
#include <arpa/inet.h>
#include <microhttpd.h>

struct segd_metrics {
	struct MHD_Daemon *mhd;
	struct seg_dp *dp;
	pthread_mutex_t mu;
	char *snap; /* guarded by mu */
	time_t refreshed;
};

static const char *const fill_maps[] = {
	SEG_MAP_ENDPOINTS, SEG_MAP_IPCACHE, SEG_MAP_IPCACHE_LPM, SEG_MAP_POLICY, SEG_MAP_CT, NULL,
};

void segd_metrics_refresh(struct segd *d)
{
	struct segd_metrics *m = d->metrics;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (time(NULL) == m->refreshed)
		return;
	m->refreshed = time(NULL);
	f = open_memstream(&buf, &len);
	if (!f)
		return;
	fprintf(f,
		"# HELP seg_endpoints Pod interfaces seg is attached to.\n"
		"# TYPE seg_endpoints gauge\nseg_endpoints %zu\n",
		d->natt);
	fprintf(f,
		"# HELP seg_identities Identities in the compiled state.\n"
		"# TYPE seg_identities gauge\nseg_identities %zu\n",
		d->c ? d->c->nids : 0);
	fprintf(f,
		"# HELP seg_policies NetworkPolicies in the desired state.\n"
		"# TYPE seg_policies gauge\nseg_policies %zu\n",
		d->m ? d->m->npols : 0);
	fprintf(f,
		"# HELP seg_pods Pods in the desired state.\n"
		"# TYPE seg_pods gauge\nseg_pods %zu\n",
		d->m ? d->m->npods : 0);
	fprintf(f, "# HELP seg_map_entries Entries in a data path map.\n"
		   "# TYPE seg_map_entries gauge\n");
	for (int i = 0; fill_maps[i]; i++) {
		__u32 used, max;

		if (!seg_dp_map_fill(d->dp, fill_maps[i], &used, &max))
			fprintf(f,
				"seg_map_entries{map=\"%s\"} %u\nseg_map_capacity{map=\"%s\"} %u\n",
				fill_maps[i], used, fill_maps[i], max);
	}
	fprintf(f,
		"# HELP seg_applies_total Compile and apply passes.\n"
		"# TYPE seg_applies_total counter\nseg_applies_total %lu\n"
		"seg_apply_errors_total %lu\n",
		d->st.applies, d->st.apply_errors);
	fprintf(f,
		"# HELP seg_last_apply_duration_seconds Duration of the last apply.\n"
		"# TYPE seg_last_apply_duration_seconds gauge\n"
		"seg_last_apply_duration_seconds %.6f\n",
		d->st.last.duration_us / 1e6);
	fprintf(f,
		"# HELP seg_last_error 1 when the desired state was refused.\n"
		"# TYPE seg_last_error gauge\nseg_last_error %d\n",
		d->last_error[0] != 0);
	segd_export_metrics(d->exp, f);
	fclose(f);
	pthread_mutex_lock(&m->mu);
	free(m->snap);
	m->snap = buf;
	pthread_mutex_unlock(&m->mu);
}

static char *render(struct segd_metrics *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	pthread_mutex_lock(&m->mu);
	fputs(m->snap ?: "", f);
	pthread_mutex_unlock(&m->mu);
	fprintf(f, "# HELP seg_verdict_packets_total Packets by verdict reason.\n"
		   "# TYPE seg_verdict_packets_total counter\n");
#define X(sym, num, verdict, text)                                                               \
	do {                                                                                     \
		struct seg_counter c;                                                            \
		if (!seg_dp_reason_get(m->dp, num, &c))                                          \
			fprintf(f,                                                               \
				"seg_verdict_packets_total{reason=\"%s\",verdict=\"%s\"} %llu\n" \
				"seg_verdict_bytes_total{reason=\"%s\",verdict=\"%s\"} %llu\n",  \
				#sym, seg_verdict_str(verdict), (unsigned long long)c.packets,   \
				#sym, seg_verdict_str(verdict), (unsigned long long)c.bytes);    \
	} while (0);
	SEG_REASONS(X)
#undef X
	fclose(f);
	return buf;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *conn, const char *url,
			     const char *method, const char *version, const char *data,
			     size_t *size, void **con_cls)
{
	struct segd_metrics *m = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	unsigned int code = MHD_HTTP_OK;
	char *body;

	if (strcmp(method, "GET"))
		return MHD_NO;
	if (!strcmp(url, "/metrics")) {
		body = render(m);
	} else if (!strcmp(url, "/healthz")) {
		body = strdup("ok\n");
	} else {
		body = strdup("not found\n");
		code = MHD_HTTP_NOT_FOUND;
	}
	if (!body)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

int segd_metrics_start(struct segd *d, const char *addr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct segd_metrics *m;
	char host[64];
	unsigned port;

	if (sscanf(addr, "%63[^:]:%u", host, &port) != 2 || port > 65535 ||
	    inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return log_err(-EINVAL, "--metrics %s: want IPV4:PORT", addr);
	sa.sin_port = htons(port);
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	m->dp = d->dp;
	m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, port, NULL, NULL, serve, m,
				  MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
	if (!m->mhd) {
		free(m);
		return log_err(-EADDRINUSE, "metrics: cannot listen on %s", addr);
	}
	d->metrics = m;
	segd_metrics_refresh(d);
	log_info("metrics on http://%s/metrics", addr);
	return 0;
}

void segd_metrics_stop(struct segd_metrics *m)
{
	MHD_stop_daemon(m->mhd);
	free(m->snap);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

#else /* !SEGD_HAVE_MHD */

int segd_metrics_start(struct segd *d, const char *addr)
{
	return log_err(-EOPNOTSUPP, "--metrics: segd was built without libmicrohttpd");
}

void segd_metrics_refresh(struct segd *d)
{
}

void segd_metrics_stop(struct segd_metrics *m)
{
}

#endif
