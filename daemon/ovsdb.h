/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A minimal OVSDB client (RFC 7047 JSON-RPC over ovsdb-server's unix
 * socket): one "transact" select on the Interface table, bounded by a
 * timeout, so segd can tell which veths are OVS ports and their
 * external_ids:iface-id / attached-mac without forking ovs-vsctl.
 */
#ifndef SEGD_OVSDB_H
#define SEGD_OVSDB_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

struct ovsdb_iface {
	char name[IF_NAMESIZE];
	char iface_id[128]; /* external_ids:iface-id, "" if absent */
	char attached_mac[18]; /* external_ids:attached-mac, "" if absent */
	int64_t ofport; /* -1 if not assigned (yet) */
};

/* Every Interface row whose name fits IF_NAMESIZE. 0 or -errno (-ETIMEDOUT
 * after timeout_ms in total, -EPROTO for a reply we cannot use). *out is
 * malloc'ed (free()); *n may be 0. */
int ovsdb_list_ifaces(const char *sock_path, int timeout_ms, struct ovsdb_iface **out, size_t *n);

#endif
