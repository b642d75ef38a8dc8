"""agility-lookup: manage the BPF sk_lookup dispatcher of a network namespace."""
import argparse
import json
import os
import socket
import sys

from . import netns, state
from .build import object_path
from .dispatcher import Dispatcher
from .errors import Error
from .binding_view import binding_text, select
from .metrics import collect
from .model import Binding, parse_set, sort_key
from .sockets import describe, fd_from_pid, systemd_fds
from ..version import VersionAction

PROG = "agility-lookup"


def _emit(args, data, text):
    """Print ``data`` as JSON with --json, else ``text``; ``data`` may be a function making it
    (at 100,000 bindings load-bindings' before and after lists cost more than the change)."""
    if getattr(args, "json", False):
        print(json.dumps(data() if callable(data) else data, indent=None, sort_keys=True))
    elif text is not None:
        print(text)


def _bindings_text(bindings):
    if not bindings:
        return "no bindings"
    rows = ["%-5s %-43s %5s  %s" % ("PROTO", "PREFIX", "PORT", "LABEL")]
    for b in bindings:
        rows.append("%-5s %-43s %5s  %s" % (b.protocol, b.prefix_text, b.port or "*", b.label))
    return "\n".join(rows)


def _steps_json(steps):
    return [{"op": op, **b.as_dict()} for op, b in steps]


def cmd_load(args):
    obj = args.object or object_path()
    paths, created = state.load(obj, args.bpffs, args.group)
    _emit(args, {"changed": created, "state": paths.dir, "netns_ino": paths.ino},
          ("loaded" if created else "already loaded") + " in netns %d (%s)" % (paths.ino, paths.dir))


def cmd_unload(args):
    removed = state.unload(args.bpffs)
    _emit(args, {"changed": removed}, "unloaded" if removed else "not loaded")


def cmd_upgrade(args):
    old, new = state.upgrade(args.object or object_path(), args.bpffs)
    _emit(args, {"changed": True, "old_prog_id": old, "new_prog_id": new},
          "upgraded program %d -> %d" % (old, new))


def cmd_status(args):
    with Dispatcher(args.bpffs) as d:
        data = {"state": d.paths.dir, "netns_ino": d.paths.ino, "program": d.program(),
                "bindings": [b.as_dict() for b in d.bindings()], "destinations": d.destinations()}
    if args.json:
        _emit(args, data, None)
        return
    p = data["program"]
    lines = ["netns %d, state %s" % (data["netns_ino"], data["state"]),
             "program id %d (%s, tag %s) via link %d" % (p["prog_id"], p["name"], p["tag"], p["link_id"]),
             "", _bindings_text([Binding(**b) for b in data["bindings"]]), "",
             "%-20s %-5s %-4s %-7s %9s %9s" % ("LABEL", "DOMAIN", "PROTO", "SOCKET", "LOOKUPS", "MISSING")]
    for x in data["destinations"]:
        lines.append("%-20s %-5s %-4s %-7s %9d %9d" % (x["label"], x["domain"], x["protocol"],
                                                       "yes" if x["socket"] else "no", x["lookups"], x["missing_socket"]))
    print("\n".join(lines))


def cmd_bindings(args):
    with Dispatcher(args.bpffs, readonly=True) as d:
        bs = select(d.bindings(), args.label, args.protocol, args.prefix, args.port)
    _emit(args, {"bindings": [b.as_dict() for b in bs]}, _bindings_text(bs))


def cmd_bind(args):
    b = Binding(args.protocol, args.prefix, args.port, args.label)
    with Dispatcher(args.bpffs, write=True) as d:
        steps = d.bind(b)
    _emit(args, {"changed": bool(steps), "steps": _steps_json(steps)},
          ("bound %s" % binding_text(b)) if steps else "unchanged")


def cmd_unbind(args):
    with Dispatcher(args.bpffs, write=True) as d:
        steps = d.unbind(args.protocol, args.prefix, args.port)
    _emit(args, {"changed": bool(steps), "steps": _steps_json(steps)}, "unbound" if steps else "no such binding")


