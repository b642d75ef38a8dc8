#!/usr/bin/env python
"""Attack benchmarks for agility-dns, with Knot DNS under the same attack in the same run.

Not a test.  Bounded in time and count; loopback only; servers run on high ports in a
temporary directory and are stopped at the end.

slowloris: CONNS TCP connections (default 600, spread over --sources source addresses in
  127.0.2.0/24 so a per-source cap alone cannot stop them) each send the next byte of a
  query every --interval seconds (default 5) and reconnect when closed, for --seconds.
  Meanwhile a prober opens a fresh TCP connection every 0.1 s for one query (answered
  within 2 s?), and a UDP prober sends 500 q/s from 127.0.0.1.  Printed: share of fresh
  TCP queries answered (target >= 95 %) and UDP answered share and median latency,
  before and during the attack, per server.

    .venv/bin/python benchmarks/dns_attack.py slowloris [--conns 600] [--seconds 20]

rrl: dnsperf from one source (127.0.0.2, 8 ports, as a spoofed flood looks) sends --qps
  queries per second (default 50,000) for --seconds; 50 other sources in other /24s send 20 q/s
  each.  agility-dns runs with --rrl-rate RATE --rrl-slip 2, Knot with mod-rrl
  (rate-limit RATE, slip 2).  Phases per server: the other sources alone; the flood alone
  (answers the flooding source got, per dnsperf; for agility-dns split exactly into full
  answers per second, against RATE, and truncated/dropped ones, from its metrics); the
  flood and the other sources together (their answered share and median latency).

    .venv/bin/python benchmarks/dns_attack.py rrl [--qps 50000] [--seconds 10] [--rate 100]
"""

import argparse
import multiprocessing
import os
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ZONE = "bench.example"
POOL = "198.18.16.0/20"


def need(binary):
    path = shutil.which(binary) or next((p for p in ("/usr/sbin/" + binary, "/usr/bin/" + binary)
                                         if os.path.exists(p)), None)
    if path is None:
        sys.exit("dns_attack: %s not found (Debian package knot); nothing measured" % binary)
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query_wire(name, qid=0x1234):
    return (struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
            + b"".join(bytes((len(label),)) + label.encode() for label in name.split("."))
            + b"\x00\x00\x01\x00\x01")


def wait_udp(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.9.9", 0))  # a /24 of its own: readiness probes spend no prober tokens
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            s.sendto(query_wire("probe." + ZONE), ("127.0.0.1", port))
            try:
                if s.recv(4096)[:2] == b"\x12\x34":
                    return True
            except socket.timeout:
                pass
    return False


def start_agility(tmp, port, workers, extra):
    import json
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
        exe = shutil.which("agility-dns") or sys.exit("dns_attack: agility-dns not installed")
    cmd = [exe, "--policy", path, "--listen", "127.0.0.1:%d" % port, "--workers", str(workers)] + list(extra)
    log = open(os.path.join(tmp, "agility-%d.log" % port), "w")
    return subprocess.Popen(cmd, stdout=log, stderr=log), " ".join(cmd[3:])


def start_knot(tmp, port, rrl_rate=None):
    knotd = need("knotd")
    kdir = os.path.join(tmp, "knot-%d" % port)
    os.makedirs(kdir)
    with open(os.path.join(kdir, ZONE + ".zone"), "w") as handle:
        handle.write("$ORIGIN %s.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n"
                     "ns1 A 192.0.2.53\n* A 198.18.16.1\n" % ZONE)
    rrl = ""
    if rrl_rate:
        rrl = ("mod-rrl:\n  - id: default\n    rate-limit: %d\n    slip: 2\n" % rrl_rate)
    conf = os.path.join(kdir, "knot.conf")
    with open(conf, "w") as handle:
        handle.write("server:\n    rundir: %s\n    listen: 127.0.0.1@%d\n"
                     "log:\n  - target: stderr\n    any: error\n"
                     "database:\n    storage: %s\n%s"
                     "template:\n  - id: default\n    storage: %s\n    semantic-checks: off\n%s"
                     "zone:\n  - domain: %s\n    file: %s.zone\n"
                     % (kdir, port, kdir, rrl, kdir, "    global-module: mod-rrl/default\n" if rrl else "",
                        ZONE, ZONE))
    log = open(os.path.join(kdir, "knot.log"), "w")
    return subprocess.Popen([knotd, "-c", conf], stdout=log, stderr=log), "knotd" + (
        " mod-rrl rate-limit %d slip 2" % rrl_rate if rrl_rate else " (defaults)")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- probers -----------------------------------------------------------------------------

def _one_fresh_query(port, i, timeout, results):
    q = query_wire("fresh%d.%s" % (i, ZONE), qid=i & 0xFFFF)
    ok = False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">H", len(q)) + q)
            data = b""
            while len(data) < 4:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            ok = len(data) >= 4 and data[2:4] == q[:2]
    except OSError:
        pass
    results.append(ok)


