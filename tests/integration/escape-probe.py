#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Escape attempts for test-escape.sh that need more than a connect: socket
options that reroute, a socket whose option memory is full, a forged agent
mark, a squatted agent port. Each prints one line saying what happened and
exits 0 when the attempt was stopped (EPERM, reset, timeout), 3 when it got
through (the option was set, the bind or the connect succeeded)."""
import errno
import socket
import struct
import sys

SOL_IP, SOL_IPV6 = 0, 41
IP_OPTIONS, IP_TRANSPARENT = 4, 19
IPV6_2292DSTOPTS, IPV6_2292RTHDR, IPV6_2292PKTOPTIONS = 4, 5, 6
IPV6_RTHDRDSTOPTS, IPV6_RTHDR, IPV6_DSTOPTS, IPV6_TRANSPARENT = 55, 57, 59, 75
SO_MARK = 36
TCP_MD5SIG = 14
IPOPT_NOP, IPOPT_LSRR, IPOPT_SSRR, IPOPT_RR, IPOPT_TS = 1, 0x83, 0x89, 0x07, 0x44


def srh(first_hop, final):
    """A type 4 (segment) routing header: the kernel sends the packet to
    segments[segments_left], here first_hop; needs no capability."""
    segs = [socket.inet_pton(socket.AF_INET6, final), socket.inet_pton(socket.AF_INET6, first_hop)]
    # nexthdr (the kernel sets it), hdrlen in 8-byte units past the first 8,
    # type 4, segments_left 1, last_entry 1, flags, tag
    return struct.pack("!BBBBBBH", 0, 2 * len(segs), 4, 1, 1, 0, 0) + b"".join(segs)


def src_route(kind, hop):
    """IPv4 source route option (LSRR or SSRR) through hop, NOP-padded to 8 bytes."""
    return bytes([IPOPT_NOP, kind, 7, 4]) + socket.inet_aton(hop)


PADN6 = bytes([0, 0, 1, 4, 0, 0, 0, 0])  # an extension header of one PadN option
RECORD_ROUTE = bytes([IPOPT_NOP, IPOPT_RR, 7, 4, 0, 0, 0, 0])
TIMESTAMP_THEN_LSRR = bytes([IPOPT_TS, 8, 5, 0, 0, 0, 0, 0]) + src_route(IPOPT_LSRR, "198.18.1.2")
ONE = struct.pack("i", 1)

# name: (family, level, optname, value)
OPTIONS = {
    "ipv6-rthdr": (socket.AF_INET6, SOL_IPV6, IPV6_RTHDR, srh("2001:2:0:1::2", "::1")),
    "ipv6-2292rthdr": (socket.AF_INET6, SOL_IPV6, IPV6_2292RTHDR, ONE),
    "ipv6-2292pktoptions": (socket.AF_INET6, SOL_IPV6, IPV6_2292PKTOPTIONS, b""),
    "ipv6-rthdrdstopts": (socket.AF_INET6, SOL_IPV6, IPV6_RTHDRDSTOPTS, PADN6),
    "ipv6-dstopts": (socket.AF_INET6, SOL_IPV6, IPV6_DSTOPTS, PADN6),
    "ipv6-2292dstopts": (socket.AF_INET6, SOL_IPV6, IPV6_2292DSTOPTS, ONE),
    "ipv6-transparent": (socket.AF_INET6, SOL_IPV6, IPV6_TRANSPARENT, ONE),
    "ip-transparent": (socket.AF_INET, SOL_IP, IP_TRANSPARENT, ONE),
    "ip-lsrr": (socket.AF_INET, SOL_IP, IP_OPTIONS, src_route(IPOPT_LSRR, "198.18.1.2")),
    "ip-ssrr": (socket.AF_INET, SOL_IP, IP_OPTIONS, src_route(IPOPT_SSRR, "198.18.1.2")),
    "ip-ts-then-lsrr": (socket.AF_INET, SOL_IP, IP_OPTIONS, TIMESTAMP_THEN_LSRR),
    "ip-lsrr-on-ipv6": (socket.AF_INET6, SOL_IP, IP_OPTIONS, src_route(IPOPT_LSRR, "198.18.1.2")),
    # allowed: no routing effect
    "ip-record-route": (socket.AF_INET, SOL_IP, IP_OPTIONS, RECORD_ROUTE),
}


def stopped(what, e):
    print("%s: stopped (%s)" % (what, errno.errorcode.get(e.errno, e.__class__.__name__) if isinstance(e, OSError) and e.errno else e.__class__.__name__))
    sys.exit(0)


def through(what):
    print("%s: got through" % what)
    sys.exit(3)


def cmd_sockopt(name):
    fam, level, opt, val = OPTIONS[name]
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.setsockopt(level, opt, val)
    except PermissionError as e:
        stopped("setsockopt " + name, e)
    except OSError as e:
        # the kernel itself refused: not what the test is about
        print("setsockopt %s: %s" % (name, errno.errorcode.get(e.errno)))
        sys.exit(4)
    through("setsockopt " + name)


def try_connect(what, s, host, port):
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        s.sendall(b"EXFIL:must-not-arrive")
        if s.recv(100):
            through(what + " (answered)")
        print("%s: closed without data" % what)
        sys.exit(0)
    except (PermissionError, ConnectionResetError, ConnectionRefusedError, BrokenPipeError, socket.timeout, OSError) as e:
        stopped(what, e)


def cmd_reroute(kind, via, host, port):
    """Set a routing header (v6) or a source route (v4) through via, then
    connect to host (the pod's loopback: never steered); stopped if either fails."""
    if kind == "rthdr":
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        opt = (SOL_IPV6, IPV6_RTHDR, srh(via, host))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        opt = (SOL_IP, IP_OPTIONS, src_route(IPOPT_LSRR, via))
    try:
        s.setsockopt(*opt)
    except OSError as e:
        stopped("%s via %s: setsockopt" % (kind, via), e)
    try_connect("%s via %s: connect %s:%s" % (kind, via, host, port), s, host, port)


# setsockopt through the i386 compat entry (int $0x80), which the cgroup
# setsockopt hook does not see: x86-64 code (SysV arguments fd, level,
# optname, optval, optlen) moved into the i386 registers.
COMPAT_SETSOCKOPT = bytes([
    0x53, 0x55,                    # push rbx; push rbp
    0x89, 0xc8,                    # mov eax, ecx  (optval)
    0x89, 0xfb,                    # mov ebx, edi  (fd)
    0x89, 0xf1,                    # mov ecx, esi  (level)
    0x89, 0xc6,                    # mov esi, eax  (optval)
    0x44, 0x89, 0xc7,              # mov edi, r8d  (optlen)
    0xb8, 0x6e, 0x01, 0x00, 0x00,  # mov eax, 366  (__NR_setsockopt, i386)
    0xcd, 0x80,                    # int $0x80
    0x48, 0x98,                    # cdqe
    0x5d, 0x5b, 0xc3])             # pop rbp; pop rbx; ret


def compat_setsockopt(fd, level, opt, val):
    import ctypes
    import mmap
    code = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    code.write(COMPAT_SETSOCKOPT)
    # the i386 ABI passes 32-bit pointers: the option below 4 GiB (MAP_32BIT)
    data = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40)
    data.write(val)
    fn = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                          ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(code)))
    return fn(fd, level, opt, ctypes.addressof(ctypes.c_char.from_buffer(data)), len(val))


