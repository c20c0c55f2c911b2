#!/bin/bash
# test_xfr.sh - zone transfers against a real Knot primary in the lab, with
# moat-zonecheck (libmoatsrc's non-blocking client): AXFR listings, IXFR
# after adds and deletes, NOTIFY-triggered refresh, TSIG good and bad key
# on a multi-message zone, the differential test (kdig vs our listings on
# RFC 4592 edge cases), faults from a scripted primary (fakeprimary.py),
# and the primary killed in the middle of a big transfer.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${MOAT_BUILD_DIR:-$root/build}
zc="$build/tools/moat-zonecheck"
. "$root/tests/lab/lab.sh"

tap_plan 27
lab_init
if ! lab_up >/dev/null 2>&1; then
	tap_not_ok "lab up"; exit 1
fi
K=$LAB_DIR/zsrc
mkdir -p "$K"
cp "$root/tools/sample/bl.moat.test.zone" "$K/"
cp "$here/zones/diff.moat.test.zone" "$K/"
"$root/tools/zonegen" -n 20000 --seed 3 tsig.moat.test -o "$K/tsig.moat.test.zone"
"$root/tools/zonegen" -n 300000 --seed 4 big.moat.test -o "$K/big.moat.test.zone"
echo "    acl: tsig" >"$K/tsig.moat.test.zone.conf"
echo "    notify: app" >"$K/bl.moat.test.zone.conf"
SECRET=$(head -c 32 /dev/urandom | base64)
KEY="hmac-sha256:xfrkey:$SECRET"
BADKEY="hmac-sha256:xfrkey:$(head -c 32 /dev/urandom | base64)"
export KNOT_PRE_CONF="key:
  - id: xfrkey
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: app
    address: 198.18.2.1@5353"
export KNOT_EXTRA_CONF="  - id: tsig
    address: [ 198.18.0.0/15 ]
    key: xfrkey
    action: [ transfer ]"
# lab_knot waits 15 s per zone; the 300k-record zone may take longer on a
# loaded machine, so wait for every zone here as well
lab_knot "$K" >/dev/null 2>&1
for z in bl diff tsig big; do
	if ! lab_wait 120 bash -c "ip netns exec $NS_DNS kdig +time=1 +retry=0 @198.18.2.2 \
		$z.moat.test SOA +short | grep -q ."; then
		tap_not_ok "Knot serves $z.moat.test"
		sed 's/^/# /' "$LAB_DIR/knotd.log" | tail -20
		exit 1
	fi
done

# 1. AXFR of the sample zone: v4, v6, wildcard + override, error code, test points
out=$LAB_DIR/axfr.out
lab_app "$zc" -s 198.18.2.2 -z bl.moat.test -o "$out" 2>"$LAB_DIR/axfr.err"
want="127.0.0.2/32 127.0.0.2 300
192.0.2.10/32 127.0.0.2 300
192.0.2.11/32 127.0.0.4 300
192.0.2.12/32 - 300 exclude
198.51.100.20/32 127.0.0.3 300
203.0.113.0/24 127.0.0.2 300
203.0.113.99/32 127.0.0.10 300
::ffff:127.0.0.2/128 127.0.0.2 300
2001:db8:100::10/128 127.0.0.2 300"
if [ "$(cat "$out")" = "$want" ] && grep -q "sanity ok" "$LAB_DIR/axfr.err"; then
	tap_ok "AXFR: 9 listings (v4, v6, /24 wildcard with override, error code as exclude, test points), sanity ok"
else
	tap_not_ok "AXFR listings"
	diff <(echo "$want") "$out" | sed 's/^/# /'
	sed 's/^/# /' "$LAB_DIR/axfr.err"
fi

# the same over IPv6 transport
if lab_app "$zc" -s 2001:db8:2::2 -z bl.moat.test -o "$LAB_DIR/axfr6.out" 2>/dev/null &&
	cmp -s "$out" "$LAB_DIR/axfr6.out"; then
	tap_ok "AXFR from the IPv6 primary address gives the same listings"
else
	tap_not_ok "AXFR over IPv6"
fi

