"""agility-dns --zone-store: a real server answers zones from the store, and a zone changed
in the store (one-zone update or a whole compile) answers the new data within 1 s, with
no restart and no SIGHUP.  The policy file's own zones keep precedence."""

import json
import os
import subprocess
import sys
import time

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from dns_helpers import Server, query

AGILITY_ZONES = os.path.join(os.path.dirname(sys.executable), "agility-zones")


def store_zone(txt_value, hostnames=("www",), account_type="pro"):
    return {"account_type": account_type,
            "soa": {"mname": "ns1.store.example", "rname": "h.store.example", "serial": 1, "minimum": 30},
            "ns": ["ns1.store.example"], "hostnames": list(hostnames),
            "records": [{"name": "txt", "type": "TXT", "data": '"%s"' % txt_value}]}


def zones_cli(*args):
    res = subprocess.run([AGILITY_ZONES] + [str(a) for a in args], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 0, res.stderr
    return res


def compile_store(tmp_path, zones, name="src.json"):
    src = tmp_path / name
    src.write_text(json.dumps({"zones": zones}))
    zones_cli("compile", src, "--out", tmp_path / "store")
    return str(tmp_path / "store")


def txt_of(port, name):
    r = query(name, "TXT", port=port)
    return [b.decode() for rr in r.answer for rd in rr for b in rd.strings], r.rcode()


def seconds_until(pred, limit=5.0):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if pred():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


@pytest.fixture
def store_server(tmp_path):
    store = compile_store(tmp_path, {"store.example": store_zone("v1"),
                                     "example.com": store_zone("shadowed by the policy file")})
    (tmp_path / "srv").mkdir()
    srv = Server(tmp_path / "srv", args=("--zone-store", store))
    yield srv, store, tmp_path
    srv.stop()


def test_store_zone_answers(store_server):
    srv, _store, _tmp = store_server
    r = query("www.store.example", "A", port=srv.port)
    # account type "pro" -> the policy "pro" (per_pop, pop index 3) of the policy file
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert [rd.address for rr in r.answer for rd in rr] == ["198.18.32.3"]
    assert txt_of(srv.port, "txt.store.example") == (["v1"], dns.rcode.NOERROR)
    r = query("other.store.example", "A", port=srv.port)
    assert r.rcode() == dns.rcode.NXDOMAIN and r.authority[0].rdtype == dns.rdatatype.SOA
    assert r.authority[0].name.to_text() == "store.example."
    # the policy file's zone wins over the store's zone of the same name
    assert txt_of(srv.port, "txt.example.com") == (["hello"], dns.rcode.NOERROR)
    assert query("nowhere.test", "A", port=srv.port).rcode() == dns.rcode.REFUSED


def test_updates_answer_within_a_second(store_server):
    srv, store, tmp = store_server
    assert txt_of(srv.port, "txt.store.example")[0] == ["v1"]
    (tmp / "zone.json").write_text(json.dumps(store_zone("v2")))
    zones_cli("set", store, "store.example", "--data", tmp / "zone.json")
    took = seconds_until(lambda: txt_of(srv.port, "txt.store.example")[0] == ["v2"])
    assert took is not None and took < 1.0, took
    # a whole compile swaps the generation: picked up by the poll
    compile_store(tmp, {"store.example": store_zone("v3"), "new.example": store_zone("fresh")}, "src2.json")
    took = seconds_until(lambda: txt_of(srv.port, "txt.new.example")[0] == ["fresh"])
    assert took is not None and took < 1.0, took
    assert txt_of(srv.port, "txt.store.example")[0] == ["v3"]
    zones_cli("delete", store, "new.example")
    took = seconds_until(lambda: txt_of(srv.port, "txt.new.example")[1] == dns.rcode.REFUSED)
    assert took is not None and took < 1.0, took
    assert "reload" not in srv.logtext()


def test_bad_store_refused_at_start(tmp_path):
    store = tmp_path / "store"
    (store / "gen-x").mkdir(parents=True)
    (store / "gen-x" / "data.mdb").write_bytes(b"\x00" * 8192)
    os.symlink("gen-x", store / "current")
    (tmp_path / "srv").mkdir()
    srv = Server(tmp_path / "srv", args=("--zone-store", str(store)), wait=False)
    try:
        assert srv.proc.wait(20) == 1
        lines = [line for line in srv.logtext().splitlines() if "zone store" in line]
        assert len(lines) == 1 and "event=start" in lines[0] and "result=failed" in lines[0], srv.logtext()
        assert "not an LMDB file" in lines[0]
    finally:
        srv.stop()
