#!/usr/bin/env python
"""Benchmark of the agility sk_lookup dispatcher (issue 4). Needs root; not a test.

Prints, all measured in this one run:
  1. TCP connection rate (connect + accept + close, one thread) to
       a) a plainly bound socket in a namespace without the program (reference),
       b) the same kind of socket with the program attached but no binding matching (SK_PASS),
       c) a random address/port of a bound /20 redirected by the program,
     rounds interleaved; ratio b/a and c/a.
  2. Program cost per lookup (BPF_PROG_TEST_RUN, in-kernel average) with 1, 25, 1,000 and 100,000
     bindings, hit and miss, for the shipped program (a hash map walked by prefix length in use) and
     the LPM-trie program it replaced (bpf/lpm_reference.bpf.c, loaded beside it, not attached),
     filled with the same bindings and measured interleaved with it.
  3. One TCP + one UDP socket serving a /20 on 13 ports (26 bindings) vs. the naive
     4,096 x 13 x 2 = 106,496 bound sockets: setup time and kernel memory.
  4. One change (bind a new key, relabel it, unbind it) with 100,000 bindings in the map: through
     the library, through the CLI (and the CLI's start-up alone), and the old whole-set path
     (read every binding, plan, replace) as the reference.
  5. load-bindings of 100,000 bindings through the CLI: into an empty set, the same again, 10%
     relabelled, 10% removed (and, with --reference-runtime DIR, the same with an older runtime).

Each namespace is private and torn down; the state lives on a bpffs mounted for the run.
Usage: sudo .venv/bin/python benchmarks/sklookup_bench.py [--seconds 1] [--rounds 5] [--skip-naive]
       [--sections 1,2,3,4,5] [--reference-runtime OLD_CHECKOUT/runtime/src]
"""
import argparse
import ipaddress
import json
import os
import random
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from agility_runtime.sklookup import build, libbpf, maps, netns as ns, state
from agility_runtime.sklookup.build import object_path
from agility_runtime.sklookup.dispatcher import Dispatcher
from agility_runtime.sklookup.model import Binding

PREFIX = "198.18.0.0/20"
WIDE = "198.18.0.0/15"
PORTS13 = [53, 80, 443, 853, 2052, 2053, 2082, 2083, 2086, 2087, 2095, 8080, 8443]
LINGER0 = struct.pack("ii", 1, 0)


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)


def new_netns(routes=()):
    ns.unshare()
    sh("ip link set lo up")
    for r in routes:
        sh("ip route add local %s dev lo" % r)
    return ns.open_current()


def listener(addr="127.0.0.1", port=0, typ=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, typ)
    s.bind((addr, port))
    if typ == socket.SOCK_STREAM:
        s.listen(4096)
    return s


def conn_rate(seconds, target, lst):
    """Connections per second, sequential: connect, accept, RST-close both (no TIME_WAIT)."""
    n = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while True:
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        c.connect(target())
        a, peer = lst.accept()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        a.close()
        c.close()
        n += 1
        if n % 64 == 0 and time.perf_counter() >= deadline:
            break
    return n / (time.perf_counter() - start)


def sk_lookup_ctx(addr, port, proto=socket.IPPROTO_TCP):
    """struct bpf_sk_lookup (72 bytes) for BPF_PROG_TEST_RUN."""
    ctx = bytearray(72)
    struct.pack_into("=II", ctx, 8, socket.AF_INET, proto)
    ctx[16:20] = socket.inet_aton("192.0.2.1")
    struct.pack_into("!H", ctx, 36, 40000)
    ctx[40:44] = socket.inet_aton(addr)
    struct.pack_into("=I", ctx, 60, port)
    return bytes(ctx)


def lookup_ns(prog_fd, queries, repeat):
    """Average in-kernel ns per program run over the queries."""
    out = []
    for addr, port in queries:
        ret, dur = libbpf.prog_test_run(prog_fd, sk_lookup_ctx(addr, port), repeat)
        out.append(dur)
    return statistics.mean(out), ret


