#!/usr/bin/env python3
"""capture_xfr.py - seed corpus for fuzz_xfr from a real Knot DNS primary.

Starts knotd on 127.0.0.1 (a free port, a temporary directory, nothing
outside loopback), serves tools/sample/bl.moat.test.zone renamed bl.test,
records its AXFR answer as the raw DNS-over-TCP stream, bumps the serial with
two records changed, reloads (Knot computes the difference into its journal)
and records the IXFR answer and the up-to-date answer.  Writes the inputs of
fuzz_xfr.c's format into tests/fuzz/corpus/xfr/:
  axfr            flags 0, the AXFR stream
  axfr-then-ixfr  flags 1, AXFR stream then IXFR stream
  axfr-uptodate   flags 1, AXFR stream then the answer to an IXFR at the
                  current serial (a lone SOA)
Run: tests/fuzz/capture_xfr.py (as any user; knotd and knotc installed).
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = os.path.join(root, 'tests', 'fuzz', 'corpus', 'xfr')


def qname(name):
    return b''.join(bytes([len(p)]) + p.encode() for p in name.split('.') if p) + b'\0'


def query(qtype, serial=None):
    hdr = struct.pack('>HHHHHH', 0x1234, 0, 1, 0, 1 if serial is not None else 0, 0)
    q = qname('bl.test') + struct.pack('>HH', qtype, 1)
    if serial is not None:
        soa = b'\0\0' + struct.pack('>IIIII', serial, 0, 0, 0, 0)
        q += b'\xc0\x0c' + struct.pack('>HHIH', 6, 1, 0, len(soa)) + soa
    m = hdr + q
    return struct.pack('>H', len(m)) + m


def ask(port, qtype, serial=None):
    """the raw answer stream up to the closing SOA (or a lone SOA)"""
    s = socket.create_connection(('127.0.0.1', port), timeout=3)
    s.sendall(query(qtype, serial))
    data = b''
    s.settimeout(1.0)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except socket.timeout:
        pass
    s.close()
    return data


def main():
    tmp = tempfile.mkdtemp(prefix='moat-capture-xfr.')
    knotd = None
    try:
        zones = os.path.join(tmp, 'zones')
        os.makedirs(zones)
        os.makedirs(os.path.join(tmp, 'run'))
        os.makedirs(os.path.join(tmp, 'db'))
        zone = open(os.path.join(root, 'tools', 'sample', 'bl.moat.test.zone')).read()
        zone = zone.replace('bl.moat.test.', 'bl.test.')
        zfile = os.path.join(zones, 'bl.test.zone')
        open(zfile, 'w').write(zone)
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        conf = os.path.join(tmp, 'knot.conf')
        open(conf, 'w').write(f"""server:
    listen: 127.0.0.1@{port}
    rundir: "{tmp}/run"
log:
  - target: stderr
    any: info
database:
    storage: "{tmp}/db"
acl:
  - id: lo
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: "{zones}"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    semantic-checks: off
    acl: lo
zone:
  - domain: bl.test
""")
        knotd = subprocess.Popen(['knotd', '-c', conf], stderr=subprocess.DEVNULL)
        for _ in range(50):
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        axfr = ask(port, 252)
        old = int(re.search(r'SOA \S+ \S+ (\d+)', zone).group(1))
        zone2 = zone.replace(str(old), str(old + 1), 1)
        zone2 = zone2.replace('11.2.0.192                A   127.0.0.4',
                              '12.2.0.192                A   127.0.0.4')
        zone2 += '99.2.0.192 A 127.0.0.2\n*.9.51.198 A 127.0.0.3\n'
        open(zfile, 'w').write(zone2)
        subprocess.run(['knotc', '-c', conf, 'zone-reload', 'bl.test'], check=True,
                       stdout=subprocess.DEVNULL)
        for _ in range(50):
            ixfr = ask(port, 251, old)
            if len(ixfr) > 200:
                break
            time.sleep(0.1)
        uptodate = ask(port, 251, old + 1)
        if not axfr or not ixfr or not uptodate:
            sys.exit('capture_xfr: knotd gave an empty answer')
        os.makedirs(out, exist_ok=True)
        open(os.path.join(out, 'axfr'), 'wb').write(b'\0' + axfr)
        for name, second in (('axfr-then-ixfr', ixfr), ('axfr-uptodate', uptodate)):
            open(os.path.join(out, name), 'wb').write(
                b'\1' + struct.pack('>H', len(axfr)) + axfr + second)
        print(f'capture_xfr: axfr {len(axfr)} bytes, ixfr {len(ixfr)}, '
              f'up to date {len(uptodate)} -> {out}')
    finally:
        if knotd:
            knotd.terminate()
            knotd.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
