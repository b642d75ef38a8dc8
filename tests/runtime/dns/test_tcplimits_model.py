"""ConnTable (the TCP limits' bookkeeping) against a plain model: a list of connections
scanned in full for every question."""

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agility_runtime.dns.tcplimits import IDLE, READING, WRITING, ConnTable, Limits, source_of

LIMITS = Limits(idle_timeout=3.0, msg_timeout=0.5, max_conns=5, max_per_source=2)
STATES = st.sampled_from([IDLE, READING, WRITING])


class TableMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.table = ConnTable(LIMITS)
        self.model = {}   # key -> dict(source, state, since, seq)
        self.now = 0.0
        self.seq = 0
        self.next_key = 0

    def _stamp(self, conn):
        conn["since"] = self.now
        self.seq += 1
        conn["seq"] = self.seq

    @rule(source=st.sampled_from(["a", "b", "c"]))
    def connect(self, source):
        per_source = sum(1 for c in self.model.values() if c["source"] == source)
        assert self.table.source_full(source) == (per_source >= LIMITS.max_per_source)
        assert self.table.full() == (len(self.model) >= LIMITS.max_conns)
        if per_source >= LIMITS.max_per_source:
            return
        if len(self.model) >= LIMITS.max_conns:
            victim = self.table.oldest_idle()
            if victim is None:
                return  # the loop stops accepting
            self.table.remove(victim)
            del self.model[victim]
        key = self.next_key
        self.next_key += 1
        self.table.add(key, source, self.now)
        conn = self.model[key] = {"source": source, "state": IDLE}
        self._stamp(conn)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def disconnect(self, data):
        key = data.draw(st.sampled_from(sorted(self.model)))
        self.table.remove(key)
        del self.model[key]

    @precondition(lambda self: self.model)
    @rule(data=st.data(), state=STATES, progress=st.booleans())
    def event(self, data, state, progress):
        key = data.draw(st.sampled_from(sorted(self.model)))
        self.table.update(key, state, self.now, progress)
        conn = self.model[key]
        if conn["state"] != state or progress:
            conn["state"] = state
            self._stamp(conn)

    @rule(dt=st.sampled_from([0.0, 0.1, 0.3, 0.5, 1.0, 2.9, 3.0]))
    def tick(self, dt):
        self.now += dt

    @rule()
    def sweep(self):
        got = self.table.expired(self.now)
        for key, dummy in got:
            self.table.remove(key)
            del self.model[key]

    @invariant()
    def agrees(self):
        assert len(self.table) == len(self.model)
        for key, conn in self.model.items():
            assert self.table.state(key) == conn["state"]
        idle = [(c["since"], c["seq"], k) for k, c in self.model.items() if c["state"] == IDLE]
        assert self.table.oldest_idle() == (min(idle)[2] if idle else None)
        want = set()
        for key, conn in self.model.items():
            limit = LIMITS.idle_timeout if conn["state"] == IDLE else LIMITS.msg_timeout
            if self.now - conn["since"] >= limit:
                want.add((key, {IDLE: "idle_timeout", READING: "message_timeout",
                                WRITING: "write_timeout"}[conn["state"]]))
        assert set(self.table.expired(self.now)) == want


TableMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestConnTable = TableMachine.TestCase


def test_source_is_the_address_or_the_ipv6_64():
    assert source_of("192.0.2.1") != source_of("192.0.2.2")
    assert source_of("2001:db8::1") == source_of("2001:db8::ffff:1")
    assert source_of("2001:db8:0:1::1") != source_of("2001:db8::1")
    assert source_of("::ffff:192.0.2.1") == source_of("192.0.2.1")
    assert source_of("fe80::1%lo") == source_of("fe80::2")
