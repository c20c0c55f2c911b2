#!/bin/bash
# test_controld_diff.sh - the differential test of issue 5 ("same answer as
# DNS") through a running moat-controld: Knot serves an edge-case zone
# (tests/netns/zones/diff.moat.test.zone plus error codes and test points:
# v4 /32s, v6 /128s, wildcards at /24, /16, /8 and nibble-aligned v6,
# explicit names below wildcards, empty non-terminals, TXT-only names);
# moat-controld transfers it by AXFR; then every address of a list (the
# edge cases of diff.addrs and more, plus random addresses, seed printed)
# is asked of Knot with one kdig process and of moat-controld with
# `moatctl lookup --json`, and each pair must agree: listed with the same
# set of codes, or not listed.  A DNS answer counts as a listing when it
# is not an error code (outside 127/8, 127.255.255.0/24, 127.0.0.1), as
# moat's policy says; moat's side is the zone's entries in the lookup's
# explanation (codes at the deciding prefix, or excluded), and the
# action must follow (drop_threshold = 1: listed -> drop, else pass).
# Twice: after the AXFR, and after an IXFR that moves wildcard boundaries.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
Z=diff.moat.test
SEED=${DIFF_SEED:-$RANDOM}
NRANDOM=${DIFF_RANDOM:-240}

ctld_test diff 9
ctld_lab_up

# --- the zone: diff.moat.test + error codes and the IPv6 test point -------
mkdir -p "$LAB_DIR/zsrc"
cp "$root/tests/netns/zones/$Z.zone" "$LAB_DIR/zsrc/"
cat >>"$LAB_DIR/zsrc/$Z.zone" <<'EOF'
; error codes (never listings): alone, below a wildcard, mixed with a code
6.2.0.192     A 127.255.255.254
7.2.0.192     A 10.0.0.1
8.113.0.203   A 127.0.0.1
9.113.0.203   A 127.0.0.2
9.113.0.203   A 127.255.255.252
; a wildcard answering an error code, an explicit listing below it
*.66.100      A 127.255.255.254
1.1.66.100    A 127.0.0.3
; IPv6: test point ::ffff:127.0.0.2, a /64 wildcard, a /124 one
2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 A 127.0.0.2
*.0.0.0.0.0.0.2.0.8.b.d.0.1.0.0.2 A 127.0.0.4
*.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.8.b.d.0.1.0.0.2 A 127.0.0.5
EOF
if ! lab_knot "$LAB_DIR/zsrc" >/dev/null 2>&1; then
	tap_not_ok "knot serves $Z"
	exit 1
fi

# sanity off: the zone's 2100::/8 wildcard is meant to be wide (it lists
# "too much" of the IPv6 space for the default checks)
cat >"$LAB_DIR/moat.conf" <<EOF
[daemon]
socket = $SOCK
state_dir = $LAB_DIR/state
[metrics]
listen = off
[policy]
drop_threshold = 1
[zone $Z]
primary = 198.18.2.2@53
sanity = no
EOF
if ! start_ctld ctld; then
	tap_not_ok "moat-controld start"
	sed 's/^/# /' "$LAB_DIR/ctld.log"
	exit 1
fi
if lab_wait 15 bash -c "$MOATCTL zones | grep -q '^$Z .* ok '"; then
	tap_ok "moat-controld transferred $Z from Knot ($(grep -o "zone=$Z event=load [^ ]* serial=[0-9]* entries=[0-9]*" "$LAB_DIR/ctld.log"))"
else
	tap_not_ok "zone not loaded"
	mctl zones | sed 's/^/# /'
	exit 1
fi

# --- the addresses: edge cases, then random ones (seed printed) ----------
echo "# seed $SEED, $NRANDOM random addresses (DIFF_SEED=$SEED to repeat)"
$PY - "$root/tests/netns/zones/diff.addrs" "$SEED" "$NRANDOM" >"$LAB_DIR/addrs" <<'PY'
import ipaddress, random, sys
edges = [l.strip() for l in open(sys.argv[1]) if l.strip()]
edges += ["192.0.2.6", "192.0.2.7", "203.0.113.8", "203.0.113.9", "100.66.1.1",
          "100.66.2.2", "100.66.1.2", "::ffff:127.0.0.2", "::ffff:127.0.0.1",
          "2001:db8:200::1", "2001:db8:200:0:1::", "2001:db8:200:1::1",
          "2001:db8:300::1", "2001:db8:300::10", "2001:db8:300::f", "2001:db8:300::20",
          # what the IXFR below touches
          "203.0.113.6", "203.0.113.5", "198.51.100.50", "198.51.200.1", "198.51.200.255",
          "198.51.201.1", "100.77.5.5", "100.77.1.1", "10.1.2.3", "10.1.2.4", "192.0.2.5", "192.0.2.8",
          "2001:db8:200::1:0:0:5", "2001:db8:200::1:0:0:6", "2001:db8:200:0:0:1::",
          "2001:db8:200::2:0:0:0", "2001:db8:100::1", "2001:db8:100::2"]
