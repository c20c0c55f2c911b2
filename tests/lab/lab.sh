#!/bin/bash
# lab.sh - the namespace lab of DESIGN.md, for tests, demo and benchmarks.
#
# Source it, then:
#   lab_init              pick a unique id, arm teardown on EXIT/INT/TERM
#   lab_up                namespaces inet, app (the appliance), dns, mx + links
#   lab_knot DIR          start Knot DNS in dns from DIR/*.zone (name = file stem)
#   lab_knot_reload       re-read zone files (Knot computes the IXFR diff)
#   (knot.conf extras: KNOT_SERVER_EXTRA server: lines, KNOT_PRE_CONF before the acl section (key:, remote:),
#   KNOT_EXTRA_CONF more acl entries, KNOT_TEMPLATE_EXTRA template lines,
#   KNOT_ACL the template acl (default "lab", no TSIG), DIR/NAME.zone.conf
#   lines for that zone's entry, e.g. "    acl: tsig" or "    notify: app")
#   lab_sink [ARGS]       start Postfix smtp-sink in mx on 198.18.3.2:25,
#                         dumping each message under $LAB_DIR/sink/
#   lab_smtpd_conf CONF LINES   moat-smtpd's CONF for the lab: listen
#                         198.18.1.1:25 (app), hostname mx.moat.test, relay
#                         to the sink (198.18.3.2:25), local_domains
#                         moat.test, then LINES (the test's own keys)
#   lab_scan_conf CONF RULE [LINES]   moat-smtpd's CONF for the lab with
#                         filters = scan: listen 198.18.1.1:25, relay to the
#                         sink, 2 workers, no SPF, the rules default.rules
#                         plus RULE ($LAB_DIR/scan.rules), the cache in
#                         $LAB_DIR/run/cache (made, owned by moat); LINES
#                         (more keys) before log_level = info; sets rules
#                         (the rules file's path)
#   lab_sender ADDR       add a sender address (192.0.2.x, 2001:db8:100::x) in inet
#   lab_inet/app/dns/mx CMD...   run a command in that namespace
#   lab_bg NS LOGNAME CMD...     start CMD in NS in the background; killed on teardown
#   lab_wait SECONDS CMD...      retry CMD until it succeeds (wait for an event)
#   lab_count ERE FILE, lab_count_ge N ERE FILE   count matching (log) lines
#   lab_down              kill what the lab started, delete namespaces (idempotent)
#
# Addresses (RFC 2544 198.18.0.0/15 for links, documentation ranges for senders):
#   inet 198.18.1.2  2001:db8:1::2  <->  app 198.18.1.1  2001:db8:1::1
#   dns  198.18.2.2  2001:db8:2::2  <->  app 198.18.2.1  2001:db8:2::1
#   mx   198.18.3.2  2001:db8:3::2  <->  app 198.18.3.1  2001:db8:3::1
#   senders in inet: 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24 2001:db8:100::/48
# Every name carries the run's id: moat-<id>-<role>.  Default routes point
# at the appliance namespace, which has no uplink: nothing leaves the lab.

LAB_ID=""
LAB_DIR=""
LAB_PIDS=()

lab_log() { echo "lab[$LAB_ID]: $*" >&2; }

lab_init() {
	# MOAT_LAB_PREFIX (set by tools/test, <= 4 chars) tags every lab of one
	# test run, so the run can check it left none behind, whatever else runs.
	LAB_ID=${MOAT_LAB_PREFIX:-}$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
	NS_INET="moat-$LAB_ID-inet"
	NS_APP="moat-$LAB_ID-app"
	NS_DNS="moat-$LAB_ID-dns"
	NS_MX="moat-$LAB_ID-mx"
	LAB_DIR=$(mktemp -d "/tmp/moat-lab-$LAB_ID.XXXX")
	chmod 755 "$LAB_DIR"
	trap 'lab_down' EXIT
	trap 'lab_down; exit 130' INT
	trap 'lab_down; exit 143' TERM
	export NS_INET NS_APP NS_DNS NS_MX LAB_DIR LAB_ID
}

