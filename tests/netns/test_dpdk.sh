#!/bin/bash
# test_dpdk.sh - moat-dpdk in the lab: the wire port is net_af_packet on
# the appliance's inet0 veth, the exception path a TAP (net_tap) carrying
# the appliance's addresses in the app namespace, smtp-sink listening
# behind it.  The table comes over the publish channel (dp_client.py
# speaks dp_proto.h as moat-controld's DPDK backend does).  Real kernel
# TCP clients and scapy SYNs in inet:
#   the port does not forward before a table is published; an unlisted
#   client completes an SMTP transaction (IPv4 and IPv6) through the TAP; a
#   DROP source's connect times out; a TARPIT source gets the zero-window
#   SYN-ACK and nothing else (no RST, no byte, the sink never sees it);
#   exact counts of scapy SYNs show in the channel's counters and in DPDK
#   telemetry alike; SIGTERM exits 0; a restarted moat-dpdk (two workers,
#   two queue pairs) filters with the table it saved, before any publish,
#   and with tarpit_source_burst = 1 (its moat.conf keys, as moat-controld's
#   [xdp]) answers one SYN of a tarpitted /24 and counts the rest
#   tarpit_limited.
# EAL runs --no-huge with a file prefix unique to the run; its runtime
# directory is removed on exit, even on failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
build=${MOAT_BUILD_DIR:-$root/build}
DPDK=$build/dataplane/dpdk/moat-dpdk
CLIENT=$here/dp_client.py
PROBE=$here/tcp_probe.py
PY=/usr/bin/python3
T=3

tap_plan 12
for f in "$DPDK" /usr/bin/dpdk-telemetry.py /usr/sbin/smtp-sink; do
	[ -e "$f" ] || { tap_not_ok "missing $f"; exit 1; }
done
lab_init
. "$root/tests/lab/dpdk.sh"
trap 'dpdk_cleanup' EXIT
trap 'dpdk_cleanup; exit 130' INT
trap 'dpdk_cleanup; exit 143' TERM
if ! lab_up >/dev/null 2>&1; then
	tap_not_ok "lab up"
	exit 1
fi
for a in 192.0.2.10 192.0.2.11 192.0.2.13 2001:db8:100::13 2001:db8:100:1::9; do
	lab_sender "$a"
done

dpdk_wire

SOCK=$LAB_DIR/dpdk.sock
dpdk_conf "$LAB_DIR/moat.conf" "$LAB_DIR/state" "$SOCK"

# stat NAME - one counter as the channel reads it
stat() { lab_app $PY "$CLIENT" "$SOCK" stats | awk -v n="$1" '$1 == n {print $2}'; }

# syns SRC N DPORT - N SYNs from SRC (distinct source ports); prints the
# SYN-ACKs that came back as "window flags" lines, and "other" for any
# other segment from the appliance within 1 s after the last
syns() {
	lab_inet $PY - "$1" "$2" "$3" <<'EOF'
import sys
from scapy.all import IP, IPv6, TCP, conf, sr, sniff, AsyncSniffer
conf.verb = 0
src, n, dport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
L3 = IPv6 if ":" in src else IP
dst = "2001:db8:1::1" if ":" in src else "198.18.1.1"
sn = AsyncSniffer(iface="app0", filter="tcp and src host %s and dst host %s" % (dst, src))
sn.start()
import time
time.sleep(0.3)
pk = [L3(src=src, dst=dst) / TCP(sport=41000 + i, dport=dport, flags="S", seq=1000 + i)
      for i in range(n)]
from scapy.all import send
send(pk)
time.sleep(1.5)
for p in sn.stop():
    t = p[TCP]
    print("%d %s" % (t.window, t.flags) if t.flags == "SA" else "other %s" % t.flags)
EOF
}

# --- start: no forwarding before a table ---------------------------------
dpdk_start dpdk1 "$LAB_DIR/moat.conf"
if lab_wait 20 grep -q 'event=waiting' "$LAB_DIR/dpdk1.log" && dpdk_tap_addrs &&
	! grep -q 'event=started' "$LAB_DIR/dpdk1.log" &&
	lab_wait 5 test -S "$SOCK"; then
	tap_ok "moat-dpdk waits for its table; TAP dtap0 carries the appliance's addresses"
