#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A service manager's end of the NOTIFY_SOCKET protocol, for test-service.sh:
# binds ADDR (a path, or "@name" abstract) as a unix datagram socket, prints
# "ready" once bound, then one JSON line per datagram: its KEY=VALUE pairs
# and, for READY=1, whether `meshsplice --control CTL status` answered at
# that moment (run before the next datagram is read).
import json, socket, subprocess, sys

addr, cli, ctl, out = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
print("ready", flush=True)
with open(out, "a") as f:
    while True:
        data = s.recv(4096).decode()
        msg = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
        if msg.get("READY") == "1":
            r = subprocess.run([cli, "--control", ctl, "status"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=5)
            msg["status_answered"] = r.returncode == 0
        f.write(json.dumps(msg) + "\n")
        f.flush()
