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

from agility_runtime.dns import addr as addrmod

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
    try:
        return dns.rdatatype.to_text(rdtype)
    except Exception:  # noqa: BLE001
        return "TYPE%d" % rdtype


def _ecs_of(query):
    for opt in query.options:
        if isinstance(opt, dns.edns.ECSOption):
            return opt
    return None


def match_policy(state, qtype, zd, client, local):
    """(policy or None, ECS scope): the policy ``cpf.match`` picks, and the ECS scope:
    the longest client_subnets prefix that decided the outcome (the matching subnet of
    the chosen policy, and subnets of earlier policies that failed only because of the
    client); 0 when the client address did not matter."""
    pol = state.cpf.match(qtype, zd.zone, client, local)
    scope = 0
    if client is None:
        return pol, 0
    zone = zd.zone
    for cand in state.policies:
        nets = cand.client_subnets
        if nets:
            for net in nets:
                if net.version != client.version or net.prefixlen <= scope:
                    continue
                if cand is pol:
                    if client in net:
                        scope = net.prefixlen
                elif cand.matches(qtype, zone.name, zone.account_type, net.network_address, local):
                    scope = net.prefixlen  # would have matched a client in that subnet
        if cand is pol:
            break
    return pol, scope


def respond(state, data, peer, local, stats, udp_max, tcp=False):
    """Response bytes for ``data``, or None when nothing should be sent."""
    if len(data) < 12:
        stats.dropped["short"] += 1
        return None
    if data[2] & 0x80:
        stats.dropped["not_a_query"] += 1
        return None
    if data[2] & 0x78:  # opcode other than QUERY
        stats.queries[("none", "NOTIMP", "none")] += 1
        return _header_only(data, dns.rcode.NOTIMP)
    try:
        query = dns.message.from_wire(data, ignore_trailing=False, one_rr_per_rrset=True)
    except Exception:  # noqa: BLE001 - any malformed packet is a FORMERR
        stats.queries[("none", "FORMERR", "none")] += 1
        return _header_only(data, dns.rcode.FORMERR)
    if len(query.question) != 1 or query.answer or query.authority:
        stats.queries[("none", "FORMERR", "none")] += 1
        return _header_only(data, dns.rcode.FORMERR)
    qrrset = query.question[0]
    qname, qtype, qclass = qrrset.name, qrrset.rdtype, qrrset.rdclass
    qlabel = _qtype_label(qtype)
    resp = dns.message.Message(id=query.id)
    resp.flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    resp.question = [qrrset]
    ecs = None
    if query.edns >= 0:
        ecs = _ecs_of(query)
        resp.use_edns(0, query.ednsflags & dns.flags.DO, udp_max)
        if query.edns > 0:
            resp.set_rcode(dns.rcode.BADVERS)
            return _finish(resp, query, qlabel, "none", stats, udp_max, tcp, ecs, 0)
    policy_name = "none"
    scope = 0
    if qclass != dns.rdataclass.IN or qtype in _REFUSED_TYPES:
        resp.set_rcode(dns.rcode.REFUSED)
        return _finish(resp, query, qlabel, policy_name, stats, udp_max, tcp, ecs, scope)
    if qtype in _META_TYPES:
        resp.set_rcode(dns.rcode.FORMERR)
        return _finish(resp, query, qlabel, policy_name, stats, udp_max, tcp, ecs, scope)
    zd = state.find_zone(qname)
    if zd is None:
        resp.set_rcode(dns.rcode.REFUSED)
        return _finish(resp, query, qlabel, policy_name, stats, udp_max, tcp, ecs, scope)
    # referral below a delegation point (not authoritative there)
    if zd.delegations:
        name = qname
        while name != zd.name and len(name) > 1:
            if name in zd.delegations:
                cut = zd.static[name][dns.rdatatype.NS]
                resp.authority.append(cut)
                _add_glue(resp, zd, cut)
                return _finish(resp, query, qlabel, policy_name, stats, udp_max, tcp, ecs, scope)
            name = name.parent()
    resp.flags |= dns.flags.AA
    by_type = zd.static.get(qname, {})
    lname = qname.canonicalize().to_text()
    if qname == zd.name and qtype == dns.rdatatype.SOA:
        resp.answer.append(zd.soa)
    elif qname == zd.name and qtype == dns.rdatatype.NS:
        resp.answer.append(zd.ns)
        _add_glue(resp, zd, zd.ns)
    elif qtype in by_type:
        resp.answer.append(by_type[qtype])
    elif dns.rdatatype.CNAME in by_type:
        resp.answer.append(by_type[dns.rdatatype.CNAME])
    elif qtype in _QTYPE_TEXT and qname not in zd.addr_owners and zd.policy_names(lname):
        client = None
        if ecs is not None:
            if ecs.srclen:
                client = addrmod.local_ip(ecs.address)
        else:
            client = addrmod.peer_ip(peer)
        loc = addrmod.local_ip(local) if state.needs_local else None
        pol, scope = match_policy(state, _QTYPE_TEXT[qtype], zd, client, loc)
        fa = state.fast_answer(pol, _QTYPE_TEXT[qtype]) if pol is not None else None
        if fa is not None:
            for sel in fa.selectors:  # one rrset per address keeps the pool order on the wire
                packed = sel.pick(lname)
                rrset = dns.rrset.RRset(qname, dns.rdataclass.IN, qtype)
                rrset.add(dns.rdata.from_wire(dns.rdataclass.IN, qtype, packed, 0, len(packed)), fa.ttl)
                resp.answer.append(rrset)
            policy_name = pol.name
            for p in fa.prefixes:
                stats.answers[p] += 1
        else:
            if pol is not None:
                policy_name = pol.name
            resp.authority.append(zd.neg_soa)
    elif qtype == dns.rdatatype.ANY and zd.zone.name_exists(lname):
        # RFC 8482: a minimal answer instead of every record set
        hinfo = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.HINFO, '"RFC8482" ""')
        resp.answer.append(dns.rrset.from_rdata_list(qname, zd.neg_ttl, [hinfo]))
    elif zd.zone.name_exists(lname) or qname in zd.static or qname == zd.name:
        resp.authority.append(zd.neg_soa)  # NODATA
    else:
        resp.set_rcode(dns.rcode.NXDOMAIN)
        resp.authority.append(zd.neg_soa)
    return _finish(resp, query, qlabel, policy_name, stats, udp_max, tcp, ecs, scope)


def _add_glue(resp, zd, ns_rrset):
    for rd in ns_rrset:
        target = rd.target
        if not target.is_subdomain(zd.name):
            continue
        for rdtype in (_A, _AAAA):
            rrset = zd.static.get(target, {}).get(rdtype)
            if rrset is not None:
                resp.additional.append(rrset)


def _finish(resp, query, qlabel, policy_name, stats, udp_max, tcp, ecs, scope):
    if ecs is not None:
        resp.use_edns(0, resp.ednsflags, udp_max,
                      options=[dns.edns.ECSOption(ecs.address, ecs.srclen, scope)])
    if tcp:
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
    stats.queries[(qlabel, dns.rcode.to_text(resp.rcode()), policy_name)] += 1
    return wire