def cmd_reroute_compat(kind, via, host, port):
    """A routing header (rthdr) or source route (lsrr) set through the compat
    entry, then connect to host."""
    if kind == "rthdr":
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        r = compat_setsockopt(s.fileno(), SOL_IPV6, IPV6_RTHDR, srh(via, host))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        r = compat_setsockopt(s.fileno(), SOL_IP, IP_OPTIONS, src_route(IPOPT_LSRR, via))
    if r == -errno.ENOSYS:
        print("no i386 compat entry on this kernel")
        sys.exit(5)
    if r < 0:
        print("compat setsockopt: %s" % errno.errorcode.get(-r))
        sys.exit(4)
    print("compat setsockopt (%s) through int $0x80: set" % kind, flush=True)
    try_connect("%s via %s (compat): connect %s:%s" % (kind, via, host, port), s, host, port)


def cmd_bindtodevice(dev, host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    try_connect("bound to %s: connect %s:%s" % (dev, host, port), s, host, port)


def md5_key(i):
    """struct tcp_md5sig for a distinct IPv4 address (198.19.x.y, never dialled)."""
    sa = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + bytes([198, 19, i >> 8 & 255, i & 255])
    sa = sa.ljust(128, b"\0")  # sockaddr_storage
    return sa + struct.pack("=BBHI", 0, 0, 80, 0) + b"k" * 80


def cmd_fill_omem(host, port):
    """Fill the socket's option memory (sk_omem_alloc, bounded by optmem_max)
    with TCP-MD5 keys, which need no privilege, until the kernel says ENOMEM;
    socket storage is charged to the same budget. Then connect."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    n = 0
    while n < 65536:
        try:
            s.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5_key(n))
        except OSError as e:
            if e.errno != errno.ENOMEM:
                raise
            break
        n += 1
    try:
        s.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5_key(n + 1))
        sys.exit("option memory not full after %d keys" % n)
    except OSError as e:
        if e.errno != errno.ENOMEM:
            raise
    print("option memory full after %d TCP-MD5 keys" % n, flush=True)
    try_connect("full socket: connect %s:%s" % (host, port), s, host, port)


def cmd_forge_mark(mark, host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, SO_MARK, int(mark, 0))
    got = s.getsockopt(socket.SOL_SOCKET, SO_MARK)
    if got != int(mark, 0):
        sys.exit("SO_MARK reads back 0x%x" % got)
    print("SO_MARK 0x%x set" % got, flush=True)
    try_connect("mark 0x%x: connect %s:%s" % (got, host, port), s, host, port)


def cmd_squat(*ports):
    """Bind every loopback and wildcard form of each port, TCP and UDP;
    0 when every bind was refused with EPERM, 3 when any succeeded (kept
    listening until stdin closes), 4 on any other error."""
    held, refused, other = [], 0, []
    for port in ports:
        for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0"),
                          (socket.AF_INET6, "::1"), (socket.AF_INET6, "::"),
                          (socket.AF_INET6, "::ffff:127.0.0.1")):
            for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(fam, typ)
                if fam == socket.AF_INET6 and host == "::ffff:127.0.0.1":
                    s.setsockopt(SOL_IPV6, socket.IPV6_V6ONLY, 0)
                try:
                    s.bind((host, int(port)))
                    if typ == socket.SOCK_STREAM:
                        s.listen(8)
                    held.append(s)
                except PermissionError:
                    refused += 1
                    s.close()
                except OSError as e:
                    other.append("%s:%s %s" % (host, port, errno.errorcode.get(e.errno)))
                    s.close()
    print("binds refused with EPERM: %d, held: %d, other errors: %s" % (refused, len(held), other or "none"), flush=True)
    if held:
        sys.stdin.read()  # hold the ports until the test closes our stdin
        sys.exit(3)
    sys.exit(4 if other else 0)


if __name__ == "__main__":
    cmds = {"sockopt": cmd_sockopt, "reroute": cmd_reroute, "reroute-compat": cmd_reroute_compat, "bindtodevice": cmd_bindtodevice,
            "fill-omem": cmd_fill_omem, "forge-mark": cmd_forge_mark, "squat": cmd_squat}
    cmds[sys.argv[1]](*sys.argv[2:])
