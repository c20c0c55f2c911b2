#!/bin/bash
# test_controld_faults.sh - moat-controld against a real Knot primary when
# things go wrong, judged from the daemon's outside (moatctl --json, the
# Prometheus metrics, the log):
#   records whose owner is no address name are counted (zones, metric, the
#   load line at info level); an IXFR that lists the world, or deletes the
#   RFC 5782 test point, is quarantined like the same data by AXFR (ALARM,
#   nothing published, the previous data keeps serving); a flood of TCP
#   connections to the NOTIFY port stays within the cap (non-primaries are
#   refused at accept) and a real NOTIFY still gets through; a wrong TSIG
#   key and knotd killed in the middle of an AXFR leave the zone failed
#   with last_error and moat_zone_failures_total up, lookups unchanged; a
#   zone restored from disk already past its SOA expire alarms at start.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"

ctld_test faults 14
ctld_lab_up

SECRET=$(head -c 32 /dev/urandom | base64)
WRONG=$(head -c 32 /dev/urandom | base64)
METRICS_PORT=$((20000 + RANDOM % 20000))

# zone NAME SERIAL [EXPIRE] - SOA, an out-of-zone NS (no glue A record:
# it would count as undecodable), then the records on stdin
zone() {
	cat <<EOF
\$ORIGIN $1.
\$TTL 60
@ SOA ns.example. hostmaster.example. $2 60 30 ${3:-604800} 60
@ NS ns.example.
EOF
	cat
}
mkdir -p "$LAB_DIR/zsrc"
Z=$LAB_DIR/zsrc
ixw_base='2.0.0.127 A 127.0.0.2
10.2.0.192 A 127.0.0.2
20.2.0.192 A 127.0.0.3'
printf '%s\n' "$ixw_base" | zone ixw.moat.test 1 >"$Z/ixw.moat.test.zone"
# foo and 1.2 are no address names: counted, never listed
zone undec.moat.test 1 >"$Z/undec.moat.test.zone" <<'EOF'
2.0.0.127 A 127.0.0.2
30.2.0.192 A 127.0.0.2
foo A 127.0.0.2
1.2 A 127.0.0.2
EOF
printf '2.0.0.127 A 127.0.0.2\n40.2.0.192 A 127.0.0.2\n' | zone tsig.moat.test 1 >"$Z/tsig.moat.test.zone"
printf '    acl: tsig\n' >"$Z/tsig.moat.test.zone.conf"
# SOA refresh 1, expire 4 s: expired soon after Knot is gone
printf '2.0.0.127 A 127.0.0.2\n60.2.0.192 A 127.0.0.2\n' | zone exp.moat.test 1 4 >"$Z/exp.moat.test.zone"
sed -i 's/ 1 60 30 4 60$/ 1 1 1 4 60/' "$Z/exp.moat.test.zone"
# big enough that a throttled AXFR is still running when knotd dies
{ $PY "$root/tools/zonegen" big.moat.test -n 60000 --seed 7; echo '50.2.0.192 A 127.0.0.2'; } \
	>"$Z/big.moat.test.zone"

export KNOT_PRE_CONF="key:
  - id: xfrkey
    algorithm: hmac-sha256
    secret: $SECRET"
export KNOT_EXTRA_CONF="  - id: tsig
    address: [ 198.18.0.0/15 ]
    key: xfrkey
    action: [ transfer ]
remote:
  - id: moat
    address: 198.18.2.1@53"
export KNOT_TEMPLATE_EXTRA='    notify: moat'
if ! lab_knot "$Z" >/dev/null 2>&1; then
	tap_not_ok "knot serves the zones"
	sed 's/^/# /' "$LAB_DIR/knotd.log" | tail
	exit 1
fi

write_conf() { # write_conf TSIG_SECRET
	cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
state_dir = $LAB_DIR/state
notify_listen = 198.18.2.1@53
log_level = info
[metrics]
listen = 127.0.0.1:$METRICS_PORT
[policy]
drop_threshold = 1
[zone ixw.moat.test]
primary = 198.18.2.2@53
[zone undec.moat.test]
primary = 198.18.2.2@53
[zone tsig.moat.test]
primary = 198.18.2.2@53
tsig = hmac-sha256:xfrkey:$1
[zone big.moat.test]
primary = 198.18.2.2@53
timeout = 30
[zone exp.moat.test]
primary = 198.18.2.2@53
refresh_min = 1
EOF
}
write_conf "$SECRET"
if ! start_ctld ctld; then
	tap_not_ok "moat-controld start"
	sed 's/^/# /' "$LAB_DIR/ctld.log"
	exit 1
