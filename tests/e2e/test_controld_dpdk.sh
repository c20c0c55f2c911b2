#!/bin/bash
# test_controld_dpdk.sh - moat-controld with [fastpath] backend = dpdk,
# publishing over moat-dpdk's channel to moat-dpdk's table in a real EAL
# (dp_chan_host: dataplane/dpdk/dp_table.c + dp_chan.c, --no-huge,
# --vdev net_null0, a reader thread standing in for the workers):
#   publish: operator entries reach the table (`moatctl lookup`'s
#   fastpath_action read from it), counters and events flow back
#   (`moatctl stats`, `moatctl watch`);
#   kill -9 of moat-controld: the table stays, the restarted daemon adopts
#   it (event=adopt, updates > 0) before it publishes anything;
#   kill -9 of moat-dpdk: moat-controld notices (event=fastpath_lost, the
#   status counter), an entry added meanwhile is republished once it is
#   back (restored from its state file), and a moat-dpdk that comes back
#   without state gets the whole table again.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
HOST=${HOST:-$build/tests/e2e/dp_chan_host}

ctld_test dpdk 16 "$HOST"
ctld_on_exit() { rmdir /var/run/dpdk/"moat-$LAB_ID-dp" 2>/dev/null; }
ctld_lab_up
DPS=$LAB_DIR/dpdk.sock
IMG=$LAB_DIR/dpdk.image
hosts=0

# start_host - moat-dpdk's table and channel; waits for event=ready
start_host() {
	hosts=$((hosts + 1))
	HLOG=$LAB_DIR/host$hosts.log
	lab_bg "$NS_APP" "host$hosts" "$HOST" -l 0 --no-huge -m 256 --no-pci \
		--vdev net_null0 --no-shconf --file-prefix "moat-$LAB_ID-dp" \
		--no-telemetry --log-level lib.eal:error -- --socket "$DPS" \
		--state "$IMG" --probe 192.0.2.10 --probe 192.0.2.11 \
		--probe 2001:db8:100::10
	lab_wait 20 grep -q 'event=ready' "$HLOG"
}
fa() { local j; j=$(mctl lookup "$1" --no-live --json) && jget "$j" "d.get('fastpath_action','none')"; }
fa_is() { [ "$(fa "$1")" = "$2" ]; }
st() { jget "$(mctl status --json)" "d['$1']"; }
stat_gt() { local j; j=$(mctl stats --json) && [ "$(jget "$j" "d['counters']['$1']")" -gt "$2" ]; }

cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
state_dir = $LAB_DIR/state
log_level = debug
[fastpath]
backend = dpdk
[dpdk]
socket = $DPS
[metrics]
listen = 127.0.0.1:$((20000 + RANDOM % 20000))
[policy]
drop_threshold = 1
EOF

# --- publish ----------------------------------------------------------------
if start_host && ! grep -q 'event=loaded' "$HLOG"; then
	tap_ok "moat-dpdk's channel up, table not loaded before moat-controld"
else
	tap_not_ok "moat-dpdk's channel up, table not loaded before moat-controld"
	sed 's/^/# /' "$HLOG"
	exit 1
fi
if ! start_ctld ctld; then
	tap_not_ok "moat-controld start (backend dpdk)"
	sed 's/^/# /' "$LAB_DIR/ctld.log"
	exit 1
fi
if lab_wait 10 grep -q 'event=loaded' "$HLOG" && grep -q 'fastpath=dpdk' "$LAB_DIR/ctld.log"; then
	tap_ok "moat-controld's first publish loads moat-dpdk's table"
else
	tap_not_ok "moat-controld's first publish loads moat-dpdk's table"
fi
mctl add 192.0.2.10/32 --action drop >/dev/null
mctl add 2001:db8:100::/48 --action tarpit >/dev/null
if fa_is 192.0.2.10 drop && fa_is 2001:db8:100::10 tarpit && fa_is 192.0.2.11 pass; then
	tap_ok "operator entries in moat-dpdk's table (lookup through moat-controld)"
else
	tap_not_ok "operator entries in moat-dpdk's table: $(fa 192.0.2.10) $(fa 2001:db8:100::10) $(fa 192.0.2.11)"
fi
if lab_wait 10 stat_gt drop 0 && lab_wait 10 stat_gt tarpit 0 && stat_gt pass 0; then
	tap_ok "moatctl stats: moat-dpdk's counters through moat-controld"
else
	tap_not_ok "moatctl stats: $(mctl stats --json)"
fi
w=$(timeout 10 "$MOATCTL" watch --count 1 --json 2>&1)
case $w in
*192.0.2.10*|*2001:db8:100::10*) tap_ok "moatctl watch: moat-dpdk's sampled verdicts" ;;
*) tap_not_ok "moatctl watch: $w" ;;
esac

# --- kill -9 moat-controld: the table stays, the next one adopts it ----------
lab_wait 10 test -s "$IMG"
kill -9 "$(cat "$LAB_DIR/ctld.pid")"
if lab_wait 5 grep -q 'event=client_gone role=command' "$HLOG"; then
	tap_ok "moat-dpdk sees moat-controld gone"
else
	tap_not_ok "moat-dpdk sees moat-controld gone"