else
	tap_not_ok "moat-dpdk start:"
	sed 's/^/# /' "$LAB_DIR/dpdk1.log"
	exit 1
fi
if lab_app $PY "$CLIENT" "$SOCK" publish drop:192.0.2.10 tarpit:192.0.2.11 \
	drop:203.0.113.0/24 tarpit:198.51.100.0/24 drop:2001:db8:100:1::/64 &&
	lab_wait 10 grep -q 'event=started' "$LAB_DIR/dpdk1.log"; then
	tap_ok "a published table: the port forwards ($(grep -o 'workers=[0-9]*' "$LAB_DIR/dpdk1.log"))"
else
	tap_not_ok "publish did not start forwarding"
	sed 's/^/# /' "$LAB_DIR/dpdk1.log"
	exit 1
fi

mkdir -p "$LAB_DIR/sink"
chown postfix "$LAB_DIR/sink"
lab_bg "$NS_APP" sink4 smtp-sink -u postfix -R "$LAB_DIR/sink" -d "msg-%H%M%S." 198.18.1.1:25 64
lab_bg "$NS_APP" sink6 smtp-sink -u postfix -R "$LAB_DIR/sink" -d "msg-%H%M%S." '[2001:db8:1::1]:25' 64
lab_wait 10 lab_app bash -c 'exec 3<>/dev/tcp/198.18.1.1/25'

# --- SMTP through the exception path --------------------------------------
# smtp_from SRC DST ID - one SMTP transaction (Python smtplib) from SRC,
# the message marked ID; fails unless the server accepted it
smtp_from() {
	lab_inet $PY - "$1" "$2" "$3" "$T" <<'EOF'
import smtplib, sys
src, dst, mark, t = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
with smtplib.SMTP(dst, 25, source_address=(src, 0), timeout=t) as s:
    s.sendmail("a@example.org", ["b@example.net"],
               "Subject: %s\r\n\r\n%s\r\n" % (mark, mark))
EOF
}
if smtp_from 192.0.2.13 198.18.1.1 dpdk-v4-ok &&
	lab_wait 5 grep -rqs 'dpdk-v4-ok' "$LAB_DIR/sink"; then
	tap_ok "unlisted IPv4 client: SMTP transaction through moat-dpdk and the TAP"
else
	tap_not_ok "unlisted IPv4 SMTP transaction"
fi
if smtp_from 2001:db8:100::13 2001:db8:1::1 dpdk-v6-ok &&
	lab_wait 5 grep -rqs 'dpdk-v6-ok' "$LAB_DIR/sink"; then
	tap_ok "unlisted IPv6 client: SMTP transaction (ND through the exception path)"
else
	tap_not_ok "unlisted IPv6 SMTP transaction"
fi

# --- listed sources -------------------------------------------------------
got=$(lab_inet $PY "$PROBE" connect 192.0.2.10 198.18.1.1 25 "$T")
got6=$(lab_inet $PY "$PROBE" connect 2001:db8:100:1::9 2001:db8:1::1 25 "$T")
if [ "$got" = timeout ] && [ "$got6" = timeout ]; then
	tap_ok "DROP sources (IPv4 group entry, IPv6 /64): connect times out"
else
	tap_not_ok "DROP sources: v4 $got, v6 $got6"
fi
got=$(lab_inet $PY "$PROBE" connect 192.0.2.11 198.18.1.1 25 "$T")
smtp_from 192.0.2.11 198.18.1.1 dpdk-tarpit-bad >/dev/null 2>&1
if [ "$got" = connected-silent ] && ! grep -rqs 'dpdk-tarpit-bad' "$LAB_DIR/sink"; then
	tap_ok "TARPIT source: handshake with the tarpit, no byte back, nothing reaches the sink"
else
	tap_not_ok "TARPIT source: $got"
fi