fi
LOG=$LAB_DIR/ctld.log

# reload_ixw - Knot re-reads ixw.moat.test only (a zone-reload of every
# zone while the 60k-record one is still being re-read crashes knotd 3.2)
reload_ixw() {
	cp "$Z/ixw.moat.test.zone" "$LAB_DIR/knot/zones/"
	lab_dns knotc -c "$KNOT_CONF" zone-reload ixw.moat.test >/dev/null
}
lk() { jget "$(mctl lookup "$1" --json)" "d['action']"; }
zf() { # zf ZONE FIELD
	jget "$(mctl zones --json)" "[z['$2'] for z in d['zones'] if z['name']=='$1'][0]"
}
metrics() {
	sleep 1.2 # rendered once a second
	nsenter --net="/run/netns/$NS_APP" $PY -c \
		'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
		"http://127.0.0.1:$METRICS_PORT/metrics"
}
metric() { # metric NAME ZONE
	metrics | awk -v k="$1{zone=\"$2\"}" '$1 == k { print $2 }'
}
all_ok() {
	[ "$(jget "$(mctl zones --json)" "sum(z['state'] != 'ok' for z in d['zones'])")" = 0 ]
}

if lab_wait 20 all_ok; then
	tap_ok "every zone transferred from Knot"
else
	tap_not_ok "zones did not load: $(mctl zones)"
fi

# --- undecodable owners: counted and shown --------------------------------
u=$(zf undec.moat.test undecodable)
if [ "$u" = 2 ] && [ "$(metric moat_zone_undecodable_records undec.moat.test)" = 2 ] &&
	[ "$(zf ixw.moat.test undecodable)" = 0 ] && [ "$(lk 192.0.2.30)" = drop ]; then
	tap_ok "undecodable owners: 2 in zones --json and moat_zone_undecodable_records"
else
	tap_not_ok "undecodable: zones=$u metric=$(metric moat_zone_undecodable_records undec.moat.test)"
fi
if grep -q 'zone=undec.moat.test event=load kind=axfr serial=1 .* undecodable=2$' "$LOG"; then
	tap_ok "the load line says undecodable=2 at log_level info"
else
	tap_not_ok "no undecodable=2 on the load line"
	grep 'undec.moat.test' "$LOG" | sed 's/^/# /'
fi

# --- an IXFR that lists the world -----------------------------------------
# (*.0 .. *.9 also decode as IPv6 nibble /4s: either family's share trips)
{
	printf '%s\n' "$ixw_base"
	for i in $(seq 0 255); do echo "*.$i A 127.0.0.2"; done
} | zone ixw.moat.test 2 >"$Z/ixw.moat.test.zone"
n0=$(zf ixw.moat.test entries)
reload_ixw
if lab_wait 10 bash -c "[ \"\$($MOATCTL zones --json | $PY -c 'import json,sys; print([z[\"state\"] for z in json.load(sys.stdin)[\"zones\"] if z[\"name\"]==\"ixw.moat.test\"][0])')\" = quarantined ]" &&
	grep -Eq 'ALARM zone=ixw.moat.test event=quarantine kind=ixfr serial=2 entries=[0-9]+ added=2[5-9][0-9] removed=0 duration=[0-9.]+s reason="lists the world' "$LOG"; then
	tap_ok "IXFR adding *.0 .. *.255: quarantined, ALARM with kind=ixfr, added, duration"
else
	tap_not_ok "IXFR listing the world not quarantined: $(mctl zones | grep ixw)"
	grep 'ixw.moat.test' "$LOG" | tail -5 | sed 's/^/# /'
fi
a=$(lk 198.51.100.99) b=$(lk 192.0.2.10) c=$(lk 192.0.2.20)
if [ "$a/$b/$c" = pass/drop/drop ] && [ "$(zf ixw.moat.test entries)/$(zf ixw.moat.test serial)" = "$n0/1" ]; then
	tap_ok "nothing of the world-listing IXFR published: 198.51.100.99 passes, serial 1 keeps serving"
else
	tap_not_ok "after the world IXFR: 198.51.100.99=$a 192.0.2.10=$b 192.0.2.20=$c entries=$(zf ixw.moat.test entries)"
fi

