#!/bin/bash
# test_av.sh - the antivirus check end to end: swaks in inet, moat-smtpd in
# app with a real clamd beside it (its own clamd.conf and a database the
# test makes: clamdb.py, one .ndb body signature for the EICAR string),
# smtp-sink in mx.  EICAR in a plain body, a base64 attachment and a nested
# multipart is refused at the dot, over FILDES (unix socket, in-memory and
# spilled messages) and INSTREAM (TCP); clean mail is relayed; clamd
# stopped (SIGSTOP: slow) and killed (down) give 451, or a header in the
# pass mode; an old database raises the age alarm.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${MOAT_BUILD_DIR:-$root/build}
smtpd=$build/dataplane/smtp/moat-smtpd
. "$root/tests/lab/lab.sh"

tap_plan 30

# --- start-up validation (no lab needed) ---
tmpd=$(mktemp -d)
printf 'local_domains = moat.test\nclamd = /run/clamd.sock\nclamd_unavailable = accept\n' >"$tmpd/c.conf"
out=$("$smtpd" -t -c "$tmpd/c.conf" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "c.conf:3: clamd_unavailable must be tempfail or pass" &&
	tap_ok "bad clamd_unavailable: refused with file:line and reason" || tap_not_ok "clamd_unavailable: '$out'"
printf 'local_domains = moat.test\nclamd_mode = fildes\nclamd = 127.0.0.1:3310\n' >"$tmpd/c.conf"
out=$("$smtpd" -t -c "$tmpd/c.conf" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "c.conf:3: clamd: clamd_mode = fildes needs a unix socket" &&
	tap_ok "clamd_mode = fildes over TCP: refused" || tap_not_ok "fildes over TCP: '$out'"
rm -rf "$tmpd"

lab_init
lab_up >/dev/null || { tap_not_ok "lab up"; exit 1; }
lab_sink >/dev/null || { tap_not_ok "smtp-sink"; exit 1; }
lab_sender 192.0.2.55
mkdir -p "$LAB_DIR/run" "$LAB_DIR/clamdb" && chown moat "$LAB_DIR/run"

# clamd: a database 30 days old (the age alarm), both sockets, in app
python3 "$here/clamdb.py" "$LAB_DIR/clamdb" --age-days 30 || { tap_not_ok "clamdb.py"; exit 1; }
cat >"$LAB_DIR/clamd.conf" <<CONF
Foreground yes
DatabaseDirectory $LAB_DIR/clamdb
LocalSocket $LAB_DIR/run/clamd.sock
LocalSocketGroup moat
LocalSocketMode 660
TCPSocket 3310
TCPAddr 127.0.0.1
# below moat-smtpd's max_message_size (200000) on purpose: a 150 KB message
# over INSTREAM is the clamd error case (docs: StreamMaxLength must be at
# least max_message_size); FILDES is not bound by it
StreamMaxLength 100K
MaxThreads 4
LogTime yes
CONF
t0=$(date +%s%N)
lab_bg "$NS_APP" clamd clamd -c "$LAB_DIR/clamd.conf"
clamd_up() { lab_app python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1]); s.send(b"zPING\0")
sys.exit(s.recv(16) != b"PONG\0")' "$LAB_DIR/run/clamd.sock"; }
if lab_wait 60 clamd_up; then
	tap_ok "clamd answers PING with the lab database ($(( ($(date +%s%N) - t0) / 1000000 )) ms to start)"
else
	tap_not_ok "clamd did not start"
	cat "$LAB_DIR/clamd.log" >&2
	exit 1
fi
cpid=$(cat "$LAB_DIR/clamd.pid")
cpid=$(pgrep -P "$cpid" -x clamd || echo "$cpid")

conf() { # conf NAME PORT EXTRA...
	local f=$LAB_DIR/$1.conf
	cat >"$f" <<CONF
listen = 198.18.1.1:$2
workers = 2
hostname = mx.moat.test
relay = 198.18.3.2:25
local_domains = moat.test
spf = no
max_conn_per_ip = 2000
max_message_size = 200000
stats_file = $LAB_DIR/run/$1.stats
log_level = info
CONF
	shift 2
	for kv in "$@"; do echo "$kv" >>"$f"; done
}
# a1: FILDES over the unix socket; messages past 4 KB spill to a file
MPORT=$((20000 + RANDOM % 20000))
conf a1 25 "clamd = $LAB_DIR/run/clamd.sock" "clamd_timeout_ms = 1500" "spill_threshold = 4096" \
	"clamd_db_max_age_h = 168" "clamd_db_check_s = 1" "metrics_listen = 127.0.0.1:$MPORT"
# a2: INSTREAM over TCP, from memory or the spill file; a database alarm
# threshold it does not reach
conf a2 2525 "clamd = 127.0.0.1:3310" "clamd_timeout_ms = 1500" "spill_threshold = 4096" "clamd_db_max_age_h = 1000" "metrics_listen = off"
# a3: a clamd address nobody listens on, pass mode
conf a3 2526 "clamd = 127.0.0.1:3" "clamd_unavailable = pass" "metrics_listen = off"
for n in a1 a2 a3; do lab_bg "$NS_APP" $n "$smtpd" -c "$LAB_DIR/$n.conf"; done
for p in 25 2525 2526; do
	if ! lab_wait 20 lab_inet bash -c "exec 3<>/dev/tcp/198.18.1.1/$p"; then
		tap_not_ok "moat-smtpd :$p listens"
		cat "$LAB_DIR"/a*.log >&2
		exit 1
	fi
done
tap_ok "three moat-smtpd instances with clamd listen"

ndump() { ls "$LAB_DIR/sink" 2>/dev/null | wc -l; }
send() { # send PORT FILE : swaks transcript
	lab_inet swaks --server 198.18.1.1 --port "$1" --local-interface 192.0.2.55 --helo client.example \
		--from a@example.org --to rcpt@moat.test --data "$2" 2>&1
}
delivered() { grep -rqs -- "$1" "$LAB_DIR/sink"; }
logged() { lab_count_ge "$3" "$2" "$LAB_DIR/$1.log"; } # logged INST ERE N
nlog() { lab_count "$2" "$LAB_DIR/$1.log"; }
counter() { awk -v k="$2" '$1 == k { print $2 }' "$LAB_DIR/run/$1.stats" 2>/dev/null; }
# mkmsg KIND SUBJECT FILE - plain | b64 | nested | clean
mkmsg() {
	python3 - "$@" <<'PY'
import sys
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
kind, subj, path = sys.argv[1:4]
eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
filler = "\n".join("line %d of a long and harmless report" % i for i in range(300))
def att():
    a = MIMEApplication(eicar.encode(), "octet-stream")  # base64
    a.add_header("Content-Disposition", "attachment", filename="eicar.com")
    return a
if kind in ("plain", "clean"):
    m = MIMEText("hello\n" + (eicar if kind == "plain" else "lunch at noon") + "\n")
elif kind == "b64":
    m = MIMEMultipart("mixed")
    m.attach(MIMEText("see the attachment\n" + filler + "\n"))
    m.attach(att())
else:  # nested: mixed > (alternative, rfc822 > mixed > alternative > base64)
    inner = MIMEMultipart("mixed")
    alt2 = MIMEMultipart("alternative")
    alt2.attach(MIMEText("inner text\n"))
    alt2.attach(att())
    inner.attach(alt2)
    inner["Subject"] = "forwarded"
    m = MIMEMultipart("mixed")
    alt = MIMEMultipart("alternative")
    alt.attach(MIMEText("plain\n"))
    alt.attach(MIMEText("<p>html</p>\n", "html"))
    m.attach(alt)
    m.attach(MIMEMessage(inner))
m["From"] = "a@example.org"
m["To"] = "rcpt@moat.test"
m["Subject"] = subj
open(path, "w", newline="\r\n").write(m.as_string())
PY
}
# marker PORT TAG - the positive control of a "nothing relayed" check: a
# clean message through the same instance to the same downstream
marker() {
	mkmsg clean "$2" "$LAB_DIR/marker.eml"
	send "$1" "$LAB_DIR/marker.eml" >/dev/null
	lab_wait 10 delivered "$2"
}

# --- the database-age alarm: a1's limit is 7 days, a2's 1000 h ---
if lab_wait 10 logged a1 'event=av_db_stale clamd=.* age_h=(719|720|721) max_age_h=168 version="ClamAV [0-9.]+/7/' 1 &&
	lab_wait 5 bash -c "[ \"\$(awk '\$1 == \"av.db_stale\" {print \$2}' $LAB_DIR/run/a1.stats)\" -ge 1 ]"; then
	tap_ok "database 30 days old, max 168 h: av_db_stale logged and counted"
else
	tap_not_ok "no database-age alarm on a1"
	grep -i av_db "$LAB_DIR/a1.log" | sed 's/^/#   /' >&2
fi
if lab_wait 10 logged a2 'event=av_db_check result=ok .*age_h=(719|720|721) max_age_h=1000' 1 &&
	[ "$(nlog a2 av_db_stale)" -eq 0 ]; then
	tap_ok "same database, max 1000 h: checked (age 720 h), no alarm"
else
	tap_not_ok "a2: database check"
fi
stale=$(nlog a1 av_db_stale)
lab_wait 5 logged a1 'event=av_db_stale' $((stale + 1)) &&
	tap_ok "the check repeats every clamd_db_check_s" || tap_not_ok "no second database check on a1"

# --- EICAR refused at the dot, over FILDES (a1) and INSTREAM (a2) ---
vrej='result=reject stage=data reason=virus code=550 client=192\.0\.2\.55 '
for inst in a1:25 a2:2525; do
	n=${inst%%:*} port=${inst##*:}
	for kind in plain b64 nested; do
		c0=$(nlog $n "$vrej")
		mkmsg $kind "$kind-$n-$LAB_ID" "$LAB_DIR/$kind.eml"
		out=$(send $port "$LAB_DIR/$kind.eml")
		tap_expect "$n: EICAR ($kind): 550 5.7.1 naming the signature" \
			'^<\*\* +550 5\.7\.1 Message rejected: virus found: Moat\.Test\.EICAR' "$out"
		if lab_wait 5 logged $n "$vrej" $((c0 + 1)) && marker $port "after-$kind-$n.$LAB_ID"; then
			! delivered "$kind-$n-$LAB_ID" && tap_ok "$n: EICAR ($kind) not relayed (a later clean message was)" ||
				tap_not_ok "$n: EICAR ($kind) reached the downstream"
		else
			tap_not_ok "$n: EICAR ($kind): no refusal logged or the marker not relayed"
		fi
	done
done
# the spilled message went through the file, the small ones through a memfd;
# the stats file is a periodic snapshot, so wait for the counter to show it
spilled() { [ "$(counter a1 data.spilled)" -ge 1 ] 2>/dev/null && [ "$(counter a2 data.spilled)" -ge 1 ] 2>/dev/null; }
lab_wait 5 spilled &&
	tap_ok "a spilled message scanned over FILDES (a1) and INSTREAM (a2)" ||
	tap_not_ok "no message spilled (data.spilled a1 $(counter a1 data.spilled) a2 $(counter a2 data.spilled))"

# --- clamd answers an error (INSTREAM over StreamMaxLength): 451 ---
bigmsg() { # bigmsg SUBJECT FILE - 150 KB of text
	python3 -c 'import sys
body = "".join("line %d of a large and harmless report\r\n" % i for i in range(4000))
open(sys.argv[2], "w").write("From: a@example.org\r\nTo: rcpt@moat.test\r\nSubject: %s\r\n\r\n%s" % (sys.argv[1], body))' "$@"
}
bigmsg "big-a2-$LAB_ID" "$LAB_DIR/big2.eml"
c0=$(nlog a2 'reason=av_error code=451')
out=$(send 2525 "$LAB_DIR/big2.eml")
if printf '%s\n' "$out" | grep -Eq '^<\*\* +451 4\.7\.1 Virus scan unavailable' &&
	lab_wait 5 logged a2 'reason=av_error code=451' $((c0 + 1)) &&
	grep -q 'event=av_scan result=error .*detail="INSTREAM size limit exceeded. ERROR"' "$LAB_DIR/a2.log"; then
	tap_ok "a2: 150 KB over INSTREAM, clamd's StreamMaxLength 100K: clamd's error logged, 451 4.7.1"
else
	tap_not_ok "a2: INSTREAM size limit: $(printf '%s' "$out" | grep '^<\*\*' | tail -1)"
	grep av_scan "$LAB_DIR/a2.log" | sed 's/^/#   /' >&2
fi
# positive control: the same size over FILDES (no stream limit) is relayed,
# and by then the refused one would have been there
bigmsg "big-a1-$LAB_ID" "$LAB_DIR/big1.eml"
out=$(send 25 "$LAB_DIR/big1.eml")
printf '%s\n' "$out" | grep -q '^<-  250 ' && lab_wait 5 delivered "big-a1-$LAB_ID" && ! delivered "big-a2-$LAB_ID" &&
	tap_ok "a1: 150 KB over FILDES scanned clean and relayed; a2's refused copy is not downstream" ||
	tap_not_ok "150 KB: FILDES copy not relayed or the refused one was"

# --- clean mail relayed, no scan header ---
mkmsg clean "clean-$LAB_ID" "$LAB_DIR/clean.eml"
out=$(send 25 "$LAB_DIR/clean.eml")
if printf '%s\n' "$out" | grep -q '^<-  250 ' && lab_wait 5 delivered "clean-$LAB_ID" &&
	! grep -rqs '^X-Moat-Virus-Scan' $(grep -rl "clean-$LAB_ID" "$LAB_DIR/sink"); then
	tap_ok "clean message: 250, relayed without an X-Moat-Virus-Scan header"
else
	tap_not_ok "clean message"
fi

# --- clamd unreachable, pass mode: relayed with the header ---
mkmsg clean "pass-$LAB_ID" "$LAB_DIR/pass.eml"
out=$(send 2526 "$LAB_DIR/pass.eml")
d=
lab_wait 5 delivered "pass-$LAB_ID" && d=$(grep -rl "pass-$LAB_ID" "$LAB_DIR/sink" | head -1)
if printf '%s\n' "$out" | grep -q '^<-  250 ' && [ -n "$d" ] &&
	grep -q '^X-Moat-Virus-Scan: unavailable (unavailable)' "$d"; then
	tap_ok "clamd unreachable, clamd_unavailable = pass: relayed with X-Moat-Virus-Scan: unavailable"
else
	tap_not_ok "pass mode: '$(printf '%s' "$out" | grep '<-  [0-9]' | tail -1)' dump '${d:-none}'"
fi

# --- clamd slow (SIGSTOP): the deadline gives 451 ---
kill -STOP "$cpid"
c0=$(nlog a1 'reason=av_timeout code=451')
mkmsg clean "slow-$LAB_ID" "$LAB_DIR/slow.eml"
t0=$(date +%s%N)
out=$(send 25 "$LAB_DIR/slow.eml")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$cpid"
tap_expect "clamd stopped: 451 4.7.1 after the deadline (${ms} ms, clamd_timeout_ms 1500)" \
	'^<\*\* +451 4\.7\.1 Virus scan unavailable' "$out"
if lab_wait 5 logged a1 'reason=av_timeout code=451' $((c0 + 1)) && marker 25 "after-slow.$LAB_ID"; then
	! delivered "slow-$LAB_ID" && tap_ok "clamd slow: message not relayed; clamd resumed, the next one is" ||
		tap_not_ok "clamd slow: the message reached the downstream"
else
	tap_not_ok "clamd slow: no av_timeout logged or no recovery"
fi

# --- clamd down: 451 over both transports ---
kill "$cpid"
lab_wait 10 bash -c "! kill -0 $cpid"
for inst in a1:25 a2:2525; do
	n=${inst%%:*} port=${inst##*:}
	mkmsg clean "down-$n-$LAB_ID" "$LAB_DIR/down.eml"
	c0=$(nlog $n 'reason=av_unavailable code=451')
	out=$(send $port "$LAB_DIR/down.eml")
	if printf '%s\n' "$out" | grep -Eq '^<\*\* +451 4\.7\.1 Virus scan unavailable' &&
		lab_wait 5 logged $n 'reason=av_unavailable code=451' $((c0 + 1)) &&
		marker 2526 "after-down-$n.$LAB_ID" && ! delivered "down-$n-$LAB_ID"; then
		tap_ok "$n: clamd down: 451 4.7.1, not relayed"
	else
		tap_not_ok "$n: clamd down"
		printf '%s\n' "$out" | sed 's/^/#   /' >&2
	fi
done

# --- counters ---
# each instance's stats file is a once-a-second snapshot: wait for all three
counters_read() {
	v1=$(counter a1 av.virus) c1=$(counter a1 av.clean) t1=$(counter a1 av.timeout) u1=$(counter a1 av.unavailable)
	v2=$(counter a2 av.virus) p3=$(counter a3 av.passed_unscanned)
	[ "${v1:-0}" -eq 3 ] && [ "${v2:-0}" -eq 3 ] && [ "${c1:-0}" -ge 6 ] && [ "${t1:-0}" -eq 1 ] &&
		[ "${u1:-0}" -eq 1 ] && [ "${p3:-0}" -ge 1 ]
}
lab_wait 5 counters_read
counters_read &&
	tap_ok "counters: av.virus 3+3, av.clean $c1, av.timeout 1, av.unavailable 1, av.passed_unscanned $p3" ||
	tap_not_ok "counters: a1 virus=$v1 clean=$c1 timeout=$t1 unavailable=$u1, a2 virus=$v2, a3 passed=$p3"

# --- the same outcomes in a1's Prometheus metrics ---
lab_scrape "$MPORT" "$LAB_DIR/a1.metrics"
metric() { lab_metric "$LAB_DIR/a1.metrics" "$1"; }
age=$(metric moat_smtpd_clamd_db_age_seconds)
[ "$(metric 'moat_smtpd_av_scans_total{result="virus"}')" = 3 ] && [ "$(metric 'moat_smtpd_av_scans_total{result="timeout"}')" = 1 ] &&
	[ "$(metric 'moat_smtpd_av_scans_total{result="unavailable"}')" = 1 ] && [ "$(metric moat_smtpd_clamd_db_stale)" = 1 ] &&
	[ "${age:-0}" -ge $((30 * 86400 - 3600)) ] && [ "${age:-0}" -le $((30 * 86400 + 3600)) ] &&
	[ "$(metric 'moat_smtpd_refusals_total{stage="data",reason="virus"}')" = 3 ] &&
	tap_ok "a1 /metrics: av_scans_total virus 3, timeout 1, unavailable 1; refusals data/virus 3; db stale, age ${age} s" ||
	tap_not_ok "a1 /metrics: $(grep -E 'av_scans|clamd_db|reason="virus"' "$LAB_DIR/a1.metrics" | tr '\n' ' ')"

lab_down
exit $((TAP_FAIL > 0))
