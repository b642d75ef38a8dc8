# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a migration would do, PoP by PoP and batch by batch (the migration_plan action plugin).

Pure functions. The plan follows playbooks/migrate_pool.yml: Ansible's ``serial`` batches;
per PoP, widen routes and bindings to the union of current and target, publish, gate, wait out
the longest TTL plus the margin, narrow to the target, gate again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.agility.addressing.plugins.module_utils.policy import (
    PolicyError, bindings_for, document_prefixes,
)
from ansible_collections.agility.addressing.plugins.module_utils.pop_policy import _close, build_pop_policy, describe

DEFAULT_SERIAL = [1, "25%", "100%"]
# assumed seconds per step when none are given: one apply (routes, bindings, policy, reload)
# and one gate (DNS and edge probes), on a small real host
DEFAULT_APPLY_SECONDS = 15
DEFAULT_GATE_SECONDS = 30


class PlanError(ValueError):
    """The migration cannot be planned at all (not one PoP's problem)."""


def batch_size(value, total):
    """One ``serial`` entry as a host count, read as Ansible reads it: a percentage of all hosts,
    rounded down but at least 1; a number; 0 or less means all hosts."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return int(int(text[:-1]) / 100.0 * total) or 1
        count = int(text)
    except ValueError:
        raise PlanError("serial: %r is neither a whole number nor a percentage such as 25%%" % (value,))
    return count if count > 0 else total


def batches(hosts, serial):
    """``hosts`` split as Ansible's ``serial`` splits them; the last entry repeats."""
    hosts = list(hosts)
    entries = serial if isinstance(serial, (list, tuple)) else [serial]
    if not entries:
        return [hosts] if hosts else []
    out = []
    i = 0
    while i < len(hosts):
        size = batch_size(entries[min(len(out), len(entries) - 1)], len(hosts))
        out.append(hosts[i:i + size])
        i += size
    return out


def target_settings(migration, stages, overrides, pools, policies):
    """(stages, pool_overrides) after the migration, from the current ones."""
    stages = dict(stages or {})
    overrides = dict(overrides or {})
    if migration.get("pool") is not None:
        if migration["pool"] not in pools:
            raise PlanError("no pool %s (pools: %s)%s" % (
                migration["pool"], ", ".join(sorted(pools)), _close(migration["pool"], list(pools))))
        if migration.get("stage") is None:
            raise PlanError("say the stage to move pool %s to" % migration["pool"])
        stages[migration["pool"]] = migration["stage"]
    elif migration.get("policy") is not None:
        names = [p.get("name") for p in policies or [] if isinstance(p, dict)]
        if migration["policy"] not in names:
            raise PlanError("no policy %s (policies: %s)%s" % (
                migration["policy"], ", ".join(names), _close(migration["policy"], names)))
        if migration.get("to_pool") not in pools:
            raise PlanError("no pool %s to move policy %s to" % (migration.get("to_pool"), migration["policy"]))
        overrides[migration["policy"]] = migration["to_pool"]
    else:
        raise PlanError("say what to migrate: pool and stage, or policy and to_pool")
    return stages, overrides


def _bindings(prefixes, tcp_ports, udp_ports):
    return set((b["protocol"], b["prefix"], b["port"]) for b in bindings_for(prefixes, tcp_ports, udp_ports))


def _pool_of(doc):
    return dict((p["name"], p["pool"]) for p in doc.get("policies", []))


def pop_plan(host, inputs, migration, ttl_margin):
    """One PoP's part: prefixes before and after, routes and bindings added and removed, the wait."""
    kwargs = dict(inputs["build"])
    stages, overrides = inputs.get("stages") or {}, inputs.get("pool_overrides") or {}
    current = build_pop_policy(stages=stages, pool_overrides=overrides, **kwargs)
    new_stages, new_overrides = target_settings(migration, stages, overrides, kwargs["pools"],
                                                kwargs.get("policies"))
    target = build_pop_policy(stages=new_stages, pool_overrides=new_overrides, **kwargs)
    tcp, udp = inputs.get("tcp_ports") or {}, inputs.get("udp_ports") or {}
    routes = [set(document_prefixes([d], "announced")) for d in (current, target)]
    used = [document_prefixes([d], "used") for d in (current, target)]
    binds = [_bindings(u, tcp, udp) for u in used]
    changes = routes[0] != routes[1] or binds[0] != binds[1]
    ttl = max([p.get("ttl", 0) for p in current.get("policies", [])] + [0])
    before, after = _pool_of(current), _pool_of(target)
    return {
        "host": host,
        "changes": changes or before != after,
        "used_before": used[0], "used_after": used[1],
        "routes_added": sorted(routes[1] - routes[0]), "routes_removed": sorted(routes[0] - routes[1]),
        "bindings_added": len(binds[1] - binds[0]), "bindings_removed": len(binds[0] - binds[1]),
        "bindings_during_wait": len(binds[0] | binds[1]),
        "policies_moved": [{"policy": name, "from": before[name], "to": after[name]}
                           for name in sorted(after) if before.get(name) != after[name]],
        "ttl_wait": ttl + ttl_margin if used[0] != used[1] else 0,
    }


