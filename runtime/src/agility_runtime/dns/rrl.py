"""Response rate limiting (RRL) for UDP, as in Knot's ``mod-rrl`` and NSD.

Why: an authoritative server is an amplifier.  An attacker that spoofs a victim's
address makes us flood the victim with answers.  A token bucket per source prefix
(``/24`` IPv4, ``/56`` IPv6: one victim network) caps what one prefix gets back.
``slip``: every Nth limited answer is still sent, empty and truncated (TC=1), so a
real resolver inside an attacked prefix retries over TCP (which cannot be spoofed)
and keeps resolving; the other limited answers are dropped.  A query with a valid
server cookie (RFC 7873) proves the client receives our answers at that address, so
it is exempt and does not spend its prefix's tokens.

Buckets live in a dict bounded by ``table_size``: when it is full, buckets that have
refilled completely (equal to a fresh one) are purged, at most once a second; new
prefixes that still find no room share one overflow bucket (so a flood of spoofed
prefixes cannot buy itself fresh buckets).

Each worker process has its own table; ``Settings.for_workers`` splits the configured
rate and burst between them (the kernel spreads one source's flows over the workers).
TCP is never limited here.
"""

import collections
import time

from agility_runtime.dns.source import prefix_key

PASS = 0
DROP = 1
SLIP = 2

_OVERFLOW = -1  # the shared bucket of prefixes that found the table full


class Settings(collections.namedtuple(
        "Settings", "rate burst slip ipv4_prefix ipv6_prefix table_size")):
    """``rate``: answers per second per prefix (0 = RRL off); ``burst``: bucket size
    (answers a quiet prefix may get at once); ``slip``: send every Nth limited answer
    truncated (0 = drop all, 1 = truncate all); prefix lengths; ``table_size``: buckets."""

    __slots__ = ()

    def for_workers(self, workers):
        """Each of ``workers`` processes gets an equal share of rate and burst."""
        return self._replace(rate=self.rate / workers, burst=max(1.0, self.burst / workers))


def settings(rate, burst, slip, ipv4_prefix, ipv6_prefix, table_size):
    """``Settings`` from option values; ``burst`` None means one second's worth (the rate)."""
    return Settings(float(rate), float(rate if burst is None else burst), int(slip), int(ipv4_prefix),
                    int(ipv6_prefix), int(table_size))


def from_config(cfg):
    """A ``Limiter`` for one of ``cfg.workers`` workers (CLI config, ``limits`` options),
    or None when RRL is off."""
    if not cfg.rrl_rate:
        return None
    conf = settings(cfg.rrl_rate, cfg.rrl_burst, cfg.rrl_slip, cfg.rrl_ipv4_prefix, cfg.rrl_ipv6_prefix,
                    cfg.rrl_table_size)
    return Limiter(conf.for_workers(cfg.workers))


class Limiter:
    """Token buckets per source prefix.  ``decide`` is the pure decision (time is an
    argument); ``check`` is what the UDP loop calls per datagram."""

    def __init__(self, conf, clock=time.monotonic):
        if conf.rate <= 0:
            raise ValueError("RRL rate must be positive")
        self.conf = conf
        self.clock = clock
        # plain attributes: namedtuple field access is slow on the per-datagram path
        self._rate, self._burst, self._slip = conf.rate, conf.burst, conf.slip
        self.buckets = {}            # key -> [tokens, last refill time, limited answers]
        self._keys = {}              # text address -> key (a cache: real clients repeat)
        self._next_purge = float("-inf")

    def key(self, host):
        return prefix_key(host, self.conf.ipv4_prefix, self.conf.ipv6_prefix)

    def decide(self, key, now, cookie_valid=False):
        """PASS, DROP or SLIP for one answer to the prefix ``key`` at time ``now``.

        ``cookie_valid``: the query carried a server cookie we issued (RFC 7873);
        such answers always pass and spend no tokens."""
        bucket = self.buckets.get(key)
        if bucket is None:
            if cookie_valid:
                return PASS
            bucket = self._new_bucket(key, now)
        tokens = bucket[0] + (now - bucket[1]) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        bucket[1] = now
        if cookie_valid:
            bucket[0] = tokens
            return PASS
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return PASS
        bucket[0] = tokens
        bucket[2] += 1
        slip = self._slip
        if slip and bucket[2] % slip == 0:
            return SLIP
        return DROP

    def _new_bucket(self, key, now):
        buckets = self.buckets
        if len(buckets) >= self.conf.table_size:
            if now >= self._next_purge:
                self._next_purge = now + 1.0
                self.purge(now)
            if len(buckets) >= self.conf.table_size:
                bucket = buckets.get(_OVERFLOW)
                if bucket is None:
                    bucket = buckets[_OVERFLOW] = [self.conf.burst, now, 0]
                return bucket
        bucket = buckets[key] = [self.conf.burst, now, 0]
        return bucket

    def purge(self, now):
        """Forget buckets that have refilled completely (they equal a fresh bucket)."""
        rate, burst = self.conf.rate, self.conf.burst
        # list() copies in one step: the worker's other UDP thread may add a bucket meanwhile
        stale = [k for k, (tokens, last, dummy) in list(self.buckets.items())
                 if tokens + (now - last) * rate >= burst]
        for k in stale:
            self.buckets.pop(k, None)

    def check(self, host, stats, cookie_valid=False):
        """The decision for an answer to ``host`` now, counted in ``stats.rrl``."""
        keys = self._keys
        key = keys.get(host)
        if key is None:
            try:
                key = prefix_key(host, self.conf.ipv4_prefix, self.conf.ipv6_prefix)
            except (OSError, ValueError):
                return PASS  # not an IP address (cannot happen on an IP socket)
            if len(keys) >= 65536:
                keys.clear()
            keys[host] = key
        verdict = self.decide(key, self.clock(), cookie_valid)
        if verdict:
            stats.rrl["dropped" if verdict == DROP else "slipped"] += 1
        return verdict


def truncated(query):
    """The slip answer to ``query``: header with QR and TC (ID, opcode, RD, CD copied),
    the question copied when it is one plain name, nothing else.  None when ``query``
    gets no answer at all (shorter than a header, or a response)."""
    if len(query) < 12 or query[2] & 0x80:
        return None
    flags = bytes((0x80 | (query[2] & 0x79) | 0x02, query[3] & 0x10))
    if query[4:6] == b"\x00\x01":
        pos = 12
        n = len(query)
        while pos < n:
            length = query[pos]
            if length == 0:
                end = pos + 5
                if end <= n:
                    return bytes(query[:2]) + flags + b"\x00\x01\x00\x00\x00\x00\x00\x00" + bytes(query[12:end])
                break
            if length > 63:
                break  # compression or extended label: no question
            pos += length + 1
    return bytes(query[:2]) + flags + b"\x00" * 8
