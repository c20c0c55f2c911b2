#!/bin/bash
# test_controld_journal.sh - a zone's state on disk as base + IXFR journal,
# against a real Knot primary: the AXFR writes the base; NOTIFY + IXFRs
# append to zone-NAME.journal and leave the base file alone (same inode and
# mtime); a full refresh (AXFR) rewrites the base and empties the journal;
# kill -9 and a restart with the primary down serve the state after the
# last IXFR (an address added by it listed, one it deleted not); a torn
# record at the journal's end (a crash mid-append) is dropped with a log
# line and cut off, the state before it serving; a corrupt last record
# gives the state before it; past the journal's bound an IXFR rewrites the
# base instead of appending (compaction).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
Z=bl.moat.test
ZF=$root/tools/sample/$Z.zone

ctld_test journal 10
ctld_lab_up

mkdir -p "$LAB_DIR/zsrc"
cp "$ZF" "$LAB_DIR/zsrc/"
KNOT_EXTRA_CONF='remote:
  - id: moat
    address: 198.18.2.1@53'
KNOT_TEMPLATE_EXTRA='    notify: moat'
export KNOT_EXTRA_CONF KNOT_TEMPLATE_EXTRA
if ! lab_knot "$LAB_DIR/zsrc" >/dev/null 2>&1; then
	tap_not_ok "knot serves $Z"
	exit 1
fi
KNOT_PID=$(cat "$LAB_DIR/knotd.pid")

ctld_conf "$Z" "$(printf 'primary = 198.18.2.2@53\nrefresh_min = 300')" \
	"notify_listen = 198.18.2.1@53"
BASE=$LAB_DIR/state/zone-$Z.state
JOURNAL=$LAB_DIR/state/zone-$Z.journal

zone_field() { # zone_field FIELD
	jget "$(mctl zones --json 2>/dev/null)" "[z['$1'] for z in d['zones'] if z['name']=='$Z'][0]"
}
serial_is() { [ "$(zone_field serial 2>/dev/null)" = "$1" ]; }
lk() { jget "$(mctl lookup "$1" --json)" "d['action']"; }
fsize() { stat -c %s "$1" 2>/dev/null || echo -1; }
bstat() { stat -c '%i %y' "$BASE" 2>/dev/null; }
crash() { ctld_stop 9; }

# ixfr SERIAL SED-EXPR [LINES] - Knot serves the sample zone at SERIAL,
# edited by SED-EXPR plus LINES; moat-controld gets it by NOTIFY + IXFR
ixfr() {
	sed -e "s/2026112701/$1/" -e "$2" "$ZF" >"$LAB_DIR/zsrc/$Z.zone"
	printf '%s' "${3:-}" >>"$LAB_DIR/zsrc/$Z.zone"
	lab_knot_reload "$LAB_DIR/zsrc"
	lab_wait 10 serial_is "$1"
}

if ! start_ctld ctld1 || ! lab_wait 15 serial_is 2026112701; then
	tap_not_ok "AXFR of $Z"
	sed 's/^/# /' "$LAB_DIR/ctld1.log" | tail -20
	exit 1
fi
b0=$(bstat)
if [ -n "$b0" ] && [ "$(fsize "$JOURNAL")" -le 0 ]; then
	tap_ok "AXFR: base state written, journal empty"
else
	tap_not_ok "after the AXFR: base '$b0' journal $(fsize "$JOURNAL")"
fi

# two IXFRs: 192.0.2.30/31 added; then 192.0.2.11 deleted, 192.0.2.40 added
ok=1 sizes=""
ixfr 2026112702 '' $'30.2.0.192 A 127.0.0.2\n31.2.0.192 A 127.0.0.2\n' || ok=0
sizes+=" $(fsize "$JOURNAL")"
ixfr 2026112703 '/^11\.2\.0\.192/d' $'30.2.0.192 A 127.0.0.2\n31.2.0.192 A 127.0.0.2\n40.2.0.192 A 127.0.0.2\n' || ok=0
sizes+=" $(fsize "$JOURNAL")"
set -- $sizes
if [ $ok = 1 ] && [ "$1" -gt 0 ] && [ "$2" -gt "$1" ] && [ "$(bstat)" = "$b0" ] &&
	grep -q "zone=$Z event=load kind=ixfr serial=2026112703 " "$LAB_DIR/ctld1.log"; then
	tap_ok "2 IXFRs: the journal grows ($sizes bytes), the base file is not rewritten"
