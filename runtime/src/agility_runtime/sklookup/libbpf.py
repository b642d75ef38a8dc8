"""Minimal ctypes binding to libbpf.so.1 (the fd-level API plus object loading).

Only what the loader needs. Every wrapper raises ``BPFError`` (an OSError)
with the errno libbpf reports, so callers never see a bare negative int.
"""
import ctypes
import errno
import os

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_RDONLY = 1 << 3
BPF_MAP_TYPE_ARRAY = 2      # enum bpf_map_type
BPF_SK_LOOKUP = 36          # enum bpf_attach_type
BPF_LINK_TYPE_NETNS = 5     # enum bpf_link_type
ENOTSUPP = 524              # the kernel's internal "operation not supported" (not in errno)


class BPFError(OSError):
    """A libbpf / bpf(2) failure, with errno."""


class _ObjGetOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("file_flags", ctypes.c_uint32),
                ("_pad", ctypes.c_uint32)]


class TestRunOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p), ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p), ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32), ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32), ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32), ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32), ("batch_size", ctypes.c_uint32),
    ]


class LinkInfo(ctypes.Structure):
    """struct bpf_link_info, netns variant (48 bytes)."""
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32),
                ("prog_id", ctypes.c_uint32), ("_pad", ctypes.c_uint32),
                ("netns_ino", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                ("_rest", ctypes.c_uint8 * 24)]


class ProgInfo(ctypes.Structure):
    """The leading part of struct bpf_prog_info we read (232 bytes total)."""
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32),
                ("tag", ctypes.c_uint8 * 8), ("_a", ctypes.c_uint8 * 48),
                ("name", ctypes.c_char * 16), ("_rest", ctypes.c_uint8 * 152)]


_lib = None


