"""``agility-lookup metrics --listen ADDR:PORT``: serve the counters over HTTP."""

import functools
import signal
import sys

from ..inet import AddressError, format_hostport, parse_hostport
from ..metrics_http import MetricsServer
from .dispatcher import Dispatcher
from .errors import Error
from .metrics import collect


def parse_listen(text):
    try:
        return parse_hostport(text, allow_port_zero=True, default_host="127.0.0.1")
    except AddressError as e:
        raise Error("invalid --listen: %s" % e)


def serve(bpffs, listen, per_binding=False, per_address=True, timeout=10.0, max_clients=32):
    """Serve until SIGINT/SIGTERM. Each scrape opens the pinned maps read-only, so the
    server starts before ``load`` and follows ``unload``/``load`` (scrapes meanwhile get 503)."""
    factory = functools.partial(Dispatcher, bpffs, readonly=True)
    render = functools.partial(collect, factory, per_binding=per_binding, per_address=per_address)
    try:
        server = MetricsServer(parse_listen(listen), render, timeout=timeout, max_clients=max_clients,
                               log=lambda msg: print("agility-lookup: %s" % msg, file=sys.stderr, flush=True))
    except OSError as e:
        raise Error("cannot listen on %s: %s" % (listen, e.strerror or e))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("serving metrics on http://%s/metrics" % format_hostport(server.server_address), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
