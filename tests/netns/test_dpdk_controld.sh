#!/bin/bash
# test_dpdk_controld.sh - moat-controld ([fastpath] backend = dpdk) and
# moat-dpdk together in the lab: moat-dpdk on net_af_packet over inet0,
# the TAP exception path in app, its own configuration file naming the
# socket moat.conf's [dpdk] names.  moat-dpdk forwards only once
# moat-controld has published; an operator entry added with moatctl drops
# its source's SYNs while an unlisted client connects; moatctl stats and
# DPDK telemetry give the same counters; moatctl watch shows a sampled
# drop; moat-dpdk runs as nobody with no capability in any thread once
# it is up ([dpdk] user), and still forwards, publishes and saves; kill -9
# of moat-dpdk: restarted, it filters with its saved table and
# moat-controld connects again.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
build=${MOAT_BUILD_DIR:-$root/build}
DPDK=$build/dataplane/dpdk/moat-dpdk
CTLD=$build/control/moat-controld
MOATCTL=$build/tools/moatctl
PROBE=$here/tcp_probe.py
PY=/usr/bin/python3
T=3

tap_plan 7
for f in "$DPDK" "$CTLD" "$MOATCTL" /usr/bin/dpdk-telemetry.py; do
	[ -e "$f" ] || { tap_not_ok "missing $f"; exit 1; }
done
lab_init
. "$root/tests/lab/dpdk.sh"
trap 'dpdk_cleanup' EXIT
trap 'dpdk_cleanup; exit 130' INT
trap 'dpdk_cleanup; exit 143' TERM
lab_up >/dev/null 2>&1 || { tap_not_ok "lab up"; exit 1; }
lab_sender 192.0.2.10
lab_sender 192.0.2.13
dpdk_wire

SOCK=$LAB_DIR/dpdk.sock
export MOAT_SOCKET=$LAB_DIR/control.sock
mkdir -p "$LAB_DIR/state"
cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $MOAT_SOCKET
state_dir = $LAB_DIR/state

[fastpath]
backend = dpdk

[dpdk]
socket = $SOCK
EOF
dpdk_conf "$LAB_DIR/moat-dpdk.conf" "$LAB_DIR/dstate" "$SOCK"
echo "user = nobody" >>"$LAB_DIR/moat-dpdk.conf"

probe() { lab_inet $PY "$PROBE" connect "$1" 198.18.1.1 25 "$T"; }
# committed_after N - moat-dpdk's channel has applied more than N commits
committed_after() { [ "$(dpdk_tel commits /moat/channel)" -gt "$1" ]; }
# mstat NAME - one counter as moatctl stats shows it
mstat() { "$MOATCTL" stats | awk -v n="$1" '$1 == n {print $2}'; }

dpdk_start dpdk1 "$LAB_DIR/moat-dpdk.conf"
lab_wait 20 grep -q 'event=waiting' "$LAB_DIR/dpdk1.log"
lab_bg "$NS_APP" ctld "$CTLD" -c "$LAB_DIR/moat.conf"
if lab_wait 30 grep -q 'event=started' "$LAB_DIR/dpdk1.log" &&
	grep -q 'event=fastpath_connected' "$LAB_DIR/ctld.log" && dpdk_tap_addrs; then
	tap_ok "moat-dpdk forwards once moat-controld has published (backend dpdk)"
else
	tap_not_ok "moat-dpdk did not start from moat-controld's table"
	tail -5 "$LAB_DIR/dpdk1.log" "$LAB_DIR/ctld.log" | sed 's/^/# /'
	exit 1