def lib():
    """Load libbpf.so.1 once; raise BPFError with a clear message if absent."""
    global _lib
    if _lib is not None:
        return _lib
    name = os.environ.get("AGILITY_LIBBPF") or "libbpf.so.1"
    try:
        handle = ctypes.CDLL(name, use_errno=True)
    except OSError:
        from ctypes import util  # only now: it imports subprocess and more, for a fallback
        found = util.find_library("bpf")
        if not found:
            raise BPFError(errno.ENOENT, "libbpf.so.1 not found (install libbpf1)")
        handle = ctypes.CDLL(found, use_errno=True)
    vp, ci, cu, cs = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_char_p
    sigs = {
        "bpf_object__open_file": (vp, [cs, vp]),
        "bpf_object__load": (ci, [vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__find_map_by_name": (vp, [vp, cs]),
        "bpf_object__find_program_by_name": (vp, [vp, cs]),
        "bpf_map__reuse_fd": (ci, [vp, ci]),
        "bpf_map__fd": (ci, [vp]),
        "bpf_map__type": (ci, [vp]),
        "bpf_map__key_size": (cu, [vp]),
        "bpf_map__value_size": (cu, [vp]),
        "bpf_map__max_entries": (cu, [vp]),
        "bpf_map__map_flags": (cu, [vp]),
        "bpf_program__fd": (ci, [vp]),
        "bpf_link_create": (ci, [ci, ci, cu, vp]),
        "bpf_link_update": (ci, [ci, ci, vp]),
        "bpf_obj_pin": (ci, [ci, cs]),
        "bpf_map_create": (ci, [ci, cs, cu, cu, cu, vp]),
        "bpf_obj_get": (ci, [cs]),
        "bpf_obj_get_opts": (ci, [cs, vp]),
        "bpf_obj_get_info_by_fd": (ci, [ci, vp, ctypes.POINTER(cu)]),
        "bpf_map_update_elem": (ci, [ci, vp, vp, ctypes.c_uint64]),
        "bpf_map_lookup_elem": (ci, [ci, vp, vp]),
        "bpf_map_delete_elem": (ci, [ci, vp]),
        "bpf_map_get_next_key": (ci, [ci, vp, vp]),
        "bpf_map_lookup_batch": (ci, [ci, vp, vp, vp, vp, ctypes.POINTER(cu), vp]),
        "bpf_map_update_batch": (ci, [ci, vp, vp, ctypes.POINTER(cu), vp]),
        "bpf_map_delete_batch": (ci, [ci, vp, ctypes.POINTER(cu), vp]),
        "bpf_prog_test_run_opts": (ci, [ci, vp]),
        "libbpf_num_possible_cpus": (ci, []),
        "libbpf_set_print": (vp, [vp]),
    }
    for fname, (res, args) in sigs.items():
        fn = getattr(handle, fname)
        fn.restype = res
        fn.argtypes = args
    if not os.environ.get("AGILITY_LOOKUP_DEBUG"):
        handle.libbpf_set_print(None)  # keep libbpf's chatter off our one-line errors
    _lib = handle
    return handle


def _check(ret, what):
    if ret is None:
        err = ctypes.get_errno() or errno.EINVAL
        raise BPFError(err, "%s: %s" % (what, os.strerror(err)))
    if isinstance(ret, int) and ret < 0:
        err = -ret if ret != -1 else (ctypes.get_errno() or errno.EINVAL)
        raise BPFError(err, "%s: %s" % (what, os.strerror(err)))
    return ret


def num_cpus():
    return _check(lib().libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


class BPFObject:
    """An ELF object opened (and later loaded) by libbpf."""

    def __init__(self, path):
        ctypes.set_errno(0)
        self.path = path
        self.ptr = lib().bpf_object__open_file(os.fsencode(path), None)
        if not self.ptr:
            err = ctypes.get_errno() or errno.EINVAL
            raise BPFError(err, "open BPF object %s: %s" % (path, os.strerror(err)))

    def _map(self, name):
        m = lib().bpf_object__find_map_by_name(self.ptr, name.encode())
        if not m:
            raise BPFError(errno.ENOENT, "map %s not in BPF object" % name)
        return m

    def map_shape(self, name):
        """(type, key size, value size, max entries, flags) of a map as the object defines it."""
        m = self._map(name)
        lb = lib()
        return (lb.bpf_map__type(m), lb.bpf_map__key_size(m), lb.bpf_map__value_size(m),
                lb.bpf_map__max_entries(m), lb.bpf_map__map_flags(m))

    def reuse_map(self, name, fd):
        _check(lib().bpf_map__reuse_fd(self._map(name), fd), "reuse map %s" % name)

    def load(self):
        _check(lib().bpf_object__load(self.ptr), "load BPF object (verifier)")

    def map_fd(self, name):
        return _check(lib().bpf_map__fd(self._map(name)), "map fd %s" % name)

    def prog_fd(self, name):
        p = lib().bpf_object__find_program_by_name(self.ptr, name.encode())
        if not p:
            raise BPFError(errno.ENOENT, "program %s not in BPF object" % name)
        return _check(lib().bpf_program__fd(p), "program fd %s" % name)

    def close(self):
        if self.ptr:
            lib().bpf_object__close(self.ptr)
            self.ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def link_create(prog_fd, target_fd, attach_type=BPF_SK_LOOKUP):
    return _check(lib().bpf_link_create(prog_fd, target_fd, attach_type, None), "attach (bpf_link_create)")


def link_update(link_fd, prog_fd):
    _check(lib().bpf_link_update(link_fd, prog_fd, None), "bpf_link_update")


def obj_pin(fd, path):
    _check(lib().bpf_obj_pin(fd, os.fsencode(path)), "pin %s" % path)


def map_create(map_type, name, key_size, value_size, max_entries):
    """A new map (an fd) made from user space, not from the BPF object."""
    return _check(lib().bpf_map_create(map_type, name.encode(), key_size, value_size, max_entries, None),
                  "create map %s" % name)


def obj_get(path, readonly=False):
    if readonly:
        opts = _ObjGetOpts(ctypes.sizeof(_ObjGetOpts), BPF_F_RDONLY, 0)
        return _check(lib().bpf_obj_get_opts(os.fsencode(path), ctypes.byref(opts)), "open %s" % path)
    return _check(lib().bpf_obj_get(os.fsencode(path)), "open %s" % path)


def map_shape(fd):
    """(type, key size, value size, max entries, flags) of an existing map (struct bpf_map_info)."""
    buf = ctypes.create_string_buffer(96)
    n = ctypes.c_uint32(96)
    _check(lib().bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(n)), "map info")
    t, _id, k, v, m, f = (int.from_bytes(buf.raw[i:i + 4], "little") for i in range(0, 24, 4))
    return t, k, v, m, f


def link_info(fd):
    info = LinkInfo()
    n = ctypes.c_uint32(ctypes.sizeof(info))
    _check(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(n)), "link info")
    return info


def prog_info(fd):
    info = ProgInfo()
    n = ctypes.c_uint32(ctypes.sizeof(info))
    _check(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(n)), "program info")
    return info


