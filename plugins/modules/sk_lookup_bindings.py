#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: sk_lookup_bindings
short_description: Declare the BPF sk_lookup binding set of a host's network namespace
version_added: 0.1.0
author: Agility Addressing Maintainers (@agility-addressing)
description:
  - Makes the bindings of the agility.addressing sk_lookup dispatcher equal a declared set. A binding
    maps (protocol, prefix, port) to a label; port C(0) means any port. Sockets registered under the
    label (with C(agility-lookup register)) receive the traffic; see docs/sk-lookup.md.
  - Runs the C(agility-lookup) command of the host runtime with JSON output rather than importing the
    runtime, which lives in its own virtualenv on the host.
  - The whole set is replaced in one C(agility-lookup load-bindings) call, which orders the changes so
    that traffic is never misdirected mid-change (most specific additions first, least specific
    removals last) and rolls back if the kernel refuses a step.
  - Loads and attaches the dispatcher first if it is not loaded (see O(load)).
  - Idempotent; supports check mode and diff.
extends_documentation_fragment:
  - agility.addressing.attributes
  - agility.addressing.attributes.platform
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
requirements:
  - Linux with BPF sk_lookup (5.9 or later) and a bpffs mount.
  - The agility-runtime package on the host (provides C(agility-lookup)), run as root.
options:
  bindings:
    description:
      - The bindings. With O(state=present) this is the complete set; bindings on the host that are not
        listed are removed. With O(state=absent) the listed bindings are removed (labels are ignored);
        an empty list removes every binding.
      - IPv4 prefixes are given as IPv4. IPv6 prefixes that overlap the IPv4-mapped range
        C(::ffff:0:0/96) (including C(::/0)) are refused.
    type: list
    elements: dict
    default: []
    suboptions:
      protocol:
        description: Transport protocol.
        type: str
        choices: [tcp, udp]
        required: true
      prefix:
        description: Destination prefix, without host bits set, e.g. C(198.18.0.0/20) or C(2001:db8:1::/48).
        type: str
        required: true
      port:
        description: Destination port; C(0) matches any port. An exact port wins over C(0) for the same prefix length.
        type: int
        default: 0
      label:
        description: Label of the destination socket(s); 1-63 characters from C([A-Za-z0-9._-]).
        type: str
        required: true
  state:
    description: Whether O(bindings) is the set to have (V(present)) or bindings to remove (V(absent)).
    type: str
    choices: [present, absent]
    default: present
  executable:
    description: Path of the C(agility-lookup) command on the host.
    type: path
    default: agility-lookup
  load:
    description: Load and attach the dispatcher first if it is not loaded in the namespace.
    type: bool
    default: true
  group:
    description: Group given read access to the pinned maps when the dispatcher is loaded (for metrics).
    type: str
  bpffs:
    description: bpffs mount holding the state (the command's default is C(/sys/fs/bpf)).
    type: path
  netns:
    description: Network namespace file to act in, e.g. C(/run/netns/edge). Default is the namespace of the module.
    type: path
notes:
  - Registering sockets is a service's business (C(agility-lookup register LABEL) from its systemd socket
    unit), not this module's. A binding whose label has no socket drops its traffic and counts it.
seealso:
  - name: docs/sk-lookup.md
    description: Model, map layout, replacement ordering and the CLI reference.
    link: https://github.com/agility-addressing/addressing/blob/main/docs/sk-lookup.md
"""

EXAMPLES = r"""
- name: Serve a /20 and a /48 on web ports, and DNS on port 53, from a few sockets
  agility.addressing.sk_lookup_bindings:
    executable: /opt/agility/venv/bin/agility-lookup
    group: agility-metrics
    bindings:
      - {protocol: tcp, prefix: 198.18.0.0/20, port: 80, label: edge-http}
      - {protocol: tcp, prefix: 198.18.0.0/20, port: 443, label: edge-https}
      - {protocol: udp, prefix: 198.18.0.0/20, port: 443, label: edge-quic}
      - {protocol: tcp, prefix: "2001:db8:1::/48", port: 443, label: edge-https}
      - {protocol: udp, prefix: 198.18.0.0/20, port: 53, label: dns}

- name: Stop dispatching one prefix, leave the others
  agility.addressing.sk_lookup_bindings:
    state: absent
    bindings:
      - {protocol: udp, prefix: 198.18.0.0/20, port: 53, label: dns}

- name: Remove every binding (the program stays loaded)
  agility.addressing.sk_lookup_bindings:
    state: absent
    bindings: []
"""

RETURN = r"""
bindings:
  description: The binding set after the run (in check mode, the set that would result).
  returned: success
  type: list
  elements: dict
  sample: [{"protocol": "tcp", "prefix": "198.18.0.0/20", "port": 443, "label": "edge-https"}]
steps:
  description: Ordered changes applied (or that would be applied); C(op) is C(put) or C(delete).
  returned: success
  type: list
  elements: dict
  sample: [{"op": "put", "protocol": "tcp", "prefix": "198.18.0.0/20", "port": 443, "label": "edge-https"}]
