"""Writing a zone store: a whole compile into a new generation, or one zone in place.

``compile_store`` builds every zone into a new LMDB environment in a hidden directory
inside the store, syncs it to disk, renames it to ``gen-<id>`` and then swaps the
``current`` symlink (rename over it), so a reader sees the old store or the new one,
never a part.  Any failure (a source that cannot be read, a full disk) removes the new
generation and leaves ``current`` as it was.

``update_zone`` adds, replaces or removes one zone in one LMDB write transaction,
together with the meta record (serial + 1, digest, count): LMDB readers see the
transaction whole or not at all.

Writers hold ``write.lock`` (flock), so a compile and an update never interleave.
"""

import contextlib
import fcntl
import os
import shutil
import tempfile
import uuid

import lmdb

from agility_runtime import policy
from agility_runtime.zonestore import layout, rules, sources
from agility_runtime.zonestore.errors import SourceError, StoreError

CURRENT = "current"
LOCK = "write.lock"
GEN_PREFIX = "gen-"
# the virtual size LMDB may map; the file only grows as pages are written
MAP_SIZE = 1 << 38
BATCH = 20000  # zones per write transaction while compiling (the new generation is private)


class Report:
    """What a compile did: zones written, zones refused (with problems), source errors."""

    def __init__(self):
        self.compiled = 0
        self.refused = {}          # zone name -> [(where, field, message)]
        self.source_errors = []    # one line each
        self.serial = None
        self.digest = None
        self.written = False

    def refuse(self, name, where, problems):
        try:
            name = policy.normalise_name(name)  # one spelling per zone in the report
        except ValueError:
            name = repr(name)
        self.refused.setdefault(name, []).extend((where, f, m) for f, m in problems)

    def lines(self):
        out = list(self.source_errors)
        for name in sorted(self.refused):
            for where, field, message in self.refused[name]:
                out.append("refused zone %s (%s): %s: %s" % (name, where, field, message))
        return [line.replace("\n", "\\n") for line in out]