fi
if ! start_ctld ctld2; then
	tap_not_ok "moat-controld restart"
	sed 's/^/# /' "$LAB_DIR/ctld2.log"
	exit 1
fi
n=$(sed -n 's/.*event=adopt updates=\([0-9]*\).*/\1/p' "$LAB_DIR/ctld2.log" | head -1)
if [ "${n:-0}" -gt 0 ] && fa_is 192.0.2.10 drop; then
	tap_ok "restarted moat-controld adopts moat-dpdk's table ($n updates)"
else
	tap_not_ok "restarted moat-controld adopts moat-dpdk's table (adopt=${n:-none})"
fi

# --- kill -9 moat-dpdk: noticed, counted, republished on return -------------
lost0=$(st fastpath_lost)
kill -9 "$(cat "$LAB_DIR/host$hosts.pid")"
if lab_wait 10 grep -q 'event=fastpath_lost' "$LAB_DIR/ctld2.log" &&
	[ "$(st fastpath_lost)" -eq $((lost0 + 1)) ]; then
	tap_ok "moat-controld notices moat-dpdk gone (log + fastpath_lost counter)"
else
	tap_not_ok "moat-controld notices moat-dpdk gone (fastpath_lost=$(st fastpath_lost))"
fi
mctl add 192.0.2.11/32 --action drop >/dev/null
if [ "$(fa 192.0.2.11)" != drop ] && [ "$(jget "$(mctl status --json)" "d['fastpath_dirty']")" = True ]; then
	tap_ok "while moat-dpdk is away: the entry is in the table only, the fast path dirty"
else
	tap_not_ok "while moat-dpdk is away: fa=$(fa 192.0.2.11) dirty=$(st fastpath_dirty)"
fi
start_host
if grep -q 'event=restore .*result=ok' "$HLOG" && lab_wait 5 grep -q 'event=loaded' "$HLOG"; then
	tap_ok "restarted moat-dpdk loads its saved table before moat-controld is back"
else
	tap_not_ok "restarted moat-dpdk loads its saved table"
	sed 's/^/# /' "$HLOG"
fi
if lab_wait 40 fa_is 192.0.2.11 drop && fa_is 192.0.2.10 drop &&
	grep -q 'event=resync .*result=ok' "$LAB_DIR/ctld2.log"; then
	tap_ok "moat-controld resyncs: the entry added meanwhile is in moat-dpdk's table"
else
	tap_not_ok "moat-controld resyncs: fa=$(fa 192.0.2.11)"
fi

# --- moat-dpdk back without its state: the whole table again ----------------
kill -9 "$(cat "$LAB_DIR/host$hosts.pid")"
lab_wait 10 lab_count_ge 2 'event=fastpath_lost' "$LAB_DIR/ctld2.log"
rm -f "$IMG"
start_host
if grep -q 'event=restore .*result=none' "$HLOG" && lab_wait 40 fa_is 192.0.2.11 drop &&
	fa_is 192.0.2.10 drop && fa_is 2001:db8:100::10 tarpit &&
	grep -q 'event=loaded source=controld' "$HLOG"; then
	tap_ok "moat-dpdk back empty: moat-controld publishes the whole table"
else
	tap_not_ok "moat-dpdk back empty: $(fa 192.0.2.10) $(fa 192.0.2.11) $(fa 2001:db8:100::10)"
fi
if [ "$(st fastpath_lost)" -eq $((lost0 + 2)) ] && [ "$(st fastpath_dirty)" = False ]; then
	tap_ok "fastpath_lost counts both, fast path clean again"
else
	tap_not_ok "fastpath_lost=$(st fastpath_lost) dirty=$(st fastpath_dirty)"
fi

# --- moatctl detach: refused, nothing stops ----------------------------------
d=$(mctl detach 2>&1)
if [[ $d == *"moat-dpdk owns its ports"* ]] && kill -0 "$(cat "$LAB_DIR/ctld.pid")" &&
	fa_is 192.0.2.10 drop; then
	tap_ok "moatctl detach refused with backend dpdk: moat-controld and the table stay"
else
	tap_not_ok "moatctl detach with backend dpdk: '$d'"
fi

# --- a bad request on moat-dpdk's socket: error reply, counter, service on --
r=$(lab_app $PY - "$DPS" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(b"junk" * 3)
m = s.recv(64)
magic, ver, typ, ln, cnt, flags, err, val = struct.unpack("=IHHIIIiQ", m[:32])
print(typ, err)
EOF
)
if [ "$r" = "9 -71" ] && grep -q 'event=bad_client' "$HLOG" && fa_is 192.0.2.10 drop; then
	tap_ok "junk on moat-dpdk's socket: -EPROTO reply, logged, channel serves on"
else
	tap_not_ok "junk on moat-dpdk's socket: reply '$r'"
fi
kill "$(cat "$LAB_DIR/host$hosts.pid")"
if lab_wait 10 grep -q 'event=stopped' "$HLOG"; then
	tap_ok "moat-dpdk stand-in stops on SIGTERM"
else
	tap_not_ok "moat-dpdk stand-in stops on SIGTERM"
fi
exit $((TAP_FAIL > 0))
