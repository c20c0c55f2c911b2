#!/usr/bin/env python3
"""smtpc.py - a raw SMTP client for the e2e tests (what swaks cannot send).

usage: smtpc.py [--src ADDR] HOST PORT STEP...
steps:
  R            read one (possibly multi-line) reply, print its last line
  S:TEXT       send TEXT (Python escapes: \\r \\n \\x00 ...)
  F:PATH       send the bytes of a file
  W:SECONDS    sleep
  TLS          wrap the socket in TLS (no verification: lab certificate)
  DRAIN        read replies until EOF or 2 s of silence, print each
Prints "EOF" when the server closed, "TIMEOUT" when a reply did not come.
"""
import os
import signal
import socket
import ssl
import sys
import time


def read_reply(sock, buf):
    """one reply: lines until 'ddd ' (or EOF); returns (last_line, buf)"""
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("latin-1")
            if len(line) < 4 or line[3] != "-":
                return line, buf
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return "TIMEOUT", buf
        except (ConnectionResetError, ssl.SSLError, OSError):
            return "EOF", buf
        if not chunk:
            return "EOF", buf
        buf += chunk


def main():
    args = sys.argv[1:]
    src = None
    timeout = 15.0
    while args and args[0].startswith("--"):
        if args[0] == "--src":
            src = args[1]
            args = args[2:]
        elif args[0] == "--timeout":
            timeout = float(args[1])
            args = args[2:]
        else:
            break
    host, port, steps = args[0], int(args[1]), args[2:]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    if src:
        sock.bind((src, 0))
    sock.settimeout(timeout)
    sock.connect((host, port))
    buf = b""
    for st in steps:
        if st == "R":
            line, buf = read_reply(sock, buf)
            print(line, flush=True)
        elif st.startswith("S:"):
            data = st[2:].encode("latin-1").decode("unicode_escape").encode("latin-1")
            try:
                sock.sendall(data)
            except OSError:
                print("EOF", flush=True)
        elif st.startswith("F:"):
            with open(st[2:], "rb") as f:
                sock.sendall(f.read())
        elif st.startswith("W:"):
            time.sleep(float(st[2:]))
        elif st.startswith("K:"):
            # K:SIGNAL:PID - signal a process at this point of the dialogue
            # (e.g. stop the downstream mid-DATA), never on a timer
            sig, pid = st[2:].split(":")
            os.kill(int(pid), getattr(signal, "SIG" + sig))
        elif st == "TLS":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock)
            buf = b""
        elif st == "DRAIN":
            sock.settimeout(2.0)
            while True:
                line, buf = read_reply(sock, buf)
                print(line, flush=True)
                if line in ("EOF", "TIMEOUT"):
                    break
            sock.settimeout(timeout)
        else:
            print("bad step " + st, file=sys.stderr)
            return 2
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
