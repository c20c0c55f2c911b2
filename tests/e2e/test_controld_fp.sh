#!/bin/bash
# test_controld_fp.sh - what moat-controld puts into the XDP maps beyond
# zone data, read back from the maps themselves (`moatctl lookup`'s
# fastpath_action) and checked with real SYNs on the lab's inet0:
#   live zones: a listed answer to a lookup is installed with the answer's
#   TTL (Knot serves the live zone with TTL 4): the next SYN is dropped by
#   XDP, and after the TTL the entry is gone from the maps;
#   a failed publish: with groups_max = 1024 an rbldnsd file needing more
#   groups makes the publish fail midway (a real map limit, not a mock); the
#   fast path is marked dirty (status, metrics), resync attempts fail while
#   the table does not fit, and once the file shrinks the resync adopts what
#   the maps hold and writes the difference: maps and table agree again.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
T=2

ctld_test fp 12 "$PASS_OBJ" "$PROBE"
probe() { lab_inet $PY "$PROBE" connect "$1" "$2" 25 "$T"; }
# fq ADDR [--no-live] - "action/fastpath_action" of moatctl lookup
fq() { local j; j=$(mctl lookup "$@" --json) && jget "$j" "d['action']+'/'+d.get('fastpath_action','none')"; }

if ! lab_up >/dev/null 2>&1; then
	tap_not_ok "lab up"
	exit 1
fi
for a in 192.0.2.10 192.0.2.11 192.0.2.30 198.51.100.20 2001:db8:100::10; do
	lab_sender "$a"
done
ip -n "$NS_INET" link set dev app0 xdpdrv obj "$PASS_OBJ" sec xdp
lab_bg "$NS_APP" listen4 $PY "$PROBE" listen 198.18.1.1 25 "$LAB_DIR/accept.log"
lab_bg "$NS_APP" listen6 $PY "$PROBE" listen 2001:db8:1::1 25 "$LAB_DIR/accept.log"

# --- Knot serves the live zone with a 4-second TTL ------------------------
mkdir -p "$LAB_DIR/zsrc"
cat >"$LAB_DIR/zsrc/live.moat.test.zone" <<'EOF'
$ORIGIN live.moat.test.
$TTL 4
@ SOA ns hostmaster 1 60 30 604800 60
@ NS ns
ns A 198.18.2.2
2.0.0.127 A 127.0.0.2
10.2.0.192 A 127.0.0.2
30.2.0.192 60 A 127.0.0.2
31.2.0.192 60 A 127.0.0.2
0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.8.b.d.0.1.0.0.2 A 127.0.0.3
EOF
if ! lab_knot "$LAB_DIR/zsrc" >/dev/null 2>&1; then
	tap_not_ok "knot"
	exit 1
fi

