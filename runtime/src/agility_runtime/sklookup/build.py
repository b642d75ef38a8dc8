"""Compile the BPF dispatcher and find the compiled object.

``python -m agility_runtime.sklookup.build`` compiles bpf/dispatcher.bpf.c into
bpf/dispatcher.bpf.o inside the package (the wheel build runs it first, since
hosts have no clang). At run time :func:`object_path` prefers that file and
otherwise compiles into a cache directory when clang is present.
"""
import os
import sys

from .errors import Error

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "bpf", "dispatcher.bpf.c")
OBJECT = os.path.join(HERE, "bpf", "dispatcher.bpf.o")
INCLUDE = "/usr/include/x86_64-linux-gnu"


# hashlib, shutil, subprocess and argparse are imported where used: every agility-lookup call
# imports this module for object_path(), whose common case needs none of them.

def compile_object(out, source=SOURCE, clang=None):
    import shutil
    import subprocess
    clang = clang or shutil.which("clang")
    if not clang:
        raise Error("clang not found: cannot compile %s" % source)
    tmp = "%s.tmp.%d" % (out, os.getpid())
    cmd = [clang, "-O2", "-g", "-target", "bpf", "-Wall"]
    if os.path.isdir(INCLUDE):
        cmd += ["-I", INCLUDE]
    cmd += ["-c", source, "-o", tmp]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if proc.returncode != 0:
        raise Error("clang failed: %s" % proc.stdout.strip().splitlines()[-1:])
    os.replace(tmp, out)
    return out


def _cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "agility-lookup")


def object_path():
    """Path of a compiled object matching the shipped C source."""
    override = os.environ.get("AGILITY_LOOKUP_OBJECT")
    if override:
        return override
    if os.path.exists(OBJECT) and os.path.getmtime(OBJECT) >= os.path.getmtime(SOURCE):
        return OBJECT
    import hashlib
    import shutil
    if not shutil.which("clang"):
        if os.path.exists(OBJECT):
            return OBJECT
        raise Error("compiled BPF object missing (%s) and clang not installed" % OBJECT)
    with open(SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = _cache_dir()
    os.makedirs(cache, exist_ok=True)
    out = os.path.join(cache, "dispatcher-%s.bpf.o" % digest)
    if not os.path.exists(out):
        compile_object(out)
    return out


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m agility_runtime.sklookup.build",
                                 description="compile the sk_lookup dispatcher into the package")
    ap.add_argument("--output", default=OBJECT)
    args = ap.parse_args(argv)
    try:
        print(compile_object(args.output))
    except Error as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
