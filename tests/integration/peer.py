#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Test peers for the integration suite: servers for the outside netns and
clients for the pod netns. Every client prints one line and exits non-zero
when what it checked did not hold."""
import asyncio
import hashlib
import os
import socket
import struct
import sys
import time


def addr_family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def connect(host, port, timeout=5.0):
    s = socket.socket(addr_family(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, int(port)))
    return s


def recv_all(s):
    out = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            return bytes(out)
        out += b


def hash_all(s, digest):
    """Read to EOF into digest (large transfers: nothing kept); the byte count."""
    n = 0
    while True:
        b = s.recv(1 << 16)
        if not b:
            return n
        digest.update(b)
        n += len(b)


# ---------- servers ----------

async def serve(port, handler):
    servers = []
    for host in ("0.0.0.0", "::"):
        try:
            # asyncio sets IPV6_V6ONLY, so both families can listen on the port
            servers.append(await asyncio.start_server(handler, host, int(port),
                                                      reuse_address=True, backlog=4096))
        except OSError:
            pass
    if not servers:
        sys.exit("cannot listen")
    # say we are ready
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def srv_echo(port):
    async def h(r, w):
        try:
            while True:
                b = await r.read(65536)
                if not b:
                    break
                w.write(b)
                await w.drain()
            w.write_eof()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()
    asyncio.run(serve(port, h))


def srv_halfclose(port):
    """Read until the client's FIN, then answer with the byte count and a digest."""
    async def h(r, w):
        data = await r.read()
        w.write(b"got %d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode()))
        await w.drain()
        w.close()
    asyncio.run(serve(port, h))


def srv_tls_sink(port, cert, key, pause):
    """TLS: wait pause seconds before reading (the client's bytes pile up in
    the proxy's buffers), read up to the client's close_notify, then answer
    "got N sha256". An EOF without close_notify (or a broken record) answers
    "no close_notify before the EOF" instead."""
    import ssl
    import threading
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.create_server(("", int(port)))

    def h(c):
        digest = hashlib.sha256()
        try:
            s = ctx.wrap_socket(c, server_side=True, suppress_ragged_eofs=False)
            time.sleep(float(pause))
            try:
                n = hash_all(s, digest)
                reply = b"got %d %s\n" % (n, digest.hexdigest().encode())
            except (ssl.SSLError, OSError):
                reply = b"no close_notify before the EOF\n"
            s.sendall(reply)
            s.close()
        except (ssl.SSLError, OSError):
            c.close()
    print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=h, args=(c,), daemon=True).start()


def srv_record(port, path):
    """Append one line per connection: bytes received and how it ended."""
    async def h(r, w):
        n, how = 0, "fin"
        peer = w.get_extra_info("peername")
        try:
            while True:
                b = await r.read(65536)
                if not b:
                    break
                n += len(b)
        except ConnectionResetError:
            how = "reset"
        with open(path, "a") as f:
            f.write("%s %d %s\n" % (peer[0], n, how))
        w.close()
    asyncio.run(serve(port, h))


def srv_silent(port):
    """Read until the client's FIN, then keep the connection open, saying nothing."""
    async def h(r, w):
        await r.read()
        await asyncio.sleep(60)
        w.close()
    asyncio.run(serve(port, h))


def srv_banner(port, text):
    async def h(r, w):
        w.write(text.encode() + b"\n")
        await w.drain()
        w.close()
    asyncio.run(serve(port, h))


def srv_unix_echo(path):
    async def h(r, w):
        while True:
            b = await r.read(65536)
            if not b:
                break
            w.write(b)
            await w.drain()
        w.close()

    async def main():
        s = await asyncio.start_unix_server(h, path)
        print("ready", flush=True)
        await s.serve_forever()
    asyncio.run(main())


