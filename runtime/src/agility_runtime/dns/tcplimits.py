"""The bookkeeping behind the TCP limits, free of sockets (so it can be model-tested).

Why these limits: a TCP slot costs the server memory and a file descriptor, and the
number of slots is fixed.  A slowloris client holds a slot by sending one byte now and
then; an idle client holds it by sending nothing.  So (RFC 7766 section 6.2.3):

* a message must arrive whole within ``msg_timeout`` of its first byte, and queued
  answers must make progress within ``msg_timeout`` (Knot's ``tcp-io-timeout`` is 500 ms
  of inactivity; here trickling does not extend the deadline at all);
* a connection with nothing in flight closes after ``idle_timeout``;
* one source (an IPv4 address, an IPv6 /64) holds at most ``max_per_source`` slots;
* at ``max_conns`` a new connection closes the connection idle the longest; with none
  idle the caller stops accepting until a slot frees (the kernel queues the handshake,
  so a new client waits at most about ``msg_timeout`` instead of being refused).

``ConnTable`` tracks each connection's state (``IDLE``, ``READING`` a message,
``WRITING`` answers) and since when; the TCP loop asks it what to close.
"""

import collections

from agility_runtime.dns import limits
from agility_runtime.dns.source import prefix_key

IDLE = "idle"
READING = "reading"
WRITING = "writing"

_TIMEOUT_REASON = {READING: "message_timeout", WRITING: "write_timeout"}


class Limits(collections.namedtuple("Limits", "idle_timeout msg_timeout max_conns max_per_source")):
    __slots__ = ()

    @classmethod
    def from_config(cls, cfg):
        """From the CLI config (``limits`` options)."""
        return cls(float(cfg.tcp_timeout), float(cfg.tcp_msg_timeout), int(cfg.tcp_max_conns),
                   int(cfg.tcp_max_per_source))


DEFAULT_LIMITS = Limits.from_config(limits.defaults())


def source_of(host):
    """The source a per-source limit counts: the IPv4 address, or the IPv6 /64."""
    return prefix_key(host, 32, 64)


class ConnTable:
    def __init__(self, limits=DEFAULT_LIMITS):
        self.limits = limits
        self._idle = collections.OrderedDict()   # key -> idle since; the longest idle first
        self._busy = {}                          # key -> [state, since]
        self._source = {}                        # key -> source
        self._per_source = collections.Counter()

    def __len__(self):
        return len(self._source)

    def __contains__(self, key):
        return key in self._source

    def full(self):
        return len(self._source) >= self.limits.max_conns

    def source_full(self, source):
        return self._per_source[source] >= self.limits.max_per_source

    def oldest_idle(self):
        """The connection idle the longest (the one to close for a newcomer), or None."""
        return next(iter(self._idle), None)

    def state(self, key):
        if key in self._idle:
            return IDLE
        return self._busy[key][0]

    def add(self, key, source, now):
        """A new connection (idle since ``now``)."""
        self._source[key] = source
        self._per_source[source] += 1
        self._idle[key] = now

    def remove(self, key):
        source = self._source.pop(key, None)
        if source is None:
            return
        self._per_source[source] -= 1
        if not self._per_source[source]:
            del self._per_source[source]
        self._idle.pop(key, None)
        self._busy.pop(key, None)

    def update(self, key, state, now, progress):
        """The connection is in ``state`` after an event at ``now``; ``progress``: a
        message was answered or answer bytes left.  The state's clock restarts on a
        change of state or on progress, and only then."""
        if state == IDLE:
            if key in self._idle:
                if not progress:
                    return
                del self._idle[key]
            else:
                del self._busy[key]
            self._idle[key] = now  # to the end: the most recently idle
            return
        busy = self._busy.get(key)
        if busy is None:
            del self._idle[key]
            self._busy[key] = [state, now]
        elif busy[0] != state or progress:
            busy[0] = state
            busy[1] = now

    def expired(self, now):
        """[(key, reason)] of connections past their deadline at ``now``."""
        out = []
        limit = self.limits.idle_timeout
        for key, since in self._idle.items():
            if now - since < limit:
                break  # the rest became idle later
            out.append((key, "idle_timeout"))
        limit = self.limits.msg_timeout
        for key, (state, since) in self._busy.items():
            if now - since >= limit:
                out.append((key, _TIMEOUT_REASON[state]))
        return out