# the zone tree's own answers with TXT reasons (moat-zonecheck --txt)
printf '192.0.2.10\n127.0.0.2\n203.0.113.5\n203.0.113.99\n192.0.2.99\n' >"$LAB_DIR/txt.addrs"
lab_app "$zc" -s 198.18.2.2 -z bl.moat.test -T -q -l "$LAB_DIR/txt.addrs" >"$LAB_DIR/txt.out" 2>/dev/null
wtxt='192.0.2.10 [listed "spam source 192.0.2.10"] 127.0.0.2
127.0.0.2 [listed "RFC 5782 test point"] 127.0.0.2
203.0.113.5 [listed wildcard ""] 127.0.0.2
203.0.113.99 [listed ""] 127.0.0.10
192.0.2.99 [nxdomain ""] -'
if [ "$(cat "$LAB_DIR/txt.out")" = "$wtxt" ]; then
	tap_ok "lookups with TXT reasons: explicit, wildcard, override, NXDOMAIN"
else
	tap_not_ok "lookups with TXT reasons"
	diff <(echo "$wtxt") "$LAB_DIR/txt.out" | sed 's/^/# /'
fi

# 2-4. IXFR after adds and deletes, triggered by NOTIFY from Knot
serial_bump() { # FILE NEWSERIAL
	sed -i "s/^@ *SOA \(.*\) [0-9]\+ 60 30 604800 60$/@ SOA \1 $2 60 30 604800 60/" "$1"
}
lab_bg "$NS_APP" zc-notify "$zc" -s 198.18.2.2 -z bl.moat.test -N 198.18.2.1@5353 -n 3 \
	-o "$LAB_DIR/ixfr.out"
lab_wait 10 grep -q "result kind=full" "$LAB_DIR/zc-notify.log"
f="$K/bl.moat.test.zone"
serial_bump "$f" 2026112702
sed -i '/^11.2.0.192 /d' "$f"
printf '13.2.0.192 A 127.0.0.2\n7.113.0.203 TXT "explicit, no A"\n' >>"$f"
lab_knot_reload "$K"
if lab_wait 15 grep -q "result kind=ixfr" "$LAB_DIR/zc-notify.log"; then
	tap_ok "NOTIFY from Knot triggered a refresh ($(grep 'notify accepted' "$LAB_DIR/zc-notify.log" | sort -u | tr '\n' ' '))"
else
	tap_not_ok "NOTIFY-triggered refresh"
	sed 's/^/# /' "$LAB_DIR/zc-notify.log"
fi
# the IXFR's delta lines are all out once its sanity line follows them
# (re-read on every try: a process substitution would be read only once)
ixfr_done() { grep -A100 "kind=ixfr" "$LAB_DIR/zc-notify.log" | grep -q "sanity"; }
lab_wait 5 ixfr_done
if grep -q "result kind=ixfr serial=2026112702 add=2 del=1" "$LAB_DIR/zc-notify.log" &&
	grep -q "delta -192.0.2.11/32" "$LAB_DIR/zc-notify.log" &&
	grep -q "delta +192.0.2.13/32" "$LAB_DIR/zc-notify.log" &&
	grep -q "delta +203.0.113.7/32 exclude" "$LAB_DIR/zc-notify.log"; then
	tap_ok "IXFR delta: -192.0.2.11, +192.0.2.13, +exclude 203.0.113.7 (TXT-only name below the wildcard)"
else
	tap_not_ok "IXFR delta"
	sed 's/^/# /' "$LAB_DIR/zc-notify.log"
fi
if grep -q "^192.0.2.13/32 " "$LAB_DIR/ixfr.out" && ! grep -q "^192.0.2.11/32 " "$LAB_DIR/ixfr.out" &&
	[ "$(wc -l <"$LAB_DIR/ixfr.out")" -eq 10 ]; then
	tap_ok "listings after IXFR equal the new zone"
else
	tap_not_ok "listings after IXFR"
	sed 's/^/# /' "$LAB_DIR/ixfr.out"
