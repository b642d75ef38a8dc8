"""Network namespaces for tests: create, run a function inside, delete."""

import ctypes
import os
import subprocess
import threading
import uuid

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args, netns=None):
    cmd = ["ip"] + (["-n", netns] if netns else []) + list(args)
    subprocess.run(cmd, check=True, capture_output=True)


class NetNS(object):
    def __init__(self, prefix="agedge"):
        self.name = "%s-%s" % (prefix, uuid.uuid4().hex[:8])
        ip("netns", "add", self.name)
        self.path = "/run/netns/%s" % self.name
        ip("link", "set", "lo", "up", netns=self.name)

    def route_local(self, prefix):
        ip("-6" if ":" in prefix else "-4", "route", "add", "local", prefix, "dev", "lo",
           netns=self.name)

    def run(self, fn, *args):
        """Call fn(*args) on a thread that entered this namespace; return its result."""
        box = {}

        def target():
            fd = os.open(self.path, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                box["value"] = fn(*args)
            except BaseException as exc:  # re-raised in the caller
                box["error"] = exc
            finally:
                os.close(fd)

        t = threading.Thread(target=target)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
