#!/usr/bin/python3
"""cookie_ack.py - a hand-made TCP handshake for the SYN-cookie test.

  cookie_ack.py IFACE DST_MAC SRC DST PORT SPORT DELTA

On IFACE (an AF_PACKET socket: the local kernel has no socket for SPORT,
so nothing of its own interferes but a RST, which a listener ignores), send
a SYN from SRC:SPORT to DST:PORT, wait up to 2 s for the SYN-ACK, then send
the ACK acknowledging the SYN-ACK's ISN + 1 + DELTA (0: the right cookie;
anything else a forged one).  Prints "isn=N win=W mss=M hdr=H" of the
SYN-ACK (H: its TCP header length),
or "no-synack"; exit 0 when a SYN-ACK came.  IPv4 only.
"""
import os
import random
import socket
import struct
import sys
import time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(smac, dmac, src, dst, sport, dport, seq, ack, flags, opts=b""):
    off = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags,
                      64240, 0, 0) + opts
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    c = csum(ph + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randint(0, 65535),
                     0x4000, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dmac + smac + b"\x08\x00" + ip + tcp


def main():
    iface, dmac_s, src, dst, port, sport, delta = sys.argv[1:8]
    port, sport, delta = int(port), int(sport), int(delta)
    dmac = bytes.fromhex(dmac_s.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((iface, 0))
    smac = s.getsockname()[4][:6]
    seq = random.randint(0, 2**32 - 1)
    s.send(frame(smac, dmac, src, dst, sport, port, seq, 0, 0x02,
                 struct.pack("!BBH", 2, 4, 1460)))
    end = time.time() + 2
    s.settimeout(0.2)
    while time.time() < end:
        try:
            f = s.recv(2048)
        except socket.timeout:
            continue
        ip = f[14:]
        if len(ip) < 40 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        t = ip[ihl:]
        if socket.inet_ntoa(ip[12:16]) != dst or socket.inet_ntoa(ip[16:20]) != src:
            continue
        sp, dp, isn, ack = struct.unpack("!HHII", t[:12])
        if sp != port or dp != sport or t[13] & 0x12 != 0x12 or ack != (seq + 1) & 0xFFFFFFFF:
            continue
        win = struct.unpack("!H", t[14:16])[0]
        mss = 0
        o, end_o = 20, (t[12] >> 4) * 4
        while o < end_o:
            if t[o] == 0:
                break
            if t[o] == 1:
                o += 1
                continue
            if t[o] == 2:
                mss = struct.unpack("!H", t[o + 2:o + 4])[0]
            o += t[o + 1]
        s.send(frame(smac, dmac, src, dst, sport, port, (seq + 1) & 0xFFFFFFFF,
                     (isn + 1 + delta) & 0xFFFFFFFF, 0x10))
        print("isn=%d win=%d mss=%d hdr=%d" % (isn, win, mss, end_o))
        return 0
    print("no-synack")
    return 1


if __name__ == "__main__":
    sys.exit(main())