def _read_set(path):
    try:
        if path == "-":
            data = json.load(sys.stdin)
        else:
            with open(path) as f:
                data = json.load(f)
    except OSError as e:
        raise Error("cannot read %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise Error("%s is not valid JSON: %s" % (path, e))
    if isinstance(data, dict):
        if set(data) - {"bindings"}:
            raise Error("%s: top-level object may only have 'bindings'" % path)
        data = data.get("bindings", [])
    return parse_set(data, sort=False)  # replace() plans its own order; output is sorted when printed


def cmd_load_bindings(args):
    desired = _read_set(args.file)
    from .model import plan
    with Dispatcher(args.bpffs, write=not args.dry_run, readonly=args.dry_run) as d:
        entries = d.binding_entries()
        before = d.bindings(raw=entries, sort=False)
        if args.dry_run:
            steps = plan(before, desired)
        else:
            steps = d.replace(desired, entries, before)
        after = desired if steps else before

    def data():
        return {"changed": bool(steps), "dry_run": args.dry_run, "steps": _steps_json(steps),
                "before": [b.as_dict() for b in sorted(before, key=sort_key)],
                "after": [b.as_dict() for b in sorted(after, key=sort_key)]}
    text = "%s %d step(s)" % ("would apply" if args.dry_run else "applied", len(steps)) if steps else "unchanged"
    _emit(args, data, text)


def _register(args, fds, label_for):
    out = []
    with Dispatcher(args.bpffs, write=True) as d:
        checked = []
        for fd, name in fds:
            domain, proto, where = describe(fd)
            checked.append((fd, label_for(name), domain, proto, where))
        unused = [d.socket_unused(label, domain, proto) for _fd, label, domain, proto, _w in checked]
        unused = [u for u in unused if u]
        if unused and getattr(args, "strict", False):
            raise Error("%s; nothing registered (--strict)" % unused[0])
        for u in unused:
            print("%s: warning: %s" % (PROG, u), file=sys.stderr)
        for fd, label, domain, proto, where in checked:
            d.register(label, fd, domain, proto)
            out.append({"label": label, "fd": fd, "domain": "ipv4" if domain == socket.AF_INET else "ipv6",
                        "protocol": "tcp" if proto == socket.IPPROTO_TCP else "udp", "local": where})
    return out


def cmd_register(args):
    if args.pid is not None:
        return _register_picked(args)
    if args.protocol or args.address or args.port is not None:
        raise Error("--protocol, --address and --port select a socket of --pid PID")
    fds = systemd_fds()

    def label_for(name):
        if args.use_fdnames:
            return name or args.label
        return args.label

    out = _register(args, fds, label_for)
    _emit(args, {"changed": True, "registered": out},
          "\n".join("registered %(label)s %(protocol)s/%(domain)s %(local)s" % r for r in out))


def cmd_register_pid(args):
    fds = []
    try:
        for n in args.fd:
            fds.append((fd_from_pid(args.pid, n), ""))
        out = _register(args, fds, lambda name: args.label)
    finally:
        for fd, name in fds:
            os.close(fd)
    _emit(args, {"changed": True, "registered": out},
          "\n".join("registered %(label)s %(protocol)s/%(domain)s %(local)s" % r for r in out))


def _register_picked(args):
    from .socket_pick import pick
    if args.use_fdnames:
        raise Error("--use-fdnames is for systemd sockets, not --pid")
    cand = pick(args.pid, args.protocol, args.address, args.port)
    try:
        out = _register(args, [(cand.fd, "")], lambda name: args.label)
    finally:
        os.close(cand.fd)
    for r in out:
        r["pid"], r["pid_fd"] = args.pid, cand.remote_fd
    _emit(args, {"changed": True, "registered": out},
          "\n".join("registered %(label)s %(protocol)s/%(domain)s %(local)s (pid %(pid)d fd %(pid_fd)d)" % r
                    for r in out))


def cmd_unregister(args):
    domain = {None: None, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[args.domain]
    proto = {None: None, "tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}[args.protocol]
    with Dispatcher(args.bpffs, write=True) as d:
        removed = d.unregister(args.label, domain, proto)
    _emit(args, {"changed": bool(removed), "unregistered": removed},
          "unregistered %d socket(s)" % len(removed))


def cmd_metrics(args):
    if args.listen:
        from .metrics_serve import serve
        serve(args.bpffs, args.listen, args.per_binding, not args.no_addresses, args.timeout)
        return
    sys.stdout.write(collect(lambda: Dispatcher(args.bpffs, readonly=True), args.per_binding, not args.no_addresses))


def cmd_addresses(args):
    with Dispatcher(args.bpffs, readonly=True) as d:
        addrs = d.addresses()
    _emit(args, {"addresses": addrs},
          "\n".join("%-40s %10d %10d" % (a["address"], a["hits"], a["drops"]) for a in addrs) or "no hits")


def parser():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__)
    ap.add_argument("--bpffs", help="bpffs mount holding the state (default /sys/fs/bpf or $AGILITY_BPFFS)")
    ap.add_argument("--netns", help="network namespace file to act in (e.g. /run/netns/NAME)")
    ap.add_argument("--version", action=VersionAction)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name, fn, help_, json_=True):
        p = sub.add_parser(name, help=help_, description=help_)
        if json_:
            p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(fn=fn)
        return p

    p = add("load", cmd_load, "load and attach the dispatcher to this netns (idempotent)")
    p.add_argument("--group", help="group allowed to read the maps (metrics)")
    p.add_argument("--object", help="compiled BPF object (default: shipped one)")
    add("unload", cmd_unload, "detach and remove all state")
    p = add("upgrade", cmd_upgrade, "replace the program, keeping maps and connections")
    p.add_argument("--object", help="compiled BPF object (default: shipped one)")
    add("status", cmd_status, "program, bindings and destinations")
    p = add("bindings", cmd_bindings, "list bindings (filters combine)")
    p.add_argument("--label", help="only this label")
    p.add_argument("--protocol", type=str.lower, choices=["tcp", "udp"], help="only this protocol")
    p.add_argument("--prefix", help="only bindings overlapping this prefix or address")
    p.add_argument("--port", type=int, help="only bindings for this port (exact or any-port)")
    p = add("bind", cmd_bind, "add or relabel one binding")
    p.add_argument("label")
    p.add_argument("protocol", type=str.lower, choices=["tcp", "udp"])
    p.add_argument("prefix")
    p.add_argument("port", type=int, help="0 = any port")
    p = add("unbind", cmd_unbind, "remove one binding")
    p.add_argument("protocol", type=str.lower, choices=["tcp", "udp"])
    p.add_argument("prefix")
    p.add_argument("port", type=int)
    p = add("load-bindings", cmd_load_bindings, "replace the whole binding set from a JSON file ('-' = stdin)")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="only report the steps")
    p = add("register", cmd_register, "register sockets from systemd socket activation (LISTEN_FDS)")
    p.add_argument("label")
    p.add_argument("--use-fdnames", action="store_true", help="label each fd by its LISTEN_FDNAMES name")
    p.add_argument("--strict", action="store_true", help="refuse sockets no binding of the label can use")
    p.add_argument("--pid", type=int, help="take the socket from this running process instead (pidfd_getfd)")
    p.add_argument("--protocol", type=str.lower, choices=["tcp", "udp"], help="with --pid: socket protocol")
    p.add_argument("--address", help="with --pid: local address the socket is bound to")
    p.add_argument("--port", type=int, help="with --pid: local port")
    p = add("register-pid", cmd_register_pid, "register sockets of a running process (pidfd_getfd)")
    p.add_argument("label")
    p.add_argument("pid", type=int)
    p.add_argument("fd", type=int, nargs="+")
    p.add_argument("--strict", action="store_true", help="refuse sockets no binding of the label can use")
    p = add("unregister", cmd_unregister, "remove the sockets of a label")
    p.add_argument("label")
    p.add_argument("--domain", choices=["ipv4", "ipv6"])
    p.add_argument("--protocol", choices=["tcp", "udp"])
    p = add("metrics", cmd_metrics, "counters in Prometheus text format", json_=False)
    p.add_argument("--listen", metavar="ADDR:PORT",
                   help="serve them at http://ADDR:PORT/metrics instead of printing once")
    p.add_argument("--per-binding", action="store_true",
                   help="add per-binding series (3 lines per binding; default: per-label totals)")
    p.add_argument("--no-addresses", action="store_true", help="leave out the per-local-address series")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="with --listen: seconds a client gets to send its request and read the page")
    add("addresses", cmd_addresses, "hits per local address")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if args.netns:
            netns.enter(args.netns)
        args.fn(args)
    except Error as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return 1
    except OSError as e:
        msg = e.strerror or str(e)
        if getattr(e, "filename", None):
            msg = "%s: %s" % (msg, e.filename)
        print("%s: error: %s" % (PROG, msg), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