# --- back to sane data (a full AXFR: the refused IXFR reset the chain),
# then an IXFR deleting the 127.0.0.2 test point ----------------------------
printf '%s\n' "$ixw_base" | zone ixw.moat.test 3 >"$Z/ixw.moat.test.zone"
reload_ixw
lab_wait 10 bash -c "$MOATCTL zones | grep -q '^ixw.moat.test .* ok '"
printf '%s\n' "$ixw_base" | grep -v '^2.0.0.127' | zone ixw.moat.test 4 >"$Z/ixw.moat.test.zone"
reload_ixw
if lab_wait 10 bash -c "$MOATCTL zones | grep -q '^ixw.moat.test .* quarantined '" &&
	grep -q 'ALARM zone=ixw.moat.test event=quarantine kind=ixfr serial=4 .*removed=1 .*test point 127.0.0.2 is not listed' "$LOG" &&
	[ "$(jget "$(mctl lookup 127.0.0.2 --json)" "'ixw.moat.test' in [s['source'] for s in d['sources']]")/$(lk 192.0.2.10)/$(zf ixw.moat.test serial)" = True/drop/3 ]; then
	tap_ok "IXFR deleting the 127.0.0.2 test point: quarantined, serial 3 keeps serving"
else
	tap_not_ok "test point IXFR: $(mctl zones | grep ixw) 127.0.0.2: $(mctl lookup 127.0.0.2)"
	grep 'ixw.moat.test' "$LOG" | tail -5 | sed 's/^/# /'
fi

# --- a flood of TCP connections to the NOTIFY port ------------------------
cat >"$LAB_DIR/flood.py" <<'PY'
import socket, sys, time
n, hold = int(sys.argv[1]), float(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("198.18.2.1", 53))
        socks.append(s)
    except OSError:
        pass
print("open", len(socks), flush=True)
time.sleep(hold)
PY
held() { # accepted NOTIFY connections moat-controld holds now
	nsenter --net="/run/netns/$NS_APP" ss -tnpH state established '( sport = :53 )' |
		grep -c moat-controld
}
# from the primary's address: accepted, but never more than 8 at a time
lab_dns $PY "$LAB_DIR/flood.py" 40 8 >"$LAB_DIR/flood_dns.out" 2>&1 &
fl1=$!
# from a host that is no primary: closed at accept
lab_inet $PY "$LAB_DIR/flood.py" 20 8 >"$LAB_DIR/flood_inet.out" 2>&1 &
fl2=$!
lab_wait 10 grep -q open "$LAB_DIR/flood_dns.out"
lab_wait 10 grep -q open "$LAB_DIR/flood_inet.out"
sleep 0.5
h=$(held)
st=$(mctl status --json)
o=$(jget "$st" "d['notify_tcp_open']") r=$(jget "$st" "d['notify_tcp_refused']")
if [ "$h" -le 8 ] && [ "$o" -le 8 ] && [ "$o" -ge 1 ] && [ "$r" -ge 20 ]; then
	tap_ok "60 TCP connections to the NOTIFY port: $h held (cap 8), $r from a non-primary refused"
else
	tap_not_ok "NOTIFY TCP flood: held=$h open=$o refused=$r"
fi
# a real NOTIFY from Knot while the flood still holds its sockets: back to
# sane data with a new listing
printf '%s\n21.2.0.192 A 127.0.0.2\n' "$ixw_base" | zone ixw.moat.test 5 >"$Z/ixw.moat.test.zone"
reload_ixw
if lab_wait 10 bash -c "$MOATCTL lookup 192.0.2.21 | grep -q ': drop'" &&
	grep -q 'zone=ixw.moat.test event=notify result=accepted' "$LOG"; then
	tap_ok "Knot's NOTIFY still accepted during the flood: serial $(zf ixw.moat.test serial) live"
else
	tap_not_ok "no NOTIFY-driven refresh during the flood: $(mctl zones | grep ixw)"
fi
wait "$fl1" "$fl2"
lab_wait 8 bash -c "[ \$(nsenter --net=/run/netns/$NS_APP ss -tnpH state established '( sport = :53 )' | grep -c moat-controld) = 0 ]"
[ "$(held)" = 0 ] && tap_ok "flood connections gone once closed or idle" ||
	tap_not_ok "connections still held: $(held)"

