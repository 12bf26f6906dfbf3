// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl: opens segctl-grpc.so on first use. It is looked for next to the
 * segctl binary (the build tree, or an install that keeps them together),
 * then in SEGCTL_MODULE_DIR (where meson installs it). Only observe
 * --server and topology get here, so no other command maps libgrpc.
 */
#include "flow_cmds.h"
#include "log.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef SEGCTL_MODULE_DIR
#define SEGCTL_MODULE_DIR "/usr/local/lib/seg"
#endif

/* <directory of /proc/self/exe>/segctl-grpc.so */
static int exe_dir_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	if ((size_t)snprintf(buf, len, "%s/%s", exe, SEGCTL_GRPC_MODULE) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int open_module(const char *path, const struct segctl_grpc_ops **ops)
{
	const struct segctl_grpc_ops *o;
	void *h;

	if (access(path, F_OK)) {
		log_debug("%s: %m", path);
		return -ENOENT;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		log_error("load %s: %s", path, dlerror());
		return -ELIBACC;
	}
	o = dlsym(h, SEGCTL_GRPC_OPS_SYM);
	if (!o || o->abi != SEGCTL_GRPC_ABI ||
	    o->observe_opts_size != sizeof(struct segctl_observe_opts) ||
	    o->topology_opts_size != sizeof(struct segctl_topology_opts)) {
		log_error("%s does not belong to this segctl (%s): reinstall both", path,
			  o ? "another ABI" : "no " SEGCTL_GRPC_OPS_SYM);
		dlclose(h);
		return -ELIBBAD;
	}
	*ops = o; /* kept open until exit */
	return 0;
}

int segctl_grpc_load(const struct segctl_grpc_ops **ops)
{
	static const struct segctl_grpc_ops *loaded;
	char here[PATH_MAX + sizeof(SEGCTL_GRPC_MODULE) + 1];
	const char *installed = SEGCTL_MODULE_DIR "/" SEGCTL_GRPC_MODULE;
	int err = -ENOENT;

	if (loaded) {
		*ops = loaded;
		return 0;
	}
	if (!exe_dir_path(here, sizeof(here))) {
		err = open_module(here, &loaded);
		if (err != -ENOENT)
			goto out;
	} else {
		here[0] = 0;
	}
	err = open_module(installed, &loaded);
	if (err == -ENOENT)
		log_error("this command needs the gRPC module: no %s%s%s", here,
			  here[0] ? " nor " : "", installed);
out:
	if (!err)
		*ops = loaded;
	return err;
}
