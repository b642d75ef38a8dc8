"""Shared address plumbing (agility_runtime.inet): listen addresses, v4-mapped folding."""
import ipaddress
import socket

import pytest
from hypothesis import given, strategies as st

from agility_runtime import inet


@pytest.mark.parametrize("spec, want", [
    ("127.0.0.1:53", (socket.AF_INET, "127.0.0.1", 53)),
    ("[::1]:5353", (socket.AF_INET6, "::1", 5353)),
    ("[2001:DB8::0:1]:80", (socket.AF_INET6, "2001:db8::1", 80)),   # normalised
    (":53", (socket.AF_INET, "0.0.0.0", 53)),
    (" 0.0.0.0:65535 ", (socket.AF_INET, "0.0.0.0", 65535)),
])
def test_parse_hostport(spec, want):
    assert inet.parse_hostport(spec) == want


@pytest.mark.parametrize("spec", [
    "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+53",
    "127.0.0.1:５３", "::1:53", "[::1]53", "[127.0.0.1]:53", "localhost:53", "", ":", None, 53,
])
def test_parse_hostport_refuses(spec):
    with pytest.raises(inet.AddressError):
        inet.parse_hostport(spec)


def test_parse_hostport_options():
    assert inet.parse_hostport("127.0.0.1:0", allow_port_zero=True)[2] == 0
    assert inet.parse_hostport(":9", default_host="127.0.0.1")[1] == "127.0.0.1"
    with pytest.raises(inet.AddressError):
        inet.parse_hostport(":9", default_host=None)


@given(st.text(max_size=60))
def test_parse_hostport_fuzz_only_address_error(text):
    try:
        family, host, port = inet.parse_hostport(text, allow_port_zero=True)
    except inet.AddressError as e:
        assert "\n" not in str(e).replace("\\n", "")
        return
    assert family in (socket.AF_INET, socket.AF_INET6) and 0 <= port <= 65535
    socket.inet_pton(family, host)


@given(st.ip_addresses(), st.integers(0, 65535))
def test_format_then_parse_round_trip(ip, port):
    spec = inet.format_hostport((str(ip), port))
    family, host, got_port = inet.parse_hostport(spec, allow_port_zero=True)
    assert ipaddress.ip_address(host) == inet.fold_mapped(ip) and got_port == port


@given(st.ip_addresses(v=4))
def test_fold_mapped(ip4):
    mapped = ipaddress.IPv6Address("::ffff:%s" % ip4)
    assert inet.fold_mapped(mapped) == ip4
    assert inet.parse_ip(str(mapped)) == ip4
    assert inet.parse_ip(mapped.packed) == ip4
    assert inet.parse_ip(ip4.packed) == ip4
    assert inet.host_text("%s%%eth0" % mapped) == str(ip4)


@given(st.ip_addresses(v=6))
def test_fold_leaves_other_ipv6_alone(ip6):
    if ip6.ipv4_mapped is None:
        assert inet.fold_mapped(ip6) == ip6 and inet.parse_ip(ip6.packed) == ip6


def test_host_text_keeps_non_addresses():
    assert inet.host_text("localhost") == "localhost"


def test_socket_option_numbers_are_linux_abi():
    # include/uapi/linux/in.h and in6.h; a wrong number silently sets another option.
    assert (inet.IP_PKTINFO, inet.IP_FREEBIND, inet.IP_RECVORIGDSTADDR) == (8, 15, 20)
    assert (inet.IPV6_RECVPKTINFO, inet.IPV6_PKTINFO, inet.IPV6_RECVORIGDSTADDR, inet.IPV6_FREEBIND) == \
        (49, 50, 74, 78)
    assert inet.SO_NETNS_COOKIE == 71


def test_ipv6_freebind_is_accepted_by_the_kernel():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IPV6, inet.IPV6_FREEBIND, 1)
        assert s.getsockopt(socket.IPPROTO_IPV6, inet.IPV6_FREEBIND) == 1
        s.bind(("2001:db8::77", 0))  # not assigned anywhere: only freebind allows it
