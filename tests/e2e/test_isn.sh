#!/bin/bash
# test_isn.sh - the tarpit's sequence number survives a moat-controld
# restart: the SipHash key lives in STATE_DIR/isn.key (mode 0600), so a SYN
# from a tarpitted source gets the same SYN-ACK before a restart (SIGTERM,
# then kill -9) as after it; a fresh state directory gets a fresh key, so a
# different ISN.  Real XDP program on the lab's inet0, SYNs and SYN-ACKs
# through scapy in the inet namespace.  Pins, state and socket unique per
# run, removed at the end.
# Then moat.conf's tarpit budget: with tarpit_source_rate = 1 and
# tarpit_source_burst = 1 the first SYN from a /24 gets its SYN-ACK and the
# next one within the second (another address of that /24) is dropped and
# counted tarpit_limited; a reload refuses the change, a restart applies it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
SRC=192.0.2.77

ctld_test isn 12 "$PASS_OBJ"

# write_conf STATE_DIR [LINE...] - controld on inet0, no zones (operator
# entries only), the extra lines in [xdp]
write_conf() {
	local dir=$1
	shift
	cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
state_dir = $dir
log_level = debug

[xdp]
interfaces = inet0
pin_dir = $PIN
EOF
	[ $# -eq 0 ] || printf '%s\n' "$@" >>"$LAB_DIR/moat.conf"
}

# synack SPORT - send one SYN from $SRC:SPORT to 198.18.1.1:25; print the
# SYN-ACK as "seq window" ("none" when nothing came back)
synack() { synacks "$SRC" "$1"; }

# synacks SRC SPORT [SRC SPORT...] - the same for each pair, one after the
# other from one process (milliseconds apart), one line each
synacks() {
	lab_inet $PY - "$@" <<'EOF'
import sys
from scapy.all import IP, TCP, conf, sr1
conf.verb = 0
for i in range(1, len(sys.argv), 2):
    src, sport = sys.argv[i], int(sys.argv[i + 1])
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
# wrong size (a valid file cut to 20 bytes): the same, and the tarpit serves
stop_ctld TERM
head -c 20 "$LAB_DIR/state/isn.key" >"$LAB_DIR/isn.cut" && cat "$LAB_DIR/isn.cut" >"$LAB_DIR/state/isn.key"
if start_ctld ctld4b && grep -q "event=isn_key path=$LAB_DIR/state/isn.key damaged: a new key" "$LAB_DIR/ctld4b.log" &&
	grep -q 'event=isn_key source=new' "$LAB_DIR/ctld4b.log" && [ "$(stat -c %s "$LAB_DIR/state/isn.key")" = 40 ] &&
	a4=$(synack 40001) && [ "$a4" != none ] && [ "${a4#* }" = 0 ]; then
	tap_ok "isn.key cut to 20 bytes: logged as damaged, a new 40-byte key saved, the tarpit answers ($a4)"
else
	tap_not_ok "cut key file: $(grep isn_key "$LAB_DIR/ctld4b.log") a4=${a4:-?}"
fi
# unreadable (a directory where the file should be): an error naming the
# path, a random key for this run only, the path left alone, the tarpit serves
stop_ctld TERM
mv "$LAB_DIR/state/isn.key" "$LAB_DIR/isn.good"
mkdir "$LAB_DIR/state/isn.key"
if start_ctld ctld4c && grep -q "event=isn_key path=$LAB_DIR/state/isn.key error=.*(a random key for this run only)" "$LAB_DIR/ctld4c.log" &&
	[ -d "$LAB_DIR/state/isn.key" ] && a4=$(synack 40001) && [ "$a4" != none ] && [ "${a4#* }" = 0 ]; then
	tap_ok "isn.key unreadable: '$(grep -o 'error="[^"]*"' "$LAB_DIR/ctld4c.log" | head -1)' logged, a key for this run only, the path left alone, the tarpit answers"
else
	tap_not_ok "unreadable key file: $(grep isn_key "$LAB_DIR/ctld4c.log") a4=${a4:-?}"
fi
stop_ctld TERM
rmdir "$LAB_DIR/state/isn.key" && mv "$LAB_DIR/isn.good" "$LAB_DIR/state/isn.key"
start_ctld ctld4d

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

# --- tarpit budget from moat.conf ------------------------------------------
SRC2=${SRC%.*}.78   # same /24: the source budget is per /24
lab_sender "$SRC2"
mctl add "$SRC2" --action tarpit >/dev/null
lim() { jget "$(mctl stats --json)" "d['counters']['tarpit_limited']"; }
# positive control: default budget (burst 20): three SYNs in a row answered
l0=$(lim)
c=$(synacks "$SRC" 40011 "$SRC2" 40012 "$SRC" 40013 | tr '\n' /)
l1=$(lim)
if [ -n "$c" ] && ! printf '%s' "$c" | grep -q none && [ "$(printf '%s' "$c" | tr -cd / | wc -c)" = 3 ] &&
	[ "$l1" = "$l0" ]; then
	tap_ok "default tarpit budget: three SYNs from one /24 all answered, tarpit_limited stays $l1"
else
	tap_not_ok "default budget: $c tarpit_limited $l0 -> $l1"
fi
write_conf "$LAB_DIR/state2" "tarpit_source_rate = 1" "tarpit_source_burst = 1"
out=$(mctl reload 2>&1)
if [ $? -ne 0 ] && printf '%s' "$out" | grep -q 'need a restart'; then
	tap_ok "reload refuses a tarpit budget change (needs a restart)"
else
	tap_not_ok "reload with a new tarpit budget: $out"
fi
stop_ctld TERM
if start_ctld ctld6; then
	l0=$(lim)
	d=$(synacks "$SRC" 40021 "$SRC2" 40022)
	d1=${d%%$'\n'*} d2=${d#*$'\n'}
	l1=$(lim)
	if [ -n "$d1" ] && [ "$d1" != none ] && [ "$d2" = none ] && [ "${l1:-0}" -gt "${l0:-0}" ]; then
		tap_ok "tarpit_source_burst = 1: first SYN of the /24 answered, the next dropped, tarpit_limited $l0 -> $l1"
	else
		tap_not_ok "burst 1: $d1 / $d2, tarpit_limited $l0 -> $l1"
	fi
else
	tap_not_ok "restart with the tarpit budget: $(tail -3 "$LAB_DIR/ctld6.log")"
fi
stop_ctld TERM
echo "# $TAP_N cases run"
exit $((TAP_FAIL > 0))