def random_keys(rng, n):
    """n distinct random TCP binding keys (port, network) inside 198.18.0.0/15, not the /20 itself:
    first one per prefix length /21../32 with an exact port and one with port 0 (so from 25
    bindings on every length the later sets use is in use), then random /20../32 on random or any
    ports."""
    base = int(ipaddress.ip_address("198.18.0.0"))
    out, seen = [], {(0, ipaddress.ip_network(PREFIX))}

    def add(plen, port):
        host = base + rng.randrange(0, 2 ** 17)
        net = ipaddress.ip_network((host >> (32 - plen) << (32 - plen), plen))
        if (port, net) in seen:
            return
        seen.add((port, net))
        out.append((port, net))
    for plen in range(21, 33):
        for port in (rng.randrange(1, 65536), 0):
            while len(out) < 2 * (plen - 20) - (port != 0):
                add(plen, port)
    while len(out) < n:
        add(rng.randrange(20, 33), rng.choice([0, rng.randrange(1, 65536)]))
    return out[:n]


def fill_bindings(d, keys, first_id=10):
    """Write TCP bindings for keys [(port, network)] straight into the hash map and publish their
    prefix lengths and filter counters (the library's per-change path is timed separately, section 4)."""
    dest_id = d._dest_get("bench", socket.AF_INET, socket.IPPROTO_TCP, create=True)[0]
    fd = d._fd("ag_binding_hash")
    lens = d._lens_get(socket.IPPROTO_TCP)
    t0 = time.perf_counter()
    for i, (port, net) in enumerate(keys):
        bits = 96 + net.prefixlen
        lens.refs[maps.PrefixLens.kind(port)][bits] += 1
        libbpf.map_update(fd, maps.pack_bind_key(socket.IPPROTO_TCP, port, net),
                          maps.pack_bind_val(dest_id, first_id + i, bits))
    libbpf.map_update(d._fd("ag_prefix_lens"), maps.U32.pack(socket.IPPROTO_TCP), lens.pack())
    for slot, n in maps.filter_counts((socket.IPPROTO_TCP, port, net) for port, net in keys).items():
        d._filter_write(slot, d._filter_get(slot) + n)
    return time.perf_counter() - t0


class LoadedProgram(object):
    """One dispatcher program loaded from source with maps of its own, not pinned, not attached:
    BPF_PROG_TEST_RUN runs it. Destination 0 is the given socket; every binding points at it."""

    def __init__(self, source, sock, keys):
        self.tmp = tempfile.mkdtemp(prefix="agility-bench-prog-")
        self.obj = libbpf.BPFObject(build.compile_object(os.path.join(self.tmp, "prog.bpf.o"), source=source))
        self.obj.load()
        self.prog_fd = self.obj.prog_fd(maps.PROG_NAME)
        libbpf.map_update(self.obj.map_fd("ag_sockets"), maps.U32.pack(0), maps.U64.pack(sock.fileno()))
        self.fill([(0, ipaddress.ip_network(PREFIX))] + list(keys))

    def close(self):
        self.obj.close()
        for f in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, f))
        os.rmdir(self.tmp)


class HashProgram(LoadedProgram):
    """The shipped program (bpf/dispatcher.bpf.c): bindings, prefix lengths and filter written
    as the library writes them (one home for each layout: maps.py)."""

    def __init__(self, sock, keys):
        LoadedProgram.__init__(self, build.SOURCE, sock, keys)

    def fill(self, keys):
        tcp = socket.IPPROTO_TCP
        fd = self.obj.map_fd("ag_binding_hash")
        for i, (port, net) in enumerate(keys):
            libbpf.map_update(fd, maps.pack_bind_key(tcp, port, net), maps.pack_bind_val(0, i, maps.to_v6_space(net)[1]))
        lens = maps.lens_from_bindings((tcp, port, maps.to_v6_space(net)[1]) for port, net in keys)[tcp]
        libbpf.map_update(self.obj.map_fd("ag_prefix_lens"), maps.U32.pack(tcp), lens.pack())
        pairs = {}
        for slot, n in maps.filter_counts((tcp, port, net) for port, net in keys).items():
            pairs.setdefault(slot >> 1, [0, 0])[slot & 1] = n
        for elem, (c0, c1) in pairs.items():
            libbpf.map_update(self.obj.map_fd("ag_prefix_filter"), maps.U32.pack(elem), struct.pack("=II", c0, c1))


class LpmReference(LoadedProgram):
    """The LPM-trie program (before issue 10 item 5), from its reference source."""

    def __init__(self, sock, keys):
        LoadedProgram.__init__(self, os.path.join(os.path.dirname(build.SOURCE), "lpm_reference.bpf.c"), sock, keys)

    def fill(self, keys):
        fd = self.obj.map_fd("ag_bindings")
        for i, (port, net) in enumerate(keys):
            libbpf.map_update(fd, maps.pack_lpm_bind_key(socket.IPPROTO_TCP, port, net),
                              maps.pack_bind_val(0, i, 96 + net.prefixlen))