loaded:
  description: Whether the dispatcher was loaded by this run (or would be, in check mode).
  returned: success
  type: bool
  sample: false
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agility.addressing.plugins.module_utils.sk_lookup_model import (
    Binding, Error, plan, sort_key)


def normalize(item):
    """Validate one binding (the rules of agility-lookup itself); return (Binding, error string or None)."""
    try:
        return Binding.from_dict(dict(item, port=0 if item.get("port") is None else item.get("port"))), None
    except Error as e:
        return None, str(e)


def from_host(items):
    """Bindings as agility-lookup printed them."""
    return [Binding.from_dict(d) for d in items]


def canonical(bindings):
    return sorted(bindings, key=sort_key)


def as_dicts(bindings):
    return [b.as_dict() for b in canonical(bindings)]


def render(bindings):
    return "".join("%s %s port %s -> %s\n" % (b.protocol, b.prefix, b.port or "any", b.label)
                   for b in canonical(bindings))


class Lookup(object):
    """Runs agility-lookup on the host."""

    def __init__(self, module):
        self.module = module
        exe = module.params["executable"]
        if os.sep not in exe:
            exe = module.get_bin_path(exe, required=True)
        self.base = [exe]
        if module.params["bpffs"]:
            self.base += ["--bpffs", module.params["bpffs"]]
        if module.params["netns"]:
            self.base += ["--netns", module.params["netns"]]

    def run(self, *args):
        rc, out, err = self.module.run_command(self.base + list(args))
        return rc, out, (err or "").strip()

    def json(self, *args):
        rc, out, err = self.run(*args)
        if rc != 0:
            self.module.fail_json(msg="agility-lookup %s failed: %s" % (args[0], err or "exit %d" % rc),
                                  rc=rc, stderr=err)
        try:
            return json.loads(out)
        except ValueError:
            self.module.fail_json(msg="agility-lookup %s printed no JSON" % args[0], stdout=out)

    def current(self):
        """(loaded, bindings)."""
        rc, out, err = self.run("bindings", "--json")
        if rc != 0:
            if "not loaded" in err:
                return False, []
            self.module.fail_json(msg="agility-lookup bindings failed: %s" % (err or "exit %d" % rc),
                                  rc=rc, stderr=err)
        try:
            return True, json.loads(out)["bindings"]
        except (ValueError, KeyError, TypeError):
            self.module.fail_json(msg="agility-lookup bindings printed no JSON", stdout=out)


def plan_steps(current, desired):
    """The steps agility-lookup load-bindings will take (the shared ordering rule)."""
    return [dict(b.as_dict(), op=op) for op, b in plan(current, desired)]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bindings=dict(type="list", elements="dict", default=[], options=dict(
                protocol=dict(type="str", required=True, choices=["tcp", "udp"]),
                prefix=dict(type="str", required=True),
                port=dict(type="int", default=0),
                label=dict(type="str", required=True),
            )),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            executable=dict(type="path", default="agility-lookup"),
            load=dict(type="bool", default=True),
            group=dict(type="str"),
            bpffs=dict(type="path"),
            netns=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    wanted, errors, seen = [], [], {}
    for i, item in enumerate(p["bindings"]):
        b, err = normalize(item)
        if err:
            errors.append("bindings[%d]: %s" % (i, err))
            continue
        if p["state"] == "present" and b.key in seen and seen[b.key] != b.label:
            errors.append("bindings[%d]: %s %s port %d is already bound to %s"
                          % (i, b.protocol, b.prefix, b.port, seen[b.key]))
            continue
        seen[b.key] = b.label
        wanted.append(b)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)

    lookup = Lookup(module)
    loaded, current = lookup.current()
    try:
        current = canonical(from_host(current))
    except Error as e:
        module.fail_json(msg="agility-lookup bindings printed a binding it should not have: %s" % e)
    if p["state"] == "present":
        desired = canonical(dict((b.key, b) for b in wanted).values())
    elif wanted:
        drop = set(b.key for b in wanted)
        desired = [b for b in current if b.key not in drop]
    else:
        desired = []

    if not loaded and not p["load"]:
        module.fail_json(msg="the sk_lookup dispatcher is not loaded in this namespace and load=false")
    must_load = not loaded and (p["state"] == "present" or bool(desired))
    steps = plan_steps(current, desired)
    changed = bool(steps) or must_load
    result = dict(changed=changed, bindings=as_dicts(desired), steps=steps, loaded=must_load)
    if module._diff:
        result["diff"] = dict(before=render(current), after=render(desired),
                              before_header="sk_lookup bindings", after_header="sk_lookup bindings")
    if module.check_mode or not changed:
        module.exit_json(**result)

    if must_load:
        args = ["load", "--json"]
        if p["group"]:
            args += ["--group", p["group"]]
        lookup.json(*args)
    if steps:
        fd, path = tempfile.mkstemp(prefix="agility-bindings-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"bindings": as_dicts(desired)}, f)
            applied = lookup.json("load-bindings", path, "--json")
        finally:
            os.unlink(path)
        result["steps"] = applied.get("steps", steps)
        try:
            result["bindings"] = as_dicts(from_host(applied.get("after", as_dicts(desired))))
        except Error as e:
            module.fail_json(msg="agility-lookup load-bindings printed a binding it should not have: %s" % e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
