#!/bin/bash
# test_controld_kill.sh - moat-controld kill -9 in the middle of a large
# publish while moat-pktgen floods the XDP fast path (issue 22, faults).
# An rbldnsd ip4set zone goes from an old table to a new one of the same
# size (KILL_PER24 addresses in each of 8192 /24s plus 65,536 probed ones
# and the test point: 1,032,193 entries by default, KILL_PER24=16 gives
# 196,609; 28 s either way, the file and the flood dominate); the publish of
# the difference is paced (MOAT_TEST_PUBLISH_CHUNK_MS, one line per chunk
# of 4,096 updates the fast path took) and moat-controld is killed after
# the second chunk.  moat-pktgen sends SYNs from three /16s the whole time:
# 10.1/16 (lower half of each /24 listed in the old table only), 10.2/16
# (the new table only), 10.3/16 (the same in both: never a wrong verdict
# there) and knows both tables (--expect old --expect-also new): every
# verdict it sees must be one the old or the new table gives, before,
# during and after the kill and the restart (no window where an address
# both list passes).  The restarted daemon adopts the maps and ends on the
# new table: lookups and pktgen's run after it (new table only) agree.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
. "$root/tests/lab/bigtable.sh"
PKTGEN=${PKTGEN:-$build/tools/moat-pktgen}
PER24=${KILL_PER24:-118}

ctld_test kill 7 "$PKTGEN"
ctld_lab_up
# replies to the 10/8 sources go back to the generator's side
ip -n "$NS_APP" route add 10.0.0.0/8 via 198.18.1.2

F=$LAB_DIR/big.rbl
BT_PER24=$PER24
bt_expect old >"$LAB_DIR/old.expect"
bt_expect new >"$LAB_DIR/new.expect"
bt_table old >"$F.new"
touch -d '-10 seconds' "$F.new"
mv "$F.new" "$F"
BT_N=$(wc -l <"$F")
N=$BT_N
bt_conf "$(printf '[xdp]\ninterfaces = inet0\npin_dir = %s' "$PIN")" "$F"
ctld_on_exit() { mctl detach >/dev/null 2>&1; }
lk() { jget "$(mctl lookup "$1" --json)" "d['action']"; }

t0=$(date +%s.%N)
# every chunk of 4,096 updates the fast path takes is followed by a line
# and 300 ms: the kill lands between two chunks
if MOAT_TEST_PUBLISH_CHUNK_MS=300 start_ctld ctld1 && lab_wait 90 bt_loaded; then
	tap_ok "old table: $N entries published to XDP in $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s"
else
	tap_not_ok "old table not loaded: $(mctl zones)"
	tail -5 "$LAB_DIR/ctld1.log" | sed 's/^/# /'
	exit 1
fi
lookups() { echo "$(lk 10.1.7.5)/$(lk 10.2.7.5)/$(lk 10.3.7.5)/$(lk 10.3.7.200)"; }
old_lk=$(lookups)
c0=$(lab_count 'event=publish-chunk' "$LAB_DIR/ctld1.log")
l0=$(lab_count 'zone=big.rbl event=load' "$LAB_DIR/ctld1.log")
dmac=$(lab_app cat /sys/class/net/inet0/address)

# pg NAME SECONDS ARGS... - moat-pktgen in inet over the three /16s and
# an unlisted /24, JSON to NAME.json, wrong probes to NAME.err
pg() {
	local name=$1 d=$2
	shift 2
	lab_inet "$PKTGEN" -i app0 --to 198.18.1.1 --dst-mac "$dmac" --json -q \
		--src 10.1.0.0/16 --src 10.2.0.0/16 --src 10.3.0.0/16:2 --src 198.51.100.0/24 \
		--rate 4000 -d "$d" --netns-stats "$NS_APP" "$@" \
		>"$LAB_DIR/$name.json" 2>"$LAB_DIR/$name.err"
}

# the flood over the whole change: the new table, the paced publish, the
# kill after 2 chunks, the restart, the resync
pg flood 14 --expect "$LAB_DIR/old.expect" --expect-also "$LAB_DIR/new.expect" &
pgpid=$!
sleep 2 # the flood under way on the old table
bt_table new >"$F.new"
touch -d '-10 seconds' "$F.new"
mv "$F.new" "$F"
chunk() { lab_count_ge "$1" 'event=publish-chunk' "$LAB_DIR/ctld1.log"; }
if lab_wait 60 chunk $((c0 + 2)); then
	kill -9 "$(cat "$LAB_DIR/ctld.pid")"
	wait "$(cat "$LAB_DIR/ctld.pid")" 2>/dev/null
	mid=$(lookups 2>/dev/null)
	k=$(($(lab_count 'event=publish-chunk' "$LAB_DIR/ctld1.log") - c0))
	# the publish had not ended: no load line for the new table
	if [ "$(lab_count 'zone=big.rbl event=load' "$LAB_DIR/ctld1.log")" = "$l0" ]; then
		tap_ok "moat-controld killed (-9) after $k chunks of the new table's publish, before its end"
	else
		tap_not_ok "the kill came after the publish ended ($k chunks)"
	fi
else
	tap_not_ok "no publish chunk of the new table: $(tail -3 "$LAB_DIR/ctld1.log")"
fi
# the state on disk is the new table (a file's load is saved before it is
# published): the restart's restore publish writes it over
# the adopted half-published maps (every /24 recomputed)
if start_ctld ctld2 && grep -q 'adopted=1' "$LAB_DIR/ctld2.log" && lab_wait 60 bt_loaded &&
	[ "$(bt_zf state)" = ok ] &&
	u=$(grep -o 'event=publish why=restore updates=[0-9]*' "$LAB_DIR/ctld2.log" | grep -o '[0-9]*$') &&
	[ "${u:-0}" -gt 0 ]; then
	tap_ok "restart: adopted the half-published maps, the restore publish wrote $u updates (adopting marks every /24 dirty); $N entries"
else
	tap_not_ok "restart: $(mctl zones 2>&1)"
	grep 'adopt\|restore\|publish\|resync' "$LAB_DIR/ctld2.log" | tail -5 | sed 's/^/# /'
fi
bt_flood_end "$pgpid"
# both tables seen where they disagree (the change happened under the
# flood), never a verdict neither gives
if [ "$rc" = 0 ] && [ "$w" = 0 ] && [ "$both" -gt 1000 ] && [ "$f1" -gt 100 ] && [ "$f2" -gt 100 ] &&
	[ "$(bt_cell flood pass syn-ack)$(bt_cell flood pass rst)" != 00 ]; then
	tap_ok "the flood across the change, kill -9 and restart: 0 wrong verdicts; where the tables disagree $f1 fit the old, $f2 the new (drop $both, pass answered $(bt_cell flood pass rst))"
else
	tap_not_ok "flood: rc=$rc wrong=$w"
	bt_show flood
fi
new_lk=$(lookups)
if [ "$old_lk" = drop/pass/drop/pass ] && [ "$new_lk" = pass/drop/drop/pass ]; then
	tap_ok "lookups: old table $old_lk, after the restart the new table $new_lk"
else
	tap_not_ok "lookups 10.1.7.5/10.2.7.5/10.3.7.5/10.3.7.200: old $old_lk new $new_lk (mid-kill $mid)"
fi
bt_new_only "after the restart XDP"
echo "# $TAP_N cases run"
exit $((TAP_FAIL > 0))
