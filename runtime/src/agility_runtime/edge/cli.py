"""Command line of agility-edge.

    agility-edge --pop NAME [--listen KIND:ADDR:PORT ...] [--tls-cert F --tls-key F]
                 [--health PORT] [--max-connections N] [--read-timeout S]

Sockets come from --listen and/or systemd socket activation (LISTEN_FDS; stream fds
named "https" or "tls*" speak TLS, other stream fds plain HTTP, datagram fds UDP ping).
"""

import argparse
import logging
import signal
import ssl
import sys

from .server import EdgeServer, sd_notify
from .sockets import Listener, activated_listeners, make_listener, parse_listen


def build_parser():
    p = argparse.ArgumentParser(prog="agility-edge", description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--pop", required=True, help="name of this PoP, echoed in every answer")
    p.add_argument("--listen", action="append", default=[], metavar="KIND:ADDR:PORT",
                   help="tcp:|udp:|tls: followed by ADDR:PORT or [V6ADDR]:PORT; repeatable")
    p.add_argument("--tls-cert", help="PEM certificate chain for tls listeners")
    p.add_argument("--tls-key", help="PEM private key for tls listeners")
    p.add_argument("--health", type=int, metavar="PORT",
                   help="serve a JSON health document on --health-address:PORT")
    p.add_argument("--health-address", default="127.0.0.1")
    p.add_argument("--max-connections", type=int, default=512,
                   help="open TCP/TLS connections at most; more are closed at once (default 512)")
    p.add_argument("--read-timeout", type=float, default=5.0,
                   help="seconds per read and TLS handshake (default 5)")
    p.add_argument("--no-socket-activation", action="store_true",
                   help="ignore LISTEN_FDS")
    p.add_argument("--log-level", default="INFO")
    return p


def tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="agility-edge[%(process)d] %(levelname)s %(message)s",
                        stream=sys.stderr)
    log = logging.getLogger("agility_runtime.edge")
    if args.max_connections < 1 or args.read_timeout <= 0:
        log.error("--max-connections must be >= 1 and --read-timeout > 0")
        return 2
    listeners = []
    try:
        if not args.no_socket_activation:
            listeners.extend(activated_listeners())
        for spec in args.listen:
            kind, host, port = parse_listen(spec)
            listeners.append(make_listener(kind, host, port))
        if args.health is not None:
            hl = make_listener("tcp", args.health_address, args.health)
            listeners.append(Listener("health", hl.sock, name="health"))
    except (ValueError, OSError) as exc:
        log.error("cannot set up listeners: %s", exc)
        for lst in listeners:
            lst.sock.close()
        return 2
    if not listeners:
        log.error("no sockets: give --listen or start under systemd socket activation")
        return 2
    ctx = None
    if any(l.kind == "tls" for l in listeners) or args.tls_cert:
        if not (args.tls_cert and args.tls_key):
            log.error("tls listeners need --tls-cert and --tls-key")
            return 2
        try:
            ctx = tls_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            log.error("cannot load TLS certificate/key: %s", exc)
            return 2
    server = EdgeServer(listeners, args.pop, tls_context=ctx,
                        max_connections=args.max_connections, read_timeout=args.read_timeout)

    def on_signal(signum, frame):
        log.info("signal %d: stopping", signum)
        server.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for lst in listeners:
        log.info("listening %s%s", lst.describe(),
                 " (socket activation, name %s)" % lst.name if lst.activated else "")
    sd_notify("READY=1\nSTATUS=serving pop %s" % args.pop)
    try:
        server.serve_forever()
    finally:
        sd_notify("STOPPING=1")
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
