#!/usr/bin/env python
"""Benchmark agility-dns against Knot DNS (static wildcard, mod-cookies on) and PowerDNS
(LUA record) with dnsperf on a realistic resolver mix, all in one run, on loopback.

The workload (default): distinct names with random 0x20 case (--names per traffic kind,
so no parse cache helps), A and AAAA, and three dnsperf processes at once:
50% plain EDNS (-e), 40% EDNS with a client COOKIE (-E 10:...), 10% ECS (-E 8:...).
The split is by outstanding queries (-q 50/40/10 of --outstanding).  In the mix all kinds
wait in one queue, so a kind's own cost hardly shows there; each kind is therefore also
run alone (--solo-seconds) against agility-dns and Knot, and COOKIE/ECS are compared with
plain EDNS by q/s and CPU per answer in those runs.

Not a test.  Bounded: every dnsperf run lasts --seconds (default 8); servers are started
in a temporary directory with their own configuration and stopped at the end.

    .venv/bin/python benchmarks/dns_bench.py [--seconds 8] [--rounds 2] [--names 200000]

Prints, per server: queries/s (median over rounds), ratio to Knot and to PowerDNS-LUA,
average latency, loss, server CPU time per answer (user+system of the server's
processes, all threads and children) and its ratio to Knot's, and the COOKIE and ECS
rates relative to plain EDNS.  The machine is shared: compare within one run only.
"""

import argparse
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
POOL6 = "2001:db8:16::/48"
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
    """A port free for UDP and TCP on 127.0.0.1 (other jobs share the machine)."""
    for dummy in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    sys.exit("dns_bench: no free port")


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


KINDS = (  # name, share of outstanding queries, dnsperf EDNS arguments
    ("plain", 50, ["-e"]),
    ("cookie", 40, ["-E", "10:0102030405060708"]),          # 8-octet client cookie
    ("ecs", 10, ["-E", "8:00011800c6336400"]),              # ECS 198.51.100.0/24, scope 0
)


def dnsperf_cmd(port, qfile, seconds, clients, outstanding, extra=()):
    return (["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(seconds),
             "-c", str(clients), "-q", str(outstanding), "-t", "2"] + list(extra))


