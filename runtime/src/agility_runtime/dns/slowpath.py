"""dnspython path: every query the fast path declines.

Handles errors (FORMERR, NOTIMP, BADVERS, REFUSED), static records, SOA/NS at the
apex, NXDOMAIN/NODATA with the SOA in authority, referrals, EDNS payload size and
truncation, EDNS Client Subnet (echoed; scope 0 unless a client_subnets policy
decided the answer) and policy answers for queries the fast path does not take.
"""

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from agility_runtime.dns import edns, fastpath, query as querymod, stats as statsmod

_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_QTYPE_TEXT = {_A: "A", _AAAA: "AAAA"}
_REFUSED_TYPES = frozenset((dns.rdatatype.AXFR, dns.rdatatype.IXFR))
_META_TYPES = frozenset((dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY,
                         dns.rdatatype.MAILA, dns.rdatatype.MAILB))


def _header_only(data, rcode):
    """A bare response header (no sections) for queries we cannot parse further."""
    opcode_bits = data[2] & 0x78
    flags_hi = 0x80 | opcode_bits | (data[2] & 0x01)
    return bytes(data[:2]) + bytes((flags_hi, rcode & 0x0F)) + b"\x00" * 8


def _qtype_label(rdtype):
    """Folded when counted, not only when reported: random query types from the Internet
    must not grow a worker's counter table either."""
    try:
        return statsmod.qtype_label(dns.rdatatype.to_text(rdtype))
    except Exception:  # noqa: BLE001
        return "other"


class Outcome:
    """What the answer step decided, before any encoding."""

    __slots__ = ("kind", "rcode", "aa", "answer", "authority", "additional", "policy", "scope")

    def __init__(self, kind, rcode=dns.rcode.NOERROR, aa=False, answer=(), authority=(), additional=(),
                 policy="none", scope=0):
        self.kind = kind
        self.rcode = rcode
        self.aa = aa
        self.answer = list(answer)
        self.authority = list(authority)
        self.additional = list(additional)
        self.policy = policy
        self.scope = scope


def _options_wire(query):
    """The query's EDNS options back in wire form, for ``edns.parse_options``."""
    return b"".join(o.otype.to_bytes(2, "big") + len(w).to_bytes(2, "big") + w
                    for o in query.options for w in (o.to_wire(),))


def respond(state, q, stats, udp_max):
    """Response bytes for the query in ``q`` (a ``query.Query``), or None when nothing
    should be sent."""
    data = q.data
    if len(data) < 12:
        stats.dropped["short"] += 1
        q.outcome = querymod.DROPPED
        return None
    if data[2] & 0x80:
        stats.dropped["not_a_query"] += 1
        q.outcome = querymod.DROPPED
        return None
    if data[2] & 0x78:  # opcode other than QUERY
        stats.queries[("none", "NOTIMP", "none")] += 1
        q.outcome = querymod.NOTIMP
        return _header_only(data, dns.rcode.NOTIMP)
    q.reset()
    try:
        query = dns.message.from_wire(data, ignore_trailing=False, one_rr_per_rrset=True)
        if len(query.question) != 1 or query.answer or query.authority:
            raise ValueError("not one question")
        if query.edns >= 0:
            edns.parse_options(q, _options_wire(query))
    except Exception:  # noqa: BLE001 - any malformed packet is a FORMERR
        stats.queries[("none", "FORMERR", "none")] += 1
        q.reset()
        q.outcome = querymod.FORMERR
        return _header_only(data, dns.rcode.FORMERR)
    out = answer(state, q, query, stats)
    q.outcome = out.kind
    return encode(q, query, out, stats, udp_max)


