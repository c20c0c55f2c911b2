#!/bin/bash
# test_install - `meson install --destdir` into a temporary directory puts
# every program, the XDP object, the default configuration and rules, the
# man pages and the systemd units where the configured prefix says; each
# installed unit, copied with its programs pointing at the staged binaries,
# passes `systemd-analyze verify` without a warning (a deliberately broken
# copy is the positive control: it must warn), and its
# `systemd-analyze security --offline=true` exposure stays within the
# bound docs/operations.md records.
#
#   test_install.sh BUILDDIR     (paths from the environment, tests/install/meson.build)
set -u
build=$1
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n - $* # SKIP"; }
check() { local what=$1; shift; if "$@" >&2; then ok "$what"; else nok "$what"; fi; }

stage=$(mktemp -d /tmp/moat-install.XXXXXX)
trap 'rm -rf "$stage"' EXIT
echo "TAP version 13"

if out=$(meson install -C "$build" --destdir "$stage" --no-rebuild 2>&1); then
	ok "meson install --destdir $stage"
else
	nok "meson install --destdir"
	printf '%s\n' "$out" | tail -20 | sed 's/^/# /'
	echo "1..$n"
	exit 1
fi

# the file list: each path below exists in the staged tree
want=(
	"$SBINDIR/moat-controld" "$SBINDIR/moat-smtpd" "$SBINDIR/moatctl"
	"$BINDIR/moat-scan" "$BINDIR/moat-zonecheck"
	"$LIBDIR/moat/moat_xdp_bpf.bpf.o"
	"$SYSCONFDIR/moat/moat.conf" "$SYSCONFDIR/moat/smtpd.conf" "$SYSCONFDIR/moat/moat-dpdk.conf" "$SYSCONFDIR/default/moat-dpdk"
	"$DATADIR/moat/default.rules"
	"$PREFIX/lib/sysusers.d/moat.conf"
	"$UNITDIR/moat-controld.service" "$UNITDIR/moat-smtpd.service" "$UNITDIR/moat-dpdk.service"
	"$MANDIR/man8/moat-controld.8" "$MANDIR/man8/moat-smtpd.8" "$MANDIR/man8/moatctl.8"
	"$MANDIR/man5/moat.conf.5" "$MANDIR/man5/moat.rules.5"
	"$MANDIR/man1/moat-scan.1" "$MANDIR/man1/moat-zonecheck.1"
)
[ "$HAVE_DPDK" = 1 ] && want+=("$SBINDIR/moat-dpdk")
missing=()
for f in "${want[@]}"; do
	[ -f "$stage$f" ] || missing+=("$f")
done
check "installed file list (${#want[@]} files under $PREFIX)" [ ${#missing[@]} -eq 0 ]
for f in "${missing[@]}"; do echo "# missing: $f"; done
for p in moat-controld moat-smtpd moatctl; do
	check "$SBINDIR/$p is executable" [ -x "$stage$SBINDIR/$p" ]
done
readelf -h "$stage$LIBDIR/moat/moat_xdp_bpf.bpf.o" 2>/dev/null | grep -q 'Machine: *Linux BPF' &&
	ok "moat_xdp_bpf.bpf.o is an eBPF object" || nok "moat_xdp_bpf.bpf.o is an eBPF object"

# the installed default configurations pass the daemons' own checks
check "installed moat.conf passes moat-controld --check" \
	"$stage$SBINDIR/moat-controld" --check -c "$stage$SYSCONFDIR/moat/moat.conf"
check "installed smtpd.conf passes moat-smtpd -t" \
	"$stage$SBINDIR/moat-smtpd" -t -c "$stage$SYSCONFDIR/moat/smtpd.conf"

# the units: programs under the prefix re-pointed at the staged copies
units=$stage/verify
mkdir -p "$units"
for u in moat-controld moat-smtpd moat-dpdk; do
	sed -e "s|=\(-\?\)$SBINDIR/|=\1$stage$SBINDIR/|g" \
		"$stage$UNITDIR/$u.service" >"$units/$u.service"
	grep -q "^ExecStart=$stage$SBINDIR/$u " "$units/$u.service" ||
		nok "$u.service: ExecStart names $SBINDIR/$u"
done
export MANPATH=$stage$MANDIR
verify() { systemd-analyze verify "$@" 2>&1; }
for u in moat-controld moat-smtpd moat-dpdk; do
	if [ "$u" = moat-dpdk ] && [ ! -x "$stage$SBINDIR/moat-dpdk" ]; then
		skip "$u.service verifies (moat-dpdk is not built here)"
		continue
	fi
	out=$(verify "$units/$u.service")
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then
		ok "$u.service: systemd-analyze verify, no warning (man pages found)"
	else
		nok "$u.service: systemd-analyze verify (rc $rc)"
		printf '%s\n' "$out" | sed 's/^/# /'
	fi
done
# positive control: the same check sees a mistyped key (verify still exits 0)
sed -e 's/^PrivateTmp=/PrivatTmp=/' "$units/moat-smtpd.service" >"$units/broken.service"
out=$(verify "$units/broken.service")
if printf '%s' "$out" | grep -q PrivatTmp; then
	ok "control: a mistyped key is reported by verify"
else
	nok "control: a mistyped key is reported by verify"
	printf '%s\n' "$out" | sed 's/^/# /'
fi
# a unit whose program is absent is refused
sed -e "s|^ExecStart=$stage$SBINDIR/moat-smtpd|ExecStart=$stage/nonexistent/moat-smtpd|" \
	"$units/moat-smtpd.service" >"$units/noprog.service"
if ! verify "$units/noprog.service" >/dev/null; then
	ok "control: a unit whose ExecStart is missing fails verify"
else
	nok "control: a unit whose ExecStart is missing fails verify"
fi

# ordering: moat-smtpd after moat-controld, moat-dpdk before both
check "moat-smtpd.service is ordered after moat-controld.service" \
	grep -q '^After=.*moat-controld.service' "$units/moat-smtpd.service"
check "moat-dpdk.service is ordered before moat-controld.service" \
	grep -q '^Before=.*moat-controld.service' "$units/moat-dpdk.service"
for u in moat-controld moat-smtpd moat-dpdk; do
	check "$u.service has ExecReload" grep -q '^ExecReload=/bin/kill -HUP \$MAINPID' "$units/$u.service"
done

# exposure bounds (docs/operations.md "Security" has the measured scores)
declare -A bound=([moat-controld]=4.0 [moat-smtpd]=2.0 [moat-dpdk]=6.0)
for u in moat-controld moat-smtpd moat-dpdk; do
	s=$(systemd-analyze security --offline=true --no-pager "$units/$u.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
	echo "# $u.service exposure $s (bound ${bound[$u]})"
	if [ -n "$s" ] && awk -v s="$s" -v b="${bound[$u]}" 'BEGIN { exit !(s <= b) }'; then
		ok "$u.service: systemd-analyze security --offline=true $s <= ${bound[$u]}"
	else
		nok "$u.service: systemd-analyze security --offline=true '${s:-none}' <= ${bound[$u]}"
	fi
done

echo "1..$n"
[ $fails -eq 0 ]
