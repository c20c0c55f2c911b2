#!/bin/bash
# controld.sh - moat-controld in the lab, for e2e scripts, the demo and the
# control benchmark (source after lab.sh and lab_init; needs CTLD, and
# MOATCTL for mctl).
#   ctld_lab TAG   PIN=/sys/fs/bpf/moat-TAG-<lab id>, SOCK (exported as
#                  MOAT_SOCKET for moatctl), teardown armed on EXIT/INT/TERM:
#                  ctld_on_exit (if the caller defines it), stop the daemon,
#                  remove the pins, lab_down
#   ctld_spawn CONF LOG   start moat-controld -c CONF in the app namespace
#                  via nsenter (ip netns exec would hide bpffs), output to
#                  LOG, pid in $LAB_DIR/ctld.pid; CTLD_ARGS adds arguments.
#                  Does not wait (benchmarks time the start themselves).
#   start_ctld LOG ctld_spawn $LAB_DIR/moat.conf $LAB_DIR/LOG.log, then wait
#                  for event=ready.  Env assignments before the call reach
#                  the daemon.
#   ctld_stop [SIG] the daemon of $LAB_DIR/ctld.pid signalled (TERM; 9 for a
#                  crash) and waited for, with no job notice on stderr
#   mctl ARGS      moatctl;  jget JSON EXPR  python expression on JSON (d)
#   ctld_notify_late LINE T0_MS   the event=load LINE (with its log time
#                  stamp) claims a notify_to_live_ms longer than the wall
#                  time from T0_MS (epoch ms, taken before the primary was
#                  told to change: its NOTIFY cannot be older) to the line:
#                  prints "notify_to_live_ms=N > M ms since the change" and
#                  succeeds (a stale NOTIFY timed the load); else fails
#   ctld_test TAG PLAN [FILE...]  the start of an e2e/netns script: TAP plan,
#                  the binaries (CTLD, MOATCTL, FILE...) present, lab_init,
#                  ctld_lab TAG
#   ctld_lab_up    lab_up quietly, or "not ok - lab up" and exit
#   ctld_conf ZONE ZONE_LINES [DAEMON_LINES] [LINES]   $LAB_DIR/moat.conf:
#                  [daemon] with SOCK, state_dir $LAB_DIR/state, debug log
#                  and DAEMON_LINES; LINES (a fast path's section) after
#                  it; no metrics, drop_threshold 1; [zone ZONE] with
#                  ZONE_LINES
#   ctld_conf_zone ZONE FILE FORMAT [LINES]   ctld_conf with the rbldnsd
#                  zone ZONE from FILE in FORMAT (ip4set, ip6trie...)
# Defaults set when sourced (a caller's own values are kept): build
# (MOAT_BUILD_DIR or $root/build), CTLD, MOATCTL, PASS_OBJ (the peer's
# XDP_PASS program), PROBE (tests/netns/tcp_probe.py), PY.

build=${build:-${MOAT_BUILD_DIR:-$root/build}}
CTLD=${CTLD:-$build/control/moat-controld}
MOATCTL=${MOATCTL:-$build/tools/moatctl}
PASS_OBJ=${PASS_OBJ:-$build/bpf/moat_xdp_pass.bpf.o}
PROBE=${PROBE:-$root/tests/netns/tcp_probe.py}
PY=${PY:-/usr/bin/python3}

ctld_test() {
	local tag=$1 plan=$2 f
	shift 2
	tap_plan "$plan"
	for f in "$CTLD" "$MOATCTL" "$@"; do
		[ -e "$f" ] || { tap_not_ok "missing $f (build first)"; exit 1; }
	done
	lab_init
	ctld_lab "$tag"
}

ctld_lab_up() {
	lab_up >/dev/null 2>&1 || { tap_not_ok "lab up"; exit 1; }
}

ctld_conf() {
	cat >"$LAB_DIR/moat.conf" <<EOC
[daemon]
socket = $SOCK
state_dir = $LAB_DIR/state
log_level = debug
${3:-}
${4:-}
[metrics]
listen = off
[policy]
drop_threshold = 1
[zone $1]
$2
EOC
}

ctld_conf_zone() {
	ctld_conf "$1" "$(printf 'type = rbldnsd\nfile = %s\nformat = %s' "$2" "$3")" "" "${4:-}"
}

ctld_lab() {
	PIN=/sys/fs/bpf/moat-$1-$LAB_ID
	SOCK=$LAB_DIR/control.sock
	export MOAT_SOCKET=$SOCK
	trap 'ctld_cleanup' EXIT
	trap 'ctld_cleanup; exit 130' INT
	trap 'ctld_cleanup; exit 143' TERM
}

ctld_cleanup() {
	set +e # errexit (benchmarks) must not cut the teardown short
	if declare -F ctld_on_exit >/dev/null; then
		ctld_on_exit
	fi
	if [ -n "${LAB_DIR:-}" ] && [ -f "$LAB_DIR/ctld.pid" ]; then
		kill "$(cat "$LAB_DIR/ctld.pid")" 2>/dev/null
	fi
	rm -rf "$PIN"
	lab_down
}

ctld_spawn() {
	# nsenter execs the daemon: $! is moat-controld itself
	# shellcheck disable=SC2086
	nsenter --net="/run/netns/$NS_APP" "$CTLD" ${CTLD_ARGS:-} -c "$1" >"$2" 2>&1 &
	LAB_PIDS+=($!)
	echo $! >"$LAB_DIR/ctld.pid"
}

start_ctld() {
	ctld_spawn "$LAB_DIR/moat.conf" "$LAB_DIR/$1.log"
	lab_wait 15 grep -q 'event=ready' "$LAB_DIR/$1.log"
}

ctld_stop() {
	local p
	p=$(cat "$LAB_DIR/ctld.pid")
	kill -"${1:-TERM}" "$p"
	wait "$p" 2>/dev/null
}

mctl() { "$MOATCTL" "$@"; }
ctld_notify_late() {
	local ts v at
	ts=${1%% *}
	v=$(printf '%s\n' "$1" | sed -n 's/.* notify_to_live_ms=\([0-9.-]*\).*/\1/p')
	at=$(date -d "$ts" +%s%3N 2>/dev/null) || { echo "no time stamp in: $1"; return 0; }
	# log stamps and T0 are whole ms: 2 ms of slack
	awk -v v="${v:--1}" -v w="$((at - $2))" 'BEGIN {
		if (v < 0) { print "notify_to_live_ms=" v ": no NOTIFY timed the load"; exit 0 }
		if (v > w + 2) { printf "notify_to_live_ms=%s > %d ms since the change\n", v, w; exit 0 }
		exit 1 }'
}
jget() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
