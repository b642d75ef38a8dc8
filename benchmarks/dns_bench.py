#!/usr/bin/env python
"""Benchmark agility-dns against Knot DNS (static wildcard A zone) and PowerDNS (LUA
``pickrandom`` record) with dnsperf, all in one run, on loopback high ports.

Not a test.  Bounded: every dnsperf run lasts --seconds (default 8); servers are started
in a temporary directory with their own configuration and stopped at the end.

    .venv/bin/python benchmarks/dns_bench.py [--seconds 8] [--rounds 2] [--names 10000]

Prints, per server: queries/s (median over rounds), ratio to Knot and to PowerDNS-LUA,
average latency, loss, and server CPU time per query (user+system of the server's
processes, all threads and children).
"""

import argparse
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ZONE = "bench.example"
POOL = "198.18.16.0/20"
CLK = os.sysconf("SC_CLK_TCK")


def need(binary):
    path = shutil.which(binary) or next((p for p in ("/usr/sbin/" + binary, "/usr/bin/" + binary)
                                         if os.path.exists(p)), None)
    if path is None:
        sys.exit("dns_bench: %s not found (Debian package: %s); nothing measured"
                 % (binary, {"dnsperf": "dnsperf", "knotd": "knot", "pdns_server": "pdns-server pdns-backend-bind"}
                    .get(binary, binary)))
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_udp(port, timeout=15.0):
    """Until the server answers an A query for our zone."""
    q = (b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x05probe" +
         b"".join(bytes((len(l),)) + l.encode() for l in ZONE.split(".")) + b"\x00\x00\x01\x00\x01")
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            s.sendto(q, ("127.0.0.1", port))
            try:
                data = s.recv(4096)
                if data[:2] == b"\x12\x34" and data[7] >= 1:
                    return True
            except socket.timeout:
                pass
    return False


