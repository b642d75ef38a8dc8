#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: reach_probe
short_description: Connect to random addresses of a prefix and check the edge service answers
version_added: 0.1.0
description:
  - Picks O(count) random addresses of O(prefix) (or takes O(addresses)) and tries every
    address on every port in O(ports) over each protocol in O(protocols).
  - Over TCP it connects, optionally does TLS, and by default sends one HTTP GET; over UDP it
    sends the edge service's C(ping) datagram on a connected socket, so only a reply sent
    from the very address and port probed counts.
  - Reports each target's outcome and the JSON document the edge service answered (its PoP
    name, the local address it saw). Fails when fewer than O(min_success) targets succeed.
  - Only reads; it never reports a change and runs the same in check mode.
  - Needs only the Python standard library on the managed host.
author: Agility Addressing Maintainers (@agility-addressing)
extends_documentation_fragment:
  - agility.addressing.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  prefix:
    description:
      - Prefix to draw random addresses from, for example V(198.18.0.0/24) or V(2001:db8:100::/64).
      - One of O(prefix), O(addresses) and O(probes) is required; O(prefix) and O(addresses) exclude each other.
    type: str
  addresses:
    description: Explicit addresses to probe instead of random ones.
    type: list
    elements: str
  probes:
    description:
      - Several probe sets in one module run (a health gate probes IPv4 and IPv6, plain and TLS
        ports, at once). Each item takes some of the module's options; what it does not give
        comes from the module's own. The targets of every set count together for O(min_success).
      - An item with O(probes[].prefix) ignores the module's O(addresses), and the other way round.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      prefix:
        description: As O(prefix).
        type: str
      prefixes:
        description:
          - Several prefixes probed alike; each draws its own O(probes[].count) addresses.
          - O(probes[].prefix), O(probes[].prefixes) and O(probes[].addresses) exclude each other.
        type: list
        elements: str
      addresses:
        description: As O(addresses).
        type: list
        elements: str
      count:
        description: As O(count).
        type: int
      seed:
        description: As O(seed).
        type: int
      ports:
        description: As O(ports).
        type: list
        elements: int
      protocols:
        description: As O(protocols).
        type: list
        elements: str
        choices: [tcp, udp]
      http:
        description: As O(http).
        type: bool
      host:
        description: As O(host).
        type: str
      path:
        description: As O(path).
        type: str
      tls:
        description: As O(tls).
        type: bool
      server_name:
        description: As O(server_name).
        type: str
  count:
    description: Number of distinct random addresses drawn from O(prefix) (all of a smaller prefix).
    type: int
    default: 4
  seed:
    description: Seed for drawing addresses, to repeat a run exactly. Random when not given.
    type: int
  ports:
    description: Ports to probe on each address.
    type: list
    elements: int
    default: [80]
  protocols:
    description: Transports to probe each address and port with.
    type: list
    elements: str
    choices: [tcp, udp]
    default: [tcp]
  http:
    description:
      - Send an HTTP GET over TCP and require a C(200) answer. With V(false) a completed
        connect (and TLS handshake) is a success.
    type: bool
    default: true
  host:
    description: Host header of the HTTP request; the probed address when not given.
    type: str
  path:
    description: Path of the HTTP request.
    type: str
    default: /
  tls:
    description: Speak TLS on the TCP targets.
    type: bool
    default: false
  server_name:
    description: TLS SNI name; O(host) when not given.
    type: str
  validate_certs:
    description: Verify the server certificate (against O(ca_path) or the system store) and name.
    type: bool
    default: false
  ca_path:
    description: CA bundle to verify against when O(validate_certs=true).
    type: path
  timeout:
    description: Seconds allowed for each target (connect plus answer).
    type: float
    default: 3.0
  udp_retries:
    description: Extra ping datagrams sent to a UDP target within O(timeout) before giving up.
    type: int
    default: 2
  min_success:
    description: Fail when fewer targets than this succeed. Defaults to all targets.
    type: int
  expect_pop:
    description: A target whose answer names another PoP counts as failed.
    type: str
  expect_local:
    description:
      - A target counts as failed unless the edge service reports the very address and port
        probed as its local address (no address translation in between).
    type: bool
    default: false
seealso:
  - module: agility.addressing.dns_probe
"""

EXAMPLES = r"""
- name: Eight random addresses of the pool answer HTTP and UDP on port 80 at this PoP
  agility.addressing.reach_probe:
    prefix: 198.18.0.0/24
    count: 8
    ports: [80]
    protocols: [tcp, udp]
    host: www.example.com
    expect_pop: fra1
    expect_local: true
  register: reach_gate

- name: One gate, one module run - HTTP and UDP on IPv4 and IPv6, and HTTPS on IPv4
  agility.addressing.reach_probe:
    host: gate.example.com
    expect_pop: fra1
    probes:
      - {prefixes: [198.18.16.0/24, "2001:db8:100::/64"], ports: [80, 8080], protocols: [tcp, udp]}
      - {prefix: 198.18.16.0/24, ports: [443], tls: true}

