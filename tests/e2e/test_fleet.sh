#!/bin/bash
# test_fleet.sh - two appliances share entries through DNS (docs/fleet.md):
#   a Knot primary (dns ns) takes TSIG-signed RFC 2136 UPDATEs, each
#   appliance's key only for its own zone; a Knot secondary (inet ns)
#   follows it by NOTIFY + IXFR; appliance A (app ns) publishes to
#   a.fleet.test, appliance B (mx ns) transfers a.fleet.test from the
#   secondary as an ordinary axfr source (fleet = yes).
# Cases: add --share on A is live on B (time printed); A ignores its own
#   records; del propagates; an expired record left in the zone is ignored
#   by B, and listed again when its TXT alone is renewed; A and B both
#   listing one address, A deletes: B's stays; a real moat-smtpd on A
#   refuses a client listed in a live DNSBL (q.fleet.test) and reports it:
#   B's XDP tarpits the client's next SYN, B's allowlist beats it; learned
#   pregreet, protocol and content refusals (smtp.report as moat-smtpd
#   sends it) reach B as tarpits, a kind turned off does not; add --share of a prefix is refused; the per-/24 cap; primary
#   down while A adds 100: all arrive once, queue back to 0, /metrics
#   shows the queue; a wrong TSIG key is refused (rcode logged, counted)
#   while A keeps enforcing; a storm of FLEET_STORM (default 10,000) adds
#   in FLEET_STORM_BATCHES (20) moatctl add -f batches, spread over
#   FLEET_STORM_SECS (default 0: at once; 60 with 100 batches is "10,000
#   in a minute", about 75 s more) converges on B through IXFR only, the
#   IXFR bytes proportional to the changes; the bounded queue; the
#   restart sweep.
# B runs XDP on its link (app0 in mx): the first shared address's next SYN
# is dropped there while a control address connects; the other cases read
# B's table with moatctl lookup (live_action: the image the fast path gets).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
build=${MOAT_BUILD_DIR:-$root/build}
CTLD=$build/control/moat-controld
MOATCTL=$build/tools/moatctl
STORM=${FLEET_STORM:-10000}
NB=${FLEET_STORM_BATCHES:-20}        # moatctl add -f batches of the storm
STORM_SECS=${FLEET_STORM_SECS:-0}    # spread over this many seconds (0: at once)
PASS_OBJ=$build/bpf/moat_xdp_pass.bpf.o
SMTPD=$build/dataplane/smtp/moat-smtpd
SMTPC=$here/smtpc.py
PROBE=$root/tests/netns/tcp_probe.py
PY=/usr/bin/python3

tap_plan 42
for f in "$CTLD" "$MOATCTL" "$PASS_OBJ" "$SMTPD" "$PROBE"; do
	[ -e "$f" ] || { tap_not_ok "missing $f (build first)"; exit 1; }
done
for f in knotd knotc kdig knsupdate; do
	command -v $f >/dev/null || { tap_not_ok "missing $f (knot, knot-dnsutils)"; exit 1; }
done
lab_init
# B filters SYNs with XDP on its link (pins under a name of this run)
PIN=/sys/fs/bpf/moat-fleet-$LAB_ID
fleet_cleanup() {
	[ -f "$LAB_DIR/ctld-b.pid" ] && kill "$(cat "$LAB_DIR/ctld-b.pid")" 2>/dev/null
	lab_wait 5 bash -c "! kill -0 $(cat "$LAB_DIR/ctld-b.pid" 2>/dev/null || echo 0) 2>/dev/null"
	rm -rf "$PIN"
	lab_down
}
trap 'fleet_cleanup' EXIT
trap 'fleet_cleanup; exit 130' INT
trap 'fleet_cleanup; exit 143' TERM
ctl_a() { MOAT_SOCKET=$LAB_DIR/a/control.sock "$MOATCTL" "$@"; }
ctl_b() { MOAT_SOCKET=$LAB_DIR/b/control.sock "$MOATCTL" "$@"; }
jget() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
# act_b ADDR - B's live action for ADDR
act_b() { jget "$(ctl_b lookup "$1" --json 2>/dev/null)" "d['live_action']" 2>/dev/null; }
act_a() { jget "$(ctl_a lookup "$1" --json 2>/dev/null)" "d['live_action']" 2>/dev/null; }
is_b() { [ "$(act_b "$1")" = "$2" ]; }
fleet_a() { jget "$(ctl_a fleet --json 2>/dev/null)" "d['$1']" 2>/dev/null; }
zone_b() { jget "$(ctl_b zones --json 2>/dev/null)" "[z['$2'] for z in d['zones'] if z['name']=='$1'][0]"; }
# in_zone NAME TYPE - the record at the primary (dig +short)
at_primary() { lab_dns kdig +time=2 +retry=0 +short @198.18.2.2 "$1" "$2"; }
ms() { date +%s%3N; }

if ! lab_up >/dev/null 2>&1; then
	tap_not_ok "lab up"
	exit 1
fi

SECRET_A=$(head -c 32 /dev/urandom | base64)
SECRET_B=$(head -c 32 /dev/urandom | base64)
WRONG=$(head -c 32 /dev/urandom | base64)
Z=$LAB_DIR/zones
mkdir -p "$Z" "$LAB_DIR/a" "$LAB_DIR/b" "$LAB_DIR/sec/zones" "$LAB_DIR/sec/run" "$LAB_DIR/sec/db"
for n in a b; do
	cat >"$Z/$n.fleet.test.zone" <<EOF
\$ORIGIN $n.fleet.test.
\$TTL 60
@ SOA ns.fleet.test. hostmaster.fleet.test. 1 2 2 600 60
@ NS ns.fleet.test.
; the RFC 5782 test point every DNSBL zone holds (sanity checks want it)
2.0.0.127 A 127.0.0.2
2.0.0.127 TXT "RFC 5782 test point"
2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 A 127.0.0.2
EOF
done
# q.fleet.test: the DNSBL A's moat-smtpd queries live (step 5b)
cat >"$Z/q.fleet.test.zone" <<EOF
\$ORIGIN q.fleet.test.
\$TTL 60
@ SOA ns.fleet.test. hostmaster.fleet.test. 1 2 2 600 60
@ NS ns.fleet.test.
2.0.0.127 A 127.0.0.2
50.113.0.203 A 127.0.0.2
51.113.0.203 A 127.0.0.2
EOF
# the primary: update ACL per key and zone; journal deep enough for a
# storm (one changeset per UPDATE); NOTIFY to the secondary and to A
KNOT_PRE_CONF="key:
  - id: key_a
    algorithm: hmac-sha256
    secret: $SECRET_A
  - id: key_b
    algorithm: hmac-sha256
    secret: $SECRET_B
