"""The answer pipeline without dnspython, for the common query: one A/AAAA question,
class IN, no compression, optionally one EDNS0 OPT record (version 0) with any
options (COOKIE, ECS, NSID and unknown ones), answered by a policy.

``answer(state, q, stats, udp_max)`` returns the response bytes, or ``None`` when the
query needs the dnspython path (``slowpath``), which produces byte-identical output
for the queries handled here (tests check that).

Steps, per query: find the end of the question; look the question up in the plan
cache (the decision for these exact question bytes: ``decide``); read the OPT
record's options (``edns.parse_options``, shared with the slow path); encode.
The plan cache only saves the zone lookup; unique names (every real resolver's
traffic) take ``decide`` each time, and so do names of zone-store zones (never cached:
an update must show in the next answer).  The response OPT record is memoised per
(option bytes, client address) for ``edns.MEMO_SECONDS``: a resolver sends the same
client cookie and ECS prefix again and again, whatever the name.

Response layout (what ``dns.message`` would write): header with QR|AA, RD and CD
copied; the question copied byte for byte (letter case preserved); one answer RR
per address, owner compressed to a pointer at offset 12; an OPT record when the
query had one (payload = our UDP maximum, DO copied, options from ``edns``).
"""

import time

from agility_runtime.dns import addr as addrmod, edns, query as querymod

_time = time.monotonic
_Q_A = b"\x00\x01\x00\x01"
_Q_AAAA = b"\x00\x1c\x00\x01"
_COUNTS_QD1 = b"\x00\x01\x00\x00\x00\x00"
_OPT_ROOT = b"\x00\x00\x29"
PLAN_CACHE_MAX = 65536
DECLINE = "decline"


def qname_text(wire):
    """Lower-case wire name (uncompressed) -> absolute text name."""
    labels = []
    pos = 0
    while True:
        length = wire[pos]
        if length == 0:
            break
        labels.append(wire[pos + 1:pos + 1 + length].decode("latin-1"))
        pos += length + 1
    return ".".join(labels) + "." if labels else "."


class Plan:
    """The decision for one question: which policy answers, and the response bytes
    after the ID up to the answers (flags, counts, question as the client wrote it)."""

    __slots__ = ("fast", "prefix", "qname", "zone", "qtype")

    def __init__(self, fast, prefix, qname, zone, qtype):
        self.fast = fast      # state.FastAnswer, or None when the policy depends on the client
        self.prefix = prefix
        self.qname = qname    # lower-case text name when a partition strategy needs it
        self.zone = zone
        self.qtype = qtype


def answer(state, q, stats, udp_max):
    """Response bytes, or None to let the slow path answer."""
    data = q.data
    n = len(data)
    if n < 17:
        return None
    pos = 12
    try:
        length = data[pos]
        while length:
            if length > 63:
                return None  # compression pointer or extended label: slow path
            pos += length + 1
            length = data[pos]
    except IndexError:
        return None
    qend = pos + 5
    if qend > n:
        return None
    key = data[2:qend]
    plans = state.plans
    plan = plans.get(key)
    if plan is None:
        plan = decide(state, data, qend)
        # a store zone can change under us at any time: its plans are made per query
        if plan is DECLINE or not plan.zone.from_store:
            if len(plans) >= PLAN_CACHE_MAX:
                plans.clear()
            plans[key] = plan
    if plan is DECLINE:
        return None
    scope = 0
    if data[11] == 0:
        if n != qend:
            return None
        opt = b""
    else:
        # root owner, type OPT, class = payload, ext-rcode 0, version 0, flags, rdlength
        if data[qend:qend + 3] != _OPT_ROOT or n < qend + 11 or data[qend + 5] or data[qend + 6]:
            return None
        if qend + 11 + ((data[qend + 9] << 8) | data[qend + 10]) != n:
            return None
        do = data[qend + 7] & 0x80
        if n == qend + 11:
            opt = plain_opt(udp_max, do)
        else:
            opt = None
            rdata = data[qend + 11:]
            if plan.fast is not None:  # the options' answer does not depend on the policy: memo
                memo_key = (rdata, q.peer[0] if q.peer else None, do, udp_max)
                memo = edns.SETTINGS.memo
                hit = memo.get(memo_key)
                if hit is not None and hit[0] > _time():
                    opt, q.cookie, q.ecs, q.nsid, q.server_cookie, q.cookie_valid = hit[1:]
            if opt is None:
                try:
                    edns.parse_options(q, rdata)
                except edns.FormErr:
                    q.reset()
                    return None
                if q.cookie is not None and edns.check_cookie(q):
                    q.reset()
                    return None  # BADCOOKIE: the slow path writes it
                if plan.fast is not None:
                    opt = edns.opt_record(udp_max, do, edns.options_wire(edns.response_options(q)))
                    if len(memo) >= PLAN_CACHE_MAX:
                        memo.clear()
                    memo[memo_key] = (_time() + edns.MEMO_SECONDS, opt, q.cookie, q.ecs, q.nsid,
                                      q.server_cookie, q.cookie_valid)
    fa = plan.fast
    if fa is None:  # the policy depends on the client or local address
        pol, scope = policy_for(state, plan.zone, plan.qtype, q)
        if pol is None:
            q.reset()
            return None
        fa = state.fast[(id(pol), plan.qtype)]
        if fa is None:
            q.reset()
            return None
        prefix = plan.prefix
        prefix = prefix[:5] + bytes((fa.count,)) + prefix[6:]
    else:
        prefix = plan.prefix
    if opt is None:
        opt = edns.opt_record(udp_max, do, edns.options_wire(edns.response_options(q, scope)))
    rr = fa.rr_head
    if fa.count == 1:
        body = rr + fa.selectors[0].pick(plan.qname)
    else:
        body = b"".join(rr + s.pick(plan.qname) for s in fa.selectors)
    stats.queries[fa.stat_key] += 1
    answers = stats.answers
    for p in fa.prefixes:
        answers[p] += 1
    q.outcome = querymod.POLICY
    return data[:2] + prefix + body + opt


