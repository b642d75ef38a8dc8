"""The serving state compiled from one policy file.

``load(path)`` / ``from_bytes(raw)`` validate the policy with ``agility_runtime.policy``
and, on top of it, parse every static record with dnspython and precompute what the
fast path needs.  The result is immutable: a reload builds a new ``State`` and swaps
one reference, so in-flight queries finish on the old one.

Any problem raises ``policy.PolicyError`` (the message names the bad field); the
caller keeps serving the last good state.
"""

import json
import time

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from agility_runtime import policy
from agility_runtime.dns import log, records

SOA_DEFAULTS = {"refresh": 7200, "retry": 3600, "expire": 1209600, "minimum": 300, "ttl": 3600}
QTYPE_CODE = {"A": 1, "AAAA": 28}
QTYPE_WIRE = {"A": b"\x00\x01", "AAAA": b"\x00\x1c"}
# store zones built into ZoneData per process; the cache starts again when full
STORE_ZONE_CACHE = 65536
_SHADOW_TYPES = frozenset(("A", "AAAA", "CNAME", "NS"))


def name_wire(name):
    """Lower-case uncompressed wire form of a dnspython name (the fast path's key)."""
    return name.to_wire().lower()


def text_wire(name):
    """``name_wire`` of an absolute lower-case name the policy model validated (labels of
    letters, digits, '-', '_', '*': no escapes), without dnspython: a zone store zone
    carries tens of hostnames, and each query may build its zone."""
    return b"".join([_LENGTH_OCTET[len(label)] + label for label in name.encode("ascii").split(b".")[:-1]]) + b"\x00"


_LENGTH_OCTET = [bytes((n,)) for n in range(256)]


class FastAnswer:
    """Precomputed answer pieces for one (policy, qtype)."""

    __slots__ = ("policy", "qtype", "selectors", "rr_head", "count", "prefixes", "stat_key", "ttl",
                 "needs_qname")

    def __init__(self, pol, qtype):
        self.policy = pol
        self.qtype = qtype
        version = 4 if qtype == "A" else 6
        sels = [pol.selectors.get(version)]
        if pol.secondary.get(version) is not None:
            sels.append(pol.secondary[version])
        self.selectors = tuple(s for s in sels if s is not None)
        self.count = len(self.selectors)
        self.ttl = pol.ttl
        rdlen = b"\x00\x04" if version == 4 else b"\x00\x10"
        # owner = pointer to the question name at offset 12, type, class IN, ttl, rdlength
        self.rr_head = b"\xc0\x0c" + QTYPE_WIRE[qtype] + b"\x00\x01" + pol.ttl.to_bytes(4, "big") + rdlen
        self.prefixes = tuple(str(s.prefix) for s in self.selectors)
        self.stat_key = (qtype, "NOERROR", pol.name)
        self.needs_qname = any(s.strategy == "partition" for s in self.selectors)


