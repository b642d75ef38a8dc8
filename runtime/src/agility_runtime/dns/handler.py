"""One query in, one response (or None) out: the answer pipeline.

``respond`` runs the fast path (``fastpath``) and, when it declines, the dnspython
path (``slowpath``) on the same ``query.Query`` context; an internal error becomes
SERVFAIL, never a dead loop.
"""

from agility_runtime.dns import fastpath, log, slowpath
from agility_runtime.dns.query import Query

_ERRORS = {"n": 0}


def handle(state, data, peer, local, stats, udp_max, tcp=False):
    """Response bytes for one message (or None)."""
    return respond(state, Query(data, peer, local, tcp), stats, udp_max)


def respond(state, q, stats, udp_max):
    try:
        resp = fastpath.answer(state, q, stats, udp_max)
    except Exception:  # noqa: BLE001 - never let a packet kill the loop
        resp = None
    if resp is not None:
        return resp
    return slow(state, q, stats, udp_max)


def slow(state, q, stats, udp_max):
    try:
        return slowpath.respond(state, q, stats, udp_max)
    except Exception as exc:  # noqa: BLE001
        data = q.data
        stats.dropped["internal_error"] += 1
        _ERRORS["n"] += 1
        if _ERRORS["n"] <= 10 or _ERRORS["n"] % 10000 == 0:
            log.error("internal_error", error=repr(exc), count=_ERRORS["n"], packet=bytes(data[:64]).hex())
        if len(data) >= 12 and not data[2] & 0x80:
            return slowpath._header_only(data, 2)  # SERVFAIL
        return None
