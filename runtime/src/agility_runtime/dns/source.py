"""Source keys: the client prefix that a limit counts against.

A key is an int: the address shifted right to its prefix length, tagged with the
family (bit 200 for IPv6) so an IPv4 key never equals an IPv6 key.  IPv4-mapped IPv6
addresses (``::ffff:192.0.2.1`` from a dual-stack socket) count as IPv4.
"""

import socket

_V6_TAG = 1 << 200
_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6


def prefix_key(host, v4_len, v6_len):
    """Key of the ``/v4_len`` (IPv4) or ``/v6_len`` (IPv6) prefix holding text address ``host``."""
    if ":" in host:
        if "%" in host:
            host = host.split("%", 1)[0]
        if "." in host and host[:7].lower() == "::ffff:":
            host = host[7:]
        else:
            return (int.from_bytes(_inet_pton(_AF_INET6, host), "big") >> (128 - v6_len)) | _V6_TAG
    return int.from_bytes(_inet_pton(_AF_INET, host), "big") >> (32 - v4_len)