def fresh_tcp_probe(port, seconds, every=0.1, timeout=2.0):
    """(answered, tried): one query on a new connection every ``every`` seconds, each
    answered within ``timeout`` or failed (probes run in parallel, so a slow one does not
    delay the next)."""
    import threading
    results = []
    threads = []
    start = time.monotonic()
    i = 0
    while time.monotonic() < start + seconds:
        i += 1
        t = threading.Thread(target=_one_fresh_query, args=(port, i, timeout, results))
        t.start()
        threads.append(t)
        time.sleep(max(0.0, start + i * every - time.monotonic()))
    for t in threads:
        t.join()
    return sum(results), len(results)


def udp_probe(port, seconds, sources, qps_each, result):
    """Queries from each source address at ``qps_each``; result gets (answered, sent, median ms)."""
    socks = []
    for src in sources:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        socks.append(s)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    sent_at = {}
    lat = []
    sent = 0
    qid = 0
    start = time.monotonic()
    end = start + seconds
    step = 1.0 / qps_each
    next_round = start
    while True:
        now = time.monotonic()
        if now >= next_round and now < end:
            for idx, s in enumerate(socks):
                qid = (qid + 1) & 0xFFFF
                try:
                    s.sendto(query_wire("u%d.%s" % (qid, ZONE), qid), ("127.0.0.1", port))
                    sent_at[(idx, qid)] = now
                    sent += 1
                except OSError:
                    pass
            next_round += step
        if now >= end + 1.0:
            break
        for key, dummy in sel.select(timeout=max(0.0, min(next_round - now, 0.01))):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                continue
            rid = struct.unpack(">H", data[:2])[0]
            t = sent_at.pop((socks.index(key.fileobj), rid), None)
            if t is not None and not data[2] & 0x02:
                lat.append((time.monotonic() - t) * 1000)
    for s in socks:
        s.close()
    result.put((len(lat), sent, statistics.median(lat) if lat else float("nan")))


def run_udp_probe(port, seconds, sources, qps_each):
    result = multiprocessing.Queue()
    proc = multiprocessing.Process(target=udp_probe, args=(port, seconds, sources, qps_each, result))
    proc.start()
    return proc, result


# --- slowloris ---------------------------------------------------------------------------

