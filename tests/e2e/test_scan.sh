#!/bin/bash
# test_scan.sh - the content gate end to end: swaks and smtp-source in inet,
# moat-smtpd with filters = scan in app, smtp-sink in mx.  GTUBE is refused
# at the dot and never reaches the downstream; clean mail arrives with the
# X-Moat-Scan header; SIGHUP swaps the rules under load without dropping a
# session; a bad rules file on SIGHUP keeps the old rules.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${MOAT_BUILD_DIR:-$root/build}
smtpd=$build/dataplane/smtp/moat-smtpd
. "$root/tests/lab/lab.sh"

tap_plan 18

# --- start-up validation (no lab needed): moat-smtpd -t loads the rules ---
tmpd=$(mktemp -d)
printf 'OK body score 1 /fine/\nLB body score 1 /(?<=a)b/\n' >"$tmpd/bad.rules"
printf 'local_domains = moat.test\nfilters = scan\nscan_rules = %s/bad.rules\n' "$tmpd" >"$tmpd/c.conf"
out=$("$smtpd" -t -c "$tmpd/c.conf" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "$tmpd/bad.rules:2: rule LB: Zero-width" &&
	tap_ok "bad rules file: moat-smtpd refuses to start, file:line and rule" ||
	tap_not_ok "bad rules at start: '$out'"
printf 'local_domains = moat.test\nfilters = scan\n' >"$tmpd/c.conf"
out=$("$smtpd" -t -c "$tmpd/c.conf" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q 'scan needs scan_rules' &&
	tap_ok "filters = scan without scan_rules: refused" || tap_not_ok "no scan_rules: '$out'"
rm -rf "$tmpd"

lab_init
lab_up >/dev/null || { tap_not_ok "lab up"; exit 1; }
lab_sink >/dev/null || { tap_not_ok "smtp-sink"; exit 1; }
lab_sender 192.0.2.55
lab_scan_conf "$LAB_DIR/scan.conf" 'E2E_OLD body reject "old rule says no" /e2e-old-marker/' \
	"scan_threshold = 5"
lab_bg "$NS_APP" smtpd "$smtpd" -c "$LAB_DIR/scan.conf"
if ! lab_wait 20 lab_inet bash -c 'exec 3<>/dev/tcp/198.18.1.1/25'; then
	tap_not_ok "moat-smtpd with filters = scan listens"
	cat "$LAB_DIR/smtpd.log" >&2
	exit 1
fi
tap_ok "moat-smtpd with filters = scan listens"
pid=$(cat "$LAB_DIR/smtpd.pid")
spid=$(pgrep -P "$pid" -x moat-smtpd || echo "$pid")

ls "$LAB_DIR/run/cache"/scan-*.hsdb >/dev/null 2>&1 &&
	tap_ok "compiled rules cached in scan_cache_dir" || tap_not_ok "no cache file written"

ndump() { ls "$LAB_DIR/sink" 2>/dev/null | wc -l; }
send() { # send FILE : swaks transcript
	lab_inet swaks --server 198.18.1.1 --local-interface 192.0.2.55 --helo client.example \
		--from a@example.org --to rcpt@moat.test --data "$1" 2>&1
}
expect() { # expect DESC WANT_REGEX OUTPUT
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then tap_ok "$1"; else
		tap_not_ok "$1: want /$2/"; printf '%s\n' "$3" | sed 's/^/#   /' >&2; fi
}
mkmsg() { # mkmsg FILE SUBJECT BODY-LINE
	printf 'From: a@example.org\r\nTo: rcpt@moat.test\r\nSubject: %s\r\n\r\n%s\r\n' "$2" "$3" >"$1"
}
# nlog ERE - lines of moat-smtpd's log that match; logged ERE N - at least N
# (a refusal is logged before its reply leaves: the session was decided)
nlog() { lab_count "$1" "$LAB_DIR/smtpd.log"; }
logged() { lab_count_ge "$2" "$1" "$LAB_DIR/smtpd.log"; }
# delivered TEXT - a dump holds TEXT (smtp-sink opens the file at MAIL and
# writes through a buffer: a small message shows when complete)
delivered() { grep -rqs -- "$1" "$LAB_DIR/sink"; }
# marker TAG - the positive control of a "nothing relayed" check: a clean
# message from the same client to the same downstream; true once it is
# there.  What was refused before it would be there by then.
marker() {
	mkmsg "$LAB_DIR/marker.eml" "$1" "lunch at noon"
	send "$LAB_DIR/marker.eml" >/dev/null
	lab_wait 10 delivered "$1"
}

# --- GTUBE refused at the dot, nothing relayed ---
n0=$(ndump)
mkmsg "$LAB_DIR/gtube.eml" "gtube-$LAB_ID" \
	'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
frej='result=reject stage=data reason=filter code=550 client=192\.0\.2\.55 '
c0=$(nlog "$frej")
out=$(send "$LAB_DIR/gtube.eml")
expect "GTUBE: 550 5.7.1 naming the rule" '^<\*\* 550 5\.7\.1 .*GTUBE' "$out"
# positive events first: the refusal logged, a later clean message relayed
if lab_wait 5 logged "$frej" $((c0 + 1)) && marker "after-gtube.$LAB_ID"; then
	[ "$(ndump)" -eq $((n0 + 1)) ] && ! grep -rqs "gtube-$LAB_ID" "$LAB_DIR/sink" &&
		tap_ok "GTUBE message not relayed (the refusal logged, a later message relayed)" ||
		tap_not_ok "GTUBE message reached the downstream"
else
	tap_not_ok "GTUBE: no refusal logged or the marker message not relayed"
fi

# --- GTUBE inside a base64 MIME part ---
b64=$(printf 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n' | base64 -w 60)
{
	printf 'From: a@example.org\r\nTo: rcpt@moat.test\r\nSubject: b64-%s\r\n' "$LAB_ID"
	printf 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="xx"\r\n\r\n'
	printf -- '--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n'
	printf -- '--xx\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n'
	printf '%s\r\n' $b64
	printf -- '--xx--\r\n'
} >"$LAB_DIR/b64.eml"
out=$(send "$LAB_DIR/b64.eml")
expect "GTUBE in a base64 part: 550 5.7.1" '^<\*\* 550 5\.7\.1 .*GTUBE' "$out"

# --- clean mail relayed with the verdict header ---
mkmsg "$LAB_DIR/clean.eml" "clean-$LAB_ID" "lunch at noon"
out=$(send "$LAB_DIR/clean.eml")
expect "clean message: 250 from downstream" '^<-  250 ' "$out"
lab_wait 5 delivered "clean-$LAB_ID"
d=$(grep -rl "clean-$LAB_ID" "$LAB_DIR/sink" | head -1)
if [ -n "$d" ] && grep -q '^X-Moat-Scan: score=0.0 threshold=5.0 rules=none' "$d"; then
	tap_ok "clean message relayed with X-Moat-Scan header"
else
	tap_not_ok "clean message: no X-Moat-Scan header in '${d:-no dump}'"
fi

mkmsg "$LAB_DIR/old.eml" "old-$LAB_ID" "e2e-old-marker"
out=$(send "$LAB_DIR/old.eml")
expect "rule from the rules file: 550 with its reply text" '^<\*\* 550 5\.7\.1 old rule says no \(rule E2E_OLD\)' "$out"

# --- a session that ends before the dot is never relayed ---
cut='result=abandon stage=data reason=client_lost code=0 client=192\.0\.2\.55 '
c0=$(nlog "$cut")
lab_inet python3 - "$LAB_ID" <<'PY'
import socket, sys, time
s = socket.create_connection(("198.18.1.1", 25), timeout=10, source_address=("192.0.2.55", 0))
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            return l
reply()
for c in (b"EHLO client.example", b"MAIL FROM:<a@example.org>", b"RCPT TO:<rcpt@moat.test>", b"DATA"):
    s.sendall(c + b"\r\n"); reply()
s.sendall(b"Subject: cut-" + sys.argv[1].encode() + b"\r\n\r\nhalf a message\r\n")
time.sleep(0.3)
s.close()
PY
# positive events first: moat-smtpd logged the lost client, a later
# message from the same client relayed
seen=0
lab_wait 5 logged "$cut" $((c0 + 1)) && marker "after-cut.$LAB_ID" && seen=1
[ $seen = 1 ] && ! grep -rqs "cut-$LAB_ID" "$LAB_DIR/sink" && kill -0 "$spid" 2>/dev/null &&
	tap_ok "session cut before the dot: nothing relayed, moat-smtpd alive" ||
	tap_not_ok "cut session relayed or moat-smtpd died (abandon logged and marker relayed: $seen)"

# --- reload under load: no session dropped, new sessions on new rules ---
n0=$(ndump)
total=3000
lab_inet smtp-source -s 20 -m $total -l 3000 -f a@example.org -t rcpt@moat.test \
	198.18.1.1:25 >"$LAB_DIR/source.log" 2>&1 &
src=$!
# reload once the load is under way
lab_wait 20 bash -c "[ \$(ls '$LAB_DIR/sink' | wc -l) -ge $((n0 + 100)) ]"
{
	cat "$root/dataplane/smtp/rules/default.rules"
	echo 'E2E_NEW body reject "new rule says no" /e2e-new-marker/'
} >"$rules.new"
mv "$rules.new" "$rules"
nh=$(ndump)
kill -0 "$src" 2>/dev/null && running=1 || running=0
kill -HUP "$spid"
wait "$src"
rc=$?
lab_wait 5 bash -c "[ \$(ls '$LAB_DIR/sink' | wc -l) -ge $((n0 + total)) ]"
n1=$(ndump)
if [ $rc -eq 0 ] && [ $((n1 - n0)) -eq $total ] && ! grep -qi 'error\|fatal' "$LAB_DIR/source.log"; then
	tap_ok "SIGHUP during smtp-source (20 sessions): all $total messages delivered"
else
	tap_not_ok "reload under load: rc=$rc, $((n1 - n0)) of $total delivered"
	sed 's/^/#   /' "$LAB_DIR/source.log" | tail -5 >&2
fi
[ $running -eq 1 ] && tap_ok "the reload landed while smtp-source was sending ($((nh - n0)) delivered before it)" ||
	tap_not_ok "smtp-source had already finished at SIGHUP"
lab_wait 20 grep -q 'rules reloaded' "$LAB_DIR/smtpd.log" && tap_ok "moat-smtpd logged the reload" ||
	tap_not_ok "no reload in the log"
mkmsg "$LAB_DIR/new.eml" "new-$LAB_ID" "e2e-new-marker"
out=$(send "$LAB_DIR/new.eml")
expect "after reload: the new rule refuses" '^<\*\* 550 5\.7\.1 new rule says no \(rule E2E_NEW\)' "$out"
out=$(send "$LAB_DIR/old.eml")
expect "after reload: the removed rule no longer refuses" '^<-  250 ' "$out"

# --- a bad rules file on SIGHUP: refused, old rules stay ---
echo 'BROKEN body score 1 /(?<=x)y/' >>"$rules"
kill -HUP "$spid"
lab_wait 20 grep -q "reload failed.*$rules:[0-9]*: rule BROKEN: " "$LAB_DIR/smtpd.log" &&
	tap_ok "bad rules on SIGHUP: refused with file:line and rule id" ||
	tap_not_ok "bad rules: no refusal with file:line in the log"
out=$(send "$LAB_DIR/new.eml")
expect "bad rules on SIGHUP: the previous rules stay live" '^<\*\* 550 5\.7\.1 .*E2E_NEW' "$out"

lab_down
exit $((TAP_FAIL > 0))