def answer(state, q, query, stats):
    """The answer step: an ``Outcome`` for a parsed query."""
    qrrset = query.question[0]
    qname, qtype, qclass = qrrset.name, qrrset.rdtype, qrrset.rdclass
    if q.cookie is not None and edns.check_cookie(q):
        return Outcome(querymod.BADCOOKIE, edns.BADCOOKIE)
    if query.edns > 0:
        return Outcome(querymod.BADVERS, dns.rcode.BADVERS)
    if qclass != dns.rdataclass.IN or qtype in _REFUSED_TYPES:
        return Outcome(querymod.REFUSED, dns.rcode.REFUSED)
    if qtype in _META_TYPES:
        return Outcome(querymod.FORMERR, dns.rcode.FORMERR)
    zd = state.find_zone(qname)
    if zd is None:
        return Outcome(querymod.REFUSED, dns.rcode.REFUSED)
    # referral below a delegation point (not authoritative there)
    if zd.delegations:
        name = qname
        while name != zd.name and len(name) > 1:
            if name in zd.delegations:
                cut = zd.static[name][dns.rdatatype.NS]
                return Outcome(querymod.REFERRAL, authority=[cut], additional=_glue(zd, cut))
            name = name.parent()
    by_type = zd.static.get(qname, {})
    lname = qname.canonicalize().to_text()
    if qname == zd.name and qtype == dns.rdatatype.SOA:
        return Outcome(querymod.STATIC, aa=True, answer=[zd.soa])
    if qname == zd.name and qtype == dns.rdatatype.NS:
        return Outcome(querymod.STATIC, aa=True, answer=[zd.ns], additional=_glue(zd, zd.ns))
    if qtype in by_type:
        return Outcome(querymod.STATIC, aa=True, answer=[by_type[qtype]])
    if dns.rdatatype.CNAME in by_type:
        return Outcome(querymod.STATIC, aa=True, answer=[by_type[dns.rdatatype.CNAME]])
    if qtype in _QTYPE_TEXT and qname not in zd.addr_owners and zd.policy_names(lname):
        return _policy_answer(state, q, zd, qname, qtype, lname, stats)
    if qtype == dns.rdatatype.ANY and zd.zone.name_exists(lname):
        # RFC 8482: a minimal answer instead of every record set
        hinfo = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.HINFO, '"RFC8482" ""')
        return Outcome(querymod.STATIC, aa=True, answer=[dns.rrset.from_rdata_list(qname, zd.neg_ttl, [hinfo])])
    if zd.zone.name_exists(lname) or qname in zd.static or qname == zd.name:
        return Outcome(querymod.NODATA, aa=True, authority=[zd.neg_soa])
    return Outcome(querymod.NXDOMAIN, dns.rcode.NXDOMAIN, aa=True, authority=[zd.neg_soa])


def _policy_answer(state, q, zd, qname, qtype, lname, stats):
    text = _QTYPE_TEXT[qtype]
    pol, scope = fastpath.policy_for(state, zd, text, q)
    fa = state.fast_answer(pol, text) if pol is not None else None
    if fa is None:
        return Outcome(querymod.NODATA, aa=True, authority=[zd.neg_soa],
                       policy=pol.name if pol is not None else "none", scope=scope)
    rrsets = []
    for sel in fa.selectors:  # one rrset per address keeps the pool order on the wire
        packed = sel.pick(lname)
        rrset = dns.rrset.RRset(qname, dns.rdataclass.IN, qtype)
        rrset.add(dns.rdata.from_wire(dns.rdataclass.IN, qtype, packed, 0, len(packed)), fa.ttl)
        rrsets.append(rrset)
    for p in fa.prefixes:
        stats.answers[p] += 1
    return Outcome(querymod.POLICY, aa=True, answer=rrsets, policy=pol.name, scope=scope)


def _glue(zd, ns_rrset):
    glue = []
    for rd in ns_rrset:
        target = rd.target
        if not target.is_subdomain(zd.name):
            continue
        for rdtype in (_A, _AAAA):
            rrset = zd.static.get(target, {}).get(rdtype)
            if rrset is not None:
                glue.append(rrset)
    return glue


def encode(q, query, out, stats, udp_max):
    """Wire form of an ``Outcome``; EDNS options come from ``edns`` (as on the fast path)."""
    resp = dns.message.Message(id=query.id)
    resp.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    if out.aa:
        resp.flags |= dns.flags.AA
    resp.question = [query.question[0]]
    resp.answer = out.answer
    resp.authority = out.authority
    resp.additional = out.additional
    if query.edns >= 0:
        opts = [dns.edns.GenericOption(code, data) for code, data in edns.response_options(q, out.scope)]
        resp.use_edns(0, query.ednsflags & dns.flags.DO, udp_max, options=opts)
    resp.set_rcode(out.rcode)
    if q.tcp:
        limit = 65535
    elif query.edns >= 0:
        limit = max(512, min(query.payload, udp_max))
    else:
        limit = 512
    try:
        wire = resp.to_wire(max_size=limit)
    except dns.exception.TooBig:
        resp.answer = []
        resp.authority = []
        resp.additional = []
        resp.flags |= dns.flags.TC
        stats.truncated += 1
        wire = resp.to_wire(max_size=limit)
    stats.queries[(_qtype_label(query.question[0].rdtype), dns.rcode.to_text(resp.rcode()), out.policy)] += 1
    return wire
