#!/usr/bin/env python3
"""flaky_mx.py - a scripted downstream for the e2e suite.

Connection 1 accepts the envelope, then drops the session 1 s after the
last RCPT (the downstream lost while the client is still in DATA).
Every later connection refuses RCPT with 550 5.1.1 (the recipient is now
unknown), so moat-smtpd's envelope replay must turn into a tempfail.
usage: flaky_mx.py ADDR PORT
"""
import asyncio
import sys

count = 0


async def handle(r, w):
    global count
    count += 1
    n = count
    w.write(b"220 flaky.example ESMTP\r\n")
    while True:
        try:
            line = await asyncio.wait_for(r.readline(), 1.0 if n == 1 else 30)
        except asyncio.TimeoutError:
            break  # connection 1: drop while idle
        if not line:
            break
        cmd = line[:4].upper()
        if cmd in (b"EHLO", b"HELO"):
            w.write(b"250 flaky.example\r\n")
        elif cmd == b"MAIL":
            w.write(b"250 2.1.0 Ok\r\n")
        elif cmd == b"RCPT":
            w.write(b"250 2.1.5 Ok\r\n" if n == 1 else b"550 5.1.1 No such user now\r\n")
        elif cmd == b"QUIT":
            w.write(b"221 Bye\r\n")
            break
        else:
            w.write(b"250 Ok\r\n")
        await w.drain()
    w.close()


async def main():
    srv = await asyncio.start_server(handle, sys.argv[1], int(sys.argv[2]))
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
