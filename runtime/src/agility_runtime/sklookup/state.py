"""Pinned state in bpffs, one directory per network namespace.

    <bpffs>/agility/<netns inode>/
        link              bpf_link attaching the program to the netns
        prog              the program currently behind the link
        ag_binding_hash ...   the maps (see maps.MAP_NAMES)

State pinned by a version with the old binding layout (one LPM trie,
``ag_bindings``) is migrated by ``load`` and ``upgrade`` (see migrate()); every
other command refuses it and says to run ``upgrade``.

A new directory is filled under a temporary name and renamed into place, so
other processes see either no state or a complete one. Writers hold an
exclusive flock on the state directory (creation: on the parent directory).
"""
import contextlib
import errno
import fcntl
import grp
import os
import stat
import struct

from . import libbpf, netns
from .errors import Error
from . import maps
from .maps import MAP_NAMES, PROG_NAME

DEFAULT_BPFFS = "/sys/fs/bpf"
BPF_FS_MAGIC = 0xCAFE4A11
SUBDIR = "agility"


def bpffs_root(root=None):
    return root or os.environ.get("AGILITY_BPFFS") or DEFAULT_BPFFS


def _is_bpffs(path):
    try:
        import ctypes

        class StatFS(ctypes.Structure):
            _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15)]
        buf = StatFS()
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
            return False
        return (buf.f_type & 0xFFFFFFFF) == BPF_FS_MAGIC
    except Exception:  # pragma: no cover - statfs unavailable
        return True


def resolve_group(group):
    if group is None or group == "":
        return None
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise Error("unknown group %r" % group)


class Paths(object):
    def __init__(self, root=None, ino=None):
        self.root = bpffs_root(root)
        self.base = os.path.join(self.root, SUBDIR)
        self.ino = ino if ino is not None else netns.current_ino()
        self.dir = os.path.join(self.base, str(self.ino))

    def pin(self, name):
        return os.path.join(self.dir, name)


@contextlib.contextmanager
def flocked(path, exclusive=True):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield fd
    finally:
        os.close(fd)


def _remove_tree(path):
    # bpffs: unlink pins one by one, then the directory.
    for name in os.listdir(path):
        p = os.path.join(path, name)
        if os.path.isdir(p) and not os.path.islink(p):
            _remove_tree(p)
        else:
            os.unlink(p)
    os.rmdir(path)


def _apply_modes(path, gid, is_dir=False, group_read=True):
    if gid is not None:
        os.chown(path, -1, gid)
    if is_dir:
        os.chmod(path, 0o750 if gid is not None else 0o700)
    else:
        os.chmod(path, 0o640 if (gid is not None and group_read) else 0o600)


def has_lpm_layout(paths):
    """True if the state still has the old LPM binding map (pinned before, or mid-way through, a migration)."""
    return os.path.exists(paths.pin(maps.LPM_MAP))


class Pinned(object):
    """Open fds to the pinned objects of one namespace.

    ``lpm=True`` (migration only) opens state with the old LPM binding layout:
    its ``ag_bindings`` map and the maps both layouts share.
    """

    def __init__(self, paths, readonly=False, lpm=False):
        self.paths = paths
        self.readonly = readonly
        self.fds = {}
        if not os.path.isdir(paths.dir):
            raise Error("sk_lookup dispatcher not loaded in this network namespace (netns %d); run 'agility-lookup load'"
                        % paths.ino)
        if lpm:
            names = (maps.LPM_MAP,) + tuple(n for n in MAP_NAMES if n not in maps.BINDING_MAPS)
        elif has_lpm_layout(paths):
            raise Error("state in %s has the binding layout of an older agility-lookup (LPM trie); "
                        "run 'agility-lookup upgrade' to migrate it" % paths.dir)
        else:
            names = MAP_NAMES
        try:
            for name in names:
                self.fds[name] = libbpf.obj_get(paths.pin(name), readonly=readonly)
            if not readonly:
                self.fds["link"] = libbpf.obj_get(paths.pin("link"))
                self.fds["prog"] = libbpf.obj_get(paths.pin("prog"))
        except OSError as e:
            self.close()
            if e.errno == errno.EACCES or e.errno == errno.EPERM:
                raise Error("permission denied reading %s (need the state group and CAP_BPF)" % paths.dir)
            raise Error("broken state in %s: %s" % (paths.dir, e))
        if not readonly and not link_alive(self.fds["link"], paths.ino):
            self.close()
            raise Error("stale state in %s (namespace gone); run 'agility-lookup load' to replace it" % paths.dir)

    def __getitem__(self, name):
        return self.fds[name]

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def link_alive(link_fd, ino):
    info = libbpf.link_info(link_fd)
    return info.type == libbpf.BPF_LINK_TYPE_NETNS and info.netns_ino == ino


