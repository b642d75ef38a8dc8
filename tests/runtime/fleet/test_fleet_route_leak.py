"""Route-leak detection and mitigation (paper §6) on an emulated two-PoP fleet.

Real agility-lookup/agility-edge/agility-dns in each PoP namespace; two client namespaces,
c1 near pop1 and c2 near pop2. The leak made on purpose: c1's route for pop1's per_pop
address (a /32, more specific than the pool) is pointed at pop2.
"""

import threading
import time

import pytest

from ansible_collections.agility.addressing.plugins.module_utils import load_stats
from fleet_lab import ANYCAST, STANDBY, Fleet, base_policy, usable

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(usable() is not None, reason=str(usable()))]

TTL = 2
INTERVAL = 3.0  # detection interval (s): counters read at its start and end


def per_pop(pool):
    return [{"name": "leak-watch", "pool": pool, "ttl": TTL, "strategy": "per_pop", "offset": 1}]


def own_addresses(fleet, prefix):
    base = prefix.split("/")[0].rsplit(".", 1)[0]
    return dict((p.name, ["%s.%d" % (base, 1 + p.index)]) for p in fleet.pops)


def interval_counters(fleet, traffic):
    before = dict((k, v["addresses"]) for k, v in fleet.hits().items())
    t0 = time.monotonic()
    results = traffic()
    time.sleep(max(0.0, INTERVAL - (time.monotonic() - t0)))
    after = dict((k, v["addresses"]) for k, v in fleet.hits().items())
    return dict((k, load_stats.delta(after[k], before[k])) for k in after), results


@pytest.fixture
def fleet():
    f = Fleet(pops=2)
    try:
        f.start(lambda p: base_policy(p.name, p.index, per_pop("anycast")))
        yield f
    finally:
        f.close()


def traffic(fleet, n=40):
    def run():
        out = []
        for c in fleet.clients:
            out += c.http_requests(["www%d.example.com." % (i % 7) for i in range(n)])
        return out
    return run


def test_leak_is_detected_and_named_within_one_interval_then_mitigated(fleet):
    c1, c2 = fleet.clients
    pop1, pop2 = fleet.pops
    own = own_addresses(fleet, ANYCAST)
    assert own == {"pop1": ["198.18.16.1"], "pop2": ["198.18.16.2"]}

    # healthy interval: every PoP sees only its own address
    counters, results = interval_counters(fleet, traffic(fleet))
    assert all(r[3] is None for r in results), results
    assert set((r[1], r[2]) for r in results) == {("198.18.16.1", "pop1"), ("198.18.16.2", "pop2")}
    quiet = load_stats.detect_leaks(counters, own)
    assert quiet["leaks"] == [], quiet

    # the leak: c1's route for pop1's address now goes to pop2
    c1.route("198.18.16.1/32", pop2)
    counters, results = interval_counters(fleet, traffic(fleet))
    assert all(r[3] is None for r in results)  # anycast: pop2 serves it, but it is misdirected
    assert ("198.18.16.1", "pop2") in set((r[1], r[2]) for r in results)
    found = load_stats.detect_leaks(counters, own)
    assert [(x["at"], x["owner"], x["address"]) for x in found["leaks"]] == [("pop2", "pop1", "198.18.16.1")]
    print("LEAK", load_stats.leak_message(found["leaks"][0]), found["per_pop"])

    # mitigation, in migrate_pool.yml's order: standby is already routed and bound on every
    # PoP (widen), publish the same policy on the standby pool, wait out the TTL, narrow.
    failures = []
    stop = threading.Event()

    def steady():
        while not stop.is_set():
            for c in (c1, c2):
                failures.extend(r for r in c.http_requests(["www1.example.com.", "www2.example.com."]) if r[3])
    t = threading.Thread(target=steady)
    t.start()
    try:
        time.sleep(0.5)
        for p in fleet.pops:
            p.publish(base_policy(p.name, p.index, per_pop("standby")))
        time.sleep(TTL + 1)
        for p in fleet.pops:
            p.unbind(ANYCAST)
        time.sleep(1.0)
    finally:
        stop.set()
        t.join()
    assert failures == []

    counters, results = interval_counters(fleet, traffic(fleet))
    assert all(r[3] is None for r in results)
    assert set((r[1], r[2]) for r in results) == {("198.18.32.1", "pop1"), ("198.18.32.2", "pop2")}
    assert load_stats.detect_leaks(counters, own_addresses(fleet, STANDBY))["leaks"] == []
