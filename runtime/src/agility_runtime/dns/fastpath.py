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


def answer(state, data, peer, local, stats, udp_max):
    n = len(data)
    if n < 17:
        return None
    flags = data[2]
    # QR=0, opcode=0 (QUERY), AA=0, TC=0; RD is free
    if flags & 0xFE or data[4:10] != _COUNTS_QD1:
        return None
    ar = data[10:12]
    pos = 12
    bounds = []
    try:
        while True:
            length = data[pos]
            if length == 0:
                break
            if length > 63:
                return None  # compression pointer or extended label: slow path
            bounds.append(pos)
            pos += length + 1
        end = pos + 1
        qtail = data[end:end + 4]
    except IndexError:
        return None
    if end - 12 > 255:
        return None
    if qtail == _Q_A:
        qtype = "A"
    elif qtail == _Q_AAAA:
        qtype = "AAAA"
    else:
        return None
    qend = end + 4
    if ar == b"\x00\x00":
        if n != qend:
            return None
        opt = b""
    elif ar == b"\x00\x01":
        # root name, type OPT(41), class=payload, ext-rcode 0, version 0, flags, rdlen 0
        if n != qend + 11 or data[qend:qend + 3] != b"\x00\x00\x29" or data[qend + 5] != 0 \
                or data[qend + 6] != 0 or data[qend + 9:qend + 11] != b"\x00\x00":
            return None
        opt = state_opt(udp_max, data[qend + 7] & 0x80)
    else:
        return None
    qlower = data[12:end].lower()
    zones = state.zones_wire
    zd = None
    for b in bounds:
        zd = zones.get(qlower[b - 12:])
        if zd is not None:
            break
    else:
        if zones.get(b"\x00") is None:
            return None
        zd = zones[b"\x00"]
    if qlower in zd.static_wire:
        return None
    if not zd.wildcard and qlower not in zd.hostnames_wire:
        return None
    if zd.deleg_wire:
        for b in bounds:
            if qlower[b - 12:] in zd.deleg_wire:
                return None
    if state.dynamic:
        client = addrmod.peer_ip(peer)
        loc = addrmod.local_ip(local) if state.needs_local else None
        pol = state.cpf.match(qtype, zd.zone, client, loc)
    else:
        pol = zd.fixed[qtype]
    if pol is None:
        return None
    fa = state.fast[(id(pol), qtype)]
    if fa is None:
        return None
    head = data[:2] + bytes((0x84 | (flags & 0x01), data[3] & 0x10))
    rr = fa.rr_head
    if fa.needs_qname:
        qn = qname_text(qlower)
        body = b"".join(rr + s.pick(qn) for s in fa.selectors)
    elif fa.count == 1:
        body = rr + fa.selectors[0].pick()
    else:
        body = b"".join(rr + s.pick() for s in fa.selectors)
    if opt:
        counts = b"\x00\x01\x00" + bytes((fa.count,)) + b"\x00\x00\x00\x01"
    else:
        counts = b"\x00\x01\x00" + bytes((fa.count,)) + b"\x00\x00\x00\x00"
    stats.queries[fa.stat_key] += 1
    answers = stats.answers
    for p in fa.prefixes:
        answers[p] += 1
    return head + counts + data[12:qend] + body + opt


_OPT_CACHE = {}


def state_opt(udp_max, do):
    key = (udp_max, do)
    opt = _OPT_CACHE.get(key)
    if opt is None:
        opt = b"\x00\x00\x29" + udp_max.to_bytes(2, "big") + b"\x00\x00" + bytes((do, 0)) + b"\x00\x00"
        _OPT_CACHE[key] = opt
    return opt
