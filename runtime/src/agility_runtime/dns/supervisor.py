"""The supervisor: owns the sockets, forks the workers, reloads, serves metrics.

* ``--listen`` sockets are opened once per worker (SO_REUSEPORT, so the kernel
  spreads queries across workers) and kept open here, so a worker that dies is
  restarted on the very same sockets (no re-bind, no privilege needed).
  Sockets from systemd (LISTEN_FDS) are shared by all workers.
* SIGHUP re-reads the policy file: a good file is sent (as bytes) to every worker,
  which swaps its state reference; a bad file is logged and changes nothing.  The
  result is written to the status file (``reloadstatus``) once every worker has
  confirmed, which is what ``agility-dns reload`` waits for; with NOTIFY_SOCKET,
  RELOADING=1 ... READY=1 bracket the reload.
* READY=1 is sent once every worker has answered a first control message (its
  serving threads are started right after; the sockets were bound before the fork).
* SIGTERM/SIGINT stop the workers and exit 0.
* Metrics: Prometheus text at http://ADDR:PORT/metrics (fresh snapshots are
  requested from every worker per scrape).
"""

import json
import os
import select
import signal
import socket
import struct
import threading
import time

from agility_runtime import policy
from agility_runtime.dns import log, metrics_http, sockets, state as statemod, stats as statsmod, worker
from agility_runtime.systemd import notify as _sd_notify

# how long a reload (or the start) waits for every worker to confirm
CONFIRM_TIMEOUT = 5.0


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
        self.status = None        # a reloadstatus.Writer, set by the CLI when there is a pidfile
        self.pending = None       # the reload (or start) waiting for worker confirmations

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
        """Start a reload; its result is reported by ``_finish`` once the workers confirm."""
        path = self.cfg.policy
        started = time.monotonic()
        _sd_notify(b"RELOADING=1\nMONOTONIC_USEC=%d" % int(started * 1e6))
        try:
            new = statemod.load(path, self.state.store)
        except policy.PolicyError as exc:
            self.reloads_failed += 1
            self.last_ok = 0
            log.error("reload", result="failed", path=path, reason=str(exc), digest_in_use=self.state.digest)
            self._report(started, "failed", reason=str(exc))
            return False
        old = self.state.digest
        self.state = new
        self.loaded_at = time.time()
        self.reloads_ok += 1
        self.last_ok = 1
        waiting = set()
        for slot in self.slots:
            if slot.ctrl is not None:
                try:
                    worker.send_msg(slot.ctrl, b"R" + new.raw, slot.lock)
                    waiting.add(slot.index)
                except OSError:
                    pass  # a dead worker is restarted with the new state
        self.pending = {"kind": "reload", "started": started, "waiting": waiting, "errors": [],
                        "previous": old}
        self._check_pending()
        return True

    def _confirmed(self, slot, error=None):
        if self.pending is not None and slot.index in self.pending["waiting"]:
            self.pending["waiting"].discard(slot.index)
            if error:
                self.pending["errors"].append("worker %d: %s" % (slot.index, error))

    def _check_pending(self):
        """Report the pending reload (or start) once all workers confirmed or time is up."""
        pend = self.pending
        if pend is None:
            return
        late = time.monotonic() - pend["started"] > CONFIRM_TIMEOUT
        if pend["waiting"] and not late:
            return
        self.pending = None
        errors = pend["errors"] + ["worker %d did not confirm within %.0f s" % (i, CONFIRM_TIMEOUT)
                                   for i in sorted(pend["waiting"])]
        if pend["kind"] == "start":
            self._announce_ready(errors)
            return
        path, digest = self.cfg.policy, self.state.digest
        if errors:
            reason = "; ".join(errors)
            log.error("reload", result="failed", path=path, reason=reason, digest=digest)
            self._report(pend["started"], "failed", reason=reason, previous_digest=pend["previous"])
            return
        log.info("reload", result="ok", path=path, digest=digest, previous_digest=pend["previous"],
                 changed=(pend["previous"] != digest))
        self._report(pend["started"], "ok", previous_digest=pend["previous"])

    def _report(self, started, result, **fields):
        """Status file for ``agility-dns reload``, and READY=1 (the reload is over)."""
        digest = self.state.digest
        if self.status is not None:
            try:
                self.status.write(started=started, result=result, digest=digest, path=self.cfg.policy,
                                  **fields)
            except OSError as exc:
                log.error("status_write_failed", path=self.status.path, error=str(exc))
        text = "serving policy %s" % digest if result == "ok" else \
            "reload failed, serving policy %s" % digest
        _sd_notify(("READY=1\nSTATUS=%s" % text).encode())

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
        if self.cfg.metrics:
            self.httpd = metrics_http.start(self.cfg.metrics, self.collect)

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
            if self.pending is not None and self.pending["kind"] == "start" and seq >= self.pending["seq"]:
                self._confirmed(slot)
        elif msg[:1] == b"r":
            text = msg[1:].decode("utf-8", "replace")
            if not text.startswith("ok"):
                log.error("worker_reload", worker=slot.index, result=text)
            self._confirmed(slot, None if text.startswith("ok") else text)

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
                            self.retired.append(statsmod.retired(slot.snapshot))
                        slot.snapshot = {}
                    self._confirmed(slot)  # restarted below with the state in use
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
        # READY once every worker answers a first snapshot request
        with self.cond:
            self.seq += 1
            first = self.seq
        waiting = set()
        for slot in self.slots:
            try:
                worker.send_msg(slot.ctrl, b"S" + struct.pack(">Q", first), slot.lock)
                waiting.add(slot.index)
            except OSError:
                pass
        self.pending = {"kind": "start", "started": time.monotonic(), "waiting": waiting, "errors": [],
                        "seq": first}
        while not self.stopping:
            fds = [rfd] + [s.ctrl for s in self.slots if s.ctrl is not None]
            try:
                readable, writable, errored = select.select(fds, [], [], 0.1 if self.pending else 1.0)
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
            self._reap()
            self._check_pending()
            if self.reload_wanted and self.pending is None:
                self.reload_wanted = False
                self.reload()
        self.shutdown()

    def _announce_ready(self, errors):
        if errors:
            log.warning("workers_slow", reason="; ".join(errors))
        if self.status is not None:
            try:
                self.status.write(started=0.0, result="started", digest=self.state.digest, path=self.cfg.policy)
            except OSError as exc:
                log.error("status_write_failed", path=self.status.path, error=str(exc))
        _sd_notify(b"READY=1\nSTATUS=serving policy %s" % self.state.digest.encode())
        log.info("ready", workers=len(self.slots), digest=self.state.digest, pop=self.state.pop,
                 policy=self.cfg.policy,
                 listen=",".join(sockets.describe(s) for s in self.slots[0].udp + self.slots[0].tcp),
                 metrics=("%s:%d" % self.cfg.metrics[1:]) if self.cfg.metrics else "off",
                 pids=",".join(str(s.pid) for s in self.slots))

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
        if self.status is not None:
            self.status.remove()
        log.info("stopped")
