#!/usr/bin/env python
"""The zone store at scale (issue 12): compile N zones x M hostnames, then serve them.

Steps, each timed, each printed with a reference measured in the same run:

1. generate N zones (M hostnames each, one TXT record, one of three account types) into
   JSON sources of --per-file zones each;
2. ``agility-zones compile`` them: wall time, peak RSS of the compiler (wait4), store size;
3. ``agility-dns --zone-store`` start: time from exec to the first answer for a store zone,
   and the RSS of supervisor + worker (anonymous memory, i.e. apart from the page cache,
   and file-backed);
4. look-up cost in-process: the answer pipeline (fast path) for random hostnames of
   random store zones, against the same pipeline for unique names of one wildcard zone in
   the policy file (the one-zone responder; plan cache emptied before each round, as unique
   names would): the ratio is what the store costs per query;
5. the reference: the policy-JSON path at --reference-zones zones (zones inside the policy
   file, as on main): ``agility-dns`` start time and RSS, against the store of the same
   size, and against the store of N zones.

    .venv/bin/python benchmarks/zones_bench.py                      # 100k zones x 20 names
    .venv/bin/python benchmarks/zones_bench.py --zones 1000000      # the issue's target
    .venv/bin/python benchmarks/zones_bench.py --zones 2000 --reference-zones 1000 --queries 2000  # a quick look

Not a test: nothing here runs in tests/run. The machine is shared: absolute figures vary
with the load; ratios are measured in the same run.
"""

import argparse
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)
AGILITY_ZONES = os.path.join(BIN, "agility-zones")
AGILITY_DNS = os.path.join(BIN, "agility-dns")
ACCOUNTS = ("free", "pro", "business")

POLICY = {
    "format": "agility.addressing/policy", "version": 1, "pop": {"name": "bench01", "index": 1},
    "pools": {"free": {"ipv4": {"announced": "198.18.16.0/20", "used": "198.18.16.0/20"},
                       "ipv6": {"announced": "2001:db8:16::/48", "used": "2001:db8:16::/64"}},
              "pro": {"ipv4": {"announced": "198.18.32.0/24", "used": "198.18.32.0/28"}}},
    "policies": [{"name": "pro", "match": {"account_types": ["pro", "business"]}, "pool": "pro", "ttl": 60,
                  "strategy": "per_pop"},
                 {"name": "free", "pool": "free", "ttl": 300}],
    "default_policy": "free",
}


def zone_name(i):
    return "c%d.example" % i


def zone_data(i, hostnames):
    return {"account_type": ACCOUNTS[i % 3],
            "soa": {"mname": "ns1.example.net", "rname": "hostmaster.example.net", "serial": 1},
            "ns": ["ns1.example.net", "ns2.example.net"],
            "hostnames": ["www"] + ["h%d" % j for j in range(hostnames - 1)],
            "records": [{"name": "_verify", "type": "TXT", "data": '"customer %d"' % i}]}


def generate(out, zones, hostnames, per_file):
    paths = []
    for start in range(0, zones, per_file):
        path = os.path.join(out, "zones-%07d.json" % start)
        with open(path, "w") as handle:
            json.dump({"zones": {zone_name(i): zone_data(i, hostnames)
                                 for i in range(start, min(zones, start + per_file))}}, handle)
        paths.append(path)
    return paths


