"""The supervisor: owns the sockets, forks the workers, reloads, serves metrics.

* ``--listen`` sockets are opened once per worker (SO_REUSEPORT, so the kernel
  spreads queries across workers) and kept open here, so a worker that dies is
  restarted on the very same sockets (no re-bind, no privilege needed).
  Sockets from systemd (LISTEN_FDS) are shared by all workers.
* SIGHUP re-reads the policy file: a good file is sent (as bytes) to every worker,
  which swaps its state reference; a bad file is logged and changes nothing.
* SIGTERM/SIGINT stop the workers and exit 0.
* Metrics: Prometheus text at http://ADDR:PORT/metrics (fresh snapshots are
  requested from every worker per scrape).
"""

import http.server
import json
import os
import select
import signal
import socket
import struct
import threading
import time

from agility_runtime import policy
from agility_runtime.dns import log, sockets, state as statemod, stats as statsmod, worker
from agility_runtime.systemd import notify as _sd_notify


class _Slot:
    def __init__(self, index, udp, tcp):
        self.index = index
        self.udp = udp
        self.tcp = tcp
        self.pid = None
        self.ctrl = None          # supervisor's end of the control socketpair
        self.lock = threading.Lock()
        self.snapshot = {}
        self.snap_seq = 0
        self.started = 0.0


