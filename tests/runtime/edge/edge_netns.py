"""Network namespaces for tests: create, run a function inside, delete."""

import subprocess
import uuid

from agility_runtime.sklookup import netns


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
        return netns.call_in(self.path, fn, *args)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
