"""EDNS0 options: the one place where a query's options are read and a response's
OPT record is written, for the fast path and the dnspython path alike.

Read: COOKIE (RFC 7873, server cookies checked and made by ``cookies``), Client
Subnet (RFC 7871), NSID (RFC 5001); other options are ignored (RFC 6891 6.1.2).
A malformed COOKIE or ECS option, or a second one, is a FORMERR (an ECS address
longer than its prefix is cut to the prefix, as dnspython and Knot accept it).

Written: NSID (when configured and asked for), COOKIE (the client cookie and our
server cookie), ECS (the query's family, source prefix and address with our scope).
"""

import socket

from agility_runtime.dns import cookies as cookiesmod

OPT_NSID = 3
OPT_ECS = 8
OPT_COOKIE = 10
BADCOOKIE = 23
MEMO_SECONDS = 30  # how long the fast path reuses a response OPT for the same options and client
_ECS_MAX = {1: 32, 2: 128}


class FormErr(Exception):
    """The OPT record's options are malformed: answer FORMERR."""


class Settings:
    """Per-process EDNS settings; the supervisor builds them before forking, so every
    worker shares the cookie master secret."""

    __slots__ = ("cookies", "nsid", "version", "memo")

    def __init__(self, cookie_master=None, cookie_rotate=86400, nsid=None, version=None):
        self.cookies = cookiesmod.Cookies(cookie_master, cookie_rotate)
        # the PoP identity: NSID, and CH TXT id.server / hostname.bind (slowpath._chaos)
        self.nsid = nsid.encode("utf-8") if isinstance(nsid, str) else nsid
        # CH TXT version.bind / version.server; None = REFUSED (as Knot with version "")
        self.version = version.encode("utf-8") if isinstance(version, str) else version
        self.memo = {}  # the fast path's response OPT per (options, client): see fastpath


SETTINGS = Settings()


def settings_from_args(secret_file, rotate, nsid, version=None):
    """Settings from the command line (raises OSError or cookies.CookieError)."""
    master = None
    if secret_file:
        with open(secret_file) as handle:
            master = cookiesmod.master_from_text(handle.readline())
    return Settings(master, rotate, nsid, version)


def configure(settings):
    global SETTINGS  # noqa: PLW0603 - one per worker process, set once at start
    if settings is not None:
        SETTINGS = settings


def parse_options(q, rdata):
    """Fill ``q`` (a ``query.Query``) from OPT rdata; raises ``FormErr``."""
    pos = 0
    end = len(rdata)
    while pos < end:
        if pos + 4 > end:
            raise FormErr("truncated option header")
        code = (rdata[pos] << 8) | rdata[pos + 1]
        olen = (rdata[pos + 2] << 8) | rdata[pos + 3]
        start = pos + 4
        pos = start + olen
        if pos > end:
            raise FormErr("option runs past the OPT record")
        if code == OPT_COOKIE:
            if q.cookie is not None or not (olen == 8 or 16 <= olen <= 40):
                raise FormErr("bad COOKIE option")
            q.cookie = bytes(rdata[start:pos])
        elif code == OPT_ECS:
            if q.ecs is not None or olen < 4:
                raise FormErr("bad ECS option")
            family = (rdata[start] << 8) | rdata[start + 1]
            srclen = rdata[start + 2]
            top = _ECS_MAX.get(family)
            need = (srclen + 7) // 8
            if top is None or srclen > top or not need <= olen - 4 <= top // 8:
                raise FormErr("bad ECS option")
            # keep the prefix only, as dnspython does (dnsperf sends all 4 octets of a /24)
            addr = bytes(rdata[start + 4:start + 4 + need])
            if srclen % 8:
                addr = addr[:-1] + bytes((addr[-1] & (0xFF << (8 - srclen % 8)) & 0xFF,))
            q.ecs = (family, srclen, addr)
        elif code == OPT_NSID:
            q.nsid = True


def client_packed(peer):
    """Packed client address for cookie hashing (IPv4-mapped IPv6 folded to IPv4)."""
    host = peer[0]
    if ":" in host:
        if "%" in host:
            host = host.split("%", 1)[0]
        if host.startswith("::ffff:") and "." in host:
            return socket.inet_pton(socket.AF_INET, host[7:])
        return socket.inet_pton(socket.AF_INET6, host)
    return socket.inet_pton(socket.AF_INET, host)


def check_cookie(q):
    """Set ``q.server_cookie`` and ``q.cookie_valid``; True when the query should get
    BADCOOKIE instead of an answer (a server cookie that is not ours, over UDP)."""
    cookie = q.cookie
    verdict = q.cookie_verdict
    if verdict is None or verdict[0] != cookie:
        verdict = q.cookie_verdict = (cookie,) + _judge_cookie(cookie, q.peer)
    q.server_cookie, q.cookie_valid = verdict[1], verdict[2]
    # a server cookie that is not ours: BADCOOKIE over UDP; over TCP the source is proven
    return len(cookie) > 8 and not q.cookie_valid and not q.tcp


def _judge_cookie(cookie, peer):
    """(server cookie to send back, whether the client's server cookie is valid)."""
    jar = SETTINGS.cookies
    client = cookie[:8]
    ip = client_packed(peer) if peer is not None else b"\x00\x00\x00\x00"
    if len(cookie) > 8:
        good = jar.check(client, cookie[8:], ip)
        if good is not None:
            return good, True
    return jar.make(client, ip), False


def response_options(q, scope=0):
    """[(code, data)] for the response, in wire order."""
    opts = []
    if q.nsid and SETTINGS.nsid is not None:
        opts.append((OPT_NSID, SETTINGS.nsid))
    if q.server_cookie is not None:
        opts.append((OPT_COOKIE, q.cookie[:8] + q.server_cookie))
    if q.ecs is not None:
        family, srclen, addr = q.ecs
        opts.append((OPT_ECS, family.to_bytes(2, "big") + bytes((srclen, scope)) + addr))
    return opts


def options_wire(opts):
    return b"".join(code.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data for code, data in opts)


def opt_record(udp_max, do, opts_wire=b"", ext_rcode=0):
    """The response's OPT record (version 0, DO copied from the query)."""
    return (b"\x00\x00\x29" + udp_max.to_bytes(2, "big") + bytes((ext_rcode, 0, do, 0))
            + len(opts_wire).to_bytes(2, "big") + opts_wire)
