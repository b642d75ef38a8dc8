# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load statistics over per-address counters (paper §4.3 Figure 7, §6).

Standard library only (used by modules on the hosts, by the controller and by tools/):

* load uniformity: :func:`summary` (sorted-descending series, max/min ratio, Gini coefficient,
  spread in orders of magnitude);
* route-leak detection: :func:`detect_leaks` over each PoP's per-address hit counters and each
  PoP's own ``per_pop`` addresses;
* DoS bisection bookkeeping: :func:`delta`, :func:`followed_slice`, :func:`next_split`,
  :func:`bisect_round`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import math


# ---------------------------------------------------------------- load uniformity

def sorted_desc(counts):
    """Values of a mapping (or a list) sorted from most to least loaded."""
    values = counts.values() if isinstance(counts, dict) else counts
    return sorted((int(v) for v in values), reverse=True)


def gini(values):
    """Gini coefficient of non-negative values: 0 = perfectly even, ->1 = all on one."""
    xs = sorted(float(v) for v in values)
    n = len(xs)
    total = sum(xs)
    if n == 0 or total <= 0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return (2.0 * weighted) / (n * total) - (n + 1.0) / n


def max_min_ratio(values):
    """max/min over the values; None when the minimum is 0 (infinite) or there are none."""
    xs = list(values)
    if not xs:
        return None
    lo, hi = min(xs), max(xs)
    if lo <= 0:
        return None
    return float(hi) / float(lo)


def orders_of_magnitude(values):
    """log10(max/min) over the non-zero values (0.0 if fewer than one non-zero)."""
    xs = [v for v in values if v > 0]
    if not xs:
        return 0.0
    return math.log10(float(max(xs)) / float(min(xs)))


def summary(counts, expected=None):
    """Report of a per-address load.

    ``counts``: address -> count (or a list of counts). ``expected``: optional list of addresses
    that should carry load; those missing from ``counts`` count as 0 (idle addresses are part of
    the spread: an address nobody uses is infinitely less loaded).
    """
    if isinstance(counts, dict):
        merged = dict((str(k), int(v)) for k, v in counts.items())
        for addr in expected or ():
            merged.setdefault(str(addr), 0)
        items = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
        series = [v for dummy, v in items]
        addresses = [k for k, dummy in items]
    else:
        series = sorted_desc(counts)
        addresses = None
    total = sum(series)
    nonzero = [v for v in series if v > 0]
    out = {
        "addresses": len(series),
        "total": total,
        "max": series[0] if series else 0,
        "min": series[-1] if series else 0,
        "mean": (float(total) / len(series)) if series else 0.0,
        "idle": len(series) - len(nonzero),
        "max_min_ratio": max_min_ratio(series),
        "max_min_ratio_nonzero": max_min_ratio(nonzero),
        "orders_of_magnitude": orders_of_magnitude(series),
        "gini": gini(series),
        "series": series,
    }
    if addresses is not None:
        out["order"] = addresses
    return out


def format_summary(title, s):
    """One human-readable paragraph for :func:`summary` output."""
    ratio = s["max_min_ratio"]
    ratio_text = "inf (%d idle)" % s["idle"] if ratio is None else "%.2f" % ratio
    return ("%s: %d addresses, %d requests, max %d, min %d, max/min %s, "
            "non-zero max/min %s, spread %.2f orders of magnitude, Gini %.3f" % (
                title, s["addresses"], s["total"], s["max"], s["min"], ratio_text,
                "n/a" if s["max_min_ratio_nonzero"] is None else "%.2f" % s["max_min_ratio_nonzero"],
                s["orders_of_magnitude"], s["gini"]))


# ---------------------------------------------------------------- route leaks

def _canon(addr):
    return str(ipaddress.ip_address(str(addr).strip("[]")))


def delta(after, before):
    """Per-address increase between two counter snapshots (address -> count); resets -> after."""
    out = {}
    for addr, value in after.items():
        prev = before.get(addr, 0)
        out[addr] = value - prev if value >= prev else value
    return out


