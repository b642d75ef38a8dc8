"""``agility-dns``: serve, check a policy file, or ask a running server to reload.

    agility-dns --policy FILE --listen 127.0.0.1:5353 --listen [::1]:5353 \\
                [--workers N] [--metrics 127.0.0.1:9153] [--pidfile FILE] [--user NAME]
                [--zone-store DIR]                 # zones the policy file does not hold
    agility-dns --check-config FILE        # exit 0 if FILE is good, else 1 + reason
    agility-dns reload --pidfile FILE      # reload the running server, report the result
"""

import argparse
import os
import pwd
import signal
import sys
import time

from agility_runtime import policy
from agility_runtime.dns import cookies, edns, limits, log, reloadstatus, sockets, state as statemod


def _listen(text):
    try:
        return sockets.parse_listen(text)
    except sockets.ListenError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser():
    p = argparse.ArgumentParser(prog="agility-dns", description="Policy-first authoritative DNS responder.")
    p.add_argument("--policy", metavar="FILE", help="policy file (JSON) to serve")
    p.add_argument("--zone-store", metavar="DIR",
                   help="zone store (agility-zones compile): answers names that no zone of the policy file "
                        "holds; opened read-only, memory-mapped; updates show without a reload")
    p.add_argument("--check-config", metavar="FILE",
                   help="validate FILE (policy + static records) and exit: 0 good, 1 bad (reason on stderr)")
    p.add_argument("--listen", metavar="ADDR:PORT", action="append", type=_listen, default=[],
                   help="UDP+TCP listener, repeatable: 127.0.0.1:53, [::1]:53. Sockets passed by "
                        "systemd (LISTEN_FDS) are used as well.")
    p.add_argument("--workers", type=_positive, default=1,
                   help="worker processes (SO_REUSEPORT per worker for --listen sockets); default 1")
    p.add_argument("--metrics", metavar="ADDR:PORT", type=_listen,
                   help="serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9153)")
    p.add_argument("--pidfile", metavar="FILE", help="write the supervisor's pid here")
    p.add_argument("--user", metavar="NAME", help="drop to this user after opening sockets (needs root)")
    p.add_argument("--udp-max", type=int, default=1232,
                   help="largest UDP response we send and advertise in EDNS (512..4096, default 1232)")
    limits.add_arguments(p)
    p.add_argument("--cookie-secret-file", metavar="FILE",
                   help="DNS cookie master secret (hex, >= 32 digits) shared by the servers of an anycast "
                        "address; default: random at start, shared by this server's workers")
    p.add_argument("--cookie-rotate", type=int, default=86400, metavar="SECONDS",
                   help="derive a new cookie secret every SECONDS (>= 7200); the previous one stays valid")
    p.add_argument("--nsid", metavar="TEXT",
                   help="the PoP identity (e.g. its name): answers EDNS NSID and CH TXT id.server / hostname.bind")
    p.add_argument("--server-version", metavar="TEXT",
                   help="answer CH TXT version.bind / version.server with TEXT (default: REFUSED)")
    p.add_argument("--log-format", choices=("kv", "json"), default="kv", help="log line format on stderr")
    return p


def check_config(path, zone_store=None):
    try:
        st = statemod.load(path)
    except policy.PolicyError as exc:
        sys.stderr.write("%s: invalid: %s\n" % (path, exc))
        return 1
    sys.stdout.write("%s: ok (pop %s, digest %s, %d zones, %d policies)\n"
                     % (path, st.pop, st.digest, len(st.zones), len(st.policies)))
    if zone_store:
        meta = open_zone_store(zone_store)
        if meta is None:
            return 1
        sys.stdout.write("%s: ok (zone store serial %d, digest %s, %d zones)\n"
                         % (zone_store, meta["serial"], meta["digest"], meta["zones"]))
    return 0


def open_zone_store(path):
    """The store's meta record, or None after a one-line error (corrupt, newer format, no lmdb)."""
    from agility_runtime.dns import storezones
    from agility_runtime.zonestore.errors import StoreError
    try:
        return storezones.check(path)
    except ImportError as exc:
        log.error("start", result="failed", reason="--zone-store needs the zonestore extra "
                  "(pip install 'agility-runtime[zonestore]'): %s" % exc)
    except StoreError as exc:
        log.error("start", result="failed", path=path, reason=str(exc))
    return None


