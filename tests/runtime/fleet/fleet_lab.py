"""An emulated fleet in network namespaces: PoPs running the real runtime, clients, routes.

Each PoP namespace runs the real ``agility-lookup`` (BPF sk_lookup, state in a private bpffs),
a real ``agility-edge`` whose sockets are registered with the loader, and a real ``agility-dns``
serving a policy file; the pools are routed locally (``ip route add local PREFIX dev lo``) and
bound on every port to the edge. Client namespaces ("the Internet" near each PoP) are connected
to every PoP by veth links; a client's route for the pool points at its own PoP, and a more
specific route pointed at another PoP is a route leak made on purpose.

Addresses: lab prefixes only. Links 192.0.2.0/24 (/30 each), pools 198.18.16.0/24 (anycast)
and 198.18.32.0/24 (standby). Everything is deleted by ``close()``.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import dns.message
import dns.query
import dns.rdatatype

from agility_runtime.sklookup import netns

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VENV_BIN = os.path.dirname(sys.executable)
LOOKUP = os.path.join(VENV_BIN, "agility-lookup")
EDGE = os.path.join(VENV_BIN, "agility-edge")
DNS = os.path.join(VENV_BIN, "agility-dns")
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")

ANYCAST = "198.18.16.0/24"
STANDBY = "198.18.32.0/24"
ZONE = "example.com."


def sh(*cmd, check=True):
    return subprocess.run([str(c) for c in cmd], check=check, capture_output=True, text=True, timeout=60)


def usable():
    """None if the fleet can run here, else the reason."""
    if os.geteuid() != 0:
        return "needs root"
    for exe in (LOOKUP, EDGE, DNS):
        if not os.path.exists(exe):
            return "missing %s" % exe
    return None


def in_netns(path, fn, *args):
    """Call fn(*args) on a thread inside the namespace at path; return its result."""
    return netns.call_in(path, fn, *args)


def base_policy(pop, index, policies, pools=None):
    return {
        "format": "agility.addressing/policy", "version": 1,
        "pop": {"name": pop, "index": index},
        "pools": pools or {
            "anycast": {"ipv4": {"announced": ANYCAST, "used": ANYCAST}},
            "standby": {"ipv4": {"announced": STANDBY, "used": STANDBY}},
        },
        "policies": policies,
        "zones": {ZONE: {"account_type": "free",
                         "soa": {"mname": "ns1.example.com.", "rname": "hostmaster.example.com.",
                                 "serial": 1, "minimum": 60},
                         "ns": ["ns1.example.com."],
                         "records": [{"name": "ns1", "type": "A", "data": "192.0.2.253"}]}},
    }


class PoP(object):
    def __init__(self, fleet, name, index):
        self.fleet = fleet
        self.name = name
        self.index = index
        self.ns = "agfl-%s-%s" % (name, fleet.tag)
        self.path = "/run/netns/" + self.ns
        self.links = {}  # client name -> (client address, pop address)
        self.procs = []
        self.dir = os.path.join(fleet.dir, name)
        os.makedirs(self.dir)
        self.policy_path = os.path.join(self.dir, "policy.json")
        self.pidfile = os.path.join(self.dir, "dns.pid")
        sh("ip", "netns", "add", self.ns)
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")

    # -- runtime ------------------------------------------------------------
    def lookup(self, *args):
        r = sh(LOOKUP, "--bpffs", self.fleet.bpffs, "--netns", self.path, *args)
        return r.stdout

    def start(self, policy, prefixes=(ANYCAST, STANDBY)):
        for prefix in prefixes:
            sh("ip", "-n", self.ns, "route", "add", "local", prefix, "dev", "lo")
        self.lookup("load")
        for prefix in prefixes:
            self.lookup("bind", "edge", "tcp", prefix, 0)
            self.lookup("bind", "edge", "udp", prefix, 0)
        self._start_edge()
        self.write_policy(policy)
        self._start_dns()

    def _start_edge(self):
        def make():
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(("127.0.0.1", 8080))
            t.listen(512)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 8080))
            return [t, u]
        socks = in_netns(self.path, make)
        fds = [s.fileno() for s in socks]
        self.lookup("register-pid", "edge", os.getpid(), *fds)
        helper = ("import os, sys\nfds = [int(x) for x in sys.argv[1].split(',')]\n"
                  "tmp = [os.dup(fd) for fd in fds]\n"
                  "for i, fd in enumerate(tmp):\n    os.dup2(fd, 3 + i)\n    os.set_inheritable(3 + i, True)\n"
                  "os.environ['LISTEN_FDS'] = str(len(fds))\nos.environ['LISTEN_FDNAMES'] = 'http:udp'\n"
                  "os.environ['LISTEN_PID'] = str(os.getpid())\nos.execv(sys.argv[2], sys.argv[2:])\n")
        cmd = ["ip", "netns", "exec", self.ns, sys.executable, "-c", helper, ",".join(map(str, fds)),
               EDGE, "--pop", self.name, "--max-connections", "1024"]
        log = open(os.path.join(self.dir, "edge.log"), "w")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=fds)
        self.procs.append(proc)
        for s in socks:
            s.close()
        self._wait(lambda: open(log.name).read().count("listening") >= 2, "agility-edge", proc)

    def _start_dns(self):
        cmd = ["ip", "netns", "exec", self.ns, DNS, "--policy", self.policy_path, "--listen", "0.0.0.0:53",
               "--metrics", "127.0.0.1:9153", "--pidfile", self.pidfile, "--workers", "1"]
        log = open(os.path.join(self.dir, "dns.log"), "w")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.procs.append(proc)
        self._wait(lambda: "event=ready" in open(log.name).read(), "agility-dns", proc)

    def _wait(self, cond, what, proc, timeout=20):
        deadline = time.monotonic() + timeout
        while not cond():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("%s in %s did not start: %s" % (what, self.ns, open(
                    os.path.join(self.dir, what.split("-")[1] + ".log")).read()))
            time.sleep(0.05)

    def write_policy(self, doc):
        tmp = self.policy_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
        os.rename(tmp, self.policy_path)

    def publish(self, doc, timeout=10):
        """Write the policy and reload the responder (SIGHUP); wait until it serves it."""
        before = self.metric_count("agility_dns_reloads_total")
        self.write_policy(doc)
        pid = int(open(self.pidfile).read().strip())
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.metric_count("agility_dns_reloads_total") <= before:
            if time.monotonic() > deadline:
                raise RuntimeError("reload not seen on %s" % self.name)
            time.sleep(0.05)
        if 'result="failed"' in self.metrics() and "last_reload_success 0" in self.metrics():
            raise RuntimeError("reload failed on %s" % self.name)

    def metrics(self):
        return in_netns(self.path, lambda: urllib.request.urlopen("http://127.0.0.1:9153/metrics", timeout=5)
                        .read().decode())

    def metric_count(self, name):
        total = 0
        for line in self.metrics().splitlines():
            if line.startswith(name):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def unbind(self, prefix):
        self.lookup("unbind", "tcp", prefix, 0)
        self.lookup("unbind", "udp", prefix, 0)

    # -- reading counters through the real module -----------------------------
    def address_hits(self, prefixes=()):
        """Run the address_hits module inside this PoP's namespace (as Ansible would)."""
        args = {"ANSIBLE_MODULE_ARGS": {"executable": LOOKUP, "bpffs": self.fleet.bpffs,
                                        "dns_metrics_url": "http://127.0.0.1:9153/metrics",
                                        "prefixes": list(prefixes)}}
        path = os.path.join(self.dir, "args.json")
        with open(path, "w") as f:
            json.dump(args, f)
        env = dict(os.environ, PYTHONPATH=COLLECTIONS)
        r = subprocess.run(["ip", "netns", "exec", self.ns, sys.executable, "-m",
                            "ansible_collections.agility.addressing.plugins.modules.address_hits", path],
                           capture_output=True, text=True, env=env, timeout=60, check=False)
        out = json.loads(r.stdout)
        if out.get("failed"):
            raise RuntimeError("address_hits on %s: %s" % (self.name, out.get("msg")))
        return out

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sh(LOOKUP, "--bpffs", self.fleet.bpffs, "--netns", self.path, "unload", check=False)
        sh("ip", "netns", "del", self.ns, check=False)


