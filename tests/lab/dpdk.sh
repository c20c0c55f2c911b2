#!/bin/bash
# dpdk.sh - moat-dpdk in the lab, for the netns scripts (source after
# lab.sh and lab_init; needs DPDK, the moat-dpdk binary):
#   dpdk_wire      make app's inet0 moat-dpdk's wire port: no addresses,
#                  the kernel's own stack never sees its frames (an
#                  nftables netdev ingress chain drops them after AF_PACKET
#                  took its copy), the inet peer fills in its checksums
#                  (veth hands AF_PACKET partial ones, which the TAP's
#                  kernel side would drop)
#   dpdk_start NAME CONF [WORKERS]   moat-dpdk in app on net_af_packet over
#                  inet0, output to NAME.log; two workers share the second
#                  CPU (lcores 1 and 2 on CPU 1), each with its own queue
#                  pair (af_packet's fanout, a multi-queue TAP)
#   dpdk_conf FILE STATE_DIR SOCKET   moat-dpdk's configuration: the
#                  wire port net_af_packet0, the TAP dtap0, the channel's
#                  SOCKET, no limit on the wait for a table
#   dpdk_tap_addrs the appliance's addresses and routes on the TAP dtap0
#   dpdk_tel NAME [CMD]   one counter of /moat/stats (or of CMD) through
#                  DPDK telemetry
#   dpdk_cleanup   lab_down and EAL's runtime directory of the run
# DPDK_PREFIX (moat-<lab id>) is EAL's --file-prefix.

DPDK_PREFIX=moat-$LAB_ID

dpdk_wire() {
	ip -n "$NS_APP" addr flush dev inet0
	lab_app sysctl -qw net.ipv6.conf.inet0.disable_ipv6=1
	lab_app nft -f - <<EOF
table netdev moat_dpdk_wire {
	chain in {
		type filter hook ingress device "inet0" priority 0; policy drop;
	}
}
EOF
	lab_inet ethtool -K app0 tx off >/dev/null
}

dpdk_conf() {
	mkdir -p "$2"
	cat >"$1" <<EOF
[daemon]
state_dir = $2

[dpdk]
port = net_af_packet0
exception = dtap0
socket = $3
load_wait = 0
EOF
}

dpdk_start() {
	local lc=0-1 q=1
	[ "${3:-1}" = 2 ] && lc='0@0,1@1,2@1' q=2
	lab_bg "$NS_APP" "$1" "$DPDK" --lcores "$lc" --no-huge --no-pci -m 256 \
		--file-prefix "$DPDK_PREFIX" --log-level '*:warning' \
		--vdev "net_af_packet0,iface=inet0,qpairs=$q" -- --config "$2"
}

dpdk_tap_addrs() {
	ip -n "$NS_APP" addr add 198.18.1.1/24 dev dtap0 &&
		ip -n "$NS_APP" addr add 2001:db8:1::1/64 dev dtap0 nodad &&
		ip -n "$NS_APP" link set dtap0 up &&
		for r in 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24; do
			ip -n "$NS_APP" route replace "$r" via 198.18.1.2 dev dtap0 || return 1
		done &&
		ip -n "$NS_APP" -6 route replace 2001:db8:100::/48 via 2001:db8:1::2 dev dtap0
}

dpdk_tel() {
	local cmd=${2:-/moat/stats}
	echo "$cmd" | dpdk-telemetry.py -f "$DPDK_PREFIX" 2>/dev/null | tail -1 |
		/usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$cmd']['$1'])"
}

dpdk_cleanup() {
	lab_down
	rm -rf "/var/run/dpdk/$DPDK_PREFIX"
}