- name: HTTPS with SNI on two fixed addresses, allow one failure
  agility.addressing.reach_probe:
    addresses: [198.18.0.1, "2001:db8:100::1"]
    ports: [443]
    tls: true
    host: www.example.com
    min_success: 1

- name: Which PoPs answered
  ansible.builtin.debug:
    var: reach_gate.pops
"""

RETURN = r"""
total:
  description: Number of targets (address, port, protocol) probed.
  returned: always
  type: int
  sample: 16
successes:
  description: Targets that succeeded.
  returned: always
  type: int
  sample: 16
failures:
  description: Targets that failed.
  returned: always
  type: int
  sample: 0
pops:
  description: Distinct PoP names the edge service answered with, sorted.
  returned: always
  type: list
  elements: str
  sample: [fra1]
targets:
  description: One entry per target.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: Address probed.
      type: str
    port:
      description: Port probed.
      type: int
    protocol:
      description: V(tcp) or V(udp).
      type: str
    ok:
      description: Whether the target succeeded.
      type: bool
    error:
      description: Why it failed, null on success.
      type: str
    status:
      description: HTTP status code (TCP with O(http=true)), null otherwise.
      type: int
    response:
      description: The JSON document the edge service answered, null if none.
      type: dict
    pop:
      description: PoP named in the response, null if none.
      type: str
    elapsed_ms:
      description: Milliseconds the probe took.
      type: float
  sample:
    - address: 198.18.0.77
      port: 80
      protocol: udp
      ok: true
      error: null
      status: null
      pop: fra1
      elapsed_ms: 0.6
      response: {pop: fra1, local: "198.18.0.77:80", peer: "192.0.2.10:40211", proto: udp}
"""

import random
import socket
import ssl
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agility.addressing.plugins.module_utils._wire import (
    WireError, probe_tcp, probe_udp, random_addresses,
)


def _fmt(address, port):
    return "[%s]:%d" % (address, port) if ":" in address else "%s:%d" % (address, port)


def probe(p, address, port, protocol):
    entry = {"address": address, "port": port, "protocol": protocol, "ok": False,
             "error": None, "status": None, "response": None, "pop": None, "elapsed_ms": None}
    start = time.monotonic()
    try:
        if protocol == "tcp":
            res = probe_tcp(address, port, timeout=p["timeout"], http=p["http"], host=p["host"],
                            path=p["path"], tls=p["tls"], server_name=p["server_name"],
                            validate_certs=p["validate_certs"], ca_path=p["ca_path"])
        else:
            res = probe_udp(address, port, timeout=p["timeout"], retries=p["udp_retries"])
    except socket.timeout as exc:
        entry["error"] = "timeout: %s" % (exc or "no answer in %ss" % p["timeout"])
    except (ssl.SSLError, WireError, OSError, ValueError) as exc:
        entry["error"] = "%s: %s" % (type(exc).__name__, exc)
    else:
        entry["status"] = res["status"]
        entry["response"] = res["response"]
        doc = res["response"] or {}
        entry["pop"] = doc.get("pop")
        if protocol == "tcp" and p["http"] and res["status"] != 200:
            entry["error"] = "HTTP status %s" % res["status"]
        elif (protocol == "udp" or p["http"]) and not res["response"]:
            entry["error"] = "answer is not a JSON object"
        elif p["expect_pop"] is not None and entry["pop"] != p["expect_pop"]:
            entry["error"] = "answered by pop %r, expected %r" % (entry["pop"], p["expect_pop"])
        elif (p["expect_local"] and (protocol == "udp" or p["http"])
              and doc.get("local") != _fmt(address, port)):
            entry["error"] = "edge saw local address %r, probed %s" % (doc.get("local"), _fmt(address, port))
        else:
            entry["ok"] = True
    entry["elapsed_ms"] = round((time.monotonic() - start) * 1000.0, 3)
    return entry


# options a probe set in O(probes) may give; the rest are the module's
SET_KEYS = ("prefix", "addresses", "count", "seed", "ports", "protocols", "http", "host", "path", "tls",
            "server_name")


def probe_sets(p):
    """``[(where, options)]`` to run: each O(probes) item over the module's options, or the options alone."""
    if not p["probes"]:
        return [("options", p)]
    sets = []
    for i, item in enumerate(p["probes"]):
        merged = dict(p)
        merged.update((k, v) for k, v in item.items() if k in SET_KEYS and v is not None)
        if item.get("prefix") is not None or item.get("prefixes") is not None:
            merged["addresses"] = None
        elif item.get("addresses") is not None:
            merged["prefix"] = None
        if item.get("prefixes") is not None:
            # one set per prefix, each drawing its own count of addresses
            sets.extend(("probes[%d].prefixes[%d]" % (i, j), dict(merged, prefix=prefix))
                        for j, prefix in enumerate(item["prefixes"]))
        else:
            sets.append(("probes[%d]" % i, merged))
    return sets