remote:
  - id: secondary
    address: 198.18.1.2@53
  - id: appa
    address: 198.18.2.1@53"
KNOT_EXTRA_CONF="  - id: upd_a
    key: key_a
    action: update
  - id: upd_b
    key: key_b
    action: update"
KNOT_TEMPLATE_EXTRA="    journal-max-depth: 5000
    journal-max-usage: 200M"
printf '    acl: [ lab, upd_a ]\n    notify: [ secondary, appa ]\n' >"$Z/a.fleet.test.zone.conf"
printf '    acl: [ lab, upd_b ]\n    notify: [ secondary ]\n' >"$Z/b.fleet.test.zone.conf"
if ! lab_knot "$Z" >/dev/null 2>&1; then
	tap_not_ok "knot primary"
	cat "$LAB_DIR/knotd.log" >&2
	exit 1
fi
KNOT_PRIMARY_CONF=$KNOT_CONF

# the secondary, in inet (198.18.1.2): IXFR from the primary, NOTIFY to B
cat >"$LAB_DIR/sec/knot.conf" <<EOF
server:
    listen: 198.18.1.2@53
    rundir: "$LAB_DIR/sec/run"
log:
  - target: stderr
    any: info
database:
    storage: "$LAB_DIR/sec/db"
remote:
  - id: primary
    address: 198.18.2.2@53
  - id: appb
    address: 198.18.3.2@53
acl:
  - id: lab
    address: [ 198.18.0.0/15 ]
    action: [ transfer, notify ]
template:
  - id: default
    storage: "$LAB_DIR/sec/zones"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: changes
    journal-max-depth: 5000
    journal-max-usage: 200M
    semantic-checks: off
    master: primary
    acl: lab
    notify: appb
zone:
  - domain: a.fleet.test
  - domain: b.fleet.test
EOF
lab_bg "$NS_INET" knotd-sec knotd -c "$LAB_DIR/sec/knot.conf"
if ! lab_wait 20 lab_inet kdig +time=1 +retry=0 +short @198.18.1.2 a.fleet.test SOA; then
	tap_not_ok "knot secondary"
	cat "$LAB_DIR/knotd-sec.log" >&2
	exit 1
fi

# write_conf WHO ID ZONE SECRET FLEETSRC SRCPRIMARY NOTIFY
write_conf() {
	cat >"$LAB_DIR/$1/moat.conf" <<EOF
[daemon]
socket = $LAB_DIR/$1/control.sock
state_dir = $LAB_DIR/$1/state
notify_listen = $7@53
log_level = debug

[policy]
tarpit_threshold = 1
drop_threshold = 2

[fleet]
id = $2
zone = $3
primary = 198.18.2.2@53
tsig = hmac-sha256:key_$2:$4
per24_max = 100
batch = 200
learn_dnsbl = yes
learn_pregreet = yes
learn_protocol = yes

[metrics]
listen = 127.0.0.1:9464

[zone $5]
primary = $6@53
fleet = yes
refresh_min = 60
codes = 127.0.0.2=2, 127.0.0.3-127.0.0.7=1
EOF
}
write_conf a a a.fleet.test "$SECRET_A" a.fleet.test 198.18.2.2 198.18.2.1
write_conf b b b.fleet.test "$SECRET_B" a.fleet.test 198.18.1.2 198.18.3.2
# A's moat-smtpd (user moat after binding) reports to A's socket
sed -i 's/^socket = .*/&\nsocket_owner = root:moat/' "$LAB_DIR/a/moat.conf"
printf '\n[xdp]\ninterfaces = app0\npin_dir = %s\n' "$PIN" >>"$LAB_DIR/b/moat.conf"
# native XDP on a veth wants a program on the peer too; a listener on B's
# address behind it, and two senders: one to be shared, one control
ip -n "$NS_APP" link set dev mx0 xdpdrv obj "$PASS_OBJ" sec xdp
lab_bg "$NS_MX" listen $PY "$PROBE" listen 198.18.3.2 25 "$LAB_DIR/accept.log"
lab_sender 192.0.2.10
lab_sender 192.0.2.12
probe_b() { lab_inet $PY "$PROBE" connect "$1" 198.18.3.2 25 2; }
accepted_b() { grep -Eq "^accept (::ffff:)?$1\$" "$LAB_DIR/accept.log" 2>/dev/null; }
# held_b ADDR CONTROL WANT - B's XDP holds ADDR's next SYN (the probe says
# WANT: timeout for drop, connected-silent for tarpit; the listener never
# sees it) while CONTROL, sent after, reaches the listener; prints the probe
held_b() {
	local r
	: >"$LAB_DIR/accept.log"
	r=$(probe_b "$1")
	echo "$r"
	probe_b "$2" >/dev/null
	lab_wait 5 accepted_b "$2" && [ "$r" = "$3" ] && ! grep -qF "$1" "$LAB_DIR/accept.log"
}
start() { # start WHO NS [LOGNAME]  (nsenter: keeps /sys/fs/bpf visible)
	nsenter --net="/run/netns/$2" "$CTLD" -c "$LAB_DIR/$1/moat.conf" \
		>"$LAB_DIR/${3:-ctld-$1}.log" 2>&1 &
	LAB_PIDS+=($!)
	echo $! >"$LAB_DIR/${3:-ctld-$1}.pid"
	lab_wait 15 grep -q 'event=ready' "$LAB_DIR/${3:-ctld-$1}.log"
}
if ! start a "$NS_APP" || ! start b "$NS_MX"; then
	tap_not_ok "controld A and B start"
	tail -20 "$LAB_DIR"/ctld-*.log >&2
	exit 1
