// SPDX-License-Identifier: GPL-2.0-only
/* seg-cni's pure half: CNI_ARGS, environment, configuration, prevResult, error JSON. */
#include "cni.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* A NULL-terminated list of NAME, VALUE pairs as the environment. */
static const char *table_get(const char *name, void *ctx)
{
	const char *const *kv = ctx;

	for (; kv[0]; kv += 2)
		if (!strcmp(kv[0], name))
			return kv[1];
	return NULL;
}

static void test_args_known_and_ignore_unknown(void **state)
{
	struct cni_args a;
	struct cni_err e = { 0 };

	assert_int_equal(cni_args_parse("IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;"
					"K8S_POD_INFRA_CONTAINER_ID=abc;FOO=bar",
					&a, &e),
			 0);
	assert_string_equal(a.pod_namespace, "x");
	assert_string_equal(a.pod_name, "a");
	/* IgnoreUnknown may come last too, and "true" counts. */
	assert_int_equal(cni_args_parse("FOO=bar;K8S_POD_NAME=b;IgnoreUnknown=true", &a, &e), 0);
	assert_string_equal(a.pod_name, "b");
	/* Empty and NULL: nothing known, no error. */
	assert_int_equal(cni_args_parse("", &a, &e), 0);
	assert_int_equal(cni_args_parse(NULL, &a, &e), 0);
	assert_string_equal(a.pod_name, "");
	/* Empty value is allowed; ";;" is skipped. */
	assert_int_equal(cni_args_parse("K8S_POD_NAME=;;K8S_POD_NAMESPACE=y;", &a, &e), 0);
	assert_string_equal(a.pod_name, "");
	assert_string_equal(a.pod_namespace, "y");
}

static void test_args_errors(void **state)
{
	struct cni_args a;
	struct cni_err e = { 0 };
	char big[400];

	assert_int_equal(cni_args_parse("K8S_POD_NAME=a;FOO=bar", &a, &e), CNI_ERR_ENV);
	assert_non_null(strstr(e.msg, "FOO"));
	assert_non_null(strstr(e.msg, "IgnoreUnknown"));
	assert_int_equal(cni_args_parse("IgnoreUnknown=0;FOO=bar", &a, &e), CNI_ERR_ENV);
	assert_int_equal(cni_args_parse("K8S_POD_NAME", &a, &e), CNI_ERR_ENV);
	assert_non_null(strstr(e.msg, "KEY=VALUE"));
	assert_int_equal(cni_args_parse("=x", &a, &e), CNI_ERR_ENV);
	memset(big, 'n', sizeof(big));
	memcpy(big, "K8S_POD_NAME=", 13);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cni_args_parse(big, &a, &e), CNI_ERR_ENV);
	assert_non_null(strstr(e.msg, "K8S_POD_NAME is longer"));
}

static void test_env(void **state)
{
	const char *add[] = { "CNI_COMMAND",
			      "ADD",
			      "CNI_CONTAINERID",
			      "ctr1",
			      "CNI_NETNS",
			      "/run/netns/p",
			      "CNI_IFNAME",
			      "eth0",
			      "CNI_ARGS",
			      "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a",
			      NULL };
	const char *del_no_netns[] = { "CNI_COMMAND", "DEL",	    "CNI_CONTAINERID",
				       "c",	      "CNI_IFNAME", "eth0",
				       "CNI_NETNS",   "",	    NULL };
	const char *add_no_netns[] = { "CNI_COMMAND", "ADD", "CNI_CONTAINERID", "c", "CNI_IFNAME",
				       "eth0",	      NULL };
	const char *no_id[] = { "CNI_COMMAND", "CHECK", "CNI_NETNS", "/n",
				"CNI_IFNAME",  "eth0",	NULL };
	const char *bad_cmd[] = { "CNI_COMMAND", "add", NULL };
	const char *version[] = { "CNI_COMMAND", "VERSION", NULL };
	const char *none[] = { NULL };
	struct cni_env env;
	struct cni_err e = { 0 };

	assert_int_equal(cni_env_parse(table_get, add, &env, &e), 0);
	assert_int_equal(env.cmd, CNI_CMD_ADD);
	assert_string_equal(env.container_id, "ctr1");
	assert_string_equal(env.netns, "/run/netns/p");
	assert_string_equal(env.ifname, "eth0");
	assert_string_equal(env.args.pod_namespace, "x");

	assert_int_equal(cni_env_parse(table_get, del_no_netns, &env, &e), 0);
	assert_int_equal(env.cmd, CNI_CMD_DEL);
	assert_null(env.netns);

	assert_int_equal(cni_env_parse(table_get, add_no_netns, &env, &e), CNI_ERR_ENV);
	assert_non_null(strstr(e.msg, "CNI_NETNS"));
	assert_int_equal(cni_env_parse(table_get, no_id, &env, &e), CNI_ERR_ENV);
	assert_non_null(strstr(e.msg, "CNI_CONTAINERID"));
	assert_int_equal(cni_env_parse(table_get, bad_cmd, &env, &e), CNI_ERR_ENV);
	assert_int_equal(cni_env_parse(table_get, none, &env, &e), CNI_ERR_ENV);
	assert_non_null(strstr(e.msg, "CNI_COMMAND"));
	/* VERSION needs nothing else. */
	assert_int_equal(cni_env_parse(table_get, version, &env, &e), 0);
	assert_int_equal(env.cmd, CNI_CMD_VERSION);
}

