#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small authoritative DNS server for the tests, UDP and TCP.

    dnsd.py ADDR [ADDR...]      listen on port 53 of each address

Answers: ext.test A 198.18.3.2; txt.test TXT (a record); fail.test SERVFAIL;
slow.test never; every other name NXDOMAIN. An OPT record in a query is
echoed in the answer. Each query is logged on stdout as
"query TRANSPORT NAME TYPE edns=0|1 from=ADDR", then flushed.
"""
import socket
import struct
import sys
import threading

A, AAAA, TXT, OPT = 1, 28, 16, 41


def parse(msg):
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    pos, labels = 12, []
    while msg[pos]:
        n = msg[pos]
        labels.append(msg[pos + 1:pos + 1 + n].decode())
        pos += 1 + n
    pos += 1
    qtype, qclass = struct.unpack("!HH", msg[pos:pos + 4])
    question = msg[12:pos + 4]
    rest = msg[pos + 4:]
    edns = ar > 0 and len(rest) >= 11 and rest[0] == 0 and struct.unpack("!H", rest[1:3])[0] == OPT
    return qid, flags, ".".join(labels).lower(), qtype, question, edns


def answer(msg, transport, peer):
    qid, flags, name, qtype, question, edns = parse(msg)
    print(f"query {transport} {name} {qtype} edns={int(edns)} from={peer}", flush=True)
    rcode, rrs = 0, []
    if name == "ext.test" and qtype == A:
        rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", A, 1, 60, 4) + socket.inet_aton("198.18.3.2"))
    elif name == "txt.test" and qtype == TXT:
        txt = b"meshsplice-test"
        rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", TXT, 1, 60, len(txt) + 1) + bytes([len(txt)]) + txt)
    elif name == "fail.test":
        rcode = 2
    elif name == "slow.test":
        return None
    elif name not in ("ext.test", "txt.test"):
        rcode = 3
    opt = b"\x00" + struct.pack("!HHIH", OPT, 1232, 0, 0) if edns else b""
    hdr = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode, 1, len(rrs), 0,
                      1 if edns else 0)
    return hdr + question + b"".join(rrs) + opt


def serve_udp(s):
    while True:
        msg, peer = s.recvfrom(65535)
        try:
            out = answer(msg, "udp", peer[0])
        except Exception as e:  # noqa: BLE001 - a test server logs and goes on
            print(f"bad query: {e}", flush=True)
            continue
        if out:
            s.sendto(out, peer)


def serve_tcp_conn(c, peer):
    try:
        while True:
            hdr = c.recv(2, socket.MSG_WAITALL)
            if len(hdr) < 2:
                return
            (n,) = struct.unpack("!H", hdr)
            msg = c.recv(n, socket.MSG_WAITALL)
            out = answer(msg, "tcp", peer[0])
            if out:
                c.sendall(struct.pack("!H", len(out)) + out)
    finally:
        c.close()


def serve_tcp(s):
    while True:
        c, peer = s.accept()
        threading.Thread(target=serve_tcp_conn, args=(c, peer), daemon=True).start()


def main():
    threads = []
    for addr in sys.argv[1:]:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((addr, 53))
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, 53))
        t.listen(64)
        for fn, s in ((serve_udp, u), (serve_tcp, t)):
            th = threading.Thread(target=fn, args=(s,), daemon=True)
            th.start()
            threads.append(th)
    print("ready", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
