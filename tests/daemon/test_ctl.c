// SPDX-License-Identifier: GPL-2.0-only
/* Control protocol framing: round trip, byte-by-byte delivery, oversized
 * and malformed frames refused with a message, and a full call over a
 * socketpair with an error response carried back to the caller. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"

static void test_roundtrip_bytewise(void **state)
{
	json_t *in = json_pack("{s:i, s:s}", "v", 1, "op", "status"), *out = NULL;
	struct seg_ctl_decoder d;
	char err[128];
	char *buf;
	size_t len;

	assert_int_equal(seg_ctl_frame_encode(in, &buf, &len), 0);
	seg_ctl_decoder_init(&d, 0);
	for (size_t i = 0; i < len; i++) {
		assert_null(out);
		assert_int_equal(seg_ctl_decoder_feed(&d, buf + i, 1, &out, err, sizeof(err)), 1);
	}
	assert_non_null(out);
	assert_true(json_equal(in, out));
	json_decref(in);
	json_decref(out);
	free(buf);
	seg_ctl_decoder_reset(&d);
}

static void test_two_frames_one_buffer(void **state)
{
	json_t *a = json_pack("{s:i}", "n", 1), *b = json_pack("{s:i}", "n", 2), *out = NULL;
	struct seg_ctl_decoder d;
	char *fa, *fb, both[256], err[128];
	size_t la, lb;
	ssize_t used;

	assert_int_equal(seg_ctl_frame_encode(a, &fa, &la), 0);
	assert_int_equal(seg_ctl_frame_encode(b, &fb, &lb), 0);
	memcpy(both, fa, la);
	memcpy(both + la, fb, lb);
	seg_ctl_decoder_init(&d, 0);
	used = seg_ctl_decoder_feed(&d, both, la + lb, &out, err, sizeof(err));
	assert_int_equal(used, la); /* stops after the first frame */
	assert_int_equal(json_integer_value(json_object_get(out, "n")), 1);
	json_decref(out);
	used = seg_ctl_decoder_feed(&d, both + la, lb, &out, err, sizeof(err));
	assert_int_equal(used, lb);
	assert_int_equal(json_integer_value(json_object_get(out, "n")), 2);
	json_decref(out);
	json_decref(a);
	json_decref(b);
	free(fa);
	free(fb);
}

static void test_oversized_and_garbage(void **state)
{
	struct seg_ctl_decoder d;
	char frame[16], err[128];
	json_t *out = NULL;
	uint32_t be = htonl(1000);

	seg_ctl_decoder_init(&d, 100);
	memcpy(frame, &be, 4);
	assert_int_equal(seg_ctl_decoder_feed(&d, frame, 4, &out, err, sizeof(err)), -EMSGSIZE);
	assert_non_null(strstr(err, "exceeds"));
	seg_ctl_decoder_reset(&d);

	be = htonl(5);
	memcpy(frame, &be, 4);
	memcpy(frame + 4, "[1,2]", 5); /* JSON, but not an object */
	assert_int_equal(seg_ctl_decoder_feed(&d, frame, 9, &out, err, sizeof(err)), -EBADMSG);
	memcpy(frame + 4, "{bad}", 5);
	assert_int_equal(seg_ctl_decoder_feed(&d, frame, 9, &out, err, sizeof(err)), -EBADMSG);
	assert_null(out);
	seg_ctl_decoder_reset(&d);
}

/* A one-shot server: answers the first request with an error naming its op. */
static void *serve_one(void *arg)
{
	int fd = *(int *)arg;
	struct seg_ctl_decoder d;
	json_t *req = NULL, *resp;
	char buf[4096], err[128], *out;
	size_t len;
	ssize_t n;

	seg_ctl_decoder_init(&d, 0);
	while (!req && (n = recv(fd, buf, sizeof(buf), 0)) > 0)
		assert_true(seg_ctl_decoder_feed(&d, buf, (size_t)n, &req, err, sizeof(err)) >= 0);
	resp = seg_ctl_error(-ENOENT, "no such op: %s",
			     json_string_value(json_object_get(req, "op")));
	assert_int_equal(seg_ctl_frame_encode(resp, &out, &len), 0);
	assert_int_equal(send(fd, out, len, 0), (ssize_t)len);
	free(out);
	json_decref(resp);
	json_decref(req);
	return NULL;
}

static void test_call_error_is_returned(void **state)
{
	char errbuf[256];
	json_t *result = NULL;
	pthread_t t;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pthread_create(&t, NULL, serve_one, &sv[1]), 0);
	assert_int_equal(seg_ctl_call(sv[0], "frobnicate", NULL, 2000, &result, errbuf,
				      sizeof(errbuf)),
			 -ENOENT);
	assert_null(result);
	assert_string_equal(errbuf, "no such op: frobnicate");
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
}

static void test_call_times_out_on_silent_peer(void **state)
{
	json_t *result = NULL;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(seg_ctl_call(sv[0], "status", NULL, 100, &result, NULL, 0), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_bytewise),
		cmocka_unit_test(test_two_frames_one_buffer),
		cmocka_unit_test(test_oversized_and_garbage),
		cmocka_unit_test(test_call_error_is_returned),
		cmocka_unit_test(test_call_times_out_on_silent_peer),
	};

	log_init("test_ctl", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
