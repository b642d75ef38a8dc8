"""The metrics endpoint: ``/metrics`` (Prometheus text 0.0.4) and ``/healthz``.

One thread per connection, at most ``MAX_CLIENTS`` at once (more are closed at once),
and a socket timeout on reads and writes (``TIMEOUT``): a client that connects and
says nothing, or never reads, holds one thread for a few seconds and blocks nobody.
HTTP/1.0, one request per connection.
"""

import http.server
import threading

TIMEOUT = 5.0
MAX_CLIENTS = 16


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = TIMEOUT  # StreamRequestHandler puts it on the socket: bounds reads and writes
    collect = None     # set per server: () -> exposition text

    def do_GET(self):  # noqa: N802
        if self.path.split("?")[0] == "/metrics":
            body = self.collect().encode()
            ctype = "text/plain; version=0.0.4; charset=utf-8"
        elif self.path == "/healthz":
            body, ctype = b"ok\n", "text/plain"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class MetricsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, addr, handler, max_clients=MAX_CLIENTS):
        self._slots = threading.BoundedSemaphore(max_clients)
        http.server.ThreadingHTTPServer.__init__(self, addr, handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # all handler threads busy: refuse, do not queue
            return
        try:
            http.server.ThreadingHTTPServer.process_request(self, request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            http.server.ThreadingHTTPServer.process_request_thread(self, request, client_address)
        finally:
            self._slots.release()


def start(listen, collect, timeout=TIMEOUT, max_clients=MAX_CLIENTS):
    """Serve ``collect()`` at ``listen`` = (family, host, port) from a daemon thread;
    returns the server (its ``socket`` is the listening socket)."""
    family, host, port = listen
    handler = type("Handler", (_Handler,), {"timeout": timeout, "collect": staticmethod(collect)})
    server_cls = type("Server", (MetricsServer,), {"address_family": family})
    server = server_cls((host, port), handler, max_clients)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
