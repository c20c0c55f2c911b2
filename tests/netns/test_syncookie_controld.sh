#!/bin/bash
# test_syncookie_controld.sh - [xdp] syn_cookies through moat-controld: the
# key reaches the program (the log says so, a client's SYN is answered in
# XDP: moatctl stats counts syn_cookie), the kernel's cookie counters are
# in the metrics (moat_kernel_syncookies_total, recv grows with the
# client), and a reload that changes the key is refused (a restart loads
# it) while the running program keeps answering.  net.ipv4.tcp_syncookies
# changed under the running program: at 0 the listener refuses every
# cookie ACK (the client gets a RST), so moat-controld holds the cookies
# (log, status, metrics) and clients connect through the kernel; at 2
# again the cookies resume.  Restarted while it is 1: loaded without
# cookies, and once it is 2 the log says a restart loads them.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"

ctld_test syncookie_ctld 8 "$PASS_OBJ" "$PROBE"
ctld_lab_up
lab_sender 192.0.2.13
lab_app sysctl -qw net.ipv4.tcp_syncookies=2
# XDP_TX frames reach the veth peer only if it runs XDP
ip -n "$NS_INET" link set dev app0 xdpdrv obj "$PASS_OBJ" sec xdp
lab_bg "$NS_APP" listen $PY "$PROBE" listen 198.18.1.1 25 "$LAB_DIR/accept.log"
MPORT=9473
conf() {
	cat >"$LAB_DIR/moat.conf" <<CONF
[daemon]
socket = $SOCK
state_dir = $LAB_DIR/state
[xdp]
interfaces = inet0
pin_dir = $PIN
syn_cookies = $1
[metrics]
listen = 127.0.0.1:$MPORT
CONF
}
conf on
ctld_on_exit() { mctl detach >/dev/null 2>&1; }
if ! start_ctld ctld; then
	tap_not_ok "moat-controld start"
	sed 's/^/# /' "$LAB_DIR/ctld.log"
	exit 1
fi
lab_wait 5 bash -c "ip netns exec '$NS_APP' ss -ltnH 'sport = :25' | grep -q LISTEN"
stat() { jget "$(mctl stats --json)" "d['counters']['$1']"; }
recv() {
	lab_scrape "$MPORT" "$LAB_DIR/m" && lab_metric "$LAB_DIR/m" 'moat_kernel_syncookies_total{counter="recv"}'
}
# connect - a keep SYN (the kernel's cookie, this second's on CPU 0), then
# the client whose SYN the program answers (the same CPU, the same second)
connect() {
	taskset -c 0 ip netns exec "$NS_INET" $PY "$PROBE" connect 192.0.2.13 198.18.1.1 25 2 >/dev/null
	taskset -c 0 ip netns exec "$NS_INET" $PY "$PROBE" connect 192.0.2.13 198.18.1.1 25 2
}

# cookie_connect - connect until the client's SYN was the program's (up
# to 3 tries: on a slow machine the second may be over between the two);
# sets got (the client's outcome), c0 and c1 (syn_cookie before, after)
cookie_connect() {
	local try
	for try in 1 2 3; do
		c0=$(stat syn_cookie)
		got=$(connect)
		c1=$(stat syn_cookie)
		[ "$c1" -gt "$c0" ] && break
	done
}
# the metrics are rendered once a second
recv_ge() { [ "$(recv)" -ge "$1" ] 2>/dev/null; }
lab_wait 5 recv_ge 0
r0=$(recv)
cookie_connect
lab_wait 4 recv_ge $((r0 + 2))
r1=$(recv)
if grep -q 'SYN cookies on' "$LAB_DIR/ctld.log" && [ "$got" = connected-reply ] &&
	[ $((c1 - c0)) -ge 1 ]; then
	tap_ok "syn_cookies = on: loaded with cookies, a client answered in XDP connects (syn_cookie +$((c1 - c0)))"
else
	tap_not_ok "syn_cookies = on: client $got, syn_cookie ${c0:-?} -> ${c1:-?}"
	grep -i 'cookie\|xdp' "$LAB_DIR/ctld.log" | sed 's/^/# /' | head
fi
if [ -n "$r0" ] && [ -n "$r1" ] && [ "$r1" -ge $((r0 + 2)) ]; then
	tap_ok "metric moat_kernel_syncookies_total{counter=\"recv\"} $r0 -> $r1"
else
	tap_not_ok "metric recv '$r0' -> '$r1'"
