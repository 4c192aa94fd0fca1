#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Does this kernel do TLS in the socket layer (kTLS)? For each version and
# cipher: a TCP pair on loopback, TCP_ULP "tls" and TLS_TX with fixed keys on
# the sender; the receiver reads the raw bytes (one TLS application-data
# record, not the plaintext) and then, with TLS_RX and the same keys on a
# second pair, the plaintext. Prints one line per case and "N passed, N failed".
# Exit 0 when every case passed; 1 when one failed; 2 when the kernel has no
# TLS ULP at all (CONFIG_TLS off, tls.ko not loadable), which the caller may
# expect (the control: the host without CONFIG_TLS).
import errno
import os
import socket
import struct
import sys

SOL_TLS = 282
TCP_ULP = 31
TLS_TX = 1
TLS_RX = 2
TLS_SET_RECORD_TYPE = 1
RECORD_APPLICATION_DATA = 23

# include/uapi/linux/tls.h: (cipher type, key, iv, salt, tag) sizes
CIPHERS = {
    "aes-gcm-128": (51, 16, 8, 4, 16),
    "aes-gcm-256": (52, 32, 8, 4, 16),
    "chacha20-poly1305": (54, 32, 12, 0, 16),
}
VERSIONS = {"1.2": 0x0303, "1.3": 0x0304}
PLAIN = b"meshsplice kTLS probe " * 10


def crypto_info(version, cipher):
    ctype, klen, ivlen, saltlen, _ = CIPHERS[cipher]
    # struct tls_crypto_info { u16 version; u16 cipher_type; } then iv, key, salt, rec_seq
    return (struct.pack("=HH", version, ctype) + bytes(range(1, ivlen + 1)) +
            bytes(range(0x40, 0x40 + klen)) + bytes(range(0x80, 0x80 + saltlen)) + bytes(8))


def tcp_pair():
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    cli = socket.create_connection(lsn.getsockname())
    srv, _ = lsn.accept()
    lsn.close()
    return cli, srv


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def one_case(vname, cname):
    version = VERSIONS[vname]
    _, _, ivlen, _, tag = CIPHERS[cname]
    info = crypto_info(version, cname)
    # TX only: what goes on the wire is a record, not the plaintext
    cli, srv = tcp_pair()
    try:
        cli.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
        cli.setsockopt(SOL_TLS, TLS_TX, info)
        cli.sendall(PLAIN)
        # TLS 1.2 AES-GCM carries an 8-byte explicit nonce; 1.3 adds the inner type byte
        explicit = 8 if (version == 0x0303 and cname.startswith("aes")) else 0
        inner = 1 if version == 0x0304 else 0
        want = len(PLAIN) + explicit + inner + tag
        hdr = recv_exact(srv, 5)
        rtype, rver, rlen = struct.unpack("!BHH", hdr)
        body = recv_exact(srv, rlen)
        if rtype != RECORD_APPLICATION_DATA or rver != 0x0303 or rlen != want:
            return f"record header {hdr.hex()} (want type 23, 0303, length {want})"
        if PLAIN[:16] in body:
            return "the plaintext is on the wire"
    finally:
        cli.close()
        srv.close()
    # TX and RX: the receiving kernel decrypts what the sending one encrypted
    cli, srv = tcp_pair()
    try:
        cli.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
        cli.setsockopt(SOL_TLS, TLS_TX, info)
        srv.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
        srv.setsockopt(SOL_TLS, TLS_RX, info)
        cli.sendall(PLAIN)
        got = recv_exact(srv, len(PLAIN))
        if got != PLAIN:
            return f"decrypted {len(got)} bytes, not the plaintext"
    finally:
        cli.close()
        srv.close()
    return None


def main():
    # the ULP is set on an established socket only (ENOTCONN before)
    cli, srv = tcp_pair()
    try:
        cli.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
    except OSError as e:
        print(f"ktls: no TLS ULP on {os.uname().release}: {errno.errorcode.get(e.errno, e.errno)}")
        return 2
    finally:
        cli.close()
        srv.close()
    passed = failed = 0
    for vname in VERSIONS:
        for cname in CIPHERS:
            try:
                why = one_case(vname, cname)
            except OSError as e:
                why = f"{errno.errorcode.get(e.errno, e.errno)}: {e.strerror}"
            if why is None:
                passed += 1
                print(f"PASS kTLS TLS {vname} {cname}: TX record on the wire, RX decrypts")
            else:
                failed += 1
                print(f"FAIL kTLS TLS {vname} {cname}: {why}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
