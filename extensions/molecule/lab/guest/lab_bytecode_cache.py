"""Lab guests only: cache the bytecode of code imported from zip files (Ansible's AnsiballZ).

Every Ansible module run ships ansible.module_utils and the module in a fresh zip, and zipimport
never writes bytecode: the guest's Python compiles ~2 MB of source on every task. Under TCG that
is about 3 s of a 7 s module run (docs/lab.md, "Where a module run's time goes"). This hook keeps
the compiled code in /var/cache/lab-bytecode, keyed by the source's SHA-256 and its path inside
the zip, and gives the code objects the current file name so tracebacks stay true. What runs is
byte for byte the code the controller sent; only the compile step is skipped.

Loaded by lab_bytecode_cache.pth from the system site-packages at interpreter start (the
runtime's venv too: it is made with --system-site-packages). Installed by build-image.sh; never on a
managed host outside the lab.
"""

import marshal
import os
import sys
import zipimport

CACHE_DIR = "/var/cache/lab-bytecode"
MAGIC = "%d.%d" % sys.version_info[:2]
_compile_source = zipimport._compile_source  # pylint: disable=protected-access


def _renamed(code, filename):
    consts = tuple(_renamed(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _cached_compile(pathname, source):
    # hashlib here, not at the top: this file loads at every interpreter start (the runtime's CLIs
    # too), and hashlib's OpenSSL load costs about 0.3 s in a TCG guest
    import hashlib
    inner = pathname.split(".zip" + os.sep, 1)[-1]
    key = hashlib.sha256(("%s\0%s\0" % (MAGIC, inner)).encode() + source).hexdigest()
    path = os.path.join(CACHE_DIR, key)
    try:
        with open(path, "rb") as handle:
            return _renamed(marshal.loads(handle.read()), pathname)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = _compile_source(pathname, source)
    try:
        os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
        tmp = "%s.%d.tmp" % (path, os.getpid())
        with open(tmp, "wb") as handle:
            handle.write(marshal.dumps(code))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full disk only costs the compile
    return code


if os.geteuid() == 0:  # the lab's Ansible runs as root; the cache is root's alone (0700)
    zipimport._compile_source = _cached_compile  # pylint: disable=protected-access