#define PREV                                                                                   \
	"{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"veth1\"},{\"name\":\"eth0\","   \
	"\"sandbox\":\"/run/netns/p\"}],\"ips\":[{\"interface\":1,\"address\":\"10.1.0.1/8\"," \
	"\"gateway\":\"10.0.0.1\"},{\"interface\":1,\"address\":\"fd00:1::1/64\"}]}"

static int parse(const char *s, enum cni_cmd cmd, struct cni_conf *c, struct cni_err *e)
{
	json_t *root = NULL;
	int err = cni_conf_parse(s, strlen(s), cmd, &root, c, e);

	assert_true(err ? root == NULL : root != NULL);
	json_decref(root);
	return err;
}

static void test_conf_ok(void **state)
{
	const char *s =
		"{\"cniVersion\":\"1.0.0\",\"name\":\"lab\",\"type\":\"seg-cni\","
		"\"socket\":\"/run/seg/l/segd.sock\",\"timeoutMs\":250,\"runtimeConfig\":{},"
		"\"prevResult\":" PREV "}";
	const char *env_tab[] = { "CNI_COMMAND",
				  "ADD",
				  "CNI_CONTAINERID",
				  "ctr1",
				  "CNI_NETNS",
				  "/run/netns/p",
				  "CNI_IFNAME",
				  "eth0",
				  "CNI_ARGS",
				  "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a",
				  NULL };
	struct cni_env env;
	struct cni_conf c;
	struct cni_err e = { 0 };
	json_t *root = NULL, *a;

	assert_int_equal(cni_conf_parse(s, strlen(s), CNI_CMD_ADD, &root, &c, &e), 0);
	assert_string_equal(c.cni_version, "1.0.0");
	assert_string_equal(c.name, "lab");
	assert_string_equal(c.socket, "/run/seg/l/segd.sock");
	assert_int_equal(c.timeout_ms, 250);
	assert_non_null(c.prev_result);

	/* What segd gets: the env, CNI_ARGS and prevResult's lists. */
	assert_int_equal(cni_env_parse(table_get, env_tab, &env, &e), 0);
	a = cni_segd_args(&env, &c);
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "container_id")), "ctr1");
	assert_string_equal(json_string_value(json_object_get(a, "netns")), "/run/netns/p");
	assert_string_equal(json_string_value(json_object_get(a, "ifname")), "eth0");
	assert_string_equal(json_string_value(json_object_get(a, "pod_namespace")), "x");
	assert_string_equal(json_string_value(json_object_get(a, "pod_name")), "a");
	assert_int_equal(json_array_size(json_object_get(a, "interfaces")), 2);
	assert_int_equal(json_array_size(json_object_get(a, "ips")), 2);
	assert_true(json_equal(json_object_get(a, "ips"), json_object_get(c.prev_result, "ips")));
	json_decref(a);
	json_decref(root);

	/* Defaults; 0.4.0 results carry "version" in ips, which is fine. */
	s = "{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"prevResult\":{\"cniVersion\":\"0.4.0\","
	    "\"interfaces\":[{\"name\":\"eth0\"}],\"ips\":[{\"version\":\"4\",\"interface\":0,"
	    "\"address\":\"10.0.0.2/24\"}]}}";
	assert_int_equal(parse(s, CNI_CMD_ADD, &c, &e), 0);
	/* DEL without prevResult (older runtimes, lost cache) is fine. */
	s = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}";
	assert_int_equal(parse(s, CNI_CMD_DEL, &c, &e), 0);
	assert_null(c.prev_result);
	/* VERSION accepts any version. */
	s = "{\"cniVersion\":\"0.2.0\"}";
	assert_int_equal(parse(s, CNI_CMD_VERSION, &c, &e), 0);
}

static void test_conf_defaults(void **state)
{
	const char *s = "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{}}";
	struct cni_conf c;
	struct cni_err e = { 0 };
	json_t *root = NULL;

	assert_int_equal(cni_conf_parse(s, strlen(s), CNI_CMD_ADD, &root, &c, &e), 0);
	assert_string_equal(c.socket, CNI_SOCKET_DEFAULT);
	assert_int_equal(c.timeout_ms, CNI_TIMEOUT_MS_DEFAULT);
	json_decref(root);
}