def srv_tls(port, cert, key, log, *opts):
    """TLS echo server. Options: ca=PATH (require a client cert), max=TLS12,
    alpn=h2,http/1.1. One JSON line per handshake in log: sni, alpn, version,
    session_reused, client subject."""
    import json
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    sni = {}
    for o in opts:
        k, v = o.split("=", 1)
        if k == "ca":
            ctx.load_verify_locations(v)
            ctx.verify_mode = ssl.CERT_REQUIRED
        elif k == "max":
            ctx.maximum_version = getattr(ssl.TLSVersion, {"TLS12": "TLSv1_2", "TLS13": "TLSv1_3"}[v])
        elif k == "alpn":
            ctx.set_alpn_protocols(v.split(","))

    def on_sni(sslobj, name, _ctx):
        sni[id(sslobj)] = name
    ctx.sni_callback = on_sni

    async def h(r, w):
        so = w.get_extra_info("ssl_object")
        peer = so.getpeercert() if so else None
        rec = {"sni": sni.pop(id(so), None), "alpn": so.selected_alpn_protocol(), "version": so.version(),
               "resumed": so.session_reused,
               "client": dict(x[0] for x in peer["subject"]).get("commonName") if peer else None}
        with open(log, "a") as f:
            f.write(json.dumps(rec) + "\n")
        try:
            while True:
                b = await r.read(65536)
                if not b:
                    break
                w.write(b)
                await w.drain()
            w.close()
        except (ConnectionError, OSError, ssl.SSLError):
            pass

    async def main():
        srv = await asyncio.start_server(h, "0.0.0.0", int(port), ssl=ctx, reuse_address=True,
                                         ssl_handshake_timeout=5)
        print("ready", flush=True)
        await srv.serve_forever()
    asyncio.run(main())


# ---------- clients ----------

def cli_echo(host, port, size=1000):
    size = int(size)
    data = os.urandom(size)
    s = connect(host, port)
    peer = s.getpeername()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    back = recv_all(s)
    s.close()
    if back != data:
        sys.exit("echo mismatch: sent %d got %d" % (len(data), len(back)))
    print("echo ok %d peer %s %d" % (size, peer[0], peer[1]))


def cli_echo_exact(host, port, size=1000):
    """Send, read the same number of bytes back, then close (no half-close:
    many TLS servers end the whole connection at close_notify)."""
    size = int(size)
    data = os.urandom(size)
    s = connect(host, port)
    peer = s.getpeername()
    s.sendall(data)
    back = bytearray()
    while len(back) < size:
        b = s.recv(65536)
        if not b:
            break
        back += b
    s.close()
    if bytes(back) != data:
        sys.exit("echo mismatch: sent %d got %d" % (len(data), len(back)))
    print("echo ok %d peer %s %d" % (size, peer[0], peer[1]))


def cli_lockstep(host, port, mib):
    """Send mib MiB a MiB at a time, each read back before the next goes
    (so whatever the server sends with an echo, a KeyUpdate say, arrives
    before the next MiB is sent); then half-close and expect EOF."""
    s = connect(host, port, timeout=60)
    sent, back = hashlib.sha256(), hashlib.sha256()
    for _ in range(int(mib)):
        chunk = os.urandom(1 << 20)
        s.sendall(chunk)
        sent.update(chunk)
        got = 0
        while got < len(chunk):
            b = s.recv(1 << 16)
            if not b:
                sys.exit("lockstep: EOF after %d of a MiB" % got)
            back.update(b)
            got += len(b)
    s.shutdown(socket.SHUT_WR)
    if s.recv(1) != b"" or sent.digest() != back.digest():
        sys.exit("lockstep: more data or digests differ")
    print("lockstep ok: %s MiB echoed a MiB at a time (sha256 %s...)" % (mib, sent.hexdigest()[:16]))


def cli_until(host, port, mark, seconds=5):
    """Send a line, then read until mark arrives (ok) or the connection ends."""
    s = connect(host, port, timeout=float(seconds))
    s.sendall(b"hello\n")
    print("connected", flush=True)
    got = b""
    try:
        while mark.encode() not in got:
            b = s.recv(4096)
            if not b:
                break
            got += b
    except (ConnectionResetError, socket.timeout) as e:
        sys.exit("ended before %r: %r" % (mark, e))
    if mark.encode() not in got:
        sys.exit("ended before %r (got %r)" % (mark, got))
    print("got %s" % mark)


