"""A small Prometheus scrape endpoint that one slow or idle client cannot block.

Each connection gets its own thread, bounded by ``max_clients`` (beyond it a
connection gets ``503`` and is closed at once), and a whole-connection deadline:
a client that has not finished its request and read the answer within
``timeout`` seconds is cut off, whether it is idle or sends one byte at a time.
``render()`` is called per scrape and returns the page text; if it raises, the
scrape gets ``503`` with the error's one-line text and the server carries on.
"""

import http.server
import socket
import socketserver
import sys
import threading

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing to hold open
    server_version = "agility-metrics"
    sys_version = ""

    def setup(self):
        super().setup()
        self.connection.settimeout(self.server.timeout)
        self._deadline = threading.Timer(self.server.timeout, self._expire)
        self._deadline.daemon = True
        self._deadline.start()

    def _expire(self):
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def finish(self):
        self._deadline.cancel()
        try:
            super().finish()
        except OSError:
            pass

    def handle(self):
        try:
            super().handle()
        except OSError:
            pass  # client gone or cut off by the deadline

    def do_GET(self):  # noqa: N802 (http.server naming)
        path = self.path.split("?", 1)[0]
        if path not in ("/metrics", "/"):
            self._reply(404, "not found: use /metrics\n", "text/plain")
            return
        try:
            body = self.server.render()
        except Exception as exc:  # noqa: BLE001 - any failure is a failed scrape, not a dead server
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.server.log("scrape failed: %s" % msg)
            self._reply(503, "scrape failed: %s\n" % msg, "text/plain")
            return
        self._reply(200, body, CONTENT_TYPE)

    def do_HEAD(self):  # noqa: N802
        self._reply(405, "", "text/plain")

    def _reply(self, code, text, ctype):
        data = text.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass  # no access log: scrapes every few seconds would flood the journal


class MetricsServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """``MetricsServer((family, host, port), render).serve_forever()``."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, listen, render, timeout=10.0, max_clients=32, log=None):
        family, host, port = listen
        self.address_family = family
        self.render = render
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(max_clients)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        super().__init__((host, port), _Handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:
                request.setblocking(False)
                request.send(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_timeout(self):
        pass  # self.timeout is the per-connection deadline, not a serve_forever poll timeout