fi
# NOTIFY over TCP (kdig) from the primary's address: refresh (up to date);
# from an address that is not a primary: REFUSED, no refresh
notify_tcp() { # NS: send a NOTIFY for bl.moat.test over TCP, print the rcode
	ip netns exec "$1" /usr/bin/python3 -c '
import dns.message, dns.opcode, dns.query, dns.rcode
q = dns.message.make_query("bl.moat.test.", "SOA")
q.set_opcode(dns.opcode.NOTIFY)
print(dns.rcode.to_text(dns.query.tcp(q, "198.18.2.1", port=5353, timeout=3).rcode()))'
}
# results before: the refused NOTIFY must add none, the accepted one one
nres0=$(grep -c '^result kind=' "$LAB_DIR/zc-notify.log")
nref=$(notify_tcp "$NS_INET" 2>&1)
lab_wait 5 grep -q "notify refused via tcp" "$LAB_DIR/zc-notify.log"
nok=$(notify_tcp "$NS_DNS" 2>&1)
nres() { grep -c '^result kind=' "$LAB_DIR/zc-notify.log"; }
if lab_wait 15 bash -c "[ \$(grep -c '^result kind=' '$LAB_DIR/zc-notify.log') -gt $nres0 ]" &&
	grep '^result kind=' "$LAB_DIR/zc-notify.log" | tail -1 | grep -q "kind=uptodate" &&
	[ "$nref" = REFUSED ] &&
	[ "$nok" = NOERROR ] &&
	grep -q "notify accepted via tcp" "$LAB_DIR/zc-notify.log" &&
	grep -q "notify refused via tcp" "$LAB_DIR/zc-notify.log" &&
	[ "$(nres)" -eq $((nres0 + 1)) ]; then
	tap_ok "NOTIFY over TCP: from the primary -> refresh (up to date); from 198.18.1.2 -> REFUSED, no refresh"
else
	tap_not_ok "NOTIFY over TCP (from inet: $nref, from dns: $nok; results $nres0 -> $(nres))"
	sed 's/^/# /' "$LAB_DIR/zc-notify.log"
fi
# the same state by AXFR from scratch must equal the IXFR-maintained one
lab_app "$zc" -s 198.18.2.2 -z bl.moat.test -x -o "$LAB_DIR/axfr2.out" 2>/dev/null
if cmp -s "$LAB_DIR/axfr2.out" "$LAB_DIR/ixfr.out"; then
	tap_ok "IXFR-maintained listings equal a fresh AXFR"
else
	tap_not_ok "IXFR vs AXFR listings differ"
	diff "$LAB_DIR/axfr2.out" "$LAB_DIR/ixfr.out" | sed 's/^/# /'
fi

# 5-7. TSIG on a multi-message zone: good key, wrong key, no key
if lab_app "$zc" -s 198.18.2.2 -z tsig.moat.test -k "$KEY" -q 2>"$LAB_DIR/tsig.err" &&
	grep -q "kind=full .*records=2000[0-9]" "$LAB_DIR/tsig.err"; then
	tap_ok "TSIG: signed AXFR of 20000 records verified on every message"
else
	tap_not_ok "TSIG good key"
	sed 's/^/# /' "$LAB_DIR/tsig.err"
fi
if ! lab_app "$zc" -s 198.18.2.2 -z tsig.moat.test -k "$BADKEY" -q 2>"$LAB_DIR/tsigbad.err" &&
	grep -q "failed: NOTAUTH (rcode 9), TSIG error BAD[A-Z]*: the primary refused the request's TSIG key: check" \
		"$LAB_DIR/tsigbad.err"; then
	tap_ok "TSIG: wrong key refused ($(grep '^failed:' "$LAB_DIR/tsigbad.err"))"
else
	tap_not_ok "TSIG wrong key"
	sed 's/^/# /' "$LAB_DIR/tsigbad.err"
fi
# the refusal is named, with what to check (it said "rcode 9")
if ! lab_app "$zc" -s 198.18.2.2 -z tsig.moat.test -q 2>"$LAB_DIR/tsignone.err" &&
	grep -q "failed: NOTAUTH (rcode 9): the primary refused an unsigned request: give the zone the TSIG key" \
		"$LAB_DIR/tsignone.err"; then
	tap_ok "TSIG: unsigned request refused by the primary ($(grep '^failed:' "$LAB_DIR/tsignone.err"))"
else
	tap_not_ok "TSIG: unsigned request served, or not said as NOTAUTH"
	sed 's/^/# /' "$LAB_DIR/tsignone.err"
fi

# 8. differential: kdig against Knot vs moat's listings, RFC 4592 edge cases
addrs="$here/zones/diff.addrs"
lab_app "$zc" -s 198.18.2.2 -z diff.moat.test -l "$addrs" -o /dev/null 2>"$LAB_DIR/diff.err" \
	| sort >"$LAB_DIR/diff.moat"
names=()
while read -r a; do
	names+=("$(python3 -c "import ipaddress,sys; print(ipaddress.ip_address(sys.argv[1]).reverse_pointer.rsplit('.',2)[0])" "$a").diff.moat.test" A)
