#!/bin/bash
# test_dkim.sh - DKIM and DMARC at end of data, end to end in the lab:
# messages signed here with dkimpy (dkim_cases.py) and keys published in the
# lab's Knot, sent with swaks from inet through moat-smtpd in app to
# smtp-sink in mx.  Each case asserts the reply to the final dot and, for an
# accepted message, the Authentication-Results header the downstream got.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${MOAT_BUILD_DIR:-$root/build}
smtpd=$build/dataplane/smtp/moat-smtpd
. "$root/tests/lab/lab.sh"

tap_plan 53

lab_init
lab_up >/dev/null || { tap_not_ok "lab up"; exit 1; }
mkdir -p "$LAB_DIR/zones"
TAG=$LAB_ID
/usr/bin/python3 "$here/dkim_cases.py" "$LAB_DIR/gen" "$TAG" || { tap_not_ok "dkim_cases.py"; exit 1; }
cp "$LAB_DIR/gen/example.com.zone" "$here/zones/spf.test.zone" "$LAB_DIR/zones/"
lab_knot "$LAB_DIR/zones" >/dev/null 2>&1 || { tap_not_ok "knot"; exit 1; }
# dead.test: SERVFAIL (a DNS temporary error)
lab_knot_servfail dead.test
lab_sink >/dev/null || { tap_not_ok "smtp-sink"; exit 1; }
for a in 192.0.2.55 198.51.100.7; do lab_sender $a; done
mkdir -p "$LAB_DIR/run" && chown moat "$LAB_DIR/run"

conf() { # conf NAME PORT EXTRA...
	local f=$LAB_DIR/$1.conf
	cat >"$f" <<CONF
listen = 198.18.1.1:$2
workers = 2
hostname = mx.moat.test
relay = 198.18.3.2:25
local_domains = moat.test
dns_server = 198.18.2.2
max_conn_per_ip = 2000
relay_command_timeout = 3
relay_data_timeout = 3
stats_file = $LAB_DIR/run/$1.stats
log_level = info
dkim = yes
dmarc = yes
CONF
	shift 2
	for kv in "$@"; do echo "$kv" >>"$f"; done
}
conf a1 25
# a2 also keeps no cache: the positive control of the decoded-key cache
conf a2 2525 "dmarc_trusted_forwarders = 198.51.100.7/32" "dkim_key_cache = 0"
# a3: DKIM and DMARC off, the same messages (the positive control of "moat added the results")
conf a3 2526 "dkim = no" "dmarc = no"
# a4: its DNS server never answers (no such host): the final dot waits
# dkim_dns_timeout_ms, not c-ares' 3 s, and the late answers find no message
conf a4 2527 "dns_server = 198.18.2.77" "spf = no" "dkim_dns_timeout_ms = 500" "dnsbl_timeout_ms = 3000"