def _state_is_live(paths):
    try:
        fd = libbpf.obj_get(paths.pin("link"))
    except OSError:
        return False
    try:
        return link_alive(fd, paths.ino)
    finally:
        os.close(fd)


def load(object_path, root=None, group=None):
    """Load and attach the dispatcher in the current netns. Returns (paths, created)."""
    paths = Paths(root)
    if not os.path.isdir(paths.root) or not _is_bpffs(paths.root):
        raise Error("%s is not a bpffs mount (mount -t bpf bpf %s)" % (paths.root, paths.root))
    gid = resolve_group(group)
    if not os.path.isdir(paths.base):
        try:
            os.mkdir(paths.base, 0o755)
        except FileExistsError:
            pass
    with flocked(paths.base):
        if os.path.isdir(paths.dir):
            if _state_is_live(paths):
                if has_lpm_layout(paths):
                    migrate(object_path, paths)
                if gid is not None:
                    set_group(paths, gid)
                return paths, False
            _remove_tree(paths.dir)  # left over by a namespace that no longer exists
        tmp = os.path.join(paths.base, "tmp-%d-%d" % (paths.ino, os.getpid()))
        if os.path.exists(tmp):
            _remove_tree(tmp)
        os.mkdir(tmp, 0o700)
        ns_fd = netns.open_current()
        link_fd = -1
        try:
            with libbpf.BPFObject(object_path) as obj:
                obj.load()
                for name in MAP_NAMES:
                    p = os.path.join(tmp, name)
                    libbpf.obj_pin(obj.map_fd(name), p)
                    _apply_modes(p, gid)
                prog_fd = obj.prog_fd(PROG_NAME)
                libbpf.obj_pin(prog_fd, os.path.join(tmp, "prog"))
                _apply_modes(os.path.join(tmp, "prog"), gid, group_read=False)
                link_fd = libbpf.link_create(prog_fd, ns_fd)
                libbpf.obj_pin(link_fd, os.path.join(tmp, "link"))
                _apply_modes(os.path.join(tmp, "link"), gid, group_read=False)
            _apply_modes(tmp, gid, is_dir=True)
            os.rename(tmp, paths.dir)
        except OSError as e:
            if os.path.isdir(tmp):
                _remove_tree(tmp)
            raise Error("load failed: %s" % e)
        finally:
            os.close(ns_fd)
            if link_fd >= 0:
                os.close(link_fd)
    return paths, True


def set_group(paths, gid):
    _apply_modes(paths.dir, gid, is_dir=True)
    for name in MAP_NAMES:
        _apply_modes(paths.pin(name), gid)


def _pin_in_place(fd, paths, name, like):
    """Pin fd as <state>/name, replacing any pin there in one rename, with the group and mode
    of the pin `like` (so that --group readers keep their access)."""
    tmp = paths.pin(name + "-new")
    if os.path.exists(tmp):
        os.unlink(tmp)
    libbpf.obj_pin(fd, tmp)
    st = os.stat(paths.pin(like))
    os.chown(tmp, -1, st.st_gid)
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    os.rename(tmp, paths.pin(name))


