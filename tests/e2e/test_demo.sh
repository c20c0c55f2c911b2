#!/bin/bash
# test_demo.sh - the README's first command in its short mode (no set-up
# or build; the e2e suite's build): the demo ends "demo: OK", moat-pktgen's
# confusion matrix in it has every verdict right with the drop, tarpit and
# pass rows all seen, its SMTP mode delivered from the unlisted sources and
# never connected from the two listed ones, and nothing of the lab is left.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
tap_plan 3
out=$(mktemp /tmp/moat-demo-test.XXXXXX)
trap 'rm -f "$out"' EXIT
"$root/tools/demo" --short >"$out" 2>&1
rc=$?
if [ $rc -eq 0 ] && tail -1 "$out" | grep -qx 'demo: OK'; then
	tap_ok "tools/demo --short: demo: OK"
else
	tap_not_ok "tools/demo --short: rc=$rc"
	tail -30 "$out" | sed 's/^/# /'
fi
if grep -q '^ *wrong verdicts: 0$' "$out" &&
	grep -Eq '^ *pass +[1-9][0-9]* ' "$out" && grep -Eq '^ *tarpit +0 +[1-9]' "$out" &&
	grep -Eq '^ *drop +0 +0 +0 +[1-9]' "$out" &&
	grep -Eq '^ *pass +[1-9][0-9]* +[0-9]+ +0 +0 +0$' "$out" && grep -Eq '^ *drop +0 +0 +0 +2 +0$' "$out" &&
	grep -q '^ *SMTP wrong: 0$' "$out"; then
	tap_ok "the demo's pktgen matrices: flood pass/tarpit/drop right; SMTP unlisted delivered, 2 listed never connected"
else
	tap_not_ok "pktgen matrix in the demo"
	grep -A12 'moat-pktgen in' "$out" | sed 's/^/# /'
fi
id=$(sed -n 's/^lab\[\([0-9a-f]*\)\]: up: .*/\1/p' "$out" | head -1)
left=$(ip netns list | grep -c "^moat-$id-")
if [ -n "$id" ] && [ "$left" = 0 ] && [ ! -e /run/moat-demo.lab ]; then
	tap_ok "no namespace of the demo left"
else
	tap_not_ok "left behind: $left namespaces"
fi
exit $((TAP_FAIL > 0))
