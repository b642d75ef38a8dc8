"""DoS bisection (paper §6) on an emulated PoP: real agility-dns (partition strategy),
real agility-lookup per-address counters read with the address_hits module, a bounded UDP
attack from a client namespace that resolves its target through DNS (honouring the TTL),
or that hits the address itself (L3/L4)."""

import random
import threading
import time

import pytest

from ansible_collections.agility.addressing.plugins.module_utils import load_stats
from fleet_lab import ANYCAST, Fleet, base_policy, usable

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(usable() is not None, reason=str(usable()))]

N = 64
K = 4
TTL = 1            # the lowered TTL
START_OFFSET = 10  # all services start on 198.18.16.10
WINDOW = 1.5       # observation window after waiting out a TTL
SERVICES = ["svc%02d.example.com." % i for i in range(N)]


def addr(offset):
    return "198.18.16.%d" % offset


def single_policy(ttl):
    return [{"name": "svc", "pool": "anycast", "ttl": ttl, "strategy": "single", "offset": START_OFFSET}]


def partition_policy(slices, offset):
    return [{"name": "svc", "pool": "anycast", "ttl": TTL, "strategy": "partition", "offset": offset,
             "slices": slices}]


@pytest.fixture
def fleet():
    f = Fleet(pops=1, clients=1)
    try:
        f.start(lambda p: base_policy(p.name, p.index, single_policy(TTL)))
        yield f
    finally:
        f.close()


def bisect(fleet, attack_target, max_rounds=6):
    pop = fleet.pops[0]
    client = fleet.clients[0]
    rng = random.Random(5)
    current = sorted(SERVICES)
    old = addr(START_OFFSET)
    rounds = []
    for r in range(max_rounds):
        slices = load_stats.split(current, K)
        offset = 20 + r * (K + 1)  # fresh addresses every round: the old one is never reused
        slice_addrs = [addr(offset + i) for i in range(len(slices))]
        doc = base_policy(pop.name, pop.index, partition_policy(slices, offset))
        pop.publish(doc)
        sent = []
        attacker = threading.Thread(target=lambda: sent.append(
            client.udp_flood(attack_target, count=400, duration=TTL + 0.5 + WINDOW)))
        attacker.start()
        legit = client.http_requests(rng.sample(SERVICES, 8))  # normal users keep working
        time.sleep(TTL + 0.5)  # wait out the TTL of answers handed out before
        before = pop.address_hits([ANYCAST])["addresses"]
        time.sleep(WINDOW)
        after = pop.address_hits([ANYCAST])["addresses"]
        attacker.join()
        seen = load_stats.delta(after, before)
        res = load_stats.bisect_round(current, K, seen, slice_addrs, old)
        rounds.append({"round": r + 1, "services": len(current), "slices": [len(s) for s in slices],
                       "verdict": res["verdict"], "followed": res["followed_address"],
                       "hits": dict((a, seen.get(a, 0)) for a in slice_addrs + [old]),
                       "legit_failures": [x for x in legit if x[3]], "sent": sent})
        print("ROUND", rounds[-1])
        if res["verdict"] != "slice" or res["isolated"]:
            return rounds, res
        old = res["followed_address"]
        current = res["next_services"]
    return rounds, res


def test_bisection_isolates_the_attacked_service_in_log_k_n_rounds(fleet):
    target = SERVICES[37]
    rounds, res = bisect(fleet, target)
    assert res["verdict"] == "slice" and res["isolated"], rounds
    assert res["next_services"] == [target]
    assert len(rounds) <= load_stats.expected_rounds(N, K) == 3
    assert all(not r["legit_failures"] for r in rounds)


def test_bisection_says_l3l4_when_the_attack_stays_on_the_address(fleet):
    rounds, res = bisect(fleet, addr(START_OFFSET))
    assert len(rounds) == 1 and res["verdict"] == "L3/L4", rounds