def upgrade(object_path, root=None):
    """Swap the program behind the link for a freshly loaded one; maps stay.

    State with the old LPM binding layout is migrated instead (migrate()).
    """
    paths = Paths(root)
    if has_lpm_layout(paths):
        return migrate(object_path, paths)
    with Pinned(paths) as pinned, flocked(paths.dir):
        try:
            with libbpf.BPFObject(object_path) as obj:
                for name in MAP_NAMES:
                    _check_shape(obj, name, pinned[name], paths)
                    obj.reuse_map(name, pinned[name])
                obj.load()
                prog_fd = obj.prog_fd(PROG_NAME)
                old_id = libbpf.prog_info(pinned["prog"]).id
                libbpf.link_update(pinned["link"], prog_fd)
                _pin_in_place(prog_fd, paths, "prog", like="prog")
                new_id = libbpf.prog_info(prog_fd).id
        except OSError as e:
            raise Error("upgrade failed: %s" % e)
    return old_id, new_id


def _check_shape(obj, name, fd, paths):
    """Refuse to hand a pinned map to a program that defines it otherwise.

    libbpf adopts a reused map as it is, without comparing it with the object's definition, and
    the verifier only checks memory safety: a map of another layout would be read wrongly.
    """
    have, want = libbpf.map_shape(fd), obj.map_shape(name)
    if have != want:
        raise Error("pinned map %s in %s has another layout than %s expects (type, key, value, entries, "
                    "flags %s, not %s); run 'agility-lookup unload' and 'agility-lookup load', then load the "
                    "bindings again" % (name, paths.dir, obj.path, have, want))


def migrate(object_path, paths):
    """Move state from the old LPM binding layout to this one; return (old prog id, new prog id).

    The new program is loaded with the kept maps (sockets, destinations, counters, address hits)
    and new, empty binding maps, which are filled from the LPM trie (same binding ids, so
    counters carry over) before the link switches to the new program: lookups see the old
    program with the old map, then the new program with the full new maps, never a mix.
    ``ag_bindings`` is unpinned last; while it exists the state counts as old (writers refuse
    it), so a migration interrupted at any point is redone from the trie by the next
    ``upgrade``, which nothing has changed in the meantime.
    """
    with Pinned(paths, lpm=True) as pinned, flocked(paths.dir):
        if not has_lpm_layout(paths):  # another process migrated it while we waited for the lock
            return (libbpf.prog_info(pinned["prog"]).id,) * 2
        try:
            entries = []
            for k in libbpf.map_keys(pinned[maps.LPM_MAP], maps.LPM_BIND_KEY_SIZE):
                v = libbpf.map_lookup(pinned[maps.LPM_MAP], k, maps.BIND_VAL_SIZE)
                if v is not None:
                    entries.append((maps.unpack_lpm_bind_key(k), v))
            with libbpf.BPFObject(object_path) as obj:
                for name in MAP_NAMES:
                    if name not in maps.BINDING_MAPS:
                        _check_shape(obj, name, pinned[name], paths)
                        obj.reuse_map(name, pinned[name])
                obj.load()
                hash_fd, lens_fd = obj.map_fd("ag_binding_hash"), obj.map_fd("ag_prefix_lens")
                for (proto, port, net), v in entries:
                    libbpf.map_update(hash_fd, maps.pack_bind_key(proto, port, net), v)
                counted = maps.lens_from_bindings(
                    (proto, port, maps.to_v6_space(net)[1]) for (proto, port, net), _v in entries)
                for proto, lens in counted.items():
                    libbpf.map_update(lens_fd, maps.U32.pack(proto), lens.pack())
                filter_fd = obj.map_fd("ag_prefix_filter")
                pairs = {}
                for slot, n in maps.filter_counts(key for key, _v in entries).items():
                    pairs.setdefault(slot >> 1, [0, 0])[slot & 1] = n
                for elem, (c0, c1) in pairs.items():
                    libbpf.map_update(filter_fd, maps.U32.pack(elem), struct.pack("=II", c0, c1))
                for name in maps.BINDING_MAPS:
                    _pin_in_place(obj.map_fd(name), paths, name, like=maps.LPM_MAP)
                prog_fd = obj.prog_fd(PROG_NAME)
                old_id = libbpf.prog_info(pinned["prog"]).id
                libbpf.link_update(pinned["link"], prog_fd)
                _pin_in_place(prog_fd, paths, "prog", like="prog")
                new_id = libbpf.prog_info(prog_fd).id
            os.unlink(paths.pin(maps.LPM_MAP))
        except OSError as e:
            raise Error("migration of the binding layout failed (run 'agility-lookup upgrade' again): %s" % e)
    return old_id, new_id