fi
LOG_A=$LAB_DIR/ctld-a.log
LOG_B=$LAB_DIR/ctld-b.log
# B has the (empty) fleet zone before the first case
lab_wait 15 grep -q 'zone=a.fleet.test.*serial' "$LOG_B"

# 0. before anything is shared, both senders reach B's listener
probe_b 192.0.2.10 >/dev/null; probe_b 192.0.2.12 >/dev/null
lab_wait 5 accepted_b 192.0.2.10 && lab_wait 5 accepted_b 192.0.2.12; c=$?
tap_check "B's XDP is attached (fastpath xdp) and passes 192.0.2.10 and .12 before any share" \
	bash -c "[ $c -eq 0 ] && grep -q 'event=ready.*fastpath=xdp' $LAB_DIR/ctld-b.log"

# 1. add --share on A: live on B, primary -> secondary -> B
is_b 192.0.2.10 pass
pre=$?
t0=$(ms)
ctl_a add 192.0.2.10 --action drop --share --reason e2e >/dev/null
lab_wait 20 is_b 192.0.2.10 drop
ok=$?
t1=$(ms)
[ $pre -eq 0 ] && [ $ok -eq 0 ]; c=$?
tap_check "add --share on A: B's table drops 192.0.2.10 (was pass before)" [ $c -eq 0 ]
echo "# propagation add->live on B (primary, secondary, B): $((t1 - t0)) ms"
# B's XDP drops the next SYN from it; the control, sent after, still connects
r10=$(held_b 192.0.2.10 192.0.2.12 timeout); c=$?
tap_check "B's XDP drops 192.0.2.10's SYN ($r10) while 192.0.2.12 connects" [ $c -eq 0 ]
tap_check "the record at the primary: A 127.0.0.2 and TXT moat:a exp=" \
	bash -c "[ \"\$(lab_dns() { ip netns exec $NS_DNS \"\$@\"; }; lab_dns kdig +short @198.18.2.2 10.2.0.192.a.fleet.test A)\" = 127.0.0.2 ] &&
		ip netns exec $NS_DNS kdig +short @198.18.2.2 10.2.0.192.a.fleet.test TXT | grep -q '\"moat:a exp=[0-9]* reason=operator-drop\"'"

# 1b. IPv6: 32 nibbles, the same way
ctl_a add 2001:db8:100::7 --action tarpit --share >/dev/null
lab_wait 20 is_b 2001:db8:100::7 tarpit; c=$?
v6=$(at_primary 7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.8.b.d.0.1.0.0.2.a.fleet.test A)
tap_check "IPv6: add --share 2001:db8:100::7 on A is a tarpit on B (nibble name at the primary: $v6)" \
	bash -c "[ $c -eq 0 ] && [ '$v6' = 127.0.0.3 ]"
ctl_a del 2001:db8:100::7 >/dev/null
lab_wait 20 is_b 2001:db8:100::7 pass

# 2. A ignores its own records (its own zone is one of its sources)
# (A took 192.0.2.10's record by IXFR, a delta judged own=1; its copy of
# the zone keeps only the two test points, B's all three)
lab_wait 10 grep -Eq 'zone=a.fleet.test event=fleet-(delta|filter) .*own=1' "$LOG_A"; c=$?
za=$(jget "$(ctl_a zones --json)" "[z['entries'] for z in d['zones'] if z['name']=='a.fleet.test'][0]")
tap_check "A reads its own zone and ignores its own record (own=1; A's copy of the zone lists $za: the test points)" \
	bash -c "[ $c -eq 0 ] && [ '$za' = 2 ]"

# 3. del propagates
t0=$(ms)
ctl_a del 192.0.2.10 >/dev/null
lab_wait 20 is_b 192.0.2.10 pass
ok=$?
t1=$(ms)
tap_check "del on A: B passes 192.0.2.10 again" [ $ok -eq 0 ]
echo "# propagation del->live on B: $((t1 - t0)) ms"
tap_check "del on A: the name is gone at the primary" [ -z "$(at_primary 10.2.0.192.a.fleet.test A)" ]

# 3b. changes that come while an UPDATE flies are sent after it: adds
#     deleted at once leave nothing at the primary (marker: the last add)
for i in 1 2 3 4 5; do
	ctl_a add 192.0.2.2$i --action drop --share >/dev/null
	ctl_a del 192.0.2.2$i >/dev/null
done
ctl_a add 192.0.2.40 --action drop --share >/dev/null
lab_wait 20 bash -c "[ \"\$(ip netns exec $NS_DNS kdig +short @198.18.2.2 40.2.0.192.a.fleet.test A)\" = 127.0.0.2 ]"; c=$?
drained() { [ "$(fleet_a queued)" = 0 ] && [ "$(fleet_a in_flight)" = 0 ] && [ "$(fleet_a pending)" = 0 ]; }
lab_wait 20 drained
left=""
for i in 1 2 3 4 5; do left="$left$(at_primary 2$i.2.0.192.a.fleet.test A)"; done
tap_check "add then del at once, five times: nothing left at the primary (marker there: $c, left: '$left')" \
	bash -c "[ $c -eq 0 ] && [ -z '$left' ]"
lab_wait 20 is_b 192.0.2.40 drop
ctl_a del 192.0.2.40 >/dev/null
lab_wait 20 is_b 192.0.2.40 pass

