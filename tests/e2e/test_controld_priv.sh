#!/bin/bash
# test_controld_priv.sh - moat-controld with [daemon] user: after binding
# and attaching it runs as nobody with only CAP_BPF and CAP_NET_ADMIN, and
# still publishes IPv4 and IPv6 entries into the XDP maps, reads counters,
# persists its state and detaches.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"

ctld_test priv 7 "$PROBE"
ctld_lab_up
lab_sender 192.0.2.10
lab_sender 2001:db8:100::10
lab_sender 192.0.2.13
lab_bg "$NS_APP" listen4 python3 "$PROBE" listen 198.18.1.1 25 "$LAB_DIR/accept.log"
lab_bg "$NS_APP" listen6 python3 "$PROBE" listen 2001:db8:1::1 25 "$LAB_DIR/accept.log"
mkdir -p "$LAB_DIR/state"
cat >"$LAB_DIR/moat.conf" <<EOC
[daemon]
socket = $SOCK
state_dir = $LAB_DIR/state
user = nobody
socket_owner = nobody:mail
[xdp]
interfaces = inet0
pin_dir = $PIN
[metrics]
listen = off
EOC
start_ctld ctld
pid=$(cat "$LAB_DIR/ctld.pid")
uid=$(awk '/^Uid/ {print $2}' "/proc/$pid/status")
cap=$(awk '/^CapEff/ {print $2}' "/proc/$pid/status")
owner=$(stat -c %U "$SOCK" 2>/dev/null)
# mode 0660 (the default socket_mode) and the group of socket_owner (mail
# is not nobody's primary group: it comes from the configuration)
perm=$(stat -c '%a %G' "$SOCK" 2>/dev/null)
# CAP_NET_ADMIN (12) and CAP_BPF (39) only
if [ "$uid" = 65534 ] && [ "$cap" = 0000008000001000 ] && [ "$owner" = nobody ]; then
	tap_ok "runs as nobody with CapEff=$cap (bpf, net_admin), socket owned by nobody"
else
	tap_not_ok "uid=$uid CapEff=$cap socket owner=$owner"
	cat "$LAB_DIR/ctld.log" >&2
fi
[ "$perm" = "660 mail" ] && tap_ok "control socket mode 660, group mail from socket_owner" ||
	tap_not_ok "control socket: mode/group '$perm', want '660 mail'"
# positive control: the same sources connect before they are listed, so a
# timeout after the add is the drop, not a broken path
p4=$(lab_inet python3 "$PROBE" connect 192.0.2.10 198.18.1.1 25 2)
p6=$(lab_inet python3 "$PROBE" connect 2001:db8:100::10 2001:db8:1::1 25 2)
[ "$p4/$p6" = connected-reply/connected-reply ] && tap_ok "before any entry: IPv4 and IPv6 sources connect" ||
	tap_not_ok "before any entry: v4=$p4 v6=$p6"
"$MOATCTL" add 192.0.2.10 --action drop >/dev/null && "$MOATCTL" add 2001:db8:100::10 --action drop >/dev/null
g4=$(lab_inet python3 "$PROBE" connect 192.0.2.10 198.18.1.1 25 2)
g6=$(lab_inet python3 "$PROBE" connect 2001:db8:100::10 2001:db8:1::1 25 2)
u4=$(lab_inet python3 "$PROBE" connect 192.0.2.13 198.18.1.1 25 2)
[ "$g4/$g6/$u4" = timeout/timeout/connected-reply ] &&
	tap_ok "IPv4 and IPv6 entries published after the drop (an unlisted source still connects)" ||
	tap_not_ok "after the drop: v4=$g4 v6=$g6 unlisted v4=$u4"
d=$("$MOATCTL" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["drop"])')
[ "${d:-0}" -ge 2 ] && tap_ok "counters readable after the drop (drop=$d)" || tap_not_ok "stats: $d"
# the adds are appended to the entries journal (control/persist.c)
[ "$(stat -c %U "$LAB_DIR/state/entries.journal" 2>/dev/null)" = nobody ] &&
	[ "$(stat -c %s "$LAB_DIR/state/entries.journal" 2>/dev/null)" -gt 0 ] &&
	tap_ok "state persisted as nobody (entries.journal)" || tap_not_ok "no state file written as nobody"
"$MOATCTL" detach >/dev/null
if lab_wait 5 bash -c "! ip -n '$NS_APP' -d link show inet0 | grep -q 'prog/xdp' && [ ! -e '$PIN' ]"; then
	tap_ok "detach after the drop: program, link and pins gone"
else
	tap_not_ok "detach as nobody left the program or pins"
fi
exit $((TAP_FAIL > 0))
