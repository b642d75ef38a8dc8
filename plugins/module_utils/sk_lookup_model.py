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
import socket
import struct

LABEL_LEN = 64  # bytes of the label field in the destination map key, NUL included
PROTOCOLS = ("tcp", "udp")
# A binding's identity is its key in agility-lookup's hash map (bpf/dispatcher.bpf.c, struct
# bind_key): IP protocol number, length in the 128-bit space, port in network order, address.
_HASH_KEY = struct.Struct("=BBH16s")
_IPPROTO = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
_PROTOCOL_OF = {v: k for k, v in _IPPROTO.items()}
# fullmatch: "$" would also match before a trailing newline ("web\n").
LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class Error(Exception):
    """A refused input or operation; agility-lookup prints it as one line."""


_GOOD_LABELS = set()  # labels already checked: a set of 100,000 bindings has a handful


def check_label(label):
    if isinstance(label, str) and label in _GOOD_LABELS:
        return label
    if not isinstance(label, str) or not LABEL_RE.fullmatch(label) or len(label.encode()) >= LABEL_LEN:
        raise Error("invalid label %r: use 1-%d characters from [A-Za-z0-9._-]" % (label, LABEL_LEN - 1))
    if len(_GOOD_LABELS) < 4096:
        _GOOD_LABELS.add(label)
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


# ---- the common 128-bit address space -------------------------------------------------------
# agility-lookup keys every binding by its address in one 128-bit space (an IPv4 prefix as its
# IPv4-mapped form, ::ffff:a.b.c.d, 96 bits longer), exactly as the BPF program's hash key holds it.
# A Binding keeps that form and builds its ipaddress network only when asked: at 100,000 bindings,
# building, hashing and comparing ipaddress objects was most of a load-bindings.
_MAPPED_HEAD = b"\0" * 10 + b"\xff\xff"
_MAPPED_INT = 0xFFFF << 32
_PLEN = {str(n): n for n in range(129)}  # canonical prefix lengths (no sign, no leading zero)
_V6_CHARS = frozenset("0123456789abcdefABCDEF:.")


def v6_space(network):
    """(version, 16 address bytes, length in the 128-bit space) of an ipaddress network."""
    if network.version == 4:
        return 4, _MAPPED_HEAD + network.network_address.packed, 96 + network.prefixlen
    return 6, network.network_address.packed, network.prefixlen


def network_of(addr16, bits):
    """The ipaddress network of a 128-bit-space address and length (v4-mapped: the IPv4 one)."""
    n = int.from_bytes(addr16, "big")
    if bits >= 96 and n >> 32 == 0xFFFF:  # ::ffff:a.b.c.d
        return ipaddress.IPv4Network((n & 0xFFFFFFFF, bits - 96))
    return ipaddress.IPv6Network((n, bits))


def _fast_v6_space(text):
    """parse_prefix's answer in the 128-bit space for the plain forms it accepts, or None.

    Only plain input is taken (dotted quads, hex IPv6, a canonical length), read by inet_pton
    (which, like ipaddress, refuses leading zeros in a quad); whatever this declines, or finds
    wrong (host bits, the IPv4-mapped range), goes to parse_prefix, which is the rule and words the
    error. A differential fuzz test keeps the two in step
    (tests/unit/plugins/module_utils/test_sk_lookup_model_fast.py).
    """
    addr, _sep, plen = text.partition("/")
    plen = _PLEN.get(plen)
    if plen is None:
        return None
    if ":" not in addr:
        if plen > 32:
            return None
        try:
            quad = socket.inet_pton(socket.AF_INET, addr)
        except OSError:
            return None
        if int.from_bytes(quad, "big") & ((1 << (32 - plen)) - 1):
            return None
        return 4, _MAPPED_HEAD + quad, 96 + plen
    if not _V6_CHARS.issuperset(addr):
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET6, addr)
    except OSError:
        return None
    n = int.from_bytes(packed, "big")
    if n & ((1 << (128 - plen)) - 1):
        return None
    common = min(plen, 96)
    if n >> (128 - common) == _MAPPED_INT >> (128 - common):  # overlaps ::ffff:0:0/96 (or is ::/0)
        return None
    return 6, packed, plen


def parse_v6_space(text):
    """(version, 16 address bytes, length in the 128-bit space) of a prefix; Error if invalid."""
    text = str(text)
    got = _fast_v6_space(text)
    return got if got is not None else v6_space(parse_prefix(text))


