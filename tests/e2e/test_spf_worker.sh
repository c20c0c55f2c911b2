#!/bin/bash
# test_spf_worker.sh - SPF evaluation (libspf2, open CVEs) runs in a worker
# process of its own: moat-smtpd spawns it after dropping privileges, a
# session whose evaluation is in flight when the worker dies gets 451 4.7.x
# at once (not at the SPF timeout), the worker is restarted and the next
# session gets a real verdict; the worker runs under a seccomp filter
# (Seccomp: 2) and a forbidden system call (openat, made on purpose through
# the test-only MOAT_TEST_SPF_FORBIDDEN) kills it with SIGSYS, with the same
# 451 for that session and verdicts for the next.  Real parts: Knot serving spf.test, smtp-sink
# downstream, the raw client smtpc.py from a lab sender address.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${MOAT_BUILD_DIR:-$root/build}
smtpd=$build/dataplane/smtp/moat-smtpd
. "$root/tests/lab/lab.sh"
C="python3 $here/smtpc.py"

tap_plan 12

lab_init
lab_up >/dev/null || { tap_not_ok "lab up"; exit 1; }
mkdir -p "$LAB_DIR/zones"
cp "$here/zones/spf.test.zone" "$LAB_DIR/zones/"
lab_knot "$LAB_DIR/zones" >/dev/null 2>&1 || { tap_not_ok "knot"; exit 1; }
lab_sink >/dev/null || { tap_not_ok "smtp-sink"; exit 1; }
lab_sender 192.0.2.55
lab_smtpd_conf "$LAB_DIR/s.conf" "workers = 1
dns_server = 198.18.2.2
dnsbl_zones =
spf = yes
spf_workers = 2
spf_timeout_ms = 20000
log_level = debug"
log=$LAB_DIR/smtpd.log
MOAT_TEST_SPF_FORBIDDEN=forbidden.spf.test lab_bg "$NS_APP" smtpd "$smtpd" -c "$LAB_DIR/s.conf"
lab_wait 10 lab_inet bash -c "exec 3<>/dev/tcp/198.18.1.1/25" || { tap_not_ok "moat-smtpd listens"; cat "$log" >&2; exit 1; }
engine=$(cat "$LAB_DIR/smtpd.pid" 2>/dev/null || pgrep -n -f "moat-smtpd -c $LAB_DIR/s.conf")
wpid() { grep -o 'spf: worker pid=[0-9]* started' "$log" | tail -1 | grep -o '[0-9]*'; }
sess() { lab_inet $C --src 192.0.2.55 198.18.1.1 25 R 'S:EHLO client.example\r\n' R "$@" 2>&1; }

# 1: the worker is a separate process: a child of the engine, unprivileged
w1=$(wpid)
if [ -n "$w1" ] && [ "$(awk '{print $4}' "/proc/$w1/stat" 2>/dev/null)" = "$engine" ] &&
	grep -q '^CapEff:[[:space:]]*0*$' "/proc/$w1/status" &&
	[ "$(awk '/^Uid:/ {print $2}' "/proc/$w1/status")" = "$(id -u moat)" ]; then
	tap_ok "SPF worker pid=$w1 is a child of moat-smtpd pid=$engine, uid moat, no capabilities"
else
	tap_not_ok "SPF worker process: pid='$w1' engine='$engine'"
	grep 'spf' "$log" | sed 's/^/# /'
fi

# 2: positive control: a verdict from the worker
out=$(sess 'S:MAIL FROM:<a@pass.spf.test>\r\n' R 'S:QUIT\r\n' R)
printf '%s\n' "$out" | grep -q '^250 ' && tap_ok "SPF pass through the worker: MAIL accepted" ||
	{ tap_not_ok "SPF pass: '$out'"; }
out=$(sess 'S:MAIL FROM:<a@fail.spf.test>\r\n' R 'S:QUIT\r\n' R)
printf '%s\n' "$out" | grep -q '^550 5.7.23' && tap_ok "SPF fail through the worker: 550 5.7.23" ||
	tap_not_ok "SPF fail: '$out'"

# 3: the worker stopped, an evaluation sent to it, then killed
kill -STOP "$w1"
n0=$(lab_count 'spf: request id=' "$log")
t0=$(date +%s%N)
sess 'S:MAIL FROM:<a@pass.spf.test>\r\n' R 'S:QUIT\r\n' R >"$LAB_DIR/inflight.out" &
cpid=$!
if lab_wait 10 lab_count_ge $((n0 + 1)) 'spf: request id=' "$log"; then
	kill -KILL "$w1"
	wait $cpid
	ms=$((($(date +%s%N) - t0) / 1000000))
	out=$(cat "$LAB_DIR/inflight.out")
	if printf '%s\n' "$out" | grep -q '^451 4\.7\.' && [ $ms -lt 10000 ]; then
		tap_ok "evaluation in flight when the worker died: 451 4.7.x after ${ms} ms (SPF timeout 20000 ms)"
	else
		tap_not_ok "in flight: '$out' after ${ms} ms"
	fi