# 1100 /32s in 1100 /24s + the test point: more groups than the map holds
$PY -c '
for i in range(1100):
    print("10.%d.%d.1" % (i // 250, i % 250))' >"$LAB_DIR/big.list"
{ echo ':127.0.0.2:big'; echo 127.0.0.2; echo 198.51.100.20; cat "$LAB_DIR/big.list"; } >"$LAB_DIR/big.rbl"
cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
state_dir = $LAB_DIR/state
resolver = 198.18.2.2@53
log_level = debug
[xdp]
interfaces = inet0
pin_dir = $PIN
groups_max = 1024
[metrics]
listen = 127.0.0.1:$((20000 + RANDOM % 20000))
[policy]
drop_threshold = 1
[zone live.moat.test]
type = live
EOF
if ! start_ctld ctld; then
	tap_not_ok "moat-controld start"
	sed 's/^/# /' "$LAB_DIR/ctld.log"
	exit 1
fi

# --- live answers installed with their TTL --------------------------------
lab_wait 5 lab_app ss -ltn 'sport = :25' | grep -q LISTEN
g0=$(probe 192.0.2.10 198.18.1.1)
b0=$(fq 192.0.2.10 --no-live)
t0=$SECONDS
j=$(mctl lookup 192.0.2.10 --json)
a1=$(jget "$j" "d['action']+'/'+d['fastpath_action']+' ttl='+str(d['live'][0]['ttl'])")
a2=$(fq 192.0.2.10 --no-live)
g1=$(probe 192.0.2.10 198.18.1.1)
if [ "$g0/$b0" = "connected-reply/pass/pass" ] && [ "$a1" = "drop/drop ttl=4" ] &&
	[ "$a2" = drop/drop ] && [ "$g1" = timeout ]; then
	tap_ok "live lookup installs the listed answer: maps say drop at once, the next SYN is dropped by XDP"
else
	tap_not_ok "live install: before $g0/$b0, lookup $a1, after $a2, probe $g1"
	grep 'event=live' "$LAB_DIR/ctld.log" | sed 's/^/# /'
fi
if grep -q 'zone=live.moat.test event=live addr=192.0.2.10/32 listed=1 ttl=4 removed=0' "$LAB_DIR/ctld.log"; then
	tap_ok "the install is logged with the answer's TTL"
else
	tap_not_ok "no live install log line"
fi
j6=$(mctl lookup 2001:db8:100::10 --json)
t6=$SECONDS
g6=$(lab_inet $PY "$PROBE" connect 2001:db8:100::10 2001:db8:1::1 25 $T)
if [ "$(jget "$j6" "d['action']+'/'+d['fastpath_action']")/$g6" = "drop/drop/timeout" ]; then
	tap_ok "IPv6 live answer installed: maps say drop, the SYN is dropped"
else
	tap_not_ok "IPv6 live: $j6 probe=$g6"
fi
# not listed / error-free NXDOMAIN: nothing installed
n1=$(jget "$(mctl lookup 192.0.2.11 --json)" "d['action']+'/'+d['fastpath_action']+'/'+str(len(d['live']))")
[ "$n1" = "pass/pass/0" ] && tap_ok "an unlisted address installs nothing" || tap_not_ok "unlisted: $n1"
# expiry: the 4 s TTL runs out (plus the one-second tick; SECONDS counts
# whole seconds, so 7 of them are at least 6 s)
while [ $((SECONDS - t6)) -lt 7 ]; do sleep 0.5; done
e1=$(fq 192.0.2.10 --no-live) e6=$(fq 2001:db8:100::10 --no-live)
g2=$(probe 192.0.2.10 198.18.1.1)
if [ "$e1/$e6/$g2" = "pass/pass/pass/pass/connected-reply" ] &&
	grep -q 'event=live-expired listings=' "$LAB_DIR/ctld.log"; then
	tap_ok "after the TTL the live entries are gone from table and maps; the address connects"
else
	tap_not_ok "expiry: v4 $e1 v6 $e6 probe $g2"
fi

# --- a publish that fails midway, and the resync --------------------------
touch -d '-10 seconds' "$LAB_DIR/big.rbl"
cat >>"$LAB_DIR/moat.conf" <<EOF
[zone big.rbl]
type = rbldnsd
file = $LAB_DIR/big.rbl
format = ip4set
EOF
mctl reload >/dev/null
lab_wait 10 bash -c "$MOATCTL zones | grep -q '^big.rbl .* ok '"
sleep 2.5 # a few resync attempts
st=$(mctl status --json)
d1=$(jget "$st" "str(d['fastpath_dirty'])+' '+str(d['publish_errors']>=1)+' '+str(d['fastpath_resync_errors']>=1)+' '+str(d['fastpath_resyncs'])")
# sample every 10th address: some are in the table but not in the maps
for a in $(sed -n '1~10p' "$LAB_DIR/big.list") 198.51.100.20; do
	printf '%s %s\n' "$a" "$(fq "$a" --no-live)"
done >"$LAB_DIR/dirty.out"
miss=$(grep -c ' drop/pass$' "$LAB_DIR/dirty.out")
if [ "$d1" = "True True True 0" ] && [ "$miss" -gt 0 ] &&
	grep -q 'event=publish why=big.rbl fastpath=xdp result=error error="Numerical result out of range" (fast path marked dirty' "$LAB_DIR/ctld.log"; then
	tap_ok "publish beyond groups_max fails midway: fast path dirty, resyncs retried and failing, $miss sampled addresses listed but not in the maps"
else
	tap_not_ok "dirty state: '$d1' miss=$miss"
	grep -E 'event=(publish|resync)' "$LAB_DIR/ctld.log" | tail -5 | sed 's/^/# /'
fi
p0=$(probe 198.51.100.20 198.18.1.1)
echo "# 198.51.100.20 while dirty: $(grep '^198.51.100.20' "$LAB_DIR/dirty.out"), probe $p0"
m=$(lab_app $PY -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
	"http://$(sed -n 's/^listen = //p' "$LAB_DIR/moat.conf")/metrics" 2>/dev/null)
if printf '%s\n' "$m" | grep -q '^moat_fastpath_dirty 1' &&
	printf '%s\n' "$m" | grep -q '^moat_fastpath_resync_errors_total [1-9]'; then
	tap_ok "metrics: moat_fastpath_dirty 1, resync errors counted"
else
	tap_not_ok "metrics while dirty"
	printf '%s\n' "$m" | grep fastpath_ | sed 's/^/# /'
fi
# the file shrinks to 600 /24s (+ 198.51.100.20): the next publish resyncs
{ echo ':127.0.0.2:big'; echo 127.0.0.2; echo 198.51.100.20; head -600 "$LAB_DIR/big.list"; } >"$LAB_DIR/big.rbl.new"
touch -d '-10 seconds' "$LAB_DIR/big.rbl.new"
mv "$LAB_DIR/big.rbl.new" "$LAB_DIR/big.rbl"
lab_wait 10 bash -c "[ \"\$($MOATCTL status --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"fastpath_dirty\"])')\" = False ]"
st=$(mctl status --json)
d2=$(jget "$st" "str(d['fastpath_dirty'])+' '+str(d['fastpath_resyncs'])")
for a in $(sed -n '1~10p' "$LAB_DIR/big.list") 198.51.100.20 127.0.0.2; do
	printf '%s %s\n' "$a" "$(fq "$a" --no-live)"
done >"$LAB_DIR/clean.out"
bad=$(awk '{split($2, v, "/"); if (v[1] != v[2]) print}' "$LAB_DIR/clean.out" | wc -l)
kept=$(grep -c ' drop/drop$' "$LAB_DIR/clean.out")
gone=$(grep -c ' pass/pass$' "$LAB_DIR/clean.out")
if [ "$d2" = "False 1" ] && [ "$bad" -eq 0 ] && [ "$kept" -eq 62 ] && [ "$gone" -eq 50 ] &&
	grep -q 'event=resync why=.* result=ok updates=' "$LAB_DIR/ctld.log"; then
	tap_ok "resync after the file shrank: clean, 1 resync; maps equal the table for $((kept + gone)) sampled addresses"
else
	tap_not_ok "resync: '$d2' bad=$bad kept=$kept gone=$gone"
	awk '{split($2, v, "/"); if (v[1] != v[2]) print}' "$LAB_DIR/clean.out" | head -5 | sed 's/^/# /'
	grep -E 'event=(publish|resync)' "$LAB_DIR/ctld.log" | tail -5 | sed 's/^/# /'
fi
p1=$(probe 198.51.100.20 198.18.1.1)
if [ "$p1" = timeout ]; then
	tap_ok "a listed sender is dropped by XDP after the resync (while dirty: $p0)"
else
	tap_not_ok "198.51.100.20 after resync: $p1"
fi
# and the daemon's view survives a restart: the read-back maps equal the table
kill "$(cat "$LAB_DIR/ctld.pid")"
lab_wait 5 bash -c "! kill -0 $(cat "$LAB_DIR/ctld.pid") 2>/dev/null"
if start_ctld ctld2 && grep -q 'event=publish why=restore updates=0 ' "$LAB_DIR/ctld2.log"; then
	tap_ok "restart: the maps read back equal the persisted table (0 updates)"
else
	tap_not_ok "restart after resync"
	grep 'event=publish' "$LAB_DIR/ctld2.log" | sed 's/^/# /'
fi

# --- listed live answers survive a restart (live-ZONE.state) ------------
# a clean stop saves them: 192.0.2.30 (TTL 60) is back after the restart,
# 192.0.2.10 (TTL 4, run out meanwhile) is dropped at load
l30=$(fq 192.0.2.30) l10=$(fq 192.0.2.10)
t_lookup=$SECONDS
kill "$(cat "$LAB_DIR/ctld.pid")"
lab_wait 5 bash -c "! kill -0 $(cat "$LAB_DIR/ctld.pid") 2>/dev/null"
saved=$(grep -c 'event=persist-live live=2$' "$LAB_DIR/ctld2.log")
while [ $((SECONDS - t_lookup)) -lt 6 ]; do sleep 0.5; done
if start_ctld ctld3; then
	r30=$(fq 192.0.2.30 --no-live) r10=$(fq 192.0.2.10 --no-live)
	g=$(probe 192.0.2.30 198.18.1.1)
	if [ "$l30/$l10/$saved" = drop/drop/drop/drop/1 ] && [ "$r30/$r10/$g" = drop/drop/pass/pass/timeout ] &&
		grep -q 'event=restore live=1 expired=1 ' "$LAB_DIR/ctld3.log"; then
		tap_ok "live answers saved at stop: after the restart 192.0.2.30 (TTL 60) is still dropped by XDP, 192.0.2.10 (TTL 4, expired) is not"
	else
		tap_not_ok "live persist at stop: before $l30/$l10 saved=$saved, after restart $r30/$r10 probe=$g"
		grep 'event=persist-live\|event=restore' "$LAB_DIR/ctld2.log" "$LAB_DIR/ctld3.log" | tail -5 | sed 's/^/# /'
	fi
else
	tap_not_ok "restart for the live persist"
fi
# the tick saves them too: 192.0.2.31 (TTL 60) survives kill -9
l31=$(fq 192.0.2.31)
lab_wait 8 grep -q 'event=persist-live live=2$' "$LAB_DIR/ctld3.log"
saved=$?
p=$(cat "$LAB_DIR/ctld.pid")
kill -9 "$p"
wait "$p" 2>/dev/null
if start_ctld ctld4; then
	r=$(fq 192.0.2.31 --no-live)/$(fq 192.0.2.30 --no-live)
	if [ "$l31/$saved/$r" = drop/drop/0/drop/drop/drop/drop ] &&
		grep -q 'event=restore live=2 expired=0 ' "$LAB_DIR/ctld4.log"; then
		tap_ok "live answers saved on the tick: after kill -9 + restart 192.0.2.31 and .30 still drop"
	else
		tap_not_ok "live persist on the tick: lookup $l31 saved=$saved after kill -9 $r"
		grep 'event=persist-live\|event=restore' "$LAB_DIR/ctld3.log" "$LAB_DIR/ctld4.log" | tail -5 | sed 's/^/# /'
	fi
else
	tap_not_ok "restart after kill -9 for the live persist"
fi
exit $((TAP_FAIL > 0))
