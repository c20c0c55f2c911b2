#!/usr/bin/python3
"""dp_client.py - a client of moat-dpdk's publish channel (dataplane/dpdk/
dp_proto.h), speaking what moat-controld's DPDK backend speaks, for the
netns test and the benchmark.

  dp_client.py SOCK publish ENTRY...   publish the entries as one table
                                       version, then commit; ENTRY is
                                       ACTION:ADDR (a /32 or /128),
                                       ACTION:A.B.C.0/24 or ACTION:V6/PLEN
                                       (ACTION drop, tarpit, allow, pass)
  dp_client.py SOCK gen24 N ACTION     N distinct /24s from 1.0.0.0 up
                                       (a big table), then commit
  dp_client.py SOCK groups N           N groups (/24 index g * 16 + 1),
                                       each listing 11 hosts DROP (host
                                       octets 0, 25, ... 250): 11 N entries
                                       spread over the whole tbl24
  dp_client.py SOCK stats              the counters, "name value" lines
"""
import ipaddress
import socket
import struct
import sys

MAGIC, VERSION = 0x6D6F6470, 1
HELLO, PUBLISH, COMMIT, READ_STATS, REPLY = 1, 2, 3, 7, 9
UPD_GROUP, UPD_TBL24, UPD_V6_PLENS, UPD_V6_PUT = 1, 2, 3, 4
ACT = {"pass": 0, "tarpit": 1, "drop": 2, "allow": 3}
STATS = ["pass", "tarpit", "drop", "allow", "tarpit_limited", "tarpit_silence",
         "not_smtp", "non_syn", "err_eth", "err_vlan_depth", "err_ip4", "err_ip6",
         "err_ip6_ext", "err_tcp", "fragment", "tarpit_fail", "event_lost"]
MAX_UPDATES = 1024


def msg(mtype, payload=b"", count=0, flags=0):
    return struct.pack("<IHHIIIiQ", MAGIC, VERSION, mtype, 32 + len(payload), count,
                       flags, 0, 0) + payload


def call(s, mtype, payload=b"", count=0, flags=0):
    s.send(msg(mtype, payload, count, flags))
    r = s.recv(65536)
    _, _, typ, _, cnt, _, err, value = struct.unpack("<IHHIIIiQ", r[:32])
    if typ != REPLY or err:
        sys.exit("dp_client: request %d: reply type %d err %d" % (mtype, typ, err))
    return value, cnt, r[32:]


def upd(kind, index=0, value=0, body=b""):
    return struct.pack("<IIII", kind, index, value, 0) + body.ljust(64, b"\0")


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    call(s, HELLO, flags=1)
    return s


def publish(s, ups):
    for i in range(0, len(ups), MAX_UPDATES):
        part = ups[i:i + MAX_UPDATES]
        call(s, PUBLISH, b"".join(part), len(part))
    call(s, COMMIT)


def entries(specs):
    """the update sequence of the entries: groups before tbl24, plens
    before the IPv6 puts"""
    groups, t24, v6 = {}, {}, []
    for spec in specs:
        act, net = spec.split(":", 1)
        n = ipaddress.ip_network(net)
        if n.version == 4 and n.prefixlen == 32:
            a = int(n.network_address)
            groups.setdefault(a >> 8, bytearray(64))
            g, h = groups[a >> 8], a & 0xFF
            sh = (h & 3) * 2
            g[h >> 2] = (g[h >> 2] & ~(3 << sh)) | (ACT[act] << sh)
        elif n.version == 4 and n.prefixlen == 24:
            t24[int(n.network_address) >> 8] = ACT[act]
        elif n.version == 6:
            v6.append((n.prefixlen, n.network_address.packed, ACT[act]))
        else:
            sys.exit("dp_client: %s: a /32, a /24 or an IPv6 prefix" % spec)
    ups = []
    for i, (idx, bits) in enumerate(sorted(groups.items())):
        ups.append(upd(UPD_GROUP, i, 0, bytes(bits)))
        t24[idx] = 0x80000000 | i
    for idx, val in sorted(t24.items()):
        ups.append(upd(UPD_TBL24, idx, val))
    if v6:
        plens = sorted({p for p, _, _ in v6}, reverse=True)
        ups.append(upd(UPD_V6_PLENS, body=struct.pack("<I", len(plens)) + bytes(plens)))
        for plen, addr, act in sorted(v6, reverse=True):
            ups.append(upd(UPD_V6_PUT, 0, act, struct.pack("<I", plen) + addr))
    return ups


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    s = connect(sys.argv[1])
    cmd = sys.argv[2]
    if cmd == "publish":
        publish(s, entries(sys.argv[3:]))
    elif cmd == "gen24":
        n, act = int(sys.argv[3]), ACT[sys.argv[4]]
        publish(s, [upd(UPD_TBL24, (1 << 16) + i, act) for i in range(n)])
    elif cmd == "groups":
        n = int(sys.argv[3])
        g = bytearray(64)
        for h in range(0, 256, 25):
            g[h >> 2] |= ACT["drop"] << ((h & 3) * 2)
        g = bytes(g)
        ups = [upd(UPD_GROUP, i, 0, g) for i in range(n)]
        ups += [upd(UPD_TBL24, i * 16 + 1, 0x80000000 | i) for i in range(n)]
        publish(s, ups)
    elif cmd == "stats":
        _, cnt, body = call(s, READ_STATS)
        vals = struct.unpack("<%dQ" % cnt, body[:8 * cnt])
        for name, v in zip(STATS, vals):
            print(name, v)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