else
	kill -KILL "$w1"
	wait $cpid
	tap_not_ok "the request never reached the worker"
fi
lab_wait 10 grep -Eq "spf: worker pid=$w1 lost \(.*, signal 9\) in_flight=1" "$log" &&
	tap_ok "engine logged the loss: worker pid=$w1 killed by signal 9 with 1 evaluation in flight" ||
	{ tap_not_ok "no loss line for pid $w1"; grep spf "$log" | tail -5 | sed 's/^/# /'; }

# 4: restarted, and the engine never went down
lab_wait 10 bash -c "[ -n \"\$(grep -o 'spf: worker pid=[0-9]* started' '$log' | tail -1 | grep -v 'pid=$w1 ')\" ]"
w2=$(wpid)
if [ -n "$w2" ] && [ "$w2" != "$w1" ] && kill -0 "$w2" 2>/dev/null && kill -0 "$engine"; then
	tap_ok "a new worker pid=$w2 replaced pid=$w1; moat-smtpd pid=$engine still up"
else
	tap_not_ok "restart: w1=$w1 w2='$w2'"
fi
# the next sessions get verdicts again (fail proves the evaluation ran)
lab_wait 10 bash -c "grep -q 'spf: worker pid=$w2 ready' '$log'"
out=$(sess 'S:MAIL FROM:<a@fail.spf.test>\r\n' R 'S:QUIT\r\n' R)
printf '%s\n' "$out" | grep -q '^550 5.7.23' && tap_ok "next session after the restart: SPF fail verdict 550 5.7.23" ||
	tap_not_ok "after restart (fail): '$out'"
out=$(sess 'S:MAIL FROM:<a@pass.spf.test>\r\n' R 'S:QUIT\r\n' R)
printf '%s\n' "$out" | grep -q '^250 ' && tap_ok "next session after the restart: SPF pass, MAIL accepted" ||
	tap_not_ok "after restart (pass): '$out'"

# 9: the worker runs under a seccomp filter, the engine does not
lab_wait 10 bash -c "grep -q 'spf: worker pid=$w2 ready.*seccomp filter on' '$log'"
if grep -q '^Seccomp:[[:space:]]*2$' "/proc/$w2/status" && grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$w2/status" &&
	grep -q '^Seccomp:[[:space:]]*0$' "/proc/$engine/status"; then
	tap_ok "worker pid=$w2: Seccomp 2 (filter), NoNewPrivs 1; the engine unfiltered (Seccomp 0)"
else
	tap_not_ok "seccomp: worker '$(grep -E '^(Seccomp|NoNewPrivs):' "/proc/$w2/status" | tr '\n' ' ')' engine '$(grep '^Seccomp:' "/proc/$engine/status")'"
fi

# 10-11: a forbidden system call in the worker (openat, on purpose): killed by
# SIGSYS (31) during the evaluation, that session gets 451 4.7.x at once
t0=$(date +%s%N)
out=$(sess 'S:MAIL FROM:<a@forbidden.spf.test>\r\n' R 'S:QUIT\r\n' R)
ms=$((($(date +%s%N) - t0) / 1000000))
printf '%s\n' "$out" | grep -q '^451 4\.7\.' && [ $ms -lt 10000 ] &&
	tap_ok "forbidden system call during the evaluation: 451 4.7.x after $ms ms" ||
	tap_not_ok "forbidden system call: '$out' after $ms ms"
lab_wait 10 grep -Eq "spf: worker pid=$w2 lost \(.*, signal 31\) in_flight=1" "$log" &&
	tap_ok "engine logged the loss: worker pid=$w2 killed by SIGSYS (31) with the evaluation in flight" ||
	{ tap_not_ok "no SIGSYS loss line for pid $w2"; grep spf "$log" | tail -5 | sed 's/^/# /'; }

# 12: a new filtered worker gives the next session its verdict
lab_wait 10 bash -c "[ -n \"\$(grep -o 'spf: worker pid=[0-9]* ready' '$log' | tail -1 | grep -v 'pid=$w2 ')\" ]"
w3=$(grep -o 'spf: worker pid=[0-9]* ready' "$log" | tail -1 | grep -o '[0-9]*')
out=$(sess 'S:MAIL FROM:<a@fail.spf.test>\r\n' R 'S:QUIT\r\n' R)
if printf '%s\n' "$out" | grep -q '^550 5.7.23' && [ "$w3" != "$w2" ] && grep -q '^Seccomp:[[:space:]]*2$' "/proc/$w3/status"; then
	tap_ok "after the SIGSYS: new worker pid=$w3 (Seccomp 2), next session SPF fail verdict 550 5.7.23"
else
	tap_not_ok "after the SIGSYS: w3='$w3' out='$out'"
fi
