#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""dashboard_check.py - every metric a Grafana dashboard queries exists in
the live /metrics of the daemon that exports it (moat_smtpd_* in
moat-smtpd's, the rest in moat-controld's): a sample line, not only HELP.

usage: dashboard_check.py DASHBOARD.json controld=METRICS_FILE smtpd=METRICS_FILE
Prints one line per metric; exit 1 when one is missing or the dashboard is
malformed (a panel without targets, an empty expression).
"""
import json
import re
import sys


def names_in(text):
    """metric names with at least one sample line"""
    out = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", line)
            if m:
                out.add(m.group(1))
    return out


def main():
    dash = json.load(open(sys.argv[1]))
    live = {}
    for arg in sys.argv[2:]:
        who, path = arg.split("=", 1)
        live[who] = names_in(open(path).read())
    bad = 0
    queried = {}
    for p in dash.get("panels", []):
        targets = p.get("targets") or []
        if not targets:
            print("panel %r: no targets" % p.get("title"))
            bad += 1
        for t in targets:
            expr = t.get("expr", "")
            if not expr.strip():
                print("panel %r: empty expression" % p.get("title"))
                bad += 1
            for n in re.findall(r"\bmoat_[a-z0-9_]+\b", expr):
                queried.setdefault(n, p.get("title"))
    if not queried:
        print("no moat_ metric queried")
        bad += 1
    for n in sorted(queried):
        who = "smtpd" if n.startswith("moat_smtpd_") else "controld"
        ok = n in live.get(who, set())
        print("%s %s in %s /metrics (panel %r)" % ("ok" if ok else "MISSING", n, who, queried[n]))
        bad += not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
