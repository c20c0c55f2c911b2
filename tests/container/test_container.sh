#!/bin/bash
# test_container.sh - the container image built from this checkout and run
# on the lab (issue 17): the base image from Debian's archive (mmdebstrap,
# tarball cached in BUILD/container/), podman with a private configuration
# (docker/podman-env.sh: nothing of /etc/containers or the host's storage),
# docker/Containerfile built (--network=host for the build only), then the
# appliance's path inside it: moat-controld in a container joined to the
# lab's appliance namespace (--network ns:/run/netns/...) attaches XDP to
# the lab veth inet0 (caps SYS_ADMIN NET_ADMIN BPF PERFMON, /sys/fs/bpf
# mounted); moat-smtpd in a second container in the same namespace
# delivers a message to smtp-sink; an operator drop entry made with the
# host's moatctl over the shared socket stops a sender's SYN in XDP while
# an unlisted one still delivers.  Everything made (containers, images,
# storage) is removed on exit; the host's network namespace is never
# touched.  Prints the time each step took.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
cache=$build/container
IMG=localhost/moat-test-$$
BASEIMG=localhost/moat-debian-test-$$:12
t_start=$(date +%s)
step() { echo "# $(($(date +%s) - t_start)) s: $*"; }

ctld_test container 9 "$PASS_OBJ" "$PROBE"
host_xdp=$(ip -o link show | grep -c ' xdp' || true)
for p in podman mmdebstrap runc swaks smtp-sink; do
	command -v "$p" >/dev/null || { tap_not_ok "$p is installed (tools/setup)"; exit 1; }
done
. "$root/docker/podman-env.sh"
ctld_on_exit() {
	podman rm -af -t 0 >/dev/null 2>&1
	podman_env_reset
}

# --- the base image: Debian 12 from the archive, cached ----------------
mkdir -p "$cache"
if [ ! -s "$cache/bookworm.tar" ]; then
	if mmdebstrap --variant=minbase --format=tar bookworm "$cache/bookworm.tar.tmp" \
		>"$cache/mmdebstrap.log" 2>&1; then
		mv "$cache/bookworm.tar.tmp" "$cache/bookworm.tar"
	else
		rm -f "$cache/bookworm.tar.tmp"
		tap_not_ok "mmdebstrap bookworm"; tail -5 "$cache/mmdebstrap.log" | sed 's/^/# /'; exit 1
	fi
fi
step "base tarball ready ($(du -h "$cache/bookworm.tar" | cut -f1))"
if podman import "$cache/bookworm.tar" "$BASEIMG" >/dev/null 2>"$LAB_DIR/import.log"; then
	tap_ok "podman import of the mmdebstrap tarball"
else
	tap_not_ok "podman import"; sed 's/^/# /' "$LAB_DIR/import.log"; exit 1
fi

# --- the image, from the checkout ----------------------------------------
if podman build --network=host --build-arg BASE="$BASEIMG" -f "$root/docker/Containerfile" \
	-t "$IMG" "$root" >"$LAB_DIR/build.log" 2>&1; then
	tap_ok "podman build docker/Containerfile (builder + runtime stages)"
else
	tap_not_ok "podman build"; tail -30 "$LAB_DIR/build.log" | sed 's/^/# /'; exit 1
fi
step "image built"
# the runtime image has the programs and the defaults, not the compiler
if podman run --rm --network none "$IMG" sh -c \
	'test -x /usr/sbin/moat-controld && test -x /usr/sbin/moat-smtpd && test -x /usr/sbin/moatctl &&
	 test -f /etc/moat/moat.conf && test -f /usr/share/moat/default.rules && ! command -v cc &&
	 moat-controld --check -c /etc/moat/moat.conf && moat-smtpd -t -c /etc/moat/smtpd.conf' \
	>"$LAB_DIR/inspect.log" 2>&1; then
	tap_ok "runtime image: programs, default configuration (both pass their checks), no compiler"
else
	tap_not_ok "runtime image contents"; sed 's/^/# /' "$LAB_DIR/inspect.log"
fi