# exact counts: 5 SYNs from a DROP /24, 3 from a TARPIT /24
d0=$(stat drop) t0=$(stat tarpit)
out_d=$(syns 203.0.113.9 5 25)
out_t=$(syns 198.51.100.9 3 25)
d1=$(stat drop) t1=$(stat tarpit)
if [ -z "$out_d" ] && [ "$((d1 - d0))" -eq 5 ]; then
	tap_ok "5 SYNs from a DROP source: no answer, drop +5"
else
	tap_not_ok "DROP SYNs: answers '$out_d', drop $d0 -> $d1"
fi
if [ "$(printf '%s\n' "$out_t" | grep -c '^0 SA$')" -eq 3 ] &&
	! printf '%s\n' "$out_t" | grep -q other && [ "$((t1 - t0))" -eq 3 ]; then
	tap_ok "3 SYNs from a TARPIT source: 3 zero-window SYN-ACKs and nothing else, tarpit +3"
else
	tap_not_ok "TARPIT SYNs: answers '$(echo $out_t)', tarpit $t0 -> $t1"
fi
td=$(dpdk_tel drop) tt=$(dpdk_tel tarpit) cd=$(stat drop) ct=$(stat tarpit) tp=$(dpdk_tel pass) cp=$(stat pass)
if [ "$td" = "$cd" ] && [ "$tt" = "$ct" ] && [ "$tp" = "$cp" ] && [ "${cp:-0}" -ge 2 ]; then
	tap_ok "telemetry /moat/stats agrees with the channel: drop=$td tarpit=$tt pass=$tp"
else
	tap_not_ok "telemetry drop=$td tarpit=$tt pass=$tp, channel drop=$cd tarpit=$ct pass=$cp"
fi

# --- stop, restart from the saved table -----------------------------------
pid=$(cat "$LAB_DIR/dpdk1.pid")
kill -TERM "$pid"
lab_wait 10 bash -c "! kill -0 $pid 2>/dev/null"
wait "$pid" 2>/dev/null
rc=$?
if [ "$rc" -eq 0 ] && grep -q 'event=stopped' "$LAB_DIR/dpdk1.log"; then
	tap_ok "SIGTERM: ports released, exit 0"
else
	tap_not_ok "SIGTERM: exit $rc"
	tail -5 "$LAB_DIR/dpdk1.log" | sed 's/^/# /'
fi
# the restart also takes a tarpit budget of one SYN-ACK per /24 at a time
printf 'tarpit_source_rate = 1\ntarpit_source_burst = 1\n' >>"$LAB_DIR/moat.conf"
dpdk_start dpdk2 "$LAB_DIR/moat.conf" 2
if lab_wait 20 grep -q 'event=started.*workers=2' "$LAB_DIR/dpdk2.log" &&
	grep -q 'event=restore.*result=ok' "$LAB_DIR/dpdk2.log" && dpdk_tap_addrs; then
	got=$(lab_inet $PY "$PROBE" connect 192.0.2.10 198.18.1.1 25 "$T")
	ok=$(lab_inet $PY "$PROBE" connect 192.0.2.13 198.18.1.1 25 "$T")
	if [ "$got" = timeout ] && [ "$ok" = connected-reply ]; then
		tap_ok "restarted (2 workers) without a publish: the saved table filters (DROP source $got, unlisted $ok)"
	else
		tap_not_ok "after restart: DROP source $got, unlisted $ok"
	fi
else
	tap_not_ok "restart from the saved table:"
	sed 's/^/# /' "$LAB_DIR/dpdk2.log"
fi
l0=$(stat tarpit_limited) t0=$(stat tarpit)
out_t=$(syns 198.51.100.9 3 25)
l1=$(stat tarpit_limited) t1=$(stat tarpit)
if [ "$(printf '%s\n' "$out_t" | grep -c '^0 SA$')" -eq 1 ] && [ "$((l1 - l0))" -eq 2 ]; then
	tap_ok "tarpit_source_burst = 1: 3 SYNs from a TARPIT /24, one SYN-ACK, tarpit_limited +2"
else
	tap_not_ok "tarpit budget: answers '$(echo $out_t)', tarpit_limited $l0 -> $l1, tarpit $t0 -> $t1"
fi
exit $((TAP_FAIL > 0))
