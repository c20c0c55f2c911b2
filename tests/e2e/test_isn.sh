#!/bin/bash
# test_isn.sh - the tarpit's sequence number survives a moat-controld
# restart: the SipHash key lives in STATE_DIR/isn.key (mode 0600), so a SYN
# from a tarpitted source gets the same SYN-ACK before a restart (SIGTERM,
# then kill -9) as after it; a fresh state directory gets a fresh key, so a
# different ISN.  Real XDP program on the lab's inet0, SYNs and SYN-ACKs
# through scapy in the inet namespace.  Pins, state and socket unique per
# run, removed at the end.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
SRC=192.0.2.77

ctld_test isn 7 "$PASS_OBJ"

# write_conf STATE_DIR - controld on inet0, no zones (operator entries only)
write_conf() {
	cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
state_dir = $1
log_level = debug

[xdp]
interfaces = inet0
pin_dir = $PIN
EOF
}

# synack SPORT - send one SYN from $SRC:SPORT to 198.18.1.1:25; print the
# SYN-ACK as "seq window" ("none" when nothing came back)
synack() {
	lab_inet $PY - "$SRC" "$1" <<'EOF'
import sys
from scapy.all import IP, TCP, conf, sr1
conf.verb = 0
src, sport = sys.argv[1], int(sys.argv[2])
r = sr1(IP(src=src, dst="198.18.1.1") / TCP(sport=sport, dport=25, flags="S", seq=1000),
        timeout=3)
if r is None or TCP not in r or r[TCP].flags != "SA":
    print("none")
else:
    print(r[TCP].seq, r[TCP].window)
EOF
}

# stop_ctld SIG - stop the daemon with SIG and wait until it is gone
stop_ctld() {
	local pid
	pid=$(cat "$LAB_DIR/ctld.pid")
	kill "-$1" "$pid" 2>/dev/null
	lab_wait 10 bash -c "! kill -0 $pid 2>/dev/null"
}

if ! lab_up; then
	tap_not_ok "lab up"
	exit 1
fi
lab_sender "$SRC"
# XDP_TX frames (the tarpit's SYN-ACKs) reach the veth peer only with XDP on it
ip -n "$NS_INET" link set dev app0 xdpdrv obj "$PASS_OBJ" sec xdp

# --- first start: a new key, saved 0600 -----------------------------------
write_conf "$LAB_DIR/state"
if start_ctld ctld1 && grep -q 'event=isn_key source=new' "$LAB_DIR/ctld1.log" &&
	[ "$(stat -c %a "$LAB_DIR/state/isn.key" 2>/dev/null)" = 600 ]; then
	tap_ok "first start: new ISN key saved as state/isn.key, mode 0600"
else
	tap_not_ok "first start: $(grep isn_key "$LAB_DIR/ctld1.log") mode=$(stat -c %a "$LAB_DIR/state/isn.key" 2>&1)"
fi
mctl add "$SRC" --action tarpit >/dev/null
a1=$(synack 40001)
a1b=$(synack 40001)
b1=$(synack 40002)
if [ "${a1#* }" = 0 ] && [ "$a1" = "$a1b" ] && [ "$a1" != "$b1" ] && [ "$b1" != none ]; then
	tap_ok "tarpit SYN-ACK, window 0, ISN a keyed hash of the 4-tuple: $a1 (again $a1b; other port $b1)"
else
	tap_not_ok "tarpit answers: a1=$a1 again=$a1b other=$b1"
fi

# --- SIGTERM, restart: same key, same ISN ---------------------------------
key1=$(od -An -tx1 "$LAB_DIR/state/isn.key" | tr -d ' \n')
stop_ctld TERM
if start_ctld ctld2 && grep -q 'event=isn_key source=state' "$LAB_DIR/ctld2.log" &&
	grep -q 'adopted=1' "$LAB_DIR/ctld2.log"; then
	tap_ok "restart: key read from the state directory, link adopted"
else
	tap_not_ok "restart: $(grep -E 'isn_key|attach' "$LAB_DIR/ctld2.log")"
fi
a2=$(synack 40001)
if [ "$a2" = "$a1" ] && [ "$(synack 40002)" = "$b1" ]; then
	tap_ok "after the restart the same SYN gets the same ISN: $a2"
else
	tap_not_ok "after the restart: $a2, before $a1"
fi

# --- kill -9, restart: still the same -------------------------------------
stop_ctld KILL
if start_ctld ctld3 && a3=$(synack 40001) && [ "$a3" = "$a1" ] &&
	[ "$(od -An -tx1 "$LAB_DIR/state/isn.key" | tr -d ' \n')" = "$key1" ]; then
	tap_ok "kill -9 and restart: same ISN $a3, key file unchanged"
else
	tap_not_ok "kill -9 and restart: ${a3:-?}, before $a1"
fi

# --- a damaged key file is replaced, not trusted --------------------------
stop_ctld TERM
printf 'garbage' >"$LAB_DIR/state/isn.key"
if start_ctld ctld4 && grep -q 'event=isn_key source=new' "$LAB_DIR/ctld4.log" &&
	[ "$(stat -c %s "$LAB_DIR/state/isn.key")" = 40 ]; then
	tap_ok "a damaged isn.key is replaced by a new key"
else
	tap_not_ok "damaged key file: $(grep isn_key "$LAB_DIR/ctld4.log")"
fi

# --- fresh state directory (and fresh pins): a different key --------------
mctl detach >/dev/null
lab_wait 10 bash -c "! kill -0 $(cat "$LAB_DIR/ctld.pid") 2>/dev/null"
rm -rf "$PIN"
write_conf "$LAB_DIR/state2"
if start_ctld ctld5 && grep -q 'event=isn_key source=new' "$LAB_DIR/ctld5.log"; then
	mctl add "$SRC" --action tarpit >/dev/null
	a5=$(synack 40001)
	if [ "$a5" != none ] && [ "${a5#* }" = 0 ] && [ "$a5" != "$a1" ] &&
		! cmp -s "$LAB_DIR/state/isn.key" "$LAB_DIR/state2/isn.key"; then
		tap_ok "fresh state directory: new key, another ISN for the same SYN ($a5 vs $a1)"
	else
		tap_not_ok "fresh state: $a5 vs $a1"
	fi
else
	tap_not_ok "fresh state start: $(tail -3 "$LAB_DIR/ctld5.log")"
fi
stop_ctld TERM
echo "# $TAP_N cases run"
exit $((TAP_FAIL > 0))
