#!/bin/bash
# test_syncookie.sh - SYN cookies in the XDP fast path (docs/xdp.md "SYN
# cookies"), real kernel TCP on both ends: moat_xdp on the appliance's inet0
# with --syn-cookies on (net.ipv4.tcp_syncookies = 2 in app), moat-smtpd
# relaying to smtp-sink.
#   1. an SMTP client (swaks) delivers a message while its SYN was answered
#      in XDP: syn_cookie counted, the kernel's TcpExtSyncookiesSent did not
#      move and its TcpExtSyncookiesRecv did (the listener took the ACK as
#      a cookie), and a capture behind XDP saw none of the client's SYNs;
#   2. a hand-made handshake (cookie_ack.py): the ACK of the XDP cookie
#      gets a connection, the same with a wrong cookie gets none
#      (TcpExtSyncookiesFailed);
#   3. a SYN flood (moat-pktgen, spoofed 203.0.113.0/24): answered in XDP
#      (syn_cookie grows with it), TcpExtSyncookiesSent grows by the keep
#      SYNs alone (one a second per CPU), no SYN_RECV in app;
#   4. a DROP-listed and an ALLOW-listed source get no cookie;
#   5. net.ipv4.tcp_syncookies = 1: the loader says why and loads without
#      cookies (a client still gets through, no syn_cookie counted).
# The pin directory is unique per run and removed on exit, even on failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
build=${MOAT_BUILD_DIR:-$root/build}
LOADER=$build/tests/netns/xdp_loader
PASS_OBJ=$build/bpf/moat_xdp_pass.bpf.o
SMTPD=$build/dataplane/smtp/moat-smtpd
PKTGEN=$build/tools/moat-pktgen
PROBE=$here/tcp_probe.py
ACKER=$here/cookie_ack.py
PY=/usr/bin/python3

tap_plan 11
for f in "$LOADER" "$PASS_OBJ" "$SMTPD" "$PKTGEN"; do
	[ -e "$f" ] || { tap_not_ok "missing $f (build first)"; exit 1; }
done
lab_init
PIN=/sys/fs/bpf/moat-test-$LAB_ID
cleanup() {
	[ -e "$PIN/link_inet0" ] && "$LOADER" --pin "$PIN" detach inet0 2>/dev/null
	rm -rf "$PIN"
	lab_down
}
trap 'cleanup' EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

if ! lab_up || ! lab_sink >/dev/null; then
	tap_not_ok "lab up"
	exit 1
fi
for a in 192.0.2.13 192.0.2.14 192.0.2.10 192.0.2.12; do
	lab_sender "$a"
done
# XDP_TX frames (the cookie SYN-ACKs) reach a veth peer only if it runs XDP
ip -n "$NS_INET" link set dev app0 xdpdrv obj "$PASS_OBJ" sec xdp
lab_app sysctl -qw net.ipv4.tcp_syncookies=2
lab_smtpd_conf "$LAB_DIR/s.conf" "workers = 2
dns_server = 198.18.2.2
dnsbl_zones =
spf = no
log_level = info"
lab_bg "$NS_APP" smtpd "$SMTPD" -c "$LAB_DIR/s.conf"
lab_wait 10 bash -c "ip netns exec '$NS_APP' ss -ltnH 'sport = :25' | grep -q LISTEN"
# a second listener (port 2525) for the hand-made handshakes: it logs
# every connection it accepts
lab_bg "$NS_APP" listen $PY "$PROBE" listen 198.18.1.1 2525 "$LAB_DIR/accept.log"