def map_update(fd, key, value, flags=BPF_ANY):
    k = ctypes.create_string_buffer(bytes(key), len(key))
    v = ctypes.create_string_buffer(bytes(value), len(value))
    _check(lib().bpf_map_update_elem(fd, k, v, flags), "map update")


def map_lookup(fd, key, value_size):
    """Return the value bytes, or None if the key is absent."""
    k = ctypes.create_string_buffer(bytes(key), len(key))
    v = ctypes.create_string_buffer(value_size)
    ret = lib().bpf_map_lookup_elem(fd, k, v)
    if ret < 0:
        err = -ret if ret != -1 else ctypes.get_errno()
        if err == errno.ENOENT:
            return None
        raise BPFError(err, "map lookup: %s" % os.strerror(err))
    return v.raw


def map_delete(fd, key, missing_ok=True):
    k = ctypes.create_string_buffer(bytes(key), len(key))
    ret = lib().bpf_map_delete_elem(fd, k)
    if ret < 0:
        err = -ret if ret != -1 else ctypes.get_errno()
        if err == errno.ENOENT and missing_ok:
            return False
        raise BPFError(err, "map delete: %s" % os.strerror(err))
    return True


class BatchError(BPFError):
    """A batch update or delete that the kernel stopped part-way: ``done`` elements, in order,
    were applied before the failing one."""

    done = 0


def _batch_error(err, what, done):
    e = BatchError(err, "%s: %s" % (what, os.strerror(err)))
    e.done = done
    return e


_BATCH_CHUNK = 16384


def map_update_batch(fd, keys, values):
    """Insert or overwrite (BPF_ANY) the pairs in the order given, with BPF_MAP_UPDATE_BATCH: a
    system call per 16,384 elements, not one each. Falls back to one update per element on a
    kernel without batch updates for the map. Raises BatchError on a refused element."""
    if not keys:
        return
    ks, vs = len(keys[0]), len(values[0])
    done = 0
    while done < len(keys):
        n = min(_BATCH_CHUNK, len(keys) - done)
        kb = ctypes.create_string_buffer(b"".join(keys[done:done + n]), ks * n)
        vb = ctypes.create_string_buffer(b"".join(values[done:done + n]), vs * n)
        count = ctypes.c_uint32(n)
        ret = lib().bpf_map_update_batch(fd, kb, vb, ctypes.byref(count), None)
        if ret < 0:
            err = -ret if ret != -1 else ctypes.get_errno()
            if err in (errno.EINVAL, ENOTSUPP) and count.value == 0 and done == 0:
                return _each(keys, lambda i: map_update(fd, keys[i], values[i]), "map update")
            raise _batch_error(err, "map update batch", done + count.value)
        done += n


def map_delete_batch(fd, keys):
    """Delete the keys in the order given with BPF_MAP_DELETE_BATCH (an absent key is an error,
    ENOENT, as for the kernel). Falls back like map_update_batch. Raises BatchError."""
    if not keys:
        return
    ks = len(keys[0])
    done = 0
    while done < len(keys):
        n = min(_BATCH_CHUNK, len(keys) - done)
        kb = ctypes.create_string_buffer(b"".join(keys[done:done + n]), ks * n)
        count = ctypes.c_uint32(n)
        ret = lib().bpf_map_delete_batch(fd, kb, ctypes.byref(count), None)
        if ret < 0:
            err = -ret if ret != -1 else ctypes.get_errno()
            if err in (errno.EINVAL, ENOTSUPP) and count.value == 0 and done == 0:
                return _each(keys, lambda i: map_delete(fd, keys[i], missing_ok=False), "map delete")
            raise _batch_error(err, "map delete batch", done + count.value)
        done += n


