// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target: the segd control protocol decoder (lib/ctl).
 *
 * Input: byte 0 picks the frame limit (the default 64 MiB or a small one,
 * so both the EMSGSIZE path and big claimed lengths are reached), bytes
 * 1-2 seed the split points, the rest is the byte stream a client sends.
 * The stream is fed in chunks of pseudo-random size, as recv() would cut
 * it. Invariants: feed() never consumes more than it was given nor returns
 * 0 on a non-empty chunk while it has no frame; an error is -EMSGSIZE or
 * -EBADMSG and says why; every decoded message is a JSON object that
 * re-encodes (seg_ctl_frame_encode) and decodes back to an equal object.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_ctl: invariant broken: %s\n", what);
		abort();
	}
}

/* Encodes msg and decodes it in one feed: must give an equal object. */
static void roundtrip(const json_t *msg)
{
	struct seg_ctl_decoder d;
	json_t *back = NULL;
	char *buf = NULL, err[256];
	size_t len = 0;
	ssize_t n;

	if (seg_ctl_frame_encode(msg, &buf, &len))
		return; /* -ENOMEM / -EMSGSIZE: nothing to compare */
	seg_ctl_decoder_init(&d, 0);
	n = seg_ctl_decoder_feed(&d, buf, len, &back, err, sizeof(err));
	check(n == (ssize_t)len, "a re-encoded frame is consumed whole");
	check(back && json_equal(msg, back), "a re-encoded frame decodes to the same object");
	json_decref(back);
	seg_ctl_decoder_reset(&d);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seg_ctl_decoder d;
	unsigned int seed;
	size_t off = 3;

	if (size < 3)
		return 0;
	seg_ctl_decoder_init(&d, data[0] & 1 ? 0 : 256u << (data[0] >> 5));
	seed = (unsigned int)data[1] << 8 | data[2];
	while (off < size) {
		size_t chunk = 1 + (seed = seed * 1103515245u + 12345u) % 64;
		json_t *msg = NULL;
		char err[256] = "";
		ssize_t n;

		if (chunk > size - off)
			chunk = size - off;
		n = seg_ctl_decoder_feed(&d, (const char *)data + off, chunk, &msg, err,
					 sizeof(err));
		if (n < 0) {
			check(n == -EMSGSIZE || n == -EBADMSG, "errors are EMSGSIZE or EBADMSG");
			check(err[0] != 0, "an error says why");
			check(!msg, "no message with an error");
			/* segd drops such a client; here: resync on the rest */
			seg_ctl_decoder_reset(&d);
			off += chunk;
			continue;
		}
		check((size_t)n <= chunk, "consumes at most what it was given");
		check(n > 0 || msg, "progress on a non-empty chunk");
		if (msg) {
			check(json_is_object(msg), "a message is an object");
			roundtrip(msg);
			json_decref(msg);
		}
		off += (size_t)n;
	}
	seg_ctl_decoder_reset(&d);
	return 0;
}