static void test_conf_errors(void **state)
{
	static const struct {
		const char *conf;
		enum cni_cmd cmd;
		int code;
		const char *in_msg;
	} cases[] = {
		{ "not json", CNI_CMD_ADD, CNI_ERR_DECODE, "not JSON" },
		{ "[1]", CNI_CMD_ADD, CNI_ERR_DECODE, "not a JSON object" },
		{ "{\"name\":\"n\"}", CNI_CMD_ADD, CNI_ERR_CONFIG, "cniVersion" },
		{ "{\"cniVersion\":\"2.0.0\",\"name\":\"n\",\"prevResult\":{}}", CNI_CMD_ADD,
		  CNI_ERR_VERSION, "2.0.0" },
		{ "{\"cniVersion\":\"1.0.0\",\"prevResult\":{}}", CNI_CMD_ADD, CNI_ERR_CONFIG,
		  "\"name\"" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}", CNI_CMD_ADD, CNI_ERR_CONFIG,
		  "prevResult" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{},\"socket\":\"rel\"}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "socket" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{},\"socket\":7}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "socket" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{},\"timeoutMs\":0}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "timeoutMs" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{},\"timeoutMs\":\"5\"}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "timeoutMs" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":[]}", CNI_CMD_CHECK,
		  CNI_ERR_CONFIG, "prevResult" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{\"interfaces\":{}}}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "interfaces" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{\"interfaces\":[{}]}}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "interfaces[0]" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{\"ips\":"
		  "[{\"address\":\"10.0.0.1\"}]}}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "ips[0].address" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{\"ips\":"
		  "[{\"address\":\"10.0.0.1/33\"}]}}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "ips[0].address" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{\"ips\":"
		  "[{\"address\":\"fd00::zz/64\"}]}}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "ips[0].address" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{\"interfaces\":"
		  "[{\"name\":\"eth0\"}],\"ips\":[{\"interface\":1,\"address\":\"10.0.0.1/8\"}]}}",
		  CNI_CMD_ADD, CNI_ERR_CONFIG, "ips[0].interface" },
	};
	struct cni_conf c;
	struct cni_err e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&e, 0, sizeof(e));
		if (parse(cases[i].conf, cases[i].cmd, &c, &e) != cases[i].code ||
		    e.code != cases[i].code || !strstr(e.msg, cases[i].in_msg))
			fail_msg("case %zu (%s): code %d msg \"%s\", want %d with \"%s\"", i,
				 cases[i].conf, e.code, e.msg, cases[i].code, cases[i].in_msg);
	}
}

static void test_error_json(void **state)
{
	struct cni_err e = { 0 };
	json_t *j;

	cni_errorf(&e, CNI_ERR_TRY_AGAIN, "No such file or directory",
		   "segd is not reachable at %s", "/run/seg/segd.sock");
	j = cni_error_json("0.4.0", &e);
	assert_string_equal(json_string_value(json_object_get(j, "cniVersion")), "0.4.0");
	assert_int_equal(json_integer_value(json_object_get(j, "code")), 11);
	assert_string_equal(json_string_value(json_object_get(j, "msg")),
			    "segd is not reachable at /run/seg/segd.sock");
	assert_string_equal(json_string_value(json_object_get(j, "details")),
			    "No such file or directory");
	assert_int_equal(json_object_size(j), 4);
	json_decref(j);
	/* Unknown version -> the newest; code 0 never goes out. */
	memset(&e, 0, sizeof(e));
	j = cni_error_json("9.9.9", &e);
	assert_string_equal(json_string_value(json_object_get(j, "cniVersion")), "1.1.0");
	assert_int_equal(json_integer_value(json_object_get(j, "code")), CNI_ERR_OTHER);
	json_decref(j);
}

static void test_version_json(void **state)
{
	json_t *j = cni_version_json("1.0.0"), *list;
	bool v04 = false, v10 = false;
	size_t i;
	json_t *v;

	assert_string_equal(json_string_value(json_object_get(j, "cniVersion")), "1.0.0");
	list = json_object_get(j, "supportedVersions");
	json_array_foreach(list, i, v)
	{
		v04 |= !strcmp(json_string_value(v), "0.4.0");
		v10 |= !strcmp(json_string_value(v), "1.0.0");
	}
	assert_true(v04 && v10);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args_known_and_ignore_unknown),
		cmocka_unit_test(test_args_errors),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_conf_ok),
		cmocka_unit_test(test_conf_defaults),
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test(test_error_json),
		cmocka_unit_test(test_version_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