def decide(state, data, qend):
    """The answer step for a question the fast path can encode: a ``Plan``, or
    DECLINE (static data, NXDOMAIN, referral, other types: the slow path)."""
    flags = data[2]
    # QR=0, opcode=0 (QUERY), AA=0, TC=0; RD is free; at most one additional (OPT)
    if flags & 0xFE or data[4:10] != _COUNTS_QD1 or data[10] or data[11] > 1:
        return DECLINE
    if qend - 16 > 255:
        return DECLINE
    qtail = data[qend - 4:qend]
    if qtail == _Q_A:
        qtype = "A"
    elif qtail == _Q_AAAA:
        qtype = "AAAA"
    else:
        return DECLINE
    qlower = bytes(data[12:qend - 4]).lower()
    bounds = []
    pos = 0
    while qlower[pos]:
        bounds.append(pos)
        pos += qlower[pos] + 1
    zones = state.zones_wire
    zd = None
    for b in bounds:
        zd = zones.get(qlower[b:])
        if zd is not None:
            break
    else:
        zd = zones.get(b"\x00")
        if zd is None and state.store is not None:
            zd = state.store_zone(qlower)
        if zd is None:
            return DECLINE
    if qlower in zd.static_wire:
        return DECLINE
    if not zd.wildcard and qlower not in zd.hostnames_wire:
        return DECLINE
    if zd.deleg_wire:
        for b in bounds:
            if qlower[b:] in zd.deleg_wire:
                return DECLINE
    if zd.wild_shadow_wire:  # a static wildcard may synthesise A/AAAA/CNAME here (RFC 4592)
        for b in bounds[1:]:
            if qlower[b:] in zd.wild_shadow_wire:
                return DECLINE
    if state.dynamic:
        fa = None
        count = 1
    else:
        pol = zd.fixed[qtype]
        if pol is None:
            return DECLINE
        fa = state.fast[(id(pol), qtype)]
        if fa is None:
            return DECLINE
        count = fa.count
    head = bytes((0x84 | (flags & 0x01), data[3] & 0x10))
    counts = b"\x00\x01\x00" + bytes((count,)) + b"\x00\x00\x00" + bytes((data[11],))
    partition = state.__dict__.get("_fast_partition")
    if partition is None:  # once per state: does any selector need the name?
        partition = state._fast_partition = any(s.strategy == "partition" for p in state.policies
                                                for s in p.selectors.values())
    qn = qname_text(qlower) if partition else None
    return Plan(fa, head + counts + bytes(data[12:qend]), qn, zd, qtype)


def ecs_client(ecs):
    """The client address an ECS option stands for (None for source prefix 0)."""
    family, srclen, addr = ecs
    if not srclen:
        return None
    return addrmod.local_ip(addr.ljust(4 if family == 1 else 16, b"\x00"))


def policy_for(state, zd, qtype, q):
    """(policy or None, ECS scope) for a query whose policy depends on who asks."""
    loc = addrmod.local_ip(q.local) if state.needs_local else None
    if q.ecs is None:
        return state.cpf.match(qtype, zd.zone, addrmod.peer_ip(q.peer), loc), 0
    return match_policy(state, qtype, zd, ecs_client(q.ecs), loc)


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


_OPT_CACHE = {}


def plain_opt(udp_max, do):
    """The OPT record for a query whose OPT had no options (cached)."""
    key = (udp_max, do)
    opt = _OPT_CACHE.get(key)
    if opt is None:
        opt = _OPT_CACHE[key] = edns.opt_record(udp_max, do)
    return opt
