#!/bin/bash
# test_controld_disk.sh - moat-controld when what it is given is too big or
# what it wrote is damaged, against a real Knot primary (issue 22, faults):
#   a transfer with more records than the zone's max_entries is refused
#   (zone failed, last_error and a log line naming the limit,
#   moat_zone_failures_total up) and the last good zone keeps serving;
#   once the zone fits again it loads.
#   Files in state_dir damaged while the daemon is down (kill -9): a zone
#   base with a flipped byte, another cut short, the operator entries file
#   overwritten with junk (kept aside as entries.state.bad).  The daemon starts (event
#   =ready), logs each file it refused, serves the zones whose state is
#   good from disk, and with the primary back takes the damaged zones from
#   transfers, rewriting their state: a further kill -9 + restart with the
#   primary down serves them from disk again.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"

ctld_test disk 11
ctld_lab_up

METRICS_PORT=$((20000 + RANDOM % 20000))
Z=$LAB_DIR/zsrc
mkdir -p "$Z"
# zone NAME SERIAL - SOA, an out-of-zone NS, then the records on stdin
zone() {
	printf '$ORIGIN %s.\n$TTL 60\n@ SOA ns.example. hostmaster.example. %s 60 30 604800 60\n@ NS ns.example.\n' "$1" "$2"
	cat
}
# lim.moat.test: 62 records under a 100-record limit, then 302
lim() { # lim SERIAL N - N addresses in 10.9.0.0/16 besides the two below
	{ seq 0 $(($2 - 1)) | awk '{ printf "%d.%d.9.10 A 127.0.0.2\n", $1 % 256, int($1 / 256) }'
		echo '50.2.0.192 A 127.0.0.2'; echo '2.0.0.127 A 127.0.0.2'; } |
		zone lim.moat.test "$1" >"$Z/lim.moat.test.zone"
}
lim 1 60
printf '2.0.0.127 A 127.0.0.2\n60.2.0.192 A 127.0.0.2\n' | zone a.moat.test 1 >"$Z/a.moat.test.zone"
printf '2.0.0.127 A 127.0.0.2\n61.2.0.192 A 127.0.0.2\n' | zone b.moat.test 1 >"$Z/b.moat.test.zone"
printf '2.0.0.127 A 127.0.0.2\n62.2.0.192 A 127.0.0.2\n' | zone c.moat.test 1 >"$Z/c.moat.test.zone"
start_knot() {
	KNOT_ZONES=()
	lab_knot "$Z" >/dev/null 2>&1
}
if ! start_knot; then
	tap_not_ok "knot serves the zones"
	sed 's/^/# /' "$LAB_DIR/knotd.log" | tail
	exit 1
fi

cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
state_dir = $LAB_DIR/state
log_level = info
[metrics]
listen = 127.0.0.1:$METRICS_PORT
[policy]
drop_threshold = 1
[zone lim.moat.test]
primary = 198.18.2.2@53
max_entries = 100
refresh_min = 300
[zone a.moat.test]
primary = 198.18.2.2@53
refresh_min = 300
[zone b.moat.test]
primary = 198.18.2.2@53
refresh_min = 300
[zone c.moat.test]
primary = 198.18.2.2@53
refresh_min = 300
EOF
ST=$LAB_DIR/state

lk() { jget "$(mctl lookup "$1" --json)" "d['action']"; }
zf() { # zf ZONE FIELD
	jget "$(mctl zones --json)" "[z['$2'] for z in d['zones'] if z['name']=='$1'][0]"
}
metric() { # metric NAME ZONE (rendered once a second)
	sleep 1.2
	nsenter --net="/run/netns/$NS_APP" $PY -c \
		'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
		"http://127.0.0.1:$METRICS_PORT/metrics" | awk -v k="$1{zone=\"$2\"}" '$1 == k { print $2 }'
}
all_ok() {
	[ "$(jget "$(mctl zones --json)" "sum(z['state'] != 'ok' for z in d['zones'])")" = 0 ]
}
crash() {
	local p
	p=$(cat "$LAB_DIR/ctld.pid")
	kill -9 "$p"
	wait "$p" 2>/dev/null
}
alive() { kill -0 "$(cat "$LAB_DIR/ctld.pid")" 2>/dev/null; }

