#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""clamdb.py - the lab's ClamAV database: one .ndb body signature matching
the EICAR test string, packed as an unsigned daily.cud (ClamAV's own CVD
layout: a 512-byte header then a gzipped tar with COPYING, daily.info and
daily.ndb) so clamd's VERSION reports a version and build time the test
chooses (--age-days): the database-age alarm is tested on it.

usage: clamdb.py DIR [--age-days N] [--version N]
"""
import argparse
import gzip
import hashlib
import io
import os
import tarfile
import time

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-"
         b"TEST-FILE!$H+H*")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--age-days", type=float, default=0)
    ap.add_argument("--version", type=int, default=7)
    a = ap.parse_args()

    stime = int(time.time() - a.age_days * 86400)
    date = time.strftime("%d %b %Y %H-%M +0000", time.gmtime(stime))
    # target type 0 (any file): clamd decodes MIME parts and scans each
    ndb = ("Moat.Test.EICAR:0:*:%s\n" % EICAR.hex()).encode()
    info = ("ClamAV-VDB:%s:%d:1:90:X:X:moat-lab:%d\n" % (date, a.version, stime)).encode()
    info += b"daily.ndb:%d:%s\n" % (len(ndb), hashlib.sha256(ndb).hexdigest().encode())

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in (("COPYING", b"moat lab test database\n"), ("daily.info", info),
                           ("daily.ndb", ndb)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    body = gzip.compress(raw.getvalue(), mtime=0)
    hdr = "ClamAV-VDB:%s:%d:1:90:%s:X:moat-lab:%d" % (date, a.version, hashlib.md5(body).hexdigest(), stime)
    os.makedirs(a.dir, exist_ok=True)
    path = os.path.join(a.dir, "daily.cud")
    with open(path + ".tmp", "wb") as f:
        f.write(hdr.encode().ljust(512, b" ") + body)
    os.rename(path + ".tmp", path)


if __name__ == "__main__":
    main()