def dnsperf_mix(port, qfiles, seconds, clients, outstanding):
    """All kinds at once (one dnsperf process each): {kind: result}."""
    procs = {}
    for kind, share, extra in KINDS:
        cmd = dnsperf_cmd(port, qfiles[kind], seconds, clients, max(1, outstanding * share // 100), extra)
        procs[kind] = (cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    results = {}
    for kind, (cmd, proc) in procs.items():
        try:
            out = proc.communicate(timeout=seconds + 30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
        results[kind] = parse_dnsperf(out, cmd)
    return results


def dnsperf_solo(port, qfile, seconds, clients, outstanding, extra, pid):
    """One kind alone (the mix shares one queue, so per-kind cost only shows alone)."""
    cmd = dnsperf_cmd(port, qfile, seconds, clients, outstanding, extra)
    t0 = proc_tree_ticks(pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout
    t1 = proc_tree_ticks(pid)
    res = parse_dnsperf(out, cmd)
    res["cpu"] = ((t1 - t0) / CLK / res["completed"] * 1e6) if res["completed"] else 0.0
    return res


def parse_dnsperf(out, cmd):

    def grab(pattern, cast=float):
        m = re.search(pattern, out)
        return cast(m.group(1)) if m else None
    return {"sent": grab(r"Queries sent:\s+(\d+)", int) or 0,
            "completed": grab(r"Queries completed:\s+(\d+)", int) or 0,
            "lost": grab(r"Queries lost:\s+(\d+)", int) or 0, "qps": grab(r"Queries per second:\s+([\d.]+)") or 0.0,
            "latency_ms": (grab(r"Average Latency \(s\):\s+([\d.]+)") or 0) * 1000, "cmd": " ".join(cmd),
            "raw": out}


# --- servers -------------------------------------------------------------------------

def start_agility(tmp, port, workers):
    doc = {"format": "agility.addressing/policy", "version": 1, "pop": {"name": "bench", "index": 0},
           "pools": {"free": {"ipv4": {"announced": POOL, "used": POOL},
                              "ipv6": {"announced": POOL6, "used": POOL6}}},
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
                     "ns1 A 192.0.2.53\n* A 198.18.16.1\n* AAAA 2001:db8:16::1\n" % ZONE)
    conf = os.path.join(kdir, "knot.conf")
    with open(conf, "w") as handle:
        handle.write("server:\n    rundir: %s\n    listen: 127.0.0.1@%d\n"
                     "log:\n  - target: stderr\n    any: error\n"
                     "database:\n    storage: %s\n"
                     "mod-cookies:\n  - id: default\n"
                     "template:\n  - id: default\n    storage: %s\n    semantic-checks: off\n"
                     "    global-module: mod-cookies/default\n"
                     "zone:\n  - domain: %s\n    file: %s.zone\n" % (kdir, port, kdir, kdir, ZONE, ZONE))
    log = open(os.path.join(tmp, "knot.log"), "w")
    return subprocess.Popen([knotd, "-c", conf], stdout=log, stderr=log)


def start_pdns(tmp, port):
    pdns = need("pdns_server")
    pdir = os.path.join(tmp, "pdns")
    os.makedirs(pdir)
    # the cheapest LUA record we found: a constant (the LUA call itself is the cost; any
    # random choice costs more, a table built per query far more)
    with open(os.path.join(pdir, ZONE + ".zone"), "w") as handle:
        handle.write("$ORIGIN %s.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n"
                     "ns1 A 192.0.2.53\n* LUA A \"'198.18.16.1'\"\n* LUA AAAA \"'2001:db8:16::1'\"\n" % ZONE)
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


def write_queries(path, count, tag, rng, aaaa_share=0.3):
    """``count`` distinct names with random 0x20 case, A and AAAA."""
    with open(path, "w") as handle:
        for i in range(count):
            name = "%s%d-%d.%s" % (tag, i, rng.randrange(10 ** 6), ZONE)
            name = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
            handle.write("%s %s\n" % (name, "AAAA" if rng.random() < aaaa_share else "A"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--seconds", type=int, default=8, help="dnsperf duration per run (max 30)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per server, interleaved (max 5)")
    ap.add_argument("--names", type=int, default=200000, help="distinct query names per traffic kind")
    ap.add_argument("--clients", type=int, default=2, help="dnsperf -c per process (>= 2 to reach 2 workers)")
    ap.add_argument("--outstanding", type=int, default=100, help="dnsperf -q, split 50/40/10 between kinds")
    ap.add_argument("--pdns-seconds", type=int, default=5, help="dnsperf duration for PowerDNS-LUA runs")
    ap.add_argument("--solo-seconds", type=int, default=4,
                    help="dnsperf duration of each kind alone (agility-dns and Knot), 0 to skip")
    args = ap.parse_args()
    args.seconds = min(args.seconds, 30)
    args.rounds = min(max(args.rounds, 1), 5)
    need("dnsperf")
    need("knotd")
    need("pdns_server")
    tmp = tempfile.mkdtemp(prefix="dns-bench-")
    rng = random.Random(1)
    qfiles = {}
    for kind, share, extra in KINDS:
        qfiles[kind] = os.path.join(tmp, "queries-%s.txt" % kind)
        write_queries(qfiles[kind], args.names, kind[0], rng)
    knot_name = "knot (wildcard, mod-cookies)"
    pdns_name = "powerdns LUA constant"
    servers = [
        ("agility-dns --workers 1", lambda p: start_agility(tmp, p, 1), args.seconds),
        ("agility-dns --workers 2", lambda p: start_agility(tmp, p, 2), args.seconds),
        (knot_name, lambda p: start_knot(tmp, p), args.seconds),
        (pdns_name, lambda p: start_pdns(tmp, p), args.pdns_seconds),
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
                kinds = dnsperf_mix(ports[name], qfiles, seconds, args.clients, args.outstanding)
                t1 = proc_tree_ticks(procs[name].pid)
                res = {"kinds": kinds, "qps": sum(k["qps"] for k in kinds.values()),
                       "completed": sum(k["completed"] for k in kinds.values()),
                       "sent": sum(k["sent"] for k in kinds.values()),
                       "lost": sum(k["lost"] for k in kinds.values())}
                res["lat"] = (sum(k["latency_ms"] * k["completed"] for k in kinds.values()) / res["completed"]
                              if res["completed"] else 0.0)
                res["cpu"] = ((t1 - t0) / CLK / res["completed"] * 1e6) if res["completed"] else 0.0
                # per outstanding query, relative to plain EDNS (1.0 = as fast as plain)
                per_slot = {kind: kinds[kind]["qps"] / max(1, args.outstanding * share // 100)
                            for kind, share, extra in KINDS}
                res["rel"] = {kind: (per_slot[kind] / per_slot["plain"]) if per_slot["plain"] else 0.0
                              for kind in per_slot}
                res["solo"] = {}
                if args.solo_seconds and name != pdns_name:
                    for kind, share, extra in KINDS:
                        res["solo"][kind] = dnsperf_solo(ports[name], qfiles[kind], args.solo_seconds, args.clients,
                                                         args.outstanding, extra, procs[name].pid)
                    plain = res["solo"]["plain"]
                    for kind in ("cookie", "ecs"):
                        k = res["solo"][kind]
                        res["rel"]["solo_" + kind] = k["qps"] / plain["qps"] if plain["qps"] else 0.0
                        res["rel"]["solo_cpu_" + kind] = k["cpu"] / plain["cpu"] if plain["cpu"] else 0.0
                results[name].append(res)
                print("round %d %-30s %9.0f q/s  lost %d/%d  lat %.2f ms  cpu %.1f us/answer  "
                      "cookie %.2f ecs %.2f of plain" % (rnd + 1, name, res["qps"], res["lost"], res["sent"],
                                                         res["lat"], res["cpu"], res["rel"]["cookie"],
                                                         res["rel"]["ecs"]), flush=True)
                if res["solo"]:
                    print("        alone: plain %.0f q/s %.1f us, cookie %.0f q/s %.1f us, ecs %.0f q/s %.1f us"
                          % tuple(v for kind, share, extra in KINDS
                                  for v in (res["solo"][kind]["qps"], res["solo"][kind]["cpu"])), flush=True)
    finally:
        for proc in procs.values():
            stop(proc)
    med = {}
    for name, runs in results.items():
        med[name] = {
            "qps": statistics.median(r["qps"] for r in runs),
            "lat": statistics.median(r["lat"] for r in runs),
            "lost": sum(r["lost"] for r in runs), "sent": sum(r["sent"] for r in runs),
            "cpu": statistics.median(r["cpu"] for r in runs),
            "cookie": statistics.median(r["rel"]["cookie"] for r in runs),
            "ecs": statistics.median(r["rel"]["ecs"] for r in runs),
        }
        for key in ("solo_cookie", "solo_ecs", "solo_cpu_cookie", "solo_cpu_ecs"):
            med[name][key] = statistics.median(r["rel"].get(key, 0.0) for r in runs)
    knot = med[knot_name]
    pdns = med[pdns_name]
    print()
    for kind, share, extra in KINDS:
        print("dnsperf (%s, %d%%): %s" % (kind, share, results[servers[0][0]][0]["kinds"][kind]["cmd"]))
    print("machine: %d cores shared with other jobs, dnsperf on the same machine; %d rounds, medians; "
          "%d distinct names per kind, random 0x20 case, 30%% AAAA" % (os.cpu_count(), args.rounds, args.names))
    print("%-30s %9s %7s %8s %9s %9s %8s %9s %7s %7s" % (
        "server", "q/s", "lat ms", "loss %", "cpu us/a", "vs knot", "vs pdns", "cpu/knot", "cookie", "ecs"))
    for name, m in med.items():
        loss = 100.0 * m["lost"] / m["sent"] if m["sent"] else 0.0
        print("%-30s %9.0f %7.2f %8.4f %9.1f %8.2fx %7.1fx %8.2fx %7.2f %7.2f"
              % (name, m["qps"], m["lat"], loss, m["cpu"], m["qps"] / knot["qps"] if knot["qps"] else float("nan"),
                 m["qps"] / pdns["qps"] if pdns["qps"] else float("nan"),
                 m["cpu"] / knot["cpu"] if knot["cpu"] else float("nan"), m["cookie"], m["ecs"]))
    two = med["agility-dns --workers 2"]
    print()
    print("each kind alone (q/s and cpu per answer relative to plain EDNS):")
    for name, m in med.items():
        if name != pdns_name:
            print("%-30s cookie %.2f q/s %.2f cpu   ecs %.2f q/s %.2f cpu" % (
                name, m["solo_cookie"], m["solo_cpu_cookie"], m["solo_ecs"], m["solo_cpu_ecs"]))
    print()
    print("targets: 2 workers >= 0.70x knot q/s: %.2fx %s; cpu/answer <= 1.5x knot: %.2fx %s; "
          "cookie and ecs alone: cpu per answer <= 1.25x plain (q/s within 20%% when cpu-bound): %.2f / %.2f %s"
          % (two["qps"] / knot["qps"], "met" if two["qps"] >= 0.7 * knot["qps"] else "NOT MET",
             two["cpu"] / knot["cpu"], "met" if two["cpu"] <= 1.5 * knot["cpu"] else "NOT MET",
             two["solo_cpu_cookie"], two["solo_cpu_ecs"],
             "met" if max(two["solo_cpu_cookie"], two["solo_cpu_ecs"]) <= 1.25 else "NOT MET"))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