class ZoneData:
    """One zone: apex records as dnspython rrsets, static data, fast-path sets."""

    from_store = False  # True for zones read from the zone store (never in the fast path's plan cache)

    def __init__(self, zone, all_policies, cpf):
        self._fast_fields(zone, cpf)
        self._build(zone)

    def _build(self, zone):
        """The slow path's data: dnspython rrsets; ``PolicyError`` when a record is bad."""
        self.name = dns.name.from_text(zone.name)
        soa = dict(SOA_DEFAULTS)
        soa.update(zone.soa)
        soa.setdefault("mname", zone.ns[0])
        soa.setdefault("rname", "hostmaster." + zone.name)
        if soa["serial"] == policy.AUTO_SERIAL:  # a file not written by policy_file: from the clock
            soa["serial"] = int(time.time()) % 2 ** 32
        field = "zones.%s" % zone.name
        try:
            soa_rdata = dns.rdata.from_text(
                dns.rdataclass.IN, dns.rdatatype.SOA,
                "%s %s %d %d %d %d %d" % (policy.normalise_name(soa["mname"]), policy.normalise_name(soa["rname"]),
                                          soa["serial"], soa["refresh"], soa["retry"], soa["expire"], soa["minimum"]))
        except Exception as exc:  # noqa: BLE001 - any dnspython parse error
            raise policy.PolicyError([(field + ".soa", "does not parse: %s" % exc)])
        self.soa = dns.rrset.from_rdata_list(self.name, soa["ttl"], [soa_rdata])
        self.neg_ttl = min(soa["ttl"], soa["minimum"])
        self.neg_soa = dns.rrset.from_rdata_list(self.name, self.neg_ttl, [soa_rdata])
        ns_rdatas = [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NS, n) for n in zone.ns]
        self.static, apex_ns, problems = records.parse(zone, self.name, field)
        ns_rdatas.extend(apex_ns)
        if problems:
            raise policy.PolicyError(problems)
        ns_ttl = soa["ttl"]
        self.ns = dns.rrset.from_rdata_list(self.name, ns_ttl, ns_rdatas)
        self.delegations = frozenset(o for o, t in self.static.items() if dns.rdatatype.NS in t)
        self.addr_owners = frozenset(o for o, t in self.static.items()
                                     if dns.rdatatype.A in t or dns.rdatatype.AAAA in t)
        # RFC 4592: the names that exist (owners, listed hostnames and the empty non-terminals
        # above them), and the wildcards by their parent, the closest encloser they serve
        hosts = [dns.name.from_text(h) for h in zone.hostnames]
        names = {self.name}
        for owner in list(self.static) + hosts:
            while owner not in names and len(owner) > len(self.name):
                names.add(owner)
                owner = owner.parent()
        self.names = frozenset(names)
        # (an empty non-terminal wildcard is a source of synthesis too: NODATA, RFC 4592 2.2.2)
        self.wild = {o.parent(): o for o in names if o.is_wild()}
        self.wild_hosts = frozenset(o for o in hosts if o.is_wild())

    def _fast_fields(self, zone, cpf):
        """What the fast path reads, from the zone's text alone (no dnspython)."""
        self.zone = zone
        self.wire = text_wire(zone.name)
        # names where A/AAAA are not the policy's to answer (static address, CNAME, cut); NS
        # at the apex is the zone's own NS set, not a cut
        # wildcards whose synthesis may decide an A/AAAA answer: the fast path leaves names
        # below their parent to the slow path (RFC 4592, slowpath)
        static, cuts, wild_parents = [], [], []
        for owner, recs in zone.records.items():
            types = set(r[0] for r in recs)
            if owner == zone.name:
                types.discard("NS")
            if types & _SHADOW_TYPES:
                static.append(owner)
                if owner.startswith("*."):
                    wild_parents.append(owner[2:])
            if "NS" in types:
                cuts.append(owner)
        self.static_wire = frozenset(text_wire(o) for o in static)
        self.deleg_wire = frozenset(text_wire(o) for o in cuts)
        self.wild_shadow_wire = frozenset(text_wire(o) for o in wild_parents)
        self.hostnames_wire = frozenset(text_wire(h) for h in zone.hostnames)
        self.wildcard = zone.wildcard
        # policy choice when no policy depends on client or local address
        self.fixed = {}
        for qtype in ("A", "AAAA"):
            self.fixed[qtype] = cpf.match(qtype, zone)

    def policy_names(self, qname):
        """Whether the policy may answer A/AAAA at ``qname`` (absolute lower-case text)."""
        return self.wildcard or qname in self.zone.hostnames

    def source_of(self, qname):
        """The wildcard owner that synthesises ``qname`` (RFC 4592 closest-encloser rule), or
        None when the name exists or no wildcard covers it."""
        if not self.wild or qname in self.names:
            return None
        name = qname.parent()
        while name not in self.names:
            name = name.parent()
        return self.wild.get(name)


