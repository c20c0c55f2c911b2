#!/bin/bash
# test_smtpd_restart.sh - moat-smtpd's rules reloaded (SIGHUP), then the
# daemon stopped (SIGTERM) and restarted, then killed (-9) and restarted,
# all under load: smtp-source on 10 sessions beside a ledger client
# (smtp_ledger.py, 6 sessions) that records what it was told for every
# message it sent, each with a unique X-Ledger header, every fifth one
# refused by a content rule.  Asserts at the downstream (smtp-sink): every
# message the client saw accepted is there exactly once, none it was told
# was not taken (5xx, or 4xx: it would send it again) is there, and the
# ones whose session broke before the reply to the dot are there at most
# once.  A stop while a message waits for the downstream's reply to its
# dot lets that reply through before the 421 (it used to be a 421 for a
# message the downstream had taken: a duplicate on the client's retry).  Positive controls: the reload and both
# restarts landed while the client was sending (accepted messages on
# both sides of each), sessions really broke.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${MOAT_BUILD_DIR:-$root/build}
smtpd=$build/dataplane/smtp/moat-smtpd
. "$root/tests/lab/lab.sh"

tap_plan 6
[ -x "$smtpd" ] || { tap_not_ok "missing $smtpd (build first)"; exit 1; }
lab_init
trap 'lab_down' EXIT
trap 'lab_down; exit 130' INT
trap 'lab_down; exit 143' TERM
lab_up >/dev/null || { tap_not_ok "lab up"; exit 1; }
# a tenth or so of the final dots answered a second late: a stop lands
# while a message waits for that answer
lab_sink -W .:1:10 >/dev/null || { tap_not_ok "smtp-sink"; exit 1; }
lab_scan_conf "$LAB_DIR/smtpd.conf" 'E2E_REFUSE body reject "ledger rule says no" /refuse-me/' \
	"max_conn_rate_per_ip = 0"
listens() { lab_inet bash -c 'exec 3<>/dev/tcp/198.18.1.1/25'; }
start_smtpd() { # start_smtpd NAME
	lab_bg "$NS_APP" "$1" "$smtpd" -c "$LAB_DIR/smtpd.conf"
	lab_wait 20 listens
}
gone() { ! kill -0 "$1" 2>/dev/null; }
if ! start_smtpd smtpd1; then
	tap_not_ok "moat-smtpd listens"
	cat "$LAB_DIR/smtpd1.log" >&2
	exit 1
fi
TAG=L$LAB_ID
# accepted N - the sink holds at least N ledger messages
ledger_in_sink() { grep -rhaos "X-Ledger: $TAG-[0-9]*" "$LAB_DIR/sink" | wc -l; }
sink_ge() { [ "$(ledger_in_sink)" -ge "$1" ]; }

lab_inet smtp-source -c -s 10 -m 100000 -l 1000 -f load@example.org -t rcpt@moat.test \
	198.18.1.1:25 >"$LAB_DIR/source.log" 2>&1 &
srcpid=$!
lab_inet python3 "$here/smtp_ledger.py" 198.18.1.1 25 "$TAG" 14 6 "$LAB_DIR/ledger" \
	>"$LAB_DIR/ledger.json" 2>"$LAB_DIR/ledger.err" &
ldpid=$!
ok=1 marks=""
# 1: the rules reloaded (a changed file) once messages flow
lab_wait 10 sink_ge 20 || ok=0
marks+=" $(ledger_in_sink)"
echo 'E2E_EXTRA body reject "another rule" /never-sent-marker/' >>"$rules"
pid=$(cat "$LAB_DIR/smtpd1.pid")
spid=$(pgrep -P "$pid" -x moat-smtpd || echo "$pid")
kill -HUP "$spid"
lab_wait 15 grep -q 'rules reloaded' "$LAB_DIR/smtpd1.log" || ok=0
# 2: stopped (SIGTERM: 421 to open sessions) and started again
n=$(ledger_in_sink)
lab_wait 10 sink_ge $((n + 20)) || ok=0
marks+=" $(ledger_in_sink)"
kill "$pid"
lab_wait 10 gone "$pid" || ok=0
start_smtpd smtpd2 || ok=0
# 3: kill -9 and started again
n=$(ledger_in_sink)
lab_wait 10 sink_ge $((n + 20)) || ok=0
marks+=" $(ledger_in_sink)"
pid=$(cat "$LAB_DIR/smtpd2.pid")
kill -9 "$pid" $(pgrep -P "$pid")
wait "$pid" 2>/dev/null # no job notice on stderr
lab_wait 10 gone "$pid" || ok=0
start_smtpd smtpd3 || ok=0
n=$(ledger_in_sink)
lab_wait 10 sink_ge $((n + 20)) || ok=0
marks+=" $(ledger_in_sink)"
running=0
gone "$ldpid" || running=1
wait "$ldpid"
kill "$srcpid" 2>/dev/null
wait "$srcpid" 2>/dev/null
# the stop came while messages waited for the downstream's reply to their dot
drained=$(grep -o 'stopping: [0-9]* message(s) at the downstream' "$LAB_DIR/smtpd1.log" | awk '{ n += $2 } END { print n + 0 }')
if [ $ok = 1 ] && [ $running = 1 ] && [ "$drained" -gt 0 ]; then
	tap_ok "SIGHUP reload, SIGTERM restart ($drained message(s) at the downstream waited for), kill -9 restart, each with ledger messages delivered before and after (sink:$marks)"
