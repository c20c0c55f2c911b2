#!/usr/bin/env python3
"""fakeprimary.py - a scripted DNS primary for the faults Knot never
produces, used only by test_xfr.sh.

Every AXFR gets the base zone (serial 10).  An IXFR (the client's second
transfer) gets the scenario's faulty answer:
  gap        IXFR whose second diff starts at a serial that breaks the chain
  malformed  AXFR-style answer with an A record of 5 rdata bytes
  outofzone  AXFR-style answer with a record outside the zone
  midclose   first message of an AXFR-style answer, then the connection closes
  refused    rcode REFUSED (the client must fall back to AXFR and succeed)
  badmac     two messages, the second signed with the wrong key
  unsigned   two messages, the second without TSIG
"""
import argparse
import io
import socket
import struct

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring

ap = argparse.ArgumentParser()
ap.add_argument("--listen", default="198.18.2.2")
ap.add_argument("--port", type=int, default=5300)
ap.add_argument("--zone", default="fake.moat.test")
ap.add_argument("--scenario", required=True)
ap.add_argument("--tsig", help="name:base64secret (hmac-sha256)")
a = ap.parse_args()

Z = a.zone.rstrip(".") + "."
kr = None
if a.tsig:
    kname, secret = a.tsig.split(":", 1)
    kr = dns.tsigkeyring.from_text({kname: (dns.tsig.HMAC_SHA256, secret)})
    wrong = dns.tsigkeyring.from_text({kname: (dns.tsig.HMAC_SHA256, "d3JvbmcgdGhpcyBrZXkgaXM=")})


def soa(serial):
    return dns.rrset.from_text(Z, 300, "IN", "SOA",
                               "ns.%s host.%s %d 60 30 604800 60" % (Z, Z, serial))


def a_rr(name, code):
    return dns.rrset.from_text(name + "." + Z, 300, "IN", "A", code)


BASE = [("2.0.0.127", "127.0.0.2"), ("10.2.0.192", "127.0.0.2"), ("*.113.0.203", "127.0.0.3")]


def zone_rrs(serial, extra=()):
    return [soa(serial)] + [a_rr(n, c) for n, c in list(BASE) + list(extra)] + [soa(serial)]


def send(conn, wire):
    conn.sendall(struct.pack("!H", len(wire)) + wire)


def recv_msg(conn):
    hdr = b""
    while len(hdr) < 2:
        d = conn.recv(2 - len(hdr))
        if not d:
            return None
        hdr += d
    n = struct.unpack("!H", hdr)[0]
    buf = b""
    while len(buf) < n:
        d = conn.recv(n - len(buf))
        if not d:
            return None
        buf += d
    return buf


def response(q, rrs):
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    r.answer = list(rrs)
    return r


def cont(q, rrs, keyring=None):
    """A later message of a multi-message answer (no question)."""
    m = dns.message.Message(id=q.id)
    m.flags = dns.flags.QR | dns.flags.AA
    m.answer = list(rrs)
    if keyring:
        m.use_tsig(keyring, q.keyname, algorithm=dns.tsig.HMAC_SHA256)
    return m


def serve(conn):
    wire = recv_msg(conn)
    if wire is None:
        return
    q = dns.message.from_wire(wire, keyring=kr)
    qtype = q.question[0].rdtype
    if qtype != dns.rdatatype.IXFR:
        send(conn, response(q, zone_rrs(10)).to_wire())
        return
    sc = a.scenario
    if sc == "gap":
        rrs = [soa(12), soa(10), a_rr("10.2.0.192", "127.0.0.2"), soa(11),
               a_rr("11.2.0.192", "127.0.0.2"),
               soa(13), soa(12), soa(12)]
        send(conn, response(q, rrs).to_wire())
    elif sc == "malformed" or sc == "outofzone":
        rrs = zone_rrs(11)
        r = response(q, rrs[:-1])
        w = bytearray(r.to_wire())
        if sc == "malformed":
            rr = dns.name.from_text("9.9.9.9." + Z).to_wire() + struct.pack("!HHIH", 1, 1, 300, 5) + b"\x7f\0\0\x02\x00"
        else:
            rr = dns.name.from_text("9.9.9.9.other.test.").to_wire() + struct.pack("!HHIH", 1, 1, 300, 4) + b"\x7f\0\0\x02"
        b = io.BytesIO()
        rrs[-1].to_wire(b)
        w += rr + b.getvalue()
        struct.pack_into("!H", w, 6, struct.unpack_from("!H", w, 6)[0] + 2)
        send(conn, bytes(w))
    elif sc == "midclose":
        rrs = zone_rrs(11, [("%d.1.1.10" % i, "127.0.0.2") for i in range(200)])
        send(conn, response(q, rrs[:50]).to_wire())
    elif sc == "refused":
        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.REFUSED)
        send(conn, r.to_wire())
    elif sc in ("badmac", "unsigned"):
        rrs = zone_rrs(11, [("11.2.0.192", "127.0.0.2")])
        send(conn, response(q, rrs[:2]).to_wire())
        m2 = cont(q, rrs[2:], wrong if sc == "badmac" else None)
        send(conn, m2.to_wire())


s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((a.listen, a.port))
s.listen(8)
print("fakeprimary %s listening on %s:%d" % (a.scenario, a.listen, a.port), flush=True)
while True:
    c, _ = s.accept()
    try:
        serve(c)
    except Exception as e:  # a test helper: report and go on
        print("fakeprimary error:", repr(e), flush=True)
    finally:
        c.close()
