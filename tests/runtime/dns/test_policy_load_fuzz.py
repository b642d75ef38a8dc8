"""The responder's loader (policy model + dnspython parse of names and static records):
any mutation of a good file either loads or raises ``PolicyError`` naming a field, and
never reaches the ``(internal)`` last line of defence in ``state.from_bytes``."""

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from agility_runtime import policy
from agility_runtime.dns import state as statemod

from dns_helpers import policy_doc

NAMEISH = st.sampled_from(("", ".", "@", "*", "*.x", "a..b", "a.", "a" * 63, "a" * 64, "-a", "a\\", "\\065", "é",
                           "x.example.com.", "x.other.", "ns1", "_sip._tcp", ".".join(["c" * 63] * 5),
                           "10 mail", "ten mail", "\"t\"", "0 issue \"ca\"", "192.0.2.1", "2001:db8::1",
                           "1 . alpn=h2", "ns1.example.com", 5, None, [], {}, True, -1, 2 ** 40))
TARGETS = (("zones", "example.com", "records", None, "name"), ("zones", "example.com", "records", None, "data"),
           ("zones", "example.com", "records", None, "type"), ("zones", "example.com", "records", None, "ttl"),
           ("zones", "pro.example", "hostnames", None), ("zones", "example.com", "ns", None),
           ("zones", "example.com", "soa", "mname"), ("zones", "example.com", "soa", "rname"),
           ("zones", "example.com", "soa", "serial"), ("zones", "example.com", "records"),
           ("policies", None, "match", "zones"), ("policies", None, "pool"), ("policies", None, "slices"),
           ("default_policy",))
TYPES = st.sampled_from(policy.STATIC_TYPES)


@st.composite
def mutated(draw):
    doc = policy_doc()
    for dummy in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(TARGETS))
        node = doc
        for key in path[:-1]:
            if key is None:
                key = draw(st.integers(0, len(node) - 1)) if isinstance(node, list) and node else 0
            if not isinstance(node, (dict, list)) or (isinstance(node, list) and not node):
                break
            node = node[key] if isinstance(node, list) else node.setdefault(key, {})
        else:
            last = path[-1]
            if last is None:
                if isinstance(node, list) and node:
                    node[draw(st.integers(0, len(node) - 1))] = draw(NAMEISH)
            elif isinstance(node, dict):
                node[last] = draw(NAMEISH | TYPES | st.lists(NAMEISH, max_size=3))
    return doc


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_loader_raises_only_policy_error_naming_a_field(doc):
    try:
        st_ = statemod.from_bytes(json.dumps(doc).encode())
    except policy.PolicyError as exc:
        assert exc.problems and all(field != statemod.INTERNAL for field, _msg in exc.problems), exc
        return
    assert st_.zones