@contextlib.contextmanager
def write_lock(store):
    os.makedirs(store, exist_ok=True)
    fd = os.open(os.path.join(store, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def current_generation(store):
    """Path of the generation ``current`` points at, or None when there is no store."""
    try:
        target = os.readlink(os.path.join(store, CURRENT))
    except OSError:
        return None
    return os.path.join(store, target)


def compile_store(store, paths, account_type="static", jobs=1):
    """Compile the zones of ``paths`` into ``store``; returns a ``Report``.  Zones with
    problems are refused by name, the rest written; a source that cannot be read writes
    nothing (its zones would silently vanish).  ``StoreError`` if the store cannot be written.
    ``jobs`` processes check the sources (one file each at a time)."""
    report = Report()
    with write_lock(store):
        previous = _serial_of(current_generation(store))
        tmp = tempfile.mkdtemp(prefix=".tmp-gen-", dir=store)
        try:
            os.chmod(tmp, 0o755)  # readable by the responder's user, as the files LMDB creates
            env = lmdb.open(tmp, map_size=MAP_SIZE, subdir=True, sync=False, metasync=False, readahead=False)
            try:
                _fill(env, paths, account_type, report, previous, jobs)
                env.sync(True)
            finally:
                env.close()
            if report.source_errors:
                shutil.rmtree(tmp, ignore_errors=True)
                return report
            for name in ("data.mdb", "lock.mdb"):
                _fsync_path(os.path.join(tmp, name))
            _fsync_path(tmp)
            generation = GEN_PREFIX + uuid.uuid4().hex[:12]
            os.rename(tmp, os.path.join(store, generation))
            _swap_current(store, generation)
        except lmdb.Error as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError("cannot write the zone store %s: %s (the previous store is unchanged)" % (store, exc))
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError("cannot write the zone store %s: %s (the previous store is unchanged)" % (store, exc))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        report.written = True
        _remove_old_generations(store, keep=2)
    return report


def check_source(job):
    """Read and check one source (runs in a worker process): ``(source error or None,
    [(name, key name or None, zone bytes or None, where, problems)])``."""
    path, account_type = job
    try:
        items = sources.read(path, account_type)
    except SourceError as exc:
        return str(exc), []
    out = []
    for item in items:
        if item.problems or item.zone is None:
            out.append((item.name, None, None, item.where, item.problems))
            continue
        key_name, problems = rules.check_zone(item.name, item.zone)
        value = layout.encode_zone(item.zone) if not problems else None
        out.append((item.name, key_name, value, item.where, problems))
    return None, out


def _checked_sources(paths, account_type, jobs):
    """``check_source`` of every path, in order; sources are checked by ``jobs`` processes
    (checking is most of a compile's work), written by this one."""
    work = [(path, account_type) for path in paths]
    if jobs <= 1 or len(work) <= 1:
        yield from (check_source(job) for job in work)
        return
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(min(jobs, len(work))) as pool:
        yield from pool.imap(check_source, work)


def _fill(env, paths, account_type, report, previous, jobs):
    digest = layout.ZERO_DIGEST
    count = 0
    duplicates = set()
    txn = env.begin(write=True)
    pending = 0
    try:
        for error, checked in _checked_sources(paths, account_type, jobs):
            if error is not None:
                report.source_errors.append(error)
                continue
            for name, key_name, value, where, problems in checked:
                if problems or value is None:
                    report.refuse(name, where, problems)
                    continue
                key = layout.revkey_text(key_name)
                if key_name in duplicates:
                    report.refuse(key_name, where, [("zones[%s]" % key_name, "zone given more than once")])
                    continue
                old = txn.get(key)
                if old is not None:
                    # every copy is refused: which one is meant is not ours to guess
                    duplicates.add(key_name)
                    digest = layout.digest_xor(digest, key, old)
                    count -= 1
                    txn.delete(key)
                    report.refuse(key_name, where, [("zones[%s]" % key_name, "zone given more than once")])
                    continue
                txn.put(key, value)
                digest = layout.digest_xor(digest, key, value)
                count += 1
                pending += 1
                if pending >= BATCH:
                    txn.commit()
                    txn = env.begin(write=True)
                    pending = 0
        report.compiled = count
        report.serial = (previous or 0) + 1
        report.digest = digest
        txn.put(layout.META_KEY, layout.encode_meta(report.serial, digest, count))
        txn.commit()
    except BaseException:
        txn.abort()
        raise


def update_zone(store, name, zone):
    """Set zone ``name`` to ``zone`` (None: delete it) in one transaction; returns the new
    meta record.  The zone is checked first: ``(problems, None)`` when it is refused."""
    key_name = None
    if zone is not None:
        key_name, problems = rules.check_zone(name, zone)
        if problems:
            return problems, None
    else:
        try:
            key_name = policy.normalise_name(name)
        except ValueError as exc:
            return [("zones[%s]" % name, str(exc))], None
    key = layout.revkey_text(key_name)
    with write_lock(store):
        gen = current_generation(store)
        if gen is None:
            raise StoreError("%s has no zone store (compile one first)" % store)
        try:
            env = lmdb.open(gen, map_size=MAP_SIZE, subdir=True, readahead=False)
        except lmdb.Error as exc:
            raise StoreError("cannot open the zone store %s: %s" % (store, exc))
        try:
            with env.begin(write=True) as txn:
                try:
                    meta = layout.decode_meta(txn.get(layout.META_KEY), store)
                except ValueError as exc:
                    raise StoreError(str(exc))
                digest, count = meta["digest"], meta["zones"]
                old = txn.get(key)
                if zone is None and old is None:
                    return [("zones[%s]" % key_name, "is not in the store")], None
                if old is not None:
                    digest = layout.digest_xor(digest, key, old)
                    count -= 1
                if zone is not None:
                    value = layout.encode_zone(zone)
                    txn.put(key, value)
                    digest = layout.digest_xor(digest, key, value)
                    count += 1
                else:
                    txn.delete(key)
                txn.put(layout.META_KEY, layout.encode_meta(meta["serial"] + 1, digest, count))
            return [], layout.decode_meta(_read_meta(env), store)
        except lmdb.Error as exc:
            raise StoreError("cannot update the zone store %s: %s (unchanged)" % (store, exc))
        finally:
            env.close()


def _read_meta(env):
    with env.begin() as txn:
        return txn.get(layout.META_KEY)


def _serial_of(gen):
    if gen is None:
        return None
    try:
        env = lmdb.open(gen, readonly=True, subdir=True, lock=True)
    except lmdb.Error:
        return None
    try:
        return layout.decode_meta(_read_meta(env), gen)["serial"]
    except (ValueError, lmdb.Error):
        return None
    finally:
        env.close()


def _swap_current(store, generation):
    link = os.path.join(store, ".current.tmp-%s" % uuid.uuid4().hex[:8])
    os.symlink(generation, link)
    os.rename(link, os.path.join(store, CURRENT))
    _fsync_path(store)


def _remove_old_generations(store, keep):
    """Keep the newest ``keep`` generations (the one a reader may still be opening);
    readers that have an older one open keep their mapping (unlinked files live on)."""
    gens = []
    for entry in os.listdir(store):
        path = os.path.join(store, entry)
        if entry.startswith(GEN_PREFIX) and os.path.isdir(path):
            gens.append((os.stat(path).st_mtime_ns, entry))
        elif entry.startswith(".tmp-gen-"):
            shutil.rmtree(path, ignore_errors=True)  # left by a writer that crashed (writers hold the lock)
        elif entry.startswith(".current.tmp-"):
            os.unlink(path)
    current = os.readlink(os.path.join(store, CURRENT))
    for _mtime, entry in sorted(gens, reverse=True)[keep:]:
        if entry != current:
            shutil.rmtree(os.path.join(store, entry), ignore_errors=True)


def _fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
