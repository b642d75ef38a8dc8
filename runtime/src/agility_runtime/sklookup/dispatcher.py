"""Operations on the pinned maps: bindings, destinations, sockets, counters."""
import ctypes
import errno
import itertools
import mmap
import os
import socket

from . import libbpf, maps
from .errors import Error
from .model import Binding, check_label, plan, sort_key
from .build import object_path
from .state import Paths, Pinned, check_program, flocked


class Dispatcher(object):
    """Read and change the state of one namespace's dispatcher.

    Use as a context manager; with ``write=True`` it holds the writer lock.
    """

    def __init__(self, root=None, write=False, readonly=False):
        self.paths = Paths(root)
        self.pinned = Pinned(self.paths, readonly=readonly and not write)
        self._lock = None
        self._ids_fd = None   # the binding-id bitmap map (writers only), and its working copy:
        self._ids = None
        self._id_cursor = 0
        self._lens = {}       # protocol -> maps.PrefixLens, the writers' working copy
        self._filter_mm = None    # ag_prefix_filter mapped into memory, and (writers) its counters:
        self._filter_arr = None
        if write:
            self._lock = flocked(self.paths.dir)
            self._lock.__enter__()
        self.ncpus = libbpf.num_cpus()

    def close(self):
        self._filter_arr = None  # drop the export before unmapping
        if self._filter_mm is not None:
            self._filter_mm.close()
            self._filter_mm = None
        if self._ids_fd is not None:
            os.close(self._ids_fd)
            self._ids_fd = None
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None
        self.pinned.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- raw map access -------------------------------------------------
    def _fd(self, name):
        return self.pinned[name]

    def binding_entries(self):
        """[(hash key bytes, (destination id, binding id, length))] as stored."""
        fd = self._fd("ag_binding_hash")
        items = libbpf.map_items(fd, maps.BIND_KEY_SIZE, maps.BIND_VAL_SIZE)
        if items is not None:
            unpack = maps.unpack_bind_val
            return [(k, unpack(v)) for k, v in items]
        out = []
        for k in libbpf.map_keys(fd, maps.BIND_KEY_SIZE):
            v = libbpf.map_lookup(fd, k, maps.BIND_VAL_SIZE)
            if v is not None:
                out.append((k, maps.unpack_bind_val(v)))
        return out

    def _raw_dests(self):
        fd = self._fd("ag_dests")
        out = {}
        for k in libbpf.map_keys(fd, maps.DEST_KEY_SIZE):
            v = libbpf.map_lookup(fd, k, maps.DEST_VAL_SIZE)
            if v is not None:
                out[maps.unpack_dest_key(k)] = maps.unpack_dest_val(v)
        return out

    def _counters_size(self, mapname):
        if mapname in maps.PERCPU_MAPS:
            return maps.percpu_size(maps.COUNTERS, self.ncpus)
        return maps.COUNTERS_SIZE

    def _counters(self, mapname, idx):
        raw = libbpf.map_lookup(self._fd(mapname), maps.U32.pack(idx), self._counters_size(mapname))
        if raw is None:
            return [0, 0, 0]
        if mapname in maps.PERCPU_MAPS:
            return maps.sum_percpu(raw, maps.COUNTERS, self.ncpus)
        return list(maps.COUNTERS.unpack(raw))

    def _zero_counters(self, mapname, idx):
        libbpf.map_update(self._fd(mapname), maps.U32.pack(idx), b"\0" * self._counters_size(mapname))

    def _drop_socket(self, dest_id):
        """Empty a sockmap slot (the kernel says EINVAL for an empty one)."""
        if self._socket_cookie(dest_id) is None:
            return False
        try:
            return libbpf.map_delete(self._fd("ag_sockets"), maps.U32.pack(dest_id))
        except OSError as e:
            if e.errno == errno.EINVAL:
                return False
            raise

    def _socket_cookie(self, dest_id):
        raw = libbpf.map_lookup(self._fd("ag_sockets"), maps.U32.pack(dest_id), 8)
        return None if raw is None else maps.U64.unpack(raw)[0]

    # ---- reading ----------------------------------------------------------
    def dest_names(self):
        return {v[0]: k for k, v in self._raw_dests().items()}

    def bindings(self, counters=False, raw=None, sort=True):
        """The bindings, sorted unless ``sort`` is false; ``raw``: as read by binding_entries (to
        read the map once)."""
        names = self.dest_names()
        out = []
        for k, (dest_id, binding_id, _bits) in (self.binding_entries() if raw is None else raw):
            b = Binding.from_key(k, names.get(dest_id, ("?",))[0])
            if counters:
                c = self._counters("ag_bind_metrics", binding_id)
                out.append((b, {"id": binding_id, "lookups": c[0], "missing_socket": c[1],
                                "incompatible_socket": c[2]}))
            else:
                out.append(b)
        if not sort:
            return out
        key = (lambda t: sort_key(t[0])) if counters else sort_key
        return sorted(out, key=key)

    def destinations(self):
        out = []
        for (label, domain, proto), (dest_id, refs) in sorted(self._raw_dests().items()):
            c = self._counters("ag_dest_metrics", dest_id)
            cookie = self._socket_cookie(dest_id)
            out.append({"label": label, "domain": maps.DOMAINS.get(domain, str(domain)),
                        "protocol": maps.PROTOCOL_NAMES.get(proto, str(proto)), "id": dest_id,
                        "bindings": refs, "socket": cookie is not None, "socket_cookie": cookie,
                        "lookups": c[0], "missing_socket": c[1], "incompatible_socket": c[2]})
        return out

    def addresses(self):
        fd = self._fd("ag_addr_hits")
        out = []
        for k in libbpf.map_keys(fd, maps.ADDR_KEY_SIZE):
            raw = libbpf.map_lookup(fd, k, maps.ADDR_VAL_SIZE)
            if raw is None:
                continue
            hits, drops = maps.ADDR_VAL.unpack(raw)
            out.append({"address": str(maps.address_from_key(k)), "hits": hits, "drops": drops})
        out.sort(key=lambda d: (-d["hits"], d["address"]))
        return out

    def program(self):
        info = libbpf.prog_info(self._fd("prog"))
        link = libbpf.link_info(self._fd("link"))
        return {"prog_id": info.id, "tag": bytes(info.tag).hex(), "name": info.name.decode(),
                "link_id": link.id, "link_prog_id": link.prog_id, "netns_ino": link.netns_ino}

    # ---- destinations -----------------------------------------------------
    def _alloc_id(self, used, limit, mapname):
        """Lowest free id at or after a per-map cursor (wrapping); zero its counters."""
        cursors = self.__dict__.setdefault("_cursors", {})
        start = cursors.get(mapname, 0)
        for i in itertools.chain(range(start, limit), range(0, start)):
            if i not in used:
                cursors[mapname] = i + 1
                self._zero_counters(mapname, i)
                return i
        raise Error("no free slot in %s (limit %d)" % (mapname, limit))

    def _dest_get(self, label, domain, proto, create):
        fd = self._fd("ag_dests")
        k = maps.pack_dest_key(label, domain, proto)
        raw = libbpf.map_lookup(fd, k, maps.DEST_VAL_SIZE)
        if raw is not None:
            return maps.unpack_dest_val(raw)
        if not create:
            return None
        used = {v[0] for v in self._raw_dests().values()}
        dest_id = self._alloc_id(used, maps.MAX_DESTINATIONS, "ag_dest_metrics")
        self._drop_socket(dest_id)
        libbpf.map_update(fd, k, maps.pack_dest_val(dest_id, 0), libbpf.BPF_NOEXIST)
        return dest_id, 0

    def _dest_adjust(self, label, domain, proto, delta):
        fd = self._fd("ag_dests")
        got = self._dest_get(label, domain, proto, create=delta > 0)
        if got is None:
            return None
        dest_id, refs = got
        refs = max(0, refs + delta)
        k = maps.pack_dest_key(label, domain, proto)
        if refs == 0 and self._socket_cookie(dest_id) is None:
            libbpf.map_delete(fd, k)
        else:
            libbpf.map_update(fd, k, maps.pack_dest_val(dest_id, refs))
        return dest_id

    @staticmethod
    def _domain_of(b):
        return socket.AF_INET if b.version == 4 else socket.AF_INET6

    # ---- bindings -----------------------------------------------------------
    def _lookup_binding(self, b):
        """The entry stored under exactly b's key, or None (a hash lookup: exact)."""
        raw = libbpf.map_lookup(self._fd("ag_binding_hash"), maps.binding_key(b), maps.BIND_VAL_SIZE)
        return None if raw is None else maps.unpack_bind_val(raw)

    def _put(self, b, binding_id=None, published=False):
        """Insert or relabel one binding (one atomic map update).

        A new key takes ``binding_id`` if the caller reserved one, else reserves its own, and is
        published first (its length and filter slot) unless the caller did (``published``).
        """
        proto = maps.PROTOCOLS[b.protocol]
        domain = self._domain_of(b)
        old = self._lookup_binding(b)
        dest_id = self._dest_adjust(b.label, domain, proto, +1)
        if old is not None:
            binding_id = old[1]
        elif binding_id is None:
            binding_id = self._reserve_ids(1)[0]
        if old is None and not published:
            self._publish([b], +1)  # before the entry
        libbpf.map_update(self._fd("ag_binding_hash"), maps.binding_key(b),
                          maps.pack_bind_val(dest_id, binding_id, b.bits))
        if old is not None:
            old_label = self.dest_names_by_id(old[0])
            if old_label is not None:
                self._dest_adjust(old_label, domain, proto, -1)

    def dest_names_by_id(self, dest_id):
        for (label, _d, _p), (i, _r) in self._raw_dests().items():
            if i == dest_id:
                return label
        return None

    def _delete(self, b, withdraw=True):
        """Remove one binding; return the binding id it freed (the caller releases it), or None.

        Its length and filter slot are withdrawn after it, unless the caller does (``withdraw``).
        """
        proto = maps.PROTOCOLS[b.protocol]
        old = self._lookup_binding(b)
        if old is None:
            return None
        libbpf.map_delete(self._fd("ag_binding_hash"), maps.binding_key(b))
        if withdraw:
            self._publish([b], -1)  # after the entry
        label = self.dest_names_by_id(old[0])
        if label is not None:
            self._dest_adjust(label, self._domain_of(b), proto, -1)
        return old[1]

    # ---- prefix lengths in use and the prefix filter -------------------------------
    # The program walks, per protocol, the address prefix lengths that have bindings
    # (ag_prefix_lens) and at each one reads a counter of ag_prefix_filter before it looks up the
    # hash (see bpf/dispatcher.bpf.c). A binding is published (its length's count and its filter
    # counter go up, which sets the length's bit) before its entry is inserted, and withdrawn
    # after its entry is deleted: the program may look for an entry that is not there yet or any
    # more (a miss), never skip one that is. A crash in between leaves a count too high (wasted
    # lookups), never too low; replace() recounts both from the bindings.
    def _lens_get(self, proto):
        got = self._lens.get(proto)
        if got is None:
            raw = libbpf.map_lookup(self._fd("ag_prefix_lens"), maps.U32.pack(proto), maps.PREFIX_LENS_SIZE)
            got = maps.PrefixLens.unpack(raw)[0] if raw is not None else maps.PrefixLens()
            self._lens[proto] = got
        return got

    def _filter_map(self):
        """The filter array mapped shared, with ctypes u32 counters over it (counter s is u32 number
        s of the mapping): an assignment is one aligned 32-bit store (struct.pack_into may store
        byte by byte, and the program could read a counter going from 256 to 255 as 0 in between)."""
        if self._filter_mm is None:
            self._filter_mm = mmap.mmap(self._fd("ag_prefix_filter"), maps.FILTER_SIZE * 4, flags=mmap.MAP_SHARED,
                                        prot=mmap.PROT_READ | mmap.PROT_WRITE)
            self._filter_arr = (ctypes.c_uint32 * maps.FILTER_SIZE).from_buffer(self._filter_mm)
        return self._filter_mm

    def _filter_get(self, slot):
        self._filter_map()
        return self._filter_arr[slot]

    def _filter_write(self, slot, count):
        self._filter_map()
        self._filter_arr[slot] = count

    def _publish(self, bindings, delta):
        """Count bindings in (+1) or out (-1) of their lengths and filter slots: one write per
        protocol and per slot touched."""
        slots = {}
        lens = {}
        slot_of = maps.filter_slot
        for b in bindings:
            proto = maps.PROTOCOLS[b.protocol]
            refs = lens.get(proto)
            if refs is None:
                refs = lens[proto] = self._lens_get(proto).refs
            kind = refs[maps.PrefixLens.kind(b.port)]
            kind[b.bits] = max(0, kind[b.bits] + delta)
            slot = slot_of(proto, b.bits, b.addr16, b.port)
            slots[slot] = slots.get(slot, 0) + delta
        # Lengths first when adding, filter first when removing: either order is safe (each only
        # adds or removes a reason to look), this one keeps a length's bit no later than its slots.
        order = ("lens", "filter") if delta > 0 else ("filter", "lens")
        for what in order:
            if what == "lens":
                for proto in sorted(lens):
                    libbpf.map_update(self._fd("ag_prefix_lens"), maps.U32.pack(proto), self._lens[proto].pack())
            elif slots:
                self._filter_map()
                counters = self._filter_arr
                for slot, d in sorted(slots.items()):
                    n = counters[slot] + d
                    counters[slot] = n if n > 0 else 0

    def _recount(self, raw_bindings):
        """Lengths and filter counters exactly as the bindings say (after a crashed writer)."""
        keys = [maps.unpack_bind_key_raw(k) for k, _v in raw_bindings]
        counted = maps.lens_from_bindings((proto, port, bits) for proto, port, _addr, bits in keys)
        for proto in set(counted) | set(self._stored_lens_protocols()):
            lens = counted.get(proto, maps.PrefixLens())
            libbpf.map_update(self._fd("ag_prefix_lens"), maps.U32.pack(proto), lens.pack())
            self._lens[proto] = lens
        want = maps.filter_counts_raw(keys)
        have = self.filter_counts()
        for slot in sorted(set(want) | set(have)):
            if want.get(slot, 0) != have.get(slot, 0):
                self._filter_write(slot, want.get(slot, 0))

    _ZERO_PAGE = bytes(4096)

    def filter_counts(self):
        """{slot: count} of the non-zero ag_prefix_filter counters.

        Writers scan the mapping a page at a time (a few ms for 8 MiB); through a read-only fd,
        which the kernel does not let map a shared array, it takes batched reads (~0.5 s).
        """
        if self.pinned.readonly:
            image = libbpf.array_values(self._fd("ag_prefix_filter"), maps.FILTER_SIZE // 2, 8)
        else:
            image = self._filter_map()
        page, out = len(self._ZERO_PAGE), {}
        for start in range(0, maps.FILTER_SIZE * 4, page):
            chunk = image[start:start + page]
            if chunk != self._ZERO_PAGE:
                for i, (n,) in enumerate(maps.U32.iter_unpack(chunk)):
                    if n:
                        out[(start >> 2) + i] = n
        return out

    def _stored_lens_protocols(self):
        return [p for p in maps.PROTOCOL_NAMES if self._lens_get(p).lengths()]

    def prefix_lens(self):
        """{protocol name: {(kind, bits): count}} as stored (kind 0 = exact port, 1 = any port).

        Protocols without bindings are left out. Refuses a value whose bits disagree with its counts.
        """
        out = {}
        for proto, name in maps.PROTOCOL_NAMES.items():
            raw = libbpf.map_lookup(self._fd("ag_prefix_lens"), maps.U32.pack(proto), maps.PREFIX_LENS_SIZE)
            if raw is None:
                continue
            lens, exact_words, any_words = maps.PrefixLens.unpack(raw)
            if lens.pack() != raw:
                raise Error("ag_prefix_lens for %s: bits %r %r disagree with counts" % (name, exact_words, any_words))
            if lens.lengths():
                out[name] = {(k, b): lens.refs[k][b] for (k, b) in lens.lengths()}
        return out

    # ---- binding ids -------------------------------------------------------
    # A new binding needs a free counter slot (its binding id). Finding one by reading every
    # binding costs ~1 s at 100k bindings, so the writers keep a bitmap of the ids in use, the one
    # value of an array map pinned beside the others (ag_bind_ids); the program never reads it.
    # The first writer that needs it builds it from the bindings. A bit is set and written before
    # a binding takes its id and cleared only after the binding is gone: a crash in between leaves
    # an unused id marked, never a used one free. replace() reads every binding anyway and
    # rewrites the bitmap from them, so a load-bindings also repairs it. An agility-lookup older
    # than the bitmap does not keep it: after such a writer, run load-bindings before a bind.
    def _ids_map(self, used=None):
        if self._ids_fd is not None:
            return self._ids_fd
        path = self.paths.pin(maps.BIND_IDS_MAP)
        try:
            fd = libbpf.obj_get(path)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            fd = libbpf.map_create(libbpf.BPF_MAP_TYPE_ARRAY, maps.BIND_IDS_MAP, 4, maps.BIND_IDS_SIZE, 1)
            try:
                self._ids_fd = fd
                self._set_ids(self._used_binding_ids() if used is None else used)
                libbpf.obj_pin(fd, path)
            except BaseException:
                self._ids_fd = None
                os.close(fd)
                raise
            return fd
        self._ids_fd = fd
        self._ids = bytearray(libbpf.map_lookup(fd, maps.U32.pack(0), maps.BIND_IDS_SIZE))
        return fd

    def _set_ids(self, ids):
        self._ids = maps.pack_id_bitmap(ids)
        self._flush_ids()

    def _flush_ids(self):
        libbpf.map_update(self._ids_fd, maps.U32.pack(0), bytes(self._ids))

    def _reserve_ids(self, n):
        """Mark n free binding ids used (written before return) and zero their counters."""
        self._ids_map()
        bits, limit = self._ids, maps.MAX_BINDINGS
        out, i, seen = [], self._id_cursor, 0
        while len(out) < n:
            if seen >= limit:
                raise Error("too many bindings: no free slot among %d" % limit)
            if i & 7 == 0 and bits[i >> 3] == 0xFF and seen + 8 <= limit:
                i, seen = (i + 8) % limit, seen + 8
                continue
            if not bits[i >> 3] & (1 << (i & 7)):
                bits[i >> 3] |= 1 << (i & 7)
                out.append(i)
            i, seen = (i + 1) % limit, seen + 1
        self._id_cursor = i
        if out:
            self._flush_ids()
            zero = b"\0" * self._counters_size("ag_bind_metrics")
            libbpf.map_update_batch(self._fd("ag_bind_metrics"), [maps.U32.pack(i) for i in out], [zero] * len(out))
        return out

    def _release_ids(self, ids):
        ids = [i for i in ids if i is not None]
        if not ids:
            return
        self._ids_map()
        for i in ids:
            self._ids[i >> 3] &= ~(1 << (i & 7)) & 0xFF
        self._flush_ids()

    def _used_binding_ids(self):
        return {v[1] for _k, v in self.binding_entries()}

    def _check_capacity(self, desired):
        if len(desired) > maps.MAX_BINDINGS:
            raise Error("too many bindings: %d > %d" % (len(desired), maps.MAX_BINDINGS))
        dests = {(b.label, self._domain_of(b), b.protocol) for b in desired}
        dests |= {(l, d, maps.PROTOCOL_NAMES.get(p)) for (l, d, p) in self._raw_dests()}
        if len(dests) > maps.MAX_DESTINATIONS:
            raise Error("too many destinations: %d > %d" % (len(dests), maps.MAX_DESTINATIONS))

    def replace(self, desired, entries=None, current=None):
        """Make the binding set equal ``desired``; return the applied steps.

        Steps are ordered by model.plan and written in that order, in batches (a system call per
        16,384 bindings). Destination reference counts go up before the bindings change and down
        to their exact new values after. If the kernel refuses a step, the steps done so far are
        undone and the counts recounted from the map, so the set is either old or new.
        ``entries`` and ``current``: binding_entries() and bindings(raw=entries) as the caller read
        them under this writer's lock.
        """
        raw = self.binding_entries() if entries is None else entries
        current = self.bindings(raw=raw, sort=False) if current is None else current
        steps = plan(current, desired)
        if not steps:
            return []
        check_program(self.pinned, object_path())
        self._check_capacity(desired)
        used = {v[1] for _k, v in raw}
        self._ids_map(used)
        self._set_ids(used)  # exact again, whatever a crashed writer left
        self._recount(raw)
        old_val = dict(raw)
        puts = [b for op, b in steps if op == "put"]
        dels = [b for op, b in steps if op == "delete"]
        put_keys = [maps.binding_key(b) for b in puts]
        new = [b for b, k in zip(puts, put_keys) if k not in old_val]
        refs = self._dest_refs(desired)
        try:
            new_ids = iter(self._reserve_ids(len(new)))
            dest_ids = self._dests_up(refs)
            self._publish(new, +1)
            put_vals = [maps.pack_bind_val(dest_ids[(b.label, self._domain_of(b), maps.PROTOCOLS[b.protocol])],
                                           old_val[k][1] if k in old_val else next(new_ids), b.bits)
                        for b, k in zip(puts, put_keys)]
            try:
                libbpf.map_update_batch(self._fd("ag_binding_hash"), put_keys, put_vals)
            except libbpf.BatchError as e:
                self._undo_puts(put_keys[:e.done], old_val)
                raise
            del_keys = [maps.binding_key(b) for b in dels]
            try:
                libbpf.map_delete_batch(self._fd("ag_binding_hash"), del_keys)
            except libbpf.BatchError as e:
                self._undo_puts(put_keys, old_val)
                libbpf.map_update_batch(self._fd("ag_binding_hash"), del_keys[:e.done],
                                        [maps.pack_bind_val(*old_val[k]) for k in del_keys[:e.done]])
                raise
            self._publish(dels, -1)
            self._dests_exact(refs)
        except OSError as e:
            self._repair()
            raise Error("binding change failed and was rolled back: %s" % e)
        self._release_ids([old_val[k][1] for k in del_keys])
        return steps

    def _undo_puts(self, keys, old_val):
        """Put back what ``keys`` held before (or remove them if they were new)."""
        fd = self._fd("ag_binding_hash")
        for k in reversed(keys):
            try:
                if k in old_val:
                    libbpf.map_update(fd, k, maps.pack_bind_val(*old_val[k]))
                else:
                    libbpf.map_delete(fd, k)
            except OSError:
                pass

    def _dest_refs(self, bindings):
        """{(label, domain, protocol number): number of bindings} of a binding set."""
        out = {}
        for b in bindings:
            k = (b.label, b.version, b.protocol)
            out[k] = out.get(k, 0) + 1
        domains = {4: socket.AF_INET, 6: socket.AF_INET6}
        return {(label, domains[v], maps.PROTOCOLS[p]): n for (label, v, p), n in out.items()}

    def _dests_up(self, refs):
        """Create the destinations ``refs`` (_dest_refs of the new set) names and raise every count to at least its new
        value (a count too high for a while only keeps a destination; too low could free one
        still in use). Return {(label, domain, protocol number): destination id}."""
        fd = self._fd("ag_dests")
        have = self._raw_dests()
        used = {v[0] for v in have.values()}
        ids = {}
        for k, n in sorted(refs.items()):
            if k in have:
                dest_id, refs = have[k]
                if n > refs:
                    libbpf.map_update(fd, maps.pack_dest_key(*k), maps.pack_dest_val(dest_id, n))
            else:
                dest_id = self._alloc_id(used, maps.MAX_DESTINATIONS, "ag_dest_metrics")
                used.add(dest_id)
                self._drop_socket(dest_id)
                libbpf.map_update(fd, maps.pack_dest_key(*k), maps.pack_dest_val(dest_id, n), libbpf.BPF_NOEXIST)
            ids[k] = dest_id
        return ids

    def _dests_exact(self, refs):
        """Set every destination's count to its value in ``refs`` (_dest_refs of the bindings);
        remove those left with none and no socket."""
        fd = self._fd("ag_dests")
        for k, (dest_id, old) in sorted(self._raw_dests().items()):
            n = refs.get(k, 0)
            if n == 0 and self._socket_cookie(dest_id) is None:
                libbpf.map_delete(fd, maps.pack_dest_key(*k))
            elif n != old:
                libbpf.map_update(fd, maps.pack_dest_key(*k), maps.pack_dest_val(dest_id, n))

    def _repair(self):
        """Counts, lengths, filter and ids exactly as the binding map says (after a failed change)."""
        try:
            raw = self.binding_entries()
            self._set_ids({v[1] for _k, v in raw})
            self._recount(raw)
            self._dests_exact(self._dest_refs(self.bindings(raw=raw)))
        except (OSError, Error):
            pass

    def _rollback(self, done):
        for op, b, prev in reversed(done):
            try:
                if prev is None:
                    self._delete(b)
                else:
                    self._put(prev)
            except (OSError, Error):
                pass
        self._repair()

    # One binding: O(changed), not O(all). An exact lookup of its key, the destination map (one
    # entry per label, domain and protocol: small) and, for a new key, the binding-id bitmap.
    # At 100k bindings a bind through replace() read the whole set twice and planned over it
    # (seconds); see docs/benchmarks-sklookup.md.
    def bind(self, b):
        """Insert or relabel one binding; return the applied steps ([] if it was already so)."""
        old = self._lookup_binding(b)
        old_label = None if old is None else self.dest_names_by_id(old[0])
        if old_label == b.label:
            return []
        check_program(self.pinned, object_path())
        proto = maps.PROTOCOLS[b.protocol]
        if self._dest_get(b.label, self._domain_of(b), proto, create=False) is None \
                and len(self._raw_dests()) >= maps.MAX_DESTINATIONS:
            raise Error("too many destinations: %d > %d" % (len(self._raw_dests()) + 1, maps.MAX_DESTINATIONS))
        previous = None if old_label is None else Binding(b.protocol, b.prefix, b.port, old_label)
        try:
            self._put(b)
        except OSError as e:
            self._rollback([("put", b, previous)])
            raise Error("binding change failed and was rolled back: %s" % e)
        return [("put", b)]

    def unbind(self, protocol, prefix, port):
        """Remove the binding with this key; return the applied steps ([] if there was none)."""
        probe = Binding(protocol, prefix, port, "x")
        old = self._lookup_binding(probe)
        if old is None:
            return []
        check_program(self.pinned, object_path())
        label = self.dest_names_by_id(old[0])
        self._release_ids([self._delete(probe)])
        return [("delete", Binding(protocol, probe.prefix, port, label if label is not None else "x"))]

    # ---- sockets ------------------------------------------------------------
    def socket_unused(self, label, domain, proto):
        """Why no binding of ``label`` can use such a socket, or None if one can.

        The destination's reference count is the number of bindings pointing
        at it, so this is one map lookup.
        """
        got = self._dest_get(label, domain, proto, create=False)
        if got is not None and got[1] > 0:
            return None
        return "no binding of label %s uses %s %s sockets (bindings of an %s prefix need an %s socket)" % (
            label, maps.PROTOCOL_NAMES.get(proto, proto), maps.DOMAINS.get(domain, domain),
            "IPv4" if domain == socket.AF_INET else "IPv6", maps.DOMAINS.get(domain, domain))

    def register(self, label, fd, domain, proto):
        check_label(label)
        dest_id, refs = self._dest_get(label, domain, proto, create=True)
        try:
            libbpf.map_update(self._fd("ag_sockets"), maps.U32.pack(dest_id), maps.U64.pack(fd))
        except OSError as e:
            if refs == 0 and self._socket_cookie(dest_id) is None:
                libbpf.map_delete(self._fd("ag_dests"), maps.pack_dest_key(label, domain, proto))
            raise Error("kernel refused the socket for %s: %s" % (label, os.strerror(e.errno)))
        return dest_id

    def unregister(self, label, domain=None, proto=None):
        removed = []
        for (l, d, p), (dest_id, refs) in self._raw_dests().items():
            if l != label or (domain is not None and d != domain) or (proto is not None and p != proto):
                continue
            had = self._drop_socket(dest_id)
            if refs == 0:
                libbpf.map_delete(self._fd("ag_dests"), maps.pack_dest_key(l, d, p))
            if had:
                removed.append({"label": l, "domain": maps.DOMAINS.get(d), "protocol": maps.PROTOCOL_NAMES.get(p)})
        return removed


def errno_name(e):
    return errno.errorcode.get(e, str(e))
