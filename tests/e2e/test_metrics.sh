#!/bin/bash
# test_metrics.sh - the Prometheus metrics of both daemons, live in the lab:
# moat-controld (XDP on app's inet0, an rbldnsd zone) and moat-smtpd (Knot
# for DNSBL and SPF, smtp-sink downstream).  moat-smtpd's /metrics is
# scraped before and after real sessions and each counter must move by
# exactly what the sessions did; then every metric the Grafana dashboard
# (docs/grafana/moat-dashboard.json) queries must exist in the live
# /metrics of the daemon that exports it, and the checker must catch a
# name that does not.  A clamd with a 30-day-old lab database stands
# beside moat-smtpd: its age alarm shows in /metrics and in `moatctl smtp
# stats` (relayed by moat-controld).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
smtpd=$build/dataplane/smtp/moat-smtpd
dash=$root/docs/grafana/moat-dashboard.json

ctld_test metrics 13 "$PASS_OBJ" "$smtpd"

# --- configuration (no lab needed) ---
printf 'local_domains = moat.test\nmetrics_listen = nowhere\n' >"$LAB_DIR/bad.conf"
out=$("$smtpd" -t -c "$LAB_DIR/bad.conf" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "bad.conf:2: metrics_listen: want ip:port or off" &&
	tap_ok "bad metrics_listen: refused with file:line" || tap_not_ok "bad metrics_listen: '$out'"

ctld_lab_up
lab_sink >/dev/null || { tap_not_ok "smtp-sink"; exit 1; }
mkdir -p "$LAB_DIR/zones" "$LAB_DIR/state" "$LAB_DIR/run"
chown moat "$LAB_DIR/run"
cp "$root/tools/sample/bl.moat.test.zone" "$here/zones/spf.test.zone" "$LAB_DIR/zones/"
lab_knot "$LAB_DIR/zones" >/dev/null 2>&1 || { tap_not_ok "knot"; exit 1; }
for a in 192.0.2.55 192.0.2.10 203.0.113.7; do lab_sender $a; done
ip -n "$NS_INET" link set dev app0 xdpdrv obj "$PASS_OBJ" sec xdp

CPORT=$((20000 + RANDOM % 20000))
SPORT=$((CPORT + 1))
# moat-controld: an rbldnsd zone listing 203.0.113.0/28 (dropped by XDP)
printf ':127.0.0.2:local\n203.0.113.0/28\n' >"$LAB_DIR/local.rbl"
cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
socket_owner = root:moat
state_dir = $LAB_DIR/state

[xdp]
interfaces = inet0
pin_dir = $PIN

[metrics]
listen = 127.0.0.1:$CPORT

[policy]
drop_threshold = 1

[zone local.rbl]
type = rbldnsd
file = $LAB_DIR/local.rbl
format = ip4set
EOF
if start_ctld ctld1; then
	tap_ok "moat-controld started with metrics on 127.0.0.1:$CPORT"
else
	tap_not_ok "moat-controld start"
	cat "$LAB_DIR/ctld1.log" >&2
	exit 1
fi

# clamd with a database 30 days old (tests/e2e/test_av.sh has the scans)
python3 "$here/clamdb.py" "$LAB_DIR/clamdb" --age-days 30 || { tap_not_ok "clamdb.py"; exit 1; }
printf 'Foreground yes\nDatabaseDirectory %s\nLocalSocket %s\nLocalSocketGroup moat\nLocalSocketMode 660\n' \
	"$LAB_DIR/clamdb" "$LAB_DIR/run/clamd.sock" >"$LAB_DIR/clamd.conf"
lab_bg "$NS_APP" clamd clamd -c "$LAB_DIR/clamd.conf"
lab_wait 60 test -S "$LAB_DIR/run/clamd.sock" || { tap_not_ok "clamd did not start"; exit 1; }

# moat-smtpd: its own DNSBL (Knot's bl.moat.test lists 192.0.2.10), SPF,
# clamd, moat-controld's socket (no lookup: the checks below count sessions)
lab_smtpd_conf "$LAB_DIR/smtpd.conf" "workers = 2
dns_server = 198.18.2.2
dnsbl_zones = bl.moat.test
max_conn_per_ip = 2000
metrics_listen = 127.0.0.1:$SPORT
clamd = $LAB_DIR/run/clamd.sock
clamd_db_max_age_h = 168
controld_socket = $SOCK
controld_lookup = no
log_level = info"
lab_bg "$NS_APP" smtpd "$smtpd" -c "$LAB_DIR/smtpd.conf"
if lab_wait 20 lab_inet bash -c 'exec 3<>/dev/tcp/198.18.1.1/25' &&
	grep -q "event=metrics listen=127.0.0.1:$SPORT" "$LAB_DIR/smtpd.log"; then
	tap_ok "moat-smtpd listens, metrics on 127.0.0.1:$SPORT"
else
	tap_not_ok "moat-smtpd start"
	cat "$LAB_DIR/smtpd.log" >&2
	exit 1
fi

# an explicit metrics_listen that cannot be bound stops start-up
sed -e 's/^listen = .*/listen = 198.18.1.1:2525/' "$LAB_DIR/smtpd.conf" >"$LAB_DIR/smtpd2.conf"
out=$(lab_app timeout 10 "$smtpd" -c "$LAB_DIR/smtpd2.conf" 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q "metrics_listen: cannot listen on 127.0.0.1:$SPORT" &&
	tap_ok "explicit metrics_listen already in use: moat-smtpd refuses to start" ||
	tap_not_ok "metrics_listen in use: rc=$rc '$out'"

# moved FILE0 SERIES DELTA - a fresh scrape shows SERIES at FILE0's value + DELTA
moved() {
	local want=$(( $(lab_metric "$1" "$2" || echo 0) + $3 )) got
	lab_scrape $SPORT "$LAB_DIR/m.now" || return 1
	got=$(lab_metric "$LAB_DIR/m.now" "$2")
	[ "${got:-0}" = "$want" ]
}

# --- moat-smtpd: counters before and after real sessions ---
ready() { lab_scrape $SPORT "$LAB_DIR/m0" && grep -q '^moat_smtpd_sessions_total [1-9]' "$LAB_DIR/m0"; }
lab_wait 5 ready &&
	tap_ok "moat-smtpd /metrics answers (sessions_total $(lab_metric "$LAB_DIR/m0" moat_smtpd_sessions_total))" ||
	tap_not_ok "moat-smtpd /metrics"
swk() { lab_inet swaks --server 198.18.1.1 --helo client.example "$@" 2>&1; }
out=$(swk --local-interface 192.0.2.55 --from a@pass.spf.test --to rcpt@moat.test --header "Subject: metrics-$LAB_ID")
if printf '%s\n' "$out" | grep -q '^<-  250 .*queued' || printf '%s\n' "$out" | grep -q '^<-  250 '; then
	if lab_wait 5 moved "$LAB_DIR/m0" moat_smtpd_sessions_total 1 &&
		lab_wait 5 moved "$LAB_DIR/m0" 'moat_smtpd_relay_total{outcome="delivered"}' 1 &&
		lab_wait 5 moved "$LAB_DIR/m0" 'moat_smtpd_spf_results_total{result="pass"}' 1 &&
		lab_wait 5 moved "$LAB_DIR/m0" moat_smtpd_scan_messages_total 1; then
		tap_ok "one delivered message: sessions, relay delivered, spf pass, scanned messages each +1"
	else
		tap_not_ok "delivered message: counters did not move by 1"
		grep -E 'sessions_total|relay_total|spf_results|scan_messages' "$LAB_DIR/m.now" | sed 's/^/#   /' >&2
	fi
else
	tap_not_ok "delivered message: swaks got no 250"
fi
out=$(swk --local-interface 192.0.2.55 --from a@pass.spf.test --to someone@elsewhere.example)
printf '%s\n' "$out" | grep -q '^<\*\* 554 5\.7\.1' && lab_wait 5 moved "$LAB_DIR/m0" \
	'moat_smtpd_refusals_total{stage="rcpt",reason="relay_denied"}' 1 &&
	tap_ok "relay attempt: 554 and refusals_total{stage=rcpt,reason=relay_denied} +1" ||
	tap_not_ok "relay attempt: refusal not counted"
out=$(swk --local-interface 192.0.2.10 --from a@pass.spf.test --to rcpt@moat.test)
printf '%s\n' "$out" | grep -q '554 5\.7\.1 .*blocked using bl\.moat\.test' && lab_wait 5 moved "$LAB_DIR/m0" \
	'moat_smtpd_refusals_total{stage="connect",reason="dnsbl"}' 1 && lab_wait 5 moved "$LAB_DIR/m0" \
	moat_smtpd_sessions_total 3 &&
	tap_ok "DNSBL-listed client: 554 and refusals_total{stage=connect,reason=dnsbl} +1, sessions +3 in all" ||
	tap_not_ok "DNSBL refusal not counted"
# the delivered message is in the sink (what the counter claims happened)
lab_wait 5 grep -rqs "metrics-$LAB_ID" "$LAB_DIR/sink" && tap_ok "the counted message reached the downstream" ||
	tap_not_ok "the message is not in the sink"

# --- the database-age alarm: /metrics and moatctl smtp stats ---
stale() { lab_scrape $SPORT "$LAB_DIR/m.now" && [ "$(lab_metric "$LAB_DIR/m.now" moat_smtpd_clamd_db_stale)" = 1 ] &&
	[ "$(lab_metric "$LAB_DIR/m.now" moat_smtpd_clamd_db_age_seconds)" -gt $((29 * 86400)) ]; }
ctl_stale() { [ "$(jget "$(mctl smtp stats --json)" "d.get('av.db_stale', 0)")" -ge 1 ]; }
lab_wait 10 stale && lab_wait 10 ctl_stale &&
	tap_ok "clamd database 30 days old (max 168 h): clamd_db_stale 1 in /metrics, av.db_stale in moatctl smtp stats" ||
	tap_not_ok "database-age alarm not visible ($(mctl smtp stats 2>&1 | grep -i av | tr '\n' ' '))"

# --- moat-controld: the fast path's counters move with the traffic ---
lab_scrape $CPORT "$LAB_DIR/c0"
lab_inet $PY "$PROBE" connect 203.0.113.7 198.18.1.1 25 2 >/dev/null 2>&1
cmoved() { lab_scrape $CPORT "$LAB_DIR/c1" && [ "$(lab_metric "$LAB_DIR/c1" "$1")" -gt "$(lab_metric "$LAB_DIR/c0" "$1" || echo 0)" ]; }
lab_wait 5 cmoved 'moat_fastpath_packets_total{counter="drop"}' &&
	lab_wait 5 grep -q '^moat_fastpath_packets_total{counter="pass"} [1-9]' "$LAB_DIR/c1" &&
	tap_ok "moat-controld: listed SYN counted as drop, the sessions' SYNs as pass" ||
	tap_not_ok "fast-path counters did not move"

# --- the dashboard: every metric it queries is in a live /metrics ---
lab_scrape $SPORT "$LAB_DIR/smtpd.metrics" && lab_scrape $CPORT "$LAB_DIR/controld.metrics"
if out=$(python3 "$here/dashboard_check.py" "$dash" controld="$LAB_DIR/controld.metrics" smtpd="$LAB_DIR/smtpd.metrics"); then
	tap_ok "dashboard: all $(printf '%s\n' "$out" | grep -c '^ok ') queried metrics exist in the live /metrics"
else
	tap_not_ok "dashboard queries a metric no daemon exports"
	printf '%s\n' "$out" | grep -v '^ok ' | sed 's/^/#   /' >&2
fi
python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
d["panels"][0]["targets"][0]["expr"] = "rate(moat_smtpd_no_such_metric_total[5m])"
json.dump(d, open(sys.argv[2], "w"))' "$dash" "$LAB_DIR/bad-dash.json"
out=$(python3 "$here/dashboard_check.py" "$LAB_DIR/bad-dash.json" controld="$LAB_DIR/controld.metrics" smtpd="$LAB_DIR/smtpd.metrics")
[ $? -ne 0 ] && printf '%s\n' "$out" | grep -q '^MISSING moat_smtpd_no_such_metric_total in smtpd' &&
	tap_ok "dashboard check catches a metric that does not exist" || tap_not_ok "checker missed a bogus metric"

exit $((TAP_FAIL > 0))
