#!/bin/bash
# test_dpdk_publish.sh - a large table change published to moat-dpdk while
# it forwards a flood (issue 13: "a publish of 1M changes while traffic
# runs").  moat-dpdk on net_af_packet over the lab's inet0 (TAP exception
# path in app, --no-huge, its own EAL file prefix removed at the end, run as
# nobody), moat-controld with [fastpath] backend = dpdk and an rbldnsd
# ip4set zone that goes from an old table to a new one of the same size:
# 127.0.0.2, 10.3.x.0-127 in both, 10.1.x.0-127 (old) or 10.2.x.0-127
# (new), and DPDK_PUBLISH_PER24 addresses in each /24 of 10.64/11 (old) or
# 10.96/11 (new).  The default, 118, gives 1,032,193 entries a table and
# 2,064,384 entry changes between them (compiled: 25,344 table updates, a
# group per /24); the test takes about 35 s (DPDK_PUBLISH_PER24=12: 163,841
# entries, about 30 s: the flood and the lab dominate).  The publish is
# paced (MOAT_TEST_PUBLISH_CHUNK_MS=200 after each chunk of 4,096 updates
# moat-dpdk took), so the flood meets the table half-changed for about a
# second and a half.  moat-pktgen floods at a lossless rate the whole time from
# 10.1/16 and 10.2/16 (where the tables disagree), 10.3/16 (listed in both:
# never passed) and an unlisted /24, and knows both tables (--expect old
# --expect-also new): no probe may get a verdict neither table gives.
# Afterwards moat-dpdk's table is the whole new one: lookups in moat-dpdk's
# table (moatctl lookup's fastpath_action) across every range agree with
# the new table, a flood judged against the new table alone is right, and
# judged against the old one alone it is wrong (the negative control).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
DPDK=$build/dataplane/dpdk/moat-dpdk
PKTGEN=${PKTGEN:-$build/tools/moat-pktgen}
PER24=${DPDK_PUBLISH_PER24:-118}
RATE=${DPDK_PUBLISH_RATE:-3000}

ctld_test dpub 7 "$DPDK" "$PKTGEN" /usr/bin/dpdk-telemetry.py
. "$root/tests/lab/dpdk.sh"
. "$root/tests/lab/bigtable.sh"
ctld_on_exit() { :; }
trap 'ctld_cleanup; rm -rf "/var/run/dpdk/$DPDK_PREFIX"' EXIT
trap 'ctld_cleanup; rm -rf "/var/run/dpdk/$DPDK_PREFIX"; exit 130' INT
trap 'ctld_cleanup; rm -rf "/var/run/dpdk/$DPDK_PREFIX"; exit 143' TERM
ctld_lab_up
dpdk_wire

BT_PER24=$PER24
F=$LAB_DIR/big.rbl
bt_expect old >"$LAB_DIR/old.expect"
bt_expect new >"$LAB_DIR/new.expect"
bt_table old >"$F"
# the new file now, not under the flood (awk takes a core for a second)
bt_table new >"$F.new"
BT_N=$(wc -l <"$F")
N=$BT_N
DPS=$LAB_DIR/dpdk.sock
bt_conf "$(printf '[fastpath]\nbackend = dpdk\n[dpdk]\nsocket = %s' "$DPS")" "$F"
dpdk_conf "$LAB_DIR/moat-dpdk.conf" "$LAB_DIR/dstate" "$DPS"
echo "user = nobody" >>"$LAB_DIR/moat-dpdk.conf"
tel() { dpdk_tel "$1" "${2:-/moat/stats}"; }
# bt_diag - where frames went in moat-dpdk, and the TAP's own drops
bt_diag() {
	local c
	for c in /moat/workers /ethdev/stats,0; do
		echo "# $c: $(echo "$c" | dpdk-telemetry.py -f "$DPDK_PREFIX" 2>/dev/null | tail -1 | cut -c1-400)"
	done
	ip -n "$NS_APP" -s link show dtap0 | sed 's/^/# /'
}
rx_ge() { [ "$(tel rx /moat/workers)" -ge "$1" ]; }

