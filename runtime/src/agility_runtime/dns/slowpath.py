"""dnspython path: every query the fast path declines.

Handles errors (FORMERR, NOTIMP, BADVERS, REFUSED), static records, SOA/NS at the
apex, NXDOMAIN/NODATA with the SOA in authority, referrals, EDNS payload size and
truncation, EDNS Client Subnet (echoed; scope 0 unless a client_subnets policy
decided the answer) and policy answers for queries the fast path does not take.
"""

import struct

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
import dns.rdtypes.ANY.TXT
import dns.rrset

from agility_runtime.dns import edns, fastpath, query as querymod, stats as statsmod

_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_CNAME = dns.rdatatype.CNAME
_DS = dns.rdatatype.DS
_NS = dns.rdatatype.NS
MAX_CNAME_CHAIN = 8  # names followed after the first; a longer chain is left to the resolver
_CH_IDENTITY = frozenset(dns.name.from_text(n) for n in ("id.server.", "hostname.bind."))
_CH_VERSION = frozenset(dns.name.from_text(n) for n in ("version.bind.", "version.server."))
_QTYPE_TEXT = {_A: "A", _AAAA: "AAAA"}
_REFUSED_TYPES = frozenset((dns.rdatatype.AXFR, dns.rdatatype.IXFR))
_META_TYPES = frozenset((dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY,
                         dns.rdatatype.MAILA, dns.rdatatype.MAILB))


def _header_only(data, rcode):
    """A bare response header (no sections) for queries we cannot parse further."""
    opcode_bits = data[2] & 0x78
    flags_hi = 0x80 | opcode_bits | (data[2] & 0x01)
    return bytes(data[:2]) + bytes((flags_hi, rcode & 0x0F)) + b"\x00" * 8


def formerr(data, udp_max):
    """FORMERR for a query that does not parse as a whole: the header, the question when there
    is exactly one and it reads, and an OPT record when the query carried exactly one that
    reads (RFC 6891 7; Knot does the same), so the client still sees our EDNS support."""
    data = bytes(data)
    question = opt = b""
    try:
        qdcount, ancount, nscount, arcount = struct.unpack_from(">4H", data, 4)
        pos = 12
        for _question in range(qdcount):
            pos += dns.name.from_wire(data, pos)[1] + 4
            if pos > len(data):
                raise ValueError("question runs past the message")
        if qdcount == 1:
            question = data[12:pos]
        flags = []
        for i in range(ancount + nscount + arcount):
            owner, used = dns.name.from_wire(data, pos)
            rdtype, _rdclass, ttl, rdlength = struct.unpack_from(">HHIH", data, pos + used)
            pos += used + 10 + rdlength
            if pos > len(data):
                raise ValueError("record runs past the message")
            if i >= ancount + nscount and rdtype == dns.rdatatype.OPT and owner == dns.name.root:
                flags.append(ttl & 0xFFFF)
        if len(flags) == 1:
            opt = edns.opt_record(udp_max, (flags[0] >> 8) & 0x80)
    except Exception:  # noqa: BLE001 - keep what did read
        pass
    head = bytearray(_header_only(data, dns.rcode.FORMERR))
    head[5] = 1 if question else 0
    head[11] = 1 if opt else 0
    return bytes(head) + question + opt


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
        return formerr(data, udp_max)
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
    if qclass == dns.rdataclass.CH:
        return _chaos(qname, qtype)
    if qclass != dns.rdataclass.IN or qtype in _REFUSED_TYPES:
        return Outcome(querymod.REFUSED, dns.rcode.REFUSED)
    if qtype in _META_TYPES:
        return Outcome(querymod.FORMERR, dns.rcode.FORMERR)
    zd = state.find_zone(qname)
    if zd is None:
        return Outcome(querymod.REFUSED, dns.rcode.REFUSED)
    if qtype == _DS and qname == zd.name and len(qname) > 1:
        # DS is the parent's data (RFC 4035 3.1.4.1): answer from the parent zone if we serve it
        zd = state.find_zone(qname.parent()) or zd
    out, target = _lookup(state, q, zd, qname, qtype, stats)
    if target is None or qtype in (_CNAME, dns.rdatatype.ANY):
        return out
    # chase the CNAME chain inside the zone (as Knot does), each name once
    answers = list(out.answer)
    seen = {qname}
    while target is not None and target not in seen and len(seen) <= MAX_CNAME_CHAIN \
            and target.is_subdomain(zd.name) and state.find_zone(target) is zd:
        seen.add(target)
        out, target = _lookup(state, q, zd, target, qtype, stats)
        answers.extend(out.answer)
        out.answer = answers
        out.aa = True  # the first name's CNAME is ours: authoritative even before a referral
    return out


