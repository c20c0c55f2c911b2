#!/bin/bash
# test_tsig_ixfr.sh - a TSIG-signed zone end to end between a real Knot
# primary and a real moat-controld: the AXFR is signed, Knot's NOTIFY is
# signed (and answered signed), the IXFR it triggers after a change to the
# zone is signed and verified on every message, and the daemon applies it
# (adds and deletes visible in `moatctl lookup`).  An unsigned NOTIFY from
# the primary's own address is refused and refreshes nothing; NOTIFYs
# whose TSIG fails get NOTAUTH and a TSIG RR with the RFC 8945 error
# (BADSIG and BADKEY unsigned, BADTIME signed) and refresh nothing, shown
# against a NOTIFY signed with the key, which does start a refresh.
#
# Knot: the zone is changed by rewriting its file and `knotc zone-reload`
# (zonefile-load: difference, so Knot computes the IXFR itself; see
# docs/sources.md "Knot in the lab" for why not `knotc reload`).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lab/lab.sh"
. "$root/tests/lab/controld.sh"
Z=tsig.moat.test

ctld_test tsig 8
ctld_lab_up
SECRET=$(head -c 32 /dev/urandom | base64)
mkdir -p "$LAB_DIR/zsrc"
zone() { # SERIAL EXTRA-RECORDS
	cat <<EOF
\$ORIGIN $Z.
\$TTL 300
@ SOA ns hostmaster $1 60 30 604800 60
@ NS ns
ns A 198.18.2.2
2.0.0.127 A 127.0.0.2
2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 A 127.0.0.2
*.113.0.203 A 127.0.0.2
$2
EOF
}
zone 1 "10.2.0.192 A 127.0.0.2
11.2.0.192 A 127.0.0.3" >"$LAB_DIR/zsrc/$Z.zone"
printf '    acl: tsig\n    notify: app\n' >"$LAB_DIR/zsrc/$Z.zone.conf"
export KNOT_PRE_CONF="key:
  - id: xfrkey
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: app
    address: 198.18.2.1@53
    key: xfrkey"
export KNOT_EXTRA_CONF="  - id: tsig
    address: [ 198.18.0.0/15 ]
    key: xfrkey
    action: [ transfer, notify ]"
if ! lab_knot "$LAB_DIR/zsrc" >/dev/null 2>&1; then
	tap_not_ok "knot serves $Z"
	sed 's/^/# /' "$LAB_DIR/knotd.log" | tail
	exit 1
fi
ctld_conf "$Z" "$(printf 'primary = 198.18.2.2@53\ntsig = hmac-sha256:xfrkey:%s\nrefresh_min = 3600' "$SECRET")" \
	"notify_listen = 198.18.2.1@53"
if ! start_ctld ctld; then
	tap_not_ok "moat-controld start"
	sed 's/^/# /' "$LAB_DIR/ctld.log"
	exit 1
fi
lk() { jget "$(mctl lookup "$1" --json)" "d['action']"; }
if lab_wait 15 grep -q "zone=$Z event=load kind=axfr serial=1 " "$LAB_DIR/ctld.log" &&
	[ "$(lk 192.0.2.10)/$(lk 192.0.2.11)/$(lk 192.0.2.12)" = drop/drop/pass ]; then
	tap_ok "signed AXFR from Knot: serial 1 live"
else
	tap_not_ok "signed AXFR"
	grep "zone=$Z" "$LAB_DIR/ctld.log" | sed 's/^/# /'
	exit 1
fi

# nrefused - NOTIFYs moat-controld refused so far (logged before the reply
# leaves); nstarts - transfers (AXFR, IXFR or an SOA check) it started for Z
nrefused() { lab_count 'event=notify result=refused' "$LAB_DIR/ctld.log"; }
nstarts() { lab_count "zone=$Z event=transfer-start" "$LAB_DIR/ctld.log"; }
refused_ge() { lab_count_ge "$1" 'event=notify result=refused' "$LAB_DIR/ctld.log"; }
s0=$(nstarts)

