#!/bin/bash
# test_demo.sh - the README's first command in its short mode (no set-up
# or build; the e2e suite's build): the demo ends "demo: OK", moat-pktgen's
# confusion matrix in it has every verdict right with the drop, tarpit and
# pass rows all seen, its SMTP mode delivered from the unlisted sources and
# never connected from the two listed ones; the same flood at moat-dpdk
# (gate 1 moved to DPDK, moat-controld's backend dpdk) gives a matrix as
# right, moat-dpdk running as nobody with no capability; and nothing of the
# lab is left (namespaces, EAL's runtime directory).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
tap_plan 5
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
# the moat-dpdk part: its matrix alone, between its heading and the next
dp=$(sed -n '/the same flood at moat-dpdk/,/^==> moatctl stats/p' "$out")
if printf '%s\n' "$dp" | grep -q '^ *wrong verdicts: 0$' &&
	printf '%s\n' "$dp" | grep -Eq '^ *pass +[1-9][0-9]* +0 +0 +0 +[1-9]' &&
	printf '%s\n' "$dp" | grep -Eq '^ *tarpit +0 +[1-9]' &&
	printf '%s\n' "$dp" | grep -Eq '^ *drop +0 +0 +0 +[1-9]' &&
	printf '%s\n' "$dp" | grep -q '^ *lossless at this rate: yes$'; then
	tap_ok "the flood at moat-dpdk: pass/tarpit/drop right, lossless, 0 wrong"
else
	tap_not_ok "pktgen matrix against moat-dpdk"
	printf '%s\n' "$dp" | sed 's/^/# /'
	grep 'moat-dpdk' "$out" | tail -5 | sed 's/^/# /'
fi
if grep -q 'moat-dpdk.*event=privileges user=nobody uid=65534 .*caps=none' "$out" &&
	grep -q 'moat-dpdk.*event=started' "$out"; then
	tap_ok "moat-dpdk forwarded as nobody with no capability"
else
	tap_not_ok "moat-dpdk's privilege drop not shown"
fi
id=$(sed -n 's/^lab\[\([0-9a-f]*\)\]: up: .*/\1/p' "$out" | head -1)
left=$(ip netns list | grep -c "^moat-$id-")
if [ -n "$id" ] && [ "$left" = 0 ] && [ ! -e /run/moat-demo.lab ] && [ ! -e "/var/run/dpdk/moat-$id" ]; then
	tap_ok "no namespace of the demo left, nor moat-dpdk's EAL runtime directory"
else
	tap_not_ok "left behind: $left namespaces, $(ls -d "/var/run/dpdk/moat-$id" 2>/dev/null)"
fi
exit $((TAP_FAIL > 0))