def _each(keys, op, what):
    for i in range(len(keys)):
        try:
            op(i)
        except BPFError as e:
            raise _batch_error(e.errno, what, i)


def map_keys(fd, key_size):
    """All keys of a map (snapshot by get_next_key)."""
    keys = []
    cur = None
    nxt = ctypes.create_string_buffer(key_size)
    while True:
        ret = lib().bpf_map_get_next_key(fd, cur, nxt)
        if ret < 0:
            err = -ret if ret != -1 else ctypes.get_errno()
            if err == errno.ENOENT:
                return keys
            raise BPFError(err, "map iterate: %s" % os.strerror(err))
        keys.append(nxt.raw)
        cur = ctypes.create_string_buffer(nxt.raw, key_size)


def map_items(fd, key_size, value_size, chunk=8192):
    """All (key, value) pairs of a hash map in a few BPF_MAP_LOOKUP_BATCH calls (not two system
    calls per entry), or None if the kernel has no batch lookup for the map."""
    out = []
    in_batch = None
    cursor = ctypes.c_uint32()
    while True:
        keys = ctypes.create_string_buffer(key_size * chunk)
        vals = ctypes.create_string_buffer(value_size * chunk)
        count = ctypes.c_uint32(chunk)
        ret = lib().bpf_map_lookup_batch(fd, in_batch, ctypes.byref(cursor), keys, vals, ctypes.byref(count), None)
        err = 0
        if ret < 0:
            err = -ret if ret != -1 else ctypes.get_errno()
            if err == errno.ENOSPC:  # one bucket holds more than a chunk
                chunk *= 4
                continue
            if err in (errno.EINVAL, ENOTSUPP) and in_batch is None:
                return None
            if err != errno.ENOENT:
                raise BPFError(err, "map lookup batch: %s" % os.strerror(err))
        kr, vr = keys.raw, vals.raw
        for i in range(count.value):
            out.append((kr[i * key_size:(i + 1) * key_size], vr[i * value_size:(i + 1) * value_size]))
        if err == errno.ENOENT:
            return out
        nxt = ctypes.c_uint32(cursor.value)
        in_batch = ctypes.byref(nxt)


def array_values(fd, max_entries, value_size):
    """All values of an array map, in key order, in a few BPF_MAP_LOOKUP_BATCH calls."""
    chunk = 65536
    out = bytearray()
    in_batch = None
    out_batch = ctypes.c_uint32()
    while len(out) < max_entries * value_size:
        want = min(chunk, max_entries - len(out) // value_size)
        keys = ctypes.create_string_buffer(4 * want)
        vals = ctypes.create_string_buffer(value_size * want)
        count = ctypes.c_uint32(want)
        ret = lib().bpf_map_lookup_batch(fd, in_batch, ctypes.byref(out_batch), keys, vals, ctypes.byref(count), None)
        if ret < 0:
            err = -ret if ret != -1 else ctypes.get_errno()
            if err != errno.ENOENT:
                raise BPFError(err, "map lookup batch: %s" % os.strerror(err))
        out += vals.raw[:count.value * value_size]
        if ret < 0 or count.value == 0:
            break
        next_key = ctypes.c_uint32(out_batch.value)
        in_batch = ctypes.byref(next_key)
    return bytes(out)


def prog_test_run(prog_fd, ctx_bytes, repeat, ctx_out=False):
    """BPF_PROG_TEST_RUN: return (retval, average ns per run), plus the context after the run
    if ``ctx_out`` (for sk_lookup its first 8 bytes are the selected socket's cookie)."""
    ctx = ctypes.create_string_buffer(bytes(ctx_bytes), len(ctx_bytes))
    out = ctypes.create_string_buffer(len(ctx_bytes))
    opts = TestRunOpts()
    opts.sz = ctypes.sizeof(opts)
    opts.ctx_in = ctypes.cast(ctx, ctypes.c_void_p)
    opts.ctx_size_in = len(ctx_bytes)
    if ctx_out:
        opts.ctx_out = ctypes.cast(out, ctypes.c_void_p)
        opts.ctx_size_out = len(ctx_bytes)
    opts.repeat = repeat
    _check(lib().bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts)), "prog test run")
    if ctx_out:
        return opts.retval, opts.duration, out.raw
    return opts.retval, opts.duration
