#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: local_routes
short_description: Route whole prefixes locally (AnyIP) so any address in them reaches local sockets
version_added: 0.1.0
author: Agility Addressing Maintainers (@agility-addressing)
description:
  - Declares the set of prefixes routed locally on the host with C(ip route add local PREFIX dev lo)
    (IPv4 and IPv6). Packets to any address of such a prefix are delivered locally, where BPF sk_lookup
    steers them to a socket. Without the route they never reach the socket lookup.
  - The module remembers in O(state_file) which routes it added. With O(state=present) it adds the
    missing ones and removes only routes it added earlier that are no longer listed; routes added by
    anyone else are never touched.
  - Routes belong to a network namespace, and so does the record. In the host's namespace it is
    O(state_file); run inside a named namespace (for example under C(ip netns exec pop1)) the module
    keeps it in a file of that namespace's own beside it (C(local-routes.pop1.json)), so a run in one
    namespace never forgets or removes what it added in another.
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
    platforms: linux
options:
  prefixes:
    description:
      - Prefixes to route locally, without host bits. With O(state=present) this is the complete set
        this module manages.
    type: list
    elements: str
    default: []
  state:
    description:
      - V(present) makes the managed set equal O(prefixes); V(absent) removes the listed prefixes if this
        module added them (an empty list removes all it added).
    type: str
    choices: [present, absent]
    default: present
  device:
    description: Device the local routes point at.
    type: str
    default: lo
  state_file:
    description:
      - Where the module records the routes it added in the host's network namespace.
      - In a named namespace (C(/run/netns/NAME)) the name gets C(.NAME) inserted before the extension.
    type: path
    default: /var/lib/agility/local-routes.json
notes:
  - Requires C(ip) from iproute2 and CAP_NET_ADMIN (run as root).
"""

EXAMPLES = r"""
- name: Route the announced pools locally
  agility.addressing.local_routes:
    prefixes:
      - 198.18.16.0/20
      - 2001:db8:100::/44

- name: Remove every route this module added
  agility.addressing.local_routes:
    state: absent
"""

RETURN = r"""
routes:
  description: The prefixes this module manages after the run.
  returned: always
  type: list
  elements: str
  sample: ["198.18.16.0/20", "2001:db8:100::/44"]
added:
  description: Prefixes added (or that would be, in check mode).
  returned: always
  type: list
  elements: str
removed:
  description: Prefixes removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
netns:
  description:
    - Name under C(/run/netns) of the network namespace the module ran in; null in an unnamed one (the
      host's).
  returned: always
  type: str
  sample: pop1
state_file:
  description: The record used for this namespace.
  returned: always
  type: str
  sample: /var/lib/agility/local-routes.pop1.json
"""

import ipaddress
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native


def _parse(module, prefixes):
    nets = []
    for text in prefixes:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            module.fail_json(msg="prefixes: %r is not a prefix without host bits (%s)" % (text, to_native(exc)))
        if net.version == 6 and net.subnet_of(ipaddress.ip_network("::ffff:0:0/96")):
            module.fail_json(msg="prefixes: %s is a v4-mapped IPv6 prefix; route the IPv4 prefix itself" % net)
        nets.append(net)
    return sorted(set(nets), key=lambda n: (n.version, n))


def _installed(module, device):
    """Local routes on ``device`` as a set of networks."""
    found = set()
    for family in ("-4", "-6"):
        rc, out, err = module.run_command(["ip", "-j", family, "route", "show", "table", "local",
                                           "type", "local", "dev", device])
        if rc != 0:
            module.fail_json(msg="cannot list local routes: %s" % err.strip())
        for route in json.loads(out or "[]"):
            dst = route.get("dst")
            if not dst or dst == "default":
                continue
            try:
                found.add(ipaddress.ip_network(dst if "/" in dst else dst + ("/32" if family == "-4" else "/128")))
            except ValueError:
                continue
    return found


def _netns_name():
    """The name under /run/netns of the network namespace this runs in (what ``ip netns
    identify`` prints), or None: the host's namespace, or a container's own, is unnamed."""
    try:
        mine = os.stat("/proc/self/ns/net").st_ino
        names = sorted(os.listdir("/run/netns"))
    except OSError:
        return None
    for name in names:
        try:
            if os.stat(os.path.join("/run/netns", name)).st_ino == mine:
                return name
        except OSError:
            continue
    return None


def _state_path(state_file, netns):
    if netns is None:
        return state_file
    base, ext = os.path.splitext(state_file)
    return "%s.%s%s" % (base, netns, ext)


def _load_state(module, path):
    try:
        with open(path) as handle:
            return set(ipaddress.ip_network(p) for p in json.load(handle).get("routes", []))
    except (IOError, OSError):
        return set()
    except ValueError as exc:
        module.fail_json(msg="state file %s is corrupt (%s); fix or remove it" % (path, to_native(exc)))


def _save_state(module, path, nets):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump({"routes": [str(n) for n in sorted(nets, key=lambda n: (n.version, n))]}, handle, indent=2)
    module.atomic_move(tmp, path)


def _ip(module, action, net, device):
    family = "-4" if net.version == 4 else "-6"
    rc, _out, err = module.run_command(["ip", family, "route", action, "local", str(net), "dev", device,
                                        "table", "local"])
    if rc != 0:
        module.fail_json(msg="ip route %s local %s dev %s failed: %s" % (action, net, device, err.strip()))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            prefixes=dict(type="list", elements="str", default=[]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            device=dict(type="str", default="lo"),
            state_file=dict(type="path", default="/var/lib/agility/local-routes.json"),
        ),
        supports_check_mode=True,
    )
    device = module.params["device"]
    wanted = set(_parse(module, module.params["prefixes"]))
    netns = _netns_name()
    state_file = _state_path(module.params["state_file"], netns)
    ours = _load_state(module, state_file)
    installed = _installed(module, device)

    if module.params["state"] == "present":
        to_add = sorted((n for n in wanted if n not in installed), key=lambda n: (n.version, n))
        to_remove = sorted((n for n in ours - wanted if n in installed), key=lambda n: (n.version, n))
        # routes someone else added stay theirs: never recorded, never removed
        managed = (ours & wanted) | set(to_add)
    else:
        targets = wanted if wanted else ours
        to_add = []
        to_remove = sorted((n for n in targets & ours if n in installed), key=lambda n: (n.version, n))
        managed = ours - targets

    changed = bool(to_add or to_remove) or managed != ours
    result = dict(changed=changed, routes=[str(n) for n in sorted(managed, key=lambda n: (n.version, n))],
                  added=[str(n) for n in to_add], removed=[str(n) for n in to_remove],
                  netns=netns, state_file=state_file)
    if module._diff:
        before = sorted(str(n) for n in ours & installed)
        after = sorted(str(n) for n in managed)
        result["diff"] = dict(before="\n".join(before) + "\n", after="\n".join(after) + "\n",
                              before_header="local routes (managed)", after_header="local routes (managed)")
    if changed and not module.check_mode:
        # add before remove: a prefix moving from a /20 to a /24 inside it stays routed throughout
        for net in to_add:
            _ip(module, "replace", net, device)
        for net in to_remove:
            _ip(module, "del", net, device)
        _save_state(module, state_file, managed)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
