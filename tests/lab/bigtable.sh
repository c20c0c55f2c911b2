#!/bin/bash
# bigtable.sh - one large rbldnsd table changing into another of the same
# size under a moat-pktgen flood that knows both, for the e2e tests that
# publish such a change (controld_kill: XDP and a kill -9; dpdk_publish:
# moat-dpdk).  Source after lab.sh, controld.sh and lab_init; BT_PER24
# sets the size.
#   bt_table OLD|NEW   the ip4set file on stdout: 127.0.0.2 (the test
#                  point), 10.3.x.0-127 in both, 10.1.x.0-127 (old) or
#                  10.2.x.0-127 (new), and BT_PER24 addresses in each /24
#                  of 10.64/11 (old) or 10.96/11 (new), one a line
#                  (BT_PER24=118: 1,032,193 entries)
#   bt_expect OLD|NEW  pktgen's --expect lines for the three /16s: the
#                  lower half of every /24 of the listed ones drops
#   bt_conf XDP_OR_FASTPATH_LINES FILE   $LAB_DIR/moat.conf: debug log,
#                  drop_threshold 1, the zone big.rbl from FILE, and the
#                  fast path's section given
#   bt_zf KEY      a field of big.rbl in moatctl zones; bt_loaded: all of
#                  the file's BT_N entries are in
#   bt_cell NAME EXP OBS, bt_f NAME KEY, bt_show NAME   pktgen's JSON in
#                  $LAB_DIR/NAME.json: a cell of its matrix, a key, the
#                  JSON and the wrong probes as TAP comments
#   bt_flood_end PID   wait for the flood (its exit status in rc) and read
#                  its JSON, flood.json: wrong, both (listed in both and
#                  dropped), f1 and f2 (where the tables disagree, replies
#                  that fit the old table, the new one)
#   bt_new_only WHAT   two TAP cases once the change is over, with the
#                  caller's pg NAME SECONDS ARGS... (moat-pktgen, JSON to
#                  NAME.json): judged against the new table alone a flood
#                  is right, against the old one alone wrong (exit 1: the
#                  negative control); WHAT names the fast path; a
#                  failure also runs the caller's bt_diag if it has one

bt_table() {
	awk -v t="$1" -v per="$BT_PER24" 'BEGIN {
		print "127.0.0.2"
		p = t == "old" ? 1 : 2; f = t == "old" ? 64 : 96
		for (x = 0; x < 256; x++)
			for (h = 0; h < 128; h++)
				printf "10.3.%d.%d\n10.%d.%d.%d\n", x, h, p, x, h
		for (b = 0; b < 8192; b++)
			for (h = 1; h <= per; h++)
				printf "10.%d.%d.%d\n", f + int(b / 256), b % 256, h
	}'
}

bt_expect() {
	local p=1 x
	[ "$1" = new ] && p=2
	for x in $(seq 0 255); do
		printf '10.3.%d.0/25 drop\n10.%d.%d.0/25 drop\n' "$x" "$p" "$x"
	done
}

bt_conf() { ctld_conf_zone big.rbl "$2" ip4set "$1"; }

bt_zf() { jget "$(mctl zones --json)" "[z['$1'] for z in d['zones'] if z['name']=='big.rbl'][0]"; }
bt_loaded() { [ "$(bt_zf entries 2>/dev/null)" = "$BT_N" ]; }
bt_f() { jget "$(cat "$LAB_DIR/$1.json")" "d['$2']"; }
bt_cell() { jget "$(cat "$LAB_DIR/$1.json")" "d['matrix']['$2']['$3']"; }
bt_show() { sed 's/^/# /' "$LAB_DIR/$1.json" "$LAB_DIR/$1.err" | head -40; }

bt_new_only() {
	local rc
	pg after 2 --expect "$LAB_DIR/new.expect"
	rc=$?
	if [ "$rc" = 0 ] && [ "$(bt_f after wrong)" = 0 ] && [ "$(bt_cell after drop none)" -gt 1000 ]; then
		tap_ok "$1 gives the new table's verdicts only (drop $(bt_cell after drop none), 0 wrong)"
	else
		tap_not_ok "after: rc=$rc"
		bt_show after
		! declare -F bt_diag >/dev/null || bt_diag
	fi
	pg neg 1 --expect "$LAB_DIR/old.expect"
	rc=$?
	if [ "$rc" = 1 ] && [ "$(bt_f neg wrong)" -gt 100 ]; then
		tap_ok "judged against the old table alone the same flood is wrong ($(bt_f neg wrong) wrong, exit 1)"
	else
		tap_not_ok "negative control: rc=$rc wrong=$(bt_f neg wrong)"
	fi
}

bt_flood_end() {
	wait "$1"
	rc=$?
	w=$(bt_f flood wrong)
	both=$(bt_cell flood drop none)
	f1=$(bt_f flood fit_first)
	f2=$(bt_f flood fit_second)
}
