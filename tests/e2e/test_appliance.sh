#!/bin/bash
# test_appliance.sh - moat-smtpd and moat-controld as one appliance in the lab:
# Knot serves a DNSBL zone (q.moat.test) that only moat-smtpd queries live;
# moat-controld (XDP on the app's inet0) knows nothing of it.  A sender
# listed there gets 554 5.7.1 from moat-smtpd, is reported over the control
# socket (smtp.report), shows in `moatctl lookup` with source smtp, and its
# next SYN is dropped by XDP, while an unlisted sender still delivers to
# smtp-sink.  moatctl's relayed SMTP subcommands (smtp stats, rules reload,
# also a failing reload) answer; an operator allow entry beats moat-smtpd's
# DNSBL through its lookup at connect, and a sender listed only in a
# moat-controld live zone (lv.moat.test) is refused through that lookup,
# which installs the answer in the fast path; with moat-controld killed moat-smtpd still
# delivers and refuses, and reconnects when moat-controld returns (reports
# queued meanwhile are sent then).  A client talking before the greeting
# (pregreet) is reported with kind pregreet and dropped by XDP next time,
# unless moat-controld answers allow for it (then it is refused, not reported).
# moat-smtpd here is first moat-smtpd-testfilter (the engine plus the e2e
# test filter, whose reload hook shows up as gen=N in the header it adds),
# then the real moat-smtpd with the Hyperscan content gate (filters = scan).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
SMTPD=$build/tests/e2e/moat-smtpd-testfilter
C="$PY $here/smtpc.py"

ctld_test app 22 "$SMTPD" "$PASS_OBJ" "$PROBE"

probe() { lab_inet $PY "$PROBE" connect "$1" 198.18.1.1 25 2; }
expect() { # expect DESC WANT_REGEX OUTPUT
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then tap_ok "$1"; else
		tap_not_ok "$1: want /$2/"; printf '%s\n' "$3" | sed 's/^/#   /' >&2; fi
}
# deliver SRC TAG - a message from SRC through moat-smtpd; 0 when the sink has it
deliver() {
	lab_inet swaks --server 198.18.1.1 --local-interface "$1" --helo client.example \
		--from a@example.org --to rcpt@moat.test --header "Subject: $2-$LAB_ID" >"$LAB_DIR/swaks-$2.log" 2>&1
	lab_wait 5 grep -rlq "$2-$LAB_ID" "$LAB_DIR/sink"
}
smtp_connected() { [ "$(jget "$(mctl status --json)" "d['smtp_connected']")" = True ]; }

lab_up >/dev/null || { tap_not_ok "lab up"; exit 1; }
for a in 192.0.2.55 192.0.2.77 192.0.2.78 192.0.2.79 192.0.2.80 192.0.2.81 192.0.2.82 192.0.2.56; do lab_sender $a; done
# the veth peer needs an XDP program for native XDP on inet0 to see traffic
ip -n "$NS_INET" link set dev app0 xdpdrv obj "$PASS_OBJ" sec xdp

# mkzone NAME N... - a DNSBL zone listing 192.0.2.N (and the RFC 5782 test point)
mkzone() {
	local z=$1 n
	shift
	{
		printf '$ORIGIN %s.\n$TTL 300\n@ SOA ns.%s. hostmaster.%s. 1 60 30 604800 60\n' "$z" "$z" "$z"
		printf '@ NS ns\nns A 198.18.2.2\n2.0.0.127 A 127.0.0.2\n'
		for n in "$@"; do echo "$n.2.0.192 A 127.0.0.2"; done
	} >"$LAB_DIR/zones/$z.zone"
}
mkdir -p "$LAB_DIR/zones"
# q.moat.test: moat-smtpd's DNSBL; moat-controld is never told about it
mkzone q.moat.test 77 78 79 80
# lv.moat.test: only moat-controld knows it (type = live), moat-smtpd not
mkzone lv.moat.test 81
lab_knot "$LAB_DIR/zones" >/dev/null 2>&1 || { tap_not_ok "knot"; exit 1; }
lab_sink >/dev/null || { tap_not_ok "smtp-sink"; exit 1; }

: >"$LAB_DIR/local.rbl"
cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
socket_owner = root:moat
state_dir = $LAB_DIR/state
resolver = 198.18.2.2@53