# 4. an expired record left in the zone (a dead appliance "c" wrote it
#    with A's key: nobody removes it) is ignored by B once exp passes
exp=$(($(date +%s) + 4))
lab_dns knsupdate -y "hmac-sha256:key_a:$SECRET_A" <<EOF >/dev/null 2>&1
server 198.18.2.2 53
zone a.fleet.test.
add 11.2.0.192.a.fleet.test. 60 A 127.0.0.2
add 11.2.0.192.a.fleet.test. 60 TXT "moat:c exp=$exp reason=operator-drop"
send
EOF
lab_wait 20 is_b 192.0.2.11 drop
listed=$?
lab_wait 20 is_b 192.0.2.11 pass
gone=$?
still=$(at_primary 11.2.0.192.a.fleet.test A)
[ $listed -eq 0 ] && [ $gone -eq 0 ]; c=$?
tap_check "a record of appliance c: listed on B before exp, ignored after ($(($(date +%s) - exp)) s past exp)" [ $c -eq 0 ]
tap_check "... while the expired record is still in the zone (positive control: $still)" [ "$still" = 127.0.0.2 ]
# its owner's key moves the exp later, the TXT alone (the A record stays):
# B lists it again (an IXFR whose only change is a TXT is judged too)
lab_dns knsupdate -y "hmac-sha256:key_a:$SECRET_A" <<EOF >/dev/null 2>&1
server 198.18.2.2 53
zone a.fleet.test.
del 11.2.0.192.a.fleet.test. TXT
add 11.2.0.192.a.fleet.test. 60 TXT "moat:c exp=$(($(date +%s) + 600)) reason=operator-drop"
send
EOF
lab_wait 20 is_b 192.0.2.11 drop; c=$?
tap_check "the same record's TXT alone renewed (exp + 600 s): listed on B again" [ $c -eq 0 ]
lab_dns knsupdate -y "hmac-sha256:key_a:$SECRET_A" <<EOF >/dev/null 2>&1
server 198.18.2.2 53
zone a.fleet.test.
del 11.2.0.192.a.fleet.test.
send
EOF
lab_wait 20 is_b 192.0.2.11 pass

# 5. A and B both list one address; A deletes: B's listing stays
# (B's copy of A's zone: its entries count)
zb_is() { [ "$(zone_b a.fleet.test entries)" = "$1" ]; }
nb=$(zone_b a.fleet.test entries)
ctl_b add 192.0.2.30 --action drop --reason b-own >/dev/null
ctl_a add 192.0.2.30 --action drop --share >/dev/null
lab_wait 20 zb_is $((nb + 1))
in_b=$?
ctl_a del 192.0.2.30 >/dev/null
lab_wait 20 zb_is "$nb"
synced=$?
[ $in_b -eq 0 ] && [ $synced -eq 0 ] && is_b 192.0.2.30 drop; c=$?
tap_check "A deletes a shared address B also lists: B's copy of A's zone drops it, B still drops it" [ $c -eq 0 ]

# 5b. a real moat-smtpd on A (198.18.1.1:25, app ns) refuses a client
#     listed in q.fleet.test by its live DNSBL lookup and reports it to
#     A's moat-controld (kind dnsbl): the record reaches B as a tarpit whose
#     exp is within report_ttl; B's XDP tarpits the client's next SYN; B's
#     own allowlist beats the same refusal for another listed client
cat >"$LAB_DIR/a/smtpd.conf" <<EOF
listen = 198.18.1.1:25
workers = 1
hostname = a.fleet.test
relay = 198.18.3.2:25
local_domains = fleet.test
dns_server = 198.18.2.2
dnsbl_zones = q.fleet.test*1
spf = no
greet_delay_ms = 0
controld_socket = $LAB_DIR/a/control.sock
report_action = drop
report_ttl = 600
EOF
lab_sender 203.0.113.50
lab_sender 203.0.113.51
lab_sender 203.0.113.52
lab_bg "$NS_APP" smtpd-a "$SMTPD" -c "$LAB_DIR/a/smtpd.conf"
smtp_a() { [ "$(jget "$(ctl_a status --json 2>/dev/null)" "d['smtp_connected']" 2>/dev/null)" = True ]; }
lab_wait 15 smtp_a; up=$?
ctl_b add 203.0.113.51 --action allow --reason b-allowlist >/dev/null
r50=$(lab_inet $PY "$SMTPC" --src 203.0.113.50 198.18.1.1 25 R 2>&1 | head -1)
r51=$(lab_inet $PY "$SMTPC" --src 203.0.113.51 198.18.1.1 25 R 2>&1 | head -1)
stat_a() { jget "$(ctl_a smtp stats --json 2>/dev/null)" "d.get('$1', 0)" 2>/dev/null; }
reported_a() { [ "$(stat_a controld.reported)" -ge "$1" ]; }
lab_wait 10 reported_a 2; sent=$?
nrep="$(stat_a connect.dnsbl) refused, $(stat_a controld.reported) reported"
tap_check "A's moat-smtpd (connected: $up) refuses 203.0.113.50 and .51 by its live DNSBL ($r50) and reports both (smtp stats: $nrep)" \
	bash -c "[ $up -eq 0 ] && echo '$r50' | grep -Eq '^554 5\.7\.1 .*q\.fleet\.test' && echo '$r51' | grep -Eq '^554 5\.7\.1 .*q\.fleet\.test' && [ $sent -eq 0 ]"
lab_wait 20 is_b 203.0.113.50 tarpit; c=$?
# B's XDP tarpits the next SYN from it (the handshake is XDP's, the listener
# never sees it); the control, sent after, connects to the listener
r=$(held_b 203.0.113.50 203.0.113.52 connected-silent); c2=$?
tap_check "the refusal on A (learn_dnsbl) is a tarpit on B: B's XDP answers 203.0.113.50's SYN itself and stays silent ($r) while 203.0.113.52 reaches the listener" \
	bash -c "[ $c -eq 0 ] && [ $c2 -eq 0 ]"
txt=$(at_primary 50.113.0.203.a.fleet.test TXT)
left=$(( $(echo "$txt" | grep -o 'exp=[0-9]*' | cut -d= -f2) - $(date +%s) ))
tap_check "the learned record at the primary: reason=dnsbl, exp within report_ttl 600 s ($left s left: $txt)" \
	bash -c "echo '$txt' | grep -q 'reason=dnsbl' && [ $left -le 600 ] && [ $left -gt 500 ]"
lab_wait 20 bash -c "[ \"\$(ip netns exec $NS_DNS kdig +short @198.18.2.2 51.113.0.203.a.fleet.test A)\" = 127.0.0.4 ]"; c=$?
[ $c -eq 0 ] && lab_wait 10 is_b 203.0.113.50 tarpit && [ "$(act_b 203.0.113.51)" = allow ] && [ "$(act_a 203.0.113.51)" = drop ]; c=$?
tap_check "B's allowlist beats A's learned record for 203.0.113.51 (A drops it, B allows)" [ $c -eq 0 ]
kill "$(cat "$LAB_DIR/smtpd-a.pid")" 2>/dev/null