def slab_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    return 0


def map_memlock(paths):
    """Sum of memlock (kernel-reported map/program memory) over the pinned objects."""
    total = 0
    for name in maps.MAP_NAMES + ("prog",):
        fd = libbpf.obj_get(paths.pin(name))
        try:
            with open("/proc/self/fdinfo/%d" % fd) as f:
                for line in f:
                    if line.startswith("memlock:"):
                        total += int(line.split()[1])
        finally:
            os.close(fd)
    return total


def section_rates(args, bpffs, orig, rng):
    print("== 1. TCP connection rate (one thread, %d rounds x %.1fs, interleaved, median) ==" % (args.rounds, args.seconds))
    print("  (connect + accept + RST-close, client and server in this process, all over loopback)")
    other = "198.19.0.0/20"  # routed locally in both namespaces, never bound
    plain_ns = new_netns([PREFIX, other])
    plain = listener("0.0.0.0")
    ns.setns(orig)
    disp_ns = new_netns([WIDE])
    paths, created = state.load(object_path(), bpffs)
    web = listener()
    pass_l = listener("0.0.0.0")
    with Dispatcher(bpffs, write=True) as d:
        d.bind(Binding("tcp", PREFIX, 0, "bench"))
        d.register("bench", web.fileno(), socket.AF_INET, socket.IPPROTO_TCP)
    net, onet = ipaddress.ip_network(PREFIX), ipaddress.ip_network(other)
    p_port, q_port = plain.getsockname()[1], pass_l.getsockname()[1]

    def rand_in(n):
        return str(n.network_address + rng.randrange(1, 4095))

    cases = [("no program, 0.0.0.0:P, random /20 address", plain_ns, lambda: (rand_in(net), p_port), plain),
             ("program, no binding matches (SK_PASS)", disp_ns, lambda: (rand_in(onet), q_port), pass_l),
             ("program, bound /20, random address, port P", disp_ns, lambda: (rand_in(net), p_port), web),
             ("program, bound /20, random address+port", disp_ns,
              lambda: (rand_in(net), rng.randrange(1024, 32768)), web)]
    results = {c[0]: [] for c in cases}
    for name, fd, tgt, lst in cases:  # warm-up
        ns.setns(fd)
        conn_rate(0.2, tgt, lst)
    for dummy in range(args.rounds):
        for name, fd, tgt, lst in cases:
            ns.setns(fd)
            results[name].append(conn_rate(args.seconds, tgt, lst))
    ref = statistics.median(results[cases[0][0]])
    for name, _fd, _t, _l in cases:
        med = statistics.median(results[name])
        print("  %-44s %8.0f conn/s  (min %.0f, max %.0f)  ratio %.3f" % (
            name, med, min(results[name]), max(results[name]), med / ref))
    return plain_ns, disp_ns, paths, web, plain, pass_l