def run_measured(cmd):
    """(wall seconds, peak RSS MiB, exit status, output tail, CPU seconds) of a child process;
    CPU includes the processes it waited for (the compiler's --jobs workers)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    took = time.monotonic() - start
    err = proc.stderr.read().decode()[-400:]
    out = proc.stdout.read().decode()[-400:]
    proc.returncode = os.waitstatus_to_exitcode(status)
    return took, usage.ru_maxrss / 1024.0, proc.returncode, (out + err).strip(), usage.ru_utime + usage.ru_stime


def du_mib(path):
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
    return total / 2 ** 20


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dns_query(name, port, timeout=0.2):
    import dns.message
    import dns.query
    return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=timeout)


def rss_kib(pid):
    """(anonymous KiB, file-backed KiB) of a process."""
    anon = filed = 0
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1])
            elif line.startswith("RssFile:") or line.startswith("RssShmem:"):
                filed += int(line.split()[1])
    return anon, filed


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def start_responder(policy_path, probe, store=None, timeout=600.0):
    """(seconds to the first answer for ``probe``, anon MiB, file MiB) of a fresh agility-dns."""
    port = free_port()
    cmd = [AGILITY_DNS, "--policy", policy_path, "--listen", "127.0.0.1:%d" % port]
    if store:
        cmd += ["--zone-store", store]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("agility-dns exited: %s" % proc.stderr.read().decode()[-400:])
            if time.monotonic() - start > timeout:
                raise RuntimeError("agility-dns not ready in %.0f s" % timeout)
            try:
                r = dns_query(probe, port)
                if r.answer:
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.02)
        took = time.monotonic() - start
        anon = filed = 0
        for pid in [proc.pid] + children(proc.pid):
            a, f = rss_kib(pid)
            anon += a
            filed += f
        return took, anon / 1024.0, filed / 1024.0
    finally:
        proc.terminate()
        proc.wait(30)


def pipeline_cost(state, names, rounds=3):
    """Median over ``rounds`` of the mean microseconds per query of the answer pipeline."""
    import dns.message
    from agility_runtime.dns import handler, stats as statsmod
    wires = [dns.message.make_query(n, "A").to_wire() for n in names]
    stats = statsmod.Stats("udp")
    for w in wires[:50]:
        handler.handle(state, w, ("127.0.0.1", 5300), None, stats, 1232)
    per = []
    for dummy in range(rounds):
        state.plans.clear()  # unique names, as a resolver's traffic: every query decides afresh
        start = time.perf_counter()
        for w in wires:
            resp = handler.handle(state, w, ("127.0.0.1", 5300), None, stats, 1232)
            if resp is None or resp[3] & 0x0F:
                raise RuntimeError("no NOERROR answer for a benchmark query")
        per.append((time.perf_counter() - start) / len(wires) * 1e6)
    return sorted(per)[len(per) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--zones", type=int, default=100000)
    ap.add_argument("--hostnames", type=int, default=20, help="hostnames per zone (default 20)")
    ap.add_argument("--per-file", type=int, default=20000, help="zones per JSON source file")
    ap.add_argument("--reference-zones", type=int, default=10000,
                    help="zones of the policy-JSON reference (zones in the policy file, as on main)")
    ap.add_argument("--queries", type=int, default=20000, help="queries of the in-process pipeline measure")
    ap.add_argument("--workdir", help="keep sources and stores here (default: a temporary directory)")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="zones-bench-")
    os.makedirs(work, exist_ok=True)
    rnd = random.Random(12)
    print("machine: %d cores, load average %s (shared with other sessions)"
          % (os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg())))
    try:
        # 1-2: generate and compile the big store
        src = os.path.join(work, "src")
        os.makedirs(src, exist_ok=True)
        t0 = time.monotonic()
        paths = generate(src, args.zones, args.hostnames, args.per_file)
        gen_s = time.monotonic() - t0
        src_mib = du_mib(src)
        store = os.path.join(work, "store")
        shutil.rmtree(store, ignore_errors=True)
        load_before = os.getloadavg()[0]
        took, rss, rc, tail, cpu = run_measured([AGILITY_ZONES, "compile"] + paths + ["--out", store])
        if rc != 0:
            raise SystemExit("compile failed: %s" % tail)
        size = du_mib(store)
        total_names = args.zones * args.hostnames
        print("compile: %d zones x %d hostnames (%d names) from %d JSON files (%.0f MiB, generated in %.1f s): "
              "%.1f s, %.0f zones/s, peak RSS %.0f MiB, store %.0f MiB (%.0f bytes/zone)"
              % (args.zones, args.hostnames, total_names, len(paths), src_mib, gen_s, took, args.zones / took,
                 rss, size, size * 2 ** 20 / args.zones))
        print("  %s" % tail.splitlines()[-1] if tail else "")
        print("  compile CPU: %.1f s (%.0f us/zone; %.2f of the wall time on %d cores; load average %.2f before, "
              "%.2f after)" % (cpu, cpu / args.zones * 1e6, cpu / took, os.cpu_count(), load_before,
                               os.getloadavg()[0]))
        shutil.rmtree(src, ignore_errors=True)

        # 5 (reference first, small): the policy-JSON path at reference size, and a store of that size
        ref = os.path.join(work, "ref")
        os.makedirs(ref, exist_ok=True)
        ref_doc = dict(POLICY, zones={zone_name(i): zone_data(i, args.hostnames) for i in range(args.reference_zones)})
        ref_policy = os.path.join(ref, "policy-with-zones.json")
        with open(ref_policy, "w") as handle:
            json.dump(ref_doc, handle)
        small_src = os.path.join(ref, "zones.json")
        with open(small_src, "w") as handle:
            json.dump({"zones": ref_doc["zones"]}, handle)
        small_store = os.path.join(ref, "store")
        ref_compile = run_measured([AGILITY_ZONES, "compile", small_src, "--out", small_store])
        plain_policy = os.path.join(work, "policy.json")
        with open(plain_policy, "w") as handle:
            json.dump(POLICY, handle)
        probe_small = "www.%s" % zone_name(args.reference_zones - 1)
        probe_big = "www.%s" % zone_name(args.zones - 1)
        json_start = start_responder(ref_policy, probe_small)
        small_start = start_responder(plain_policy, probe_small, small_store)
        big_start = start_responder(plain_policy, probe_big, store)
        print("reference compile of %d zones: %.1f s, CPU %.1f s (per-zone CPU, big/ref: %.2f)"
              % (args.reference_zones, ref_compile[0], ref_compile[4],
                 (cpu / args.zones) / (ref_compile[4] / args.reference_zones)))
        print("responder start to first answer | anon RSS | file RSS (supervisor + 1 worker):")
        print("  policy JSON with %8d zones: %6.2f s | %6.0f MiB | %5.0f MiB" % ((args.reference_zones,) + json_start))
        print("  zone store  with %8d zones: %6.2f s | %6.0f MiB | %5.0f MiB" % ((args.reference_zones,) + small_start))
        print("  zone store  with %8d zones: %6.2f s | %6.0f MiB | %5.0f MiB" % ((args.zones,) + big_start))
        print("  ratios: store/JSON start at %d zones %.3f; store start %d/%d zones %.2f; "
              "anon RSS store(%d)/JSON(%d) %.3f"
              % (args.reference_zones, small_start[0] / json_start[0], args.zones, args.reference_zones,
                 big_start[0] / small_start[0], args.zones, args.reference_zones, big_start[1] / json_start[1]))

        # 4: the per-query cost in-process: store zones vs the same names in a one-zone policy file
        from agility_runtime.dns import state as statemod, storezones
        names = []
        for dummy in range(args.queries):
            i = rnd.randrange(args.zones)
            names.append("%s.%s" % (rnd.choice(["www", "h%d" % rnd.randrange(max(1, args.hostnames - 1))]),
                                    zone_name(i)))
        store_state = statemod.from_bytes(json.dumps(POLICY).encode(), "bench", storezones.StoreZones(store))
        store_cold = pipeline_cost(store_state, names, rounds=1)  # first touch: zone built from the store
        store_warm = pipeline_cost(store_state, names)
        one_zone = dict(zone_data(0, args.hostnames), hostnames=["*"])
        one_doc = dict(POLICY, zones={zone_name(0): one_zone})
        one_state = statemod.from_bytes(json.dumps(one_doc).encode(), "bench")
        one_names = ["u%d.%s" % (k, zone_name(0)) for k in range(len(names))]
        one_cost = pipeline_cost(one_state, one_names)
        print("answer pipeline, %d A queries for random names (fast path, in-process):" % len(names))
        print("  one zone in the policy file (wildcard, unique names): %.1f us/query" % one_cost)
        print("  %d store zones, first touch (zone read + built): %.1f us/query; again (built zone cached): "
              "%.1f us/query" % (args.zones, store_cold, store_warm))
        print("  ratio store/one-zone: %.2f (again), %.2f (first touch)"
              % (store_warm / one_cost, store_cold / one_cost))
        print("peak RSS of this benchmark process: %.0f MiB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                                / 1024.0))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