fi
# least privilege: every thread of moat-dpdk (EAL's, the workers, the
# channel's, telemetry's) as nobody with empty capability sets, the
# channel's socket handed to nobody; the cases below are its positive
# control (it forwards, takes publishes, answers telemetry as nobody)
pid=$(cat "$LAB_DIR/dpdk1.pid")
creds=$(for t in /proc/"$pid"/task/*; do
	awk '/^Uid/ {u=$2"/"$3"/"$4"/"$5} /^CapPrm/ {p=$2} /^CapEff/ {e=$2} END {print u, p, e}' "$t/status"
done | sort -u)
nt=$(ls /proc/"$pid"/task | wc -l)
if [ "$creds" = "65534/65534/65534/65534 0000000000000000 0000000000000000" ] && [ "$nt" -ge 4 ] &&
	[ "$(stat -c %U "$SOCK")" = nobody ] && grep -q 'event=privileges user=nobody .*caps=none' "$LAB_DIR/dpdk1.log"; then
	tap_ok "moat-dpdk runs as nobody, CapPrm=CapEff=0 in all $nt threads, socket owned by nobody"
else
	tap_not_ok "moat-dpdk credentials ($nt threads): $creds; socket $(stat -c %U "$SOCK")"
	grep 'privileges\|refused' "$LAB_DIR/dpdk1.log" | sed 's/^/# /'
fi
lab_bg "$NS_APP" listen4 $PY "$PROBE" listen 198.18.1.1 25 "$LAB_DIR/accept.log"
lab_wait 5 lab_app bash -c 'exec 3<>/dev/tcp/198.18.1.1/25'
ok0=$(probe 192.0.2.10)
c0=$(dpdk_tel commits /moat/channel)
"$MOATCTL" add 192.0.2.10 --action drop >/dev/null
# the entry is in moat-dpdk's table once the channel has a new commit
lab_wait 10 committed_after "$c0"
got=$(probe 192.0.2.10)
ok=$(probe 192.0.2.13)
if [ "$ok0" = connected-reply ] && [ "$got" = timeout ] && [ "$ok" = connected-reply ]; then
	tap_ok "moatctl add --action drop: the source connected before, times out now; unlisted connects"
else
	tap_not_ok "before $ok0, listed $got, unlisted $ok"
fi
# moatctl watch: a refused SYN sampled by moat-dpdk reaches it through
# moat-controld (SYNs sent one by one until the watcher has its event)
timeout 20 "$MOATCTL" watch --count 1 --json >"$LAB_DIR/watch.out" 2>&1 &
wpid=$!
for i in $(seq 30); do
	kill -0 "$wpid" 2>/dev/null || break
	lab_inet hping3 -q -c 1 -S -p 25 -a 192.0.2.10 198.18.1.1 >/dev/null 2>&1
	sleep 0.3
done
wait "$wpid" 2>/dev/null
if grep -q '192.0.2.10' "$LAB_DIR/watch.out"; then
	tap_ok "moatctl watch: moat-dpdk's sampled drop of 192.0.2.10"
else
	tap_not_ok "moatctl watch: $(head -c 300 "$LAB_DIR/watch.out")"
fi
md=$(mstat drop) mp=$(mstat pass) td=$(dpdk_tel drop) tp=$(dpdk_tel pass)
if [ -n "$md" ] && [ "$md" = "$td" ] && [ "$mp" = "$tp" ] && [ "${md:-0}" -ge 1 ] &&
	[ "${mp:-0}" -ge 2 ]; then
	tap_ok "moatctl stats and telemetry agree: drop=$md pass=$mp"
else
	tap_not_ok "moatctl stats drop=$md pass=$mp, telemetry drop=$td pass=$tp"
fi

# --- kill -9 of moat-dpdk ---------------------------------------------------
kill -9 "$(cat "$LAB_DIR/dpdk1.pid")"
lab_wait 10 bash -c "! kill -0 $(cat "$LAB_DIR/dpdk1.pid") 2>/dev/null"
rm -rf "/var/run/dpdk/$DPDK_PREFIX"
dpdk_start dpdk2 "$LAB_DIR/moat-dpdk.conf"
if lab_wait 30 grep -q 'event=started' "$LAB_DIR/dpdk2.log" && dpdk_tap_addrs &&
	grep -q 'event=restore.*result=ok' "$LAB_DIR/dpdk2.log"; then
	got=$(probe 192.0.2.10)
	ok=$(probe 192.0.2.13)
	if [ "$got" = timeout ] && [ "$ok" = connected-reply ]; then
		tap_ok "kill -9, restart: the saved table filters (listed $got, unlisted $ok)"
	else
		tap_not_ok "after restart: listed $got, unlisted $ok"
	fi
else
	tap_not_ok "moat-dpdk restart:"
	tail -5 "$LAB_DIR/dpdk2.log" | sed 's/^/# /'
fi
if lab_wait 30 lab_count_ge 2 'event=fastpath_connected' "$LAB_DIR/ctld.log"; then
	tap_ok "moat-controld connected to the restarted moat-dpdk"
else
	tap_not_ok "moat-controld did not reconnect:"
	grep -i dpdk "$LAB_DIR/ctld.log" | tail -5 | sed 's/^/# /'
fi
exit $((TAP_FAIL > 0))