[xdp]
interfaces = inet0
pin_dir = $PIN

[policy]
drop_threshold = 1

[zone lv.moat.test]
type = live

[zone empty.local]
type = rbldnsd
file = $LAB_DIR/local.rbl
format = ip4set
EOF
if start_ctld ctld1; then
	tap_ok "moat-controld started, XDP on inet0, no zone lists 192.0.2.77"
else
	tap_not_ok "moat-controld start"; sed 's/^/#   /' "$LAB_DIR/ctld1.log" >&2; exit 1
fi

lab_smtpd_conf "$LAB_DIR/smtpd.conf" "workers = 2
dns_server = 198.18.2.2
dnsbl_zones = q.moat.test*1
spf = no
greet_delay_ms = 200
filters = test
controld_socket = $SOCK
report_action = drop
report_ttl = 600"
MOAT_TEST_RELOAD_FAIL=$LAB_DIR/failreload lab_bg "$NS_APP" smtpd "$SMTPD" -c "$LAB_DIR/smtpd.conf"
if lab_wait 10 lab_inet bash -c 'exec 3<>/dev/tcp/198.18.1.1/25' && lab_wait 10 smtp_connected; then
	tap_ok "moat-smtpd listens in app and said smtp.hello (status smtp_connected)"
else
	tap_not_ok "moat-smtpd start"; sed 's/^/#   /' "$LAB_DIR/smtpd.log" >&2; exit 1
fi

# --- listed only in the query zone: refused, reported, then dropped by XDP
out=$(lab_inet $C --src 192.0.2.77 198.18.1.1 25 R 2>&1)
expect "listed sender: 554 5.7.1 from moat-smtpd naming q.moat.test" '^554 5\.7\.1 .*q\.moat\.test' "$out"
if lab_wait 5 bash -c "[ \"\$($MOATCTL lookup 192.0.2.77 --json | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d[\"action\"], [s[\"source\"] for s in d[\"sources\"]])')\" = \"drop ['smtp']\" ]"; then
	tap_ok "reported: moatctl lookup 192.0.2.77 shows source smtp, action drop"
else
	tap_not_ok "lookup after report: $(mctl lookup 192.0.2.77 --json)"
fi
j=$(mctl list --json)
if [ "$(jget "$j" "[(e['source'],e['ttl_left']>500,e['reason']) for e in d['entries'] if e['prefix'].startswith('192.0.2.77')]")" = \
	"[('smtp', True, 'moat-smtpd: dnsbl q.moat.test 127.0.0.2')]" ]; then
	tap_ok "moatctl list: the smtp entry carries report_ttl and the reason"
else
	tap_not_ok "list: $j"
fi
# (the probe talks first: 192.0.2.56 gets 554 pregreet, and is reported)
g1=$(probe 192.0.2.77) g2=$(probe 192.0.2.56)
if [ "$g1/$g2" = "timeout/connected-reply" ]; then
	tap_ok "next TCP connect of the reported sender times out (XDP drop); unlisted connects"
else
	tap_not_ok "probes: 192.0.2.77=$g1 192.0.2.56=$g2"
fi
deliver 192.0.2.55 clean1 && tap_ok "an unlisted sender still delivers to smtp-sink" ||
	{ tap_not_ok "unlisted delivery"; sed 's/^/#   /' "$LAB_DIR/swaks-clean1.log" >&2; }

# --- relayed SMTP subcommands ----------------------------------------------
j=$(mctl smtp stats --json)
if [ "$(jget "$j" "d['connect.dnsbl']>=1 and d['data.relayed']>=1 and d['controld.reported']>=1 and all(isinstance(v,int) for v in d.values())")" = True ]; then
	tap_ok "moatctl smtp stats --json: flat numbers from moat-smtpd (connect.dnsbl, data.relayed, controld.reported)"
else
	tap_not_ok "smtp stats: $j"
fi
j=$(mctl rules reload --json)
rc=$?
if [ $rc -eq 0 ] && [ "$(jget "$j" "(d['filters'],d['reloaded'])")" = "(1, 1)" ] && deliver 192.0.2.55 gen1 &&
	grep -q '^X-Moat-Test: .* gen=1$' "$(grep -rl "gen1-$LAB_ID" "$LAB_DIR/sink" | head -1)"; then
	tap_ok "moatctl rules reload: the filter's reload hook ran (next message has gen=1)"
