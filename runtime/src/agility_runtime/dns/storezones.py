"""Zones from the embedded zone store, for the responder (``--zone-store PATH``).

The policy file's own zones come first: the store answers only names that no zone of
the policy file holds, so a responder without ``--zone-store`` (or with an empty store)
behaves exactly as before.

A ``StoreZones`` is made once per server and handed from state to state on reload.
LMDB environments must not cross a fork, so each process opens its own reader on first
use.  Every look-up is its own LMDB read transaction, so an update (``agility-zones
set``) is visible to the next query; a compile (a new generation behind ``current``) is
picked up by ``poll`` within ``POLL_SECONDS``.  A generation that cannot be opened is
logged once and the reader keeps serving the one it has.
"""

import os
import time

from agility_runtime.dns import log
from agility_runtime.zonestore.errors import StoreError

POLL_SECONDS = 0.25
_monotonic = time.monotonic


def _reader_class():
    # imported on use: lmdb is an optional extra, needed only with --zone-store
    from agility_runtime.zonestore import reader
    return reader


def check(path):
    """The meta record of the store at ``path``; ``StoreError`` (one line) if it cannot be served."""
    reader = _reader_class()
    r = reader.Reader(path)
    try:
        return dict(r.meta)
    finally:
        r.close()


class StoreZones:
    def __init__(self, path):
        self.path = path
        self._reader = None
        self._pid = None
        self._next_poll = 0.0
        self._refused = None

    def reader(self):
        if self._pid != os.getpid():
            self._reader = _reader_class().Reader(self.path)
            self._pid = os.getpid()
        return self._reader

    def poll(self):
        """Notice a new generation (at most every ``POLL_SECONDS``); cheap otherwise."""
        now = _monotonic()
        if now < self._next_poll:
            return
        self._next_poll = now + POLL_SECONDS
        try:
            self.reader().refresh()
            self._refused = None
        except StoreError as exc:
            if str(exc) != self._refused:  # once per distinct problem, not every poll
                self._refused = str(exc)
                log.error("zone_store", result="refused", path=self.path, reason=str(exc),
                          serving=self._reader.version[1] if self._reader is not None else None)

    def find(self, wire):
        """``(zone name, zone bytes)`` of the store zone enclosing the lower-case wire name, or None."""
        return self.reader().find(wire)

    @property
    def version(self):
        return self.reader().version