in_app() { nsenter --net="/run/netns/$NS_APP" "$@"; }
# start_loader NAME ARGS... - the loader in app, wait for "ready"
start_loader() {
	local name=$1
	shift
	in_app "$LOADER" --pin "$PIN" --port 25 --port 2525 --drop 192.0.2.10 --allow 192.0.2.12 \
		"$@" run inet0 >"$LAB_DIR/$name.log" 2>&1 &
	LAB_PIDS+=($!)
	echo $! >"$LAB_DIR/$name.pid"
	lab_wait 10 grep -q '^ready' "$LAB_DIR/$name.log"
}
stop_loader() { kill "$(cat "$LAB_DIR/$1.pid")"; lab_wait 5 bash -c "! kill -0 $(cat "$LAB_DIR/$1.pid")"; }
# stat NAME - one pinned counter
stat() { "$LOADER" --pin "$PIN" stats | awk -v n="$1" '$1 == n {print $2}'; }
# tcpext NAME - a TcpExt counter of app's network namespace
tcpext() {
	lab_app nstat -az "TcpExt$1" | awk -v n="TcpExt$1" '$1 == n {print $2}'
}
# inet0 CMD... - run CMD in inet on CPU 0: a veth's XDP runs on the
# sender's CPU, so every SYN below counts in CPU 0's row (one keep SYN a
# second per row)
inet0() { taskset -c 0 ip netns exec "$NS_INET" "$@"; }
# smtp SRC - one message from SRC through moat-smtpd (swaks, real TCP)
smtp() {
	inet0 swaks --server 198.18.1.1 --port 25 --local-interface "$1" --from a@example.org \
		--to b@moat.test --timeout 5 >"$LAB_DIR/swaks.$1.log" 2>&1
}

if start_loader l1 --syn-cookies on && grep -q 'syn_cookies=on' "$LAB_DIR/l1.log"; then
	tap_ok "loader: SYN cookies on (net.ipv4.tcp_syncookies=2 in app)"
else
	tap_not_ok "loader with --syn-cookies on:"
	sed 's/^/# /' "$LAB_DIR/l1.log"
	exit 1
fi
dmac=$(ip -n "$NS_APP" link show inet0 | awk '/link\/ether/ {print $2}')

# --- 1. a real SMTP session through an XDP cookie -------------------------
# the capture behind XDP: what the kernel of app receives on inet0
# the keep SYN of this second on CPU 0 (the kernel's cookie), then the
# client, whose SYN is within the same second; on a slow machine the
# second may be over first (the client's SYN then is the next keep SYN):
# up to 3 tries
for try in 1 2 3; do
	ip netns exec "$NS_APP" tcpdump -U -i inet0 -nn -w "$LAB_DIR/c1.pcap" \
		'tcp port 25 and host 192.0.2.14' 2>/dev/null &
	cap=$!
	LAB_PIDS+=($cap)
	lab_wait 5 test -s "$LAB_DIR/c1.pcap"
	sleep 0.5
	inet0 $PY "$PROBE" connect 192.0.2.13 198.18.1.1 25 1 >/dev/null
	s0=$(tcpext SyncookiesSent) r0=$(tcpext SyncookiesRecv) c0=$(stat syn_cookie)
	smtp 192.0.2.14
	src=$?
	s1=$(tcpext SyncookiesSent) r1=$(tcpext SyncookiesRecv) c1=$(stat syn_cookie)
	sleep 0.5
	kill "$cap"
	wait "$cap" 2>/dev/null
	[ "$s1" -eq "$s0" ] && break
done
if [ $src -eq 0 ] && grep -q '^<- *250 .*' "$LAB_DIR/swaks.192.0.2.14.log" &&
	grep -q '^ *-> *QUIT' "$LAB_DIR/swaks.192.0.2.14.log"; then
	tap_ok "swaks from 192.0.2.14 delivered a message through moat-smtpd (try $try)"
else
	tap_not_ok "swaks from 192.0.2.14:"
	sed 's/^/# /' "$LAB_DIR/swaks.192.0.2.14.log"
fi
syns=$(tcpdump -nn -r "$LAB_DIR/c1.pcap" 'tcp[tcpflags] & tcp-syn != 0' 2>/dev/null | wc -l)
acks=$(tcpdump -nn -r "$LAB_DIR/c1.pcap" 2>/dev/null | wc -l)
if [ $((c1 - c0)) -ge 1 ] && [ "$s1" -eq "$s0" ] && [ $((r1 - r0)) -ge 1 ] && [ "$syns" -eq 0 ] &&
	[ "$acks" -ge 5 ]; then
	tap_ok "the session's SYN was answered in XDP: syn_cookie +$((c1 - c0)), kernel SyncookiesSent +0, SyncookiesRecv +$((r1 - r0)); behind XDP 0 SYNs, $acks other segments"