# an unsigned NOTIFY from the primary's own address: refused, no refresh
r0=$(nrefused)
nrc=$(lab_dns $PY -c '
import dns.message, dns.opcode, dns.query, dns.rcode
q = dns.message.make_query("'$Z'.", "SOA")
q.set_opcode(dns.opcode.NOTIFY)
print(dns.rcode.to_text(dns.query.udp(q, "198.18.2.1", port=53, timeout=3).rcode()))' 2>&1)
if [ "$nrc" = REFUSED ] && lab_wait 5 refused_ge $((r0 + 1)) && ! grep -q "zone=$Z event=notify result=accepted" "$LAB_DIR/ctld.log" &&
	[ "$(grep -c "zone=$Z event=load" "$LAB_DIR/ctld.log")" -eq 1 ]; then
	tap_ok "unsigned NOTIFY for the TSIG zone from the primary's address: REFUSED, no refresh"
else
	tap_not_ok "unsigned NOTIFY: rcode '$nrc'"
	grep "event=notify" "$LAB_DIR/ctld.log" | sed 's/^/# /'
fi

# NOTIFYs whose TSIG fails (wrong secret, unknown key name, an hour old):
# rcode, the TSIG error, MAC size, key name and Other Data length of the
# reply (dnspython's validate is replaced to read the error RR itself)
cat >"$LAB_DIR/badnotify.py" <<'PY'
import base64, socket, sys, time
import dns.message, dns.opcode, dns.rcode, dns.tsig, dns.tsigkeyring
zone, secret, keyname, skew = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
key = dns.tsig.Key(keyname, secret, "hmac-sha256")
q = dns.message.make_query(zone + ".", "SOA")
q.set_opcode(dns.opcode.NOTIFY)
q.use_tsig(key)
real = time.time
time.time = lambda: real() + skew
wire = q.to_wire()
time.time = real
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(wire, ("198.18.2.1", 53))
resp = s.recv(65535)
got = {}
def capture(wire, key, owner, rdata, *a, **k):
    got.update(err=rdata.error, mac=len(rdata.mac), owner=owner.to_text(), other=len(rdata.other))
dns.tsig.validate = capture
m = dns.message.from_wire(resp, keyring=lambda msg, name: dns.tsig.Key(name, secret, "hmac-sha256"))
print(dns.rcode.to_text(m.rcode()), got.get("err"), got.get("mac"), got.get("owner"), got.get("other"))
PY
WRONG=$(head -c 32 /dev/urandom | base64)
r0=$(nrefused)
b1=$(lab_dns $PY "$LAB_DIR/badnotify.py" $Z "$WRONG" xfrkey 0 2>&1)
b2=$(lab_dns $PY "$LAB_DIR/badnotify.py" $Z "$SECRET" otherkey 0 2>&1)
b3=$(lab_dns $PY "$LAB_DIR/badnotify.py" $Z "$SECRET" xfrkey -3600 2>&1)
if [ "$b1" = "NOTAUTH 16 0 xfrkey. 0" ] && [ "$b2" = "NOTAUTH 17 0 otherkey. 0" ] &&
	[ "$b3" = "NOTAUTH 18 32 xfrkey. 6" ] && lab_wait 5 refused_ge $((r0 + 3)) &&
	! grep -q "zone=$Z event=notify result=accepted" "$LAB_DIR/ctld.log" &&
	[ "$(grep -c "zone=$Z event=load" "$LAB_DIR/ctld.log")" -eq 1 ]; then
	tap_ok "bad TSIG NOTIFYs: NOTAUTH with TSIG error BADSIG/BADKEY (MAC size 0) and BADTIME (signed, server time in Other Data), no refresh"
else
	tap_not_ok "bad TSIG NOTIFYs: wrong secret '$b1', unknown key '$b2', old '$b3'"
	grep "NOTIFY\|event=notify" "$LAB_DIR/ctld.log" | tail -4 | sed 's/^/# /'
fi

# the positive control of the two "no refresh" cases above: a NOTIFY signed
# with the right key is accepted, answered signed and starts a refresh
# (serial 1, up to date); when it is done, the refused ones have had their
# chance: moat-controld started no transfer but the first AXFR and this one
g=$(lab_dns $PY "$LAB_DIR/badnotify.py" $Z "$SECRET" xfrkey 0 2>&1)
if [ "$g" = "NOERROR 0 32 xfrkey. 0" ] &&
	lab_wait 10 grep -q "zone=$Z event=refresh serial=1 result=uptodate" "$LAB_DIR/ctld.log" &&
	[ "$(grep -c "zone=$Z event=notify result=accepted" "$LAB_DIR/ctld.log")" -eq 1 ] &&
	[ "$(nstarts)" -eq $((s0 + 1)) ]; then
	tap_ok "a NOTIFY signed with the key: accepted, answered signed, one refresh (up to date); none for the refused ones"
else
	tap_not_ok "signed NOTIFY: '$g', transfers started $(nstarts) (want $((s0 + 1)))"
	grep "zone=$Z\|event=notify" "$LAB_DIR/ctld.log" | tail -8 | sed 's/^/# /'
fi

# the change: one deleted, one changed code, one added; Knot computes the diff
zone 2 "10.2.0.192 A 127.0.0.2
11.2.0.192 A 127.0.0.4
12.2.0.192 A 127.0.0.2" >"$LAB_DIR/zsrc/$Z.zone"
sed -i '/^10.2.0.192 /d' "$LAB_DIR/zsrc/$Z.zone"
kpid=$(cat "$LAB_DIR/knotd.pid")
lab_knot_reload "$LAB_DIR/zsrc"
if lab_wait 15 grep -q "zone=$Z event=load kind=ixfr serial=2 " "$LAB_DIR/ctld.log"; then
	tap_ok "Knot's signed NOTIFY triggered a signed IXFR: $(grep -o "zone=$Z event=load kind=ixfr serial=2 entries=[0-9]* added=[0-9]* removed=[0-9]*" "$LAB_DIR/ctld.log")"
else
	tap_not_ok "no IXFR after the change"
	grep -E "zone=$Z" "$LAB_DIR/ctld.log" | tail -5 | sed 's/^/# /'
	tail -20 "$LAB_DIR/knotd.log" | sed 's/^/# /'
fi
if [ "$(grep -c "zone=$Z event=notify result=accepted" "$LAB_DIR/ctld.log")" -ge 2 ] &&
	grep -q "zone=$Z event=load kind=ixfr serial=2 entries=[0-9]* added=2 removed=2" "$LAB_DIR/ctld.log" &&
	[ "$(lk 192.0.2.10)/$(lk 192.0.2.12)" = pass/drop ] &&
	[ "$(jget "$(mctl lookup 192.0.2.11 --json)" "d['sources'][0]['code']")" = 127.0.0.4 ]; then
	tap_ok "the IXFR applied: 192.0.2.10 gone, 192.0.2.11 now 127.0.0.4, 192.0.2.12 added"
else
	tap_not_ok "IXFR content"
	grep -E "zone=$Z" "$LAB_DIR/ctld.log" | tail -5 | sed 's/^/# /'
fi
if kill -0 "$kpid" 2>/dev/null && grep -q "\[$Z.\] IXFR, outgoing, remote 198.18.2.1@[0-9]*, started, serial 1 -> 2" "$LAB_DIR/knotd.log" &&
	grep -q "\[$Z.\] IXFR, outgoing, remote 198.18.2.1@[0-9]*, finished" "$LAB_DIR/knotd.log"; then
	tap_ok "knotd alive after zone-reload; its log shows the outgoing IXFR 1 -> 2 finished"
else
	tap_not_ok "knotd after the reload"
	tail -20 "$LAB_DIR/knotd.log" | sed 's/^/# /'
fi
# the transfers above were signed: Knot serves the zone only with the key
k0=$(lab_app kdig +tcp +time=2 +retry=0 @198.18.2.2 $Z AXFR 2>&1 | grep -o 'status: [A-Z]*\|REFUSED\|NOTAUTH' | head -1)
k1=$(lab_app kdig +tcp +time=2 +retry=0 -y "hmac-sha256:xfrkey:$SECRET" @198.18.2.2 $Z AXFR 2>/dev/null | grep -c '	A	127')
if [ -n "$k0" ] && [ "$k0" != "status: NOERROR" ] && [ "$k1" -ge 4 ]; then
	tap_ok "Knot refuses the zone without the key ($k0) and serves it with it ($k1 A records)"
else
	tap_not_ok "Knot ACL: unsigned '$k0', signed $k1"
fi
exit $((TAP_FAIL > 0))