lab_inet() { ip netns exec "$NS_INET" "$@"; }
lab_app() { ip netns exec "$NS_APP" "$@"; }
lab_dns() { ip netns exec "$NS_DNS" "$@"; }
lab_mx() { ip netns exec "$NS_MX" "$@"; }

# lab_link NS_A IF_A NS_B IF_B - a veth pair between two namespaces
lab_link() {
	local tmpa="m$LAB_ID${5:-x}a" tmpb="m$LAB_ID${5:-x}b"
	ip link add "$tmpa" type veth peer name "$tmpb" || return 1
	ip link set "$tmpa" netns "$1" || return 1
	ip link set "$tmpb" netns "$3" || return 1
	ip -n "$1" link set "$tmpa" name "$2" || return 1
	ip -n "$3" link set "$tmpb" name "$4" || return 1
	ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

lab_up() {
	local ns
	for ns in "$NS_INET" "$NS_APP" "$NS_DNS" "$NS_MX"; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
			net.ipv6.conf.default.accept_dad=0 >/dev/null
	done
	lab_link "$NS_INET" app0 "$NS_APP" inet0 i || return 1
	lab_link "$NS_DNS" app0 "$NS_APP" dns0 d || return 1
	lab_link "$NS_MX" app0 "$NS_APP" mx0 m || return 1

	ip -n "$NS_APP" addr add 198.18.1.1/24 dev inet0
	ip -n "$NS_APP" addr add 2001:db8:1::1/64 dev inet0 nodad
	ip -n "$NS_APP" addr add 198.18.2.1/24 dev dns0
	ip -n "$NS_APP" addr add 2001:db8:2::1/64 dev dns0 nodad
	ip -n "$NS_APP" addr add 198.18.3.1/24 dev mx0
	ip -n "$NS_APP" addr add 2001:db8:3::1/64 dev mx0 nodad
	ip netns exec "$NS_APP" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	local r
	for r in 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24; do
		ip -n "$NS_APP" route add "$r" via 198.18.1.2
	done
	ip -n "$NS_APP" -6 route add 2001:db8:100::/48 via 2001:db8:1::2

	ip -n "$NS_INET" addr add 198.18.1.2/24 dev app0
	ip -n "$NS_INET" addr add 2001:db8:1::2/64 dev app0 nodad
	ip -n "$NS_INET" route add default via 198.18.1.1
	ip -n "$NS_INET" -6 route add default via 2001:db8:1::1

	ip -n "$NS_DNS" addr add 198.18.2.2/24 dev app0
	ip -n "$NS_DNS" addr add 2001:db8:2::2/64 dev app0 nodad
	ip -n "$NS_DNS" route add default via 198.18.2.1
	ip -n "$NS_DNS" -6 route add default via 2001:db8:2::1

	ip -n "$NS_MX" addr add 198.18.3.2/24 dev app0
	ip -n "$NS_MX" addr add 2001:db8:3::2/64 dev app0 nodad
	ip -n "$NS_MX" route add default via 198.18.3.1
	ip -n "$NS_MX" -6 route add default via 2001:db8:3::1
	lab_log "up: $NS_INET $NS_APP $NS_DNS $NS_MX (dir $LAB_DIR)"
}

# lab_sender ADDR - an extra source address for clients in inet
lab_sender() {
	case "$1" in
	*:*) ip -n "$NS_INET" addr add "$1/128" dev lo nodad ;;
	*) ip -n "$NS_INET" addr add "$1/32" dev lo ;;
	esac
}

# lab_bg NS NAME CMD... - start CMD in NS, log to $LAB_DIR/NAME.log
lab_bg() {
	local ns=$1 name=$2
	shift 2
	ip netns exec "$ns" "$@" >"$LAB_DIR/$name.log" 2>&1 &
	LAB_PIDS+=($!)
	echo $! >"$LAB_DIR/$name.pid"
}

