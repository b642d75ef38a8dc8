# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of agility.addressing: thin wrappers over the policy model.

The arithmetic lives in module_utils/policy.py (standard library, shared
with the hosts).  netaddr is used here, on the controller only, to accept
what users already pass around (netaddr objects, prefixes with host bits)
and to say clearly when it is missing.  The documentation of each filter is
the YAML file of the same name beside this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.agility.addressing.plugins.module_utils.policy import (
    PolicyError, address_index as _address_index, bindings_for as _bindings_for, document_prefixes as _document_prefixes,
    partition_slices as _partition_slices, pop_address as _pop_address, stage_prefix as _stage_prefix,
)
from ansible_collections.agility.addressing.plugins.module_utils.pop_policy import (
    build_pop_policy, describe,
)
from ansible_collections.agility.addressing.plugins.module_utils import load_stats

try:
    import netaddr
    HAS_NETADDR = True
except ImportError:
    HAS_NETADDR = False


def _need_netaddr(name):
    if not HAS_NETADDR:
        raise AnsibleFilterError("%s requires the Python library netaddr on the controller "
                                 "(pip install netaddr)" % name)


def _prefix_text(name, value):
    """A canonical strict prefix string from a string or a netaddr object."""
    _need_netaddr(name)
    try:
        net = netaddr.IPNetwork(str(value))
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise AnsibleFilterError("%s: %r is not a prefix (%s)" % (name, value, exc))
    if net.ip != net.network:
        raise AnsibleFilterError("%s: %s has host bits set; did you mean %s?" % (name, value, net.cidr))
    return str(net.cidr)


def stage_prefix(announced, length, index=0):
    """The prefix of ``length`` used at a stage inside ``announced``."""
    text = _prefix_text("stage_prefix", announced)
    if isinstance(length, str):
        length = length.lstrip("/")
    try:
        return str(_stage_prefix(text, int(length), int(index)))
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("stage_prefix: %s" % exc)


def pop_address(prefix, pop_index, offset=0):
    """The address PoP ``pop_index`` answers with under the per_pop strategy."""
    text = _prefix_text("pop_address", prefix)
    try:
        return str(_pop_address(text, int(pop_index), int(offset)))
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("pop_address: %s" % exc)


def address_index(address, prefix):
    """The offset of ``address`` inside ``prefix``: the inverse of pop_address."""
    text = _prefix_text("address_index", prefix)
    try:
        return _address_index(text, str(address))
    except ValueError as exc:
        raise AnsibleFilterError("address_index: %s" % exc)


def partition_slices(services, slices):
    """Split services into ``slices`` disjoint slices covering them all."""
    if isinstance(services, str) or not hasattr(services, "__iter__"):
        raise AnsibleFilterError("partition_slices: expected a list of hostnames, got %r" % (services,))
    try:
        return _partition_slices(list(services), int(slices))
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("partition_slices: %s" % exc)


def bisect_round(services, k, hits, slice_addresses, old_address, ratio=0.5, min_hits=20):
    """One DoS-bisection round: which address the attack followed, and what to split next."""
    if isinstance(services, str) or not hasattr(services, "__iter__"):
        raise AnsibleFilterError("bisect_round: expected a list of hostnames, got %r" % (services,))
    if not isinstance(hits, dict):
        raise AnsibleFilterError("bisect_round: hits must map addresses to counts, got %r" % (hits,))
    try:
        return load_stats.bisect_round(list(services), int(k), hits, [str(a) for a in slice_addresses],
                                       str(old_address), ratio=float(ratio), min_hits=int(min_hits))
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("bisect_round: %s" % exc)


def pop_policy(pools, pop, index=None, policies=None, zones=None, default_policy=None,
               stages=None, revision=None, host=None, pool_overrides=None):
    """The validated policy document of one PoP, from inventory variables."""
    try:
        return build_pop_policy(pools, pop, index=index, policies=policies, zones=zones,
                                default_policy=default_policy, stages=stages, revision=revision,
                                pool_overrides=pool_overrides)
    except PolicyError as exc:
        raise AnsibleFilterError(describe(host or pop, exc))


def policy_prefixes(docs, which="used"):
    """Distinct used (or announced) prefixes of one or more policy documents."""
    if isinstance(docs, dict):
        docs = [docs]
    try:
        return _document_prefixes(list(docs), which)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("policy_prefixes: not a list of policy documents (%s)" % exc)


def sk_lookup_bindings(prefixes, tcp_ports=None, udp_ports=None):
    """Bindings for the sk_lookup_bindings module: every prefix on every port."""
    try:
        return _bindings_for([_prefix_text("sk_lookup_bindings", p) for p in prefixes], tcp_ports, udp_ports)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("sk_lookup_bindings: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "stage_prefix": stage_prefix,
            "pop_address": pop_address,
            "address_index": address_index,
            "partition_slices": partition_slices,
            "bisect_round": bisect_round,
            "pop_policy": pop_policy,
            "policy_prefixes": policy_prefixes,
            "sk_lookup_bindings": sk_lookup_bindings,
        }