# 5c. the other learned kinds, as moat-smtpd reports them (report_pregreet,
#     report_protocol, report_content): pregreet and protocol (learn_* on)
#     reach B as tarpits with their own codes; content (learn_content off,
#     the default) is enforced on A but not shared; turned on by a reload,
#     it is shared too (the message moat-smtpd's report.c sends, on A's socket)
report_a() { # report_a ADDR TTL [KIND]  (the message moat-smtpd's report.c sends)
	/usr/bin/python3 - "$LAB_DIR/a/control.sock" "$1" "$2" "${3:-dnsbl}" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall((json.dumps({"cmd": "smtp.hello", "id": 1, "program": "moat-smtpd", "version": "test"}) + "\n" +
           json.dumps({"cmd": "smtp.report", "id": 2, "prefix": sys.argv[2], "action": "drop",
                       "ttl": int(sys.argv[3]), "kind": sys.argv[4],
                       "reason": "moat-smtpd: %s test" % sys.argv[4]}) + "\n").encode())
buf = b""
while buf.count(b"\n") < 2:
    d = s.recv(4096)
    if not d: break
    buf += d
r = [json.loads(l) for l in buf.decode().splitlines() if l.strip()]
sys.exit(0 if all(x.get("ok") for x in r if x.get("id") == 2) and any(x.get("id") == 2 for x in r) else 1)
PY
}
report_a 203.0.113.60 600 pregreet && report_a 203.0.113.61 600 protocol &&
	report_a 203.0.113.62 600 content
rep=$?
lab_wait 20 is_b 203.0.113.60 tarpit && lab_wait 20 is_b 203.0.113.61 tarpit; c=$?
codes="$(at_primary 60.113.0.203.a.fleet.test A) $(at_primary 61.113.0.203.a.fleet.test A)"
tap_check "learned pregreet and protocol refusals on A are tarpits on B (codes at the primary: $codes; report ok: $rep)" \
	bash -c "[ $c -eq 0 ] && [ '$codes' = '127.0.0.5 127.0.0.6' ]"
# the disabled kind: A enforces it; wait until a later share is at B, then
# check it never went out (the marker rides the queue after it)
ctl_a add 192.0.2.41 --action drop --share >/dev/null
lab_wait 20 is_b 192.0.2.41 drop; c=$?
[ $c -eq 0 ] && [ "$(act_a 203.0.113.62)" = drop ] && [ "$(act_b 203.0.113.62)" = pass ] &&
	[ -z "$(at_primary 62.113.0.203.a.fleet.test A)" ]; c=$?
tap_check "learn_content off: a content refusal is enforced on A, not shared (B passes, no record; a later share is at B)" [ $c -eq 0 ]
sed -i 's/^learn_protocol = yes$/learn_protocol = yes\nlearn_content = yes/' "$LAB_DIR/a/moat.conf"
ctl_a reload >/dev/null
report_a 203.0.113.63 600 content
lab_wait 20 is_b 203.0.113.63 tarpit; c=$?
tap_check "learn_content on (reload): a content refusal reaches B as a tarpit (code $(at_primary 63.113.0.203.a.fleet.test A))" \
	bash -c "[ $c -eq 0 ] && [ '$(at_primary 63.113.0.203.a.fleet.test A)' = 127.0.0.7 ]"
ctl_a del 192.0.2.41 >/dev/null

# 5d. prefixes are not shared: add --share of a /24 is refused with a clear
#     error and nothing added; in a batch it names the line; without
#     --share the same prefix is enforced here (positive control)
out=$(ctl_a add 198.18.200.0/24 --action drop --share 2>&1); rc=$?
tap_check "add --share of a prefix: refused ($rc: $out), nothing added" \
	bash -c "[ $rc -ne 0 ] && echo '$out' | grep -q 'only single addresses are shared' && [ '$(act_a 198.18.200.9)' = pass ]"
printf '198.18.201.1 drop\n198.18.201.0/24 drop\n' >"$LAB_DIR/pfx.txt"
out=$(ctl_a add -f "$LAB_DIR/pfx.txt" --share 2>&1); rc=$?
ctl_a add 198.18.200.0/24 --action drop >/dev/null
tap_check "a batch with a prefix and --share: refused naming the line, nothing applied; without --share the prefix is enforced" \
	bash -c "[ $rc -ne 0 ] && echo '$out' | grep -q 'pfx.txt:2: only single addresses' && [ '$(act_a 198.18.201.1)' = pass ] && [ '$(act_a 198.18.200.9)' = drop ]"
ctl_a del 198.18.200.0/24 >/dev/null

# 6. per-/24 cap: 100 allowed in 198.51.100.0/24, the 101st is reported, not shared
# (the 100 are the primary-down case's)
kill "$(cat "$LAB_DIR/knotd.pid")"
lab_wait 10 bash -c "! ip netns exec $NS_DNS kdig +time=1 +retry=0 +short @198.18.2.2 a.fleet.test SOA | grep -q ."
for i in $(seq 1 100); do
	ctl_a add 198.51.100.$i --action tarpit --share >/dev/null || echo "add $i failed" >&2
done
tap_check "primary down: A enforces its 100 entries at once (198.51.100.77 tarpit)" \
	[ "$(act_a 198.51.100.77)" = tarpit ]
lab_wait 10 bash -c "[ \$(jget() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' \"\$@\"; }; jget \"\$(MOAT_SOCKET=$LAB_DIR/a/control.sock $MOATCTL fleet --json)\" failed) -ge 1 ]"
tap_check "primary down: updates fail, are counted and queued (queued+in flight = $(($(fleet_a queued) + $(fleet_a in_flight))))" \
	[ $(($(fleet_a queued) + $(fleet_a in_flight))) -ge 1 ]