def addresses_of(module, p, where):
    """Check one probe set's options and draw its addresses."""
    if not p["prefix"] and not p["addresses"]:
        module.fail_json(msg="%s: needs prefix or addresses" % where)
    if not p["ports"] or any(not 0 < port < 65536 for port in p["ports"]):
        module.fail_json(msg="%s: ports must be a non-empty list of 1..65535" % where)
    if not p["protocols"]:
        module.fail_json(msg="%s: protocols must not be empty" % where)
    if p["count"] < 1:
        module.fail_json(msg="%s: count must be >= 1" % where)
    if p["path"][:1] != "/" or any(c in p["path"] for c in "\r\n "):
        module.fail_json(msg="%s: path must start with / and hold no spaces or line breaks" % where)
    if p["host"] is not None and any(c in p["host"] for c in "\r\n"):
        module.fail_json(msg="%s: host must not hold line breaks" % where)
    try:
        if p["prefix"]:
            rng = random.Random(p["seed"]) if p["seed"] is not None else None
            addresses = random_addresses(p["prefix"], p["count"], rng)
        else:
            addresses = [u"%s" % a for a in p["addresses"]]
            for a in addresses:
                socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a)
    except (ValueError, OSError) as exc:
        module.fail_json(msg="%s: bad prefix or address: %s" % (where, exc))
    if not addresses:
        module.fail_json(msg="%s: no addresses to probe" % where)
    return addresses


def main():
    module = AnsibleModule(
        argument_spec=dict(
            prefix=dict(type="str"),
            addresses=dict(type="list", elements="str"),
            probes=dict(type="list", elements="dict", options=dict(
                prefix=dict(type="str"),
                prefixes=dict(type="list", elements="str"),
                addresses=dict(type="list", elements="str"),
                count=dict(type="int"),
                seed=dict(type="int"),
                ports=dict(type="list", elements="int"),
                protocols=dict(type="list", elements="str", choices=["tcp", "udp"]),
                http=dict(type="bool"),
                host=dict(type="str"),
                path=dict(type="str"),
                tls=dict(type="bool"),
                server_name=dict(type="str"),
            )),
            count=dict(type="int", default=4),
            seed=dict(type="int"),
            ports=dict(type="list", elements="int", default=[80]),
            protocols=dict(type="list", elements="str", choices=["tcp", "udp"], default=["tcp"]),
            http=dict(type="bool", default=True),
            host=dict(type="str"),
            path=dict(type="str", default="/"),
            tls=dict(type="bool", default=False),
            server_name=dict(type="str"),
            validate_certs=dict(type="bool", default=False),
            ca_path=dict(type="path"),
            timeout=dict(type="float", default=3.0),
            udp_retries=dict(type="int", default=2),
            min_success=dict(type="int"),
            expect_pop=dict(type="str"),
            expect_local=dict(type="bool", default=False),
        ),
        required_one_of=[("prefix", "addresses", "probes")],
        mutually_exclusive=[("prefix", "addresses")],
        supports_check_mode=True,
    )
    p = module.params
    if p["probes"] is not None and not p["probes"]:
        module.fail_json(msg="probes must not be empty")
    if p["timeout"] <= 0 or p["udp_retries"] < 0:
        module.fail_json(msg="timeout must be > 0 and udp_retries >= 0")
    for i, item in enumerate(p["probes"] or []):
        if sum(item.get(k) is not None for k in ("prefix", "prefixes", "addresses")) > 1:
            module.fail_json(msg="probes[%d]: prefix, prefixes and addresses exclude each other" % i)
    planned = [(one, addresses_of(module, one, where)) for where, one in probe_sets(p)]

    targets = []
    for one, addresses in planned:
        for address in addresses:
            for port in one["ports"]:
                for protocol in one["protocols"]:
                    targets.append(probe(one, address, port, protocol))
    total = len(targets)
    successes = sum(1 for t in targets if t["ok"])
    pops = sorted(set(t["pop"] for t in targets if t["pop"] is not None))
    min_success = total if p["min_success"] is None else p["min_success"]
    result = dict(changed=False, total=total, successes=successes, failures=total - successes,
                  pops=pops, targets=targets)
    if successes < min_success:
        failed = ["%s/%s: %s" % (_fmt(t["address"], t["port"]), t["protocol"], t["error"])
                  for t in targets if not t["ok"]]
        module.fail_json(msg="%d of %d targets reached, %d required; %s"
                         % (successes, total, min_success, "; ".join(failed[:5])), **result)
    module.exit_json(msg="%d of %d targets reached (pops: %s)"
                     % (successes, total, ", ".join(pops) or "none"), **result)


if __name__ == "__main__":
    main()
