"""PoP VMs: qcow2 overlay, direct kernel boot, qemu inside the lab namespace, wait for SSH."""
import os
import signal
import subprocess
import sys
import threading
import time

from lab_common import (CACHE, GUEST_IFACE, GW4, GW6, LAB_DIR, LINK4, LINK6, RUN_DIR, SSH_CONFIG,
                        VM_MEM_MIB, log, ns_run, pop_addrs, pop_name, run)

ACCEL_FILE = os.path.join(CACHE, "accel")


def _files(name):
    return {k: os.path.join(RUN_DIR, name + ext) for k, ext in
            (("disk", ".qcow2"), ("pid", ".pid"), ("serial", ".serial.log"))}


def pid_of(name):
    try:
        with open(_files(name)["pid"]) as fh:
            pid = int(fh.read().strip())
        os.kill(pid, 0)
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            if b"qemu-system" not in fh.read():
                return None
        return pid
    except (OSError, ValueError):
        return None


def accel(image):
    """'kvm' only if a KVM guest really boots here (probe once, cached); else TCG.

    LAB_ACCEL=kvm|tcg overrides. The probe boots the lab kernel without a root
    disk and waits for its panic; on machines where /dev/kvm opens but guests
    hang or fail ("failed to set MSR"), it times out and TCG is used.
    """
    forced = os.environ.get("LAB_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    if os.path.exists(ACCEL_FILE):
        with open(ACCEL_FILE) as fh:
            return fh.read().strip() or "tcg"
    result = "tcg"
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        log("probing KVM (up to 20 s)")
        serial = os.path.join(CACHE, "kvm-probe.log")
        try:
            subprocess.run(["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256",
                            "-nodefaults", "-display", "none", "-no-reboot", "-serial", "file:" + serial,
                            "-kernel", image["vmlinuz"],
                            "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20, check=False)
            with open(serial, errors="replace") as fh:
                if "Kernel panic" in fh.read():
                    result = "kvm"
        except (subprocess.TimeoutExpired, OSError):
            pass
    log("accelerator: %s" % result)
    with open(ACCEL_FILE, "w") as fh:
        fh.write(result + "\n")
    return result


def start(i, image, acc):
    name = pop_name(i)
    if pid_of(name):
        return False
    a = pop_addrs(i)
    f = _files(name)
    os.makedirs(RUN_DIR, exist_ok=True)
    for k in ("disk", "pid"):
        if os.path.exists(f[k]):
            os.unlink(f[k])
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image["base.qcow2"], f["disk"]])
    append = " ".join([
        "root=/dev/vda rw console=ttyS0 quiet panic=-1",
        "systemd.hostname=%s" % name,
        "ip=%s::%s:%s:%s:%s:off" % (a["ipv4"], GW4, LINK4.netmask, name, GUEST_IFACE),
        "ip=[%s]::[%s]:%d::%s:off" % (a["ipv6"], GW6, LINK6.prefixlen, GUEST_IFACE),
    ])
    if acc == "kvm":
        accel_args = ["-accel", "kvm", "-cpu", "host"]
    else:
        # qemu64, not max: with AVX2 advertised, glibc and Python take vector paths that TCG
        # emulates slowly (guest compile 0.76 s vs 1.19 s, a module run ~6 s vs ~7.3 s; docs/lab.md)
        accel_args = ["-accel", "tcg,tb-size=256", "-cpu", "qemu64"]
    cmd = ["qemu-system-x86_64", "-name", name] + accel_args + [
        "-m", str(VM_MEM_MIB), "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
        "-kernel", image["vmlinuz"], "-initrd", image["initrd.img"], "-append", append,
        "-drive", "file=%s,if=virtio,format=qcow2,cache=unsafe" % f["disk"],
        "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % a["tap"],
        "-device", "virtio-net-pci,netdev=n0,addr=0x5,mac=%s" % a["mac"],
        "-device", "virtio-rng-pci",
        "-serial", "file:" + f["serial"],
        "-daemonize", "-pidfile", f["pid"],
    ]
    log("starting %s (%s, %s, %s MiB, %s)" % (name, a["ipv4"], a["ipv6"], VM_MEM_MIB, acc))
    ns_run(cmd)
    return True


def stop(name):
    pid = pid_of(name)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for dummy in range(50):
            if not pid_of(name):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    for path in _files(name).values():
        if os.path.exists(path):
            os.unlink(path)


def running():
    """Names of PoP VMs whose qemu is alive, sorted by index."""
    if not os.path.isdir(RUN_DIR):
        return []
    names = {f[:-4] for f in os.listdir(RUN_DIR) if f.endswith(".pid")}
    return sorted((n for n in names if pid_of(n)), key=lambda n: int(n[3:]))


def ssh_ok(name):
    """True when `ssh NAME true` works through the namespace (sshd up, key accepted)."""
    res = subprocess.run(["ssh", "-F", SSH_CONFIG, "-o", "ConnectTimeout=5", "-o", "BatchMode=yes",
                          name, "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                         check=False)
    return res.returncode == 0


def port_open(ip, port=22):
    res = ns_run([sys.executable, os.path.join(LAB_DIR, "nsproxy.py"), "--probe", ip, str(port)],
                 check=False, capture=True)
    return res.returncode == 0


def wait_ssh(names, timeout):
    """Wait for SSH on every VM in parallel; returns {name: seconds} or raises SystemExit."""
    t0 = time.time()
    done, errors = {}, {}

    def one(name):
        while time.time() - t0 < timeout:
            if not pid_of(name):
                errors[name] = "qemu exited"
                return
            if port_open(pop_addrs(int(name[3:]))["ipv4"]) and ssh_ok(name):
                done[name] = time.time() - t0
                log("%s answers SSH after %.0f s" % (name, done[name]))
                return
            time.sleep(2)
        errors[name] = "no SSH after %d s" % timeout

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for name, why in sorted(errors.items()):
            log("%s: %s; last lines of %s:" % (name, why, _files(name)["serial"]))
            try:
                with open(_files(name)["serial"], errors="replace") as fh:
                    sys.stderr.write("".join(fh.readlines()[-25:]))
            except OSError:
                pass
        raise SystemExit("labctl: VMs did not come up: " + ", ".join(sorted(errors)))
    return done
