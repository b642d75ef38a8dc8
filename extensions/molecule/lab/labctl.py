"""labctl: the agility.addressing VM lab (PoP VMs in a network namespace).

  labctl image [--force]        build the guest image if its recipe changed
  labctl up [--pops N]          namespace + PoP VMs + wait for SSH + write the inventory
  labctl route PREFIX POP[,POP..]|none
                                point the namespace's route for PREFIX at PoP(s) (ECMP if several)
  labctl exec CMD...            run CMD inside the namespace (the client / "the Internet")
  labctl ssh POP [CMD...]       ssh into a PoP through the namespace
  labctl status                 what is running, pool routes
  labctl down                   stop VMs, delete the namespace, remove overlays (idempotent)

Environment: LAB_CACHE (default <repo>/.cache/lab), LAB_NS (default agility-lab),
LAB_ACCEL=kvm|tcg (default: probe), LAB_VM_MEM (MiB, default 384), LAB_MIRROR.
"""
import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

import lab_common as C  # noqa: E402
import lab_image  # noqa: E402
import lab_inventory  # noqa: E402
import lab_net  # noqa: E402
import lab_vm  # noqa: E402

STATE = os.path.join(C.CACHE, "state.json")


def cmd_image(args):
    paths = lab_image.build(force=args.force)
    print(os.path.dirname(paths["base.qcow2"]))


def cmd_up(args):
    C.require_root()
    n = args.pops
    if not 1 <= n <= C.MAX_POPS:
        raise SystemExit("labctl: --pops must be 1..%d" % C.MAX_POPS)
    t0 = time.time()
    image = lab_image.build()
    with C.lock("lab"):
        lab_net.up()
        acc = lab_vm.accel(image)
        for name in lab_vm.running():
            if C.pop_index(name) > n:
                log_stop(name)
        started = []
        for i in range(1, n + 1):
            lab_net.add_tap(i)
            if lab_vm.start(i, image, acc):
                started.append(C.pop_name(i))
        lab_inventory.write_ssh_config(n)
        lab_inventory.write_inventory(n)
        t_boot = time.time()
        lab_vm.wait_ssh([C.pop_name(i) for i in range(1, n + 1)], args.timeout)
        for prefix, via in lab_net.routes().items():
            if via == "(none)" or any(C.pop_addrs(i)[k] in via for i in range(n + 1, C.MAX_POPS + 1)
                                      for k in ("ipv4", "ipv6")):
                lab_net.route(prefix, [1])
        with open(STATE, "w") as fh:
            json.dump({"pops": n, "accel": acc, "ns": C.NS}, fh)
    C.log("lab up: %d PoP(s) (%s started) in %.0f s (boot to SSH %.0f s); inventory %s"
          % (n, ", ".join(started) or "none", time.time() - t0, time.time() - t_boot, C.INVENTORY))
    print(C.INVENTORY)


def log_stop(name):
    C.log("stopping %s" % name)
    lab_vm.stop(name)
    lab_net.del_tap(C.pop_index(name))


def cmd_route(args):
    C.require_root()
    if not C.ns_exists():
        raise SystemExit("labctl: lab is not up")
    pops = [] if args.pop == "none" else [C.pop_index(p) for p in args.pop.split(",")]
    lab_net.route(args.prefix, pops)
    C.ns_run(["ip", "-6" if ":" in args.prefix else "-4", "route", "show", args.prefix])


def cmd_exec(args):
    if not args.cmd:
        raise SystemExit("labctl exec: give a command")
    os.execvp("ip", ["ip", "netns", "exec", C.NS] + args.cmd)


def cmd_ssh(args):
    if not os.path.exists(C.SSH_CONFIG):
        raise SystemExit("labctl: lab is not up (no %s)" % C.SSH_CONFIG)
    C.pop_index(args.pop)
    os.execvp("ssh", ["ssh", "-F", C.SSH_CONFIG, args.pop] + args.cmd)


def cmd_status(args):
    up = C.ns_exists()
    state = {}
    if os.path.exists(STATE):
        with open(STATE) as fh:
            state = json.load(fh)
    print("namespace %s: %s" % (C.NS, "up" if up else "absent"))
    img = lab_image.current_image()
    print("image: %s" % (os.path.dirname(img["base.qcow2"]) if img else "not built for the current recipe"))
    print("accelerator: %s" % state.get("accel", "-"))
    names = lab_vm.running()
    for name in names:
        a = C.pop_addrs(C.pop_index(name))
        ssh = "ssh up" if up and lab_vm.port_open(a["ipv4"]) else "ssh down"
        print("%-5s pid %-7s %-12s %-18s %s" % (name, lab_vm.pid_of(name), a["ipv4"], a["ipv6"], ssh))
    if not names:
        print("no VMs running")
    if up:
        for prefix, via in lab_net.routes().items():
            print("route %-18s %s" % (prefix, via))
    if os.path.exists(C.INVENTORY):
        print("inventory: %s" % C.INVENTORY)
    return 0 if up and names else 3


def cmd_down(args):
    C.require_root()
    with C.lock("lab"):
        names = set(lab_vm.running())
        if os.path.isdir(C.RUN_DIR):
            names |= {f.split(".")[0] for f in os.listdir(C.RUN_DIR) if f.startswith("pop")}
        for name in sorted(names):
            log_stop(name) if C.ns_exists() else lab_vm.stop(name)
        lab_net.down()
        shutil.rmtree(C.RUN_DIR, ignore_errors=True)
        for path in (C.INVENTORY, STATE):
            if os.path.exists(path):
                os.unlink(path)
    C.log("lab down")


def main():
    p = argparse.ArgumentParser(prog="labctl", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    s = sub.add_parser("image", help="build the guest image if needed")
    s.add_argument("--force", action="store_true", help="rebuild even if cached")
    s.set_defaults(func=cmd_image)
    s = sub.add_parser("up", help="boot the lab")
    s.add_argument("--pops", type=int, default=int(os.environ.get("LAB_POPS", "2")))
    s.add_argument("--timeout", type=int, default=int(os.environ.get("LAB_BOOT_TIMEOUT", "300")),
                   help="seconds to wait for SSH (default 300)")
    s.set_defaults(func=cmd_up)
    s = sub.add_parser("route", help="route a prefix from the namespace to PoP(s)")
    s.add_argument("prefix")
    s.add_argument("pop", help="pop1, pop1,pop2 (ECMP) or none")
    s.set_defaults(func=cmd_route)
    s = sub.add_parser("exec", help="run a command in the namespace")
    s.add_argument("cmd", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_exec)
    s = sub.add_parser("ssh", help="ssh into a PoP")
    s.add_argument("pop")
    s.add_argument("cmd", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_ssh)
    sub.add_parser("status", help="show the lab").set_defaults(func=cmd_status)
    sub.add_parser("down", help="tear the lab down").set_defaults(func=cmd_down)
    args = p.parse_args()
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