class Client(object):
    """A client namespace near one PoP: resolves there, routes the pool there (unless leaked)."""

    def __init__(self, fleet, name, home):
        self.fleet = fleet
        self.name = name
        self.home = home
        self.ns = "agfl-%s-%s" % (name, fleet.tag)
        self.path = "/run/netns/" + self.ns
        self.cache = {}
        sh("ip", "netns", "add", self.ns)
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")

    def resolver(self):
        return self.home.links[self.name][1]

    def route(self, prefix, pop, replace=True):
        via = pop.links[self.name][1]
        sh("ip", "-n", self.ns, "route", "replace" if replace else "add", prefix, "via", via)

    def unroute(self, prefix):
        sh("ip", "-n", self.ns, "route", "del", prefix, check=False)

    def stop(self):
        sh("ip", "netns", "del", self.ns, check=False)

    # -- traffic (runs inside the namespace) -----------------------------------
    def resolve(self, name, honour_ttl=True, resolver=0):
        """A stub resolver ``resolver`` (each has its own cache) asks the home PoP's DNS."""
        now = time.monotonic()
        hit = self.cache.get((resolver, name))
        if honour_ttl and hit and hit[1] > now:
            return hit[0]
        q = dns.message.make_query(name, "A")
        resp = dns.query.udp(q, self.resolver(), port=53, timeout=2)
        addrs = [r for rrset in resp.answer if rrset.rdtype == dns.rdatatype.A for r in rrset]
        if not addrs:
            raise RuntimeError("no A for %s: %s" % (name, resp))
        addr = addrs[0].address
        ttl = resp.answer[0].ttl
        self.cache[(resolver, name)] = (addr, now + ttl)
        return addr

    def _run(self, fn, *args):
        return in_netns(self.path, fn, *args)

    def http_requests(self, names, pause=0.0, honour_ttl=True):
        """One resolve (TTL-cached) + HTTP GET per name; returns [(name, addr, pop or None, error)]."""
        def go():
            out = []
            for name in names:
                try:
                    addr = self.resolve(name, honour_ttl)
                    s = socket.create_connection((addr, 80), timeout=3)
                    try:
                        s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % name).encode())
                        data = b""
                        while True:
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                    finally:
                        s.close()
                    body = json.loads(data.split(b"\r\n\r\n", 1)[1].decode())
                    out.append((name, addr, body.get("pop"), None))
                except Exception as exc:  # a failed request is data here
                    out.append((name, None, None, repr(exc)))
                if pause:
                    time.sleep(pause)
            return out
        return self._run(go)

    def udp_requests(self, names, resolvers=1, seed=0):
        """One datagram per name to the address DNS gave for it; each request comes from one of
        ``resolvers`` stub resolvers (chosen at random), each caching answers for their TTL."""
        rng = random.Random(seed)

        def go():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                for i, name in enumerate(names):
                    addr = self.resolve(name, True, rng.randrange(resolvers))
                    s.sendto(b"ping %d" % i, (addr, 8080))
            finally:
                s.close()
            return len(names)
        return self._run(go)

    def udp_flood(self, target, count, duration):
        """Bounded attack: ``count`` datagrams over ``duration`` s to ``target`` (an address, or
        a hostname resolved through DNS honouring the TTL before every burst of 10)."""
        def go():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sent = 0
            gap = float(duration) / count
            t0 = time.monotonic()
            try:
                while sent < count:
                    addr = target if target[0].isdigit() else self.resolve(target)
                    for dummy in range(10):
                        s.sendto(b"ping attack", (addr, 4000 + sent % 100))
                        sent += 1
                    delay = t0 + sent * gap - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
            finally:
                s.close()
            return sent
        return self._run(go)


