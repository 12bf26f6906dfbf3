// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/flows: flow records per second from exporters to seg-topology
 * over loopback gRPC, batched, end to end (sent, unpacked, deduped,
 * aggregated, stored), and the service's memory per 100 000 edges.
 *
 * The service runs in this process (its gRPC thread, as in seg-topology);
 * each exporter is a thread with its own channel, standing for one node.
 * Records look like real ones: both workloads from a dictionary of 200,
 * addresses, ports, verdict, policy name. Each batch is encoded afresh
 * the way segd's exporter does it (workloads interned, every record added
 * to a builder), then packed and sent: encoder -> gRPC -> unpack ->
 * aggregate -> store, acked.
 *
 * Both wire forms run in the same process, one after the other:
 * `columns` (Batch.columns, what segd sends to a service that announces
 * it) and `flows` (one Flow message per record, every version).
 *
 *   ./build/bench/flows [--records N] [--batch N] [--nodes N] [--form columns|flows|both]
 *                       [--port N]  (the service's loopback port; 0 = any free one)
 * Prints a markdown report; PASS/MISS against >= 1 000 000 records/s.
 */
#include "flow.h"
#include "log.h"
#include "topology.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TARGET_RPS 1000000.0

enum form { FORM_FLOWS, FORM_COLUMNS };
static const char *const form_name[] = { "flows", "columns" };

struct node_job {
	char target[64];
	char node[32];
	enum form form;
	uint64_t batches;
	uint32_t batch;
	uint32_t seed;
	int err;
	double encode_cpu_s; /* thread CPU in the encoder */
	bool columns_announced;
};

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The node's workloads, as segd's snapshot holds them: 200 pods in 10
 * namespaces, two labels each. */
struct bench_wl {
	char ns[16], name[32], lab[48];
	const char *labels[2];
};
static struct bench_wl wls[200];

static void wls_init(void)
{
	for (uint32_t s = 0; s < 200; s++) {
		snprintf(wls[s].ns, sizeof(wls[s].ns), "ns%u", s % 10);
		snprintf(wls[s].name, sizeof(wls[s].name), "pod-%u", s);
		snprintf(wls[s].lab, sizeof(wls[s].lab), "app=app%u", s);
		wls[s].labels[0] = wls[s].lab;
		wls[s].labels[1] = "tier=backend";
	}
}

/* One encoder for either form: v1 builder or columns. */
struct enc {
	struct flow_batch *b;
	struct flow_cols *c;
};

static int enc_wl(struct enc *e, uint32_t s)
{
	const struct bench_wl *w = &wls[s];

	/* segd keys a workload by its snapshot slot: so does the bench */
	return e->c ? flow_cols_workload_key(e->c, s, w->ns, w->name, 1000 + s, w->labels, 2) :
		      flow_batch_workload(e->b, w->ns, w->name, 1000 + s, w->labels, 2);
}

static void enc_reset(struct enc *e)
{
	if (e->c)
		flow_cols_reset(e->c);
	else
		flow_batch_reset(e->b);
}

static const FlowBatch *enc_msg(struct enc *e, uint64_t seq)
{
	return e->c ? flow_cols_msg(e->c, seq, 0) : flow_batch_msg(e->b, seq, 0);
}

/* A realistic batch: n records between 200 workloads in 10 namespaces. */
static int build_batch(struct enc *e, uint32_t n, uint32_t seed, uint32_t salt)
{
	static const char *const verdicts_policy[] = { "", "shop/allow-web", "pay/db-only", "" };
	uint8_t sa[4] = { 10, 1 }, da[4];
	uint64_t now = flow_now_ns();

	enc_reset(e);
	for (uint32_t i = 0; i < n; i++) {
		FlowRec r = SEG__FLOW__V1__FLOW__INIT;
		uint32_t s = (seed + i * 7) % 200, d = (seed + i * 13 + 1) % 200;
		int si, di;

		si = enc_wl(e, s);
		di = enc_wl(e, d);
		if (si < 0 || di < 0)
			return -ENOMEM;
		memcpy(da, sa, sizeof(da));
		sa[2] = s;
		da[2] = d;
		/* IPv4 as 4 bytes; first/last seen left 0 (= time_ns) on new flows */
		r.src_addr = (ProtobufCBinaryData){ 4, sa };
		r.dst_addr = (ProtobufCBinaryData){ 4, da };
		r.time_ns = now + i;
		r.src_port = 30000 + ((salt + i) & 0x7fff);
		r.dst_port = 80 + d % 8;
		r.proto = 6;
		r.kind = SEG__FLOW__V1__KIND__KIND_NEW;
		r.direction = SEG__FLOW__V1__DIRECTION__DIRECTION_INGRESS;
		r.verdict = 1 + i % 3;
		r.policy = (char *)verdicts_policy[r.verdict];
		r.rule_id = r.verdict == 1 ? 7 : 0;
		r.reason = r.verdict == 2 ? 16 : 0;
		r.src_workload = si;
		r.dst_workload = di;
		r.src_identity = 1000 + s;
		r.dst_identity = 1000 + d;
		r.packets_fwd = 1;
		r.bytes_fwd = 74;
		if (e->c) {
			int pol = flow_cols_str_key(e->c, r.verdict, r.policy);

			if (pol < 0 || flow_cols_add_ref(e->c, &r, pol, -1))
				return -ENOMEM;
		} else if (flow_batch_add(e->b, &r)) {
			return -ENOMEM;
		}
	}
	return 0;
}

static int enc_new(struct enc *e, enum form f, const char *node, uint64_t session)
{
	e->b = NULL;
	e->c = NULL;
	if (f == FORM_COLUMNS)
		e->c = flow_cols_new(node, session);
	else
		e->b = flow_batch_new(node, session);
	return e->b || e->c ? 0 : -ENOMEM;
}

static void enc_free(struct enc *e)
{
	flow_batch_free(e->b);
	flow_cols_free(e->c);
}

/* One node: encodes each batch afresh, sends it, closes for the ack. */
static void *node_thread(void *arg)
{
	struct node_job *j = arg;
	struct flow_client_opts o = { .target = j->target, .timeout_ms = 30000 };
	struct flow_client *c = NULL;
	Seg__Flow__V1__ExportAck ack;
	struct enc e;

	j->err = enc_new(&e, j->form, j->node, j->seed);
	if (!j->err)
		j->err = flow_client_new(&c, &o) ?: flow_export_open(c);
	if (!j->err)
		j->columns_announced = flow_export_columns(c);
	for (uint64_t seq = 1; !j->err && seq <= j->batches; seq++) {
		double x = thread_cpu_s();

		j->err = build_batch(&e, j->batch, j->seed, seq * j->batch);
		j->encode_cpu_s += thread_cpu_s() - x;
		if (!j->err)
			j->err = flow_export_send(c, enc_msg(&e, seq));
	}
	if (!j->err)
		j->err = flow_export_close(c, &ack);
	flow_client_free(c);
	enc_free(&e);
	return NULL;
}

static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* Memory of a store holding 100 000 edges (and their workloads). */
static int bench_memory(void)
{
	struct topo_limits lim = { .max_edges = 100000, .max_flows = 16, .max_workloads = 100000 };
	struct flow_batch *b = flow_batch_new("mem", 1);
	size_t before, after, edges_only;
	struct topo_stats st;
	struct topo *t;
	uint64_t last;
	char name[32];
	const char *labels[1] = { "app=x" };
	int seq = 0;

	before = heap_bytes();
	t = topo_new(&lim);
	if (!t || !b)
		return -ENOMEM;
	edges_only = heap_bytes() - before;
	/* 1000 workloads x 100 ports = 100 000 distinct edges, 1000 per batch */
	for (int s = 0; s < 1000; s++) {
		int si, di;
		uint8_t a[4] = { 10, 0, (uint8_t)(s >> 8), (uint8_t)s };

		flow_batch_reset(b);
		snprintf(name, sizeof(name), "pod-%d", s);
		si = flow_batch_workload(b, "mem", name, 1000 + s, labels, 1);
		snprintf(name, sizeof(name), "pod-%d", (s + 1) % 1000);
		di = flow_batch_workload(b, "mem", name, 1001 + s, labels, 1);
		for (int p = 0; p < 100; p++) {
			FlowRec r = SEG__FLOW__V1__FLOW__INIT;

			r.src_addr = (ProtobufCBinaryData){ 4, a };
			r.dst_addr = (ProtobufCBinaryData){ 4, a };
			r.dst_port = 1000 + p;
			r.proto = 6;
			r.verdict = 1;
			r.kind = 1;
			r.src_workload = si;
			r.dst_workload = di;
			r.time_ns = flow_now_ns();
			if (flow_batch_add(b, &r))
				return -ENOMEM;
		}
		if (topo_apply(t, flow_batch_msg(b, ++seq, 0), &last) != 1)
			return -EIO;
	}
	after = heap_bytes();
	topo_get_stats(t, &st);
	if (after == before) /* mallinfo2 sees nothing under ASan's allocator */
		printf("| store with 100 000 edges | not measurable here (sanitizer allocator) |\n");
	else
		printf("| store with %llu edges, %llu workloads | %.1f MiB total (%.0f B/edge); edge table "
		       "alone, preallocated: %.1f MiB (%zu B/edge) |\n",
		       (unsigned long long)st.edges, (unsigned long long)st.workloads,
		       (after - before) / 1048576.0, (double)(after - before) / st.edges,
		       edges_only / 1048576.0, sizeof(struct topo_edge) + sizeof(uint32_t));
	topo_free(t);
	flow_batch_free(b);
	return st.edges == 100000 ? 0 : -EIO;
}

/* CPU per record of each stage, one thread, no gRPC: encode and pack
 * (exporter), unpack into the arena and apply (service). */
static int bench_stages(enum form form, uint32_t batch, double *service_ns)
{
	struct topo_limits lim = { .max_edges = 100000, .max_flows = 100000 };
	struct flow_arena *ar = flow_arena_new(256 * 1024);
	struct topo *t = topo_new(&lim);
	const int rounds = 100;
	double te = 0, tp = 0, tu = 0, ta = 0, x;
	size_t bytes = 0;
	uint64_t last;
	struct enc e;

	if (enc_new(&e, form, "stage", 7) || !ar || !t)
		return -ENOMEM;
	for (int i = 1; i <= rounds; i++) {
		const FlowBatch *m;
		size_t len;
		uint8_t *buf;
		FlowBatch *u;

		x = thread_cpu_s();
		if (build_batch(&e, batch, 3, i * batch))
			return -ENOMEM;
		m = enc_msg(&e, i);
		te += thread_cpu_s() - x;
		x = thread_cpu_s();
		len = protobuf_c_message_get_packed_size(&m->base);
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
		protobuf_c_message_pack(&m->base, buf);
		tp += thread_cpu_s() - x;
		bytes += len;
		x = thread_cpu_s();
		flow_arena_reset(ar);
		u = (void *)protobuf_c_message_unpack(&seg__flow__v1__batch__descriptor,
						      flow_arena_allocator(ar), len, buf);
		tu += thread_cpu_s() - x;
		x = thread_cpu_s();
		if (!u || topo_apply(t, u, &last) != 1)
			return -EIO;
		ta += thread_cpu_s() - x;
		free(buf);
	}
	*service_ns = (tu + ta) * 1e9 / rounds / batch;
	printf("| CPU per record, one thread, `%s` | encode %.0f ns, pack %.0f ns (exporter); unpack "
	       "%.0f ns, aggregate+store %.0f ns (service): %.0f ns, i.e. %.2f M records/s per core "
	       "for the service side; %.1f bytes/record on the wire |\n",
	       form_name[form], te * 1e9 / rounds / batch, tp * 1e9 / rounds / batch,
	       tu * 1e9 / rounds / batch, ta * 1e9 / rounds / batch,
	       (te + tp + tu + ta) * 1e9 / rounds / batch, 1e3 / *service_ns,
	       (double)bytes / rounds / batch);
	topo_free(t);
	flow_arena_free(ar);
	enc_free(&e);
	return 0;
}

static void print_load(void)
{
	double l[3];

	if (getloadavg(l, 3) == 3)
		printf("| load average now | %.2f %.2f %.2f (the machine is shared: "
		       "compare with the CPU time) |\n",
		       l[0], l[1], l[2]);
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* End to end with one wire form: records/s (0 on failure). */
static double bench_e2e(enum form form, uint64_t records, uint64_t batch, uint64_t nodes,
			unsigned port)
{
	struct topo_limits lim = { .max_edges = 100000, .max_flows = 100000 };
	struct topo_rpc_opts ro = { 0 };
	char addr[32];
	struct topo_rpc *rpc = NULL;
	struct node_job *jobs = calloc(nodes, sizeof(*jobs));
	pthread_t *thr = calloc(nodes, sizeof(*thr));
	struct topo *t = topo_new(&lim);
	double t0, t1, c0, c1, enc = 0, rps = 0;
	bool announced = true;
	struct topo_stats st;
	int err = 0;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	ro.addr = addr;
	if (!jobs || !thr || !t || topo_rpc_start(&rpc, t, &ro)) {
		err = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < nodes; i++) {
		snprintf(jobs[i].target, sizeof(jobs[i].target), "127.0.0.1:%d",
			 topo_rpc_port(rpc));
		snprintf(jobs[i].node, sizeof(jobs[i].node), "node-%llu", (unsigned long long)i);
		jobs[i].form = form;
		jobs[i].batch = batch;
		jobs[i].batches = (records / nodes + batch - 1) / batch;
		jobs[i].seed = 17 * i + 1;
	}
	c0 = cpu_s();
	t0 = now_s();
	for (uint64_t i = 0; i < nodes; i++)
		pthread_create(&thr[i], NULL, node_thread, &jobs[i]);
	for (uint64_t i = 0; i < nodes; i++) {
		pthread_join(thr[i], NULL);
		err = err ?: jobs[i].err;
		enc += jobs[i].encode_cpu_s;
		announced = announced && jobs[i].columns_announced;
	}
	t1 = now_s();
	c1 = cpu_s();
	topo_get_stats(t, &st);
	rps = st.records / (t1 - t0);
	printf("| `%s`: exporters -> seg-topology over 127.0.0.1 gRPC | %llu nodes, batches of %llu, "
	       "%llu records applied (%llu batches, %llu duplicates, %llu rejected); the service "
	       "announced columns: %s |\n",
	       form_name[form], (unsigned long long)nodes, (unsigned long long)batch,
	       (unsigned long long)st.records, (unsigned long long)st.batches,
	       (unsigned long long)st.duplicates, (unsigned long long)st.rejected,
	       announced ? "yes" : "no");
	printf("| `%s`: end to end (encoded, sent, unpacked, aggregated, stored; acked) | **%.0f "
	       "records/s** (%.2f s) %s |\n",
	       form_name[form], rps, t1 - t0,
	       rps >= TARGET_RPS ? "PASS (>= 1 000 000/s)" : "MISS (< 1 000 000/s)");
	printf("| `%s`: CPU time of the whole process (encoders + gRPC + service) | %.2f s: %.0f ns "
	       "per record (encoding %.0f ns of it), i.e. %.0f records/s if it had 2 idle cores |\n",
	       form_name[form], c1 - c0, (c1 - c0) * 1e9 / st.records, enc * 1e9 / st.records,
	       2 * st.records / (c1 - c0));
	printf("| `%s`: edges now | %llu (evicted %llu); flows held %llu (evicted %llu) |\n",
	       form_name[form], (unsigned long long)st.edges, (unsigned long long)st.evicted_edges,
	       (unsigned long long)st.flows, (unsigned long long)st.evicted_flows);
	if (st.records != jobs[0].batches * batch * nodes)
		err = err ?: -EIO;
out:
	topo_rpc_stop(rpc);
	topo_free(t);
	free(jobs);
	free(thr);
	if (err)
		fprintf(stderr, "%s: an exporter failed: %s\n", form_name[form], strerror(-err));
	return err ? 0 : rps;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "records", 1, NULL, 'r' },
					    { "batch", 1, NULL, 'b' },
					    { "nodes", 1, NULL, 'n' },
					    { "form", 1, NULL, 'f' },
					    { "port", 1, NULL, 'p' },
					    { "help", 0, NULL, 'h' },
					    { 0 } };
	uint64_t records = 4000000, batch = 2000, nodes = 2;
	unsigned port = 0;
	double rps[2] = { 0, 0 }, svc[2] = { 0, 0 };
	bool run[2] = { true, true };
	int c, err = 0;

	log_init("bench-flows", LOG_LVL_WARN);
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			records = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			batch = strtoull(optarg, NULL, 10);
			break;
		case 'n':
			nodes = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			port = strtoul(optarg, NULL, 10);
			break;
		case 'f':
			run[FORM_FLOWS] = !strcmp(optarg, "flows") || !strcmp(optarg, "both");
			run[FORM_COLUMNS] = !strcmp(optarg, "columns") || !strcmp(optarg, "both");
			if (run[0] || run[1])
				break;
			/* fall through */
		default:
			fprintf(stderr,
				"usage: %s [--records N] [--batch N] [--nodes N] "
				"[--form columns|flows|both] [--port N]\n",
				argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (!records || !batch || !nodes || batch > 50000 || nodes > 64 || port > 65535) {
		fprintf(stderr, "records, batch (<= 50000), nodes (<= 64) must be > 0\n");
		return 2;
	}
	wls_init();
	printf("## bench/flows (%ld CPUs online)\n\n", sysconf(_SC_NPROCESSORS_ONLN));
	printf("| what | result |\n|---|---|\n");
	print_load();
	for (int f = FORM_COLUMNS; f >= FORM_FLOWS; f--) {
		if (!run[f])
			continue;
		rps[f] = bench_e2e(f, records, batch, nodes, port);
		if (!rps[f])
			err = -EIO;
		print_load();
	}
	if (run[0] && run[1] && rps[0] > 0)
		printf("| `columns` / `flows`, end to end, this run | %.2fx |\n",
		       rps[FORM_COLUMNS] / rps[FORM_FLOWS]);
	for (int f = FORM_COLUMNS; f >= FORM_FLOWS && !err; f--)
		if (run[f])
			err = bench_stages(f, batch, &svc[f]);
	if (!err && run[0] && run[1])
		printf("| service CPU per record, `flows` / `columns`, this run | %.2fx |\n",
		       svc[FORM_FLOWS] / svc[FORM_COLUMNS]);
	err = err ?: bench_memory();
	return err ? 1 : 0;
}
