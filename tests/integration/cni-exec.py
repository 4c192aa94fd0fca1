#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Drive a CNI conflist the way a runtime does (libcni): each plugin gets its
own config with name and cniVersion, and the previous plugin's result as
prevResult; DEL runs the chain in reverse.
usage: cni-exec.py ADD|DEL|CHECK CONFLIST CONTAINERID NETNS IFNAME CNI_ARGS CNI_PATH OUTDIR
Writes OUTDIR/<index>-<type>.json with each plugin's output; prints the last."""
import json
import os
import subprocess
import sys

cmd, conflist, cid, netns, ifname, args, path, outdir = sys.argv[1:9]
conf = json.load(open(conflist))
plugins = conf["plugins"]
order = list(enumerate(plugins))
if cmd == "DEL":
    order.reverse()
prev = None
cached = {}
if cmd in ("CHECK", "DEL") and os.path.exists(os.path.join(outdir, "result.json")):
    prev = json.load(open(os.path.join(outdir, "result.json")))
for i, p in order:
    pc = dict(p)
    pc["name"] = conf["name"]
    pc["cniVersion"] = conf["cniVersion"]
    if cmd == "ADD" and prev is not None:
        pc["prevResult"] = prev
    elif cmd in ("CHECK", "DEL") and prev is not None:
        pc["prevResult"] = prev
    env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID=cid, CNI_NETNS=netns, CNI_IFNAME=ifname,
               CNI_ARGS=args, CNI_PATH=path)
    exe = None
    for d in path.split(":"):
        if os.path.exists(os.path.join(d, p["type"])):
            exe = os.path.join(d, p["type"])
            break
    if exe is None:
        sys.exit("plugin %s not found in %s" % (p["type"], path))
    r = subprocess.run([exe], input=json.dumps(pc).encode(), env=env, capture_output=True)
    out = r.stdout.decode()
    with open(os.path.join(outdir, "%d-%s.json" % (i, p["type"])), "w") as f:
        f.write(out)
    if r.returncode != 0:
        print(out)
        sys.stderr.write(r.stderr.decode())
        sys.exit("plugin %s %s failed (exit %d)" % (p["type"], cmd, r.returncode))
    if cmd == "ADD":
        prev = json.loads(out)
if cmd == "ADD":
    with open(os.path.join(outdir, "result.json"), "w") as f:
        json.dump(prev, f)
    print(json.dumps(prev))