def reload_main(argv):
    p = argparse.ArgumentParser(
        prog="agility-dns reload",
        description="Make a running agility-dns re-read its policy file (SIGHUP) and wait for the result: "
                    "exit 0 once every worker serves the new file, 1 if it was refused (the server keeps "
                    "its last good policy) or no result came.")
    p.add_argument("--pidfile", required=True, metavar="FILE", help="the server's --pidfile")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the result (default 30)")
    args = p.parse_args(argv)
    try:
        with open(args.pidfile) as handle:
            pid = int(handle.read().strip())
        sent_at = time.monotonic()
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        sys.stderr.write("agility-dns reload: cannot signal the server of %s: %s\n" % (args.pidfile, exc))
        return 1
    status = reloadstatus.wait_result(reloadstatus.path_for(args.pidfile), pid, sent_at, args.timeout)
    if status is None:
        sys.stderr.write("agility-dns reload: no result from pid %d within %.0f s (status file %s)\n"
                         % (pid, args.timeout, reloadstatus.path_for(args.pidfile)))
        return 1
    if status["result"] != "ok":
        sys.stderr.write("agility-dns reload: failed, still serving policy %s: %s\n"
                         % (status.get("digest"), status.get("reason")))
        return 1
    sys.stdout.write("reloaded %s: serving policy %s (was %s)\n"
                     % (status.get("path"), status.get("digest"), status.get("previous_digest")))
    return 0


def drop_privileges(name):
    entry = pwd.getpwnam(name)
    if os.getuid() != 0:
        if os.getuid() == entry.pw_uid:
            return
        raise PermissionError("--user %s needs root" % name)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "reload":
        return reload_main(argv[1:])
    if argv and argv[0] == "check":
        argv = ["--check-config"] + argv[1:]
    args = build_parser().parse_args(argv)
    log.set_format(args.log_format)
    if args.check_config:
        return check_config(args.check_config, args.zone_store)
    if not args.policy:
        build_parser().error("--policy FILE is required (or --check-config FILE)")
    if not 512 <= args.udp_max <= 4096:
        build_parser().error("--udp-max must lie in 512..4096")
    store = None
    if args.zone_store:
        meta = open_zone_store(args.zone_store)
        if meta is None:
            return 1
        from agility_runtime.dns import storezones
        store = storezones.StoreZones(args.zone_store)
        log.info("zone_store", result="ok", path=args.zone_store, serial=meta["serial"], digest=meta["digest"],
                 zones=meta["zones"])
    try:
        st = statemod.load(args.policy, store)
    except policy.PolicyError as exc:
        log.error("start", result="failed", path=args.policy, reason=str(exc))
        return 1
    try:
        edns_settings = edns.settings_from_args(args.cookie_secret_file, args.cookie_rotate, args.nsid,
                                                args.server_version)
    except (OSError, cookies.CookieError) as exc:
        log.error("start", result="failed", reason="cookies: %s" % exc)
        return 1
    from agility_runtime.dns.supervisor import Supervisor
    cfg = _Config(args)
    cfg.edns = edns_settings
    sup = Supervisor(cfg, st)
    try:
        sup.open_sockets()
    except sockets.ListenError as exc:
        log.error("start", result="failed", reason=str(exc))
        return 1
    if args.pidfile:
        try:
            with open(args.pidfile, "w") as handle:
                handle.write("%d\n" % os.getpid())
            sup.status = reloadstatus.Writer(reloadstatus.path_for(args.pidfile))
        except OSError as exc:
            log.error("start", result="failed", reason="cannot write %s: %s" % (args.pidfile, exc))
            return 1
    if args.user:
        try:
            drop_privileges(args.user)
        except (KeyError, PermissionError, OSError) as exc:
            log.error("start", result="failed", reason="cannot drop to user %s: %s" % (args.user, exc))
            return 1
    sup.run()
    return 0


class _Config:
    def __init__(self, args):
        self.policy = args.policy
        self.listen = args.listen
        self.workers = args.workers
        self.metrics = args.metrics
        self.pidfile = args.pidfile
        self.udp_max = args.udp_max
        limits.copy_arguments(args, self)


if __name__ == "__main__":
    sys.exit(main())
