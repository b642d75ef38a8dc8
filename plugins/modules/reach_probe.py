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
      - Exactly one of O(prefix) and O(addresses) is required.
    type: str
  addresses:
    description: Explicit addresses to probe instead of random ones.
    type: list
    elements: str
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            prefix=dict(type="str"),
            addresses=dict(type="list", elements="str"),
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
        required_one_of=[("prefix", "addresses")],
        mutually_exclusive=[("prefix", "addresses")],
        supports_check_mode=True,
    )
    p = module.params
    if not p["ports"] or any(not 0 < port < 65536 for port in p["ports"]):
        module.fail_json(msg="ports must be a non-empty list of 1..65535")
    if not p["protocols"]:
        module.fail_json(msg="protocols must not be empty")
    if p["count"] < 1 or p["timeout"] <= 0 or p["udp_retries"] < 0:
        module.fail_json(msg="count must be >= 1, timeout > 0 and udp_retries >= 0")
    if p["path"][:1] != "/" or any(c in p["path"] for c in "\r\n "):
        module.fail_json(msg="path must start with / and hold no spaces or line breaks")
    if p["host"] is not None and any(c in p["host"] for c in "\r\n"):
        module.fail_json(msg="host must not hold line breaks")
    try:
        if p["prefix"]:
            rng = random.Random(p["seed"]) if p["seed"] is not None else None
            addresses = random_addresses(p["prefix"], p["count"], rng)
        else:
            addresses = [u"%s" % a for a in p["addresses"]]
            for a in addresses:
                socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a)
    except (ValueError, OSError) as exc:
        module.fail_json(msg="bad prefix or address: %s" % exc)
    if not addresses:
        module.fail_json(msg="no addresses to probe")

    targets = []
    for address in addresses:
        for port in p["ports"]:
            for protocol in p["protocols"]:
                targets.append(probe(p, address, port, protocol))
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