def cli_slow_reader(host, port, mib, pause):
    """Send mib MiB, read nothing for pause seconds, then read all back;
    compare sha256 of what was sent and what came back (echo server)."""
    mib, pause = int(mib), float(pause)
    import threading
    data_hash = hashlib.sha256()
    back_hash = hashlib.sha256()
    s = connect(host, port, timeout=pause + 60)
    total = mib << 20
    sent = [0]

    def writer():
        chunk = os.urandom(1 << 16)
        while sent[0] < total:
            n = min(len(chunk), total - sent[0])
            s.sendall(chunk[:n])
            data_hash.update(chunk[:n])
            sent[0] += n
        s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=writer)
    t.start()
    time.sleep(pause)
    got = hash_all(s, back_hash)
    t.join()
    if got != total or data_hash.digest() != back_hash.digest():
        sys.exit("slow reader: sent %d got %d, digests %s" % (total, got, "match" if data_hash.digest() == back_hash.digest() else "differ"))
    print("slow reader ok: %d MiB intact after a %.0fs pause (sha256 %s...)" % (mib, pause, data_hash.hexdigest()[:16]))


def cli_halfclosed(host, port, seconds):
    """Send, shut down writing, wait: the proxy's half-closed timeout must close it."""
    s = connect(host, port, timeout=float(seconds))
    s.sendall(b"request")
    s.shutdown(socket.SHUT_WR)
    t0 = time.time()
    try:
        b = s.recv(10)
    except ConnectionResetError:
        b = b""
    except socket.timeout:
        sys.exit("half-closed connection still open after %ss" % seconds)
    print("closed by the proxy after %.1fs (%r)" % (time.time() - t0, b))


def cli_idle(host, port, seconds):
    """Connect, then wait: the proxy's idle timeout must close the connection."""
    s = connect(host, port, timeout=float(seconds))
    t0 = time.time()
    try:
        b = s.recv(10)
    except (ConnectionResetError, socket.timeout) as e:
        if isinstance(e, socket.timeout):
            sys.exit("idle connection still open after %ss" % seconds)
        b = b""
    print("closed by the proxy after %.1fs (%r)" % (time.time() - t0, b))


def cli_timed_refused(host, port, max_seconds):
    """The connection must fail (reset or EOF) within max_seconds."""
    t0 = time.time()
    try:
        s = connect(host, port, timeout=float(max_seconds) + 5)
        s.sendall(b"x")
        b = s.recv(10)
        if b:
            sys.exit("got data")
    except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError, PermissionError):
        pass
    dt = time.time() - t0
    if dt > float(max_seconds):
        sys.exit("failed only after %.1fs" % dt)
    print("failed after %.1fs" % dt)


def cli_escape(how, host, port):
    """Try to reach host:port a particular way; exit 0 when it was stopped."""
    fam = addr_family(host)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        if how == "bind":
            s.bind(("0.0.0.0" if fam == socket.AF_INET else "::", 0))
            s.connect((host, int(port)))
        elif how == "tfo":
            # TCP Fast Open: the connect is implicit in sendto
            try:
                s.sendto(b"must not arrive", socket.MSG_FASTOPEN, (host, int(port)))
            except BlockingIOError:
                pass  # the handshake is under way; its outcome shows below
        else:
            s.connect((host, int(port)))
        s.sendall(b"must not arrive")
        if s.recv(100):
            sys.exit("%s: got an answer" % how)
        print("%s: closed without data" % how)
    except (PermissionError, ConnectionResetError, ConnectionRefusedError, BrokenPipeError, socket.timeout) as e:
        print("%s: stopped (%s)" % (how, e.__class__.__name__))


def cli_hold_socket_then(host, port, flagfile):
    """Make a socket now, wait for flagfile (the pod gets enabled meanwhile), then dial."""
    s = socket.socket(addr_family(host), socket.SOCK_STREAM)
    s.settimeout(3)
    print("socket made", flush=True)
    while not os.path.exists(flagfile):
        time.sleep(0.05)
    try:
        s.connect((host, int(port)))
        s.sendall(b"must not arrive")
        if s.recv(100):
            sys.exit("pre-made socket got an answer")
        print("pre-made socket: closed without data")
    except (PermissionError, ConnectionResetError, ConnectionRefusedError, BrokenPipeError, socket.timeout) as e:
        print("pre-made socket: stopped (%s)" % e.__class__.__name__)


def cli_read(host, port):
    s = connect(host, port)
    print(recv_all(s).decode().strip())


