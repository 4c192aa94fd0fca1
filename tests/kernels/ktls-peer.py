#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The pod's side of the kTLS cases (tests/kernels/test-ktls.sh) against an
openssl s_server driven through its stdin: a line goes up, the test answers
through the server's stdin, twice, so both directions carry data before and
after what the test makes the server do in between (a KeyUpdate).

    ktls-peer.py talk HOST PORT SECONDS
"""
import socket
import sys


def talk(host, port, seconds):
    s = socket.create_connection((host, int(port)), timeout=float(seconds))
    got = b""
    for i in (1, 2):
        s.sendall(b"ping%d\n" % i)
        print("sent ping%d" % i, flush=True)
        want = b"after%d" % i
        while want not in got:
            b = s.recv(4096)
            if not b:
                sys.exit("ended before %r (got %r)" % (want, got))
            got += b
        print("got after%d" % i, flush=True)
    s.close()
    print("talk ok")


if __name__ == "__main__":
    {"talk": talk}[sys.argv[1]](*sys.argv[2:])
