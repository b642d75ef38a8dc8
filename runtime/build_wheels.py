"""Build the wheels the hosts install from, on the controller.

    python runtime/build_wheels.py OUTDIR

Hosts have no internet and no clang, so the controller compiles the BPF
object into the package, builds the agility-runtime wheel and collects the
wheels of its dependencies into OUTDIR/<source hash>/. It builds from a copy
of this directory, so it needs no installed agility_runtime and writes nothing
into the collection (which may be an installed one).  The directory name
is a hash of the sources: an unchanged tree is not rebuilt, so a second
deploy copies identical files and changes nothing.  Prints one JSON line:
{"dir": ..., "built": true|false, "wheels": [...]}.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CONSTRAINTS = os.path.join(HERE, "..", "tests", "constraints.txt")


def source_hash():
    digest = hashlib.sha256()
    paths = [os.path.join(HERE, "pyproject.toml"), CONSTRAINTS]
    for base, dirs, files in os.walk(os.path.join(HERE, "src")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.endswith(".egg-info"))
        paths += [os.path.join(base, f) for f in sorted(files)
                  if not f.endswith((".pyc", ".o")) and ".tmp." not in f]
    for path in paths:
        digest.update(os.path.relpath(path, HERE).encode() + b"\0")
        with open(path, "rb") as handle:  # follows the policy.py symlink: its content counts
            digest.update(handle.read())
    return digest.hexdigest()[:16]


# Compile the BPF object with the copy's own build module, whatever agility_runtime the
# controller's Python may have installed (none, from an installed collection).
BUILD_BPF = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "from agility_runtime.sklookup import build; sys.exit(build.main(sys.argv[2:]))")
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", "*.o", "*.pyc", ".*")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: build_wheels.py OUTDIR")
    outdir = os.path.abspath(sys.argv[1])
    target = os.path.join(outdir, source_hash())
    if os.path.isfile(os.path.join(target, ".complete")):
        print(json.dumps({"dir": target, "built": False, "wheels": _wheels(target)}))
        return
    os.makedirs(outdir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=outdir, prefix=".build-")
    try:
        # Build from a copy: the build writes the BPF object and setuptools' files into its
        # tree, and the collection (perhaps an installed one) must stay as it is. The copy
        # follows the policy.py symlink, so the wheel carries the file itself.
        tree = os.path.join(tmp, "runtime")
        shutil.copytree(HERE, tree, ignore=COPY_IGNORE)
        src = os.path.join(tree, "src")
        obj = os.path.join(src, "agility_runtime", "sklookup", "bpf", "dispatcher.bpf.o")
        subprocess.check_call([sys.executable, "-c", BUILD_BPF, src, "--output", obj], stdout=sys.stderr)
        wheels = os.path.join(tmp, "wheels")
        env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
        subprocess.check_call([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                               "-c", CONSTRAINTS, "-w", wheels, tree], stdout=sys.stderr, env=env, cwd=tmp)
        open(os.path.join(wheels, ".complete"), "w").close()
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.replace(wheels, target)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
    print(json.dumps({"dir": target, "built": True, "wheels": _wheels(target)}))


def _wheels(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(".whl"))


if __name__ == "__main__":
    main()
