"""One query in, one response (or None) out: the fast path first, then dnspython."""

from agility_runtime.dns import fastpath, log, slowpath

_ERRORS = {"n": 0}


def handle(state, data, peer, local, stats, udp_max, tcp=False):
    try:
        resp = fastpath.answer(state, data, peer, local, stats, udp_max)
    except Exception:  # noqa: BLE001 - never let a packet kill the loop
        resp = None
    if resp is not None:
        return resp
    return slow(state, data, peer, local, stats, udp_max, tcp)


def slow(state, data, peer, local, stats, udp_max, tcp=False):
    try:
        return slowpath.respond(state, data, peer, local, stats, udp_max, tcp)
    except Exception as exc:  # noqa: BLE001
        stats.dropped["internal_error"] += 1
        _ERRORS["n"] += 1
        if _ERRORS["n"] <= 10 or _ERRORS["n"] % 10000 == 0:
            log.error("internal_error", error=repr(exc), count=_ERRORS["n"], packet=bytes(data[:64]).hex())
        if len(data) >= 12 and not data[2] & 0x80:
            return slowpath._header_only(data, 2)  # SERVFAIL
        return None