def plan(inputs, hosts, migration, serial=None, ttl_margin=5, apply_seconds=DEFAULT_APPLY_SECONDS,
         gate_seconds=DEFAULT_GATE_SECONDS):
    """The whole plan: ``{"batches": [...], "refused": [...], "estimate_seconds": N, ...}``.

    ``inputs`` maps host to ``{"build": build_pop_policy kwargs without stages and pool_overrides,
    "stages", "pool_overrides" (recorded on the host), "tcp_ports", "udp_ports"}``.
    """
    serial = DEFAULT_SERIAL if serial is None else serial
    out_batches, refused = [], []
    total = 0
    for number, batch in enumerate(batches(hosts, serial), 1):
        pops = []
        for host in batch:
            try:
                pops.append(pop_plan(host, inputs[host], migration, ttl_margin))
            except PolicyError as exc:
                refused.append(describe(host, exc))
        changing = [p for p in pops if p["changes"]]
        wait = max([p["ttl_wait"] for p in changing] + [0])
        seconds = (2 * (apply_seconds + gate_seconds) + wait) if changing else 0
        total += seconds
        out_batches.append({"batch": number, "hosts": list(batch), "pops": pops, "ttl_wait": wait,
                            "estimate_seconds": seconds})
    return {"migration": dict(migration), "serial": serial, "ttl_margin": ttl_margin,
            "assumed": {"apply_seconds": apply_seconds, "gate_seconds": gate_seconds},
            "batches": out_batches, "refused": refused, "estimate_seconds": total}


def _duration(seconds):
    return "%d min %02d s" % divmod(int(seconds), 60) if seconds >= 60 else "%d s" % seconds


def _what(migration):
    if migration.get("pool") is not None:
        return "pool %s to stage %s" % (migration["pool"], migration["stage"])
    return "policy %s to pool %s" % (migration["policy"], migration["to_pool"])


def lines(result):
    """The plan as text, one line per batch and per PoP, then what was refused."""
    out = ["plan: move %s; %d PoPs in %d batches (serial %s); about %s (apply %d s and gate %d s assumed)"
           % (_what(result["migration"]), sum(len(b["hosts"]) for b in result["batches"]), len(result["batches"]),
              result["serial"], _duration(result["estimate_seconds"]), result["assumed"]["apply_seconds"],
              result["assumed"]["gate_seconds"])]
    for batch in result["batches"]:
        out.append("batch %d: %s; TTL wait %d s; about %s" % (
            batch["batch"], ", ".join(batch["hosts"]), batch["ttl_wait"], _duration(batch["estimate_seconds"])))
        for p in batch["pops"]:
            if not p["changes"]:
                out.append("  %s: no change" % p["host"])
                continue
            gone = [u for u in p["used_before"] if u not in p["used_after"]]
            new = [u for u in p["used_after"] if u not in p["used_before"]]
            used = ("used %s -> %s" % (", ".join(gone) or "-", ", ".join(new) or "-")) if gone or new \
                else "used prefixes unchanged"
            text = "  %s: %s; routes +%d -%d; bindings +%d -%d (%d in all while both are live)" % (
                p["host"], used, len(p["routes_added"]), len(p["routes_removed"]), p["bindings_added"],
                p["bindings_removed"], p["bindings_during_wait"])
            for move in p["policies_moved"]:
                text += "; policy %s: %s -> %s" % (move["policy"], move["from"], move["to"])
            out.append(text)
    out.extend("refused: %s" % r for r in result["refused"])
    return out
