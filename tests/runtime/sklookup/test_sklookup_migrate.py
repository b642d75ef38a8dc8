"""State pinned with the old LPM binding layout: migrated by load/upgrade, refused by the rest.

An older agility-lookup kept bindings in one LPM trie (ag_bindings). The
current program walks a hash map by prefix length instead, so pinned state of
the old layout must never be half-used: every command but load and upgrade
refuses it with a one-line error naming the command to run, and those two move
the bindings (same counter slots) into the new maps before switching programs.
"""
import os
import socket

import pytest

from agility_runtime.sklookup import build, libbpf, maps, netns as ns, state
from agility_runtime.sklookup.dispatcher import Dispatcher
from agility_runtime.sklookup.model import Binding

from . import inproc
from .conftest import probe

pytestmark = pytest.mark.root

LPM_SOURCE = os.path.join(os.path.dirname(build.SOURCE), "lpm_reference.bpf.c")
LPM_MAP_NAMES = ("ag_bindings", "ag_sockets", "ag_dests", "ag_dest_metrics", "ag_bind_metrics", "ag_addr_hits")
# (protocol, prefix, port, label, binding id): nested, with another label inside, and a port-0 one.
BINDINGS = [("tcp", "198.18.0.0/20", 80, "A", 3), ("tcp", "198.18.0.5/32", 80, "C", 7),
            ("tcp", "198.18.0.0/24", 0, "A", 9), ("udp", "2001:db8::/64", 53, "A", 11)]


@pytest.fixture(scope="module")
def lpm_object(tmp_path_factory):
    return build.compile_object(str(tmp_path_factory.mktemp("lpm") / "lpm_reference.bpf.o"), source=LPM_SOURCE)


def load_lpm_state(bpffs, obj_path, socks):
    """What the older agility-lookup's load + bind + register left pinned."""
    paths = state.Paths(bpffs)
    os.makedirs(paths.base, exist_ok=True)
    tmp = os.path.join(paths.base, "tmp-lpm-%d" % paths.ino)
    os.mkdir(tmp, 0o700)
    nsfd = ns.open_current()
    try:
        with libbpf.BPFObject(obj_path) as obj:
            obj.load()
            fds = {name: obj.map_fd(name) for name in LPM_MAP_NAMES}
            for name, fd in fds.items():
                libbpf.obj_pin(fd, os.path.join(tmp, name))
            prog = obj.prog_fd(maps.PROG_NAME)
            libbpf.obj_pin(prog, os.path.join(tmp, "prog"))
            link = libbpf.link_create(prog, nsfd)
            libbpf.obj_pin(link, os.path.join(tmp, "link"))
            os.close(link)
            dest_ids = {}
            for proto, prefix, port, label, bid in BINDINGS:
                b = Binding(proto, prefix, port, label)
                dom = socket.AF_INET if b.prefix.version == 4 else socket.AF_INET6
                dkey = (label, dom, maps.PROTOCOLS[proto])
                dest_ids.setdefault(dkey, [len(dest_ids), 0])[1] += 1
                libbpf.map_update(fds["ag_bindings"], maps.pack_lpm_bind_key(maps.PROTOCOLS[proto], port, b.prefix),
                                  maps.pack_bind_val(dest_ids[dkey][0], bid, b.bits))
            for (label, dom, proto), (dest_id, refs) in dest_ids.items():
                libbpf.map_update(fds["ag_dests"], maps.pack_dest_key(label, dom, proto),
                                  maps.pack_dest_val(dest_id, refs))
                if (label, proto) in socks:
                    libbpf.map_update(fds["ag_sockets"], maps.U32.pack(dest_id),
                                      maps.U64.pack(socks[(label, proto)].fileno()))
        os.rename(tmp, paths.dir)
    finally:
        os.close(nsfd)


def one_line_error(r):
    assert r.rc != 0
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.err, r.err
    return lines[0]


