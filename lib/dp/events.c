// SPDX-License-Identifier: GPL-2.0-only
/*
 * Flow events from the seg_events ring buffer. The ring buffer map is
 * shared (pinned), so segd and a `segctl flow watch` started on pins both
 * consume it; a record is delivered to whichever reader gets it first.
 */
#include "dp_priv.h"
#include "log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>

struct seg_dp_events {
	struct ring_buffer *rb;
	seg_dp_event_cb cb;
	void *ctx;
	__u64 short_records; /* records too small to be an event (ABI skew) */
};

static int events_sample(void *ctx, void *data, size_t size)
{
	struct seg_dp_events *ev = ctx;

	if (size < sizeof(struct seg_flow_event)) {
		if (!ev->short_records++)
			log_warn("%s: record of %zu bytes, expected %zu (ABI mismatch?)",
				 SEG_MAP_EVENTS, size, sizeof(struct seg_flow_event));
		return 0;
	}
	return ev->cb(data, ev->ctx);
}

int seg_dp_events_open(struct seg_dp *dp, seg_dp_event_cb cb, void *ctx, struct seg_dp_events **out)
{
	struct seg_dp_events *ev;

	*out = NULL;
	if (!cb)
		return log_err(-EINVAL, "events: no callback");
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return log_err(-ENOMEM, "events");
	ev->cb = cb;
	ev->ctx = ctx;
	ev->rb = ring_buffer__new(seg_dp_fd(dp, DPM_EVENTS), events_sample, ev, NULL);
	if (!ev->rb) {
		int err = log_err(-errno, "open ring buffer %s", SEG_MAP_EVENTS);

		free(ev);
		return err;
	}
	*out = ev;
	return 0;
}

int seg_dp_events_fd(struct seg_dp_events *ev)
{
	return ring_buffer__epoll_fd(ev->rb);
}

int seg_dp_events_poll(struct seg_dp_events *ev, int timeout_ms)
{
	int n = timeout_ms ? ring_buffer__poll(ev->rb, timeout_ms) : ring_buffer__consume(ev->rb);

	if (n == -EINTR)
		return 0;
	if (n < 0)
		return log_err(n, "read ring buffer %s", SEG_MAP_EVENTS);
	return n;
}

void seg_dp_events_close(struct seg_dp_events *ev)
{
	if (!ev)
		return;
	ring_buffer__free(ev->rb);
	free(ev);
}