def prefix_text(version, addr16, bits):
    """str() of the network, without building it for the common forms."""
    if version == 4:
        return "%d.%d.%d.%d/%d" % (tuple(addr16[12:]) + (bits - 96,))
    if addr16[:10] != b"\0" * 10:  # inet_ntop writes ::a.b.c.d forms where ipaddress writes hex
        return "%s/%d" % (socket.inet_ntop(socket.AF_INET6, addr16), bits)
    return str(network_of(addr16, bits))


def parse_protocol(text):
    if text in PROTOCOLS:  # a tuple: compares, so any type (a set would need it hashable)
        return text
    p = str(text).lower()
    if p not in PROTOCOLS:
        raise Error("invalid protocol %r: use tcp or udp" % (text,))
    return p


def parse_port(value):
    """An integer 0-65535, or a string of decimal digits; never a float (80.7 is not 80)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Error("invalid port %r: an integer 0-65535 (0 = any port)" % (value,))
    port = value
    if not 0 <= port <= 65535:
        raise Error("invalid port %r: 0-65535 (0 = any port)" % (value,))
    return port


class Binding(object):
    """One binding. ``prefix`` is the ipaddress network (built on first use); ``version``,
    ``addr16`` and ``bits`` are its place in the common 128-bit space (the BPF key's form)."""

    __slots__ = ("protocol", "version", "addr16", "bits", "port", "label", "key", "_prefix")

    def __init__(self, protocol, prefix, port, label):
        self.protocol = parse_protocol(protocol)
        if isinstance(prefix, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            self.version, self.addr16, self.bits = v6_space(prefix)
            self._prefix = prefix
        else:
            self.version, self.addr16, self.bits = parse_v6_space(prefix)
            self._prefix = None
        self.port = parse_port(port)
        self.label = check_label(label)
        self.key = _HASH_KEY.pack(_IPPROTO[self.protocol], self.bits, socket.htons(self.port), self.addr16)

    @classmethod
    def from_key(cls, key, label):
        """The binding an agility-lookup hash key (``key``, bytes) holds, with its label."""
        proto, bits, port_be, addr16 = _HASH_KEY.unpack(key)
        b = cls.__new__(cls)
        b.protocol = _PROTOCOL_OF.get(proto) or parse_protocol(proto)
        b.version = 4 if bits >= 96 and addr16[:12] == _MAPPED_HEAD else 6
        b.addr16, b.bits, b._prefix = addr16, bits, None
        b.port = socket.ntohs(port_be)
        b.label = check_label(label)
        b.key = key
        return b

    @property
    def prefix(self):
        if self._prefix is None:
            self._prefix = network_of(self.addr16, self.bits)
        return self._prefix

    @property
    def prefix_text(self):
        return prefix_text(self.version, self.addr16, self.bits) if self._prefix is None else str(self._prefix)

    def specificity(self):
        """Larger is more specific: longer prefix, then exact port over any port."""
        return (self.bits, 1 if self.port else 0)

    def as_dict(self):
        return {"protocol": self.protocol, "prefix": self.prefix_text,
                "port": self.port, "label": self.label}

    def __eq__(self, other):
        return isinstance(other, Binding) and self.key == other.key and self.label == other.label

    def __hash__(self):
        return hash((self.key, self.label))

    def __repr__(self):
        return "Binding(%s %s port %d -> %s)" % (self.protocol, self.prefix_text, self.port, self.label)

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


def parse_set(items, sort=True):
    """Validate a whole binding list; duplicate keys are an error. Sorted by sort_key unless
    ``sort`` is false (in the list's order)."""
    if not isinstance(items, list):
        raise Error("bindings must be a list")
    out = {}
    for item in items:
        b = Binding.from_dict(item)
        if b.key in out and out[b.key].label != b.label:
            raise Error("conflicting bindings for %s %s port %d" % (b.protocol, b.prefix_text, b.port))
        out[b.key] = b
    return sorted(out.values(), key=sort_key) if sort else list(out.values())


# Sort keys are bytes: one memcmp per comparison sorts 100,000 bindings in half the time of tuples.
_SORT_KEY = struct.Struct(">B3s16sBH")
_SPECIFIC_KEY = struct.Struct(">BBB3s16sBH")


def sort_key(b):
    """By version, protocol, network address, length, port, then label (labels are ASCII)."""
    return _SORT_KEY.pack(b.version, b.protocol.encode(), b.addr16, b.bits, b.port) + b.label.encode()


def _specific_first(b):
    """Longer prefix, then exact port over any port, then sort_key (sorted in reverse)."""
    return _SPECIFIC_KEY.pack(b.bits, b.port != 0, b.version, b.protocol.encode(), b.addr16, b.bits,
                              b.port) + b.label.encode()


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
    puts.sort(key=_specific_first, reverse=True)
    dels.sort(key=_specific_first)
    return [("put", b) for b in puts] + [("delete", b) for b in dels]
