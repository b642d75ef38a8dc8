# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy model of agility.addressing: one home, used on both sides.

This file is the contract between the controller (filters, modules) and the
hosts (the DNS responder).  The controller imports it as module_utils; the
host runtime ships the very same file as ``agility_runtime.policy``.  It must
therefore stay standard-library only and Python 3.9 compatible.

It provides:

* ``validate(doc)`` -> list of ``(field, message)`` problems, empty when good;
* ``compile_policy(doc)`` -> ``CompiledPolicy`` with the matching and address
  selection the responder runs per query (raises ``PolicyError``);
* the address arithmetic the filters and the responder share
  (``stage_prefix``, ``pop_address``, ``partition_slices``, ...);
* ``dumps(doc)`` the canonical JSON text of a policy file, and ``loads(raw)``
  which reads one (nesting depth capped before ``json.loads``).

Whatever the input, ``validate`` returns problems and ``loads``/``check``/
``compile_policy`` raise ``PolicyError`` and nothing else (fuzzed in
tests/unit/plugins/module_utils/test_policy_fuzz.py).

See docs/policy-format.md for the format itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import functools
import ipaddress
import json
import random
import re

FORMAT = "agility.addressing/policy"
VERSION = 1

STRATEGIES = ("random", "single", "per_pop", "partition")
POLICY_QTYPES = ("A", "AAAA")
FAMILIES = ("ipv4", "ipv6")
FAMILY_VERSION = {"ipv4": 4, "ipv6": 6}
TTL_MIN = 1
TTL_MAX = 86400
STATIC_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "DS", "TXT", "SRV", "CAA", "PTR", "HTTPS", "SVCB")
MATCH_KEYS = ("pops", "account_types", "qtypes", "zones", "client_subnets", "local_addresses")
POLICY_KEYS = ("name", "match", "pool", "ttl", "strategy", "secondary_pool", "offset", "slices")
POOL_FAMILY_KEYS = ("announced", "used")
ZONE_KEYS = ("account_type", "soa", "ns", "records", "hostnames")
SOA_KEYS = ("mname", "rname", "serial", "refresh", "retry", "expire", "minimum", "ttl")
RECORD_KEYS = ("name", "type", "ttl", "data")
TOP_KEYS = ("format", "version", "pop", "pools", "policies", "default_policy", "zones", "revision")
AUTO_SERIAL = "auto"  # soa.serial: derived from content and time, always increasing (resolve_serials)
# A policy file nests 5 deep (policies[].match.client_subnets[]); refusing deeper input
# before json.loads keeps its recursion (and ours) far from Python's limit.
MAX_JSON_DEPTH = 32
# Random host bits of answers: the OS CSPRNG (AddressSelector)
_randbits = random.SystemRandom().getrandbits

_DOTTED_NAME_RE = re.compile(r"(?:(?:\*|[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)\.)+\Z")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
NAME_RULE = "labels of 1..63 letters, digits, '-' or '_' (or '*'), at most 253 characters"
V4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