else
	tap_not_ok "rules reload: rc=$rc $j"
fi
touch "$LAB_DIR/failreload"
out=$(mctl rules reload 2>&1)
rc=$?
rm -f "$LAB_DIR/failreload"
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q 'filter test: .*failreload exists (old rules kept)'; then
	tap_ok "a failing reload: moatctl exits 1 with moat-smtpd's reason"
else
	tap_not_ok "failing reload: rc=$rc $out"
fi

# --- an operator allow entry beats moat-smtpd's own DNSBL (live lookup) -----
mctl add 192.0.2.80 --action allow --reason customer >/dev/null
if deliver 192.0.2.80 allow1 && [ "$(jget "$(mctl smtp stats --json)" "d['connect.controld_allow']")" = 1 ]; then
	tap_ok "moatctl add --action allow: a sender listed in q.moat.test delivers (lookup at connect)"
else
	tap_not_ok "allow entry"; sed 's/^/#   /' "$LAB_DIR/swaks-allow1.log" >&2
fi

# --- pregreet: refused and reported (kind pregreet), not when allowed ------
out=$(lab_inet $C --src 192.0.2.82 198.18.1.1 25 'S:EHLO early.example\r\n' R 2>&1)
if printf '%s' "$out" | grep -q '^554 5\.5\.1' &&
	lab_wait 5 bash -c "$MOATCTL lookup 192.0.2.82 --json | grep -q '\"source\":\"smtp\"'" &&
	[ "$(jget "$(mctl list --json)" "[e['reason'] for e in d['entries'] if e['prefix'].startswith('192.0.2.82')]")" = \
		"['moat-smtpd: pregreet talked before the greeting']" ] &&
	grep -q 'report=sent kind=pregreet client=192.0.2.82' "$LAB_DIR/smtpd.log" &&
	[ "$(probe 192.0.2.82)" = timeout ]; then
	tap_ok "pregreet: 554 5.5.1, reported (kind pregreet), in moatctl list, next SYN dropped by XDP"
else
	tap_not_ok "pregreet report: $out / $(mctl list --json)"
fi
ex0=$(jget "$(mctl smtp stats --json)" "d.get('controld.report_exempt', 0)")
out=$(lab_inet $C --src 192.0.2.80 198.18.1.1 25 'S:EHLO early.example\r\n' R 2>&1)
if printf '%s' "$out" | grep -q '^554 5\.5\.1' &&
	lab_wait 5 bash -c "[ \$($MOATCTL smtp stats --json | $PY -c 'import json,sys; print(json.load(sys.stdin).get(\"controld.report_exempt\", 0))') -gt $ex0 ]" &&
	grep -q 'report=skipped kind=pregreet client=192.0.2.80 reason=controld_allow' "$LAB_DIR/smtpd.log" &&
	! mctl lookup 192.0.2.80 --json | grep -q '"source":"smtp"'; then
	tap_ok "pregreet from a client moat-controld allows: refused, not reported (controld.report_exempt)"
else
	tap_not_ok "allowed pregreet: $out / $(mctl lookup 192.0.2.80 --json)"
fi

# --- a live zone only moat-controld queries: refused through the lookup ----
# moat-controld installs the live answer itself (with its TTL, 300 s here),
# so the table, the XDP maps and the next SYN agree at once
out=$(lab_inet $C --src 192.0.2.81 198.18.1.1 25 R 2>&1)
lv=$(jget "$(mctl lookup 192.0.2.81 --no-live --json)" "d['action']+' '+d['fastpath_action']+' '+d['sources'][0]['source']")
if printf '%s' "$out" | grep -q '^554 5\.7\.1 .*blocked by moat-controld' &&
	[ "$lv" = "drop drop lv.moat.test" ] && [ "$(probe 192.0.2.81)" = timeout ]; then
	tap_ok "listed only in moat-controld's live zone: 554 via the lookup, installed with its TTL, then dropped by XDP"
else
	tap_not_ok "live zone via lookup: $out / $lv"
fi