r = random.Random(int(sys.argv[2]))
def v4(prefix, plen):
    n = ipaddress.ip_network(prefix)
    return str(n[r.randrange(n.num_addresses)]) if plen else prefix
areas4 = ["203.0.113.0/24", "198.51.0.0/16", "198.51.100.0/24", "10.0.0.0/8", "10.1.0.0/16",
          "10.1.3.0/24", "10.1.2.0/24", "100.77.0.0/16", "100.77.1.0/24", "100.66.0.0/16",
          "4.4.4.0/24", "4.4.0.0/16", "9.0.0.0/8", "2.1.0.0/16", "192.0.2.0/24", "127.0.0.0/24"]
areas6 = ["2001:db8:100::/48", "2001:db8:100::/112", "2001:db8:200::/64", "2001:db8:200::/48",
          "2001:db8:300::/120", "2100::/8", "2001:db8::/32"]
out = list(edges)
for i in range(int(sys.argv[3])):
    k = r.random()
    if k < 0.45:
        n = ipaddress.ip_network(r.choice(areas4))
    elif k < 0.6:
        n = ipaddress.ip_network("0.0.0.0/0")
    elif k < 0.9:
        n = ipaddress.ip_network(r.choice(areas6))
    else:
        n = ipaddress.ip_network("::/0")
    out.append(str(n[r.randrange(n.num_addresses)]))
seen = set()
for a in out:
    a = str(ipaddress.ip_address(a))
    if a not in seen:
        seen.add(a)
        print(a)
PY
N=$(wc -l <"$LAB_DIR/addrs")