@pytest.mark.parametrize("command", ["upgrade", "load"])
def test_old_layout_refused_then_migrated(lab, lpm_object, command):
    lab.route("198.18.0.0/20")
    a, c = lab.listener("tcp"), lab.listener("tcp")
    fallback = lab.listener("tcp", addr="0.0.0.0", port=80)
    load_lpm_state(lab.bpffs, lpm_object, {("A", socket.IPPROTO_TCP): a, ("C", socket.IPPROTO_TCP): c})
    candidates = [a, c, fallback]
    assert probe(lab, "tcp", "198.18.0.5", 80, candidates) == 1   # the old program routes: C
    assert probe(lab, "tcp", "198.18.2.1", 80, candidates) == 0   # A's /20

    for argv in (["bindings"], ["status"], ["bind", "B", "tcp", "198.18.3.0/24", "80"], ["metrics"]):
        msg = one_line_error(inproc.run(lab.bpffs, *argv))
        assert "older agility-lookup" in msg and "agility-lookup upgrade" in msg, msg
    assert os.path.exists(os.path.join(state.Paths(lab.bpffs).dir, "ag_bindings"))  # nothing changed

    inproc.ok(lab.bpffs, command)
    paths = state.Paths(lab.bpffs)
    assert not os.path.exists(paths.pin("ag_bindings"))
    with Dispatcher(lab.bpffs) as d:
        got = {(b.protocol, str(b.prefix), b.port): (b.label, c["id"], c["lookups"])
               for b, c in d.bindings(counters=True)}
        lens = d.prefix_lens()
        filter_counts = d.filter_counts()
    assert got == {("tcp", "198.18.0.0/20", 80): ("A", 3, 1), ("tcp", "198.18.0.5/32", 80): ("C", 7, 1),
                   ("tcp", "198.18.0.0/24", 0): ("A", 9, 0), ("udp", "2001:db8::/64", 53): ("A", 11, 0)}
    assert lens == {"tcp": {(0, 116): 1, (0, 128): 1, (1, 120): 1}, "udp": {(0, 64): 1}}
    assert filter_counts == maps.filter_counts(
        (maps.PROTOCOLS[p], port, Binding(p, pre, port, label).prefix) for p, pre, port, label, _id in BINDINGS)
    # The new program routes the same, with the sockets registered before the migration.
    assert probe(lab, "tcp", "198.18.0.5", 80, candidates) == 1
    assert probe(lab, "tcp", "198.18.0.9", 80, candidates) == 0   # /24 any port (A) over /20 port 80 (A)
    assert probe(lab, "tcp", "198.18.2.1", 80, candidates) == 0
    with pytest.raises(ConnectionRefusedError):  # no binding for port 443 there: the normal lookup (nothing)
        probe(lab, "tcp", "198.18.2.1", 443, candidates)
    inproc.ok(lab.bpffs, "bind", "B", "tcp", "198.18.3.0/24", "80")  # writers work again
    inproc.ok(lab.bpffs, "upgrade")  # and a second upgrade is an ordinary one


def test_interrupted_migration_is_redone(lab, lpm_object, monkeypatch):
    """A migration that stops after pinning the new maps, before switching programs, leaves
    state that still counts as old: refused by the other commands, migrated again by upgrade."""
    lab.route("198.18.0.0/20")
    a, c = lab.listener("tcp"), lab.listener("tcp")
    load_lpm_state(lab.bpffs, lpm_object, {("A", socket.IPPROTO_TCP): a, ("C", socket.IPPROTO_TCP): c})

    def fail(*_args):
        raise libbpf.BPFError(5, "bpf_link_update: injected failure")
    monkeypatch.setattr(state.libbpf, "link_update", fail)
    msg = one_line_error(inproc.run(lab.bpffs, "upgrade"))
    assert "migration" in msg and "upgrade" in msg
    paths = state.Paths(lab.bpffs)
    assert os.path.exists(paths.pin("ag_binding_hash")) and os.path.exists(paths.pin("ag_bindings"))
    assert "agility-lookup upgrade" in one_line_error(inproc.run(lab.bpffs, "bind", "B", "tcp", "198.18.3.0/24", 80))
    assert probe(lab, "tcp", "198.18.0.5", 80, [a, c]) == 1   # still the old program and map
    monkeypatch.undo()
    inproc.ok(lab.bpffs, "upgrade")
    with Dispatcher(lab.bpffs, readonly=True) as d:
        assert len(d.bindings()) == len(BINDINGS)
    assert probe(lab, "tcp", "198.18.0.5", 80, [a, c]) == 1
    assert probe(lab, "tcp", "198.18.2.1", 80, [a, c]) == 0


def test_upgrade_refuses_maps_of_another_shape(lab, tmp_path):
    """libbpf adopts a reused map whatever its shape: upgrade compares them first. State from a
    build whose ag_prefix_lens has 256 entries (this branch's earlier encodings) is refused."""
    src = open(build.SOURCE).read().replace("#define MAX_PROTOCOL 17", "#define MAX_PROTOCOL 255")
    assert src != open(build.SOURCE).read()
    (tmp_path / "other.bpf.c").write_text(src)
    other = build.compile_object(str(tmp_path / "other.bpf.o"), source=str(tmp_path / "other.bpf.c"))
    state.load(other, lab.bpffs)
    with state.Pinned(state.Paths(lab.bpffs)) as pinned:
        before = libbpf.prog_info(pinned["prog"]).id
    msg = one_line_error(inproc.run(lab.bpffs, "upgrade"))
    assert "ag_prefix_lens" in msg and "another layout" in msg and "agility-lookup unload" in msg, msg
    with state.Pinned(state.Paths(lab.bpffs)) as pinned:
        assert libbpf.prog_info(pinned["prog"]).id == before  # nothing swapped
