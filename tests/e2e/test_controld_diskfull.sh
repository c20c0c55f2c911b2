#!/bin/bash
# test_controld_diskfull.sh - moat-controld with a full state_dir (issue 22,
# faults): its state_dir is a 256 KiB tmpfs in a private mount namespace
# (a holder process owns it; the host's mounts never see it), filled to
# ENOSPC. An operator entry added then is live at once (lookup answers drop)
# while the save fails with a log line naming the file and the error,
# moat_persist_errors_total goes up and moat_entries_unsaved is 1; the
# daemon keeps answering. Once space is freed, the retry (or the next
# change) rewrites the whole base, not a journal record on top of a file
# that lacks the first entry: after kill -9 and a restart both entries are
# restored (before the fix the entry added while full was lost).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"

ctld_test diskfull 7
ctld_lab_up

METRICS_PORT=$((20000 + RANDOM % 20000))
ST=$LAB_DIR/state
mkdir -p "$ST"
unshare -m --propagation private sh -c '
	mount -t tmpfs -o size=256k,mode=0755 moat-diskfull "$1" || exit 1
	echo up >"$2"
	exec sleep 600' sh "$ST" "$LAB_DIR/holder.up" &
holder=$!
LAB_PIDS+=($holder)
lab_wait 5 test -e "$LAB_DIR/holder.up" || { tap_not_ok "tmpfs state_dir"; exit 1; }
inm() { nsenter -t "$holder" -m "$@"; }
cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
state_dir = $ST
log_level = info
[metrics]
listen = 127.0.0.1:$METRICS_PORT
EOF
# spawn LOG - moat-controld in the app namespace and the holder's mounts
spawn() {
	nsenter -t "$holder" -m --net="/run/netns/$NS_APP" "$CTLD" -c "$LAB_DIR/moat.conf" >"$LAB_DIR/$1.log" 2>&1 &
	LAB_PIDS+=($!)
	echo $! >"$LAB_DIR/ctld.pid"
	lab_wait 15 grep -q 'event=ready' "$LAB_DIR/$1.log"
}
act() { local j; j=$(mctl lookup "$1" --json 2>/dev/null) && jget "$j" 'd.get("action")'; }
metric() { lab_scrape "$METRICS_PORT" "$LAB_DIR/m" && lab_metric "$LAB_DIR/m" "$1"; }
# the metrics page is a snapshot the event loop renders once a second: wait
# for the value, never read it once
metric_is() { [ "$(metric "$1")" = "$2" ]; }
metric_gt() { [ "$(metric "$1")" -gt "$2" ] 2>/dev/null; }

# 1: positive control: a first entry saved on the (not yet full) tmpfs
if spawn c1 && mctl add 192.0.2.90 --action drop >/dev/null &&
	lab_wait 5 inm test -s "$ST/entries.journal" -o -s "$ST/entries.state"; then
	tap_ok "moat-controld on a 256 KiB tmpfs state_dir: entry 192.0.2.90 added and saved"
else
	tap_not_ok "start / first entry: $(tail -3 "$LAB_DIR/c1.log")"
fi

# 2: fill the tmpfs (the positive control: dd ends with ENOSPC)
inm dd if=/dev/zero of="$ST/fill" bs=4k 2>"$LAB_DIR/dd.err"
if grep -q 'No space left on device' "$LAB_DIR/dd.err" && ! inm sh -c "echo x >'$ST/probe'" 2>/dev/null; then
	tap_ok "state_dir full: $(inm df -k "$ST" | awk 'NR == 2 {print $3 " KB used of " $2}')"
else
	tap_not_ok "filling the tmpfs: $(cat "$LAB_DIR/dd.err")"
fi
inm rm -f "$ST/probe"

