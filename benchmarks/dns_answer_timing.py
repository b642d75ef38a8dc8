#!/usr/bin/env python
"""In-process cost of the fast path (``fastpath.answer``, no sockets) for plain policy
answers: this tree's ``fastpath.py`` against the one of an older git revision, in one
process, on the same serving state, interleaved batch by batch.

    .venv/bin/python benchmarks/dns_answer_timing.py --against REV [--queries 20000] [--batches 40]

The older ``fastpath.py`` is loaded from ``git show REV:...`` as a second module, so both run
with the same interpreter, state, caches and machine load; alternating batches spread any
disturbance by other processes over both. Queries: distinct names with random 0x20 case, A
and AAAA, half without EDNS and half with an empty EDNS OPT, in a zone the policy answers for
every name (``--policies fixed``: one policy, the plan holds the answer; ``dynamic``: the test
suite's policies, some matching on client or local address). Prints CPU microseconds per
query for each and the ratio this / REV. Not a test; only the ratio means anything. Valid
while REV's fast path reads the same state attributes as this tree's (it fails loudly if not).
"""

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "runtime", "dns"))

import dns.message  # noqa: E402

from agility_runtime.dns import fastpath, state as statemod, stats as statsmod  # noqa: E402
from agility_runtime.dns.query import Query  # noqa: E402
from dns_helpers import policy_doc  # noqa: E402


def load_old(rev):
    src = subprocess.run(["git", "-C", ROOT, "show", "%s:runtime/src/agility_runtime/dns/fastpath.py" % rev],
                         capture_output=True, check=True).stdout
    spec = importlib.util.spec_from_loader("fastpath_" + rev, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(src, "fastpath@%s" % rev, "exec"), module.__dict__)  # noqa: S102 - our own file at REV
    return module


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--against", required=True, help="git revision to compare with (e.g. the merge base)")
    ap.add_argument("--queries", type=int, default=20000, help="distinct queries per batch")
    ap.add_argument("--batches", type=int, default=40, help="batches per implementation, alternating")
    ap.add_argument("--policies", choices=("fixed", "dynamic"), default="fixed")
    args = ap.parse_args()
    old = load_old(args.against)
    doc = policy_doc() if args.policies == "dynamic" else policy_doc(
        policies=[{"name": "free", "pool": "free", "ttl": 300}], default_policy="free")
    raw = json.dumps(doc).encode()
    rng = random.Random(7)
    wires = []
    for i in range(args.queries):
        name = "".join(c.upper() if rng.random() < 0.5 else c for c in "h%d.example.com" % i)
        q = dns.message.make_query(name, "A" if i % 2 else "AAAA", use_edns=0 if i % 4 < 2 else None)
        wires.append(q.to_wire())
    peer, local = ("127.0.0.1", 5353), b"\x7f\x00\x00\x01"
    spent = {"this": 0.0, args.against: 0.0}
    for batch in range(2 * args.batches):
        label, module = ("this", fastpath) if batch % 2 == 0 else (args.against, old)
        st = statemod.from_bytes(raw)  # a fresh plan cache per batch: every name takes ``decide``
        stats = statsmod.Stats()
        answer = module.answer
        t0 = time.process_time()
        for w in wires:
            if answer(st, Query(w, peer, local), stats, 1232) is None:
                raise SystemExit("%s declined a query the fast path should take" % label)
        spent[label] += time.process_time() - t0
    per = {k: v / (args.batches * args.queries) * 1e6 for k, v in spent.items()}
    print("%s policies, %d batches x %d queries each: this tree %.2f us/query, %s %.2f us/query, "
          "ratio this/%s %.3f" % (args.policies, args.batches, args.queries, per["this"], args.against,
                                  per[args.against], args.against, per["this"] / per[args.against]))


if __name__ == "__main__":
    main()
