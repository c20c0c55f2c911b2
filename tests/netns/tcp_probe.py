#!/usr/bin/python3
"""tcp_probe.py - real kernel TCP on both ends of the XDP lab tests.

  tcp_probe.py listen ADDR PORT LOG     accept forever; LOG gets
                                        "accept <peer>" and "data <peer> <n>"
  tcp_probe.py connect SRC DST PORT T   connect from SRC within T seconds,
                                        send a line, wait T for a reply;
                                        prints one word: timeout, refused,
                                        connected-silent (handshake done, no
                                        reply: a tarpit) or connected-reply
"""
import socket
import sys
import threading


def listen(addr, port, log):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    out = open(log, "a", buffering=1)

    def serve(c, peer):
        out.write("accept %s\n" % peer)
        try:
            c.settimeout(10)
            data = c.recv(4096)
            out.write("data %s %d\n" % (peer, len(data)))
            c.sendall(b"220 hello\r\n")
        except OSError:
            pass
        c.close()

    while True:
        c, peer = s.accept()
        threading.Thread(target=serve, args=(c, peer[0]), daemon=True).start()


def connect(src, dst, port, t):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(t)
    try:
        s.connect((dst, port))
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    try:
        s.sendall(b"EHLO probe\r\n")
        data = s.recv(100)
        return "connected-reply" if data else "connected-closed"
    except socket.timeout:
        return "connected-silent"
    except OSError:
        return "connected-error"


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "listen":
        listen(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 6 and sys.argv[1] == "connect":
        print(connect(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
