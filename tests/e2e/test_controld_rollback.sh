#!/bin/bash
# test_controld_rollback.sh - a full load goes into the table as chunks of
# its difference from what the table holds (no copy of the zone is kept),
# MOAT_TEST_LOAD_CHUNK=1: one listing per chunk.  A reload that the table
# refuses midway (more distinct IPv6 prefix lengths than the fast path
# takes, reached after a delete and an add went in) is undone from the
# undo log: every address answers as before, the base state file is not
# touched; a good reload then counts exactly what it added and removed;
# a restart restores the same set from disk.  Without [xdp] interfaces the
# log and status say what is so: no pin_dir, a stop line that claims no
# filtering, and the restored line counts the zone's and the operator's
# entries apart (it said entries=0 beside a restored zone).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
Z=v6.rbl

ctld_test rollback 9
ctld_lab_up

F=$LAB_DIR/$Z
BASE=$LAB_DIR/state/zone-$Z.state
ctld_conf_zone "$Z" "$F" ip6trie

# put TEXT - replace the file the way rsync does (rename; an mtime in the
# past: the file is complete)
put() {
	printf '%s' "$1" >"$F.new"
	touch -d "-${2:-10} seconds" "$F.new"
	mv "$F.new" "$F"
}
zone_field() { # zone_field FIELD
	jget "$(mctl zones --json 2>/dev/null)" "[z['$1'] for z in d['zones'] if z['name']=='$Z'][0]"
}
lk() { jget "$(mctl lookup "$1" --json)" "d['action']"; }
answers() { # the verdicts of the probe addresses, one word
	local a out=""
	for a in 2001:db8:1::7 2001:db8:1:5::1 2001:db8:2::1 2001:db8:3::9 2001:db8:4::9 \
		2001:db8:9::1 2001:db8:100::1; do
		out+="$(lk $a)/"
	done
	echo "$out"
}

V1='2001:db8:1::/48
!2001:db8:1:5::/64
2001:db8:2::1
2001:db8:3::/64
'
put "$V1" 20
if MOAT_TEST_LOAD_CHUNK=1 start_ctld ctld1 &&
	lab_wait 10 grep -q "zone=$Z event=load kind=file .*entries=4 added=4 removed=0 " "$LAB_DIR/ctld1.log"; then
	tap_ok "rbldnsd ip6trie file loaded in one-listing chunks"
else
	tap_not_ok "first load"
	sed 's/^/# /' "$LAB_DIR/ctld1.log" | tail -20
	exit 1
fi
want=drop/pass/drop/drop/pass/pass/pass/
a1=$(answers)
b1=$(md5sum <"$BASE")
if [ "$a1" = "$want" ] && [ "$(zone_field entries)" = 4 ]; then
	tap_ok "first load: answers $a1, 4 entries"
else
	tap_not_ok "first load: answers $a1 (want $want) entries $(zone_field entries)"
fi

# v2: 2001:db8:1::/48 deleted and 2001:db8:9::/48 added (both before the
# failing part in listing order), then /65../127 under 2001:db8:100::
# (with /48, /64, /128: more than the 32 prefix lengths the table takes)
v2='!2001:db8:1:5::/64
2001:db8:2::1
2001:db8:3::/64
2001:db8:9::/48
'
for p in $(seq 65 127); do
	v2+="2001:db8:100::/$p
"
done
put "$v2"
if lab_wait 10 bash -c "grep -q 'zone=$Z event=load result=failed.*rejected by the table' '$LAB_DIR/ctld1.log'" &&
	grep -q "zone=$Z event=rollback result=ok" "$LAB_DIR/ctld1.log"; then
	tap_ok "a reload refused by the table midway: failed, rolled back"
else
	tap_not_ok "no refused reload with a rollback"
	grep "zone=$Z" "$LAB_DIR/ctld1.log" | tail -5 | sed 's/^/# /'
fi
a2=$(answers)
if [ "$a2" = "$a1" ] && [ "$(md5sum <"$BASE")" = "$b1" ] && [ "$(zone_field entries)" = 4 ] &&
	[ "$(zone_field entries_v6)" = 4 ]; then
	tap_ok "after the rollback: the same answers ($a2), 4 listings in the table, base file untouched"
else
	tap_not_ok "after the rollback: answers $a2 (want $a1), entries $(zone_field entries) in the table $(zone_field entries_v6)"
fi

# v3: the first set with 2001:db8:3::/64 replaced by 2001:db8:4::/64
put '2001:db8:1::/48
!2001:db8:1:5::/64
2001:db8:2::1
2001:db8:4::/64
' 5
if lab_wait 10 bash -c "grep -q 'zone=$Z event=load kind=file serial=[0-9]* entries=4 added=1 removed=1 ' '$LAB_DIR/ctld1.log'" &&
	[ "$(answers)" = drop/pass/drop/pass/drop/pass/pass/ ]; then
	tap_ok "a good reload: entries=4 added=1 removed=1, answers $(answers)"
else
	tap_not_ok "good reload: $(grep "zone=$Z event=load" "$LAB_DIR/ctld1.log" | tail -1) answers $(answers)"
fi

# no [xdp] interfaces: nothing pinned, status says so
st=$(mctl status --json)
if [ "$(jget "$st" "repr(d['pin_dir'])")" = None ] && [ "$(jget "$st" "d['fastpath']")" = none ] &&
	mctl status | grep -q '^pin_dir  *none$'; then
	tap_ok "no interfaces: status pin_dir null (moatctl: none), fastpath none"
else
	tap_not_ok "no interfaces: status $st"
fi

# restart: the set comes back from disk (restored, then the file again)
mctl add 192.0.2.77 --action drop >/dev/null
kill "$(cat "$LAB_DIR/ctld.pid")"
lab_wait 5 bash -c "! kill -0 $(cat "$LAB_DIR/ctld.pid") 2>/dev/null"
if grep -q 'event=stop fastpath=none (no \[xdp\] interfaces: nothing was filtering)' "$LAB_DIR/ctld1.log" &&
	! grep -q 'event=stop.*filtering goes on' "$LAB_DIR/ctld1.log"; then
	tap_ok "stop without a fast path: 'nothing was filtering', not 'filtering goes on'"
else
	tap_not_ok "stop line: $(grep 'event=stop' "$LAB_DIR/ctld1.log")"
fi
if start_ctld ctld2 && grep -q "zone=$Z event=restore serial=[0-9]* entries=4 result=ok" "$LAB_DIR/ctld2.log" &&
	[ "$(answers)" = drop/pass/drop/pass/drop/pass/pass/ ]; then
	tap_ok "restart: 4 entries restored from disk, same answers"
else
	tap_not_ok "restart: $(grep "zone=$Z event=restore" "$LAB_DIR/ctld2.log") answers $(answers)"
fi
if grep -q 'event=restored zones=1 zone_entries=4 operator_entries=1 ' "$LAB_DIR/ctld2.log"; then
	tap_ok "restored line counts the zone's 4 entries and the operator's 1"
else
	tap_not_ok "restored line: $(grep 'event=restored' "$LAB_DIR/ctld2.log")"
fi