def section_lookup(args, bpffs, orig, rng):
    sizes = sorted({n for n in (1, 25, 1000, args.max_bindings) if n <= args.max_bindings})
    print("== 2. Program cost per lookup (BPF_PROG_TEST_RUN, %d repeats x %d queries; median of %d rounds,"
          " every program measured in every round) ==" % (args.repeat, args.queries, args.lookup_rounds))
    print("  hash = shipped program (hash map walked by prefix length in use, prefix filter); lpm = LPM-trie"
          " reference; one instance of each per size, loaded side by side, same bindings, same queries")
    ns.setns(orig)
    fd = new_netns()
    web = listener()
    net = ipaddress.ip_network(PREFIX)
    hits = [(str(net.network_address + rng.randrange(1, 4095)), rng.randrange(1024, 32768))
            for dummy in range(args.queries)]
    misses = [("203.0.113.%d" % rng.randrange(1, 255), rng.randrange(1024, 32768)) for dummy in range(args.queries)]
    keys = random_keys(rng, args.max_bindings - 1)
    progs = {}
    for n in sizes:
        t0 = time.perf_counter()
        progs[n] = {"hash": HashProgram(web, keys[:n - 1]), "lpm": LpmReference(web, keys[:n - 1])}
        if n > 1000:
            print("  (%d bindings written into both programs' maps in %.1fs)" % (n, time.perf_counter() - t0))
    samples = {(n, p, k): [] for n in sizes for p in ("hash", "lpm") for k in ("hit", "miss")}
    verdicts = {}
    for dummy in range(args.lookup_rounds):
        for n in sizes:
            for p in ("hash", "lpm"):
                for k, queries in (("hit", hits), ("miss", misses)):
                    t, ret = lookup_ns(progs[n][p].prog_fd, queries, args.repeat)
                    samples[(n, p, k)].append(t)
                    verdicts.setdefault((p, k), set()).add(ret)
    med = {key: statistics.median(v) for key, v in samples.items()}
    for n in sizes:
        distinct = len({20} | {nt.prefixlen for _port, nt in keys[:n - 1]})
        print("  %7d bindings (%2d lengths in use): hit  hash %6.1f  lpm %6.1f ns   miss  hash %6.1f  lpm %6.1f ns"
              % (n, distinct, med[(n, "hash", "hit")], med[(n, "lpm", "hit")], med[(n, "hash", "miss")],
                 med[(n, "lpm", "miss")]))
    base = 25 if 25 in sizes else sizes[0]
    for n in sizes:
        print("  ratio to %d bindings at %7d: hit hash %.2f lpm %.2f   miss hash %.2f lpm %.2f" % (
            base, n, *(med[(n, p, k)] / med[(base, p, k)] for k in ("hit", "miss") for p in ("hash", "lpm"))))
    print("  verdicts (1 = SK_PASS): %s" % ", ".join("%s %s %s" % (p, k, sorted(v)) for (p, k), v in sorted(verdicts.items())))
    for pair in progs.values():
        for prog in pair.values():
            prog.close()
    web.close()
    ns.setns(orig)
    os.close(fd)


def mixed_bindings(rng, n):
    """n distinct bindings as an operator's file has them: IPv4 and IPv6, tcp and udp, /20 to /32
    and /48 to /128, exact ports and any port, ten labels."""
    out, seen = [], set()
    while len(out) < n:
        if rng.random() < 0.5:
            plen = rng.choice([20, 24, 28, 32])
            net = ipaddress.IPv4Network(((0xC6120000 | rng.getrandbits(17)) >> (32 - plen) << (32 - plen), plen))
        else:
            plen = rng.choice([48, 56, 64, 128])
            net = ipaddress.IPv6Network((((0x20010DB8 << 96) | rng.getrandbits(96)) >> (128 - plen) << (128 - plen), plen))
        b = {"protocol": rng.choice(["tcp", "udp"]), "prefix": str(net), "port": rng.choice([0, 53, 80, 443]),
             "label": "l%d" % (len(out) % 10)}
        k = (b["protocol"], b["prefix"], b["port"])
        if k not in seen:
            seen.add(k)
            out.append(b)
    return out


def _cli_load_bindings(bpffs, path, pythonpath):
    """Wall and CPU seconds of one `agility-lookup load-bindings PATH` process (start-up included)."""
    env = dict(os.environ, PYTHONPATH=pythonpath)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "agility_runtime.sklookup", "--bpffs", bpffs, "load-bindings", path],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def section_load_bindings(args, bpffs, orig, rng):
    n = args.max_bindings
    print("== 5. load-bindings of %d bindings through the CLI (one process each, start-up included) ==" % n)
    print("  a mixed set (IPv4 and IPv6, tcp and udp, exact and any port, 10 labels); then the same")
    print("  file again (no change), 10%% relabelled, 10%% removed%s" % (
        "; then each step by the runtime at %s" % args.reference_runtime if args.reference_runtime else ""))
    base = mixed_bindings(rng, n)
    relabelled = [dict(b, label="r%d" % (i % 10)) if i % 10 == 0 else b for i, b in enumerate(base)]
    shrunk = [b for i, b in enumerate(relabelled) if i % 10 != 5]
    files = []
    for name, items in (("load", base), ("again", base), ("relabel", relabelled), ("shrink", shrunk)):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"bindings": items}, f)
        files.append((name, f.name))
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/runtime/src"
    runtimes = [("this", ours)] + ([("reference", args.reference_runtime)] if args.reference_runtime else [])
    try:
        for label, path in runtimes:
            ns.setns(orig)
            fd = new_netns()
            state.load(object_path(), bpffs)
            for step, fname in files:
                wall, cpu = _cli_load_bindings(bpffs, fname, path)
                print("  %-9s %-8s %6.2fs wall %6.2fs cpu" % (label, step, wall, cpu))
            with Dispatcher(bpffs) as d:
                assert len(d.bindings(sort=False)) == len(shrunk)
            state.unload(bpffs)
            ns.setns(orig)
            os.close(fd)
    finally:
        for _name, fname in files:
            os.unlink(fname)


