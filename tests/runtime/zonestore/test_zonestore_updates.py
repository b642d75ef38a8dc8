"""One-zone updates against a pure model (hypothesis state machine): after every step a
reader sees exactly the model's zones, the serial moved by one per update, and the
digest equals that of a fresh compile of the same zones (so the fleet can compare
versions by content).  And: a reader never sees half an update."""

import os
import shutil
import tempfile
import time
import multiprocessing

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from agility_runtime.zonestore import layout, reader, writer
from zonestore_helpers import txt, write_source, zone

NAMES = ["a.example", "b.example", "x.a.example", "c.test"]


class StoreModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="zonestore-sm-")
        self.store = os.path.join(self.dir, "store")
        self.model = {}
        self.serial = 1
        writer.compile_store(self.store, [write_source(os.path.join(self.dir, "empty.json"), {})])

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(name=st.sampled_from(NAMES), text=st.text("abc xyz", max_size=8), serial=st.integers(1, 5))
    def set_zone(self, name, text, serial):
        data = zone(serial=serial, records=[txt("t", text)])
        problems, meta = writer.update_zone(self.store, name, data)
        assert problems == [] and meta["serial"] == self.serial + 1
        self.serial += 1
        self.model[name + "."] = data

    @rule(name=st.sampled_from(NAMES))
    def delete_zone(self, name):
        problems, meta = writer.update_zone(self.store, name, None)
        if name + "." in self.model:
            assert problems == [] and meta["serial"] == self.serial + 1
            self.serial += 1
            del self.model[name + "."]
        else:
            assert meta is None and "is not in the store" in problems[0][1]

    @rule(name=st.sampled_from(NAMES))
    def refused_update_changes_nothing(self, name):
        problems, meta = writer.update_zone(self.store, name, zone(records=[{"name": "@", "type": "A", "data": "x"}]))
        assert meta is None and problems

    @rule()
    def recompile(self):
        src = write_source(os.path.join(self.dir, "all.json"), {k.rstrip("."): v for k, v in self.model.items()})
        report = writer.compile_store(self.store, [src])
        assert report.written and report.serial == self.serial + 1 and not report.refused
        self.serial += 1

    @invariant()
    def reader_sees_the_model(self):
        r = reader.Reader(self.store)
        try:
            assert r.meta["serial"] == self.serial
            assert r.meta["zones"] == len(self.model)
            assert sorted(r.names()) == sorted(self.model)
            for name, data in self.model.items():
                assert r.get(name) == data
            digest = r.meta["digest"]
        finally:
            r.close()
        fresh = os.path.join(self.dir, "fresh")
        shutil.rmtree(fresh, ignore_errors=True)
        src = write_source(os.path.join(self.dir, "fresh.json"), {k.rstrip("."): v for k, v in self.model.items()})
        assert writer.compile_store(fresh, [src]).digest == digest


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings(max_examples=10, stateful_step_count=6, deadline=None)


def _update_loop(store, last, reading):
    reading.wait(30)  # the reader has its first snapshot: every update lands while it reads
    for serial in range(2, last + 1):
        problems, meta = writer.update_zone(store, "a.example", zone(serial=serial))
        assert not problems and meta["serial"] == serial
        time.sleep(0.005)


def test_readers_never_see_half_an_update(tmp_path):
    """Each update changes a zone and the meta record together: a reader that reads both in
    one transaction always finds the zone's serial equal to the store's serial.  (The writer
    is another process, as agility-zones is: LMDB opens an environment once per process.)"""
    store = str(tmp_path / "store")
    writer.compile_store(store, [write_source(tmp_path / "s.json", {"a.example": zone(serial=1)})])
    last = 40
    ctx = multiprocessing.get_context("fork")
    reading = ctx.Event()
    proc = ctx.Process(target=_update_loop, args=(store, last, reading))
    proc.start()
    seen = []
    r = reader.Reader(store)
    try:
        while True:
            with r.env.begin() as txn:
                meta = layout.decode_meta(txn.get(layout.META_KEY), store)
                data = layout.decode_zone(txn.get(layout.revkey_text("a.example.")))
            seen.append((meta["serial"], data["soa"]["serial"]))
            reading.set()
            if meta["serial"] == last or not proc.is_alive() and len(seen) > 1 and seen[-1][0] == seen[-2][0]:
                break
    finally:
        r.close()
        proc.join(30)
    assert proc.exitcode == 0
    assert seen[-1] == (last, last)
    assert all(a == b for a, b in seen)
    assert len(set(seen)) > 2  # the reader saw updates happen between its reads
