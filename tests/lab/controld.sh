#!/bin/bash
# controld.sh - moat-controld in the lab, for e2e scripts (source after
# lab.sh and lab_init; needs CTLD and MOATCTL set).
#   ctld_lab TAG   PIN=/sys/fs/bpf/moat-TAG-<lab id>, SOCK (exported as
#                  MOAT_SOCKET for moatctl), teardown armed on EXIT/INT/TERM:
#                  stop the daemon, remove the pins, lab_down
#   start_ctld LOG start moat-controld -c $LAB_DIR/moat.conf in the app
#                  namespace via nsenter (ip netns exec would hide bpffs);
#                  waits for event=ready.  Env assignments before the call
#                  reach the daemon.
#   mctl ARGS      moatctl;  jget JSON EXPR  python expression on JSON (d)

ctld_lab() {
	PIN=/sys/fs/bpf/moat-$1-$LAB_ID
	SOCK=$LAB_DIR/control.sock
	export MOAT_SOCKET=$SOCK
	trap 'ctld_cleanup' EXIT
	trap 'ctld_cleanup; exit 130' INT
	trap 'ctld_cleanup; exit 143' TERM
}

ctld_cleanup() {
	if [ -n "${LAB_DIR:-}" ] && [ -f "$LAB_DIR/ctld.pid" ]; then
		kill "$(cat "$LAB_DIR/ctld.pid")" 2>/dev/null
	fi
	rm -rf "$PIN"
	lab_down
}

start_ctld() {
	# nsenter execs the daemon: $! is moat-controld itself
	nsenter --net="/run/netns/$NS_APP" "$CTLD" -c "$LAB_DIR/moat.conf" >"$LAB_DIR/$1.log" 2>&1 &
	LAB_PIDS+=($!)
	echo $! >"$LAB_DIR/ctld.pid"
	lab_wait 15 grep -q 'event=ready' "$LAB_DIR/$1.log"
}

mctl() { "$MOATCTL" "$@"; }
jget() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