def section_cli(bpffs, orig, rng):
    ns.setns(orig)
    fd = new_netns()
    state.load(object_path(), bpffs)
    bs = []
    base = int(ipaddress.ip_address("198.18.0.0"))
    for i in range(1000):
        bs.append(Binding("tcp", ipaddress.ip_network((base + i * 16, 28)), 0, "l%d" % (i % 10)))
    with Dispatcher(bpffs, write=True) as d:
        t0 = time.perf_counter()
        d.replace(bs)
        t1 = time.perf_counter()
    print("  replace() of an empty set with 1,000 bindings through the library: %.2fs" % (t1 - t0))
    state.unload(bpffs)
    ns.setns(orig)
    os.close(fd)


def _median_ms(fn, samples):
    times = []
    for i in range(samples):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def section_changes(args, bpffs, orig, rng):
    n = args.max_bindings
    print("== 4. One change with %d bindings in the map (median ms) ==" % n)
    ns.setns(orig)
    fd = new_netns()
    state.load(object_path(), bpffs)

    def key(i):  # outside the filled range
        return ("tcp", ipaddress.ip_network("203.0.113.%d/32" % i), 9000)
    with Dispatcher(bpffs, write=True) as d:
        secs = fill_bindings(d, random_keys(rng, n))
        print("  map filled with %d bindings in %.1fs" % (n, secs))
        t0 = time.perf_counter()
        d.bind(Binding(*key(250), label="first"))
        print("  first bind, which builds the binding-id bitmap from the bindings: %.0f ms"
              % ((time.perf_counter() - t0) * 1000))
        d.unbind(*key(250))
        lib = [_median_ms(lambda i: d.bind(Binding(*key(i), label="chg")), 9),
               _median_ms(lambda i: d.bind(Binding(*key(i), label="chg2")), 9),
               _median_ms(lambda i: d.unbind(*key(i)), 9)]

        def whole_set(i, label):
            current = {c.key: c for c in d.bindings()}
            if label is None:
                current.pop(Binding(*key(100 + i), label="x").key)
            else:
                current[Binding(*key(100 + i), label=label).key] = Binding(*key(100 + i), label=label)
            d.replace(list(current.values()))
        ref = [_median_ms(lambda i: whole_set(i, "old"), 3), _median_ms(lambda i: whole_set(i, "old2"), 3),
               _median_ms(lambda i: whole_set(i, None), 3)]
    cli = [sys.executable, "-m", "agility_runtime.sklookup", "--bpffs", bpffs]

    def run(argv):
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    start = _median_ms(lambda i: run(cli + ["--version"]), 5)
    proc = [_median_ms(lambda i: run(cli + ["bind", "cli", "tcp", "203.0.113.%d/32" % (200 + i), "9000"]), 5),
            _median_ms(lambda i: run(cli + ["bind", "cli2", "tcp", "203.0.113.%d/32" % (200 + i), "9000"]), 5),
            _median_ms(lambda i: run(cli + ["unbind", "tcp", "203.0.113.%d/32" % (200 + i), "9000"]), 5)]
    for what, a, b, c in zip(("bind (new key)", "relabel", "unbind"), lib, proc, ref):
        print("  %-15s library %8.2f   CLI %8.1f (start-up %.1f)   whole-set reference %8.1f   ratio %.0fx"
              % (what, a, b, start, c, c / a))
    state.unload(bpffs)
    ns.setns(orig)
    os.close(fd)


