#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Figure 7 simulator: load per IP address, static bindings vs. random addressing.

Replays a synthetic workload and reports the per-address load of three set-ups, as in §4.3
and Figure 7 of "The Ties that un-Bind":

  (a) static name->address bindings: every hostname bound to one address drawn (as a hash
      would) from 18 /20s; the panel shows the two busiest /20s (8192 addresses), the
      figures are also given over all 18;
  (b) random addressing per DNS answer over one /20 (4096 addresses);
  (c) random addressing per DNS answer over one /24 (256 addresses).

Workload: ``--hostnames`` names (default 1,000,000) with Zipf popularity (exponent ``--zipf``),
``--requests`` sampled requests (the paper plots a 1% sample) drawn multinomially over the names.
Requests follow DNS answers: a resolver caches an answer for a TTL, so the requests for one
name arrive in batches of at most ``--batch`` requests, each batch on the address one answer
gave. Under static bindings batching changes nothing (every answer is the same address).

Prints max/min, Gini and spread (orders of magnitude) per panel; writes a PNG (log y-axis,
addresses on x in descending order of load) with ``--png``; ``--json`` prints the numbers.
numpy is required; matplotlib only for ``--png``.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "plugins", "module_utils"))

import load_stats  # noqa: E402  (stdlib-only module_utils, imported by path)

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

SLASH20 = 4096
SLASH24 = 256


def zipf_weights(n, s):
    ranks = np.arange(1, n + 1, dtype=np.float64)
    w = ranks ** (-float(s))
    return w / w.sum()


def simulate(hostnames=1000000, requests=20000000, zipf=1.0, batch=50, prefixes=18, seed=7):
    rng = np.random.default_rng(seed)
    p = zipf_weights(hostnames, zipf)
    per_name = rng.multinomial(requests, p)

    # (a) static: each name bound to one address of 18 /20s (uniform, as a hash would)
    n_static = prefixes * SLASH20
    binding = rng.integers(0, n_static, hostnames)
    static = np.bincount(binding, weights=per_name, minlength=n_static).astype(np.int64)
    per_prefix = static.reshape(prefixes, SLASH20).sum(axis=1)
    busiest = np.argsort(per_prefix)[::-1][:2]
    two_busiest = np.concatenate([static[i * SLASH20:(i + 1) * SLASH20] for i in sorted(busiest)])

    # (b), (c) random per DNS answer: each name's requests in batches of <= batch
    active = per_name > 0
    counts = per_name[active]
    answers = -(-counts // batch)  # ceil
    total_answers = int(answers.sum())
    base = np.repeat(counts // answers, answers)
    extra = np.repeat(counts % answers, answers)
    # the first (counts % answers) answers of a name carry one more request
    starts = np.repeat(np.cumsum(answers) - answers, answers)
    pos = np.arange(total_answers) - starts
    sizes = base + (pos < extra)

    def random_over(n_addr):
        addr = rng.integers(0, n_addr, total_answers)
        return np.bincount(addr, weights=sizes, minlength=n_addr).astype(np.int64)

    return {
        "params": {"hostnames": hostnames, "requests": requests, "zipf": zipf, "batch": batch,
                   "prefixes": prefixes, "seed": seed, "dns_answers": total_answers},
        "panels": [
            ("a", "static bindings, two busiest of %d /20s" % prefixes, two_busiest),
            ("a_all", "static bindings, all %d /20s" % prefixes, static),
            ("b", "random per answer, one /20", random_over(SLASH20)),
            ("c", "random per answer, one /24", random_over(SLASH24)),
        ],
    }


def report(result):
    out = {"params": result["params"], "panels": {}}
    for key, title, series in result["panels"]:
        s = load_stats.summary(series.tolist())
        s.pop("series")
        s["title"] = title
        out["panels"][key] = s
    return out


def plot(result, path, title=None):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("figure7.py: --png needs matplotlib on the controller (pip install matplotlib)")
    panels = [p for p in result["panels"] if p[0] in ("a", "b", "c")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)  # one y range: shapes compare
    for ax, (key, label, series) in zip(axes, panels):
        ys = np.sort(series)[::-1]
        xs = np.arange(1, len(ys) + 1)
        nz = ys > 0
        ax.plot(xs[nz], ys[nz], lw=1.2, color="tab:blue")
        ax.set_yscale("log")
        ax.set_xlabel("IP addresses (descending by requests)")
        ax.set_ylabel("requests per IP")
        s = load_stats.summary(series.tolist())
        ratio = s["max_min_ratio"]
        ax.set_title("(%s) %s\nmax/min %s, Gini %.2f, %.1f orders" % (
            key, label, "inf" if ratio is None else "%.2f" % ratio, s["gini"], s["orders_of_magnitude"]),
            fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title or "Load across IP addresses (simulated, %d hostnames, Zipf %.2f, %d requests)" % (
        result["params"]["hostnames"], result["params"]["zipf"], result["params"]["requests"]))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hostnames", type=int, default=1000000)
    ap.add_argument("--requests", type=int, default=20000000, help="sampled requests")
    ap.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of name popularity")
    ap.add_argument("--batch", type=int, default=50, help="max requests per DNS answer (resolver cache)")
    ap.add_argument("--prefixes", type=int, default=18, help="/20s of the static set-up")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--png", help="write the three panels to this PNG")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args(argv)
    if np is None:
        print("figure7.py: needs numpy (pip install numpy)", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    result = simulate(args.hostnames, args.requests, args.zipf, args.batch, args.prefixes, args.seed)
    rep = report(result)
    if args.png:
        plot(result, args.png)
        rep["png"] = args.png
    rep["seconds"] = round(time.monotonic() - t0, 2)
    if args.json:
        print(json.dumps(rep, indent=2, sort_keys=True))
    else:
        print("workload: %(hostnames)d hostnames, Zipf %(zipf).2f, %(requests)d requests, "
              "<= %(batch)d requests per DNS answer (%(dns_answers)d answers), seed %(seed)d" % rep["params"])
        for key in ("a", "a_all", "b", "c"):
            s = rep["panels"][key]
            print(load_stats.format_summary("(%s) %s" % (key, s["title"]), dict(s, series=[])))
        if args.png:
            print("wrote %s" % args.png)
        print("%.1f s" % rep["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