def _tag_cache_path(object_path):
    import hashlib  # here, not at the top: OpenSSL's load is most of a read-only CLI call's start
    from .build import _cache_dir
    with open(object_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return os.path.join(_cache_dir(), "tags", digest)


def shipped_tag(object_path, pinned):
    """The kernel's tag for the program in ``object_path`` (hex).

    The tag hashes the loaded instructions with map references zeroed, so it
    does not depend on the maps: loading once against the pinned maps gives
    it. Cached per object content, as the load runs the verifier.
    """
    try:
        cache = _tag_cache_path(object_path)
    except OSError as e:
        raise Error("cannot read BPF object %s: %s" % (object_path, e.strerror))
    try:
        with open(cache) as f:
            tag = f.read().strip()
        if len(tag) == 16:
            return tag
    except OSError:
        pass
    try:
        with libbpf.BPFObject(object_path) as obj:
            for name in MAP_NAMES:
                obj.reuse_map(name, pinned[name])
            obj.load()
            tag = bytes(libbpf.prog_info(obj.prog_fd(PROG_NAME)).tag).hex()
    except OSError as e:
        raise Error("cannot load %s to check the running program: %s" % (object_path, e))
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        tmp = "%s.%d" % (cache, os.getpid())
        with open(tmp, "w") as f:
            f.write(tag + "\n")
        os.replace(tmp, cache)
    except OSError:
        pass  # no cache: computed again next time
    return tag


def check_program(pinned, object_path):
    """Refuse to change bindings behind a program other than the shipped one.

    Another program behind our link, or one loaded from another object (an
    older package, a test build) may read the maps differently; like tubectl,
    binding changes wait for 'agility-lookup upgrade'.
    """
    running = libbpf.prog_info(pinned["prog"])
    link = libbpf.link_info(pinned["link"])
    if link.prog_id != running.id:
        raise Error("the link runs program %d, not the pinned program %d; run 'agility-lookup upgrade'"
                    % (link.prog_id, running.id))
    want = shipped_tag(object_path, pinned)
    have = bytes(running.tag).hex()
    if have != want:
        raise Error("the attached program (tag %s) is not the shipped one (tag %s, %s); "
                    "run 'agility-lookup upgrade' first" % (have, want, object_path))


def unload(root=None):
    """Detach and remove all state of the current netns. Returns False if none."""
    paths = Paths(root)
    if not os.path.isdir(paths.base) or not os.path.isdir(paths.dir):
        return False
    with flocked(paths.base):
        if not os.path.isdir(paths.dir):
            return False
        with flocked(paths.dir):
            gone = os.path.join(paths.base, "gone-%d-%d" % (paths.ino, os.getpid()))
            os.rename(paths.dir, gone)  # atomically invisible first
        try:
            _remove_tree(gone)
        except OSError as e:
            raise Error("unload: could not remove %s: %s" % (gone, e))
    return True


def remove_everything(root):
    """Testing aid: drop <root>/agility entirely."""
    import shutil
    p = os.path.join(root, SUBDIR)
    if os.path.isdir(p):
        shutil.rmtree(p, ignore_errors=True)
