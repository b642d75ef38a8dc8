"""Issue 10: a narrower binding with another label under a wider one.

The control plane must treat "this key" as an exact key: an LPM lookup that
returns the wider binding is not a hit for the narrower key.
"""
import errno
import os

import pytest

from agility_runtime.sklookup.dispatcher import Dispatcher

from . import inproc
from .conftest import connect, probe

pytestmark = pytest.mark.root

WIDE = "198.18.0.0/20"
NARROW = "198.18.0.5/32"


def _register(lab, label, sock):
    inproc.ok(lab.bpffs, "register-pid", label, os.getpid(), sock.fileno())


def _binding_lookups(lab):
    with Dispatcher(lab.bpffs, readonly=True) as d:
        return {(str(b.prefix), b.label): c["lookups"] for b, c in d.bindings(counters=True)}


def _state(lab):
    st = inproc.ok(lab.bpffs, "status", "--json").json
    labels = {(b["prefix"], b["port"]): b["label"] for b in st["bindings"]}
    dests = {(d["label"], d["domain"], d["protocol"]): d for d in st["destinations"]}
    return labels, dests


def test_nested_binding_other_label_keeps_everything_apart(lab):
    lab.route(WIDE)
    lab.load()
    inproc.ok(lab.bpffs, "bind", "A", "tcp", WIDE, 80)
    inproc.ok(lab.bpffs, "bind", "C", "tcp", NARROW, 80)
    labels, dests = _state(lab)
    assert labels == {(WIDE, 80): "A", (NARROW, 80): "C"}
    assert dests[("A", "ipv4", "tcp")]["bindings"] == 1
    assert dests[("C", "ipv4", "tcp")]["bindings"] == 1
    a, c, b = lab.listener("tcp", 4), lab.listener("tcp", 4), lab.listener("tcp", 4)
    _register(lab, "A", a)
    _register(lab, "C", c)
    assert probe(lab, "tcp", "198.18.0.9", 80, [a, c, b]) == 0
    assert probe(lab, "tcp", "198.18.0.5", 80, [a, c, b]) == 1
    # Separate counter slots: the /20 saw one lookup, the /32 one.
    assert _binding_lookups(lab) == {(WIDE, "A"): 1, (NARROW, "C"): 1}
    # A service restart: A's socket goes away.
    inproc.ok(lab.bpffs, "unregister", "A")
    labels, dests = _state(lab)
    assert labels == {(WIDE, 80): "A", (NARROW, 80): "C"}
    assert ("A", "ipv4", "tcp") in dests and dests[("A", "ipv4", "tcp")]["bindings"] == 1
    # Another label registers: it must not inherit A's destination id.
    inproc.ok(lab.bpffs, "bind", "B", "tcp", "198.18.1.0/24", 81)
    _register(lab, "B", b)
    with pytest.raises(OSError) as exc:
        connect("198.18.0.9", 80)
    assert exc.value.errno == errno.ECONNREFUSED
    assert probe(lab, "tcp", "198.18.0.5", 80, [a, c, b]) == 1
    # A comes back and gets its traffic again.
    _register(lab, "A", a)
    assert probe(lab, "tcp", "198.18.0.9", 80, [a, c, b]) == 0
    labels, dests = _state(lab)
    assert labels == {(WIDE, 80): "A", (NARROW, 80): "C", ("198.18.1.0/24", 81): "B"}
    assert {k: d["bindings"] for k, d in dests.items()} == {
        ("A", "ipv4", "tcp"): 1, ("B", "ipv4", "tcp"): 1, ("C", "ipv4", "tcp"): 1}
    # Removing the narrow one leaves the wide one and A's count intact.
    inproc.ok(lab.bpffs, "unbind", "tcp", NARROW, 80)
    labels, dests = _state(lab)
    assert labels == {(WIDE, 80): "A", ("198.18.1.0/24", 81): "B"}
    assert dests[("A", "ipv4", "tcp")]["bindings"] == 1
    assert probe(lab, "tcp", "198.18.0.5", 80, [a, c, b]) == 0


def test_nested_binding_through_load_bindings(lab):
    lab.route(WIDE)
    lab.load()
    wide = {"protocol": "tcp", "prefix": WIDE, "port": 0, "label": "A"}
    lab.load_bindings([wide])
    lab.load_bindings([wide, {"protocol": "tcp", "prefix": NARROW, "port": 0, "label": "C"}])
    labels, dests = _state(lab)
    assert labels == {(WIDE, 0): "A", (NARROW, 0): "C"}
    assert dests[("A", "ipv4", "tcp")]["bindings"] == 1
    assert dests[("C", "ipv4", "tcp")]["bindings"] == 1