fi
conf off
out=$(mctl reload 2>&1)
if [ $? -ne 0 ] && [[ $out == *"need a restart"* ]]; then
	tap_ok "a reload changing syn_cookies is refused: $out"
else
	tap_not_ok "reload with syn_cookies = off: $out"
fi
cookie_connect
if [ "$got" = connected-reply ] && [ $((c1 - c0)) -ge 1 ]; then
	tap_ok "the running program still answers with cookies (syn_cookie +$((c1 - c0)))"
else
	tap_not_ok "after the refused reload: client $got, syn_cookie $c0 -> $c1"
fi

# tcp_syncookies 0 under the running program: held within a tick
metric() { lab_scrape "$MPORT" "$LAB_DIR/m" && lab_metric "$LAB_DIR/m" "$1"; }
status() { jget "$(mctl status --json)" "d['syn_cookies']"; }
held_all() {
	grep -q 'event=syn_cookies state=held tcp_syncookies=0' "$LAB_DIR/ctld.log" &&
		[ "$(status)" = held ] && [ "$(metric moat_syn_cookies_held)" = 1 ]
}
lab_app sysctl -qw net.ipv4.tcp_syncookies=0
if lab_wait 5 held_all && [ "$(metric moat_syn_cookies_holds_total)" = 1 ]; then
	tap_ok "tcp_syncookies 0: held (log, moatctl status syn_cookies=held, moat_syn_cookies_held 1, holds_total 1)"
else
	tap_not_ok "tcp_syncookies 0: status '$(status)', held '$(metric moat_syn_cookies_held)', holds '$(metric moat_syn_cookies_holds_total)'"
	grep 'syn_cookies' "$LAB_DIR/ctld.log" | sed 's/^/# /'
fi
# held: both SYNs of each connect (the first would be the keep SYN, the
# second a cookie's) go to the kernel; a cookie's ACK would get a RST
c0=$(stat syn_cookie)
outs=
for i in 1 2 3; do
	outs+=" $(connect 2>&1 | tail -1)"
done
c1=$(stat syn_cookie)
if [ "$outs" = " connected-reply connected-reply connected-reply" ] && [ "$c1" -eq "$c0" ]; then
	tap_ok "held: 3 clients connect through the kernel (syn_cookie +0)"
else
	tap_not_ok "held: clients$outs, syn_cookie $c0 -> $c1"
fi
resumed() {
	grep -q 'event=syn_cookies state=resumed' "$LAB_DIR/ctld.log" && [ "$(status)" = on ] &&
		[ "$(metric moat_syn_cookies_held)" = 0 ]
}
lab_app sysctl -qw net.ipv4.tcp_syncookies=2
if lab_wait 5 resumed; then
	cookie_connect
else
	got=not-resumed c0=0 c1=0
fi
if [ "$got" = connected-reply ] && [ $((c1 - c0)) -ge 1 ]; then
	tap_ok "tcp_syncookies 2 again: resumed (log, status on, moat_syn_cookies_held 0), a client answered in XDP connects (syn_cookie +$((c1 - c0)))"
else
	tap_not_ok "after tcp_syncookies 2: client $got, syn_cookie $c0 -> $c1, status '$(status)'"
	grep 'syn_cookies' "$LAB_DIR/ctld.log" | sed 's/^/# /'
fi

# a restart while tcp_syncookies is 1: the program loads without cookies
# (the backend says why); set to 2, moat-controld says a restart loads them
pid=$(cat "$LAB_DIR/ctld.pid")
kill "$pid"
lab_wait 10 bash -c "! kill -0 $pid 2>/dev/null"
lab_app sysctl -qw net.ipv4.tcp_syncookies=1
conf on
hint() { grep -q 'event=syn_cookies state=off tcp_syncookies=2 .*restart' "$LAB_DIR/ctld2.log"; }
if start_ctld ctld2 && grep -q 'tcp_syncookies is 1 in this network namespace' "$LAB_DIR/ctld2.log" &&
	[ "$(status)" = off ] && ! hint && sleep 1.5 && lab_app sysctl -qw net.ipv4.tcp_syncookies=2 &&
	lab_wait 5 hint && [ "$(status)" = off ]; then
	tap_ok "restarted at tcp_syncookies 1: loaded without cookies (status off); at 2 the log says a restart loads them"
else
	tap_not_ok "restart at tcp_syncookies 1: status '$(status)'"
	grep -i 'cookie' "$LAB_DIR/ctld2.log" | sed 's/^/# /'
fi