if start_ctld ctld1 && lab_wait 20 all_ok; then
	tap_ok "4 zones transferred from Knot (lim.moat.test: $(zf lim.moat.test entries) entries, max_entries 100)"
else
	tap_not_ok "zones did not load: $(mctl zones)"
	tail -20 "$LAB_DIR/ctld1.log" | sed 's/^/# /'
	exit 1
fi
LOG=$LAB_DIR/ctld1.log

# --- a transfer larger than max_entries -------------------------------------
n0=$(zf lim.moat.test entries)
f0=$(metric moat_zone_failures_total lim.moat.test)
lim 2 300
# a record only the big serial has: must not be listed
sed -i '$a 99.2.0.192 A 127.0.0.2' "$Z/lim.moat.test.zone"
lab_knot_reload "$Z"
mctl zone refresh lim.moat.test --full >/dev/null
if lab_wait 10 bash -c "$MOATCTL zones | grep -q '^lim.moat.test .* failed '"; then
	e=$(zf lim.moat.test last_error)
	f1=$(metric moat_zone_failures_total lim.moat.test)
	r=$(lk 192.0.2.50)/$(lk 192.0.2.99)
	if [[ "$e" == *"more than 100"* ]] && [ "${f1:-0}" -gt "${f0:-0}" ] && [ "$r" = drop/pass ] &&
		[ "$(zf lim.moat.test entries)/$(zf lim.moat.test serial)" = "$n0/1" ]; then
		tap_ok "302-record AXFR over max_entries 100: failed (\"$e\"), failures_total $f0 -> $f1"
		tap_ok "the last good zone keeps serving: serial 1, $n0 entries, 192.0.2.50/99 $r"
	else
		tap_not_ok "over the limit: error='$e' failures $f0 -> $f1 serial $(zf lim.moat.test serial) entries $(zf lim.moat.test entries)/$n0 lookups $r"
		tap_not_ok "over the limit: the last good zone"
	fi
else
	tap_not_ok "302-record zone not failed: $(mctl zones | grep lim)"
	tap_not_ok "over the limit: the last good zone"
fi
if grep -q 'zone=lim.moat.test event=load result=failed serial=1 .*error=".*more than 100 ' "$LOG"; then
	tap_ok "a log line names the limit: $(grep -o 'error="[^"]*more than 100[^"]*"' "$LOG" | tail -1)"
else
	tap_not_ok "no failed load line naming the limit"
	grep 'lim.moat.test' "$LOG" | tail -3 | sed 's/^/# /'
fi
# positive control: the same zone under the limit loads (serial 3)
lim 3 90
sed -i '$a 99.2.0.192 A 127.0.0.2' "$Z/lim.moat.test.zone"
lab_knot_reload "$Z"
mctl zone refresh lim.moat.test --full >/dev/null
if lab_wait 10 bash -c "$MOATCTL zones | grep -q '^lim.moat.test .* ok '" &&
	[ "$(zf lim.moat.test serial)/$(lk 192.0.2.99)" = 3/drop ]; then
	tap_ok "back under the limit: serial 3 loads, 192.0.2.99 listed"
else
	tap_not_ok "under the limit again: $(mctl zones | grep lim) 99: $(lk 192.0.2.99)"
fi

# --- damaged files in state_dir ---------------------------------------------
mctl add 192.0.2.70 --action drop --reason disk-test >/dev/null
# the add is on disk (entries.journal, appended per batch) before the crash
lab_wait 5 test -s "$ST/entries.journal" || tap_not_ok "the add of 192.0.2.70 reached no file in $ST"
crash
kill "$(cat "$LAB_DIR/knotd.pid")"
lab_wait 5 bash -c "! kill -0 $(cat "$LAB_DIR/knotd.pid") 2>/dev/null"
A=$ST/zone-a.moat.test.state B=$ST/zone-b.moat.test.state
sz=$(stat -c %s "$A")
# a.moat.test: one byte in the middle flipped; b.moat.test: cut short;
# entries.state: junk
printf '\xff' | dd of="$A" bs=1 seek=$((sz / 2)) conv=notrunc status=none
truncate -s 24 "$B"
head -c 300 /dev/urandom >"$LAB_DIR/junk"
cp "$LAB_DIR/junk" "$ST/entries.state"
if start_ctld ctld2 && sleep 1 && alive; then
	tap_ok "moat-controld starts on damaged state files (event=ready, still running)"
