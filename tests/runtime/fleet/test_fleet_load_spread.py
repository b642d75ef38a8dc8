"""Load spread per address from real traffic (Figure 7 in the fleet): Zipf-popular names,
static bindings (partition: each name pinned to one address) vs random per answer over a /24.
Counters come from the real loader via the address_hits module; the report from
tools/load_report.py."""

import json
import os
import subprocess
import sys
import zlib

import pytest

from fleet_lab import ANYCAST, ROOT, Fleet, base_policy, usable, zipf_names

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(usable() is not None, reason=str(usable()))]

NAMES = 2000
REQUESTS = int(os.environ.get("FLEET_SPREAD_REQUESTS", "12000"))
RESOLVERS = 500  # stub resolvers, each with its own TTL cache
OUT = os.environ.get("FLEET_SPREAD_OUT")  # keep the report and PNGs here (docs figures)


def static_slices():
    slices = [[] for dummy in range(255)]
    for i in range(NAMES):
        name = "h%05d.example.com." % i
        slices[zlib.crc32(name.encode()) % 255].append(name)  # a hash binds each name
    return slices


POLICIES = {
    "static": [{"name": "web", "pool": "anycast", "ttl": 1, "strategy": "partition", "offset": 0,
                "slices": static_slices()}],
    "random": [{"name": "web", "pool": "anycast", "ttl": 1, "strategy": "random"}],
}


def run_report(tmp_path, kind, addresses):
    path = tmp_path / ("%s.json" % kind)
    path.write_text(json.dumps({"pop1": {"addresses": addresses}}))
    cmd = [sys.executable, os.path.join(ROOT, "tools", "load_report.py"), str(path),
           "--expected", ANYCAST, "--json", str(tmp_path / ("%s-report.json" % kind))]
    if OUT:
        cmd += ["--png", os.path.join(OUT, "fleet-%s.png" % kind)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    print(kind.upper(), r.stdout)
    return json.loads((tmp_path / ("%s-report.json" % kind)).read_text())["pops"]["pop1"]


@pytest.mark.parametrize("kind", ["static", "random"])
def test_real_traffic_spread(kind, tmp_path, request):
    f = Fleet(pops=1, clients=1)
    try:
        f.start(lambda p: base_policy(p.name, p.index, POLICIES[kind]))
        names = zipf_names(NAMES, REQUESTS, s=1.0, seed=3)
        sent = f.clients[0].udp_requests(names, resolvers=RESOLVERS, seed=4)
        hits = f.pops[0].address_hits([ANYCAST])
    finally:
        f.close()
    assert sent == REQUESTS
    assert abs(hits["total_hits"] - REQUESTS) <= REQUESTS * 0.01
    assert hits["dns_answers"].get(ANYCAST, 0) > 0
    s = run_report(tmp_path, kind, hits["addresses"])
    request.config.cache_spread = getattr(request.config, "cache_spread", {})
    request.config.cache_spread[kind] = s
    if kind == "static":
        # a hash binding of Zipf-popular names: the busiest address carries orders of
        # magnitude more than the quietest non-idle one
        assert s["orders_of_magnitude"] >= 2.0 and s["gini"] > 0.5
    else:
        # random per answer over a /24: every address used, load within a small factor
        assert s["idle"] == 0 and s["gini"] < 0.25
        assert s["orders_of_magnitude"] < 1.0