ctl_a add 198.51.100.101 --action tarpit --share >/dev/null
# metric SERIES - A's value in /metrics (rendered once a second)
metric() { lab_scrape 9464 "$LAB_DIR/metrics-a" 2>/dev/null && lab_metric "$LAB_DIR/metrics-a" "$1{zone=\"a.fleet.test\"}"; }
metric_ge() { [ "$(metric "$1")" -ge "$2" ] 2>/dev/null; }
waiting_m() { [ $(($(metric moat_fleet_queued) + $(metric moat_fleet_in_flight))) -ge 100 ] 2>/dev/null; }
lab_wait 5 waiting_m; mq=$?
mf=$(metric moat_fleet_failed_total)
tap_check "/metrics while the primary is down: moat_fleet_queued + in_flight $(($(metric moat_fleet_queued) + $(metric moat_fleet_in_flight))) >= 100, failed_total $mf >= 1" \
	bash -c "[ $mq -eq 0 ] && [ '${mf:-0}' -ge 1 ]"
tap_check "the 101st shared entry of 198.51.100.0/24 is capped and reported" \
	bash -c "[ $(fleet_a capped) -ge 1 ] && grep -q 'event=capped net=198.51.100.0/24' $LOG_A"
ub=$(fleet_a updates_sent)
lab_bg "$NS_DNS" knotd2 knotd -c "$KNOT_PRIMARY_CONF"
t0=$(ms)
drained() { [ "$(fleet_a queued)" = 0 ] && [ "$(fleet_a in_flight)" = 0 ] && [ "$(fleet_a pending)" = 0 ]; }
lab_wait 120 drained
ok=$?
nb=$(($(fleet_a updates_sent) - ub))
echo "# primary back: queue drained in $(($(ms) - t0)) ms, $nb UPDATE(s)"
tap_check "primary back: A's queue returns to 0, the 100 in $nb UPDATE(s) (batched)" \
	bash -c "[ $ok -eq 0 ] && [ $nb -ge 1 ] && [ $nb -le 3 ]"
axfr=$(lab_dns kdig +time=5 @198.18.2.2 a.fleet.test AXFR)
n_a=$(echo "$axfr" | grep -c '\.100\.51\.198\.a\.fleet\.test\..*[[:space:]]A[[:space:]]')
n_names=$(echo "$axfr" | awk '$4=="A" && $1 ~ /100\.51\.198/ {print $1}' | sort -u | wc -l)
[ "$n_a" = 100 ] && [ "$n_names" = 100 ]; c=$?
tap_check "all 100 arrived at the primary, none twice (A records $n_a, names $n_names), the capped one not" [ $c -eq 0 ]
lab_wait 60 is_b 198.51.100.100 tarpit
tap_check "... and reach B (198.51.100.1 and .100 tarpit, .101 pass)" \
	bash -c "[ $(act_b 198.51.100.1) = tarpit ] && [ $(act_b 198.51.100.100) = tarpit ] && [ $(act_b 198.51.100.101) = pass ]"

# 7. wrong TSIG key: refused with its rcode, counted, A keeps enforcing
sed -i "s|^tsig = .*|tsig = hmac-sha256:key_a:$WRONG|" "$LAB_DIR/a/moat.conf"
ctl_a reload >/dev/null
r0=$(fleet_a refused)
ctl_a add 203.0.113.7 --action drop --share >/dev/null
lab_wait 20 bash -c "grep -q 'event=update result=refused zone=a.fleet.test rcode=\"NOTAUTH' $LOG_A"
logged=$?
[ $logged -eq 0 ] && [ "$(fleet_a refused)" -gt "$r0" ]; c=$?
tap_check "wrong key: refused with NOTAUTH logged and counted (refused $r0 -> $(fleet_a refused))" [ $c -eq 0 ]
[ "$(act_a 203.0.113.7)" = drop ] && [ -z "$(at_primary 7.113.0.203.a.fleet.test A)" ]; c=$?
tap_check "wrong key: A still drops 203.0.113.7 itself, the primary has no record" [ $c -eq 0 ]
n_ref=$(grep -c 'event=update result=refused' "$LOG_A")
next=$(fleet_a next_try_in)
tap_check "wrong key: no tight retry loop ($n_ref refused attempt(s), next try in $next s)" \
	bash -c "[ $n_ref -le 2 ] && [ $next -ge 20 ]"
sed -i "s|^tsig = .*|tsig = hmac-sha256:key_a:$SECRET_A|" "$LAB_DIR/a/moat.conf"
ctl_a reload >/dev/null
lab_wait 30 is_b 203.0.113.7 drop; c=$?
tap_check "the key fixed and reloaded: the queued entry reaches B" [ $c -eq 0 ]
lab_wait 10 drained
metrics_match() {
	[ "$(metric moat_fleet_queued)" = 0 ] &&
		[ "$(metric moat_fleet_refused_total)" = "$(fleet_a refused)" ] &&
		[ "$(metric moat_fleet_updates_sent_total)" = "$(fleet_a updates_sent)" ] &&
		[ "$(metric moat_fleet_dropped_total)" = "$(fleet_a dropped)" ] &&
		[ "$(metric moat_fleet_contributed)" = "$(fleet_a contributed)" ]
}
lab_wait 5 metrics_match; c=$?
ls_age=$(($(date +%s) - $(metric moat_fleet_last_success_seconds)))
tap_check "/metrics after the fix: queued 0, refused_total $(metric moat_fleet_refused_total), updates_sent_total $(metric moat_fleet_updates_sent_total) as moatctl fleet; last success ${ls_age} s ago" \
	bash -c "[ $c -eq 0 ] && [ '$(metric moat_fleet_refused_total)' -ge 1 ] && [ $ls_age -le 30 ]"

