#!/usr/bin/env bash
# A node with real pods, wired as a container runtime would: the real CNI
# plugins from /usr/lib/cni run inside the node netns with the CNI_* env and
# their config on stdin, and an OVS bridge on the userspace (netdev) datapath
# started by hand. Every name carries the lab id: netns hn-<id>-*, run dir
# /tmp/hn-<id>, OVS bridge hn<id>br.
#
#   hnlab.sh up    ID                   node netns, macvlan parent, OVS
#   hnlab.sh pod   ID STYLE NAME        STYLE: calico | flannel | macvlan | ovs
#   hnlab.sh unpod ID NAME              CNI DEL (or OVS del-port), netns del
#   hnlab.sh down  ID                   every pod, OVS, the node; idempotent
#
# A pod NAME is at most 6 characters ([a-z0-9-]). Each pod leaves a record in
# /tmp/hn-<id>/pods/NAME, one "key value" per line: style, netns, host_if
# ("-" for macvlan), addrs (comma-separated, no prefix), iface_id (ovs).
set -euo pipefail

CNI_BIN=/usr/lib/cni

die() { echo "hnlab: $*" >&2; exit 1; }

lab_vars() {
	ID=$1
	[[ $ID =~ ^[0-9a-f]{1,4}$ ]] || die "lab id must be 1-4 hex digits: $ID"
	RUN=/tmp/hn-$ID
	NODE=hn-$ID-node
	BR=hn${ID}br
	MVPARENT=hn${ID}mv0
	OVSDIR=$RUN/ovs
}

ovs_env() {
	export OVS_RUNDIR=$OVSDIR OVS_LOGDIR=$OVSDIR OVS_DBDIR=$OVSDIR
}

# cni CMD CONTAINERID NETNS CONF: run the plugin the way a runtime does
cni() {
	local conf=$RUN/conf/$4.json
	CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/$3 CNI_IFNAME=eth0 \
		CNI_PATH=$CNI_BIN CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=$3" \
		ip netns exec "$NODE" "$CNI_BIN/$(jq -r .type "$conf")" <"$conf"
}

write_confs() {
	local ipam='"ipam":{"type":"host-local","dataDir":"'$RUN'/ipam",'
	mkdir -p "$RUN/conf" "$RUN/pods" "$RUN/ipam"
	cat >"$RUN/conf/calico.json" <<-EOF
	{"cniVersion":"1.0.0","name":"hn-$ID-calico","type":"ptp",$ipam
	 "ranges":[[{"subnet":"10.244.2.0/24"}],[{"subnet":"fd00:2::/64"}]],"routes":[{"dst":"0.0.0.0/0"}]}}
	EOF
	cat >"$RUN/conf/flannel.json" <<-EOF
	{"cniVersion":"1.0.0","name":"hn-$ID-flannel","type":"bridge","bridge":"$BR","isGateway":true,
	 "ipMasq":false,"hairpinMode":true,$ipam
	 "ranges":[[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:1::/64"}]],"routes":[{"dst":"0.0.0.0/0"}]}}
	EOF
	cat >"$RUN/conf/macvlan.json" <<-EOF
	{"cniVersion":"1.0.0","name":"hn-$ID-macvlan","type":"macvlan","master":"$MVPARENT","mode":"bridge",$ipam
	 "ranges":[[{"subnet":"192.168.250.0/24","rangeStart":"192.168.250.10","rangeEnd":"192.168.250.50"}]]}}
	EOF
}

ovs_up() {
	ovs_env
	mkdir -p "$OVSDIR"
	ovsdb-tool create "$OVSDIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	ovsdb-server "$OVSDIR/conf.db" --remote="punix:$OVSDIR/db.sock" \
		--pidfile="$OVSDIR/ovsdb-server.pid" --log-file="$OVSDIR/ovsdb-server.log" -vconsole:off --detach
	ovs-vsctl --no-wait init
	ip netns exec "$NODE" ovs-vswitchd "unix:$OVSDIR/db.sock" --pidfile="$OVSDIR/ovs-vswitchd.pid" \
		--log-file="$OVSDIR/ovs-vswitchd.log" -vconsole:off --detach
	ovs-vsctl --timeout=30 add-br "${BR}o" -- set bridge "${BR}o" datapath_type=netdev
}

cmd_up() {
	lab_vars "$1"
	[ -e "/run/netns/$NODE" ] && die "lab $ID exists"
	mkdir -p "$RUN"
	write_confs
	ip netns add "$NODE"
	ip -n "$NODE" link set lo up
	# the macvlan parent: a veth pair with both ends in the node
	ip -n "$NODE" link add "$MVPARENT" type veth peer name "hn${ID}mv1"
	ip -n "$NODE" link set "$MVPARENT" up
	ip -n "$NODE" link set "hn${ID}mv1" up
	ovs_up
}

record() { # record NAME key value...
	local f=$RUN/pods/$1
	shift
	while [ $# -ge 2 ]; do echo "$1 $2" >>"$f"; shift 2; done
}

# the addresses of the sandbox interface in a CNI result, comma-separated
result_addrs() {
	jq -r '[.ips[].address | sub("/.*"; "")] | join(",")' "$1"
}

pod_cni() { # pod_cni STYLE NAME NETNS
	local style=$1 name=$2 ns=$3 res=$RUN/pods/$2.result host
	cni ADD "hn-$ID-$name" "$ns" "$style" >"$res"
	host=$(jq -r '[.interfaces[] | select(.sandbox == null and .name != "'"$BR"'") | .name][0] // "-"' "$res")
	if [ "$style" = calico ]; then # Calico names host veths cali + 11 hex
		local cali=cali$(printf %s "hn-$ID-$name" | sha1sum | cut -c1-11)
		ip -n "$NODE" link set "$host" name "$cali"
		host=$cali
	fi
	record "$name" style "$style" netns "/run/netns/$ns" host_if "$host" addrs "$(result_addrs "$res")"
}

pod_ovs() { # pod_ovs NAME NETNS: a veth into the OVS bridge, tagged as ovn-k/Antrea do
	local name=$1 ns=$2 host=hn${ID}${1} n addr mac
	n=$(cat "$RUN/ovs-next" 2>/dev/null || echo 2)
	echo $((n + 1)) >"$RUN/ovs-next"
	addr=10.244.4.$n
	ip -n "$NODE" link add "$host" type veth peer name eth0 netns "$ns"
	ip -n "$NODE" link set "$host" up
	ip -n "$ns" link set eth0 up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null 2>&1 || true
	mac=$(ip -n "$ns" -j link show eth0 | jq -r '.[0].address')
	ovs_env
	ovs-vsctl --timeout=30 add-port "${BR}o" "$host" -- set Interface "$host" \
		"external_ids:iface-id=default_$name" "external_ids:attached-mac=$mac"
	record "$name" style ovs netns "/run/netns/$ns" host_if "$host" addrs "$addr" \
		iface_id "default_$name"
}

cmd_pod() {
	lab_vars "$1"
	local style=$2 name=$3 ns=hn-$1-$3
	[[ $name =~ ^[a-z0-9-]{1,6}$ ]] || die "bad pod name: $name"
	[ -e "$RUN/pods/$name" ] && die "pod $name exists"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	case $style in
	calico | flannel | macvlan) pod_cni "$style" "$name" "$ns" ;;
	ovs) pod_ovs "$name" "$ns" ;;
	*) die "unknown style $style" ;;
	esac
}