else
	tap_not_ok "fault sequence: ok=$ok client still running=$running drained=$drained (sink:$marks)"
	tail -n 5 "$LAB_DIR"/smtpd*.log | sed 's/^/# /'
fi
counts=$(cat "$LAB_DIR/ledger.json")
acc=$(grep -c ' accepted' "$LAB_DIR/ledger")
ref=$(grep -c ' refused' "$LAB_DIR/ledger")
unk=$(grep -c ' unknown\| tempfail\| lost' "$LAB_DIR/ledger")
if [ "$acc" -gt 100 ] && [ "$ref" -gt 10 ] && [ "$unk" -gt 0 ]; then
	tap_ok "the ledger client: $counts (sessions broke at the restarts)"
else
	tap_not_ok "ledger: $counts"
	sed 's/^/# /' "$LAB_DIR/ledger.err" | tail -5
fi
# the sink settles: every accepted message is in by now (the 250 came from
# the downstream's own 250), wait for the last writes of its files
lab_wait 5 bash -c "[ \$(grep -rhaos 'X-Ledger: $TAG-[0-9]*' '$LAB_DIR/sink' | wc -l) -ge $acc ]"
grep -rhaos "X-Ledger: $TAG-[0-9]*" "$LAB_DIR/sink" | awk '{print $2}' | sort | uniq -c |
	awk '{print $2, $1}' >"$LAB_DIR/sink.count"
# join: id outcome copies
awk 'NR == FNR { c[$1] = $2; next } { print $1, $2, ($1 in c) ? c[$1] : 0 }' \
	"$LAB_DIR/sink.count" "$LAB_DIR/ledger" >"$LAB_DIR/joined"
bad=$(awk '$2 == "accepted" && $3 != 1' "$LAB_DIR/joined")
if [ -z "$bad" ]; then
	tap_ok "every one of the $acc accepted messages is at the downstream exactly once"
else
	tap_not_ok "accepted but not there exactly once: $(echo "$bad" | wc -l)"
	echo "$bad" | head -5 | sed 's/^/# /'
fi
bad=$(awk '($2 == "refused" || $2 == "tempfail" || $2 == "lost") && $3 != 0' "$LAB_DIR/joined")
tf=$(grep -c ' tempfail' "$LAB_DIR/ledger")
if [ -z "$bad" ]; then
	tap_ok "none of the $ref refused (5xx), $tf 4xx and $(grep -c ' lost' "$LAB_DIR/ledger") broken-before-DATA messages is at the downstream"
else
	tap_not_ok "told not taken but delivered: $(echo "$bad" | wc -l)"
	echo "$bad" | head -5 | sed 's/^/# /'
	grep -F -f <(echo "$bad" | awk '{print $1 " "}') "$LAB_DIR/ledger" | head -5 | sed 's/^/# /'
fi
bad=$(awk '$2 == "unknown" && $3 > 1' "$LAB_DIR/joined")
un=$(grep -c ' unknown' "$LAB_DIR/ledger")
there=$(awk '$2 == "unknown" && $3 == 1' "$LAB_DIR/joined" | wc -l)
if [ -z "$bad" ]; then
	tap_ok "of the $un messages whose session broke before the reply to the dot, none twice ($there there once)"
else
	tap_not_ok "broken-session messages duplicated: $bad"
fi
# nothing at the downstream the client did not send
extra=$(awk 'NR == FNR { s[$1] = 1; next } !($1 in s)' "$LAB_DIR/ledger" "$LAB_DIR/sink.count" | wc -l)
[ "$extra" = 0 ] && tap_ok "no ledger message at the downstream the client has no line for" ||
	tap_not_ok "$extra unknown ledger ids at the downstream"
exit $((TAP_FAIL > 0))
