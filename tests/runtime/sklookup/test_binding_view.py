"""The ``bindings`` filters and the one-line binding text (pure functions, no kernel)."""
import ipaddress

import pytest
from hypothesis import given, strategies as st

from agility_runtime.sklookup.binding_view import binding_text, select
from agility_runtime.sklookup.errors import Error
from agility_runtime.sklookup.model import Binding

SET = [
    {"protocol": "tcp", "prefix": "198.18.0.0/20", "port": 0, "label": "wide"},
    {"protocol": "tcp", "prefix": "198.18.0.0/24", "port": 443, "label": "tls"},
    {"protocol": "udp", "prefix": "198.18.0.0/24", "port": 53, "label": "dns"},
    {"protocol": "tcp", "prefix": "198.18.4.5/32", "port": 80, "label": "web"},
    {"protocol": "tcp", "prefix": "2001:db8::/48", "port": 80, "label": "web"},
    {"protocol": "udp", "prefix": "2001:db8:1::/48", "port": 53, "label": "dns"},
]
BINDINGS = [Binding(**d) for d in SET]


def _keys(bindings):
    return sorted((b["protocol"], b["prefix"], b["port"], b["label"]) for b in bindings)


@pytest.mark.parametrize("filters, expected", [
    ({}, [0, 1, 2, 3, 4, 5]),
    ({"label": "web"}, [3, 4]),
    ({"label": "nobody"}, []),
    ({"protocol": "udp"}, [2, 5]),
    ({"protocol": "udp", "label": "dns"}, [2, 5]),
    ({"prefix": "198.18.4.0/24"}, [0, 3]),          # the /20 covers it, the /32 is inside it
    ({"prefix": "198.18.0.9"}, [0, 1, 2]),          # an address: the bindings that catch it
    ({"prefix": "::ffff:198.18.0.9"}, [0, 1, 2]),   # v4-mapped reads as the IPv4 address
    ({"prefix": "::ffff:198.18.4.0/120"}, [0, 3]),
    ({"prefix": "198.18.0.0/16"}, [0, 1, 2, 3]),
    ({"prefix": "2001:db8::/32"}, [4, 5]),
    ({"prefix": "203.0.113.0/24"}, []),
    ({"port": 53}, [0, 2, 5]),                      # exact port 53 and any-port bindings
    ({"port": 0}, [0]),
    ({"protocol": "tcp", "prefix": "198.18.0.0/24", "port": 443}, [0, 1]),
])
def test_select(filters, expected):
    got = [b.as_dict() for b in select(BINDINGS, **filters)]
    assert _keys(got) == _keys([SET[i] for i in expected])


@pytest.mark.parametrize("bad", ["198.18.0.1/24", "nonsense", "2001:db8::/200", ""])
def test_bad_prefix_filter(bad):
    with pytest.raises(Error, match="invalid --prefix"):
        select(BINDINGS, prefix=bad)


@given(st.text(max_size=40))
def test_prefix_filter_fuzz_only_error(text):
    try:
        select(BINDINGS, prefix=text)
    except Error as e:
        assert str(e).startswith("invalid --prefix")


@given(st.ip_addresses(v=4))
def test_address_filter_equals_containment(addr):
    got = select(BINDINGS, prefix=str(addr))
    assert got == [b for b in BINDINGS if b.prefix.version == 4 and addr in b.prefix]
    mapped = ipaddress.IPv6Address("::ffff:%s" % addr)
    assert select(BINDINGS, prefix=str(mapped)) == got


def test_binding_text():
    assert binding_text(BINDINGS[0]) == "tcp 198.18.0.0/20 port any -> wide"
    assert binding_text(BINDINGS[4]) == "tcp 2001:db8::/48 port 80 -> web"
