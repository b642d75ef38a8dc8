"""The result of the last reload, in a small JSON file next to the pidfile.

The supervisor writes it (``Writer``); ``agility-dns reload`` sends SIGHUP and waits
(``wait_result``) for a result whose reload *started after* the signal was sent, so
what it reports is the file as it was when the command ran, never an older reload.
Times are CLOCK_MONOTONIC, which all processes of the host share.

The file is opened once at start (before any ``--user`` drop, so the directory need
not stay writable) and rewritten in place: a reader that catches a write half done
sees invalid JSON and reads again.
"""

import json
import os
import time


def path_for(pidfile):
    """``/run/agility-dns/agility-dns.pid`` -> ``/run/agility-dns/agility-dns.status``."""
    return os.path.splitext(pidfile)[0] + ".status"


class Writer:
    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, **fields):
        data = (json.dumps(dict(fields, pid=os.getpid()), sort_keys=True) + "\n").encode()
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))

    def remove(self):
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)


def read(path):
    """The status as a dict, or None while it is missing or half written."""
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode())
    except (OSError, ValueError):
        return None


def wait_result(path, pid, sent_at, timeout):
    """The first finished reload of ``pid`` that started at or after ``sent_at``, or None."""
    deadline = time.monotonic() + timeout
    while True:
        status = read(path)
        if (status and status.get("pid") == pid and status.get("result") in ("ok", "failed")
                and status.get("started", -1.0) >= sent_at):
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)
