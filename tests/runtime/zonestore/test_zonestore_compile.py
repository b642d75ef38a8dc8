"""agility-zones compile: bad zones refused by name (file, line), the rest compiled; never a
partial store; corrupt or newer stores refused at open with one line."""

import json
import os
import resource
import signal
import subprocess
import sys

import lmdb
import pytest

from agility_runtime.zonestore import layout, reader, writer
from agility_runtime.zonestore.errors import StoreError
from zonestore_helpers import BAD_ZONES, txt, write_source, zone

AGILITY_ZONES = os.path.join(os.path.dirname(sys.executable), "agility-zones")


def run(*args):
    return subprocess.run([AGILITY_ZONES] + [str(a) for a in args], capture_output=True, text=True, timeout=120,
                          check=False)


def names(store):
    r = reader.Reader(str(store))
    try:
        return r.names()
    finally:
        r.close()


def test_bad_zones_refused_by_name_rest_compiled(tmp_path):
    good = {"good%d.example" % i: zone(records=[txt("t", "good %d" % i)]) for i in range(3)}
    first = write_source(tmp_path / "a.json", dict(good, **BAD_ZONES))
    # the same zone in two sources (spelt differently): every copy is refused
    second = write_source(tmp_path / "b.json",
                          {"GOOD2.example.": zone(serial=9), "good3.example": zone(records=[txt("t", "three")])})
    res = run("compile", first, second, "--out", tmp_path / "store")
    assert res.returncode == 1, res.stderr
    refused = {line.split()[3] for line in res.stderr.splitlines() if line.startswith("agility-zones: refused zone")}
    assert refused == {"badrdata.example.", "cname-beside.example.", "outside.example.", "bigtxt.example.",
                       "good2.example."}
    assert all(len(line) < 400 for line in res.stderr.splitlines())  # the 10 MB TXT is not echoed
    assert "compiled 3 zones" in res.stdout and "refused 5 zones" in res.stdout
    assert names(tmp_path / "store") == ["good0.example.", "good1.example.", "good3.example."]


def test_zone_files_compile_and_report_the_line(tmp_path):
    (tmp_path / "ok.example.zone").write_text(
        "$TTL 300\n@ IN SOA ns1 hostmaster 5 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.10\n"
        "www CNAME ns1\nmail MX 10 ns1\n")
    (tmp_path / "clash.example.zone").write_text(
        "$TTL 300\n@ IN SOA ns1 hostmaster 5 7200 3600 1209600 300\n@ NS ns1\n"
        "www CNAME ns1\nwww A 192.0.2.1\n")
    (tmp_path / "syntax.example.zone").write_text(
        "$TTL 300\n@ IN SOA ns1 hostmaster 5 7200 3600 1209600 300\n@ NS ns1\n\nx MX ten y\n")
    res = run("compile", tmp_path / "ok.example.zone", tmp_path / "clash.example.zone",
              tmp_path / "syntax.example.zone", "--out", tmp_path / "store", "--account-type", "pro")
    assert res.returncode == 1
    assert "clash.example.zone:5:" in res.stderr
    assert "syntax.example.zone:5:" in res.stderr
    r = reader.Reader(str(tmp_path / "store"))
    try:
        data = r.get("ok.example.")
    finally:
        r.close()
    assert data["account_type"] == "pro" and data["hostnames"] == []
    assert data["soa"]["serial"] == 5 and data["ns"] == ["ns1.ok.example."]
    assert {(x["name"], x["type"]) for x in data["records"]} == {
        ("ns1.ok.example.", "A"), ("www.ok.example.", "CNAME"), ("mail.ok.example.", "MX")}