def section_naive(args, bpffs, orig):
    print("== 3. A /20 on 13 ports, TCP+UDP: 2 sockets + 26 bindings vs. 106,496 sockets ==")
    ns.setns(orig)
    fd = new_netns([PREFIX])
    net = ipaddress.ip_network(PREFIX)
    # Dispatcher way.
    slab0 = slab_kb()
    t0 = time.perf_counter()
    paths, created = state.load(object_path(), bpffs)
    t_s, u_s = listener(), listener(typ=socket.SOCK_DGRAM)
    with Dispatcher(bpffs, write=True) as d:
        d.replace([Binding(p, PREFIX, port, "svc-" + p) for p in ("tcp", "udp") for port in PORTS13])
        d.register("svc-tcp", t_s.fileno(), socket.AF_INET, socket.IPPROTO_TCP)
        d.register("svc-udp", u_s.fileno(), socket.AF_INET, socket.IPPROTO_UDP)
    t1 = time.perf_counter()
    mem = map_memlock(paths)
    print("  dispatcher: 2 sockets, 26 bindings, set up (load+attach+bind+register) in %.3fs;"
          " BPF memlock of maps+prog %.1f MiB (fixed, sized for 131,072 bindings); slab delta %+d KiB"
          % (t1 - t0, mem / 2 ** 20, slab_kb() - slab0))
    state.unload(bpffs)
    t_s.close()
    u_s.close()
    if args.skip_naive:
        ns.setns(orig)
        os.close(fd)
        return
    full = 4096 * 13 * 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    per_proc = max(26, min(full, hard - 200))
    per_proc -= per_proc % 26
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    addrs = [str(net.network_address + off) for off in range(net.num_addresses)]
    chunk = per_proc // 26
    slices = [addrs[i:i + chunk] for i in range(0, len(addrs), chunk)]
    print("  naive: %d sockets over %d processes (RLIMIT_NOFILE %d)" % (full, len(slices), hard))
    slab0 = slab_kb()
    t0 = time.perf_counter()
    children = []
    for sl in slices:
        r_ready, w_ready = os.pipe()
        r_go, w_go = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: bind its slice, report, wait until told to exit
            os.close(r_ready)
            os.close(w_go)
            socks = []
            c0 = time.perf_counter()
            for a in sl:
                for port in PORTS13:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.bind((a, port))
                    s.listen(128)
                    socks.append(s)
                    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    u.bind((a, port))
                    socks.append(u)
            os.write(w_ready, ("%d %f\n" % (len(socks), time.perf_counter() - c0)).encode())
            os.read(r_go, 1)
            os._exit(0)
        os.close(w_ready)
        os.close(r_go)
        children.append((pid, r_ready, w_go))
    total, busy = 0, 0.0
    for pid, r_ready, w_go in children:
        n, secs = os.read(r_ready, 100).decode().split()
        total += int(n)
        busy += float(secs)
    t1 = time.perf_counter()
    time.sleep(0.2)
    delta = slab_kb() - slab0
    print("  naive: %d sockets bound in %.2fs wall (%.2fs summed over processes); slab delta %+d KiB"
          " (%.0f MiB, ~%.0f bytes/socket)" % (total, t1 - t0, busy, delta, delta / 1024.0, delta * 1024.0 / total))
    t2 = time.perf_counter()
    for pid, r_ready, w_go in children:
        os.close(w_go)
        os.close(r_ready)
    for pid, _r, _w in children:
        os.waitpid(pid, 0)
    print("  naive: tearing them down took %.2fs" % (time.perf_counter() - t2))
    ns.setns(orig)
    os.close(fd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="length of one rate measurement")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=50000, help="BPF_PROG_TEST_RUN repeats per query")
    ap.add_argument("--queries", type=int, default=32, help="hit and miss queries of section 2 (each)")
    ap.add_argument("--max-bindings", type=int, default=100000)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--lookup-rounds", type=int, default=5, help="interleaved rounds of section 2")
    ap.add_argument("--sections", default="1,2,3,4,5", help="which sections to run")
    ap.add_argument("--reference-runtime", help="section 5: also time this runtime/src (e.g. an older checkout's)")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    rng = random.Random(args.seed)
    bpffs = tempfile.mkdtemp(prefix="agility-bench-bpffs-")
    sh("mount -t bpf bpf %s" % bpffs)
    orig = ns.open_current()
    t0 = time.time()
    try:
        print("kernel %s, %d CPUs, python %s" % (os.uname().release, os.cpu_count(), sys.version.split()[0]))
        if "1" in sections:
            plain_ns, disp_ns, paths, web, plain, pass_l = section_rates(args, bpffs, orig, rng)
            ns.setns(disp_ns)
            state.unload(bpffs)
            for s in (web, plain, pass_l):
                s.close()
            ns.setns(orig)
            os.close(plain_ns)
            os.close(disp_ns)
        if "2" in sections:
            section_lookup(args, bpffs, orig, rng)
        if "3" in sections:
            section_cli(bpffs, orig, rng)
            section_naive(args, bpffs, orig)
        if "4" in sections:
            section_changes(args, bpffs, orig, rng)
        if "5" in sections:
            section_load_bindings(args, bpffs, orig, rng)
    finally:
        ns.setns(orig)
        subprocess.run(["umount", bpffs], check=False)
        os.rmdir(bpffs)
    print("total %.1fs" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
