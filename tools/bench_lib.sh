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
