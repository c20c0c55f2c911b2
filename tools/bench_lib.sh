# shellcheck shell=bash
# bench_lib.sh - sourced by tools/bench.d/* : a failed run is a failed bench.
#
#   bench_out FILE      the JSON this bench writes; removed now, so a run that
#                       fails leaves no ratio behind (not even an old one)
#   bench_fail MSG...   MSG on stderr, the JSON removed, exit 1
#   bench_count_eq WHAT GOT WANT
#                       fails the bench unless GOT (a count the receiving
#                       side reports) is WANT (what was sent)
#
# Ratios whose per-round values straddle zero are judged by the python
# helper tools/bench_stats.py (median and its ~95 % interval).
BENCH_OUT=
bench_out() {
	BENCH_OUT=$1
	mkdir -p "$(dirname "$BENCH_OUT")"
	rm -f "$BENCH_OUT"
}
bench_fail() {
	echo "bench $(basename "$0"): FAILED: $*" >&2
	[ -z "$BENCH_OUT" ] || rm -f "$BENCH_OUT"
	exit 1
}
bench_count_eq() {
	[ -n "$2" ] && [ "$2" = "$3" ] ||
		bench_fail "$1: ${2:-nothing} counted, $3 sent"
}

# bench_sink_count LOG - messages smtp-sink -c has counted so far (its
# "sess=N quit=N mesg=N" lines, \r-separated, in LOG); 0 before any
bench_sink_count() {
	tr '\r' '\n' <"$1" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1 | grep . || echo 0
}

# bench_zone_records FILE - the records an AXFR of zone FILE carries: every
# record line of the file ($ directives left out), the SOA twice
bench_zone_records() {
	echo $(($(grep -vc '^\$' "$1") + 1))
}

# bench_kdig_axfr ZONE OUT - kdig AXFR of ZONE from the lab's Knot in the
# app namespace, its text through a pipe to tail (the summary kept in OUT,
# as kdig >/dev/null would cost); fails when kdig does.  +time=30: on a
# busy shared machine Knot can take longer than kdig's default 2 s to
# start answering a big AXFR (seen at load 20: "can't receive reply")
# bench_kdig_records OUT - the records that summary says arrived
bench_kdig_axfr() {
	lab_app bash -o pipefail -c "kdig +tcp +time=30 @198.18.2.2 $1 AXFR | tail -n 8" >"$2"
}
bench_kdig_records() {
	sed -n 's/^;; Received .*messages, \([0-9]*\) records.*/\1/p' "$1"
}
