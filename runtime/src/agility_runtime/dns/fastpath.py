"""Hand-written wire fast path for the hot query: one A/AAAA question, class IN,
optionally one plain EDNS0 OPT record (version 0, no options), answered by a policy.

``answer(state, data, peer, local, stats)`` returns the response bytes, or ``None``
when the query is anything else; the caller then uses the dnspython slow path, which
produces byte-identical output for the cases handled here (tests check that).

Response layout (what ``dns.message`` would write): header with QR|AA, RD and CD
copied; the question copied byte for byte (letter case preserved); one answer RR
per address, owner compressed to a pointer at offset 12; an OPT record when the
query had one (payload = our UDP maximum, DO copied).
"""

from agility_runtime.dns import addr as addrmod

_Q_A = b"\x00\x01\x00\x01"
_Q_AAAA = b"\x00\x1c\x00\x01"
_COUNTS_QD1 = b"\x00\x01\x00\x00\x00\x00"


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


PLAN_CACHE_MAX = 65536


def answer(state, data, peer, local, stats, udp_max):
    """Response bytes, or None to let the slow path answer."""
    key = data[2:]
    plans = state.plans
    plan = plans.get(key)
    if plan is None:
        if len(data) < 17:
            return None
        plan = make_plan(state, data, udp_max)
        if len(plans) >= PLAN_CACHE_MAX:
            plans.clear()
        plans[key] = plan
    if plan is False:
        return None
    fa, prefix, suffix, qn, zd, qtype = plan
    if fa is None:  # the policy depends on the client or local address
        pol = state.cpf.match(qtype, zd.zone, addrmod.peer_ip(peer),
                              addrmod.local_ip(local) if state.needs_local else None)
        if pol is None:
            return None
        fa = state.fast[(id(pol), qtype)]
        if fa is None:
            return None
        prefix = prefix[:5] + bytes((fa.count,)) + prefix[6:]
    rr = fa.rr_head
    if fa.count == 1:
        body = rr + fa.selectors[0].pick(qn)
    else:
        body = b"".join(rr + s.pick(qn) for s in fa.selectors)
    stats.queries[fa.stat_key] += 1
    answers = stats.answers
    for p in fa.prefixes:
        answers[p] += 1
    return data[:2] + prefix + body + suffix


def make_plan(state, data, udp_max):
    """Parse a query once: False if the fast path does not take it, else the tuple
    (fast answer or None when it depends on the client, response bytes after the ID
    up to the answers, bytes after the answers, qname text or None, zone, qtype)."""
    n = len(data)
    flags = data[2]
    # QR=0, opcode=0 (QUERY), AA=0, TC=0; RD is free
    if flags & 0xFE or data[4:10] != _COUNTS_QD1:
        return False
    ar = data[10:12]
    pos = 12
    bounds = []
    try:
        while True:
            length = data[pos]
            if length == 0:
                break
            if length > 63:
                return False  # compression pointer or extended label: slow path
            bounds.append(pos)
            pos += length + 1
        end = pos + 1
        qtail = data[end:end + 4]
    except IndexError:
        return False
    if end - 12 > 255:
        return False
    if qtail == _Q_A:
        qtype = "A"
    elif qtail == _Q_AAAA:
        qtype = "AAAA"
    else:
        return False
    qend = end + 4
    if ar == b"\x00\x00":
        if n != qend:
            return False
        opt = b""
    elif ar == b"\x00\x01":
        # root name, type OPT(41), class=payload, ext-rcode 0, version 0, flags, rdlen 0
        if n != qend + 11 or data[qend:qend + 3] != b"\x00\x00\x29" or data[qend + 5] != 0 \
                or data[qend + 6] != 0 or data[qend + 9:qend + 11] != b"\x00\x00":
            return False
        opt = state_opt(udp_max, data[qend + 7] & 0x80)
    else:
        return False
    qlower = bytes(data[12:end]).lower()
    zones = state.zones_wire
    zd = None
    for b in bounds:
        zd = zones.get(qlower[b - 12:])
        if zd is not None:
            break
    else:
        zd = zones.get(b"\x00")
        if zd is None:
            return False
    if qlower in zd.static_wire:
        return False
    if not zd.wildcard and qlower not in zd.hostnames_wire:
        return False
    if zd.deleg_wire:
        for b in bounds:
            if qlower[b - 12:] in zd.deleg_wire:
                return False
    if state.dynamic:
        fa = None
        count = 1
    else:
        pol = zd.fixed[qtype]
        if pol is None:
            return False
        fa = state.fast[(id(pol), qtype)]
        if fa is None:
            return False
        count = fa.count
    head = bytes((0x84 | (flags & 0x01), data[3] & 0x10))
    counts = b"\x00\x01\x00" + bytes((count,)) + b"\x00\x00\x00" + (b"\x01" if opt else b"\x00")
    qn = None
    if any(s.strategy == "partition" for p in state.policies for s in p.selectors.values()):
        qn = qname_text(qlower)
    return (fa, head + counts + bytes(data[12:qend]), opt, qn, zd, qtype)


_OPT_CACHE = {}


def state_opt(udp_max, do):
    key = (udp_max, do)
    opt = _OPT_CACHE.get(key)
    if opt is None:
        opt = b"\x00\x00\x29" + udp_max.to_bytes(2, "big") + b"\x00\x00" + bytes((do, 0)) + b"\x00\x00"
        _OPT_CACHE[key] = opt
    return opt