t0=$(date +%s.%N)
dpdk_start dpdk "$LAB_DIR/moat-dpdk.conf"
lab_wait 20 grep -q 'event=waiting' "$LAB_DIR/dpdk.log"
MOAT_TEST_PUBLISH_CHUNK_MS=200 start_ctld ctld
if lab_wait 120 grep -q 'event=started' "$LAB_DIR/dpdk.log" && dpdk_tap_addrs &&
	ip -n "$NS_APP" route replace 10.0.0.0/8 via 198.18.1.2 dev dtap0 && lab_wait 120 bt_loaded; then
	tap_ok "old table: $N entries published to moat-dpdk in $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s (moat-dpdk forwarding as $(awk '/^Uid/ {print $2}' "/proc/$(cat "$LAB_DIR/dpdk.pid")/status"))"
else
	tap_not_ok "old table not in moat-dpdk: $(mctl zones 2>&1)"
	tail -5 "$LAB_DIR/dpdk.log" "$LAB_DIR/ctld.log" | sed 's/^/# /'
	exit 1
fi
# fl ADDR - the action in moat-dpdk's own table (moatctl lookup reads it
# over the channel); sample LIST - fl of each address, joined
fl() { jget "$(mctl lookup "$1" --no-live --json)" "d.get('fastpath_action','none')"; }
sample() { local a out=; for a in "$@"; do out+="$(fl "$a")/"; done; echo "${out%/}"; }
# one address of each range: old-only 10.1, new-only 10.2, both 10.3,
# 10.3's unlisted upper half, old-only 10.64/11 (h=1 and h=PER24), the
# new-only 10.96/11, and an address past PER24 in each
PROBES=(10.1.7.5 10.2.7.5 10.3.7.5 10.3.7.200 10.64.0.1 "10.95.255.$PER24" 10.96.0.1
	"10.127.255.$PER24" "10.80.3.$((PER24 + 1))" "10.100.3.$((PER24 + 1))")
old_lk=$(sample "${PROBES[@]}")
dmac=$(lab_app cat /sys/class/net/inet0/address)
c0=$(tel commits /moat/channel)
pe0=$(tel publish_errors /moat/channel)

# pg NAME SECONDS ARGS... - moat-pktgen in inet over the three /16s and
# an unlisted /24, JSON to NAME.json, wrong probes to NAME.err
pg() {
	local name=$1 d=$2
	shift 2
	ip netns exec "$NS_INET" "$PKTGEN" -i app0 --to 198.18.1.1 --dst-mac "$dmac" --json -q \
		--src 10.1.0.0/16 --src 10.2.0.0/16 --src 10.3.0.0/16:2 --src 198.51.100.0/24 \
		--rate "$RATE" -d "$d" --netns-stats "$NS_APP" --socket "$SOCK" "$@" \
		>"$LAB_DIR/$name.json" 2>"$LAB_DIR/$name.err"
}

# the flood across the change: started on the old table, stopped (SIGINT:
# pktgen stops sending, collects the replies, reports) once the new table
# is in and has forwarded a second of it; -d is only a bound
rx0=$(tel rx /moat/workers)
pg flood 600 --expect "$LAB_DIR/old.expect" --expect-also "$LAB_DIR/new.expect" &
pgpid=$!
# a second of the flood on the old table
lab_wait 20 rx_ge $((rx0 + RATE))
mv "$F.new" "$F"
p0=$(lab_count 'event=publish why=' "$LAB_DIR/ctld.log")
k0=$(lab_count 'event=publish-chunk' "$LAB_DIR/ctld.log")
t1=$(date +%s.%N)
mctl zone refresh big.rbl --full >/dev/null
# the new table is in moat-dpdk once controld has published the load and
# the channel has a further commit
newin() { [ "$(fl 10.2.7.5)" = drop ] && [ "$(fl 10.64.0.1)" = pass ] && [ "$(tel commits /moat/channel)" -gt "$c0" ]; }
if lab_wait 300 newin && lab_wait 60 lab_count_ge $((p0 + 1)) 'event=publish why=' "$LAB_DIR/ctld.log"; then
	# the change's publish: the largest after p0 (a later one may be empty)
	pub=$(grep 'event=publish why=' "$LAB_DIR/ctld.log" | tail -n +$((p0 + 1)) |
		awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^updates=/ && substr($i, 9) + 0 > m) {
			m = substr($i, 9) + 0; l = $0 } } END { print l }')
	u=$(echo "$pub" | grep -o 'updates=[0-9]*' | cut -d= -f2)
	ms=$(echo "$pub" | grep -o 'ms=[0-9.]*' | cut -d= -f2)
	k=$(($(lab_count 'event=publish-chunk' "$LAB_DIR/ctld.log") - k0))
	tap_ok "new table published under the flood: $(printf '%.1f' "$(echo "$(date +%s.%N) - $t1" | bc)") s from the file to moat-dpdk, the publish $u updates in $k chunks, $ms ms (paced)"