# 8. a storm of $STORM adds from A, in $NB batches (moatctl add -f) spread
#    over $STORM_SECS s (0: as fast as they go): B converges (its copy of A's zone grows by exactly
#    $STORM), through IXFR only (no AXFR into the secondary nor out to B),
#    and the IXFR bytes stay proportional to the changes
lab_wait 30 drained
lab_wait 30 bash -c "[ \"\$(MOAT_SOCKET=$LAB_DIR/b/control.sock $MOATCTL zones --json | python3 -c 'import json,sys; print([z[\"serial\"] for z in json.load(sys.stdin)[\"zones\"] if z[\"name\"]==\"a.fleet.test\"][0])')\" = \"\$(ip netns exec $NS_DNS kdig +short @198.18.2.2 a.fleet.test SOA | cut -d' ' -f3)\" ]"
zn0=$(zone_b a.fleet.test entries)
SEC_LOG=$LAB_DIR/knotd-sec.log
PRI_LOG=$LAB_DIR/knotd3.log
[ -f "$PRI_LOG" ] || PRI_LOG=$LAB_DIR/knotd2.log
nl_sec=$(wc -l <"$SEC_LOG")
nl_pri=$(wc -l <"$PRI_LOG")
nl_b=$(wc -l <"$LOG_B")
u0=$(fleet_a updates_sent)
b0=$(fleet_a bytes_sent)
# 100 addresses per /24 (per24_max = 100)
for i in $(seq 0 $((STORM - 1))); do
	x=$((i / 100))
	echo "100.$((64 + x / 256)).$((x % 256)).$((i % 100 + 1)) drop"
done >"$LAB_DIR/storm.txt"
split -n l/$NB -a 3 -d "$LAB_DIR/storm.txt" "$LAB_DIR/storm.part."
nl_bx=$(grep -c 'xfr: zone=a.fleet.test\. ' "$LOG_B")
t0=$(ms)
add_fail=0
k=0
for f in "$LAB_DIR"/storm.part.*; do
	# paced: batch k goes at k * SECS / NB seconds (SECS 0: at once)
	while [ $(($(ms) - t0)) -lt $((k * STORM_SECS * 1000 / NB)) ]; do sleep 0.05; done
	ctl_a add -f "$f" --share >/dev/null || add_fail=$((add_fail + 1))
	k=$((k + 1))
done
t_add=$(($(ms) - t0))
want=$((zn0 + STORM))
b_has_all() { [ "$(zone_b a.fleet.test entries)" = "$want" ]; }
lab_wait 180 b_has_all
ok=$?
t1=$(ms)
lab_wait 30 drained
u1=$(fleet_a updates_sent)
b1=$(fleet_a bytes_sent)
first=$(head -1 "$LAB_DIR/storm.txt" | cut -d' ' -f1)
last=$(tail -1 "$LAB_DIR/storm.txt" | cut -d' ' -f1)
[ $ok -eq 0 ] && [ $add_fail -eq 0 ] && is_b "$first" drop && is_b "$last" drop; c=$?
tap_check "storm of $STORM adds ($NB batches in $t_add ms, $add_fail failed): B's copy of A's zone has $(zone_b a.fleet.test entries) entries (want $want) after $((t1 - t0)) ms; $first and $last drop" [ $c -eq 0 ]
# what the DNS servers logged during the storm
tail -n +$((nl_sec + 1)) "$SEC_LOG" >"$LAB_DIR/storm-sec.log"
tail -n +$((nl_pri + 1)) "$PRI_LOG" >"$LAB_DIR/storm-pri.log"
tail -n +$((nl_b + 1)) "$LOG_B" >"$LAB_DIR/storm-b.log"
ax_in=$(grep -c 'AXFR, incoming' "$LAB_DIR/storm-sec.log")
ax_out=$(grep -c 'AXFR, outgoing' "$LAB_DIR/storm-sec.log")
ix_in=$(grep -c 'IXFR, incoming.*finished' "$LAB_DIR/storm-sec.log")
ix_out=$(grep -c 'IXFR, outgoing.*finished' "$LAB_DIR/storm-sec.log")
ix_bytes=$(grep 'IXFR, outgoing.*finished' "$LAB_DIR/storm-sec.log" | grep -o '[0-9]* bytes' |
	awk '{s += $1} END {print s + 0}')
ix_max=$(grep 'IXFR, outgoing.*finished' "$LAB_DIR/storm-sec.log" | grep -o '[0-9]* bytes' |
	awk '$1 > m {m = $1} END {print m + 0}')
bpc=$((ix_bytes / (STORM > 0 ? STORM : 1)))
nu=$((u1 - u0))
echo "# storm: $STORM adds in $t_add ms ($NB batches); B has them all $((t1 - t0)) ms after the first add, $((t1 - t0 - t_add)) ms after the last"
echo "# storm: A sent $nu UPDATEs, $(((b1 - b0) / (STORM > 0 ? STORM : 1))) B per record; secondary: IXFR in $ix_in, IXFR out to B $ix_out ($ix_bytes B, $bpc B per added address, largest $ix_max B), AXFR in $ax_in, AXFR out $ax_out"
# and B's own account of each transfer it took (xfr: ... kind=)
tail -n +$((nl_bx + 1)) <(grep 'xfr: zone=a.fleet.test\. ' "$LOG_B") >"$LAB_DIR/storm-bx.log"
bx_ix=$(grep -c 'kind=ixfr' "$LAB_DIR/storm-bx.log")
bx_ax=$(grep -c 'kind=axfr' "$LAB_DIR/storm-bx.log")
tap_check "storm: IXFR only (secondary: IXFR in $ix_in, AXFR in $ax_in; to B: IXFR $ix_out, AXFR $ax_out; B took $bx_ix IXFR, $bx_ax AXFR)" \
	bash -c "[ $ax_in -eq 0 ] && [ $ax_out -eq 0 ] && [ $ix_in -ge 1 ] && [ $ix_out -ge 1 ] && [ $bx_ax -eq 0 ] && [ $bx_ix -ge 1 ]"
# an address's A + TXT in an IXFR is about 90 bytes (names compressed);
# SOA pairs per changeset add a little: proportional means a bounded cost
# per change, not a zone-sized one (the zone by AXFR is ~84 B per entry
# times all entries)
tap_check "storm: IXFR bytes proportional to the changes ($bpc B per added address, 60..200)" \
	bash -c "[ $bpc -ge 60 ] && [ $bpc -le 200 ]"