else
	tap_not_ok "IXFRs: ok=$ok journal sizes$sizes base '$(bstat)' was '$b0'"
fi

mctl zone refresh "$Z" --full >/dev/null
if lab_wait 10 bash -c "grep -q 'zone=$Z event=load kind=axfr serial=2026112703 ' '$LAB_DIR/ctld1.log'" &&
	lab_wait 5 bash -c "[ \"\$(stat -c %s '$JOURNAL')\" = 0 ]" && [ "$(bstat)" != "$b0" ]; then
	tap_ok "a full refresh (AXFR) rewrites the base and empties the journal"
else
	tap_not_ok "refresh --full: journal $(fsize "$JOURNAL") base '$(bstat)' was '$b0'"
fi
b1=$(bstat)

# two more IXFRs: 192.0.2.31 deleted, 192.0.2.41 added; 192.0.2.30 deleted
ok=1
ixfr 2026112704 '/^11\.2\.0\.192/d' $'30.2.0.192 A 127.0.0.2\n40.2.0.192 A 127.0.0.2\n41.2.0.192 A 127.0.0.3\n' || ok=0
j4=$(fsize "$JOURNAL")
ixfr 2026112705 '/^11\.2\.0\.192/d' $'40.2.0.192 A 127.0.0.2\n41.2.0.192 A 127.0.0.3\n' || ok=0
j5=$(fsize "$JOURNAL")
if [ $ok = 1 ] && [ "$j4" -gt 0 ] && [ "$j5" -gt "$j4" ] && [ "$(bstat)" = "$b1" ]; then
	tap_ok "after the AXFR, IXFRs append again (journal $j4 -> $j5 bytes, base untouched)"
else
	tap_not_ok "IXFRs 4/5: ok=$ok journal $j4 -> $j5 base '$(bstat)' was '$b1'"
fi
before=$(lk 192.0.2.41)/$(lk 192.0.2.30)/$(lk 192.0.2.31)/$(lk 192.0.2.11)/$(lk 192.0.2.40)

# kill -9, primary down, restart: base + journal replayed
crash
kill "$KNOT_PID"
sleep 0.5
if start_ctld ctld2; then
	s=$(zone_field serial) f=$(zone_field from_disk)
	after=$(lk 192.0.2.41)/$(lk 192.0.2.30)/$(lk 192.0.2.31)/$(lk 192.0.2.11)/$(lk 192.0.2.40)
	if [ "$s/$f" = 2026112705/True ] &&
		grep -q "zone=$Z event=restore journal_records=2 serial=2026112705" "$LAB_DIR/ctld2.log"; then
		tap_ok "kill -9 + restart with Knot down: serial 2026112705 from base + 2 journal records"
	else
		tap_not_ok "restart: serial=$s from_disk=$f"
		grep "event=restore\|event=journal" "$LAB_DIR/ctld2.log" | sed 's/^/# /'
	fi
	if [ "$after" = drop/pass/pass/pass/drop ] && [ "$before" = "$after" ]; then
		tap_ok "the last IXFR's addition is listed, its deletion is not (41/30/31/11/40: $after)"
	else
		tap_not_ok "lookups after the restart $after, before $before, want drop/pass/pass/pass/drop"
	fi
else
	tap_not_ok "restart"
	tap_not_ok "restart (lookups)"
fi

# a crash in the middle of an append: a torn record at the end
crash
sleep 0.3
good=$(fsize "$JOURNAL")
head -c 200 "$JOURNAL" | head -c 100 >>"$JOURNAL"
if start_ctld ctld3; then
	s=$(zone_field serial)
	if [ "$s" = 2026112705 ] && [ "$(lk 192.0.2.41)/$(lk 192.0.2.30)" = drop/pass ] &&
		grep -q "zone=$Z event=journal .*result=stopped reason=\"torn record at the end\" records=2 serial=2026112705 dropped_bytes=100" "$LAB_DIR/ctld3.log"; then
		tap_ok "a torn record at the journal's end is dropped with a log line; serial $s serves"
	else
		tap_not_ok "torn tail: serial=$s"
		grep "event=journal" "$LAB_DIR/ctld3.log" | sed 's/^/# /'
	fi
	[ "$(fsize "$JOURNAL")" = "$good" ] && tap_ok "the journal is cut back to its last good record ($good bytes)" ||
		tap_not_ok "journal $(fsize "$JOURNAL") bytes after the torn-tail restart, want $good"
