#!/usr/bin/env bash
# e2e for segd's pod interface discovery: builds a lab node (hnlab.sh) with
# one pod per CNI style, runs test_discover against it, and tears the lab
# down whatever happens.
#
#   run.sh TEST_DISCOVER HNLAB
#
# Exit 77 if not root (CI treats that as a failure). Uses netns hn-<id>-*,
# run dir /tmp/hn-<id>, OVS bridge hn<id>br*.
set -euo pipefail

bin=${1:?usage: run.sh TEST_DISCOVER HNLAB}
lab=${2:?usage: run.sh TEST_DISCOVER HNLAB}
if [ "$(id -u)" != 0 ]; then
	echo "skip: needs root (network namespaces, CNI plugins, OVS)"
	exit 77
fi
for t in jq ip ovsdb-server ovs-vswitchd ovs-vsctl /usr/lib/cni/ptp /usr/lib/cni/bridge \
	/usr/lib/cni/macvlan /usr/lib/cni/host-local; do
	command -v "$t" >/dev/null || { echo "FAIL: $t is not installed"; exit 1; }
done

id=$(od -An -N2 -tx2 /dev/urandom | tr -d ' \n')
trap 'bash "$lab" down "$id"' EXIT
trap 'exit 1' INT TERM HUP

bash "$lab" up "$id"
bash "$lab" pod "$id" calico cal-a
bash "$lab" pod "$id" flannel fl-a
bash "$lab" pod "$id" macvlan mv-a
bash "$lab" pod "$id" ovs ovs-a
HN_ID=$id HN_LAB="bash $lab" "$bin"