# diff_round TAG TITLE - ask every address both ways, compare: 3 cases
diff_round() {
	# --- DNS: one kdig process, every name ----------------------------------
	mapfile -t qs < <($PY -c '
import ipaddress, sys
for a in open(sys.argv[1]):
    print(ipaddress.ip_address(a.strip()).reverse_pointer.rsplit(".", 2)[0] + "." + sys.argv[2])
	' "$LAB_DIR/addrs" "$Z")
	args=()
	for q in "${qs[@]}"; do args+=("$q" A); done
	lab_app kdig +tcp +noall +answer +time=2 +retry=1 @198.18.2.2 "${args[@]}" >"$LAB_DIR/kdig-$1.out" 2>"$LAB_DIR/kdig-$1.err"

	# --- moat: moatctl lookup --json for each --------------------------------
	while read -r a; do
		printf '%s\t' "$a"
		mctl lookup "$a" --json | tr -d '\n'
		echo
	done <"$LAB_DIR/addrs" >"$LAB_DIR/moat-$1.out"

	# --- compare ---------------------------------------------------------------
	$PY - "$LAB_DIR/addrs" "$LAB_DIR/kdig-$1.out" "$LAB_DIR/moat-$1.out" "$Z" >"$LAB_DIR/cmp-$1.out" <<'PY'
import ipaddress, json, sys
addrs, kdig, moat, zone = sys.argv[1:5]
def error(code):  # moat's default error codes: never a listing
    c = ipaddress.ip_address(code)
    return (c not in ipaddress.ip_network("127.0.0.0/8") or
            c in ipaddress.ip_network("127.255.255.0/24") or str(c) == "127.0.0.1")
dns = {}
for line in open(kdig):
    f = line.split()
    if len(f) >= 5 and f[3] == "A":
        dns.setdefault(f[0].lower(), set()).add(f[4])
bad = []
stats = {"n": 0, "listed": 0, "unlisted": 0, "multi": 0, "wild": 0, "v6": 0, "errcode": 0}
for line in open(moat):
    a, j = line.rstrip("\n").split("\t", 1)
    d = json.loads(j)
    ip = ipaddress.ip_address(a)
    name = ip.reverse_pointer.rsplit(".", 2)[0] + "." + zone + "."
    answer = dns.get(name.lower(), set())
    want = {c for c in answer if not error(c)}
    items = [s for s in d["sources"] if s["source"] == zone]
    excl = any(s["exclude"] for s in items)
    got = set() if excl else {s["code"] for s in items}
    act_ok = d["action"] == ("drop" if want else "pass")
    stats["n"] += 1
    stats["listed" if want else "unlisted"] += 1
    stats["multi"] += len(want) > 1
    stats["v6"] += ip.version == 6 and bool(want)
    stats["errcode"] += bool(answer) and not want
    plen = ipaddress.ip_network(items[0]["prefix"]).prefixlen if items else None
    stats["wild"] += bool(want) and plen is not None and plen < ip.max_prefixlen
    if got != want or not act_ok:
        bad.append("%s dns=%s moat=%s action=%s" % (a, ",".join(sorted(answer)) or "-",
                   ",".join(sorted(got)) or ("excluded" if excl else "-"), d["action"]))
print("stats " + " ".join("%s=%d" % kv for kv in stats.items()))
for b in bad:
    print("mismatch " + b)
PY
	st=$(grep '^stats' "$LAB_DIR/cmp-$1.out")
	echo "# $st"
	nbad=$(grep -c '^mismatch' "$LAB_DIR/cmp-$1.out")
	n=$(sed 's/.* n=\([0-9]*\).*/\1/' <<<"$st")
	if [ "$n" = "$N" ] && [ "$N" -ge 200 ] &&
		[ "$(grep -c . "$LAB_DIR/kdig-$1.err")" -eq 0 ]; then
		tap_ok "$2: $N addresses asked both ways (kdig: one process, no errors)"
	else
		tap_not_ok "$2: addresses: $N, compared ${n:-0}; kdig stderr:"
		sed 's/^/# /' "$LAB_DIR/kdig-$1.err" | head
	fi
	if [ "$nbad" -eq 0 ] && [ "$n" = "$N" ]; then
		tap_ok "$2: differential: Knot's answer and moatctl lookup agree for all $N addresses (listed codes or not listed; action follows)"
	else
		tap_not_ok "$2: differential: $nbad of $N disagree"
		grep '^mismatch' "$LAB_DIR/cmp-$1.out" | head -40 | sed 's/^/# /'
	fi
	# the comparison must have covered the interesting classes
	get() { sed "s/.* $1=\([0-9]*\).*/\1/" <<<"$st"; }
	if [ "$(get listed)" -ge 60 ] && [ "$(get unlisted)" -ge 60 ] && [ "$(get wild)" -ge 30 ] &&
		[ "$(get v6)" -ge 10 ] && [ "$(get multi)" -ge 1 ] && [ "$(get errcode)" -ge 3 ]; then
		tap_ok "$2: coverage: listed, unlisted, wildcard, IPv6, multi-code and error-code answers all present"
	else
		tap_not_ok "$2: coverage too thin: $st"
	fi
}

diff_round axfr "AXFR"
# the RFC 4592 cases by name, on moat's side alone (a wrong zone file or
# Knot version would make the differential agree on the wrong thing)
lk() { jget "$(mctl lookup "$1" --json)" "d['action']"; }
w="$(lk 203.0.113.5)/$(lk 203.0.113.99)/$(lk 203.0.113.7)/$(lk 198.51.100.21)/$(lk 198.51.101.1)/$(lk 10.1.3.4)/$(lk 100.66.2.2)/$(lk 100.66.1.1)"
if [ "$w" = "drop/drop/pass/pass/drop/drop/pass/drop" ]; then
	tap_ok "RFC 4592: wildcard lists, explicit name keeps its records, TXT-only name and empty non-terminal are not covered, error-code wildcard excludes"
else
	tap_not_ok "RFC 4592 spot checks: $w"
fi

# --- an IXFR that moves wildcard boundaries, then the same comparison ----
# removed: an explicit name below the /24 wildcard, a NODATA wildcard, a
# TXT-only name that blocked the /8 wildcard, one of two codes; added: a
# name deeper than an address below a wildcard (a new empty non-terminal),
# an explicit name below the /16 wildcard, a wildcard below a wildcard, an
# explicit /128 below the /64 IPv6 wildcard (a chain of non-terminals),
# a name with two codes
f=$LAB_DIR/zsrc/$Z.zone
sed -i -e 's/^@       SOA ns hostmaster 1 /@       SOA ns hostmaster 2 /' \
	-e '/^99\.113\.0\.203 /d' -e '/^\*\.77\.100 /d' -e '/^2\.1\.10 /d' \
	-e '/^5\.2\.0\.192 .*127\.0\.0\.4/d' "$f"
cat >>"$f" <<'EOF'
x.6.113.0.203   TXT "deeper than an address"
50.100.51.198   A 127.0.0.2
*.200.51.198    A 127.0.0.9
8.2.0.192       A 127.0.0.2
8.2.0.192       A 127.0.0.5
5.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.0.0.2.0.8.b.d.0.1.0.0.2 A 127.0.0.6
EOF
lab_knot_reload "$LAB_DIR/zsrc"
lab_wait 10 bash -c "ip netns exec $NS_DNS kdig +short @198.18.2.2 $Z SOA | grep -q ' 2 60 '"
mctl zone refresh $Z >/dev/null
if lab_wait 15 grep -q "zone=$Z event=load kind=ixfr serial=2 " "$LAB_DIR/ctld.log"; then
	tap_ok "IXFR to serial 2: $(grep -o "zone=$Z event=load kind=ixfr serial=2 entries=[0-9]* added=[0-9]* removed=[0-9]*" "$LAB_DIR/ctld.log")"
else
	tap_not_ok "no IXFR to serial 2"
	grep "zone=$Z" "$LAB_DIR/ctld.log" | tail -3 | sed 's/^/# /'
fi
diff_round ixfr "after IXFR"
exit $((TAP_FAIL > 0))