class Fleet(object):
    def __init__(self, pops=2, clients=None):
        self.tag = uuid.uuid4().hex[:6]
        self.dir = tempfile.mkdtemp(prefix="agility-fleet-")
        self.bpffs = os.path.join(self.dir, "bpffs")
        os.makedirs(self.bpffs)
        sh("mount", "-t", "bpf", "bpf", self.bpffs)
        self.pops = []
        self.clients = []
        try:
            for i in range(pops):
                self.pops.append(PoP(self, "pop%d" % (i + 1), i))
            for i in range(pops if clients is None else clients):
                self.clients.append(Client(self, "c%d" % (i + 1), self.pops[i % pops]))
            link = 0
            for c in self.clients:
                for p in self.pops:
                    ca, pa = "192.0.2.%d" % (4 * link + 1), "192.0.2.%d" % (4 * link + 2)
                    a, b = "fc%s%d" % (self.tag, link), "fp%s%d" % (self.tag, link)
                    sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
                    sh("ip", "link", "set", a, "netns", c.ns)
                    sh("ip", "link", "set", b, "netns", p.ns)
                    sh("ip", "-n", c.ns, "addr", "add", ca + "/30", "dev", a)
                    sh("ip", "-n", p.ns, "addr", "add", pa + "/30", "dev", b)
                    sh("ip", "-n", c.ns, "link", "set", a, "up")
                    sh("ip", "-n", p.ns, "link", "set", b, "up")
                    p.links[c.name] = (ca, pa)
                    link += 1
        except Exception:
            self.close()
            raise

    def start(self, policies_for):
        """policies_for(pop) -> policy document; routes each client's pools to its home PoP."""
        for p in self.pops:
            p.start(policies_for(p))
        for c in self.clients:
            for prefix in (ANYCAST, STANDBY):
                c.route(prefix, c.home)

    def hits(self, prefixes=()):
        return dict((p.name, p.address_hits(prefixes)) for p in self.pops)

    def close(self):
        for p in self.pops:
            p.stop()
        for c in self.clients:
            c.stop()
        sh("umount", self.bpffs, check=False)
        try:
            os.rmdir(self.bpffs)
        except OSError:
            pass


def zipf_names(n, count, s=1.0, seed=1, zone="example.com."):
    rng = random.Random(seed)
    weights = [1.0 / (r ** s) for r in range(1, n + 1)]
    names = ["h%05d.%s" % (i, zone) for i in range(n)]
    return rng.choices(names, weights=weights, k=count)
