#!/bin/bash
# test_lab.sh - the lab itself: namespaces and links come up, Knot serves
# the sample zone by AXFR, smtp-sink in mx takes a real swaks transaction,
# and teardown leaves nothing behind.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"

tap_plan 6
lab_init
if ! lab_up; then
	tap_not_ok "lab up"; exit 1
fi
tap_ok "lab up: $NS_INET $NS_APP $NS_DNS $NS_MX"

tap_check "inet reaches dns and mx through the appliance" \
	lab_inet ping -c1 -W2 -q 198.18.2.2

mkdir -p "$LAB_DIR/zsrc"
cp "$root/tools/sample/bl.moat.test.zone" "$LAB_DIR/zsrc/"
if lab_knot "$LAB_DIR/zsrc"; then
	axfr=$(lab_app kdig +nocomments +nostats @198.18.2.2 bl.moat.test AXFR 2>&1)
	nrec=$(printf '%s\n' "$axfr" | grep -v '^;' | grep -c 'bl.moat.test.')
	want=$(grep -cvE '^\s*(;|\$|$)' "$root/tools/sample/bl.moat.test.zone")
	# AXFR repeats the SOA at the end: records + 1
	if [ "$nrec" -eq $((want + 1)) ]; then
		tap_ok "AXFR from Knot: $nrec records (zone file has $want + closing SOA)"
	else
		tap_not_ok "AXFR from Knot: got $nrec records, want $((want + 1))"
		printf '%s\n' "$axfr" | sed 's/^/# /'
	fi
	a=$(lab_app kdig +short @198.18.2.2 99.113.0.203.bl.moat.test A)
	w=$(lab_app kdig +short @198.18.2.2 7.113.0.203.bl.moat.test A)
	if [ "$a" = "127.0.0.10" ] && [ "$w" = "127.0.0.2" ]; then
		tap_ok "wildcard and explicit name answer as RFC 4592 says"
	else
		tap_not_ok "wildcard answers: explicit=$a wildcard=$w"
	fi
else
	tap_not_ok "Knot serves the sample zone"
	tap_not_ok "wildcard (no Knot)"
fi

if lab_sink; then
	lab_sender 192.0.2.55
	out=$(lab_inet swaks --server 198.18.3.2 --port 25 --local-interface 192.0.2.55 \
		--from sender@example.org --to rcpt@moat.test \
		--header "Subject: lab-$LAB_ID" --body "hello from the lab" 2>&1)
	if printf '%s\n' "$out" | grep -q '^<-  250.*'; then
		sleep 0.3
		if grep -rqs "lab-$LAB_ID" "$LAB_DIR/sink"; then
			tap_ok "swaks delivered to smtp-sink in mx, message on disk"
		else
			tap_not_ok "smtp-sink accepted but no dump found"
		fi
	else
		tap_not_ok "swaks transaction to mx"
		printf '%s\n' "$out" | sed 's/^/# /'
	fi
else
	tap_not_ok "smtp-sink in mx"
fi

ns_saved="$NS_INET $NS_APP $NS_DNS $NS_MX"
id_saved=$LAB_ID
lab_down
left=""
for ns in $ns_saved; do
	[ -e "/run/netns/$ns" ] && left="$left $ns"
done
if [ -z "$left" ] && ! pgrep -f "moat-lab-$id_saved" >/dev/null; then
	tap_ok "teardown removed namespaces and processes"
else
	tap_not_ok "teardown left:$left"
fi
exit $((TAP_FAIL > 0))
