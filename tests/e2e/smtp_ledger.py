#!/usr/bin/python3
"""smtp_ledger.py - SMTP clients that keep a ledger of what they were told.

    smtp_ledger.py HOST PORT TAG SECONDS SESSIONS LEDGER

SESSIONS threads send messages one after another on persistent sessions
for SECONDS.  Each message has a unique header "X-Ledger: TAG-N"; every
fifth one carries "refuse-me" in its body (a rule of the test refuses it).
A session that breaks (connection refused or reset, 421) is reopened.
LEDGER gets one line per message: "TAG-N OUTCOME STAGE [reply]":
accepted = 250 after the dot; refused = 5xx and tempfail = 4xx at the
STAGE (envelope or data: the reply to the dot), both telling the client
the message was not taken (after a 4xx it would send it again); unknown
= the connection broke after the message went out, before the reply to
the dot (the server may or may not have relayed it); lost = it broke
before DATA's 354 (nothing of the message sent).  Nothing is resent.  Prints the counts as JSON on exit; status 0.
"""
import json
import smtplib
import sys
import threading
import time

host, port, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seconds, sessions, ledger = float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
lock = threading.Lock()
seq = [0]
lines = []
deadline = time.monotonic() + seconds


def next_id():
    with lock:
        seq[0] += 1
        return seq[0]


def record(mid, outcome, stage, why=""):
    with lock:
        lines.append("%s-%d %s %s %s" % (tag, mid, outcome, stage, why.replace("\n", " ")))


def message(mid):
    body = "refuse-me please\r\n" if mid % 5 == 0 else "hello %d\r\n" % mid
    return ("From: a@example.org\r\nTo: rcpt@moat.test\r\n"
            "Subject: ledger %d\r\nX-Ledger: %s-%d\r\n\r\n%s" % (mid, tag, mid, body))


def worker():
    s = None
    while time.monotonic() < deadline:
        if s is None:
            try:
                s = smtplib.SMTP(host, port, timeout=10)
                s.ehlo("client.example")
            except (OSError, smtplib.SMTPException):
                s = None
                time.sleep(0.05)
                continue
        mid = next_id()
        stage = "envelope"
        try:
            code, msg = s.mail("a@example.org")
            if code >= 400:
                raise smtplib.SMTPResponseException(code, msg)
            code, msg = s.rcpt("rcpt@moat.test")
            if code >= 400:
                raise smtplib.SMTPResponseException(code, msg)
            code, msg = s.docmd("DATA")
            if code != 354:
                raise smtplib.SMTPResponseException(code, msg)
            stage = "data"
            s.send(smtplib.quotedata(message(mid)).encode() + b"\r\n.\r\n")
            code, msg = s.getreply()
            if code == 250:
                record(mid, "accepted", stage)
            else:
                raise smtplib.SMTPResponseException(code, msg)
        except smtplib.SMTPResponseException as e:
            why = "%d %s" % (e.smtp_code, e.smtp_error.decode(errors="replace"))
            record(mid, "refused" if e.smtp_code >= 500 else "tempfail", stage, why)
            if e.smtp_code == 421:
                s.close()
                s = None
            else:
                try:
                    s.rset()
                except (OSError, smtplib.SMTPException):
                    s.close()
                    s = None
        except (OSError, smtplib.SMTPException) as e:
            # broken before the reply to the dot: the server may have
            # relayed it or not; before DATA's 354 nothing was sent
            record(mid, "unknown" if stage == "data" else "lost", stage, type(e).__name__)
            try:
                s.close()
            except OSError:
                pass
            s = None
    if s is not None:
        try:
            s.quit()
        except (OSError, smtplib.SMTPException):
            pass


threads = [threading.Thread(target=worker) for _ in range(sessions)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(ledger, "w") as f:
    f.write("\n".join(lines) + "\n")
counts = {}
for line in lines:
    k = line.split()[1]
    counts[k] = counts.get(k, 0) + 1
print(json.dumps(counts))