# --- the lab: the demo's path with the daemons in containers ------------
ctld_lab_up
for a in 192.0.2.55 192.0.2.66 192.0.2.67; do lab_sender $a; done
ip -n "$NS_INET" link set dev app0 xdpdrv obj "$PASS_OBJ" sec xdp
lab_sink >/dev/null || { tap_not_ok "smtp-sink"; exit 1; }
cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
state_dir = $LAB_DIR/state
[xdp]
interfaces = inet0
pin_dir = $PIN
[metrics]
listen = off
[policy]
drop_threshold = 1
EOF
cat >"$LAB_DIR/smtpd.conf" <<EOF
listen = 198.18.1.1:25
workers = 1
hostname = mx.moat.test
relay = 198.18.3.2:25
local_domains = moat.test
spf = no
controld_socket = $SOCK
EOF
chmod 755 "$LAB_DIR"
run_in_app() { # run_in_app NAME ARGS... - a container in the appliance namespace
	local name=$1
	shift
	podman run -d --name "$name-$LAB_ID" --network "ns:/run/netns/$NS_APP" \
		-v "$LAB_DIR:$LAB_DIR" "$@" >/dev/null 2>>"$LAB_DIR/run.log"
}
logs() { podman logs "$1-$LAB_ID" 2>&1; }
run_in_app ctld --cap-add SYS_ADMIN,NET_ADMIN,BPF,PERFMON -v /sys/fs/bpf:/sys/fs/bpf \
	"$IMG" moat-controld -c "$LAB_DIR/moat.conf"
if lab_wait 30 eval 'logs ctld | grep -q event=ready' &&
	[ "$(jget "$(mctl status --json)" "d['fastpath']")" = xdp ] &&
	ip -n "$NS_APP" link show inet0 | grep -q 'xdp'; then
	tap_ok "moat-controld in a container attached XDP to the lab's inet0"
else
	tap_not_ok "moat-controld in a container"; { logs ctld; cat "$LAB_DIR/run.log"; } | tail -20 | sed 's/^/# /'
	exit 1
fi
step "moat-controld up in its container"
run_in_app smtpd "$IMG" moat-smtpd -c "$LAB_DIR/smtpd.conf"
if lab_wait 30 lab_inet bash -c 'exec 3<>/dev/tcp/198.18.1.1/25'; then
	tap_ok "moat-smtpd in a container listens in the appliance namespace"
else
	tap_not_ok "moat-smtpd in a container"; logs smtpd | tail -20 | sed 's/^/# /'; exit 1
fi
deliver() { # deliver SRC TAG: 0 when smtp-sink has it
	lab_inet swaks --server 198.18.1.1 --local-interface "$1" --helo client.example \
		--from a@example.org --to rcpt@moat.test --header "Subject: $2-$LAB_ID" \
		>"$LAB_DIR/swaks-$2.log" 2>&1
	lab_wait 5 grep -rlq "$2-$LAB_ID" "$LAB_DIR/sink"
}
if deliver 192.0.2.55 first; then
	tap_ok "a message from 192.0.2.55 delivered through the containers to smtp-sink"
else
	tap_not_ok "delivery"; tail -5 "$LAB_DIR/swaks-first.log" | sed 's/^/# /'
fi
# XDP in the container's hands: an operator entry stops a SYN
probe() { lab_inet $PY "$PROBE" connect "$1" 198.18.1.1 25 2 2>/dev/null; }
mctl add 192.0.2.66 --action drop >/dev/null
# (the probe talks before the greeting: moat-smtpd refuses and reports
# 192.0.2.67 as pregreet, so it is not 192.0.2.55, which delivers again below)
p66=$(probe 192.0.2.66) p67=$(probe 192.0.2.67)
drops=$(jget "$(mctl stats --json)" "d['counters']['drop']")
if [ "$p66" = timeout ] && [ "$p67" = connected-reply ] && [ "$drops" -ge 1 ]; then
	tap_ok "a drop entry: 192.0.2.66's SYN dropped by XDP ($drops counted), 192.0.2.67 still connects"
else
	tap_not_ok "XDP drop from the container: .66 $p66, .67 $p67, drop counter $drops"
fi
if deliver 192.0.2.55 second; then
	tap_ok "an unlisted sender still delivers"
else
	tap_not_ok "second delivery"
fi
step "lab path done"
# the host's own namespace: no XDP program was attached there
if [ "$(ip -o link show | grep -c ' xdp' || true)" = "$host_xdp" ]; then
	tap_ok "the host's network namespace: no XDP program added ($host_xdp before and after)"
else
	tap_not_ok "the host's namespace's XDP programs changed"
fi
podman rm -f -t 5 "ctld-$LAB_ID" "smtpd-$LAB_ID" >/dev/null 2>&1
step "total"
exit $((TAP_FAIL > 0))
