"""The lab network: one namespace with bridge br0 (the client and "the Internet"), taps per VM,
and routes for the anycast pools pointing at a chosen PoP."""
import ipaddress

from lab_common import BRIDGE, GW4, GW6, LINK4, LINK6, NS, log, ns_exists, ns_run, pool_prefixes, pop_addrs, run


def up():
    if not ns_exists():
        log("creating namespace %s" % NS)
        run(["ip", "netns", "add", NS])
    ns_run(["ip", "link", "set", "lo", "up"])
    for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1"):
        ns_run(["sysctl", "-q", "-w", key])
    if ns_run(["ip", "link", "show", BRIDGE], check=False, capture=True).returncode != 0:
        ns_run(["ip", "link", "add", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
    ns_run(["ip", "addr", "replace", "%s/%d" % (GW4, LINK4.prefixlen), "dev", BRIDGE])
    ns_run(["ip", "addr", "replace", "%s/%d" % (GW6, LINK6.prefixlen), "dev", BRIDGE, "nodad"])
    ns_run(["ip", "link", "set", BRIDGE, "up"])


def add_tap(i):
    tap = pop_addrs(i)["tap"]
    if ns_run(["ip", "link", "show", tap], check=False, capture=True).returncode != 0:
        ns_run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"])
    ns_run(["ip", "link", "set", tap, "master", BRIDGE, "up"])


def del_tap(i):
    ns_run(["ip", "link", "del", pop_addrs(i)["tap"]], check=False, capture=True)


def down():
    if ns_exists():
        log("deleting namespace %s" % NS)
        run(["ip", "netns", "del", NS])


def route(prefix, pops):
    """Point PREFIX at one PoP, spread it over several (ECMP), or remove it (pops == [])."""
    net = ipaddress.ip_network(prefix, strict=True)
    fam = "ipv4" if net.version == 4 else "ipv6"
    ver = "-4" if net.version == 4 else "-6"
    if not pops:
        ns_run(["ip", ver, "route", "del", str(net)], check=False, capture=True)
        return
    hops = [pop_addrs(i)[fam] for i in pops]
    if len(hops) == 1:
        cmd = ["ip", ver, "route", "replace", str(net), "via", hops[0], "dev", BRIDGE]
    else:
        cmd = ["ip", ver, "route", "replace", str(net)]
        for h in hops:
            cmd += ["nexthop", "via", h, "dev", BRIDGE]
    ns_run(cmd)


def routes():
    """{prefix: 'via ...' text} for the pool prefixes, as the namespace has them now."""
    out = {}
    for prefix in pool_prefixes():
        ver = "-6" if ":" in prefix else "-4"
        res = ns_run(["ip", ver, "route", "show", prefix], check=False, capture=True)
        text = " ".join(res.stdout.split()) if res.returncode == 0 else ""
        out[prefix] = text[len(prefix):].strip() if text.startswith(prefix) else (text or "(none)")
    return out