[ $nu -ge 1 ] && [ $nu -le $((STORM / 20 + NB)) ]; c=$?
tap_check "storm: batched UPDATEs ($nu for $STORM adds in $NB batches)" [ $c -eq 0 ]
# the primary's pace: Knot logs each UPDATE it applied with its duration
ddns=$(grep -c 'DDNS, finished' "$LAB_DIR/storm-pri.log")
ddns_s=$(grep 'DDNS, finished' "$LAB_DIR/storm-pri.log" | grep -o '[0-9.]* seconds' |
	awk '{s += $1} END {printf "%.3f", s}')
ddns_med=$(grep 'DDNS, finished' "$LAB_DIR/storm-pri.log" | grep -o '[0-9.]* seconds' |
	awk '{print $1 * 1000}' | sort -n | awk '{v[NR] = $1} END {print NR ? v[int((NR + 1) / 2)] : 0}')
rate() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", (s > 0) ? n / s : 0}'; }
echo "# storm: primary applied $ddns UPDATEs in $ddns_s s of work (median $ddns_med ms each): $(rate "$ddns" "$ddns_s") UPDATEs/s, $(rate "$STORM" "$ddns_s") records/s"
# B's loads of A's zone during the storm (each filters the zone whole)
grep 'zone=a.fleet.test event=load' "$LAB_DIR/storm-b.log" |
	sed -n 's/.* entries=\([0-9]*\) .*duration=\([0-9.]*\)s live_ms=\([0-9.]*\).*/\1 \2 \3/p' >"$LAB_DIR/storm-b-loads.txt"
echo "# storm: B loaded A's zone $(wc -l <"$LAB_DIR/storm-b-loads.txt") times; the last at $(tail -1 "$LAB_DIR/storm-b-loads.txt" | cut -d' ' -f1) entries: duration $(tail -1 "$LAB_DIR/storm-b-loads.txt" | cut -d' ' -f2) s, live_ms $(tail -1 "$LAB_DIR/storm-b-loads.txt" | cut -d' ' -f3); live_ms median $(cut -d' ' -f3 "$LAB_DIR/storm-b-loads.txt" | sort -n | awk '{v[NR] = $1} END {print NR ? v[int((NR + 1) / 2)] : 0}'), max $(cut -d' ' -f3 "$LAB_DIR/storm-b-loads.txt" | sort -n | tail -1)"
zsize=$(lab_dns kdig +time=10 @198.18.2.2 a.fleet.test AXFR | grep -o 'Received [0-9]* B' | grep -o '[0-9]*')
echo "# storm: zone by AXFR $zsize B for $(zone_b a.fleet.test entries) entries on B; primary journal+db $(du -sb "$LAB_DIR/knot/db" 2>/dev/null | cut -f1) B"

# 8b. the queue is bounded: primary down, queue_max 16, 20 adds: the oldest
#     are dropped and counted, all 20 are enforced here; primary back: the
#     others arrive
kill "$(cat "$LAB_DIR/knotd2.pid")"
lab_wait 10 bash -c "! ip netns exec $NS_DNS kdig +time=1 +retry=0 +short @198.18.2.2 a.fleet.test SOA | grep -q ."
sed -i 's/^batch = 200$/batch = 200\nqueue_max = 16/' "$LAB_DIR/a/moat.conf"
ctl_a reload >/dev/null
d0=$(fleet_a dropped)
for i in $(seq 101 120); do
	ctl_a add 192.0.2.$i --action drop --share >/dev/null
done
nd=$(($(fleet_a dropped) - d0))
local_ok=1
for i in $(seq 101 120); do [ "$(act_a 192.0.2.$i)" = drop ] || local_ok=0; done
tap_check "queue_max 16, primary down, 20 adds: $nd dropped and counted, all 20 enforced here" \
	bash -c "[ $nd -ge 3 ] && [ $nd -le 4 ] && [ $local_ok = 1 ]"
lab_bg "$NS_DNS" knotd3 knotd -c "$KNOT_PRIMARY_CONF"
# (the dropped ones stay pending until their refresh: wait for the queue)
lab_wait 60 bash -c "[ \"\$(MOAT_SOCKET=$LAB_DIR/a/control.sock $MOATCTL fleet --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"queued\"] + d[\"in_flight\"])')\" = 0 ]"
n_arr=0
for i in $(seq 101 120); do [ -n "$(at_primary $i.2.0.192.a.fleet.test A)" ] && n_arr=$((n_arr + 1)); done
tap_check "primary back: the $((20 - nd)) kept in the queue arrive ($n_arr), the dropped do not (192.0.2.120 there)" \
	bash -c "[ $n_arr -eq $((20 - nd)) ] && [ -n '$(at_primary 120.2.0.192.a.fleet.test A)' ]"

# 9. restart sweep: A stops, an entry is deleted meanwhile (its state
#    file remembers it), A starts again and removes it from the zone
kill "$(cat "$LAB_DIR/ctld-a.pid")"
lab_wait 10 bash -c "! kill -0 $(cat "$LAB_DIR/ctld-a.pid") 2>/dev/null"
sed -i 's|^198\.51\.100\.5\(/32\)\? [0-9]* [0-9]* |198.51.100.5 3 1 |' "$LAB_DIR/a/state/fleet.state"
# and damage: junk, a line cut short, binary bytes (skipped and counted)
printf 'junk line\n192.0.2.7 2 17\n\001\377\376 x\n' >>"$LAB_DIR/a/state/fleet.state"
start a "$NS_APP" ctld-a2
LOG_A=$LAB_DIR/ctld-a2.log
lab_wait 20 bash -c "[ -z \"\$(ip netns exec $NS_DNS kdig +short @198.18.2.2 5.100.51.198.a.fleet.test A)\" ]"
[ $? -eq 0 ] && grep -q 'event=restore kept=[0-9]* sweep=[1-9]' "$LOG_A"; c=$?
tap_check "restart: the sweep deletes an own record that expired while A was down" [ $c -eq 0 ]
tap_check "restart: 3 damaged lines of fleet.state skipped and logged, the rest restored" \
	grep -Eq 'fleet: event=restore path=.*/fleet.state bad_lines=3 first=[0-9]+ .*fleet: event=restore kept=[1-9][0-9]* sweep=[1-9][0-9]* bad=3 ' \
	<(tr '\n' ' ' <"$LOG_A")

exit $((TAP_FAIL > 0))