def proc_tree_ticks(pid):
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for tid in os.listdir("/proc/%d/task" % p):
                stat = open("/proc/%d/task/%s/stat" % (p, tid)).read().rsplit(")", 1)[1].split()
                total += int(stat[11]) + int(stat[12])
                todo.extend(int(c) for c in open("/proc/%d/task/%s/children" % (p, tid)).read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def dnsperf(port, qfile, seconds, clients, outstanding):
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(seconds),
           "-c", str(clients), "-q", str(outstanding), "-t", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout

    def grab(pattern, cast=float):
        m = re.search(pattern, out)
        return cast(m.group(1)) if m else None
    return {"sent": grab(r"Queries sent:\s+(\d+)", int), "completed": grab(r"Queries completed:\s+(\d+)", int),
            "lost": grab(r"Queries lost:\s+(\d+)", int), "qps": grab(r"Queries per second:\s+([\d.]+)"),
            "latency_ms": (grab(r"Average Latency \(s\):\s+([\d.]+)") or 0) * 1000, "cmd": " ".join(cmd),
            "raw": out}


# --- servers -------------------------------------------------------------------------

def start_agility(tmp, port, workers):
    doc = {"format": "agility.addressing/policy", "version": 1, "pop": {"name": "bench", "index": 0},
           "pools": {"free": {"ipv4": {"announced": POOL, "used": POOL}}},
           "policies": [{"name": "free", "pool": "free", "ttl": 300}], "default_policy": "free",
           "zones": {ZONE: {"account_type": "free",
                            "soa": {"mname": "ns1." + ZONE, "rname": "hostmaster." + ZONE, "serial": 1},
                            "ns": ["ns1." + ZONE],
                            "records": [{"name": "ns1", "type": "A", "data": "192.0.2.53"}]}}}
    path = os.path.join(tmp, "agility-policy.json")
    with open(path, "w") as handle:
        json.dump(doc, handle)
    exe = os.path.join(ROOT, ".venv", "bin", "agility-dns")
    if not os.path.exists(exe):
        exe = shutil.which("agility-dns") or sys.exit("dns_bench: agility-dns not installed")
    log = open(os.path.join(tmp, "agility-%d.log" % workers), "w")
    return subprocess.Popen([exe, "--policy", path, "--listen", "127.0.0.1:%d" % port,
                             "--workers", str(workers)], stdout=log, stderr=log)


def start_knot(tmp, port):
    knotd = need("knotd")
    kdir = os.path.join(tmp, "knot")
    os.makedirs(kdir)
    with open(os.path.join(kdir, ZONE + ".zone"), "w") as handle:
        handle.write("$ORIGIN %s.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n"
                     "ns1 A 192.0.2.53\n* A 198.18.16.1\n" % ZONE)
    conf = os.path.join(kdir, "knot.conf")
    with open(conf, "w") as handle:
        handle.write("server:\n    rundir: %s\n    listen: 127.0.0.1@%d\n"
                     "log:\n  - target: stderr\n    any: error\n"
                     "database:\n    storage: %s\n"
                     "template:\n  - id: default\n    storage: %s\n    semantic-checks: off\n"
                     "zone:\n  - domain: %s\n    file: %s.zone\n" % (kdir, port, kdir, kdir, ZONE, ZONE))
    log = open(os.path.join(tmp, "knot.log"), "w")
    return subprocess.Popen([knotd, "-c", conf], stdout=log, stderr=log)


def start_pdns(tmp, port):
    pdns = need("pdns_server")
    pdir = os.path.join(tmp, "pdns")
    os.makedirs(pdir)
    net = ipaddress.ip_network(POOL)
    base = str(net.network_address).rsplit(".", 2)[0]   # 198.18
    third = int(str(net.network_address).split(".")[2])  # 16
    # builds the /20 as a table per query, then pickrandom (math.random alone repeats itself)
    lua = (";local t={} for i=0,%d do t[#t+1]='%s.'..(%d+math.floor(i/256))..'.'..(i%%256) end "
           "return pickrandom(t)" % (net.num_addresses - 1, base, third))
    with open(os.path.join(pdir, ZONE + ".zone"), "w") as handle:
        handle.write("$ORIGIN %s.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n"
                     "ns1 A 192.0.2.53\n* LUA A \"%s\"\n" % (ZONE, lua))
    with open(os.path.join(pdir, "named.conf"), "w") as handle:
        handle.write('zone "%s" { type master; file "%s/%s.zone"; };\n' % (ZONE, pdir, ZONE))
    with open(os.path.join(pdir, "pdns.conf"), "w") as handle:
        handle.write("launch=bind\nbind-config=%s/named.conf\nlocal-address=127.0.0.1\nlocal-port=%d\n"
                     "enable-lua-records=yes\nsocket-dir=%s\ndaemon=no\nguardian=no\ndisable-syslog=yes\n"
                     "loglevel=3\ncache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0\nwebserver=no\n"
                     "api=no\n" % (pdir, port, pdir))
    log = open(os.path.join(tmp, "pdns.log"), "w")
    return subprocess.Popen([pdns, "--config-dir=%s" % pdir], stdout=log, stderr=log)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--seconds", type=int, default=8, help="dnsperf duration per run (max 30)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per server, interleaved (max 5)")
    ap.add_argument("--names", type=int, default=10000, help="distinct query names in the dnsperf file")
    ap.add_argument("--clients", type=int, default=4, help="dnsperf -c")
    ap.add_argument("--outstanding", type=int, default=100, help="dnsperf -q")
    ap.add_argument("--pdns-seconds", type=int, default=5, help="dnsperf duration for PowerDNS-LUA runs")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 30)
    args.rounds = min(max(args.rounds, 1), 5)
    need("dnsperf")
    need("knotd")
    need("pdns_server")
    tmp = tempfile.mkdtemp(prefix="dns-bench-")
    qfile = os.path.join(tmp, "queries.txt")
    rng = random.Random(1)
    with open(qfile, "w") as handle:
        for i in range(args.names):
            handle.write("h%d-%d.%s A\n" % (i, rng.randrange(10 ** 6), ZONE))
    servers = [
        ("agility-dns --workers 1", lambda p: start_agility(tmp, p, 1), args.seconds),
        ("agility-dns --workers 2", lambda p: start_agility(tmp, p, 2), args.seconds),
        ("knot (static wildcard A)", lambda p: start_knot(tmp, p), args.seconds),
        ("powerdns LUA pickrandom /20", lambda p: start_pdns(tmp, p), args.pdns_seconds),
    ]
    procs, ports = {}, {}
    results = {name: [] for name, start, seconds in servers}
    try:
        for name, start, seconds in servers:
            ports[name] = free_port()
            procs[name] = start(ports[name])
            if not wait_udp(ports[name]):
                sys.exit("dns_bench: %s did not answer on 127.0.0.1:%d (logs in %s)" % (name, ports[name], tmp))
        for rnd in range(args.rounds):
            for name, start, seconds in servers:
                t0 = proc_tree_ticks(procs[name].pid)
                res = dnsperf(ports[name], qfile, seconds, args.clients, args.outstanding)
                t1 = proc_tree_ticks(procs[name].pid)
                res["cpu_us_per_query"] = ((t1 - t0) / CLK / res["completed"] * 1e6) if res["completed"] else None
                results[name].append(res)
                print("round %d %-28s %9.0f q/s  lost %d/%d  lat %.2f ms  cpu %.1f us/q"
                      % (rnd + 1, name, res["qps"] or 0, res["lost"] or 0, res["sent"] or 0, res["latency_ms"],
                         res["cpu_us_per_query"] or 0), flush=True)
    finally:
        for proc in procs.values():
            stop(proc)
    med = {}
    for name, runs in results.items():
        med[name] = {
            "qps": statistics.median(r["qps"] or 0 for r in runs),
            "lat": statistics.median(r["latency_ms"] for r in runs),
            "lost": sum(r["lost"] or 0 for r in runs), "sent": sum(r["sent"] or 0 for r in runs),
            "cpu": statistics.median(r["cpu_us_per_query"] or 0 for r in runs),
        }
    knot = med["knot (static wildcard A)"]
    pdns = med["powerdns LUA pickrandom /20"]
    print()
    print("dnsperf: %s" % results[servers[0][0]][0]["cmd"])
    print("machine: %d cores, dnsperf on the same machine; %d rounds, medians" % (os.cpu_count(), args.rounds))
    print("%-30s %10s %8s %9s %10s %12s %10s %10s" % ("server", "q/s", "lat ms", "loss %", "cpu us/q",
                                                      "q/s vs knot", "vs pdns", "cpu vs knot"))
    for name, m in med.items():
        loss = 100.0 * m["lost"] / m["sent"] if m["sent"] else 0.0
        print("%-30s %10.0f %8.2f %9.4f %10.1f %11.1f%% %9.1fx %9.2fx"
              % (name, m["qps"], m["lat"], loss, m["cpu"], 100 * m["qps"] / knot["qps"],
                 m["qps"] / pdns["qps"] if pdns["qps"] else float("nan"),
                 m["cpu"] / knot["cpu"] if knot["cpu"] else float("nan")))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