def _lookup(state, q, zd, qname, qtype, stats):
    """(Outcome for ``qname`` in zone ``zd``, the CNAME target to follow or None)."""
    if zd.delegations:
        name = qname
        while name != zd.name and len(name) > 1:
            if name in zd.delegations:
                if name == qname and qtype == _DS:  # parent-side data at the cut (RFC 4035 3.1.4.1)
                    ds = zd.static[name].get(_DS)
                    if ds is not None:
                        return Outcome(querymod.STATIC, aa=True, answer=[ds]), None
                    return Outcome(querymod.NODATA, aa=True, authority=[zd.neg_soa]), None
                cut = zd.static[name][_NS]
                return Outcome(querymod.REFERRAL, authority=[cut], additional=_glue(zd, cut)), None
            name = name.parent()
    if qname == zd.name and qtype == dns.rdatatype.SOA:
        return Outcome(querymod.STATIC, aa=True, answer=[zd.soa]), None
    if qname == zd.name and qtype == _NS:
        return Outcome(querymod.STATIC, aa=True, answer=[zd.ns], additional=_glue(zd, zd.ns)), None
    by_type = zd.static.get(qname)
    source = None
    if by_type is None:
        by_type = {}
        source = zd.source_of(qname)
        if source is not None:  # RFC 4592 synthesis: the wildcard's data with the owner qname
            by_type = zd.static.get(source, {})
    if qtype in by_type:
        rrset = by_type[qtype]
        if source is not None:
            rrset = dns.rrset.from_rdata_list(qname, rrset.ttl, list(rrset))
        return Outcome(querymod.STATIC, aa=True, answer=[rrset], additional=_additional(zd, rrset)), None
    if _CNAME in by_type:
        rrset = by_type[_CNAME]
        if source is not None:
            rrset = dns.rrset.from_rdata_list(qname, rrset.ttl, list(rrset))
        return Outcome(querymod.STATIC, aa=True, answer=[rrset]), rrset[0].target
    lname = qname.canonicalize().to_text()
    if qtype in _QTYPE_TEXT and _A not in by_type and _AAAA not in by_type \
            and (zd.policy_names(lname) or source in zd.wild_hosts):
        return _policy_answer(state, q, zd, qname, qtype, lname, stats), None
    exists = zd.wildcard or qname in zd.names or source is not None
    if qtype == dns.rdatatype.ANY and exists:
        # RFC 8482: a minimal answer instead of every record set
        hinfo = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.HINFO, '"RFC8482" ""')
        return Outcome(querymod.STATIC, aa=True,
                       answer=[dns.rrset.from_rdata_list(qname, zd.neg_ttl, [hinfo])]), None
    if exists:
        return Outcome(querymod.NODATA, aa=True, authority=[zd.neg_soa]), None
    return Outcome(querymod.NXDOMAIN, dns.rcode.NXDOMAIN, aa=True, authority=[zd.neg_soa]), None


def _chaos(qname, qtype):
    """CH TXT id.server / hostname.bind (the PoP identity, ``--nsid``) and version.bind /
    version.server (``--server-version``), answered as Knot does (TTL 0, AA clear); REFUSED
    when not configured, and for every other CH question."""
    text = None
    if qtype == dns.rdatatype.TXT:
        if qname in _CH_IDENTITY:
            text = edns.SETTINGS.nsid
        elif qname in _CH_VERSION:
            text = edns.SETTINGS.version
    if not text:
        return Outcome(querymod.REFUSED, dns.rcode.REFUSED)
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)]
    rrset = dns.rrset.RRset(qname, dns.rdataclass.CH, dns.rdatatype.TXT)
    rrset.add(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.CH, dns.rdatatype.TXT, chunks), 0)
    return Outcome(querymod.STATIC, answer=[rrset])


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
    return _addresses(zd, [rd.target for rd in ns_rrset])


def _additional(zd, rrset):
    """Static addresses of in-zone NS, MX and SRV targets (RFC 1034 3.6.2, RFC 2782)."""
    rdtype = rrset.rdtype
    if rdtype == _NS or rdtype == dns.rdatatype.SRV:
        return _addresses(zd, [rd.target for rd in rrset])
    if rdtype == dns.rdatatype.MX:
        return _addresses(zd, [rd.exchange for rd in rrset])
    return []


def _addresses(zd, targets):
    out = []
    seen = set()
    for target in targets:
        if target in seen or not target.is_subdomain(zd.name):
            continue
        seen.add(target)
        by_type = zd.static.get(target, {})
        for rdtype in (_A, _AAAA):
            rrset = by_type.get(rdtype)
            if rrset is not None:
                out.append(rrset)
    return out


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
