"""Build (or reuse) the cached guest image: debootstrap -> mkfs.ext4 -d -> qcow2."""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import time

from lab_common import IMAGES_DIR, LAB_DIR, SSH_DIR, SSH_KEY, lock, log, require_root, run

RECIPE = [os.path.join(LAB_DIR, "build-image.sh"), os.path.join(LAB_DIR, "packages.txt")] + sorted(
    glob.glob(os.path.join(LAB_DIR, "guest", "*")))
HOST_TOOLS = {  # binary -> Debian package
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "qemu-img": "qemu-utils",
    "qemu-system-x86_64": "qemu-system-x86",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


def ensure_host_tools():
    """Install the host packages the lab needs when they are missing (fresh machines, CI)."""
    missing = sorted({pkg for exe, pkg in HOST_TOOLS.items() if not shutil.which(exe)})
    if not missing:
        return
    log("installing host packages: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing, env=env)


def ensure_ssh_key():
    os.makedirs(SSH_DIR, mode=0o700, exist_ok=True)
    if not os.path.exists(SSH_KEY):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agility-lab", "-f", SSH_KEY])
    return SSH_KEY + ".pub"


def recipe_hash(pubkey):
    h = hashlib.sha256()
    for path in RECIPE + [pubkey]:
        with open(path, "rb") as fh:
            h.update(os.path.basename(path).encode() + b"\0" + fh.read() + b"\0")
    return h.hexdigest()[:16]


def debian_mirror():
    """The Debian mirror this host's apt uses (LAB_MIRROR overrides)."""
    if os.environ.get("LAB_MIRROR"):
        return os.environ["LAB_MIRROR"]
    texts = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.sources")) \
            + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            with open(path) as fh:
                texts.append(fh.read())
        except OSError:
            pass
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):  # deb822
            if re.search(r"^Suites:.*\bbookworm\b", stanza, re.M) and re.search(r"^Components:.*\bmain\b", stanza, re.M):
                m = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if m and "security" not in m.group(1):
                    return m.group(1)
        for line in text.splitlines():  # one-line format
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if m:
                return m.group(1)
    raise SystemExit("labctl: no bookworm mirror in /etc/apt sources; set LAB_MIRROR")


def image_paths(key):
    d = os.path.join(IMAGES_DIR, key)
    return d, {n: os.path.join(d, n) for n in ("base.qcow2", "vmlinuz", "initrd.img")}


def current_image():
    """Paths of the built image for the current recipe, or None."""
    pub = SSH_KEY + ".pub"
    if not os.path.exists(pub):
        return None
    d, paths = image_paths(recipe_hash(pub))
    return paths if all(os.path.exists(p) for p in paths.values()) else None


def build(force=False):
    require_root()
    ensure_host_tools()
    with lock("image"):
        pub = ensure_ssh_key()
        key = recipe_hash(pub)
        d, paths = image_paths(key)
        if not force and all(os.path.exists(p) for p in paths.values()):
            log("image %s is up to date" % key)
            return paths
        os.makedirs(IMAGES_DIR, exist_ok=True)
        tmp = d + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        t0 = time.time()
        log("building image %s (debootstrap bookworm, a few minutes)" % key)
        try:
            run(["bash", os.path.join(LAB_DIR, "build-image.sh"), tmp, pub, debian_mirror()])
        except subprocess.CalledProcessError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SystemExit("labctl: image build failed")
        shutil.rmtree(d, ignore_errors=True)
        os.rename(tmp, d)
        for old in os.listdir(IMAGES_DIR):  # keep only the current recipe's image
            if old != key:
                shutil.rmtree(os.path.join(IMAGES_DIR, old), ignore_errors=True)
        size = os.path.getsize(paths["base.qcow2"]) // (1 << 20)
        log("image %s built in %.0f s (base.qcow2 %d MiB)" % (key, time.time() - t0, size))
        return paths