# lab_wait SECONDS CMD... - retry CMD every 0.1 s until it succeeds
lab_wait() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}

# lab_scrape PORT FILE - a daemon's Prometheus text from 127.0.0.1:PORT in
# app (moat-controld's [metrics], moat-smtpd's metrics_listen) into FILE
lab_scrape() {
	lab_app python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' \
		"$1" >"$2.tmp" && mv "$2.tmp" "$2"
}

# lab_metric FILE SERIES - the value of one series (name{labels} as
# exposed) in a scraped FILE, empty when absent
lab_metric() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }

# lab_count ERE FILE - how many lines of FILE match ERE
lab_count() { grep -Ec -- "$1" "$2" 2>/dev/null; }

# lab_count_ge N ERE FILE - at least N lines of FILE match ERE: with
# lab_wait, waits for the next log line of a kind, the event that says a
# refusal has happened (c=$(lab_count ERE LOG); ...; lab_wait 5
# lab_count_ge $((c + 1)) ERE LOG) before checking that nothing followed it
lab_count_ge() { [ "$(lab_count "$2" "$3")" -ge "$1" ] 2>/dev/null; }

# lab_knot DIR [ACL_EXTRA] - Knot DNS primary in dns, one zone per DIR/NAME.zone
lab_knot() {
	local src=$1 k="$LAB_DIR/knot" z name
	mkdir -p "$k/zones" "$k/run" "$k/db"
	cp "$src"/*.zone "$k/zones/"
	cat >"$k/knot.conf" <<CONF
server:
    listen: [ 198.18.2.2@53, 2001:db8:2::2@53 ]
    rundir: "$k/run"
${KNOT_SERVER_EXTRA:-}
log:
  - target: stderr
    any: info
database:
    storage: "$k/db"
${KNOT_PRE_CONF:-}
acl:
  - id: lab
    address: [ 198.18.0.0/15, 2001:db8::/32, 127.0.0.0/8 ]
    action: [ transfer, notify ]
${KNOT_EXTRA_CONF:-}
template:
  - id: default
    storage: "$k/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    semantic-checks: off
    acl: ${KNOT_ACL:-lab}
${KNOT_TEMPLATE_EXTRA:-}
zone:
CONF
	for z in "$k"/zones/*.zone; do
		name=$(basename "$z" .zone)
		echo "  - domain: $name" >>"$k/knot.conf"
		# per-zone settings (acl, notify...) from DIR/NAME.zone.conf
		[ -f "$src/$name.zone.conf" ] && cat "$src/$name.zone.conf" >>"$k/knot.conf"
		KNOT_ZONES+=("$name")
	done
	lab_bg "$NS_DNS" knotd knotd -c "$k/knot.conf"
	KNOT_CONF="$k/knot.conf"
	export KNOT_CONF
	for name in "${KNOT_ZONES[@]}"; do
		if ! lab_wait 15 lab_dns kdig +time=1 +retry=0 @198.18.2.2 "$name" SOA +short; then
			lab_log "knotd did not serve $name; log:"
			cat "$LAB_DIR/knotd.log" >&2
			return 1
		fi
	done
	lab_log "knot serving ${KNOT_ZONES[*]} on 198.18.2.2"
}

# lab_knot_reload - Knot re-reads its zone files (serial bump => IXFR diff)
lab_knot_reload() {
	cp "$1"/*.zone "$LAB_DIR/knot/zones/" 2>/dev/null || true
	lab_dns knotc -c "$KNOT_CONF" zone-reload >/dev/null
}

# lab_knot_servfail NAME - a zone Knot is configured for but never loads:
# every question under NAME gets SERVFAIL (a DNS temporary error); returns
# once the reload has landed (REFUSED before)
lab_knot_servfail() {
	printf '  - domain: %s\n    file: "%s/none.zone"\n' "$1" "$LAB_DIR" >>"$KNOT_CONF"
	lab_dns knotc -c "$KNOT_CONF" reload >/dev/null 2>&1
	lab_wait 10 bash -c "ip netns exec $NS_DNS kdig +time=1 +retry=0 @198.18.2.2 $1 SOA | grep -q 'status: SERVFAIL'"
}

# lab_sink [EXTRA ARGS] - smtp-sink in mx, messages dumped to $LAB_DIR/sink/
lab_sink() {
	mkdir -p "$LAB_DIR/sink"
	chown postfix "$LAB_DIR/sink"
	lab_bg "$NS_MX" smtp-sink smtp-sink -u postfix -R "$LAB_DIR/sink" \
		-d "msg-%H%M%S." "$@" 198.18.3.2:25 256
	if ! lab_wait 10 lab_mx bash -c 'exec 3<>/dev/tcp/198.18.3.2/25'; then
		lab_log "smtp-sink did not listen; log:"
		cat "$LAB_DIR/smtp-sink.log" >&2
		return 1
	fi
}

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lab_scan_conf() {
	mkdir -p "$LAB_DIR/run/cache" && chown -R moat "$LAB_DIR/run"
	rules=$LAB_DIR/scan.rules
	{
		cat "$LAB_SRC/../../dataplane/smtp/rules/default.rules"
		echo "$2"
	} >"$rules"
	lab_smtpd_conf "$1" "workers = 2
spf = no
max_conn_per_ip = 2000
filters = scan
scan_rules = $rules
scan_cache_dir = $LAB_DIR/run/cache
${3:-}
log_level = info"
}

lab_smtpd_conf() {
	cat >"$1" <<CONF
listen = 198.18.1.1:25
hostname = mx.moat.test
relay = 198.18.3.2:25
local_domains = moat.test
$2
CONF
}

lab_down() {
	local ns pid
	[ -n "$LAB_ID" ] || return 0
	for pid in "${LAB_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	# a second for them to exit on SIGTERM before the SIGKILL sweep (a
	# killed job is reported as "Killed" on the caller's terminal)
	local i alive
	for i in $(seq 20); do
		alive=
		for pid in "${LAB_PIDS[@]}"; do
			kill -0 "$pid" 2>/dev/null && { alive=1; break; }
		done
		[ -n "$alive" ] || break
		sleep 0.05
	done
	for ns in "$NS_INET" "$NS_APP" "$NS_DNS" "$NS_MX"; do
		[ -e "/run/netns/$ns" ] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null
		done
	done
	for pid in "${LAB_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for ns in "$NS_INET" "$NS_APP" "$NS_DNS" "$NS_MX"; do
		[ -e "/run/netns/$ns" ] && ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$LAB_DIR" ] && [ -z "${LAB_KEEP:-}" ]; then
		rm -rf "$LAB_DIR"
	fi
	LAB_PIDS=()
	LAB_ID=""
}

# TAP helpers for shell tests
TAP_N=0
TAP_FAIL=0
tap_plan() { echo "TAP version 13"; echo "1..$1"; }
# a description is one line of TAP: line breaks in it (a client's
# multi-line error quoted in it) are folded to " | "
tap_line() { local d="$*"; d=${d//$'\r'/}; echo "${d//$'\n'/ | }"; }
tap_ok() { TAP_N=$((TAP_N + 1)); tap_line "ok $TAP_N - $*"; }
tap_not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAIL=$((TAP_FAIL + 1)); tap_line "not ok $TAP_N - $*"; }
# tap_expect DESC ERE OUTPUT - one case: passes when a line of OUTPUT (a
# client's transcript) matches ERE; else the transcript goes to stderr
tap_expect() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then tap_ok "$1"; else
		tap_not_ok "$1: want /$2/"; printf '%s\n' "$3" | sed 's/^/#   /' >&2; fi
}
# tap_check DESC CMD... - one case: passes when CMD exits 0
tap_check() {
	local desc=$1
	shift
	if "$@" >&2; then tap_ok "$desc"; else tap_not_ok "$desc"; fi
}
