"""DNS server cookies (RFC 7873) in the interoperable SipHash-2-4 form of RFC 9018.

Server cookie = version 1 | 3 reserved octets | 32-bit timestamp | SipHash-2-4 over
(client cookie | version | reserved | timestamp | client IP), keyed by a 16-octet
secret.  Every server of an anycast address that shares the secret accepts every
other's cookies.

Secrets rotate without coordination between workers or servers: the secret of epoch
``e`` (``e = now // rotate_seconds``) is derived from one master secret, so every
process that holds the master computes the same current and previous secret.  A
cookie is valid when it verifies with either of them and its timestamp lies between
one hour ago and five minutes ahead (RFC 9018 section 4.3).

SipHash is pure Python here (~20 us), so both directions are cached per
(client cookie, client address): a resolver keeps its client cookie for a server,
so it costs one hash per resolver per minute or so, not one per query.
"""

import hashlib
import os
import struct
import time

_MASK = 0xFFFFFFFFFFFFFFFF
_VERSION_RESERVED = b"\x01\x00\x00\x00"
MAX_AGE = 3600        # RFC 9018 4.3: older cookies are invalid
MAX_SKEW = 300        # ... and ones from more than five minutes in the future
REFRESH_AGE = 1800    # a valid cookie older than this is replaced by a fresh one
_REUSE_AGE = 60       # a generated cookie is handed out again for this long
_CACHE_MAX = 65536


def siphash24(key, msg):
    """SipHash-2-4 of ``msg`` keyed by the 16-octet ``key``: 8 octets, little-endian
    as the reference implementation writes them."""
    k0, k1 = struct.unpack("<QQ", key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    n = len(msg)
    tail = n & ~7
    words = list(struct.unpack_from("<%dQ" % (tail // 8), msg))
    last = (n & 0xFF) << 56
    for i, b in enumerate(msg[tail:]):
        last |= b << (8 * i)
    words.append(last)

    def rounds(v0, v1, v2, v3, count):
        for _round in range(count):
            v0 = (v0 + v1) & _MASK
            v1 = ((v1 << 13) | (v1 >> 51)) & _MASK
            v1 ^= v0
            v0 = ((v0 << 32) | (v0 >> 32)) & _MASK
            v2 = (v2 + v3) & _MASK
            v3 = ((v3 << 16) | (v3 >> 48)) & _MASK
            v3 ^= v2
            v0 = (v0 + v3) & _MASK
            v3 = ((v3 << 21) | (v3 >> 43)) & _MASK
            v3 ^= v0
            v2 = (v2 + v1) & _MASK
            v1 = ((v1 << 17) | (v1 >> 47)) & _MASK
            v1 ^= v2
            v2 = ((v2 << 32) | (v2 >> 32)) & _MASK
        return v0, v1, v2, v3

    for m in words:
        v3 ^= m
        v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
        v0 ^= m
    v2 ^= 0xFF
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 4)
    return struct.pack("<Q", v0 ^ v1 ^ v2 ^ v3)


def server_cookie(secret, client_cookie, client_ip, timestamp, reserved=b"\x00\x00\x00"):
    """The 16-octet RFC 9018 server cookie (``client_ip``: 4 or 16 packed octets)."""
    head = b"\x01" + reserved + struct.pack(">I", timestamp & 0xFFFFFFFF)
    return head + siphash24(secret, client_cookie + head + client_ip)


def _age(stamp, now):
    """Seconds from ``stamp`` to ``now`` in 32-bit serial arithmetic (negative: future)."""
    diff = (now - stamp) & 0xFFFFFFFF
    return diff - (1 << 32) if diff >= (1 << 31) else diff


class CookieError(ValueError):
    """A cookie secret setting that cannot be used."""


class Cookies:
    """Server-cookie maker and checker for one process (state: two small caches)."""

    def __init__(self, master=None, rotate_seconds=86400, clock=time.time):
        if master is None:
            master = os.urandom(16)
        if len(master) < 16:
            raise CookieError("cookie secret must be at least 16 octets (32 hex digits)")
        if rotate_seconds < 2 * MAX_AGE:
            raise CookieError("cookie secret rotation must be at least %d seconds" % (2 * MAX_AGE))
        self.master = bytes(master)
        self.rotate = int(rotate_seconds)
        self.clock = clock
        self._epoch = None
        self._secrets = ()
        self._made = {}     # (client cookie, ip) -> server cookie handed out recently
        self._valid = {}    # (client cookie, server cookie, ip) -> timestamp of a valid one

    def secret_for(self, epoch):
        return hashlib.blake2b(struct.pack(">q", epoch), key=self.master, digest_size=16).digest()

    def secrets(self, now):
        """(current secret, previous secret) for the epoch of ``now``."""
        epoch = now // self.rotate
        if epoch != self._epoch:
            self._secrets = (self.secret_for(epoch), self.secret_for(epoch - 1))
            self._epoch = epoch
            self._made.clear()
            self._valid.clear()
        return self._secrets

    def make(self, client_cookie, client_ip, now=None):
        """A fresh server cookie for this client (reused for up to a minute)."""
        now = int(self.clock()) if now is None else now
        key = (client_cookie, client_ip)
        made = self._made.get(key)
        if made is not None and 0 <= _age(struct.unpack_from(">I", made, 4)[0], now) < _REUSE_AGE:
            return made
        cookie = server_cookie(self.secrets(now)[0], client_cookie, client_ip, now)
        if len(self._made) >= _CACHE_MAX:
            self._made.clear()
        self._made[key] = cookie
        return cookie

    def check(self, client_cookie, server, client_ip, now=None):
        """The server cookie to send back when ``server`` is valid for this client
        (the same one, or a fresh one when it is older than half an hour), else None."""
        now = int(self.clock()) if now is None else now
        if len(server) != 16 or server[0] != 1:
            return None
        stamp = struct.unpack_from(">I", server, 4)[0]
        age = _age(stamp, now)
        if age > MAX_AGE or age < -MAX_SKEW:
            return None
        key = (client_cookie, server, client_ip)
        if key not in self._valid:
            msg = client_cookie + server[:8] + client_ip
            if not any(siphash24(s, msg) == server[8:] for s in self.secrets(now)):
                return None
            if len(self._valid) >= _CACHE_MAX:
                self._valid.clear()
            self._valid[key] = stamp
        if age > REFRESH_AGE:
            return self.make(client_cookie, client_ip, now)
        return server


def master_from_text(text):
    """The master secret from its hex form (32 or more hex digits)."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise CookieError("cookie secret is not hex")
    if len(raw) < 16:
        raise CookieError("cookie secret must be at least 16 octets (32 hex digits)")
    return raw
