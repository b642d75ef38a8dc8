"""Blocking UDP loop: recvmsg with packet info, reply from the query's destination.

One thread per UDP socket.  Plain blocking sockets (no asyncio): per datagram one
``recvmsg`` and one ``sendmsg``; the reply carries IP_PKTINFO / IPV6_PKTINFO with
the address the query was sent to, so replies for sk_lookup-steered prefixes leave
from the right source.
"""

import socket

from agility_runtime.dns import fastpath, handler, rrl
from agility_runtime.dns.query import Query
from agility_runtime.inet import IP_PKTINFO, IPV6_PKTINFO

_MSG_TRUNC = int(socket.MSG_TRUNC)  # a plain int: IntFlag's __and__ costs a Python call per datagram
_IPPROTO_IP = socket.IPPROTO_IP
_IPPROTO_IPV6 = socket.IPPROTO_IPV6
_ZERO4 = b"\x00\x00\x00\x00"


def reply_cmsg(family, level, ctype, cdata):
    """(ancillary data for the reply, local address bytes) from one received cmsg."""
    if family == socket.AF_INET and level == _IPPROTO_IP and ctype == IP_PKTINFO and len(cdata) >= 12:
        local = cdata[8:12]
        return [(_IPPROTO_IP, IP_PKTINFO, _ZERO4 + local + _ZERO4)], local
    if family == socket.AF_INET6 and level == _IPPROTO_IPV6 and ctype == IPV6_PKTINFO and len(cdata) >= 20:
        return [(_IPPROTO_IPV6, IPV6_PKTINFO, cdata[:20])], cdata[:16]
    return None, None


def serve(sock, holder, stats, udp_max, limiter=None):
    family = sock.family
    recvmsg = sock.recvmsg
    sendmsg = sock.sendmsg
    sendto = sock.sendto
    fast = fastpath.answer
    slow = handler.slow
    space = socket.CMSG_SPACE(20)
    cache = {}
    while True:
        try:
            data, anc, flags, peer = recvmsg(4096, space)
        except InterruptedError:
            continue
        except OSError:
            if sock.fileno() < 0:
                return
            stats.dropped["recv_error"] += 1
            continue
        if flags & _MSG_TRUNC:
            stats.dropped["oversize"] += 1
            continue
        cm = local = None
        if anc:
            level, ctype, cdata = anc[0]
            hit = cache.get(cdata)
            if hit is None:
                hit = reply_cmsg(family, level, ctype, cdata)
                if len(cache) > 4096:
                    cache.clear()
                cache[cdata] = hit
            cm, local = hit
        st = holder.state
        q = Query(data, peer, local)
        try:
            resp = fast(st, q, stats, udp_max)
        except Exception:  # noqa: BLE001 - the slow path copes (or answers SERVFAIL)
            resp = None
        if resp is None:
            resp = slow(st, q, stats, udp_max)
            if resp is None:
                continue
        if limiter is not None:
            # RRL judges the answer, as Knot does: after the pipeline has checked the
            # client's server cookie (a valid one proves the source is not spoofed)
            verdict = limiter.check(peer[0], stats, cookie_valid=q.cookie_valid)
            if verdict != rrl.PASS:
                if verdict != rrl.SLIP:
                    continue
                resp = rrl.truncated(data)
                if resp is None:
                    continue
        try:
            if cm is not None:
                sendmsg((resp,), cm, 0, peer)
            else:
                sendto(resp, peer)
        except OSError:
            stats.dropped["send_error"] += 1
