"""Issue 10's smaller defects: bad input is refused in one line and changes nothing."""
import json
import os
import tempfile

import pytest

from agility_runtime.sklookup.build import SOURCE, compile_object

from . import inproc
from .conftest import probe

pytestmark = pytest.mark.root

V4 = "198.18.0.0/20"


def _one_line_error(r):
    assert r.rc == 1, (r.rc, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agility-lookup: error: "), r.err
    return lines[0]


def _load_file(lab, items):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(items, f)
    try:
        return inproc.run(lab.bpffs, "load-bindings", f.name, "--json")
    finally:
        os.unlink(f.name)


KEEP = {"protocol": "tcp", "prefix": "198.18.0.0/24", "port": 0, "label": "keep"}


def test_label_with_control_characters_refused(lab):
    lab.load()
    lab.ok("bind", "keep", "tcp", "198.18.0.0/24", 0)
    for label in ["web\n", "web\r", "web\x00", "\nweb", "w\teb", "web\n\n"]:
        _refused_label(lab, label)


def _refused_label(lab, label):
    if "\x00" not in label:  # argv cannot carry a NUL
        assert "invalid label" in _one_line_error(inproc.run(lab.bpffs, "bind", label, "tcp", "198.18.1.0/24", 80))
    bad = {"protocol": "tcp", "prefix": "198.18.1.0/24", "port": 80, "label": label}
    assert "invalid label" in _one_line_error(_load_file(lab, [KEEP, bad]))
    assert inproc.ok(lab.bpffs, "bindings", "--json").json["bindings"] == [KEEP]


def test_non_integer_port_refused(lab):
    lab.load()
    lab.ok("bind", "keep", "tcp", "198.18.0.0/24", 0)
    for port in [80.7, 80.0, "80.7", True, "0x50", None, [80], -1, 65536]:
        _refused_port(lab, port)


def _refused_port(lab, port):
    bad = {"protocol": "tcp", "prefix": "198.18.1.0/24", "port": port, "label": "web"}
    assert "port" in _one_line_error(_load_file(lab, [KEEP, bad]))
    assert inproc.ok(lab.bpffs, "bindings", "--json").json["bindings"] == [KEEP]


def test_register_socket_no_binding_can_use(lab):
    lab.route(V4)
    lab.load()
    lab.ok("bind", "web", "tcp", V4, 0)
    udp = lab.listener("udp", 4)
    tcp6 = lab.listener("tcp", 6)
    tcp4 = lab.listener("tcp", 4)
    for s, what in ((udp, "udp ipv4"), (tcp6, "tcp ipv6")):
        r = lab.cli("register-pid", "web", os.getpid(), s.fileno(), "--strict")
        assert what in _one_line_error(r)
        # Without --strict: registered, with a one-line warning.
        r = lab.cli("register-pid", "web", os.getpid(), s.fileno())
        assert r.rc == 0
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("agility-lookup: warning: ") and what in lines[0], r.err
    # --strict refuses the whole batch: the usable tcp4 socket is not registered either.
    _one_line_error(lab.cli("register-pid", "web", os.getpid(), tcp4.fileno(), udp.fileno(), "--strict"))
    dests = {(d["domain"], d["protocol"]): d["socket"] for d in lab.ok("status", "--json").json["destinations"]}
    assert dests[("ipv4", "tcp")] is False
    r = lab.cli("register-pid", "web", os.getpid(), tcp4.fileno(), "--strict")
    assert r.rc == 0 and r.err == ""
    assert probe(lab, "tcp", "198.18.0.7", 80, [tcp4]) == 0


def test_binding_changes_refused_behind_foreign_program(lab, tmp_path):
    lab.route(V4)
    lab.load()
    lab.ok("bind", "web", "tcp", V4, 0)
    with open(SOURCE) as f:
        src = f.read()
    assert "dm->lookups++;" in src
    other = tmp_path / "other.bpf.c"
    other.write_text(src.replace("dm->lookups++;", "dm->lookups += 2;"))
    obj = compile_object(str(tmp_path / "other.bpf.o"), source=str(other))
    lab.ok("upgrade", "--object", obj)
    before = lab.ok("bindings", "--json").json
    for args in (("bind", "api", "tcp", "198.18.1.0/24", 80), ("unbind", "tcp", V4, 0)):
        assert "upgrade" in _one_line_error(lab.cli(*args))
    r = _load_file(lab, [KEEP])
    assert "upgrade" in _one_line_error(r)
    assert lab.ok("bindings", "--json").json == before
    lab.ok("upgrade")
    lab.ok("bind", "api", "tcp", "198.18.1.0/24", 80)
    labels = {b["label"] for b in lab.ok("bindings", "--json").json["bindings"]}
    assert labels == {"web", "api"}