else
	tap_not_ok "syn_cookie +$((c1 - c0)), SyncookiesSent +$((s1 - s0)), SyncookiesRecv +$((r1 - r0)); behind XDP $syns SYNs, $acks segments"
fi

# --- 2. hand-made handshakes: the right cookie and a wrong one ------------
# source 192.0.2.99 is no address of inet's kernel: it drops the SYN-ACK
# without a RST; the packet socket sees it
keep() { inet0 $PY "$PROBE" connect 192.0.2.13 198.18.1.1 2525 1 >/dev/null; }
acker() { inet0 $PY "$ACKER" app0 "$dmac" 192.0.2.99 198.18.1.1 2525 "$1" "$2"; }
# hdr=24: the SYN-ACK is the program's (the kernel's has timestamps,
# SACK and window scaling besides the MSS)
for try in 1 2 3; do
	keep   # this second's keep SYN on CPU 0 (the kernel's cookie, its own ACK)
	r0=$(tcpext SyncookiesRecv)
	out=$(acker $((40000 + try)) 0)
	[[ $out == *" hdr=24" ]] && break
done
if [[ $out == isn=*" win=64240 mss=1460 hdr=24" ]] && lab_wait 3 grep -q '^accept 192.0.2.99$' "$LAB_DIR/accept.log"; then
	tap_ok "the ACK of the XDP cookie ($out) gets a connection"
else
	tap_not_ok "right cookie: '$out'; accepted: $(grep -c 192.0.2.99 "$LAB_DIR/accept.log")"
fi
r1=$(tcpext SyncookiesRecv)
sed -i '/192.0.2.99/d' "$LAB_DIR/accept.log"
for try in 1 2 3; do
	keep
	f0=$(tcpext SyncookiesFailed) r2=$(tcpext SyncookiesRecv)
	out=$(acker $((40010 + try)) 1000)
	[[ $out == *" hdr=24" ]] && break
done
sleep 1
f1=$(tcpext SyncookiesFailed) r3=$(tcpext SyncookiesRecv)
if [[ $out == isn=* ]] && ! grep -q '192.0.2.99' "$LAB_DIR/accept.log" && [ $((f1 - f0)) -eq 1 ] &&
	[ $((r1 - r0)) -eq 1 ] && [ "$r3" -eq "$r2" ] &&
	[ -z "$(lab_app ss -tnH state established '( dport >= :40011 and dport <= :40013 )')" ]; then
	tap_ok "a wrong cookie gets no connection (kernel SyncookiesFailed +1; SyncookiesRecv +1 for the right one, +0 for it)"
else
	tap_not_ok "wrong cookie: '$out', SyncookiesFailed +$((f1 - f0)), SyncookiesRecv +$((r1 - r0)) / +$((r3 - r2)), $(grep -c 192.0.2.99 "$LAB_DIR/accept.log") accepted"
fi

# --- 3. a flood -------------------------------------------------------------
s0=$(tcpext SyncookiesSent) c0=$(stat syn_cookie) k0=$(stat syn_cookie_keep)
echo "203.0.113.0/24 pass" >"$LAB_DIR/expect"
lab_inet "$PKTGEN" -i app0 --to 198.18.1.1 --dst-mac "$dmac" --expect "$LAB_DIR/expect" \
	--src 203.0.113.0/24 --rate 20000 -d 3 --timeout 500 --no-rx -q --json >"$LAB_DIR/flood.json" 2>"$LAB_DIR/flood.err"
prc=$?
s1=$(tcpext SyncookiesSent) c1=$(stat syn_cookie) k1=$(stat syn_cookie_keep)
sent=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$LAB_DIR/flood.json" 2>/dev/null)
synrecv=$(lab_app ss -tnH state syn-recv | wc -l)
if [ "$prc" -eq 0 ] && [ "${sent:-0}" -ge 30000 ] && [ $((c1 - c0)) -ge $((sent * 95 / 100)) ] &&
	[ $((s1 - s0)) -le $((k1 - k0)) ] && [ $((k1 - k0)) -le 16 ] && [ "$synrecv" -eq 0 ]; then
	tap_ok "flood of $sent SYNs: syn_cookie +$((c1 - c0)), keep SYNs +$((k1 - k0)), kernel SyncookiesSent +$((s1 - s0)), no SYN_RECV"