# --- moat-controld down: moat-smtpd serves on, then reconnects --------------
kill "$(cat "$LAB_DIR/ctld.pid")"
lab_wait 5 bash -c "! kill -0 $(cat "$LAB_DIR/ctld.pid") 2>/dev/null"
rm -f "$LAB_DIR/ctld.pid"
if deliver 192.0.2.55 down1 && grep -q 'controld: connection to .* lost' "$LAB_DIR/smtpd.log"; then
	tap_ok "moat-controld killed: moat-smtpd notices and still delivers for an unlisted sender"
else
	tap_not_ok "delivery with controld down"; sed 's/^/#   /' "$LAB_DIR/smtpd.log" >&2
fi
out=$(lab_inet $C --src 192.0.2.78 198.18.1.1 25 R 2>&1)
expect "controld down: a listed sender is still refused (554 5.7.1), its report queued" '^554 5\.7\.1 .*q\.moat\.test' "$out"
out=$(mctl smtp stats 2>&1)
rc=$?
[ $rc -eq 3 ] && tap_ok "moatctl smtp stats with moat-controld down: exit 3 (unreachable)" ||
	tap_not_ok "stats with controld down: rc=$rc $out"
if start_ctld ctld2 && lab_wait 40 smtp_connected; then
	tap_ok "moat-controld back: moat-smtpd reconnects (backoff) and says smtp.hello again"
else
	tap_not_ok "no reconnect"; sed 's/^/#   /' "$LAB_DIR/smtpd.log" >&2
fi
if lab_wait 5 bash -c "$MOATCTL lookup 192.0.2.78 --json | grep -q '\"source\":\"smtp\"'" &&
	[ "$(probe 192.0.2.78)" = timeout ]; then
	tap_ok "the report queued while moat-controld was down arrives after the reconnect; XDP drops that sender"
else
	tap_not_ok "queued report: $(mctl lookup 192.0.2.78 --json)"
fi

# --- moat-smtpd gone: relays answer code 6; report_action = tarpit -----------
kill "$(cat "$LAB_DIR/smtpd.pid")"
for _ in $(seq 50); do smtp_connected || break; sleep 0.1; done
out=$(mctl smtp stats 2>&1)
rc=$?
if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q 'moat-smtpd is not connected'; then
	tap_ok "no moat-smtpd: moatctl smtp stats exits 1 with 'not connected' (code 6)"
else
	tap_not_ok "stats without smtpd: rc=$rc $out"
fi
# the real moat-smtpd now, with the Hyperscan content gate
cp "$root/dataplane/smtp/rules/default.rules" "$LAB_DIR/scan.rules"
sed -i -e 's/^report_action = drop$/report_action = tarpit/' -e 's/^filters = test$/filters = scan/' "$LAB_DIR/smtpd.conf"
echo "scan_rules = $LAB_DIR/scan.rules" >>"$LAB_DIR/smtpd.conf"
lab_bg "$NS_APP" smtpd2 "$build/dataplane/smtp/moat-smtpd" -c "$LAB_DIR/smtpd.conf"
lab_wait 10 smtp_connected
out=$(lab_inet $C --src 192.0.2.79 198.18.1.1 25 R 2>&1)
if printf '%s' "$out" | grep -q '^554 5\.7\.1' &&
	lab_wait 5 bash -c "$MOATCTL lookup 192.0.2.79 --json | grep -q '\"action\":\"tarpit\"'" &&
	[ "$(probe 192.0.2.79)" = connected-silent ]; then
	tap_ok "report_action = tarpit: the reported sender's next connect is tarpitted (handshake, then silence)"
else
	tap_not_ok "tarpit: $out $(mctl lookup 192.0.2.79 --json) probe=$(probe 192.0.2.79)"
fi
j=$(mctl rules reload --json)
rc=$?
printf 'BAD body reject "x" /(unclosed/\n' >>"$LAB_DIR/scan.rules"
out=$(mctl rules reload 2>&1)
rc2=$?
if [ $rc -eq 0 ] && [ "$(jget "$j" "(d['filters'],d['reloaded'])")" = "(1, 1)" ] &&
	[ $rc2 -eq 1 ] && printf '%s' "$out" | grep -q 'filter scan: .*(old rules kept)' &&
	deliver 192.0.2.55 afterbad; then
	tap_ok "rules reload reaches the Hyperscan gate; a broken rules file is refused, old rules keep serving"
else
	tap_not_ok "scan reload: rc=$rc $j / rc2=$rc2 $out"
fi
exit $((TAP_FAIL > 0))