cmd_unpod() {
	lab_vars "$1"
	local name=$2 ns=hn-$1-$2 f=$RUN/pods/$2 style
	[ -e "$f" ] || return 0
	style=$(awk '$1 == "style" {print $2}' "$f")
	if [ "$style" = ovs ]; then
		ovs_env
		ovs-vsctl --timeout=30 --if-exists del-port "${BR}o" "hn${ID}${name}" || true
		ip -n "$NODE" link del "hn${ID}${name}" 2>/dev/null || true
	else
		cni DEL "hn-$ID-$name" "$ns" "$style" || echo "hnlab: CNI DEL $name failed" >&2
	fi
	ip netns del "$ns" 2>/dev/null || true
	rm -f "$f" "$f.result"
}

cmd_down() {
	lab_vars "$1"
	set +e
	local f pid
	for f in "$RUN"/pods/*; do
		case $f in *.result | *'*') continue ;; esac
		cmd_unpod "$ID" "$(basename "$f")"
	done
	if [ -d "$OVSDIR" ]; then
		ovs_env
		ovs-vsctl --timeout=5 --if-exists del-br "${BR}o" 2>/dev/null
		for d in ovs-vswitchd ovsdb-server; do
			ovs-appctl --timeout=5 -t "$OVSDIR/$d.$(cat "$OVSDIR/$d.pid" 2>/dev/null).ctl" exit \
				>/dev/null 2>&1
			pid=$(cat "$OVSDIR/$d.pid" 2>/dev/null)
			[ -n "$pid" ] && kill "$pid" 2>/dev/null
		done
	fi
	for n in $(ip netns list | awk '{print $1}' | grep "^hn-$ID-"); do
		ip netns del "$n"
	done
	rm -rf "$RUN"
	return 0
}

[ $# -ge 2 ] || die "usage: hnlab.sh up|pod|unpod|down ID [...]"
cmd=$1
shift
case $cmd in
up) cmd_up "$@" ;;
pod) [ $# -eq 3 ] || die "usage: pod ID STYLE NAME"; cmd_pod "$@" ;;
unpod) [ $# -eq 2 ] || die "usage: unpod ID NAME"; cmd_unpod "$@" ;;
down) cmd_down "$@" ;;
*) die "unknown command $cmd" ;;
esac