else
	tap_not_ok "restart after the torn tail"
	tap_not_ok "restart after the torn tail (size)"
fi

# a damaged record in the middle: the state up to the record before it
crash
sleep 0.3
first=$j4 # the second record after the AXFR starts where the first ended
printf 'X' | dd of="$JOURNAL" bs=1 seek=$((first + 100)) conv=notrunc status=none
if start_ctld ctld4; then
	s=$(zone_field serial)
	r=$(lk 192.0.2.41)/$(lk 192.0.2.30)/$(lk 192.0.2.31)
	if [ "$s/$r" = 2026112704/drop/drop/pass ] &&
		grep -q "zone=$Z event=journal .*reason=\"bad checksum\" records=1 serial=2026112704" "$LAB_DIR/ctld4.log"; then
		tap_ok "a corrupt last record: the state after the IXFR before it serves (serial $s, 41/30/31 $r)"
	else
		tap_not_ok "corrupt record: serial=$s lookups=$r"
		grep "event=journal" "$LAB_DIR/ctld4.log" | sed 's/^/# /'
	fi
else
	tap_not_ok "restart after the corrupt record"
fi
# compaction: with a 2-record bound (MOAT_TEST_JOURNAL_RECORDS) the third
# IXFR rewrites the base and empties the journal instead of appending.
# (After a restart the first transfer is an AXFR: the source library's zone
# tree is not persisted.)
crash
ixfr_lines=$'40.2.0.192 A 127.0.0.2\n41.2.0.192 A 127.0.0.3\n'
sed -e "s/2026112701/2026112706/" -e '/^11\.2\.0\.192/d' "$ZF" >"$LAB_DIR/zsrc/$Z.zone"
printf '%s' "$ixfr_lines" >>"$LAB_DIR/zsrc/$Z.zone"
KNOT_ZONES=()
ok=0
if lab_knot "$LAB_DIR/zsrc" >/dev/null 2>&1 && MOAT_TEST_JOURNAL_RECORDS=2 start_ctld ctld5 &&
	lab_wait 15 serial_is 2026112706; then
	ok=1
	ixfr 2026112707 '/^11\.2\.0\.192/d' "$ixfr_lines"$'42.2.0.192 A 127.0.0.2\n' || ok=0
	ixfr 2026112708 '/^11\.2\.0\.192/d' "$ixfr_lines"$'42.2.0.192 A 127.0.0.2\n43.2.0.192 A 127.0.0.2\n' || ok=0
	j8=$(fsize "$JOURNAL") b8=$(bstat)
	ixfr 2026112709 '/^11\.2\.0\.192/d' "$ixfr_lines"$'43.2.0.192 A 127.0.0.2\n' || ok=0
fi
r=$(lk 192.0.2.43)/$(lk 192.0.2.42)
if [ $ok = 1 ] && [ "${j8:-0}" -gt 0 ] && [ "$(fsize "$JOURNAL")" = 0 ] && [ "$(bstat)" != "${b8:-}" ] &&
	grep -q "zone=$Z event=journal-compact serial=2026112709 .*records=2 " "$LAB_DIR/ctld5.log" &&
	grep -q "zone=$Z event=load kind=ixfr serial=2026112709 .* persist=base " "$LAB_DIR/ctld5.log" &&
	[ "$r" = drop/pass ]; then
	tap_ok "journal at its bound (2 records, $j8 bytes): the third IXFR rewrote the base and emptied the journal (43/42: $r)"
else
	tap_not_ok "compaction: ok=$ok journal ${j8:-?} -> $(fsize "$JOURNAL") base '$(bstat)' was '${b8:-}' lookups $r"
	grep "event=journal\|event=load" "$LAB_DIR/ctld5.log" | tail -4 | sed 's/^/# /'
fi
exit $((TAP_FAIL > 0))