def detect_leaks(counters, own, threshold=0.05, min_hits=10):
    """Traffic arriving at a PoP on another PoP's per_pop address.

    ``counters``: pop -> {address: hits} (hits over the detection interval, or cumulative).
    ``own``: pop -> list of that PoP's own per_pop addresses (one per family, or several).
    A PoP ``at`` is flagged for address ``addr`` owned by PoP ``owner`` when it saw at least
    ``min_hits`` there and that is more than ``threshold`` of all hits at ``at`` on fleet
    addresses. Addresses no PoP owns are reported as ``unowned`` (not leaks).

    Returns ``{"leaks": [...], "per_pop": {...}, "unowned": [...]}``; each leak names
    ``at`` (where the traffic arrived), ``owner`` (whose address it is), ``address``,
    ``hits``, ``share`` (of the fleet-address hits at ``at``).
    """
    owner_of = {}
    for pop, addrs in own.items():
        for addr in addrs or ():
            owner_of[_canon(addr)] = pop
    leaks = []
    unowned = []
    per_pop = {}
    for at in sorted(counters):
        hits = dict((_canon(a), int(v)) for a, v in (counters[at] or {}).items())
        fleet_total = sum(v for a, v in hits.items() if a in owner_of)
        own_hits = sum(v for a, v in hits.items() if owner_of.get(a) == at)
        foreign = 0
        for addr in sorted(hits):
            value = hits[addr]
            owner = owner_of.get(addr)
            if owner is None:
                if value:
                    unowned.append({"at": at, "address": addr, "hits": value})
                continue
            if owner == at or value <= 0:
                continue
            foreign += value
            share = float(value) / fleet_total if fleet_total else 0.0
            if value >= min_hits and share > threshold:
                leaks.append({"at": at, "owner": owner, "address": addr, "hits": value,
                              "share": round(share, 4)})
        per_pop[at] = {"own_hits": own_hits, "foreign_hits": foreign, "fleet_hits": fleet_total,
                       "foreign_share": round(float(foreign) / fleet_total, 4) if fleet_total else 0.0}
    leaks.sort(key=lambda x: (-x["hits"], x["at"], x["address"]))
    return {"leaks": leaks, "per_pop": per_pop, "unowned": unowned}


def leak_message(leak):
    return ("route leak: PoP %(at)s received %(hits)d requests (%(share).1f%% of its fleet-address "
            "traffic) on %(address)s, the address PoP %(owner)s hands out" % dict(leak, share=100 * leak["share"]))


# ---------------------------------------------------------------- DoS bisection

def _policy():
    # Imported when needed: tools/ load this file by path, without the collection, and never split.
    from ansible_collections.agility.addressing.plugins.module_utils import policy  # pylint: disable=import-outside-toplevel
    return policy


def split(services, k):
    """Services into min(k, n) non-empty slices: the ``partition_slices`` filter's slices.

    The same function as the one the playbook publishes with (policy.partition_slices), minus
    the empty slices it leaves when k > n.
    """
    slices = [s for s in _policy().partition_slices(services, max(1, int(k))) if s]
    return slices or [[]]


def followed_slice(hits_by_address, slice_addresses, old_address, ratio=0.5, min_hits=20):
    """Which address the attack follows in one round.

    ``hits_by_address``: hits per address during the observation window (after the TTL).
    ``slice_addresses``: address of slice i (list). ``old_address``: where the attack was.
    Returns ``(kind, index)``: ``("slice", i)`` when slice i's address carries more than
    ``ratio`` of the hits observed on the candidate addresses; ``("l3l4", None)`` when the
    old address (not a slice address) keeps the most; ``("none", None)`` when fewer than
    ``min_hits`` were seen at all; ``("unclear", None)`` otherwise.
    """
    canon = dict((_canon(a), int(v)) for a, v in hits_by_address.items())
    slices = [_canon(a) for a in slice_addresses]
    old = _canon(old_address) if old_address else None
    per_slice = [canon.get(a, 0) for a in slices]
    old_hits = canon.get(old, 0) if old is not None and old not in slices else 0
    total = sum(per_slice) + old_hits
    if total < min_hits:
        return ("none", None)
    if old_hits > ratio * total:
        return ("l3l4", None)
    best = max(range(len(slices)), key=lambda i: per_slice[i])
    if per_slice[best] > ratio * total:
        return ("slice", best)
    return ("unclear", None)


def bisect_round(services, k, hits_by_address, slice_addresses, old_address, **kw):
    """One round: which slice the attack followed and what to split next.

    Returns a dict: ``verdict`` (``slice``/``L3/L4``/``none``/``unclear``), ``slice_index``,
    ``followed_address``, ``next_services`` (the slice to split next, or the same services when
    no conclusion), ``isolated`` (True when exactly one service remains), ``next_slices``
    (the next split of ``next_services`` into k).
    """
    slices = split(services, k)
    kind, index = followed_slice(hits_by_address, slice_addresses[:len(slices)], old_address, **kw)
    out = {"verdict": {"slice": "slice", "l3l4": "L3/L4"}.get(kind, kind), "slice_index": index,
           "followed_address": None, "slices": slices}
    if kind == "slice":
        nxt = slices[index]
        out["followed_address"] = _canon(slice_addresses[index])
    else:
        nxt = sorted(set(_policy().normalise_name(s) for s in services))
    out["next_services"] = nxt
    out["isolated"] = kind == "slice" and len(nxt) == 1
    out["next_slices"] = split(nxt, k) if len(nxt) > 1 else [nxt]
    return out


def expected_rounds(n, k):
    """ceil(log_k n): rounds a k-ary search needs to isolate one of n services."""
    if n <= 1:
        return 0
    rounds = 0
    size = n
    while size > 1:
        size = int(math.ceil(float(size) / k))
        rounds += 1
    return rounds