def slowloris(port, conns, sources, interval, seconds, ready, reconnect):
    """Hold ``conns`` connections that each send the next byte of a query every ``interval``
    (and open a new one for each that the server closes, with ``reconnect``)."""
    frame = query_wire("slow." + ZONE)
    frame = struct.pack(">H", len(frame)) + frame
    sel = selectors.DefaultSelector()
    live = {}  # socket -> [source, bytes sent, next send time]
    per_source = [0] * len(sources)
    want = [conns // len(sources) + (1 if i < conns % len(sources) else 0) for i in range(len(sources))]
    end = time.monotonic() + seconds
    signalled = False

    def connect(i, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((sources[i], 0))
        s.connect_ex(("127.0.0.1", port))
        live[s] = [i, 0, now + interval * (len(live) % 50) / 50]  # spread the byte times
        per_source[i] += 1
        sel.register(s, selectors.EVENT_READ)

    def drop(s):
        i = live.pop(s)[0]
        per_source[i] -= 1
        sel.unregister(s)
        s.close()

    reconnects = 0
    while time.monotonic() < end:
        now = time.monotonic()
        for i in range(len(sources)):
            while per_source[i] < want[i]:
                connect(i, now)
                reconnects += 1
        if not signalled:
            ready.set()
            signalled = True
            if not reconnect:
                want = [0] * len(sources)
        for key, dummy in sel.select(timeout=0.05):
            try:
                if key.fileobj.recv(4096) == b"":
                    drop(key.fileobj)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                drop(key.fileobj)
        now = time.monotonic()
        for s, st in list(live.items()):
            if st[2] <= now:
                try:
                    s.send(frame[st[1] % len(frame):][:1])
                    st[1] += 1
                    st[2] = now + interval
                except (BlockingIOError, InterruptedError):
                    st[2] = now + 0.05  # still connecting
                except OSError:
                    drop(s)
    for s in list(live):
        drop(s)


def bench_slowloris(args, tmp):
    sources = ["127.0.2.%d" % (i + 1) for i in range(args.sources)]
    servers = []
    port = free_port()
    servers.append(("agility-dns",) + start_agility(tmp, port, args.workers, []) + (port,))
    port = free_port()
    servers.append(("knot",) + start_knot(tmp, port) + (port,))
    rows = []
    try:
        for name, proc, desc, port in servers:
            if not wait_udp(port):
                sys.exit("dns_attack: %s does not answer (logs in %s)" % (name, tmp))
        for name, proc, desc, port in servers:
            udp, res = run_udp_probe(port, args.base_seconds, ["127.0.0.1"], 500)
            base_tcp = fresh_tcp_probe(port, args.base_seconds)
            udp.join()
            base_udp = res.get()
            ready = multiprocessing.Event()
            attack = multiprocessing.Process(target=slowloris, args=(port, args.conns, sources, args.interval,
                                                                     args.seconds + 2, ready, args.reconnect))
            attack.start()
            ready.wait(10)
            time.sleep(2.0)  # let the attack build up
            udp, res = run_udp_probe(port, args.seconds, ["127.0.0.1"], 500)
            att_tcp = fresh_tcp_probe(port, args.seconds)
            udp.join()
            att_udp = res.get()
            attack.join()
            rows.append((name, desc, base_tcp, att_tcp, base_udp, att_udp))
            print("%s done" % name, flush=True)
    finally:
        for name, proc, desc, port in servers:
            stop(proc)
    print()
    print("slowloris: %d connections from %d sources (127.0.2.0/24), next byte every %.1f s, %s; "
          "%d s measured under attack; %d cores shared with the attacker"
          % (args.conns, args.sources, args.interval,
             "reconnect when closed" if args.reconnect else "no reconnect", args.seconds, os.cpu_count()))
    print("%-12s %-22s %-22s %-26s %-26s" % ("server", "fresh TCP before", "fresh TCP attack",
                                             "UDP before (ans/sent, ms)", "UDP attack (ans/sent, ms)"))
    for name, desc, bt, at, bu, au in rows:
        print("%-12s %5d/%-5d %6.1f%%    %5d/%-5d %6.1f%%    %6d/%-6d %6.2f ms     %6d/%-6d %6.2f ms"
              % (name, bt[0], bt[1], 100.0 * bt[0] / max(bt[1], 1), at[0], at[1], 100.0 * at[0] / max(at[1], 1),
                 bu[0], bu[1], bu[2], au[0], au[1], au[2]))
    for name, desc, bt, at, bu, au in rows:
        print("  %s: %s" % (name, desc))
    agility, knot = rows[0], rows[1]
    print("fresh TCP answered under attack, agility/knot: %.2f" % (
        (agility[3][0] / max(agility[3][1], 1)) / max(knot[3][0] / max(knot[3][1], 1), 1e-9)))


# --- RRL -----------------------------------------------------------------------------------

def flood(port, qps, seconds, tmp):
    """dnsperf from 127.0.0.2 (8 ports) at ``qps``: (sent, answered (full + TC), lost, elapsed)."""
    import re
    qfile = os.path.join(tmp, "flood.txt")
    with open(qfile, "w") as handle:
        for i in range(10000):
            handle.write("f%d.%s A\n" % (i, ZONE))
    cmd = ["dnsperf", "-a", "127.0.0.2", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(seconds),
           "-c", "8", "-q", "60000", "-Q", str(qps), "-t", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout

    def grab(pattern):
        m = re.search(pattern, out)
        return float(m.group(1)) if m else 0.0
    return (int(grab(r"Queries sent:\s+(\d+)")), int(grab(r"Queries completed:\s+(\d+)")),
            int(grab(r"Queries lost:\s+(\d+)")), grab(r"Run time \(s\):\s+([\d.]+)") or seconds)


def rrl_counts(metrics_port):
    """(UDP answers sent in full, slipped, dropped) so far, from agility-dns's metrics."""
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=5) as r:
        text = r.read().decode()
    full = slipped = dropped = 0
    for line in text.splitlines():
        value = line.rsplit(" ", 1)[-1]
        if line.startswith("agility_dns_queries_total{") and 'proto="udp"' in line:
            full += int(float(value))
        elif line.startswith('agility_dns_rrl_limited_total{action="slipped"}'):
            slipped = int(float(value))
        elif line.startswith('agility_dns_rrl_limited_total{action="dropped"}'):
            dropped = int(float(value))
    return full, slipped, dropped


def bench_rrl(args, tmp):
    need("dnsperf")
    legit = ["127.0.%d.1" % (10 + i) for i in range(50)]  # 50 sources, each in its own /24
    servers = []
    port = free_port()
    mport = free_port()
    servers.append(("agility-dns",) + start_agility(
        tmp, port, args.workers, ["--rrl-rate", str(args.rate), "--rrl-slip", "2",
                                  "--metrics", "127.0.0.1:%d" % mport]) + (port,))
    port = free_port()
    servers.append(("knot",) + start_knot(tmp, port, args.rate) + (port,))
    rows = []
    try:
        for name, proc, desc, port in servers:
            if not wait_udp(port):
                sys.exit("dns_attack: %s does not answer (logs in %s)" % (name, tmp))
        for name, proc, desc, port in servers:
            udp, res = run_udp_probe(port, args.seconds, legit, 20)
            udp.join()
            base = res.get()
            time.sleep(1.0)
            # the flood alone: agility-dns's metrics then split its answers exactly
            before = rrl_counts(mport) if name == "agility-dns" else None
            sent, answered, lost, elapsed = flood(port, args.qps, args.seconds, tmp)
            split = None
            if before is not None:
                time.sleep(0.5)
                split = tuple(a - b for a, b in zip(rrl_counts(mport), before))
            time.sleep(1.0)
            # the flood and the other sources together
            udp, res = run_udp_probe(port, args.seconds, legit, 20)
            flood(port, args.qps, args.seconds, tmp)
            udp.join()
            under = res.get()
            rows.append((name, desc, sent, elapsed, answered, lost, split, base, under))
            print("%s done" % name, flush=True)
    finally:
        for name, proc, desc, port in servers:
            stop(proc)
    print()
    print("rrl: dnsperf from one source (127.0.0.2, -c 8) at -Q %d for %d s; 50 other sources (own /24 each) "
          "at 20 q/s; rate %d/s per /24, slip 2; %d cores shared with the senders"
          % (args.qps, args.seconds, args.rate, os.cpu_count()))
    print("%-12s %9s %9s %11s %9s %-26s %-24s %-24s" % (
        "server", "sent", "sent q/s", "answered", "lost", "full/s back (TC, dropped)", "others before",
        "others flood"))
    for name, desc, sent, elapsed, answered, lost, split, base, under in rows:
        if split:
            full = split[0]
            detail = "%7.1f (%d, %d)" % (full / elapsed, split[1], split[2])
        else:
            detail = "n/a (no split)"
        print("%-12s %9d %9.0f %11d %9d %-26s %5d/%-5d %7.2f ms %5d/%-5d %7.2f ms"
              % (name, sent, sent / elapsed, answered, lost, detail, base[0], base[1], base[2],
                 under[0], under[1], under[2]))
    for name, desc, *dummy in rows:
        print("  %s: %s" % (name, desc))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("slowloris")
    s.add_argument("--conns", type=int, default=600)
    s.add_argument("--sources", type=int, default=100, help="source addresses the connections come from")
    s.add_argument("--interval", type=float, default=5.0, help="seconds between an attacker's bytes")
    s.add_argument("--seconds", type=int, default=20, help="measured time under attack (max 60)")
    s.add_argument("--base-seconds", type=int, default=5, help="measured time before the attack")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--no-reconnect", dest="reconnect", action="store_false",
                   help="attackers do not replace connections the server closed")
    r = sub.add_parser("rrl")
    r.add_argument("--qps", type=int, default=50000, help="flood rate from the one source")
    r.add_argument("--seconds", type=int, default=10, help="flood duration (max 60)")
    r.add_argument("--rate", type=int, default=100, help="RRL answers per second per /24")
    r.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    args.seconds = min(args.seconds, 60)
    if args.mode == "slowloris":
        args.conns = min(args.conns, 2000)
    tmp = tempfile.mkdtemp(prefix="dns-attack-")
    try:
        (bench_slowloris if args.mode == "slowloris" else bench_rrl)(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