class StoreZoneData(ZoneData):
    """A zone from the zone store: the fast path's fields at once (tens of microseconds), the
    dnspython rrsets (SOA, NS, static records: a millisecond) when the slow path first asks.
    The store's compiler ran the same record rules, so building them later does not fail
    for a store it wrote."""

    from_store = True

    def __init__(self, zone, all_policies, cpf):
        self._fast_fields(zone, cpf)

    def __getattr__(self, attr):
        # only for attributes not set yet: the slow path's (name, soa, ns, static, ...)
        if attr.startswith("__") or "_built" in self.__dict__:
            raise AttributeError(attr)
        self._build(self.zone)
        self._built = True
        return getattr(self, attr)


class State:
    """Everything a worker needs to answer, built from one policy file (and, with
    ``store``, a ``storezones.StoreZones`` for the zones the policy file does not hold)."""

    def __init__(self, cpf, raw=b"", store=None):
        self.cpf = cpf
        self.store = store
        self.store_zones = {}  # (zone name, zone bytes) -> ZoneData: same bytes, same zone
        self.raw = raw
        self.digest = cpf.digest
        self.pop = cpf.pop_name
        pols = list(cpf.policies) + ([cpf.default] if cpf.default is not None else [])
        self.policies = pols
        self.dynamic = any(p.needs_client or p.needs_local for p in pols)
        self.needs_local = any(p.needs_local for p in pols)
        self.zones = {}
        self.zones_wire = {}
        problems = []
        for key, zone in sorted(cpf.zones.items()):
            try:
                zd = ZoneData(zone, pols, cpf)
            except policy.PolicyError as exc:
                problems.extend(exc.problems)
                continue
            self.zones[zd.name] = zd
            self.zones_wire[zd.wire] = zd
        if problems:
            raise policy.PolicyError(problems)
        self.plans = {}  # fast-path parse cache: query bytes after the ID -> plan
        self.fast = {}
        for pol in pols:
            for qtype in ("A", "AAAA"):
                fa = FastAnswer(pol, qtype)
                self.fast[(id(pol), qtype)] = fa if fa.count else None

    def fast_answer(self, pol, qtype):
        return self.fast.get((id(pol), qtype))

    def find_zone(self, qname):
        """ZoneData for a dnspython name (any case), or None."""
        name = qname.canonicalize() if hasattr(qname, "canonicalize") else qname
        while True:
            zd = self.zones.get(name)
            if zd is not None:
                return zd
            if len(name) <= 1:
                break
            name = name.parent()
        if self.store is not None:
            return self.store_zone(name_wire(qname))
        return None

    def store_zone(self, wire):
        """ZoneData of the store zone enclosing lower-case wire name ``wire``, or None."""
        self.store.poll()
        hit = self.store.find(wire)
        if hit is None:
            return None
        zd = self.store_zones.get(hit)
        if zd is None:
            try:
                zd = StoreZoneData(policy.Zone(hit[0], json.loads(hit[1])), self.policies, self.cpf)
            except (policy.PolicyError, ValueError, KeyError, TypeError) as exc:
                # the compiler checks every zone with the same rules: only a store written by
                # something else gets here; that zone is not served, the others are
                log.error("zone_store", result="zone_refused", zone=hit[0], reason=str(exc))
                return None
            if len(self.store_zones) >= STORE_ZONE_CACHE:
                self.store_zones = {}
            self.store_zones[hit] = zd
        return zd


INTERNAL = "(internal)"


def from_bytes(raw, source="(bytes)", store=None):
    """Compile policy file bytes; raises ``policy.PolicyError`` and nothing else.

    The validator is fuzzed so that it reports every bad input by field; should some
    input still slip past it into dnspython, the exception becomes a ``PolicyError``
    on the field ``(internal)`` here, so a reload keeps the last good state anyway
    (the fuzz tests assert that this field never shows up)."""
    doc = policy.loads(raw, source)
    try:
        return State(policy.compile_policy(doc), raw, store)
    except policy.PolicyError:
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence, see above
        raise policy.PolicyError([(INTERNAL, "%s could not be compiled: %s: %s" % (source, type(exc).__name__, exc))])


def load(path, store=None):
    """Read and compile ``path``; raises ``policy.PolicyError`` on any problem."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        raise policy.PolicyError([("(file)", "cannot read %s: %s" % (path, exc))])
    return from_bytes(raw, path, store)