class Supervisor:
    def __init__(self, cfg, st):
        self.cfg = cfg
        self.state = st
        self.loaded_at = time.time()
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.last_ok = 1
        self.restarts = 0
        self.retired = []
        self.slots = []
        self.stopping = False
        self.reload_wanted = False
        self.seq = 0
        self.cond = threading.Condition()
        self.httpd = None
        self.extra_fds = []

    # -- setup ---------------------------------------------------------------
    def open_sockets(self):
        sd_udp, sd_tcp = sockets.systemd_sockets()
        for i in range(self.cfg.workers):
            udp, tcp = sockets.open_specs(self.cfg.listen) if self.cfg.listen else ([], [])
            self.slots.append(_Slot(i, sd_udp + udp, sd_tcp + tcp))
        if not self.slots or not (self.slots[0].udp or self.slots[0].tcp):
            raise sockets.ListenError("nothing to listen on: give --listen ADDR:PORT or systemd sockets")
        return [sockets.describe(s) for s in self.slots[0].udp + self.slots[0].tcp]

    def spawn(self, slot):
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:  # child
            try:
                parent_end.close()
                for other in self.slots:
                    if other.ctrl is not None:
                        other.ctrl.close()
                    if other is not slot:
                        for s in other.udp + other.tcp:
                            if s not in slot.udp and s not in slot.tcp:
                                s.close()
                for fd in self.extra_fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                if self.httpd is not None:
                    self.httpd.socket.close()
                worker.run(slot.index, slot.udp, slot.tcp, child_end, self.state, self.cfg)
            finally:
                os._exit(1)
        child_end.close()
        slot.pid = pid
        slot.ctrl = parent_end
        slot.snapshot = {}
        slot.started = time.monotonic()

    # -- reload ----------------------------------------------------------------
    def reload(self):
        path = self.cfg.policy
        try:
            new = statemod.load(path)
        except policy.PolicyError as exc:
            self.reloads_failed += 1
            self.last_ok = 0
            log.error("reload", result="failed", path=path, reason=str(exc), digest_in_use=self.state.digest)
            return False
        old = self.state.digest
        self.state = new
        self.loaded_at = time.time()
        self.reloads_ok += 1
        self.last_ok = 1
        for slot in self.slots:
            if slot.ctrl is not None:
                try:
                    worker.send_msg(slot.ctrl, b"R" + new.raw, slot.lock)
                except OSError:
                    pass  # a dead worker is restarted with the new state
        log.info("reload", result="ok", path=path, digest=new.digest, previous_digest=old,
                 changed=(old != new.digest))
        return True

    # -- metrics ---------------------------------------------------------------
    def collect(self, timeout=1.0):
        with self.cond:
            self.seq += 1
            seq = self.seq
        live = [s for s in self.slots if s.ctrl is not None]
        for slot in live:
            try:
                worker.send_msg(slot.ctrl, b"S" + struct.pack(">Q", seq), slot.lock)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        with self.cond:
            while any(s.ctrl is not None and s.snap_seq < seq for s in live):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            snaps = [s.snapshot for s in self.slots] + self.retired
        merged = statsmod.merge(snaps)
        info = {"reloads_ok": self.reloads_ok, "reloads_failed": self.reloads_failed,
                "digest": self.state.digest, "pop": self.state.pop, "path": self.cfg.policy,
                "loaded_at": self.loaded_at, "last_ok": self.last_ok,
                "workers": sum(1 for s in self.slots if s.pid), "restarts": self.restarts}
        return statsmod.render(merged, info)

    def start_metrics(self):
        if not self.cfg.metrics:
            return
        sup = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.split("?")[0] == "/metrics":
                    body = sup.collect().encode()
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

        family, host, port = self.cfg.metrics

        class Server(http.server.HTTPServer):
            address_family = family

        self.httpd = Server((host, port), Handler)
        threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True).start()

    # -- main loop ---------------------------------------------------------------
    def _on_ctrl(self, slot):
        try:
            msg = worker.recv_msg(slot.ctrl)
        except OSError:
            msg = None
        if msg is None:
            slot.ctrl.close()
            slot.ctrl = None
            return
        if msg[:1] == b"s":
            (seq,) = struct.unpack(">Q", msg[1:9])
            with self.cond:
                slot.snapshot = json.loads(msg[9:].decode())
                slot.snap_seq = seq
                self.cond.notify_all()
        elif msg[:1] == b"r":
            text = msg[1:].decode("utf-8", "replace")
            if not text.startswith("ok"):
                log.error("worker_reload", worker=slot.index, result=text)

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for slot in self.slots:
                if slot.pid == pid:
                    slot.pid = None
                    if slot.ctrl is not None:
                        slot.ctrl.close()
                        slot.ctrl = None
                    with self.cond:
                        if slot.snapshot:
                            self.retired.append(slot.snapshot)
                        slot.snapshot = {}
                    if not self.stopping:
                        log.error("worker_exited", worker=slot.index, pid=pid, status=status)
                        if time.monotonic() - slot.started < 1.0:
                            time.sleep(0.5)  # crash loop brake
                        self.restarts += 1
                        self.spawn(slot)
                        log.info("worker_started", worker=slot.index, pid=slot.pid)

    def run(self):
        rfd, wfd = os.pipe()
        os.set_blocking(wfd, False)
        os.set_blocking(rfd, False)
        self.extra_fds = [rfd, wfd]
        signal.set_wakeup_fd(wfd)

        def on_hup(_sig, _frm):
            self.reload_wanted = True

        def on_stop(_sig, _frm):
            self.stopping = True

        signal.signal(signal.SIGHUP, on_hup)
        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)
        for slot in self.slots:
            self.spawn(slot)
        self.start_metrics()
        _sd_notify(b"READY=1\nSTATUS=serving policy %s" % self.state.digest.encode())
        log.info("ready", workers=len(self.slots), digest=self.state.digest, pop=self.state.pop,
                 policy=self.cfg.policy,
                 listen=",".join(sockets.describe(s) for s in self.slots[0].udp + self.slots[0].tcp),
                 metrics=("%s:%d" % self.cfg.metrics[1:]) if self.cfg.metrics else "off",
                 pids=",".join(str(s.pid) for s in self.slots))
        while not self.stopping:
            fds = [rfd] + [s.ctrl for s in self.slots if s.ctrl is not None]
            try:
                readable, writable, errored = select.select(fds, [], [], 1.0)
            except InterruptedError:
                readable = []
            for r in readable:
                if r == rfd:
                    try:
                        while os.read(rfd, 512):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                else:
                    for slot in self.slots:
                        if slot.ctrl is r:
                            self._on_ctrl(slot)
            if self.reload_wanted:
                self.reload_wanted = False
                self.reload()
            self._reap()
        self.shutdown()

    def shutdown(self):
        _sd_notify(b"STOPPING=1")
        for slot in self.slots:
            if slot.pid:
                try:
                    os.kill(slot.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 3.0
        for slot in self.slots:
            while slot.pid:
                try:
                    pid, status = os.waitpid(slot.pid, os.WNOHANG)
                except ChildProcessError:
                    pid = slot.pid
                if pid:
                    slot.pid = None
                elif time.monotonic() > deadline:
                    try:
                        os.kill(slot.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    deadline += 1.0
                else:
                    time.sleep(0.02)
        if self.cfg.pidfile:
            try:
                os.unlink(self.cfg.pidfile)
            except OSError:
                pass
        log.info("stopped")
