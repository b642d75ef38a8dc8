# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sk_lookup bindings: (protocol, prefix, port) -> label; validation and replacement order.

One home, used on both sides like policy.py: the sk_lookup_bindings module
imports it as module_utils, and the host runtime ships the very same file as
``agility_runtime.sklookup_model`` (agility-lookup). Standard library only,
Python 3.9 compatible. The IPv4-mapped prefix rule is policy.parse_prefix's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

LABEL_LEN = 64  # bytes of the label field in the destination map key, NUL included
PROTOCOLS = ("tcp", "udp")
# fullmatch: "$" would also match before a trailing newline ("web\n").
LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class Error(Exception):
    """A refused input or operation; agility-lookup prints it as one line."""


def check_label(label):
    if not isinstance(label, str) or not LABEL_RE.fullmatch(label) or len(label.encode()) >= LABEL_LEN:
        raise Error("invalid label %r: use 1-%d characters from [A-Za-z0-9._-]" % (label, LABEL_LEN - 1))
    return label


_POLICY_PREFIX = []  # policy.parse_prefix, imported on first use (see parse_prefix)


def parse_prefix(text):
    # policy.py is imported on the first prefix to parse, not with this module: commands that
    # only read the maps (metrics, status) never parse one, and importing the policy model costs
    # most of a second on a small emulated host
    if not _POLICY_PREFIX:
        from .policy import parse_prefix as policy_prefix
        _POLICY_PREFIX.append(policy_prefix)
    try:
        return _POLICY_PREFIX[0](str(text))
    except ValueError as e:
        raise Error("invalid prefix: %s" % e)


def parse_protocol(text):
    p = str(text).lower()
    if p not in PROTOCOLS:
        raise Error("invalid protocol %r: use tcp or udp" % (text,))
    return p


def parse_port(value):
    """An integer 0-65535, or a string of decimal digits; never a float (80.7 is not 80)."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Error("invalid port %r: an integer 0-65535 (0 = any port)" % (value,))
    port = value
    if not 0 <= port <= 65535:
        raise Error("invalid port %r: 0-65535 (0 = any port)" % (value,))
    return port


class Binding(object):
    __slots__ = ("protocol", "prefix", "port", "label")

    def __init__(self, protocol, prefix, port, label):
        self.protocol = parse_protocol(protocol)
        self.prefix = prefix if isinstance(prefix, (ipaddress.IPv4Network, ipaddress.IPv6Network)) \
            else parse_prefix(prefix)
        self.port = parse_port(port)
        self.label = check_label(label)

    @property
    def key(self):
        return (self.protocol, self.prefix, self.port)

    @property
    def bits(self):
        """Address prefix length in the common 128-bit space."""
        return self.prefix.prefixlen + (96 if self.prefix.version == 4 else 0)

    def specificity(self):
        """Larger is more specific: longer prefix, then exact port over any port."""
        return (self.bits, 1 if self.port else 0)

    def as_dict(self):
        return {"protocol": self.protocol, "prefix": str(self.prefix),
                "port": self.port, "label": self.label}

    def __eq__(self, other):
        return isinstance(other, Binding) and self.key == other.key and self.label == other.label

    def __hash__(self):
        return hash((self.key, self.label))

    def __repr__(self):
        return "Binding(%s %s port %d -> %s)" % (self.protocol, self.prefix, self.port, self.label)

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict):
            raise Error("binding must be an object, got %r" % (d,))
        unknown = set(d) - {"protocol", "prefix", "port", "label"}
        if unknown:
            raise Error("binding has unknown keys: %s" % ", ".join(sorted(unknown)))
        missing = {"protocol", "prefix", "label"} - set(d)
        if missing:
            raise Error("binding lacks: %s" % ", ".join(sorted(missing)))
        return cls(d["protocol"], d["prefix"], d.get("port", 0), d["label"])


def parse_set(items):
    """Validate a whole binding list; duplicate keys are an error."""
    if not isinstance(items, list):
        raise Error("bindings must be a list")
    out = {}
    for item in items:
        b = Binding.from_dict(item)
        if b.key in out and out[b.key].label != b.label:
            raise Error("conflicting bindings for %s %s port %d" % b.key)
        out[b.key] = b
    return sorted(out.values(), key=sort_key)


def sort_key(b):
    return (b.prefix.version, b.protocol, b.prefix.network_address.packed, b.prefix.prefixlen, b.port, b.label)


def plan(current, desired):
    """Ordered steps turning ``current`` into ``desired`` without misdirecting.

    Adds and label changes go first, most specific first, so a new narrow
    binding exists before a wider one could catch its traffic. Removals go
    last, least specific first, so a narrow binding that is going away keeps
    its traffic until the wider ones around it are gone too.
    Returns a list of ("put", Binding) / ("delete", Binding).
    """
    cur = {b.key: b for b in current}
    want = {b.key: b for b in desired}
    puts = [b for k, b in want.items() if k not in cur or cur[k].label != b.label]
    dels = [b for k, b in cur.items() if k not in want]
    puts.sort(key=lambda b: (b.specificity(), sort_key(b)), reverse=True)
    dels.sort(key=lambda b: (b.specificity(), sort_key(b)))
    return [("put", b) for b in puts] + [("delete", b) for b in dels]
