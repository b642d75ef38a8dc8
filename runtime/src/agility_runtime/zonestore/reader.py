"""The read-only view of a zone store, as the responder uses it.

``Reader(store)`` opens the generation ``current`` points at, read-only and
memory-mapped (LMDB): opening costs the same at one zone as at twenty million, and
only the pages a query touches are read.  A store that is not LMDB, has no valid meta
record, or has a newer format version is refused with ``StoreError`` (one line).

``find(wire)`` returns the closest enclosing zone of a lower-case wire name: one exact
look-up per label, longest first, inside one read transaction (a consistent snapshot).
``refresh()`` notices a new generation (a compile swapped ``current``) or a new serial
(an update); a new generation that cannot be opened is refused and the reader keeps
the one it has.
"""

import os

import lmdb

from agility_runtime.zonestore import layout
from agility_runtime.zonestore.errors import StoreError

CURRENT = "current"


def open_environment(path):
    """A read-only LMDB environment at generation directory ``path``; ``StoreError`` if it is not one."""
    if not os.path.isfile(os.path.join(path, "data.mdb")):
        raise StoreError("cannot open the zone store at %s: no data.mdb" % path)
    try:
        # lock=True: readers register in lock.mdb, so a writer never reuses a page a reader may
        # still read (needs write access to lock.mdb); readahead off: look-ups are random
        return lmdb.open(path, readonly=True, lock=True, subdir=True, readahead=False, max_readers=1024)
    except lmdb.Error as exc:
        raise StoreError("cannot open the zone store at %s: %s" % (path, str(exc).replace(path + ": ", "")))


def read_meta(env, where):
    try:
        with env.begin() as txn:
            raw = txn.get(layout.META_KEY)
    except lmdb.Error as exc:
        raise StoreError("%s: cannot read the meta record: %s" % (where, exc))
    try:
        return layout.decode_meta(raw, where)
    except ValueError as exc:
        raise StoreError(str(exc))


class Reader:
    def __init__(self, store):
        self.store = store
        self._retired = None
        self.generation = self._target()
        self.env, self.meta = self._open(self.generation)

    def _target(self):
        try:
            return os.readlink(os.path.join(self.store, CURRENT))
        except OSError as exc:
            raise StoreError("%s is not a zone store (no %s link: %s)" % (self.store, CURRENT, exc.strerror))

    def _open(self, generation):
        path = os.path.join(self.store, generation)
        env = open_environment(path)
        try:
            return env, read_meta(env, self.store)
        except StoreError:
            env.close()
            raise

    @property
    def version(self):
        """(generation, serial): changes with every compile and every update."""
        return self.generation, self.meta["serial"]

    def refresh(self):
        """Pick up a new generation or serial; True when the version changed.  ``StoreError``
        (one line) when a new generation is refused: this reader keeps the one it has."""
        before = self.version
        target = self._target()
        if target != self.generation:
            env, meta = self._open(target)
            # another thread may still be inside a look-up on the old environment: it is closed
            # at the next switch, not now
            if self._retired is not None:
                self._retired.close()
            self._retired = self.env
            self.env, self.meta, self.generation = env, meta, target
        else:
            self.meta = read_meta(self.env, self.store)
        return self.version != before

    def find(self, wire):
        """``(zone name, zone bytes)`` of the closest zone enclosing the lower-case wire name, or None."""
        keys = layout.revkeys_wire(wire)
        if not keys:
            return None
        with self.env.begin(buffers=False) as txn:
            get = txn.get
            for key in keys:
                raw = get(key)
                if raw is not None:
                    return layout.name_of_key(key), raw
        return None

    def get(self, name):
        """The zone data (dict) of zone ``name`` (lower-case, absolute), or None."""
        with self.env.begin() as txn:
            raw = txn.get(layout.revkey_text(name))
        return None if raw is None else layout.decode_zone(raw)

    def names(self, limit=None):
        """Zone names in key order (reversed labels: a zone next to the zones below it)."""
        out = []
        with self.env.begin() as txn:
            cur = txn.cursor()
            if cur.set_range(layout.ZONE_PREFIX):
                for key in cur.iternext(values=False):
                    if not key.startswith(layout.ZONE_PREFIX) or (limit is not None and len(out) >= limit):
                        break
                    out.append(layout.name_of_key(key))
        return out

    def close(self):
        if self._retired is not None:
            self._retired.close()
        self.env.close()