def test_unreadable_source_writes_nothing(tmp_path):
    store = tmp_path / "store"
    good = write_source(tmp_path / "good.json", {"a.example": zone()})
    assert run("compile", good, "--out", store).returncode == 0
    before = os.readlink(store / "current")
    (tmp_path / "broken.json").write_text('{"zones": {"b.example": ')
    res = run("compile", good, tmp_path / "broken.json", tmp_path / "missing.json", "--out", store)
    assert res.returncode == 1
    assert "broken.json is not valid JSON" in res.stderr and "missing.json" in res.stderr  # both reported
    assert os.readlink(store / "current") == before
    assert sorted(os.listdir(store)) == sorted(["current", "write.lock", before])  # no temporary left


def test_full_disk_leaves_the_old_store(tmp_path):
    """A write that fails half-way (file size limit: EFBIG, as ENOSPC would) keeps the old store."""
    store = tmp_path / "store"
    assert run("compile", write_source(tmp_path / "small.json", {"a.example": zone()}), "--out", store).returncode == 0
    before = os.readlink(store / "current")
    big = write_source(tmp_path / "big.json", {"z%d.example" % i: zone(records=[txt("t", "x" * 200)] * 20)
                                               for i in range(400)})

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
    res = subprocess.run([AGILITY_ZONES, "compile", big, "--out", str(store)], capture_output=True, text=True,
                         preexec_fn=limit, timeout=120, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "previous store is unchanged" in res.stderr and len(res.stderr.splitlines()) == 1
    assert os.readlink(store / "current") == before
    assert names(store) == ["a.example."]
    assert not [e for e in os.listdir(store) if e.startswith(".tmp")]


def _store_with_meta(tmp_path, meta_bytes):
    store = tmp_path / "store"
    writer.compile_store(str(store), [write_source(tmp_path / "s.json", {"a.example": zone()})])
    env = lmdb.open(writer.current_generation(str(store)), subdir=True)
    with env.begin(write=True) as txn:
        txn.put(layout.META_KEY, meta_bytes)
    env.close()
    return str(store)


@pytest.mark.parametrize("meta, message", [
    (json.dumps({"format": layout.FORMAT, "version": layout.VERSION + 1, "serial": 1, "digest": "0",
                 "zones": 1}).encode(), "newer than this code reads"),
    (b"\xff not json", "corrupt store"),
])
def test_newer_or_bad_meta_refused_at_open(tmp_path, meta, message):
    store = _store_with_meta(tmp_path, meta)
    with pytest.raises(StoreError) as err:
        reader.Reader(store)
    assert message in str(err.value) and "\n" not in str(err.value)
    res = run("info", store)
    assert res.returncode == 1 and message in res.stderr and len(res.stderr.splitlines()) == 1


def test_not_lmdb_refused_at_open(tmp_path):
    store = tmp_path / "store"
    (store / "gen-x").mkdir(parents=True)
    (store / "gen-x" / "data.mdb").write_bytes(os.urandom(16384))
    os.symlink("gen-x", store / "current")
    with pytest.raises(StoreError) as err:
        reader.Reader(str(store))
    assert "not an LMDB file" in str(err.value)


def test_closest_enclosing_zone_and_digest(tmp_path):
    zones = {"example": zone(), "b.example": zone(), "a.b.example": zone(), "ab.example": zone()}
    src = write_source(tmp_path / "s.json", zones)
    one = writer.compile_store(str(tmp_path / "one"), [src])
    r = reader.Reader(str(tmp_path / "one"))
    try:
        def find(name):
            import dns.name
            hit = r.find(dns.name.from_text(name).to_wire().lower())
            return hit and hit[0]
        assert find("x.a.b.example") == "a.b.example."
        assert find("b.example") == "b.example."
        assert find("zz.ab.example") == "ab.example."
        assert find("c.example") == "example."
        assert find("example.org") is None
        assert r.find(b"\x03a\x00b\x07example\x00") is None  # a NUL in a label: in no zone
    finally:
        r.close()
    # same zones in another order and source: same digest
    two = writer.compile_store(str(tmp_path / "two"), [write_source(tmp_path / "t.json",
                                                                    dict(reversed(list(zones.items()))))])
    assert one.digest == two.digest and one.compiled == 4
