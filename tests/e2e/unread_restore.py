#!/usr/bin/python3
"""unread_restore.py HOST PORT - one SMTP client that stops reading its
replies, then reads again and sends a message (tests/e2e/test_smtpd_load.sh
case 13).

Phase 1: EHLO, then up to 5,000 NOOPs pipelined without reading a reply
(moat-smtpd stops reading the session once the client's small receive
buffer is full and 4 KB of replies wait in the engine). Prints "stalled PORT NOOPS" (its local port, the NOOPs sent) and
waits for a line on standard input. Phase 2: reads every reply (each NOOP
must get a 250), sends one message, prints "sent PORT CODE" (the reply
to the final dot) and waits for a line again; then QUIT.  Exits 1 on any
unexpected reply or a timeout."""
import select
import socket
import sys
import time


def die(msg):
    print(f"error {msg}", flush=True)
    sys.exit(1)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket()
    # a small receive buffer: the engine's send side fills after a few
    # hundred replies, not after the default 128 KB
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # and a small send buffer: its sends block soon after the engine stops
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    s.settimeout(10)
    s.connect((host, port))
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            ln = f.readline()
            if not ln:
                die("connection closed")
            lines.append(ln)
            if ln[3:4] != b"-":
                return lines[-1][:3].decode()

    if reply() != "220":
        die("no greeting")
    s.sendall(b"EHLO client.example\r\n")
    if reply() != "250":
        die("EHLO refused")
    s.setblocking(False)
    # 5,000 NOOPs (30 KB; their replies 70 KB): far past what the engine
    # answers before it stops reading (its 4 KB queue, 8 KB send buffer
    # and this client's receive buffer). Sent as far as the windows let
    # them within 3 s, or until the sends have blocked for 0.3 s
    data = b"NOOP\r\n" * 5000
    sent, t0 = 0, time.monotonic()
    last = t0
    while sent < len(data) and time.monotonic() - t0 < 3 and time.monotonic() - last < 0.3:
        try:
            n = s.send(data[sent:sent + 4096])
        except BlockingIOError:
            select.select([], [s], [], 0.05)
            continue
        sent += n
        last = time.monotonic()
    # a NOOP a partial send cut is finished once the engine reads again
    rest = data[sent:sent + (6 - sent % 6) % 6]
    noops = (sent + len(rest)) // 6
    print(f"stalled {s.getsockname()[1]} {noops}", flush=True)
    sys.stdin.readline()
    s.setblocking(True)
    s.settimeout(10)
    s.sendall(rest)
    for i in range(noops):
        try:
            code = reply()
        except OSError as e:
            die(f"NOOP reply {i} of {noops}: {type(e).__name__}: {e}")
        if code != "250":
            die(f"NOOP {i} not 250")
    for cmd in (b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<b@moat.test>\r\n"):
        s.sendall(cmd)
        if reply() != "250":
            die(f"{cmd!r} refused")
    s.sendall(b"DATA\r\n")
    if reply() != "354":
        die("DATA refused")
    s.sendall(b"Subject: after the clamp\r\n\r\n" + b"x" * 70 + b"\r\n.\r\n")
    code = reply()
    print(f"sent {s.getsockname()[1]} {code}", flush=True)
    sys.stdin.readline()
    s.sendall(b"QUIT\r\n")
    reply()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as e:
        die(f"{type(e).__name__}: {e}")