else
	tap_not_ok "the new table did not reach moat-dpdk: $(mctl zones 2>&1)"
	grep 'publish\|big.rbl' "$LAB_DIR/ctld.log" | tail -5 | sed 's/^/# /'
fi
rx1=$(tel rx /moat/workers)
lab_wait 20 rx_ge $((rx1 + RATE))
# pg runs in a subshell: pktgen is its child (ip netns exec execs it)
kill -INT $(pgrep -P "$pgpid")
bt_flood_end "$pgpid"
pe=$(tel publish_errors /moat/channel)
# (a pass unanswered is right only where the run's own losses cover it:
# the generator's device drops or the appliance kernel's, pktgen's model)
if [ "$rc" = 0 ] && [ "$w" = 0 ] && [ "${both:-0}" -gt 1000 ] &&
	[ "${f1:-0}" -gt 100 ] && [ "${f2:-0}" -gt 100 ] && [ "$pe" = "$pe0" ]; then
	tap_ok "the flood across the publish ($(bt_f flood sent) SYNs at $RATE/s, lossless: $(bt_f flood lossless)): 0 wrong verdicts; where the tables disagree $f1 fit the old, $f2 the new; drop $both"
else
	tap_not_ok "flood: rc=$rc wrong=$w lossless=$(bt_f flood lossless) fits=$f1/$f2 publish_errors=$pe0->$pe"
	bt_show flood
	bt_diag
fi
# the losses the run saw: the generator's device and RX ring, SYNs
# moat-dpdk never counted (before its verdict), the kernel's drops
gdrops=$(($(bt_f flood tx_dropped_dev) + $(bt_f flood rx_dropped)))
fplost=$(($(bt_f flood sent) - $(bt_f flood xdp_syns)))
[ "$fplost" -lt 0 ] && fplost=0
seen=$((gdrops + fplost + $(bt_f flood kernel_drops)))
if [ "$(bt_cell flood pass none)" -le "$seen" ] &&
	[ "$(bt_cell flood drop syn-ack)$(bt_cell flood drop rst)" = 00 ]; then
	tap_ok "no listed source passed; unlisted ones unanswered only as far as the run's losses go (pass answered $(($(bt_cell flood pass syn-ack) + $(bt_cell flood pass rst))), unanswered $(bt_cell flood pass none); lost: generator $gdrops, before moat-dpdk's verdict $fplost)"
else
	tap_not_ok "matrix: pass none=$(bt_cell flood pass none) (losses seen $seen) drop answered=$(bt_cell flood drop syn-ack)/$(bt_cell flood drop rst)"
fi
# the whole new table in moat-dpdk: every range's sample as the new table
# gives it (and before the change, as the old one did)
new_lk=$(sample "${PROBES[@]}")
if [ "$old_lk" = drop/pass/drop/pass/drop/drop/pass/pass/pass/pass ] &&
	[ "$new_lk" = pass/drop/drop/pass/pass/pass/drop/drop/pass/pass ] && bt_loaded; then
	tap_ok "moat-dpdk's table: old $old_lk, new $new_lk ($N entries in the zone)"
else
	tap_not_ok "moat-dpdk's table ${PROBES[*]}: old $old_lk new $new_lk"
fi
bt_new_only "after the publish moat-dpdk"
echo "# $TAP_N cases run"
exit $((TAP_FAIL > 0))