else
	tap_not_ok "flood: pktgen rc $prc, sent ${sent:-?}, syn_cookie +$((c1 - c0)), keep +$((k1 - k0)), SyncookiesSent +$((s1 - s0)), SYN_RECV $synrecv"
	sed 's/^/# /' "$LAB_DIR/flood.err" | tail -5
fi
# the session still gets through after the flood
if smtp 192.0.2.13; then
	tap_ok "a session after the flood delivers"
else
	tap_not_ok "session after the flood:"
	sed 's/^/# /' "$LAB_DIR/swaks.192.0.2.13.log" | tail -5
fi

# --- 4. listed sources get no cookie ----------------------------------------
c0=$(stat syn_cookie) d0=$(stat drop) a0=$(stat allow)
got=$(inet0 $PY "$PROBE" connect 192.0.2.10 198.18.1.1 2525 1)
got2=$(inet0 $PY "$PROBE" connect 192.0.2.12 198.18.1.1 2525 2)
c1=$(stat syn_cookie) d1=$(stat drop) a1=$(stat allow)
if [ "$got" = timeout ] && [ "$got2" = connected-reply ] && [ "$c1" -eq "$c0" ] &&
	[ $((d1 - d0)) -ge 1 ] && [ $((a1 - a0)) -ge 1 ]; then
	tap_ok "DROP source times out, ALLOW source connects, neither gets a cookie"
else
	tap_not_ok "DROP: $got, ALLOW: $got2, syn_cookie +$((c1 - c0)), drop +$((d1 - d0)), allow +$((a1 - a0))"
fi

# --- 5. net.ipv4.tcp_syncookies = 1: loaded without cookies, said why ------
stop_loader l1
lab_app sysctl -qw net.ipv4.tcp_syncookies=1
if start_loader l2 --syn-cookies on && grep -q 'syn_cookies=off' "$LAB_DIR/l2.log" &&
	grep -q 'tcp_syncookies is 1 in this network namespace, must be 2' "$LAB_DIR/l2.log"; then
	tap_ok "tcp_syncookies=1: the loader says why and runs without cookies"
else
	tap_not_ok "loader with tcp_syncookies=1:"
	sed 's/^/# /' "$LAB_DIR/l2.log"
fi
c0=$(stat syn_cookie)
if smtp 192.0.2.14 && [ "$(stat syn_cookie)" -eq "$c0" ]; then
	tap_ok "without cookies a session delivers, none counted"
else
	tap_not_ok "without cookies: swaks $(tail -1 "$LAB_DIR/swaks.192.0.2.14.log"), syn_cookie $c0 -> $(stat syn_cookie)"
fi

# --- auto: below the threshold the kernel answers, above it XDP -------------
stop_loader l2
lab_app sysctl -qw net.ipv4.tcp_syncookies=2
start_loader l3 --syn-cookies auto --cookie-threshold 2000 || { tap_not_ok "auto loader"; exit 1; }
c0=$(stat syn_cookie)
smtp 192.0.2.14
c1=$(stat syn_cookie)
lab_inet "$PKTGEN" -i app0 --to 198.18.1.1 --dst-mac "$dmac" --expect "$LAB_DIR/expect" \
	--src 203.0.113.0/24 --rate 20000 -d 2 --timeout 500 --no-rx -q >/dev/null 2>&1
c2=$(stat syn_cookie)
if [ "$c1" -eq "$c0" ] && [ $((c2 - c1)) -ge 20000 ]; then
	tap_ok "auto (threshold 2000/s): a lone session gets none, a 20 kpps flood $((c2 - c1)) cookies"
else
	tap_not_ok "auto: lone session +$((c1 - c0)) cookies, flood +$((c2 - c1))"
fi