def cli_halfclose(host, port, size=200000):
    data = os.urandom(int(size))
    s = connect(host, port)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = recv_all(s).decode().strip()
    want = "got %d %s" % (len(data), hashlib.sha256(data).hexdigest())
    if reply != want:
        sys.exit("half-close reply %r, want %r" % (reply, want))
    print("halfclose ok")


def cli_reset(host, port):
    s = connect(host, port)
    s.sendall(b"x" * 1000)
    time.sleep(0.3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("reset sent")


def cli_refused(host, port):
    """The connection must fail: EPERM at connect, or a reset/EOF with no data."""
    try:
        s = connect(host, port, timeout=3)
    except PermissionError:
        print("refused: EPERM at connect")
        return
    except (ConnectionRefusedError, ConnectionResetError, OSError) as e:
        print("refused: %s" % e)
        return
    try:
        s.sendall(b"must not arrive\n")
        b = s.recv(100)
        if b:
            sys.exit("connection was not refused: got %r" % b)
        print("refused: closed without data")
    except (ConnectionResetError, BrokenPipeError) as e:
        print("refused: %s" % e)


def cli_many(host, port, n, conc, size):
    n, conc, size = int(n), int(conc), int(size)
    fails = []

    async def one(i, sem):
        async with sem:
            data = os.urandom(size)
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
                w.write(data)
                await w.drain()
                w.write_eof()
                back = await asyncio.wait_for(r.read(), 30)
                w.close()
                if back != data:
                    fails.append("conn %d: sent %d got %d" % (i, len(data), len(back)))
            except Exception as e:  # noqa: BLE001 - report every failure
                fails.append("conn %d: %r" % (i, e))

    async def main():
        sem = asyncio.Semaphore(conc)
        await asyncio.gather(*(one(i, sem) for i in range(n)))
    t0 = time.time()
    asyncio.run(main())
    if fails:
        sys.exit("%d of %d failed, first: %s" % (len(fails), n, fails[0]))
    print("many ok %d conns x %d bytes, %d concurrent, %.1fs" % (n, size, conc, time.time() - t0))


def cli_hold(host, port, seconds):
    """Open a connection, then keep it and check it still echoes after seconds."""
    s = connect(host, port, timeout=float(seconds) + 10)
    s.sendall(b"before\n")
    assert s.recv(100) == b"before\n"
    print("held", flush=True)
    time.sleep(float(seconds))
    s.sendall(b"after\n")
    b = s.recv(100)
    if b != b"after\n":
        sys.exit("held connection broke: %r" % b)
    print("hold ok")


def cli_storm(host, port, n, seconds):
    """Open n connections at once and hold them; count those that echo and
    those the proxy reset or refused. Fails only if none echoed."""
    n, seconds = int(n), float(seconds)
    ok, refused, socks = 0, 0, []
    for _ in range(n):
        s = socket.socket(addr_family(host), socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect((host, int(port)))
            s.sendall(b"x")
            if s.recv(1) == b"x":
                ok += 1
                socks.append(s)
                continue
            refused += 1
        except OSError:
            refused += 1
        s.close()
    print("storm: %d echoing, %d reset or refused" % (ok, refused), flush=True)
    time.sleep(seconds)
    for s in socks:
        s.close()
    if ok == 0:
        sys.exit("no connection echoed")


CMDS = {
    "serve-echo": srv_echo, "serve-halfclose": srv_halfclose, "serve-record": srv_record,
    "serve-banner": srv_banner, "serve-silent": srv_silent, "halfclosed": cli_halfclosed, "serve-unix-echo": srv_unix_echo, "serve-tls": srv_tls, "serve-tls-sink": srv_tls_sink,
    "escape": cli_escape, "hold-socket-then": cli_hold_socket_then, "slow-reader": cli_slow_reader, "idle": cli_idle, "timed-refused": cli_timed_refused,
    "echo": cli_echo, "echo-exact": cli_echo_exact, "lockstep": cli_lockstep, "until": cli_until, "read": cli_read, "halfclose": cli_halfclose, "reset": cli_reset,
    "refused": cli_refused, "many": cli_many, "hold": cli_hold, "storm": cli_storm,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CMDS:
        sys.exit("usage: peer.py %s ARGS" % "|".join(CMDS))
    CMDS[sys.argv[1]](*sys.argv[2:])
