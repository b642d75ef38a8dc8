"""A worker process: serving threads plus a control channel to the supervisor.

Control messages (4-byte big-endian length, then the payload; first byte = kind):

* supervisor -> worker: ``R`` + policy file bytes (reload), ``S`` + 8-byte sequence
  (statistics snapshot request);
* worker -> supervisor: ``r`` + ``ok <digest>`` / ``failed <reason>``,
  ``s`` + sequence + JSON snapshot.

The worker exits when the control channel closes (supervisor gone).
"""

import ctypes
import json
import os
import signal
import struct
import threading

from agility_runtime import policy
from agility_runtime.dns import edns, log, rrl, state as statemod, stats as statsmod, tcp, tcplimits, udp


def send_msg(sock, payload, lock=None):
    frame = struct.pack(">I", len(payload)) + payload
    if lock is None:
        sock.sendall(frame)
    else:
        with lock:
            sock.sendall(frame)


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_msg(sock):
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    return _recv_exact(sock, length)


class Holder:
    """The current serving state; replaced as a whole on reload."""

    __slots__ = ("state",)

    def __init__(self, st):
        self.state = st


def _die_with_parent():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run(index, udp_socks, tcp_socks, ctrl, st, cfg):
    """Never returns; called in the forked child."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _die_with_parent()
    edns.configure(getattr(cfg, "edns", None))  # cookie secret made before the fork: shared
    holder = Holder(st)
    all_stats = []
    loops = []
    limiter = rrl.from_config(cfg)  # one RRL table per worker, shared by its UDP loops
    for sock in udp_socks:
        s = statsmod.Stats("udp")
        all_stats.append(s)
        loops.append(("udp", udp.serve, (sock, holder, s, cfg.udp_max, limiter)))
    if tcp_socks:
        s = statsmod.Stats("tcp")
        all_stats.append(s)
        loops.append(("tcp", tcp.serve, (tcp_socks, holder, s, cfg.udp_max, tcplimits.Limits.from_config(cfg))))
    threading.Thread(target=_control, args=(index, ctrl, holder, all_stats), name="control",
                     daemon=True).start()
    # the busiest loop (the first UDP socket) runs in the main thread
    for name, fn, args in loops[1:]:
        threading.Thread(target=fn, args=args, name=name, daemon=True).start()
    name, fn, args = loops[0]
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001
        log.error("worker_loop_failed", worker=index, loop=name, error=repr(exc))
    os._exit(1)


def _control(index, ctrl, holder, all_stats):
    try:
        while True:
            msg = recv_msg(ctrl)
            if msg is None:
                break
            kind = msg[:1]
            if kind == b"R":
                try:
                    new = statemod.from_bytes(msg[1:], "reload", holder.state.store)
                except policy.PolicyError as exc:
                    send_msg(ctrl, b"r" + ("failed %s" % exc).encode("utf-8", "replace"))
                    continue
                holder.state = new
                send_msg(ctrl, b"r" + ("ok %s" % new.digest).encode())
            elif kind == b"S":
                snap = statsmod.to_json(statsmod.merge([s.snapshot() for s in all_stats]))
                send_msg(ctrl, b"s" + msg[1:9] + json.dumps(snap).encode())
    except Exception as exc:  # noqa: BLE001
        log.error("worker_control_failed", worker=index, error=repr(exc))
    os._exit(0)
