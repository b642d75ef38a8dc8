#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab demo's report: per stage, what the client saw and how the load spread.

    python tools/demo_report.py DEMO_DIR STAGE [STAGE ...]

DEMO_DIR holds client.json (tools/lab_client.py) and, per stage, STAGE/counters.json
(playbooks/load_report.yml run at the end of that stage: cumulative per-address hits of
every PoP's sk_lookup loader). Per stage it prints the client's answers seen, distinct
addresses and requests ok/failed, and the per-address load spread the loaders counted
during the stage (the difference to the previous stage's snapshot).
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "plugins", "module_utils"))

import load_stats  # noqa: E402  pylint: disable=wrong-import-position


def _fleet_hits(path):
    """address -> hits summed over the PoPs, from one counters.json."""
    with open(path) as handle:
        doc = json.load(handle)
    out = {}
    for pop in doc.values():
        for address, hits in (pop.get("addresses") or {}).items():
            out[address] = out.get(address, 0) + int(hits)
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    demo, stages = sys.argv[1], sys.argv[2:]
    with open(os.path.join(demo, "client.json")) as handle:
        client = dict((s["stage"], s) for s in json.load(handle)["stages"])
    header = "%-12s %8s %9s %8s %8s %8s %10s %9s %6s" % (
        "stage", "answers", "distinct", "tcp ok", "udp ok", "failed", "addr hit", "max/min", "Gini")
    print(header)
    print("-" * len(header))
    before = {}
    for stage in stages:
        seen = client.get(stage, {})
        failed = sum(seen.get(k, 0) for k in ("dns_failed", "tcp_failed", "udp_failed"))
        path = os.path.join(demo, stage, "counters.json")
        spread = "%10s %9s %6s" % ("-", "-", "-")
        if os.path.exists(path):
            after = _fleet_hits(path)
            during = dict((a, n) for a, n in load_stats.delta(after, before).items() if n > 0)
            before = after
            s = load_stats.summary(during)
            ratio = s["max_min_ratio"]
            spread = "%10d %9s %6.3f" % (s["addresses"], "-" if ratio is None else "%.1f" % ratio, s["gini"])
        print("%-12s %8d %9d %8d %8d %8d %s" % (
            stage, seen.get("dns_ok", 0), seen.get("distinct", 0), seen.get("tcp_ok", 0),
            seen.get("udp_ok", 0), failed, spread))
    print("\nanswers: DNS answers the client used (cached for their TTL, as a resolver would);"
          "\naddr hit / max/min / Gini: connections per pool address counted by the PoPs' sk_lookup"
          " loaders during the stage")


if __name__ == "__main__":
    main()