else
	tap_not_ok "no start on damaged state files"
	tail -20 "$LAB_DIR/ctld2.log" | sed 's/^/# /'
fi
L2=$LAB_DIR/ctld2.log
miss=""
grep -q 'zone=a.moat.test event=restore result=error error=' "$L2" || miss+=" a.moat.test"
grep -q 'zone=b.moat.test event=restore result=error error=' "$L2" || miss+=" b.moat.test"
grep -q "event=restore path=$ST/entries.state result=ignored (not a valid entries file; kept as $ST/entries.state.bad)" "$L2" &&
	cmp -s "$ST/entries.state.bad" "$LAB_DIR/junk" || miss+=" entries.state"
if [ -z "$miss" ]; then
	tap_ok "each damaged file refused with a log line (2 zone bases; entries.state kept aside as entries.state.bad)"
else
	tap_not_ok "no log line for:$miss"
	grep 'event=restore' "$L2" | sed 's/^/# /'
fi
# the good ones serve from disk (Knot is down); positive control for the
# damaged ones: their addresses pass until a transfer
r=$(lk 192.0.2.62)/$(lk 192.0.2.99)/$(lk 192.0.2.60)/$(lk 192.0.2.61)
if [ "$r" = drop/drop/pass/pass ] && [ "$(zf c.moat.test from_disk)/$(zf lim.moat.test serial)" = True/3 ]; then
	tap_ok "good state serves from disk with the primary down (c, lim serial 3); damaged zones empty (62/99/60/61: $r)"
else
	tap_not_ok "after the damaged restart: lookups 62/99/60/61 $r, c from_disk $(zf c.moat.test from_disk) lim serial $(zf lim.moat.test serial)"
fi
# the primary back: the damaged zones from transfers, their state rewritten
start_knot
mctl zone refresh a.moat.test >/dev/null
mctl zone refresh b.moat.test >/dev/null
if lab_wait 15 all_ok && [ "$(lk 192.0.2.60)/$(lk 192.0.2.61)" = drop/drop ]; then
	tap_ok "the primary back: a and b transferred and listed again"
else
	tap_not_ok "damaged zones not recovered: $(mctl zones)"
fi
crash
kill "$(cat "$LAB_DIR/knotd.pid")"
lab_wait 5 bash -c "! kill -0 $(cat "$LAB_DIR/knotd.pid") 2>/dev/null"
if start_ctld ctld3 && ! grep -q 'result=error\|result=ignored\|damaged' "$LAB_DIR/ctld3.log" &&
	[ "$(lk 192.0.2.60)/$(lk 192.0.2.61)/$(zf a.moat.test from_disk)" = drop/drop/True ]; then
	tap_ok "kill -9 + restart, primary down: a and b from their rewritten state, no file refused"
else
	tap_not_ok "second restart: 60/61 $(lk 192.0.2.60)/$(lk 192.0.2.61)"
	grep 'event=restore' "$LAB_DIR/ctld3.log" | sed 's/^/# /'
fi
# the junk entries file is not the entries' last word: 192.0.2.70 came
# back from the journal beside it (appended after the base was written),
# and an entry added now is saved and restored with it
mctl add 192.0.2.71 --action drop >/dev/null
crash
if start_ctld ctld4 && [ "$(lk 192.0.2.70)/$(lk 192.0.2.71)" = drop/drop ] &&
	grep -q 'event=restore entries=2 ' "$LAB_DIR/ctld4.log"; then
	tap_ok "entries after the junk entries file: 70 (from the journal) and 71 (added since) saved and restored"
else
	tap_not_ok "entries after junk: 70 $(lk 192.0.2.70), 71 $(lk 192.0.2.71)"
	grep 'event=restore' "$LAB_DIR/ctld4.log" | sed 's/^/# /'
fi
echo "# $TAP_N cases run"
exit $((TAP_FAIL > 0))
