"""A zone's static records parsed and checked with dnspython: the rules the policy model
(stdlib only) cannot check itself.

One home for them: the responder runs them when it builds a zone (``state.ZoneData``),
and the zone store's compiler runs them before it writes a zone, so a zone the
compiler accepts is a zone the responder serves.

Rules: every record's data parses for its type; its owner lies inside the zone; a
CNAME is alone at its name and not at the apex; record data fits the wire (65,535
octets; text longer than ``MAX_DATA_TEXT`` is refused before dnspython sees it).
"""

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

# Four characters per octet is the longest presentation form ("\\255"), plus spaces and quotes
# between strings: data text longer than this cannot fit 65,535 octets, whatever it is.
MAX_RDATA_OCTETS = 65535
MAX_DATA_TEXT = 5 * MAX_RDATA_OCTETS


def parse(zone, origin, field):
    """``(static, apex_ns, problems)`` for a ``policy.Zone`` whose name is ``origin`` (a
    dnspython name): ``static`` maps owner name -> {rdtype: RRset}; ``apex_ns`` holds the
    rdatas of NS records at the apex (they join the zone's ``ns``); ``problems`` lists
    ``(field, message)`` pairs, empty when every record is good."""
    static = {}
    apex_ns = []
    problems = []
    for owner_text, recs in sorted(zone.records.items()):
        owner = dns.name.from_text(owner_text)
        for rtype, ttl, data in recs:
            rfield = "%s.records(%s %s)" % (field, owner_text, rtype)
            if not owner.is_subdomain(origin):
                problems.append((rfield, "%s lies outside the zone" % owner_text))
                continue
            if len(data) > MAX_DATA_TEXT:
                problems.append((rfield, "data of %d characters cannot fit the %d octets of a record"
                                 % (len(data), MAX_RDATA_OCTETS)))
                continue
            try:
                rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype),
                                            data, origin=origin, relativize=False)
                size = len(rdata.to_wire())
            except Exception as exc:  # noqa: BLE001 - any dnspython parse error
                problems.append((rfield, "data %r does not parse: %s" % (_short(data), exc)))
                continue
            if size > MAX_RDATA_OCTETS:
                problems.append((rfield, "data of %d octets exceeds the %d octets of a record"
                                 % (size, MAX_RDATA_OCTETS)))
                continue
            if owner == origin and rtype == "NS":
                apex_ns.append(rdata)
                continue
            by_type = static.setdefault(owner, {})
            rrset = by_type.get(rdata.rdtype)
            if rrset is None:
                rrset = by_type[rdata.rdtype] = dns.rrset.RRset(owner, dns.rdataclass.IN, rdata.rdtype)
            rrset.add(rdata, ttl)
    for owner, by_type in static.items():
        if dns.rdatatype.CNAME in by_type and (len(by_type) > 1 or owner == origin):
            problems.append(("%s.records(%s CNAME)" % (field, owner),
                             "a CNAME must be the only record at its name (and not at the apex)"))
    return static, apex_ns, problems


def _short(text, limit=80):
    return text if len(text) <= limit else text[:limit] + "...(%d characters)" % len(text)