done <"$addrs"
lab_app kdig +tcp +noall +answer @198.18.2.2 "${names[@]}" >"$LAB_DIR/diff.kdig" 2>&1
python3 - "$addrs" "$LAB_DIR/diff.kdig" <<'PY' | sort >"$LAB_DIR/diff.dns"
import ipaddress, sys
ans = {}
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 5 and f[3] == "A":
        ans.setdefault(f[0].lower(), []).append(f[4])
for a in open(sys.argv[1]):
    a = a.strip()
    if not a:
        continue
    n = ipaddress.ip_address(a).reverse_pointer.rsplit(".", 2)[0] + ".diff.moat.test."
    codes = sorted(ans.get(n.lower(), []), key=lambda c: ipaddress.ip_address(c))
    print(a, ",".join(codes) if codes else "-")
PY
n=$(wc -l <"$LAB_DIR/diff.dns")
if [ "$n" -gt 100 ] && cmp -s "$LAB_DIR/diff.dns" "$LAB_DIR/diff.moat"; then
	tap_ok "differential: $n addresses, moat's verdict equals Knot's answer for each"
else
	tap_not_ok "differential kdig vs moat ($n addresses)"
	diff "$LAB_DIR/diff.dns" "$LAB_DIR/diff.moat" | head -40 | sed 's/^/# /'
fi
# regression: -o /dev/null once rename()d a regular file over the host's
# /dev/null; a device is written in place, and a directory is refused
tap_check "-o /dev/null leaves /dev/null a character device" test -c /dev/null
mkdir -p "$LAB_DIR/outdir"
if ! lab_app "$zc" -s 198.18.2.2 -z diff.moat.test -o "$LAB_DIR/outdir" 2>"$LAB_DIR/outdir.err" &&
	[ -d "$LAB_DIR/outdir" ] && grep -q "Is a directory" "$LAB_DIR/outdir.err"; then
	tap_ok "-o DIRECTORY refused with a clear error, the directory kept"
else
	tap_not_ok "-o DIRECTORY: $(cat "$LAB_DIR/outdir.err")"
fi
# live lookups (c-ares) of the same addresses through Knot as the resolver
lab_app "$zc" -R 198.18.2.2 -z diff.moat.test -l "$addrs" 2>"$LAB_DIR/live.err" \
	| sort >"$LAB_DIR/diff.live"
if [ "$n" -gt 100 ] && cmp -s "$LAB_DIR/diff.dns" "$LAB_DIR/diff.live"; then
	tap_ok "live lookups (c-ares, non-blocking): $n addresses answer as kdig does"
else
	tap_not_ok "live lookups vs kdig"
	diff "$LAB_DIR/diff.dns" "$LAB_DIR/diff.live" | head -20 | sed 's/^/# /'
	sed 's/^/# /' "$LAB_DIR/live.err" | head
fi

