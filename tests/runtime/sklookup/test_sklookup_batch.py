"""load-bindings writes in batches; a refused batch element rolls the whole change back.

``Dispatcher.replace`` raises destination counts, writes every put in one BPF_MAP_UPDATE_BATCH,
every removal in one BPF_MAP_DELETE_BATCH, then sets the counts exactly. The kernel can stop a
batch part-way (it reports how many elements it applied). Here a fault is injected at each point
(the update batch after 0, 1 or most elements, the delete batch after 0 or 1, the destination
writes), with the real maps underneath, and afterwards every map must be as before the command:
bindings and labels, binding ids, destination counts and sockets, prefix lengths, filter counters.
"""
import errno
import json
import os
import tempfile

import pytest

from agility_runtime.sklookup import libbpf
from agility_runtime.sklookup.dispatcher import Dispatcher

from . import inproc

pytestmark = pytest.mark.root

BEFORE = [("tcp", "198.18.0.0/20", 80, "A"), ("tcp", "198.18.0.0/24", 80, "B"), ("udp", "198.18.0.0/20", 0, "A"),
          ("tcp", "2001:db8::/64", 443, "C"), ("tcp", "198.18.1.0/24", 443, "B")]
# grows (narrower, another label), relabels, removes: each kind of step
AFTER = [("tcp", "198.18.0.0/20", 80, "A"), ("tcp", "198.18.0.5/32", 80, "C"), ("udp", "198.18.0.0/20", 0, "B"),
         ("tcp", "2001:db8::/64", 443, "C"), ("tcp", "2001:db8::5/128", 443, "D"), ("udp", "198.18.2.0/24", 53, "D")]


def as_json(items):
    return [{"protocol": p, "prefix": pre, "port": port, "label": label} for p, pre, port, label in items]


def snapshot(bpffs):
    with Dispatcher(bpffs) as d:
        return {"bindings": [(b.as_dict(), c["id"]) for b, c in d.bindings(counters=True)],
                "dests": [{k: v for k, v in x.items() if k != "socket_cookie"} for x in d.destinations()],
                "lens": d.prefix_lens(), "filter": d.filter_counts()}


def load_bindings(bpffs, items):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"bindings": as_json(items)}, f)
    try:
        return inproc.run(bpffs, "load-bindings", f.name)
    finally:
        os.unlink(f.name)


def failing_after(real, n, key_size):
    """A batch call that, for keys of ``key_size`` bytes (20: bindings, 4: binding-id counters),
    applies the first ``n`` elements for real and is then refused."""
    def call(fd, keys, *rest):
        if not keys or len(keys[0]) != key_size:
            return real(fd, keys, *rest)
        if n:
            real(fd, keys[:n], *[r[:n] for r in rest])
        raise libbpf._batch_error(errno.ENOMEM, "map batch (injected)", n)
    return call


def failing_dests(real):
    """Dispatcher._dests_up that creates and raises the destinations, then is refused."""
    def call(self, refs):
        real(self, refs)
        raise libbpf.BPFError(errno.ENOMEM, "map update (injected)")
    return call


@pytest.fixture
def loaded(lab):
    inproc.ok(lab.bpffs, "load")
    assert load_bindings(lab.bpffs, BEFORE).rc == 0
    sock = lab.listener("tcp")
    lab.register("A", sock)  # a destination with a socket: its count may change, it must stay
    return lab


@pytest.mark.parametrize("where,n,key_size", [
    ("map_update_batch", 0, 20), ("map_update_batch", 1, 20), ("map_update_batch", 4, 20),
    ("map_delete_batch", 0, 20), ("map_delete_batch", 1, 20), ("map_update_batch", 1, 4), ("_dests_up", 0, 0)])
def test_a_refused_batch_leaves_every_map_as_it_was(loaded, monkeypatch, where, n, key_size):
    bpffs = loaded.bpffs
    before = snapshot(bpffs)
    if where == "_dests_up":
        monkeypatch.setattr(Dispatcher, where, failing_dests(Dispatcher._dests_up))
    else:
        monkeypatch.setattr(libbpf, where, failing_after(getattr(libbpf, where), n, key_size))
    r = load_bindings(bpffs, AFTER)
    monkeypatch.undo()
    assert r.rc != 0
    assert "rolled back" in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert snapshot(bpffs) == before
    # and the next try, with the kernel willing, applies the whole change
    assert load_bindings(bpffs, AFTER).rc == 0
    after = snapshot(bpffs)
    assert sorted((b["protocol"], b["prefix"], b["port"], b["label"]) for b, _id in after["bindings"]) == sorted(AFTER)
    refs = {(x["label"], x["protocol"], x["domain"]): x["bindings"] for x in after["dests"]}
    assert refs == {("A", "tcp", "ipv4"): 1, ("C", "tcp", "ipv4"): 1, ("B", "udp", "ipv4"): 1,
                    ("C", "tcp", "ipv6"): 1, ("D", "tcp", "ipv6"): 1, ("D", "udp", "ipv4"): 1}


def test_a_large_change_is_one_batch_each_way(loaded, monkeypatch):
    """Puts and removals are not written one system call per binding."""
    calls = []
    for name in ("map_update", "map_delete", "map_update_batch", "map_delete_batch"):
        real = getattr(libbpf, name)
        monkeypatch.setattr(libbpf, name, lambda *a, _real=real, _name=name, **k: (calls.append(_name), _real(*a, **k))[1])
    many = [("tcp", "198.19.%d.%d/32" % (i // 256, i % 256), 80, "L%d" % (i % 3)) for i in range(2000)]
    assert load_bindings(loaded.bpffs, many).rc == 0
    assert calls.count("map_update_batch") == 2  # the bindings, and the new binding ids' counters
    assert calls.count("map_delete_batch") == 1
    assert calls.count("map_update") + calls.count("map_delete") < 30  # destinations, lengths, id bitmap
