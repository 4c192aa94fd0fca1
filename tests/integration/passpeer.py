#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""MeshPassthrough test peers.

record PORT LOG      every connection: read to EOF (or 3 s of silence), append
                     "<bytes> <sha256>" to LOG, answer the sha256, close
send HOST PORT KIND NAME [SEGMENTS] [DELAY]
                     KIND tls: a ClientHello naming NAME (Python's ssl); http:
                     a request with Host: NAME. In SEGMENTS pieces, DELAY s
                     apart, then EOF; exit 0 when the server answers the
                     sha256 of exactly those bytes, 2 when refused.
                     KIND late-tls, late-http: silent for 2 s after connecting.
"""
import hashlib
import socket
import ssl
import sys
import time


def record(port, log):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", int(port)))
    s.listen(64)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        c.settimeout(3)
        data = b""
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                data += b
        except (socket.timeout, ConnectionResetError):
            pass
        h = hashlib.sha256(data).hexdigest()
        with open(log, "a") as f:
            f.write("%d %s\n" % (len(data), h))
        try:
            c.sendall(h.encode())
        except OSError:
            pass
        c.close()


def client_hello(name):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(i, o, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return o.read()


def send(host, port, kind, name, segments="1", delay="0"):
    late = kind.startswith("late-") # says nothing for 2 s first (a server-speaks-first client)
    kind = kind[5:] if late else kind
    if kind == "tls":
        data = client_hello(name)
    else:
        data = ("GET /x HTTP/1.1\r\nHost: %s\r\nUser-Agent: passpeer\r\n\r\n" % name).encode()
    n = int(segments)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(5)
    try:
        s.connect((host, int(port)))
        if late:
            time.sleep(2)
        step = (len(data) + n - 1) // n
        for k in range(0, len(data), step):
            s.sendall(data[k:k + step])
            time.sleep(float(delay))
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(100)
            if not b:
                break
            got += b
    except (PermissionError, ConnectionResetError, BrokenPipeError, ConnectionRefusedError) as e:
        print("refused: %s" % e)
        sys.exit(2)
    want = hashlib.sha256(data).hexdigest()
    if not got:
        print("refused: closed without an answer")
        sys.exit(2)
    if got.decode() != want:
        sys.exit("the server got other bytes: %s, sent %s" % (got.decode(), want))
    print("%d bytes arrived untouched in %d segments (sha256 %s...)" % (len(data), n, want[:12]))


if __name__ == "__main__":
    {"record": record, "send": send}[sys.argv[1]](*sys.argv[2:])
