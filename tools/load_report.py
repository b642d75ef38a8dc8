#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-address load report from collected counters (Figure 7 of the paper, for a real fleet).

Input: JSON written by playbooks/load_report.yml (or by hand):

    {"pop1": {"addresses": {"198.18.16.7": 120, ...}, "dns_answers": {"198.18.16.0/24": 900}},
     "pop2": {...}}

``--expected PREFIX`` (repeatable) counts every address of a small prefix (/20 or narrower for
IPv4, /116 or narrower for IPv6) that got no hits as idle (0), as it should: an unused address is
part of the spread. Prints, per PoP and for the fleet (summed per address): addresses, requests,
max/min, Gini, spread in orders of magnitude; ``--png`` writes one log-y panel per PoP plus the
fleet, addresses on x in descending order. matplotlib is needed only for ``--png``.
``--baseline FILE`` (an earlier collection) reports only the hits since then: the loaders'
counters are cumulative.
"""

from __future__ import absolute_import, division, print_function

import argparse
import ipaddress
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "plugins", "module_utils"))

import load_stats  # noqa: E402


def expected_addresses(prefixes):
    out = []
    for text in prefixes:
        net = ipaddress.ip_network(text, strict=False)
        if net.num_addresses > 4096:
            raise SystemExit("load_report.py: %s has more than 4096 addresses; give a narrower prefix" % net)
        out.extend(str(a) for a in net)
    return out


def in_any(addr, nets):
    a = ipaddress.ip_address(addr)
    return not nets or any(a.version == n.version and a in n for n in nets)


def since(data, baseline):
    """Per-PoP hits minus an earlier reading of the same cumulative counters."""
    out = {}
    for pop, entry in data.items():
        before = (baseline.get(pop) or {}).get("addresses") or {}
        hits = {}
        for addr, value in (entry.get("addresses") or {}).items():
            delta = int(value) - int(before.get(addr, 0))
            if delta < 0:
                raise SystemExit("load_report.py: %s %s went down from %s to %s: the baseline is not an earlier "
                                 "reading of the same loader (restarted?)" % (pop, addr, before.get(addr), value))
            if delta:
                hits[addr] = delta
        out[pop] = dict(entry, addresses=hits)
    return out


def build(data, prefixes):
    nets = [ipaddress.ip_network(p, strict=False) for p in prefixes]
    expected = expected_addresses(prefixes)
    per_pop = {}
    fleet = {}
    for pop in sorted(data):
        hits = dict((a, int(v)) for a, v in (data[pop].get("addresses") or {}).items() if in_any(a, nets))
        for a, v in hits.items():
            fleet[a] = fleet.get(a, 0) + v
        per_pop[pop] = load_stats.summary(hits, expected)
        per_pop[pop]["dns_answers"] = data[pop].get("dns_answers") or {}
    return per_pop, load_stats.summary(fleet, expected)


def text_report(per_pop, fleet):
    lines = []
    for pop in sorted(per_pop):
        s = per_pop[pop]
        lines.append(load_stats.format_summary(pop, s))
        if s["dns_answers"]:
            lines.append("  DNS answers per prefix: " + ", ".join(
                "%s=%d" % kv for kv in sorted(s["dns_answers"].items())))
        lines.append("  busiest: " + ", ".join("%s=%d" % (a, v) for a, v in zip(s.get("order", [])[:5], s["series"][:5])))
    lines.append(load_stats.format_summary("fleet", fleet))
    return "\n".join(lines)


def plot(per_pop, fleet, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("load_report.py: --png needs matplotlib on the controller (pip install matplotlib)")
    # a PoP that served nothing (outside the catchment) has nothing to draw on a log axis
    panels = [(pop, per_pop[pop]) for pop in sorted(per_pop) if any(per_pop[pop]["series"])] + [("fleet", fleet)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), sharey=True, squeeze=False)
    for ax, (title, s) in zip(axes[0], panels):
        ys = [v for v in s["series"] if v > 0]
        ax.plot(range(1, len(ys) + 1), ys, lw=1.2, marker="." if len(ys) < 64 else None)
        ax.set_yscale("log")
        ax.set_xlabel("IP addresses (descending by requests)")
        ax.set_ylabel("requests per IP")
        ratio = s["max_min_ratio"]
        ax.set_title("%s: %d addr, max/min %s\nGini %.2f, %.1f orders" % (
            title, s["addresses"], "inf" if ratio is None else "%.2f" % ratio, s["gini"],
            s["orders_of_magnitude"]), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("counters", help="JSON file of per-PoP counters ('-' = stdin)")
    ap.add_argument("--expected", action="append", default=[], metavar="PREFIX",
                    help="count idle addresses of this prefix (repeatable); also filters the addresses")
    ap.add_argument("--baseline", metavar="FILE", help="an earlier collection: report the hits since then")
    ap.add_argument("--png", help="write the plot here")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args(argv)
    data = json.load(sys.stdin if args.counters == "-" else open(args.counters))
    if args.baseline:
        with open(args.baseline) as handle:
            data = since(data, json.load(handle))
    per_pop, fleet = build(data, args.expected)
    print(text_report(per_pop, fleet))
    if args.png:
        plot(per_pop, fleet, args.png)
        print("wrote %s" % args.png)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"pops": per_pop, "fleet": fleet}, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
