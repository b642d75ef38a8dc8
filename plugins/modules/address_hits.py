#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: address_hits
short_description: Read per-address hit counters from the sk_lookup loader and answer counts from the responder
version_added: 0.1.0
author: Agility Addressing Maintainers (@agility-addressing)
description:
  - Runs C(agility-lookup addresses --json) on the PoP and returns how many socket lookups each
    local (destination) address received, the per-address load of paper §4.3 (Figure 7), and
    the input of route-leak detection and DoS bisection (§6).
  - Optionally reads the responder's Prometheus metrics (O(dns_metrics_url)) and returns
    C(agility_dns_answers_total) per used prefix.
  - Optionally restricts the addresses to O(prefixes), and summarises the load (sorted series,
    max/min ratio, Gini coefficient).
  - Only reads counters; never changes anything.
extends_documentation_fragment:
  - agility.addressing.attributes
attributes:
  check_mode:
    support: full
    details: Reads counters in check mode too (it only reads).
  diff_mode:
    support: none
options:
  executable:
    description: Path of C(agility-lookup).
    type: path
    default: /opt/agility/venv/bin/agility-lookup
  bpffs:
    description: The bpffs mount holding the loader state (C(--bpffs)); default the loader's own.
    type: path
  netns:
    description: Network namespace file to read in (C(--netns)), for example C(/run/netns/pop1).
    type: path
  dns_metrics_url:
    description:
      - URL of the responder's metrics, for example C(http://127.0.0.1:9153/metrics).
      - Omit to skip the responder.
    type: str
  prefixes:
    description:
      - Keep only addresses inside these prefixes (for example the pool's used prefixes).
      - Empty keeps every address the loader counted.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds to wait for the loader and the metrics URL.
      - The loader is a Python program; on a small, busy host its start alone can take several
        seconds (over 10 s was seen in the emulated lab while it took leak traffic).
    type: int
    default: 30
notes:
  - A hit is one socket lookup the dispatcher steered to a socket (a TCP SYN, a UDP datagram
    without an established socket), counted per destination address since the loader was loaded.
"""

EXAMPLES = r"""
- name: Read per-address hits and DNS answers on each PoP
  agility.addressing.address_hits:
    dns_metrics_url: http://127.0.0.1:9153/metrics
    prefixes: [198.18.16.0/24]
  register: hits

- name: Show the busiest address
  ansible.builtin.debug:
    msg: "{{ hits.summary.order[0] }} got {{ hits.summary.max }} hits"
"""

RETURN = r"""
addresses:
  description: Hits per local address (only addresses that had any), canonical text.
  returned: always
  type: dict
  sample: {"198.18.16.0": 1200, "198.18.16.1": 35}
drops:
  description: Lookups per address that matched a binding but were dropped (no socket).
  returned: always
  type: dict
  sample: {"198.18.16.0": 0}
total_hits:
  description: Sum of RV(addresses) values.
  returned: always
  type: int
dns_answers:
  description: Addresses handed out per used prefix (C(agility_dns_answers_total)).
  returned: when O(dns_metrics_url) is set
  type: dict
  sample: {"198.18.16.0/24": 5000}
dns_policy_digest:
  description: Digest of the policy the responder serves (from C(agility_dns_policy_info)).
  returned: when O(dns_metrics_url) is set and the responder reports one
  type: str
summary:
  description: Load summary over RV(addresses) (sorted series, max/min ratio, Gini, spread).
  returned: always
  type: dict
timestamp:
  description: Unix time the counters were read.
  returned: always
  type: float
"""

import ipaddress
import json
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.agility.addressing.plugins.module_utils import load_stats

METRIC_RE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """[(name, {label: value}, float)] from Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if not m:
            continue
        labels = dict((k, v.replace('\\"', '"').replace("\\\\", "\\")) for k, v in LABEL_RE.findall(m.group("labels") or ""))
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        out.append((m.group("name"), labels, value))
    return out


def dns_answers(text):
    answers = {}
    digest = None
    for name, labels, value in parse_prometheus(text):
        if name == "agility_dns_answers_total" and "prefix" in labels:
            answers[labels["prefix"]] = answers.get(labels["prefix"], 0) + int(value)
        elif name == "agility_dns_policy_info" and "digest" in labels:
            digest = labels["digest"]
    return answers, digest


def loader_addresses(module, executable, bpffs, netns, timeout):
    if not os.access(executable, os.X_OK):
        module.fail_json(msg="cannot run %s: no such executable (is the addressing_sklookup role applied "
                             "on this host, or does I(executable) point elsewhere?)" % executable)
    cmd = [executable]
    if bpffs:
        cmd += ["--bpffs", bpffs]
    if netns:
        cmd += ["--netns", netns]
    cmd += ["addresses", "--json"]
    # run_command has no timeout of its own; coreutils timeout(1) bounds a hung loader
    limiter = module.get_bin_path("timeout")
    argv = [limiter, "--kill-after=2", str(timeout)] + cmd if limiter else cmd
    rc, out, err = module.run_command(argv, check_rc=False)
    if limiter and rc in (124, 137):
        module.fail_json(msg="%s did not answer within %d s" % (" ".join(cmd), timeout), cmd=cmd, rc=rc)
    if rc != 0:
        module.fail_json(msg="%s failed (rc %d): %s" % (" ".join(cmd), rc, err.strip()),
                         cmd=cmd, rc=rc, stderr=err)
    try:
        data = json.loads(out)
        rows = data["addresses"]
    except (ValueError, KeyError, TypeError) as exc:
        module.fail_json(msg="unexpected output of %s: %s" % (" ".join(cmd), exc), stdout=out)
    return rows


def in_prefixes(address, nets):
    if not nets:
        return True
    addr = ipaddress.ip_address(address)
    return any(addr.version == n.version and addr in n for n in nets)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            executable=dict(type="path", default="/opt/agility/venv/bin/agility-lookup"),
            bpffs=dict(type="path"),
            netns=dict(type="path"),
            dns_metrics_url=dict(type="str"),
            prefixes=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        nets = [ipaddress.ip_network(x, strict=False) for x in p["prefixes"]]
    except ValueError as exc:
        module.fail_json(msg="bad prefix in prefixes: %s" % exc)

    rows = loader_addresses(module, p["executable"], p["bpffs"], p["netns"], p["timeout"])
    stamp = time.time()
    hits = {}
    drops = {}
    for row in rows:
        addr = str(ipaddress.ip_address(row["address"]))
        if not in_prefixes(addr, nets):
            continue
        hits[addr] = hits.get(addr, 0) + int(row.get("hits", 0))
        drops[addr] = drops.get(addr, 0) + int(row.get("drops", 0))

    result = dict(changed=False, addresses=hits, drops=drops, total_hits=sum(hits.values()),
                  timestamp=stamp)
    summary = load_stats.summary(hits)
    result["summary"] = summary

    if p["dns_metrics_url"]:
        try:
            resp = open_url(p["dns_metrics_url"], timeout=p["timeout"], validate_certs=False)
            text = resp.read().decode("utf-8", "replace")
        except Exception as exc:  # urllib/HTTP errors of every kind
            module.fail_json(msg="cannot read %s: %s" % (p["dns_metrics_url"], exc), **result)
        answers, digest = dns_answers(text)
        result["dns_answers"] = answers
        if digest:
            result["dns_policy_digest"] = digest
    module.exit_json(**result)


if __name__ == "__main__":
    main()