# --- a wrong TSIG key -------------------------------------------------------
f0=$(metric moat_zone_failures_total tsig.moat.test)
write_conf "$WRONG"
mctl reload >/dev/null && mctl zone refresh tsig.moat.test >/dev/null
if lab_wait 10 bash -c "$MOATCTL zones | grep -q '^tsig.moat.test .* failed '"; then
	e=$(zf tsig.moat.test last_error)
	f1=$(metric moat_zone_failures_total tsig.moat.test)
	if [ -n "$e" ] && [ "${f1:-0}" -gt "${f0:-0}" ] && [ "$(lk 192.0.2.40)" = drop ] &&
		[ "$(zf tsig.moat.test serial)" = 1 ]; then
		tap_ok "wrong TSIG key: failed (\"$e\"), failures_total $f0 -> $f1, 192.0.2.40 still listed"
	else
		tap_not_ok "wrong TSIG: error='$e' failures $f0 -> $f1 lookup=$(lk 192.0.2.40)"
	fi
else
	tap_not_ok "wrong TSIG key not failed: $(mctl zones | grep tsig)"
fi
write_conf "$SECRET"
mctl reload >/dev/null && mctl zone refresh tsig.moat.test >/dev/null
lab_wait 10 bash -c "$MOATCTL zones | grep -q '^tsig.moat.test .* ok '" &&
	tap_ok "the right key again: ok" || tap_not_ok "tsig zone did not recover"

# --- knotd killed in the middle of an AXFR ----------------------------------
n0=$(zf big.moat.test entries)
f0=$(metric moat_zone_failures_total big.moat.test)
# ~2 MB of AXFR through 2 Mbit/s: several seconds on the wire; a small
# send buffer so knotd cannot have handed the kernel the whole zone when
# it dies
lab_dns sysctl -qw net.ipv4.tcp_wmem="4096 16384 65536"
lab_dns tc qdisc add dev app0 root tbf rate 2mbit burst 32kb latency 2s
mctl zone refresh big.moat.test --full >/dev/null
lab_wait 5 bash -c "[ \"\$($MOATCTL zones --json | $PY -c 'import json,sys; print([z[\"busy\"] for z in json.load(sys.stdin)[\"zones\"] if z[\"name\"]==\"big.moat.test\"][0])')\" = True ]"
sleep 1.5
kill -9 "$(cat "$LAB_DIR/knotd.pid")"
if lab_wait 10 bash -c "$MOATCTL zones | grep -q '^big.moat.test .* failed '"; then
	e=$(zf big.moat.test last_error)
	f1=$(metric moat_zone_failures_total big.moat.test)
	if [ -n "$e" ] && [ "${f1:-0}" -gt "${f0:-0}" ] && [ "$(zf big.moat.test entries)" = "$n0" ] &&
		[ "$(lk 192.0.2.50)" = drop ]; then
		tap_ok "knotd killed mid-AXFR: failed (\"$e\"), failures_total $f0 -> $f1, $n0 entries still serving"
	else
		tap_not_ok "mid-AXFR kill: error='$e' failures $f0 -> $f1 entries=$(zf big.moat.test entries)/$n0"
	fi
else
	tap_not_ok "big zone not failed after the kill: $(mctl zones | grep big)"
fi
if grep -q 'zone=big.moat.test event=load result=failed serial=1 entries=[0-9]* added=0 removed=0 duration=[0-9.]*s error=' "$LOG"; then
	tap_ok "the failed load line carries added/removed and duration"
else
	tap_not_ok "failed line without duration"
	grep 'big.moat.test.*failed' "$LOG" | sed 's/^/# /'
fi
lab_dns tc qdisc del dev app0 root 2>/dev/null

# --- restart after the SOA expire passed: the restore alarms ---------------
kill "$(cat "$LAB_DIR/ctld.pid")"
lab_wait 5 bash -c "! kill -0 $(cat "$LAB_DIR/ctld.pid") 2>/dev/null"
sleep 4.5 # past exp.moat.test's 4 s expire (Knot is dead: no refresh)
if start_ctld ctld2 && grep -q 'ALARM zone=exp.moat.test event=expired serial=1 entries=2 (restored from disk already past the SOA expire' "$LAB_DIR/ctld2.log" &&
	[ "$(zf exp.moat.test state)/$(lk 192.0.2.60)" = stale/drop ]; then
	tap_ok "restored already expired: ALARM at start, stale, still listing"
else
	tap_not_ok "stale restore: state=$(zf exp.moat.test state)"
	grep 'exp.moat.test' "$LAB_DIR/ctld2.log" | sed 's/^/# /'
fi
if [ "$TAP_FAIL" -gt 0 ]; then
	echo "# knotd log (tail):"
	tail -15 "$LAB_DIR/knotd.log" | sed 's/^/# /'
fi
echo "# $TAP_N cases run"
exit $((TAP_FAIL > 0))