# config checks: dmarc needs dkim; a bad action word names the key
printf 'local_domains = moat.test\ndmarc = yes\n' >"$LAB_DIR/bad1.conf"
out=$("$smtpd" -t -c "$LAB_DIR/bad1.conf" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q 'dmarc = yes needs dkim = yes' &&
	tap_ok "dmarc without dkim refused at start-up" || tap_not_ok "dmarc without dkim: '$out'"
printf 'local_domains = moat.test\ndkim = yes\ndmarc_reject_action = bounce\n' >"$LAB_DIR/bad2.conf"
out=$("$smtpd" -t -c "$LAB_DIR/bad2.conf" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q 'bad2.conf:3: dmarc_reject_action must be accept, reject or tempfail' &&
	tap_ok "bad action refused with file:line" || tap_not_ok "bad action: '$out'"

for n in a1 a2 a3 a4; do lab_bg "$NS_APP" $n "$smtpd" -c "$LAB_DIR/$n.conf"; done
for p in 25 2525 2526 2527; do
	lab_wait 10 lab_inet bash -c "exec 3<>/dev/tcp/198.18.1.1/$p" || { tap_not_ok "moat-smtpd :$p listens"; cat "$LAB_DIR"/a*.log >&2; exit 1; }
done
tap_ok "four moat-smtpd instances listen"

# send CASE [MAILFROM [SRC [PORT]]] - swaks with the case's message; its transcript
send() {
	lab_inet swaks --server 198.18.1.1 --port "${4:-25}" --local-interface "${3:-192.0.2.55}" --helo client.example \
		--from "${2:-a@pass.spf.test}" --to rcpt@moat.test --data "$LAB_DIR/gen/cases/$1.eml" 2>&1
}
# dump CASE - the downstream's file holding the case's message
dump() { grep -rls -- "^Message-ID: <$1\.$TAG@example.com>" "$LAB_DIR/sink" | head -1; }
# ar CASE - moat's Authentication-Results header of the delivered case, unfolded
ar() {
	local d
	d=$(dump "$1")
	[ -n "$d" ] || return 1
	awk '/^Authentication-Results: mx\.moat\.test;/ {f = 1; printf "%s", $0; next}
	     f && /^[ \t]/ {printf " %s", $0; next} {f = 0}' "$d" | tr -d '\r' | tr -s ' \t' '  '
}
# check DESC CASE REPLY_ERE AR_ERE... - the reply, then every ERE in the A-R
check() {
	local desc=$1 c=$2 want=$3 out got re ok=1
	shift 3
	out=$(send "$c" "${MF:-a@pass.spf.test}" "${SRC:-192.0.2.55}" "${PORT:-25}")
	if ! printf '%s\n' "$out" | grep -Eq -- "^<[-*~]+ +$want"; then
		tap_not_ok "$desc: reply, want /$want/"; printf '%s\n' "$out" | grep '^<' | sed 's/^/#   /' >&2
		return
	fi
	if [ $# -gt 0 ]; then
		lab_wait 5 dump "$c" >/dev/null
		got=$(ar "$c")
		for re in "$@"; do printf '%s\n' "$got" | grep -Eq -- "$re" || { ok=0; break; }; done
		[ $ok -eq 1 ] || { tap_not_ok "$desc: A-R, want /$re/"; echo "#   got: $got" >&2; return; }
	fi
	tap_ok "$desc"
}
# refused CASE - the case is not at the downstream, checked after a marker
# from the same client through the same instance has arrived
refused() {
	local mout
	mout=$(send marker a@pass.spf.test "${SRC:-192.0.2.55}" "${PORT:-25}")
	lab_wait 10 dump marker >/dev/null && [ -z "$(dump "$1")" ]
}
ndkim() { ar "$1" | grep -o 'dkim=' | wc -l; }

# --- DKIM results (From example.com: p=none, so DMARC passes with DKIM) ---
check "relaxed/relaxed rsa-sha256: pass" rr '250 ' 'dkim=pass header.d=example.com header.s=rsa header.a=rsa-sha256' 'dmarc=pass header.from=example.com' 'spf=pass smtp.mailfrom=a@pass.spf.test'
check "simple/simple rsa-sha256: pass" ss '250 ' 'dkim=pass header.d=example.com header.s=rsa'
check "ed25519-sha256 (RFC 8463): pass" ed '250 ' 'dkim=pass header.d=example.com header.s=ed header.a=ed25519-sha256'
check "two signatures, one broken: one pass, one fail" two '250 ' 'dkim=pass header.d=example.com header.s=ed' 'dkim=fail \(signature did not verify\) header.d=example.com header.s=rsa'
check "body changed after signing: fail" body '250 ' 'dkim=fail \(body hash did not verify\) header.d=example.com'
check "signed header changed: fail" hdr '250 ' 'dkim=fail \(signature did not verify\)'
check "l= with text appended: pass (l= honoured)" len '250 ' 'dkim=pass header.d=example.com header.s=rsa'
check "key missing: permerror" nokey '250 ' 'dkim=permerror \([^)]*\) header.d=example.com header.s=nokey'
check "key revoked (empty p=): permerror" revoked '250 ' 'dkim=permerror \([^)]*revoked[^)]*\) header.d=example.com header.s=revoked'
check "16 kbit key: permerror (key too large), not used" bigkey '250 ' 'dkim=permerror \(key too large\) header.d=example.com header.s=big'
check "key lookup SERVFAIL, signer not aligned with From: temperror, accepted" keytemp '250 ' 'dkim=temperror \(key not retrieved\) header.d=x.dead.test' 'dmarc=fail \(p=none\)'
check "bad key record: permerror" badkey '250 ' 'dkim=permerror \([^)]*\) header.d=example.com header.s=bad'
check "malformed DKIM-Signature (no s=, bad bh=): permerror, message accepted" malformed '250 ' 'dkim=permerror \([^)]*\) header.d=example.com'
t0=$(date +%s%N)
check "100 signatures: the good one passes" many '250 ' 'dkim=pass header.d=example.com header.s=rsa'
t1=$(date +%s%N)
n=$(ndkim many)
[ "$n" -le 5 ] && [ "$n" -ge 1 ] && [ $(((t1 - t0) / 1000000)) -lt 5000 ] &&
	tap_ok "100 signatures: $n evaluated (max 5), answered in $(((t1 - t0) / 1000000)) ms" ||
	tap_not_ok "100 signatures: $n results in A-R, $(((t1 - t0) / 1000000)) ms"
lab_wait 5 lab_count_ge 1 'dkim_ignored=95' "$LAB_DIR/a1.log" &&
	lab_wait 5 bash -c "grep -Eq '^dkim.signatures_ignored (9[5-9]|[1-9][0-9]{2,})' '$LAB_DIR/run/a1.stats'" &&
	tap_ok "100 signatures: 95 ignored, logged and counted (dkim.signatures_ignored)" ||
	tap_not_ok "100 signatures: no dkim_ignored=95 log line / counter"
check "16 KB header field: verified, bounded" bighdr '250 ' 'dkim=pass header.d=example.com'
check "forged A-R with moat's authserv-id removed" forged '250 ' 'dkim=none'
d=$(dump forged)
[ -n "$d" ] && [ "$(grep -c '^Authentication-Results: mx.moat.test' "$d")" = 1 ] && ! grep -q 'dkim=pass header.d=example.com' "$d" &&
	tap_ok "forged A-R: only moat's own header reached the downstream" || tap_not_ok "forged A-R still there"

# --- DMARC ---
out=$(send rej)
printf '%s\n' "$out" | grep -Eq '^<\*\* +550 5\.7\.1 .*DMARC policy of rej\.example\.com' &&
	tap_ok "p=reject, not aligned: 550 5.7.1 naming the domain" ||
	{ tap_not_ok "p=reject: reply"; printf '%s\n' "$out" | grep '^<' | sed 's/^/#   /' >&2; }
refused rej && tap_ok "p=reject: nothing reached the downstream (marker did)" || tap_not_ok "p=reject: delivered"
lab_count_ge 1 'result=reject stage=data reason=dmarc_reject code=550' "$LAB_DIR/a1.log" &&
	tap_ok "p=reject: logged result=reject reason=dmarc_reject" || tap_not_ok "p=reject: no log line"
MF=x@rej.example.com check "p=reject, aligned through SPF only: pass" rejspf '250 ' 'spf=pass smtp.mailfrom=x@rej.example.com' 'dkim=none' 'dmarc=pass header.from=rej.example.com'
check "p=reject, aligned through DKIM only: pass" rejdkim '250 ' 'dkim=pass header.d=rej.example.com' 'dmarc=pass header.from=rej.example.com'
check "p=quarantine, not aligned: accepted (default), dmarc=fail" quar '250 ' 'dmarc=fail \(p=quarantine, accepted\) header.from=quar.example.com'
check "p=none, not aligned: accepted, dmarc=fail" non '250 ' 'dmarc=fail \(p=none\) header.from=non.example.com'
MF=x@mail.relax.example.com check "relaxed alignment: subdomain MAIL FROM aligns" relax '250 ' 'dmarc=pass header.from=relax.example.com'
out=$(MF=x@mail.strict.example.com; send strict "$MF")
printf '%s\n' "$out" | grep -Eq '^<\*\* +550 5\.7\.1 .*strict\.example\.com' &&
	tap_ok "strict alignment (aspf=s): subdomain MAIL FROM does not align, 550" ||
	{ tap_not_ok "strict alignment"; printf '%s\n' "$out" | grep '^<' | sed 's/^/#   /' >&2; }
out=$(send orgsp)
printf '%s\n' "$out" | grep -Eq '^<\*\* +550 5\.7\.1 .*nosuch\.example\.com' &&
	tap_ok "no record at the From domain: organizational domain's sp=reject applies, 550" ||
	{ tap_not_ok "org domain sp="; printf '%s\n' "$out" | grep '^<' | sed 's/^/#   /' >&2; }
out=$(send temp)
printf '%s\n' "$out" | grep -Eq '^<\*\* +451 4\.7\.5 .*x\.dead\.test' &&
	tap_ok "DMARC record lookup SERVFAIL: 451 4.7.5" ||
	{ tap_not_ok "temperror"; printf '%s\n' "$out" | grep '^<' | sed 's/^/#   /' >&2; }
SRC=198.51.100.7 PORT=2525 check "trusted forwarder: p=reject failure accepted, said so" fwd '250 ' 'dmarc=fail \(p=reject, not applied: trusted forwarder\)'
check "pct=0: p=reject not sampled, quarantine applied, accepted and said so" pct0 '250 ' 'dmarc=fail \(p=reject, pct=0: not sampled, p=quarantine applied, accepted\) header.from=pct0.example.com'
lab_wait 5 bash -c "grep -Eq '^dmarc.pct_sampled_out [1-9]' '$LAB_DIR/run/a1.stats'" &&
	tap_ok "pct=0: counted (dmarc.pct_sampled_out)" || tap_not_ok "pct=0: no dmarc.pct_sampled_out counter"
out=$(send twofrom)
printf '%s\n' "$out" | grep -Eq '^<\*\* +550 5\.7\.1 Message has more than one From header field' &&
	tap_ok "two From fields (the first aligned and signed): 550 5.7.1" ||
	{ tap_not_ok "two From fields: reply"; printf '%s\n' "$out" | grep '^<' | sed 's/^/#   /' >&2; }
refused twofrom && tap_ok "two From fields: nothing reached the downstream (marker did)" || tap_not_ok "two From fields: delivered"
out=$(send twofrom a@pass.spf.test 192.0.2.55 2526)
printf '%s\n' "$out" | grep -Eq '^<-* +250 ' && tap_ok "two From fields, DMARC off (a3): accepted (the control)" ||
	tap_not_ok "two From fields refused with dmarc = no"
out=$(send boxes1)
printf '%s\n' "$out" | grep -Eq '^<\*\* +550 5\.7\.1 .*DMARC policy of rej\.example\.com' &&
	tap_ok "two mailboxes of one domain in one From: that domain's p=reject, 550" ||
	{ tap_not_ok "two mailboxes, one domain"; printf '%s\n' "$out" | grep '^<' | sed 's/^/#   /' >&2; }
check "mailboxes of two domains in one From: permerror, accepted" boxes2 '250 ' 'dmarc=permerror \(From addresses of several domains\)'
out=$(send fwd a@pass.spf.test 192.0.2.55 2525)
printf '%s\n' "$out" | grep -Eq '^<\*\* +550 5\.7\.1' && tap_ok "same instance, another client: 550" ||
	tap_not_ok "forwarder list applied to everyone"

# --- DNS silent: bounded wait at the final dot ---
t0=$(date +%s%N)
out=$(send rr a@pass.spf.test 192.0.2.55 2527)
ms=$((($(date +%s%N) - t0) / 1000000))
printf '%s\n' "$out" | grep -Eq '^<\*\* +451 4\.7\.5 .*example\.com' && [ "$ms" -ge 400 ] && [ "$ms" -lt 2500 ] &&
	tap_ok "DNS silent: 451 4.7.5 after dkim_dns_timeout_ms ($ms ms)" ||
	{ tap_not_ok "DNS silent: $ms ms"; printf '%s\n' "$out" | grep '^<' | sed 's/^/#   /' >&2; }
lab_wait 5 lab_count_ge 1 'result=reject stage=data reason=auth_temperror code=451' "$LAB_DIR/a4.log" &&
	lab_wait 5 bash -c "grep -q '^data.auth_dns_timeout 1' '$LAB_DIR/run/a4.stats'" &&
	tap_ok "DNS silent: logged and counted (data.auth_dns_timeout)" || tap_not_ok "DNS silent: no log line/counter"
# c-ares gives up 3 s later: the answers of a message already refused are dropped
lab_wait 10 bash -c "grep -Eq '^dmarc.dns_temperror [1-9]' '$LAB_DIR/run/a4.stats'" &&
	kill -0 "$(cat "$LAB_DIR/a4.pid")" && { out=$(send rr a@pass.spf.test 192.0.2.55 2527); true; } &&
	printf '%s\n' "$out" | grep -Eq '^<\*\* +451 4\.7\.5' &&
	tap_ok "late DNS timeouts after the message was refused: dropped, the next message is served" ||
	tap_not_ok "late DNS answers"

# --- off: the same messages pass untouched by DKIM/DMARC ---
out=$(send rej a@pass.spf.test 192.0.2.55 2526)
printf '%s\n' "$out" | grep -Eq '^<- +250 ' && tap_ok "dkim = no: the p=reject message is relayed" || tap_not_ok "dkim = no: refused"
lab_wait 5 bash -c "grep -rqs 'Subject: rej-$TAG' '$LAB_DIR/sink'"
d=$(grep -rls "Subject: rej-$TAG" "$LAB_DIR/sink" | head -1)
[ -n "$d" ] && grep -q 'spf=pass' "$d" && ! grep -q 'dkim=\|dmarc=' "$d" &&
	tap_ok "dkim = no: A-R has spf only" || tap_not_ok "dkim = no: A-R wrong"

# --- key cache: the second rr message asks no key (counter) ---
before=$(grep -s '^dkim.cache_hit ' "$LAB_DIR/run/a1.stats" | awk '{print $2}')
check "a key from the cache still verifies" rr '250 ' 'dkim=pass'
lab_wait 5 bash -c "[ \"\$(grep -s '^dkim.cache_hit ' '$LAB_DIR/run/a1.stats' | awk '{print \$2}')\" -gt ${before:-0} ]" &&
	tap_ok "key cache hit counted (dkim.cache_hit)" || tap_not_ok "no cache hit"
# the decoded key is cached too: six more rr messages, at most one decoding
# per worker (2) though all six pass (without the cache: six)
astat() { grep -s "^$1 " "$LAB_DIR/run/a1.stats" | awk '{print $2}'; }
lab_wait 5 bash -c "[ \"\$(grep -s '^dkim.pass ' '$LAB_DIR/run/a1.stats' | awk '{print \$2}')\" -ge 1 ]"
pass0=$(astat dkim.pass) dec0=$(astat dkim.key_decoded) nok=0
for i in 1 2 3 4 5 6; do # the reply to the final dot: the last before QUIT's
	out=$(send rr)
	printf '%s\n' "$out" | grep '^<' | tail -2 | head -1 | grep -Eq '^<- +250 ' && nok=$((nok + 1))
done
lab_wait 5 bash -c "[ \"\$(grep -s '^dkim.pass ' '$LAB_DIR/run/a1.stats' | awk '{print \$2}')\" -ge $((${pass0:-0} + 6)) ]" &&
	[ "$nok" = 6 ] && tap_ok "six repeat messages: 250, dkim.pass +6" ||
	tap_not_ok "six repeat messages: $nok accepted, dkim.pass ${pass0:-?} -> $(astat dkim.pass)"
dec1=$(astat dkim.key_decoded)
[ -n "$dec0" ] && [ -n "$dec1" ] && [ $((dec1 - dec0)) -le 2 ] &&
	tap_ok "decoded keys cached: dkim.key_decoded $dec0 -> $dec1 for six messages" ||
	tap_not_ok "decoded keys not cached: dkim.key_decoded ${dec0:-none} -> ${dec1:-none}"
# the control: a2 (dkim_key_cache = 0) decodes the key for every message
a2stat() { grep -s "^$1 " "$LAB_DIR/run/a2.stats" | awk '{print $2}'; }
d0=$(a2stat dkim.key_decoded)
for i in 1 2 3; do send rr a@pass.spf.test 192.0.2.55 2525 >/dev/null; done
lab_wait 5 bash -c "[ \"\$(grep -s '^dkim.key_decoded ' '$LAB_DIR/run/a2.stats' | awk '{print \$2}')\" -ge $((${d0:-0} + 3)) ]" &&
	tap_ok "control, no cache (dkim_key_cache = 0): a decoding per message" ||
	tap_not_ok "control, no cache: dkim.key_decoded ${d0:-none} -> $(a2stat dkim.key_decoded)"

for n in a1 a2 a3 a4; do
	kill -0 "$(cat "$LAB_DIR/$n.pid")" 2>/dev/null || { tap_not_ok "moat-smtpd $n died"; cat "$LAB_DIR/$n.log" >&2; }
done
tap_ok "no instance died"
exit $((TAP_FAIL > 0))