# live lookups of an error-code answer: failed, not a listing
printf '192.0.2.12\n192.0.2.10\n' >"$LAB_DIR/live3.addrs"
lout=$(lab_app "$zc" -R 198.18.2.2 -z bl.moat.test -l "$LAB_DIR/live3.addrs" 2>&1)
if [ "$lout" = "192.0.2.12 failed
192.0.2.10 127.0.0.2" ]; then
	tap_ok "live lookups: an error-code answer (127.255.255.254) counts as failed"
else
	tap_not_ok "live lookups, error code: $lout"
fi
# live lookups through a resolver that does not answer: reported as failed
printf '192.0.2.10\n2001:db8:100::10\n' >"$LAB_DIR/live2.addrs"
lout=$(lab_app "$zc" -R 198.18.2.2@5999 -z bl.moat.test -t 300 -l "$LAB_DIR/live2.addrs" 2>&1)
if [ "$lout" = "192.0.2.10 failed
2001:db8:100::10 failed" ]; then
	tap_ok "live lookups without an answering resolver: failed, not 'not listed'"
else
	tap_not_ok "live lookups, dead resolver: $lout"
fi

# 9-15. faults from the scripted primary: each second transfer must fail
# (or, for REFUSED, fall back to AXFR) and keep the first transfer's data
FAULT_PORTS=()
fault() { # SCENARIO EXPECT(fail|ok) PATTERN [TSIG]
	local sc=$1 expect=$2 pat=$3 k=${4:-} port=$((5300 + ${#FAULT_PORTS[@]}))
	FAULT_PORTS+=("$port") # each scenario's server keeps its own port
	local targs=() zargs=()
	[ -n "$k" ] && targs=(--tsig "xfrkey:$SECRET") && zargs=(-k "$KEY")
	lab_bg "$NS_DNS" "fake-$sc" /usr/bin/python3 "$here/fakeprimary.py" --port $port \
		--scenario "$sc" "${targs[@]}"
	lab_wait 10 grep -q listening "$LAB_DIR/fake-$sc.log"
	lab_app "$zc" -s "198.18.2.2@$port" -z fake.moat.test -n 2 -r "${zargs[@]}" -t 3000 \
		-o "$LAB_DIR/fake-$sc.out" 2>"$LAB_DIR/fake-$sc.err"
	local rc=$? first second
	first=$(grep -m1 "^result\|^failed" "$LAB_DIR/fake-$sc.err")
	second=$(grep "^result\|^failed" "$LAB_DIR/fake-$sc.err" | sed -n 2p)
	local kept=0
	[ "$(wc -l <"$LAB_DIR/fake-$sc.out")" -eq 3 ] && kept=1
	if [[ "$first" == "result kind=full serial=10"* ]] &&
		{ { [ $expect = fail ] && [ $rc -ne 0 ] && [[ "$second" == failed:*$pat* ]] && [ $kept = 1 ]; } ||
		  { [ $expect = ok ] && [ $rc -eq 0 ] && [[ "$second" == *$pat* ]]; }; }; then
		tap_ok "fault $sc: ${second}"
	else
		tap_not_ok "fault $sc (rc=$rc first='$first' second='$second' kept=$kept)"
		sed 's/^/# /' "$LAB_DIR/fake-$sc.err" "$LAB_DIR/fake-$sc.log"
	fi
}
fault gap fail "serial chain"
fault malformed fail "malformed"
fault outofzone fail "bad record"
fault midclose fail "closed"
fault refused ok "result kind=full serial=10"
fault badmac fail "TSIG" tsig
fault unsigned fail "not TSIG-signed" tsig

# 18-20. the primary killed in the middle of a big transfer: the client's
# second AXFR of big.moat.test (300k records) fails, its first data stays
lab_bg "$NS_APP" zc-kill "$zc" -s 198.18.2.2 -z big.moat.test -x -n 3 -t 5000 \
	-o "$LAB_DIR/kill.out"
lab_wait 60 grep -q "^sanity" "$LAB_DIR/zc-kill.log"
cp "$LAB_DIR/kill.out" "$LAB_DIR/kill.before"
kill -USR1 "$(cat "$LAB_DIR/zc-kill.pid")"
# kill knotd as soon as the transfer connection is up
lab_wait 10 bash -c "ip netns exec $NS_APP ss -tnH state established '( dport = :53 )' | grep -q ."
kill -9 "$(cat "$LAB_DIR/knotd.pid")"
lab_wait 20 grep -q "^failed" "$LAB_DIR/zc-kill.log"
f1=$(grep -m1 "^failed" "$LAB_DIR/zc-kill.log")
if [[ "$f1" =~ ^failed:\ connection\ closed\ by\ the\ primary\ after\ ([0-9]+)\ records ]] &&
	[ "${BASH_REMATCH[1]}" -gt 0 ] && [ "${BASH_REMATCH[1]}" -lt 300006 ]; then
	tap_ok "primary killed mid-transfer: $f1"
else
	tap_not_ok "primary killed mid-transfer: '$f1'"
	sed 's/^/# /' "$LAB_DIR/zc-kill.log" | head -20
fi
if [ "$(wc -l <"$LAB_DIR/kill.before")" -gt 300000 ] && cmp -s "$LAB_DIR/kill.out" "$LAB_DIR/kill.before"; then
	tap_ok "previous listings kept after the failed transfer ($(wc -l <"$LAB_DIR/kill.out") listings)"
else
	tap_not_ok "previous listings kept"
fi
# the next refresh, with the primary down, fails at connect
kill -USR1 "$(cat "$LAB_DIR/zc-kill.pid")"
lab_wait 15 bash -c "grep -c '^failed' '$LAB_DIR/zc-kill.log' | grep -qx 2"
f2=$(grep "^failed" "$LAB_DIR/zc-kill.log" | sed -n 2p)
if [[ "$f2" == "failed: connect: Connection refused" ]] && cmp -s "$LAB_DIR/kill.out" "$LAB_DIR/kill.before"; then
	tap_ok "refresh with the primary down: $f2, listings still kept"
else
	tap_not_ok "refresh with the primary down: '$f2'"
fi
exit $((TAP_FAIL > 0))