# 3-4: an entry added while full is live, the failure logged and counted
e0=$(metric moat_persist_errors_total)
# a batch of 201 (a journal record of several pages: one that fits in the
# journal's last page would still be written)
{ echo 192.0.2.91; seq 1 200 | awk '{print "10.99." int($1 / 256) "." $1 % 256}'; } >"$LAB_DIR/b1"
mctl add -f "$LAB_DIR/b1" --action drop >"$LAB_DIR/add.out" 2>&1
arc=$?
if [ $arc -eq 0 ] && [ "$(act 192.0.2.91)" = drop ] && [ "$(act 192.0.2.90)" = drop ] &&
	mctl status >/dev/null; then
	tap_ok "entry added while full is live (lookup: drop), the daemon answers"
else
	tap_not_ok "add while full: rc=$arc '$(cat "$LAB_DIR/add.out")' action=$(act 192.0.2.91)"
fi
if lab_wait 5 grep -q "event=persist path=$ST/entries.state error=\"No space left on device\"" "$LAB_DIR/c1.log" &&
	lab_wait 5 metric_gt moat_persist_errors_total "${e0:-0}" && lab_wait 5 metric_is moat_entries_unsaved 1; then
	tap_ok "save failure logged ($(grep -o 'event=persist path=[^ ]*entries.state error="[^"]*"' "$LAB_DIR/c1.log" | head -1)), moat_persist_errors_total ${e0:-0} -> $(metric moat_persist_errors_total), moat_entries_unsaved 1"
else
	tap_not_ok "failure not reported: $(grep 'event=persist' "$LAB_DIR/c1.log" | tail -2) errors=$(metric moat_persist_errors_total) unsaved=$(metric moat_entries_unsaved)"
fi

# 5: space freed: the retry saves the whole base
inm rm -f "$ST/fill"
if lab_wait 15 grep -q "event=persist path=$ST/entries.state result=ok entries=202 (saved again after errors)" "$LAB_DIR/c1.log" &&
	lab_wait 5 metric_is moat_entries_unsaved 0; then
	tap_ok "space freed: the retry rewrote entries.state with all 202 entries, moat_entries_unsaved 0"
else
	tap_not_ok "no retry: $(grep 'event=persist' "$LAB_DIR/c1.log" | tail -2)"
fi

# 6-7: full again for a third entry, freed, a fourth entry (the next change
# rewrites the base rather than appending); kill -9, restart: all restored
inm dd if=/dev/zero of="$ST/fill" bs=4k 2>/dev/null
{ echo 192.0.2.92; seq 1 200 | awk '{print "10.98." int($1 / 256) "." $1 % 256}'; } >"$LAB_DIR/b2"
mctl add -f "$LAB_DIR/b2" --action drop >/dev/null 2>&1
# the failed save of that batch is seen (unsaved 1) before space comes back
lab_wait 5 metric_is moat_entries_unsaved 1
ok0=$(lab_count 'saved again after errors' "$LAB_DIR/c1.log")
inm rm -f "$ST/fill"
mctl add 192.0.2.93 --action drop >/dev/null 2>&1
if lab_wait 10 lab_count_ge $((ok0 + 1)) 'saved again after errors' "$LAB_DIR/c1.log" &&
	lab_wait 5 metric_is moat_entries_unsaved 0; then
	tap_ok "the change after the space came back saved the base (moat_entries_unsaved 0)"
else
	tap_not_ok "after the next change: unsaved=$(metric moat_entries_unsaved)"
fi
ctld_stop 9
if spawn c2; then
	got=$(for a in 192.0.2.90 192.0.2.91 192.0.2.92 192.0.2.93 10.99.0.200 10.98.0.1; do printf '%s ' "$(act $a)"; done)
	[ "$got" = "drop drop drop drop drop drop " ] &&
		tap_ok "kill -9 and restart: every entry restored (402 of them added while the disk was full)" ||
		tap_not_ok "restored: '$got' $(grep -E 'event=restore' "$LAB_DIR/c2.log" | tail -2)"
else
	tap_not_ok "restart: $(tail -3 "$LAB_DIR/c2.log")"
fi
[ "${TAP_FAIL:-0}" -eq 0 ]