class PolicyError(ValueError):
    """A policy document that does not validate; ``problems`` lists them all."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(PolicyError, self).__init__(format_problems(self.problems))


def format_problems(problems):
    """All problems on one line, ``field: message; ...`` (line breaks in keys or
    values from the file are escaped, so a log line stays one line)."""
    text = "; ".join("%s: %s" % (field, msg) for field, msg in problems)
    return text.replace("\r", "\\r").replace("\n", "\\n")


# ---------------------------------------------------------------------------
# Address arithmetic (pure functions; the filters are thin wrappers over them)
# ---------------------------------------------------------------------------

def parse_prefix(text, version=None):
    """A strict network (no host bits set); ``version`` 4 or 6 if given."""
    if not isinstance(text, str):
        raise ValueError("expected a prefix string such as 198.18.16.0/20, got %r" % (text,))
    return _parse_prefix(str(text), version)


# Networks are immutable, and a fleet render parses each pool's prefixes once per PoP.
@functools.lru_cache(maxsize=4096)
def _parse_prefix(text, version):
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError("%r is not a valid prefix (%s)" % (text, exc))
    if version is not None and net.version != version:
        raise ValueError("%s is not an IPv%d prefix" % (text, version))
    # overlaps, not subnet_of: ::/64 would catch v4-mapped addresses too (one rule with agility-lookup).
    if net.version == 6 and net.overlaps(V4_MAPPED):
        raise ValueError("%s overlaps ::ffff:0:0/96, the IPv4-mapped range (v4-mapped prefixes and ::/0 .. ::/80 "
                         "are refused); use the IPv4 prefix itself" % text)
    return net


def stage_prefix(announced, length, index=0):
    """The prefix of ``length`` used at a stage inside ``announced``.

    Deterministic: ``index`` picks the n-th sub-prefix (0 = the first), so a
    migration /20 -> /24 -> /32 always lands on the same addresses.
    """
    net = announced if isinstance(announced, (ipaddress.IPv4Network, ipaddress.IPv6Network)) \
        else parse_prefix(announced)
    length = int(length)
    index = int(index)
    if length < net.prefixlen or length > net.max_prefixlen:
        raise ValueError("stage length /%d must lie between /%d and /%d for %s"
                         % (length, net.prefixlen, net.max_prefixlen, net))
    count = 1 << (length - net.prefixlen)
    if index < 0 or index >= count:
        raise ValueError("stage index %d is outside 0..%d for /%d inside %s"
                         % (index, count - 1, length, net))
    size = 1 << (net.max_prefixlen - length)
    base = int(net.network_address) + index * size
    return ipaddress.ip_network((base, length))


def nth_address(prefix, n):
    """The address at offset ``n`` of ``prefix`` (0 = the network address)."""
    net = prefix if isinstance(prefix, (ipaddress.IPv4Network, ipaddress.IPv6Network)) \
        else parse_prefix(prefix)
    n = int(n)
    if n < 0 or n >= net.num_addresses:
        raise ValueError("offset %d is outside %s (%d addresses)" % (n, net, net.num_addresses))
    return net.network_address + n


def address_index(prefix, address):
    """The offset of ``address`` inside ``prefix`` (the inverse of ``nth_address``)."""
    net = prefix if isinstance(prefix, (ipaddress.IPv4Network, ipaddress.IPv6Network)) \
        else parse_prefix(prefix)
    try:
        addr = ipaddress.ip_address(str(address))
    except ValueError:
        raise ValueError("%r is not an IP address" % (address,))
    if addr.version != net.version or addr not in net:
        raise ValueError("%s is outside %s" % (addr, net))
    return int(addr) - int(net.network_address)


def pop_address(prefix, pop_index, offset=0):
    """The address PoP ``pop_index`` answers with under the ``per_pop`` strategy."""
    return nth_address(prefix, int(offset) + int(pop_index))


def partition_slices(services, k):
    """Split ``services`` into ``k`` disjoint slices that cover them all.

    Sorted and dealt in contiguous, balanced chunks, so the same input always
    gives the same slices and each slice differs in size by at most one.
    """
    k = int(k)
    if k < 1:
        raise ValueError("the number of slices must be at least 1, got %d" % k)
    items = sorted(set(normalise_name(s) for s in services))
    base, extra = divmod(len(items), k)
    slices, start = [], 0
    for i in range(k):
        size = base + (1 if i < extra else 0)
        slices.append(items[start:start + size])
        start += size
    return slices


def normalise_name(name):
    """Lower-case, fully qualified (trailing dot)."""
    if not isinstance(name, str) or not name or name == ".":
        raise ValueError("%r is not a domain name" % (name,))
    name = name.lower()
    return name if name.endswith(".") else name + "."


def _valid_name(name):
    """``name`` (absolute, one trailing dot) has only valid labels and fits the wire."""
    # one match for the whole name (each label '*' or 1..63 letters, digits, '-', '_', not
    # starting or ending with '-', then a dot): the zone store's compiler checks millions of names
    return len(name) <= 254 and _DOTTED_NAME_RE.match(name if name.endswith(".") else name + ".") is not None


def _is_domain_name(value):
    """A valid name other than the root, with or without the trailing dot."""
    return isinstance(value, str) and value not in ("", ".") and _valid_name(normalise_name(value))


def absolute_name(name, zone):
    """``name`` relative to ``zone`` ('@' = apex) made absolute and lower-case."""
    if name == "@":
        return zone
    if name.endswith("."):
        return name.lower()
    return (name + "." + zone).lower()


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

class _Problems:
    def __init__(self):
        self.items = []

    def add(self, field, message):
        self.items.append((field, message))


def _check_keys(p, field, obj, allowed):
    if not isinstance(obj, dict):
        p.add(field, "must be a mapping, got %s" % type(obj).__name__)
        return False
    for key in obj:
        if key not in allowed:
            p.add("%s.%s" % (field, key), "unknown key (allowed: %s)" % ", ".join(allowed))
    return True


def _check_int(p, field, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        p.add(field, "must be an integer, got %r" % (value,))
        return False
    if value < low or value > high:
        p.add(field, "%d is out of range %d..%d" % (value, low, high))
        return False
    return True


def _check_list(p, field, value):
    if not isinstance(value, list) or not value:
        p.add(field, "must be a non-empty list")
        return False
    return True


def _any_overlap(nets):
    """Whether any two of these prefixes (one family) overlap: O(n log n), not O(n^2)."""
    end = -1
    for first, last in sorted((int(n.network_address), int(n.broadcast_address)) for n in nets):
        if first <= end:
            return True
        end = max(end, last)
    return False


def _validate_pools(p, pools):
    """Parse pools; returns {name: {family: (announced, used)}}."""
    parsed = {}
    if not isinstance(pools, dict) or not pools:
        p.add("pools", "must be a non-empty mapping of pool name to prefixes")
        return parsed
    for name, pool in pools.items():
        field = "pools.%s" % name
        if not _NAME_RE.match(str(name)):
            p.add(field, "pool names use letters, digits, '.', '_' and '-'")
        if not _check_keys(p, field, pool, FAMILIES):
            continue
        if not any(f in pool for f in FAMILIES):
            p.add(field, "needs an ipv4 and/or an ipv6 prefix")
        entry = {}
        for family in FAMILIES:
            if family not in pool:
                continue
            ffield = "%s.%s" % (field, family)
            spec = pool[family]
            if not _check_keys(p, ffield, spec, POOL_FAMILY_KEYS):
                continue
            nets = {}
            for key in POOL_FAMILY_KEYS:
                if key not in spec:
                    p.add("%s.%s" % (ffield, key), "is required")
                    continue
                try:
                    nets[key] = parse_prefix(spec[key], FAMILY_VERSION[family])
                except ValueError as exc:
                    p.add("%s.%s" % (ffield, key), str(exc))
            if "announced" in nets:
                used = nets.get("used")
                if used is not None and not used.subnet_of(nets["announced"]):
                    p.add("%s.used" % ffield, "%s lies outside the announced prefix %s"
                          % (used, nets["announced"]))
                    used = None
                entry[family] = (nets["announced"], used)
        parsed[name] = entry
    names = sorted(parsed)
    # a sorted sweep finds whether any two overlap; only then name every overlapping pair
    clashing = [f for f in FAMILIES if _any_overlap(parsed[n][f][0] for n in names if f in parsed[n])]
    for i, a in enumerate(names if clashing else ()):
        for b in names[i + 1:]:
            for family in clashing:
                if family in parsed[a] and family in parsed[b] and \
                        parsed[a][family][0].overlaps(parsed[b][family][0]):
                    p.add("pools.%s.%s.announced" % (b, family),
                          "%s overlaps pool %s (%s); pools must be disjoint"
                          % (parsed[b][family][0], a, parsed[a][family][0]))
    return parsed


def _validate_match(p, field, match):
    if not _check_keys(p, field, match, MATCH_KEYS):
        return
    for key in ("pops", "account_types", "zones"):
        if key in match and _check_list(p, "%s.%s" % (field, key), match[key]):
            for i, item in enumerate(match[key]):
                if not isinstance(item, str) or not item:
                    p.add("%s.%s[%d]" % (field, key, i), "must be a non-empty string")
                elif key == "zones" and not _is_domain_name(item):
                    p.add("%s.%s[%d]" % (field, key, i), "%r is not a zone name (%s)" % (item, NAME_RULE))
    if "qtypes" in match and _check_list(p, field + ".qtypes", match["qtypes"]):
        for i, q in enumerate(match["qtypes"]):
            if q not in POLICY_QTYPES:
                p.add("%s.qtypes[%d]" % (field, i), "%r: policies answer only A and AAAA" % (q,))
    for key in ("client_subnets", "local_addresses"):
        if key in match and _check_list(p, "%s.%s" % (field, key), match[key]):
            for i, item in enumerate(match[key]):
                try:
                    if not isinstance(item, str):
                        raise ValueError(item)
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    p.add("%s.%s[%d]" % (field, key, i), "%r is not a prefix" % (item,))


def _validate_policy(p, field, pol, pools, pop_index):
    if not _check_keys(p, field, pol, POLICY_KEYS):
        return
    for key in ("name", "pool", "ttl"):
        if key not in pol:
            p.add("%s.%s" % (field, key), "is required")
    if "ttl" in pol:
        _check_int(p, field + ".ttl", pol["ttl"], TTL_MIN, TTL_MAX)
    strategy = pol.get("strategy", "random")
    if strategy not in STRATEGIES:
        p.add(field + ".strategy", "unknown strategy %r (one of: %s)" % (strategy, ", ".join(STRATEGIES)))
    pool = None
    if "pool" in pol:
        if isinstance(pol["pool"], str) and pol["pool"] in pools:
            pool = pools[pol["pool"]]
        else:
            p.add(field + ".pool", "names no pool %r (pools: %s)" % (pol["pool"], ", ".join(sorted(pools))))
    if "match" in pol:
        _validate_match(p, field + ".match", pol["match"])
    offset = pol.get("offset", 0)
    if "offset" in pol and not _check_int(p, field + ".offset", offset, 0, 2 ** 32):
        offset = 0  # reported; the size checks below go on with no offset
    if "secondary_pool" in pol:
        sec = pol["secondary_pool"]
        if not isinstance(sec, str) or sec not in pools:
            p.add(field + ".secondary_pool", "names no pool %r" % (sec,))
        elif sec == pol.get("pool"):
            p.add(field + ".secondary_pool", "must differ from pool (address diversity needs two disjoint pools)")
        elif pool is not None and set(pools[sec]) != set(pool):
            p.add(field + ".secondary_pool", "pool %r must cover the same address families as %r"
                  % (sec, pol.get("pool")))
        if strategy != "random":
            p.add(field + ".secondary_pool", "address diversity is supported with the random strategy only")
    needed = None
    if strategy == "single":
        needed = offset + 1
    elif strategy == "per_pop":
        if pop_index is None:
            p.add(field + ".strategy", "per_pop needs pop.index in the policy file")
        else:
            needed = offset + pop_index + 1
    elif strategy == "partition":
        slices = pol.get("slices")
        if not isinstance(slices, list) or not slices:
            p.add(field + ".slices", "partition needs a non-empty list of slices (lists of hostnames)")
        else:
            seen = {}
            for i, sl in enumerate(slices):
                if not isinstance(sl, list):
                    p.add("%s.slices[%d]" % (field, i), "must be a list of hostnames")
                    continue
                for name in sl:
                    try:
                        key = normalise_name(name)
                    except ValueError as exc:
                        p.add("%s.slices[%d]" % (field, i), str(exc))
                        continue
                    if key in seen and seen[key] != i:
                        p.add("%s.slices[%d]" % (field, i), "%s is already in slice %d; slices must be disjoint"
                              % (key, seen[key]))
                    seen[key] = i
            # one address per slice, plus one for names in no slice
            needed = offset + len(slices) + 1
    elif "slices" in pol:
        p.add(field + ".slices", "only the partition strategy takes slices")
    if needed is not None and pool:
        for family, (_announced, used) in pool.items():
            if used is not None and used.num_addresses < needed:
                p.add("pools.%s.%s.used" % (pol.get("pool"), family),
                      "%s has %d addresses; policy %s (%s) needs %d"
                      % (used, used.num_addresses, pol.get("name"), strategy, needed))


def _validate_zone(p, field, zone_name, zone):
    if not _check_keys(p, field, zone, ZONE_KEYS):
        return
    for key in ("account_type", "soa", "ns"):
        if zone.get(key) is None:  # null is as absent as a missing key
            p.add("%s.%s" % (field, key), "is required")
    if "account_type" in zone and (not isinstance(zone["account_type"], str) or not zone["account_type"]):
        p.add(field + ".account_type", "must be a non-empty string")
    soa = zone.get("soa")
    if soa is not None and _check_keys(p, field + ".soa", soa, SOA_KEYS):
        for key in ("mname", "rname"):
            if not _is_domain_name(soa.get(key)):
                p.add("%s.soa.%s" % (field, key), "must be a domain name")
        if soa.get("serial") == AUTO_SERIAL:
            soa = dict(soa, serial=0)  # resolved by resolve_serials (or from the clock at load)
        for key, low, high in (("serial", 0, 2 ** 32 - 1), ("refresh", 1, 2 ** 31 - 1),
                               ("retry", 1, 2 ** 31 - 1), ("expire", 1, 2 ** 31 - 1),
                               ("minimum", 0, TTL_MAX), ("ttl", 0, TTL_MAX)):
            if key in soa:
                _check_int(p, "%s.soa.%s" % (field, key), soa[key], low, high)
        if "serial" not in soa:
            p.add(field + ".soa.serial", "is required")
    if "ns" in zone and _check_list(p, field + ".ns", zone["ns"]):
        for i, ns in enumerate(zone["ns"]):
            if not _is_domain_name(ns):
                p.add("%s.ns[%d]" % (field, i), "must be a domain name")
    records = zone.get("records", [])
    if not isinstance(records, list):
        p.add(field + ".records", "must be a list of records")
        records = []
    for i, rec in enumerate(records):
        rfield = "%s.records[%d]" % (field, i)
        if not _check_keys(p, rfield, rec, RECORD_KEYS):
            continue
        for key in ("name", "type", "data"):
            if key not in rec:
                p.add("%s.%s" % (rfield, key), "is required")
        if rec.get("type") is not None and rec.get("type") not in STATIC_TYPES:
            p.add(rfield + ".type", "unsupported type %r (one of: %s)" % (rec.get("type"), ", ".join(STATIC_TYPES)))
        if "ttl" in rec:
            _check_int(p, rfield + ".ttl", rec["ttl"], 0, TTL_MAX)
        if "data" in rec and (not isinstance(rec["data"], str) or not rec["data"].strip()):
            p.add(rfield + ".data", "must be the record data in presentation format")
        if rec.get("type") == "A":
            _check_address(p, rfield + ".data", rec.get("data"), 4)
        if rec.get("type") == "AAAA":
            _check_address(p, rfield + ".data", rec.get("data"), 6)
        if "name" in rec:
            _check_zone_name(p, rfield + ".name", rec["name"], zone_name)
    hostnames = zone.get("hostnames", ["*"])
    if not isinstance(hostnames, list):
        p.add(field + ".hostnames", "must be a list of hostnames (or ['*'] for every name)")
        hostnames = []
    for i, host in enumerate(hostnames):
        if host != "*":
            _check_zone_name(p, "%s.hostnames[%d]" % (field, i), host, zone_name)
    _check_zone_tree(p, field, zone_name, records, hostnames)


def _in_zone(name, zone_name):
    return name == zone_name or name.endswith("." + zone_name)


def _cut_at_or_above(name, zone_name, cuts):
    """The delegation (a non-apex NS owner) at or above ``name``, or None."""
    while name != zone_name and _in_zone(name, zone_name):
        if name in cuts:
            return name
        name = name.split(".", 1)[1]
    return None


def _check_zone_tree(p, field, zone_name, records, hostnames):
    """Rules across records (checked on the well-formed ones): nothing but glue (A/AAAA) at or
    below a delegation, DS only at one (RFC 4035 2.4), no NS or DS at a wildcard (RFC 4592 4.2),
    no CNAME loop."""
    recs = []
    for i, rec in enumerate(records):
        if isinstance(rec, dict) and isinstance(rec.get("name"), str) and rec["name"] \
                and isinstance(rec.get("type"), str):
            owner = absolute_name(rec["name"], zone_name)
            if _valid_name(owner) and _in_zone(owner, zone_name):
                recs.append(("%s.records[%d]" % (field, i), owner, rec["type"], rec.get("data")))
    cuts = frozenset(owner for _f, owner, rtype, _d in recs if rtype == "NS" and owner != zone_name)
    cnames = {}
    for rfield, owner, rtype, data in recs:
        if owner.split(".", 1)[0] == "*" and rtype in ("NS", "DS"):
            p.add(rfield + ".name", "%s at a wildcard owner (%s) is not allowed (RFC 4592 4.2)" % (rtype, owner))
        if rtype == "DS" and owner not in cuts:
            p.add(rfield + ".type", "DS belongs at a delegation point (a name below the apex with NS records); "
                                    "%s has none" % owner)
        cut = _cut_at_or_above(owner, zone_name, cuts) if cuts else None
        if cut is not None and rtype not in ("A", "AAAA") and not (owner == cut and rtype in ("NS", "DS")):
            p.add(rfield + ".name", "%s %s is occluded by the delegation %s: only NS and DS at a zone cut and "
                                    "glue (A/AAAA) at or below it" % (owner, rtype, cut))
        if rtype == "CNAME" and isinstance(data, str) and data.strip() and owner not in cnames:
            target = data.strip()
            target = zone_name if target == "@" else absolute_name(target, zone_name)
            cnames[owner] = (rfield, target)
    for i, host in enumerate(hostnames if cuts else ()):
        if isinstance(host, str) and host and host != "*":
            name = absolute_name(host, zone_name)
            cut = _cut_at_or_above(name, zone_name, cuts)
            if cut is not None:
                p.add("%s.hostnames[%d]" % (field, i), "%s is occluded by the delegation %s" % (name, cut))
    done = set()
    for start in cnames:
        path = []
        name = start
        while name in cnames and name not in done:
            done.add(name)
            path.append(name)
            name = cnames[name][1]
            if name in path:
                loop = path[path.index(name):] + [name]
                p.add(cnames[loop[0]][0] + ".data", "CNAME loop: %s" % " -> ".join(loop))
                break


def _check_zone_name(p, field, name, zone_name):
    """A name inside the zone: relative, '@' (the apex), or absolute with a trailing dot."""
    if not isinstance(name, str) or not name:
        p.add(field, "must be a name relative to the zone, '@' or an absolute name in it, got %r" % (name,))
        return
    full = absolute_name(name, zone_name)
    if not _valid_name(full):
        p.add(field, "%r is not a valid domain name (%s)" % (name, NAME_RULE))
    elif full != zone_name and not full.endswith("." + zone_name):
        p.add(field, "%s lies outside the zone" % name)


def _check_address(p, field, value, version):
    try:
        if ipaddress.ip_address(value).version != version:
            raise ValueError
    except (ValueError, TypeError):
        p.add(field, "%r is not an IPv%d address" % (value, version))


def validate(doc):
    """All problems of a policy document as ``[(field, message)]``; empty = valid."""
    p = _Problems()
    if not isinstance(doc, dict):
        p.add("(document)", "must be a mapping, got %s" % type(doc).__name__)
        return p.items
    for key in doc:
        if key not in TOP_KEYS:
            p.add(key, "unknown key (allowed: %s)" % ", ".join(TOP_KEYS))
    if doc.get("format") != FORMAT:
        p.add("format", "must be %r" % FORMAT)
    if doc.get("version") != VERSION:
        p.add("version", "unsupported version %r (this code reads version %d)" % (doc.get("version"), VERSION))
    pop = doc.get("pop")
    pop_index = None
    if _check_keys(p, "pop", pop, ("name", "index")):
        if not isinstance(pop.get("name"), str) or not _NAME_RE.match(pop.get("name") or ""):
            p.add("pop.name", "is required: the PoP's name (letters, digits, '.', '_', '-')")
        if "index" in pop and _check_int(p, "pop.index", pop["index"], 0, 65535):
            pop_index = pop["index"]
    pools = _validate_pools(p, doc.get("pools"))
    policies = doc.get("policies", [])
    names = set()
    if not isinstance(policies, list):
        p.add("policies", "must be a list")
        policies = []
    for i, pol in enumerate(policies):
        label = pol.get("name") if isinstance(pol, dict) and isinstance(pol.get("name"), str) else None
        field = "policies[%d]%s" % (i, "(%s)" % label if label else "")
        if label in names:
            p.add(field + ".name", "duplicate policy name")
        names.add(label)
        _validate_policy(p, field, pol, pools, pop_index)
    default = doc.get("default_policy")
    if default is not None and (not isinstance(default, str) or default not in names):
        p.add("default_policy", "names no policy %r" % (default,))
    zones = doc.get("zones", {})
    if not isinstance(zones, dict):
        p.add("zones", "must be a mapping of zone name to zone")
        zones = {}
    for name, zone in zones.items():
        p.items.extend(validate_zone(name, zone))
    return p.items


def validate_zone(name, zone):
    """All problems of one zone (name and data, as under a policy file's ``zones``) as
    ``[(field, message)]``; the zone store's compiler applies the same rules."""
    p = _Problems()
    try:
        key = normalise_name(name)
        if not _valid_name(key):
            raise ValueError("%r is not a valid zone name" % name)
    except ValueError as exc:
        p.add("zones[%s]" % name, str(exc))
        return p.items
    _validate_zone(p, "zones[%s]" % key, key, zone)
    return p.items


def serial_after(new, old):
    """Whether serial ``new`` follows ``old`` in RFC 1982 serial arithmetic (32 bits)."""
    return new != old and ((new - old) % 2 ** 32) < 2 ** 31


def _zone_serial(doc, key):
    """The integer serial of zone ``key`` in ``doc`` (any zone-name spelling), or None."""
    zones = doc.get("zones") if isinstance(doc, dict) else None
    for name, zone in (zones.items() if isinstance(zones, dict) else ()):
        try:
            same = normalise_name(name) == key
        except ValueError:
            continue
        if same and isinstance(zone, dict) and isinstance(zone.get("soa"), dict):
            serial = zone["soa"].get("serial")
            if isinstance(serial, int) and not isinstance(serial, bool):
                return serial, zone
    return None, None


def _without_serial(zone):
    return dumps(dict(zone, soa=dict(zone["soa"], serial=None)))


def resolve_serials(doc, before, now):
    """A copy of valid ``doc`` with every ``serial: auto`` made a number, checked against
    ``before`` (the document served now, or None); raises ``PolicyError``.

    ``auto``: the serial served now while the zone's content is the same, else the clock
    (``now``, seconds) or, if that is not after it, the serial served now plus one (RFC 1982
    arithmetic, so it may wrap). A number that goes backwards from the serial served now is
    refused (secondaries and caches would keep the old zone)."""
    out = copy.deepcopy(doc)
    problems = []
    for name, zone in (out.get("zones") or {}).items():
        key = normalise_name(name)
        old, old_zone = _zone_serial(before, key)
        serial = zone["soa"]["serial"]
        if serial == AUTO_SERIAL:
            if old is not None and _without_serial(zone) == _without_serial(old_zone):
                serial = old
            else:
                serial = int(now) % 2 ** 32
                if old is not None and not serial_after(serial, old):
                    serial = (old + 1) % 2 ** 32
        elif old is not None and serial != old and not serial_after(serial, old):
            problems.append(("zones[%s].soa.serial" % key, "%d goes backwards from %d, the serial served now "
                             "(RFC 1982); raise it or use 'auto'" % (serial, old)))
        zone["soa"]["serial"] = serial
    if problems:
        raise PolicyError(problems)
    return out


def check(doc):
    """Raise ``PolicyError`` unless ``doc`` is valid."""
    problems = validate(doc)
    if problems:
        raise PolicyError(problems)


def loads(raw, source="policy file"):
    """The document in ``raw`` (JSON text or UTF-8 bytes); ``PolicyError`` if it is not
    JSON or nests deeper than ``MAX_JSON_DEPTH`` (checked before ``json.loads``)."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError([("(file)", "%s is not UTF-8: %s" % (source, exc))])
    depth = _json_depth(raw, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        raise PolicyError([("(file)", "%s nests deeper than %d levels of [ and {" % (source, MAX_JSON_DEPTH))])
    found = []
    try:
        doc = json.loads(raw, object_pairs_hook=lambda pairs: _json_object(pairs, found))
    except (ValueError, RecursionError) as exc:
        raise PolicyError([("(file)", "%s is not valid JSON: %s" % (source, exc))])
    if found:
        paths = []
        _duplicate_paths(doc, "", paths)
        raise PolicyError([(path, "appears twice in one JSON object (JSON would keep only the last silently)")
                           for path in paths])
    return doc


class _DuplicateKeys(dict):
    """A JSON object that names a key twice (``duplicates``); ``loads`` refuses the file."""

    __slots__ = ("duplicates",)


def _json_object(pairs, found):
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        obj = _DuplicateKeys(obj)
        obj.duplicates = []
        for key, _value in pairs:
            if key in seen and key not in obj.duplicates:
                obj.duplicates.append(key)
            seen.add(key)
        found.append(obj)
    return obj


def _duplicate_paths(node, path, out):
    """Field paths (``zones.example.com.soa.serial``) of the duplicated keys under ``node``."""
    if isinstance(node, dict):
        for key in getattr(node, "duplicates", ()):
            out.append("%s.%s" % (path, key) if path else key)
        for key, value in node.items():
            _duplicate_paths(value, "%s.%s" % (path, key) if path else key, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _duplicate_paths(value, "%s[%d]" % (path, i), out)


_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET_RE = re.compile(r"[^\[\]{}]+")


def _json_depth(text, limit):
    """Deepest [/{ nesting in JSON text (strings skipped), counting stops past ``limit``."""
    depth = deepest = 0
    for char in _NOT_BRACKET_RE.sub("", _JSON_STRING_RE.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def dumps(doc):
    """Canonical JSON text of a policy document (stable for diffs and digests)."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def digest(doc):
    """Short content digest, reported by the responder as the policy version."""
    # imported here: loading OpenSSL for hashlib costs a third of a second on a small host, and
    # the CLIs that only parse prefixes (agility-lookup) never need a digest
    import hashlib
    return hashlib.sha256(dumps(doc).encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Compiled form: what the responder runs per query
# ---------------------------------------------------------------------------

class AddressSelector:
    """Chooses the answer address of one family for one policy.

    ``pick(qname)`` returns the address as packed bytes (4 or 16), ready for
    the wire.  Random host bits come from the OS CSPRNG (``random.SystemRandom``,
    what ``secrets`` uses; not ``secrets`` itself, whose ``hmac`` import loads OpenSSL).
    """

    __slots__ = ("prefix", "strategy", "_base", "_bits", "_width", "_fixed", "_slice_of", "_rest")

    def __init__(self, prefix, strategy, offset=0, pop_index=None, slices=None):
        self.prefix = prefix
        self.strategy = strategy
        self._width = prefix.max_prefixlen // 8
        self._base = int(prefix.network_address)
        self._bits = prefix.max_prefixlen - prefix.prefixlen
        self._fixed = None
        self._slice_of = {}
        self._rest = None
        if strategy == "single":
            self._fixed = self._pack(self._base + offset)
        elif strategy == "per_pop":
            self._fixed = self._pack(self._base + offset + pop_index)
        elif strategy == "partition":
            for i, names in enumerate(slices):
                packed = self._pack(self._base + offset + i)
                for name in names:
                    self._slice_of[normalise_name(name)] = packed
            self._rest = self._pack(self._base + offset + len(slices))

    def _pack(self, value):
        return value.to_bytes(self._width, "big")

    def pick(self, qname=None):
        if self.strategy == "random":
            if self._bits == 0:
                return self._pack(self._base)
            return self._pack(self._base | _randbits(self._bits))
        if self.strategy == "partition":
            return self._slice_of.get(qname, self._rest)
        return self._fixed


class CompiledPolicy:
    """One policy of the file, ready to match and answer."""

    __slots__ = ("name", "ttl", "strategy", "pool", "selectors", "secondary", "_pops",
                 "_accounts", "_qtypes", "_zones", "_clients", "_locals")

    def __init__(self, pol, pools, pop_name, pop_index):
        self.name = pol["name"]
        self.ttl = pol["ttl"]
        self.strategy = pol.get("strategy", "random")
        self.pool = pol["pool"]
        offset = pol.get("offset", 0)
        self.selectors = {}
        for family, (_announced, used) in pools[self.pool].items():
            self.selectors[FAMILY_VERSION[family]] = AddressSelector(
                used, self.strategy, offset, pop_index, pol.get("slices"))
        self.secondary = {}
        if "secondary_pool" in pol:
            for family, (_announced, used) in pools[pol["secondary_pool"]].items():
                self.secondary[FAMILY_VERSION[family]] = AddressSelector(used, "random")
        match = pol.get("match") or {}
        self._pops = frozenset(match["pops"]) if "pops" in match else None
        self._accounts = frozenset(match["account_types"]) if "account_types" in match else None
        self._qtypes = frozenset(match.get("qtypes", POLICY_QTYPES))
        self._zones = frozenset(normalise_name(z) for z in match["zones"]) if "zones" in match else None
        self._clients = _net_list(match.get("client_subnets"))
        self._locals = _net_list(match.get("local_addresses"))
        if self._pops is not None and pop_name not in self._pops:
            self._qtypes = frozenset()  # never matches at this PoP

    def matches(self, qtype, zone, account_type, client, local):
        """``client`` and ``local`` are ipaddress addresses (or None)."""
        if qtype not in self._qtypes:
            return False
        if self._accounts is not None and account_type not in self._accounts:
            return False
        if self._zones is not None and zone not in self._zones:
            return False
        if self._clients is not None and not _in_any(client, self._clients):
            return False
        if self._locals is not None and not _in_any(local, self._locals):
            return False
        return True

    @property
    def needs_client(self):
        return self._clients is not None

    @property
    def needs_local(self):
        return self._locals is not None

    @property
    def client_subnets(self):
        """The ``client_subnets`` networks (tuple), or None; the responder derives the
        EDNS Client Subnet scope from their prefix lengths."""
        return self._clients

    def answer(self, qtype, qname=None):
        """Packed addresses for the answer (one, or two with address diversity)."""
        version = 4 if qtype == "A" else 6
        sel = self.selectors.get(version)
        if sel is None:
            return []
        out = [sel.pick(qname)]
        sec = self.secondary.get(version)
        if sec is not None:
            out.append(sec.pick(qname))
        return out

    def used_prefix(self, qtype):
        sel = self.selectors.get(4 if qtype == "A" else 6)
        return sel.prefix if sel is not None else None


def _net_list(items):
    if items is None:
        return None
    return tuple(ipaddress.ip_network(i, strict=False) for i in items)


def _in_any(addr, nets):
    if addr is None:
        return False
    return any(addr.version == n.version and addr in n for n in nets)


class Zone:
    """A zone's account type, apex records and static records (as data, not wire)."""

    __slots__ = ("name", "account_type", "soa", "ns", "records", "hostnames", "wildcard")

    def __init__(self, name, zone):
        self.name = name
        self.account_type = zone["account_type"]
        self.soa = dict(zone["soa"])
        self.ns = [normalise_name(n) for n in zone["ns"]]
        self.records = {}
        for rec in zone.get("records") or []:
            owner = absolute_name(rec["name"], name)
            self.records.setdefault(owner, []).append(
                (rec["type"], rec.get("ttl", self.soa.get("ttl", self.soa.get("minimum", 300))), rec["data"]))
        hostnames = zone.get("hostnames", ["*"])
        self.wildcard = "*" in hostnames
        self.hostnames = frozenset(absolute_name(h, name) for h in hostnames if h != "*")

    def name_exists(self, qname):
        """Whether ``qname`` (lower-case, absolute, inside the zone) exists."""
        if self.wildcard or qname == self.name or qname in self.hostnames or qname in self.records:
            return True
        # an empty non-terminal exists if something lives below it
        suffix = "." + qname
        return any(o.endswith(suffix) for o in self.hostnames) or any(o.endswith(suffix) for o in self.records)


class CompiledPolicyFile:
    """A whole validated policy file."""

    def __init__(self, doc):
        check(doc)
        self.doc = doc
        self.digest = digest(doc)
        self.pop_name = doc["pop"]["name"]
        self.pop_index = doc["pop"].get("index")
        p = _Problems()
        pools = _validate_pools(p, doc["pools"])
        self.pools = pools
        self.policies = [CompiledPolicy(pol, pools, self.pop_name, self.pop_index)
                         for pol in doc.get("policies", [])]
        default = doc.get("default_policy")
        self.default = None
        if default is not None:
            self.default = [c for c in self.policies if c.name == default][0]
            self.policies = [c for c in self.policies if c.name != default]
        self.zones = {}
        for name, zone in (doc.get("zones") or {}).items():
            key = normalise_name(name)
            self.zones[key] = Zone(key, zone)

    def find_zone(self, qname):
        """The longest zone that contains ``qname`` (lower-case, absolute), or None."""
        name = qname
        while True:
            zone = self.zones.get(name)
            if zone is not None:
                return zone
            if name == ".":
                return None
            dot = name.find(".")
            name = name[dot + 1:] if dot + 1 < len(name) else "."

    def match(self, qtype, zone, client=None, local=None):
        """The first matching policy, else the default policy, else None."""
        account = zone.account_type
        for pol in self.policies:
            if pol.matches(qtype, zone.name, account, client, local):
                return pol
        if self.default is not None and self.default.matches(qtype, zone.name, account, client, local):
            return self.default
        return None


def compile_policy(doc):
    """Validate and compile; raises ``PolicyError`` listing every problem."""
    return CompiledPolicyFile(doc)


def load_file(path):
    """Read, parse, validate and compile a policy file; ``PolicyError`` on any problem."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        raise PolicyError([("(file)", "cannot read %s: %s" % (path, exc))])
    return compile_policy(loads(raw, path))


# ---------------------------------------------------------------------------
# What a PoP must route and bind for one or more policy documents
# ---------------------------------------------------------------------------

def document_prefixes(docs, which):
    """Distinct ``which`` ('used' or 'announced') prefixes of all pools of ``docs``.

    Given the current and the target document of a migration, this is the
    union a PoP must route (announced) or bind (used) while both may be live.
    """
    if which not in ("used", "announced"):
        raise ValueError("which must be 'used' or 'announced', got %r" % (which,))
    found = set()
    for doc in docs:
        for pool in (doc or {}).get("pools", {}).values():
            for family in FAMILIES:
                if family in pool:
                    found.add(parse_prefix(pool[family][which]))
    return [str(n) for n in sorted(found, key=lambda n: (n.version, n))]


def bindings_for(prefixes, tcp_ports, udp_ports):
    """sk_lookup bindings: every prefix on every port, labelled per port.

    ``tcp_ports`` and ``udp_ports`` map port (0 = any) to the label of the
    socket that serves it.
    """
    out = []
    for text in prefixes:
        net = parse_prefix(text)
        for protocol, ports in (("tcp", tcp_ports), ("udp", udp_ports)):
            for port, label in sorted((int(p), l) for p, l in (ports or {}).items()):
                if port < 0 or port > 65535:
                    raise ValueError("port %d is out of range 0..65535" % port)
                out.append({"protocol": protocol, "prefix": str(net), "port": port, "label": label})
    return out
