"""IP address plumbing shared by agility-dns, agility-edge and agility-lookup.

One home for: listen-address parsing (``ADDR:PORT``, ``[V6]:PORT``), the Linux
socket-option numbers Python's ``socket`` module does not always export, and the
folding of IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``) to plain IPv4.
"""

import ipaddress
import socket

# Linux socket option numbers (include/uapi/linux/in.h, in6.h, asm-generic/socket.h).
# Python exports some of them only on some versions; the numbers are ABI.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
IP_RECVORIGDSTADDR = getattr(socket, "IP_RECVORIGDSTADDR", 20)
IP_ORIGDSTADDR = IP_RECVORIGDSTADDR  # the cmsg type equals the option number
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVORIGDSTADDR = getattr(socket, "IPV6_RECVORIGDSTADDR", 74)
IPV6_ORIGDSTADDR = IPV6_RECVORIGDSTADDR
IPV6_FREEBIND = getattr(socket, "IPV6_FREEBIND", 78)
SO_NETNS_COOKIE = getattr(socket, "SO_NETNS_COOKIE", 71)


class AddressError(ValueError):
    """A listen address or IP address that cannot be used; the message is one line."""


def fold_mapped(ip):
    """``::ffff:a.b.c.d`` -> IPv4Address; any other address unchanged."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_ip(text):
    """Text (a scope id ``%eth0`` is dropped), packed bytes or an address -> folded address."""
    if isinstance(text, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return fold_mapped(text)
    if isinstance(text, (bytes, bytearray)):
        return fold_mapped(ipaddress.ip_address(bytes(text)))
    return fold_mapped(ipaddress.ip_address(str(text).split("%", 1)[0]))


def host_text(host):
    """An address as text with v4-mapped folded and scope dropped; non-addresses unchanged."""
    try:
        return str(parse_ip(host))
    except ValueError:
        return host


def format_hostport(sockaddr):
    """(host, port, ...) -> ``1.2.3.4:80`` or ``[::1]:80`` (v4-mapped shown as IPv4)."""
    host = host_text(sockaddr[0])
    if ":" in host:
        return "[%s]:%d" % (host, sockaddr[1])
    return "%s:%d" % (host, sockaddr[1])


def parse_hostport(spec, allow_port_zero=False, default_host="0.0.0.0"):
    """``127.0.0.1:53``, ``[::1]:5353``, ``:53`` -> (family, host, port).

    IPv6 addresses must be in brackets. An empty host means ``default_host``.
    Port 0 (let the kernel choose) only with ``allow_port_zero``.
    Raises AddressError with a one-line message.
    """
    if not isinstance(spec, str):
        raise AddressError("%r: expected ADDRESS:PORT" % (spec,))
    text = spec.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise AddressError("%r: IPv6 listen addresses look like [::1]:5353" % spec)
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise AddressError("%r: expected ADDRESS:PORT" % spec)
        if ":" in host:
            raise AddressError("%r: put IPv6 addresses in brackets, e.g. [::1]:5353" % spec)
        if not host:
            if default_host is None:
                raise AddressError("%r: expected ADDRESS:PORT" % spec)
            host = default_host
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise AddressError("%r: %r is not an IP address" % (spec, host))
    if text.startswith("[") and ip.version != 6:
        raise AddressError("%r: brackets are for IPv6 addresses" % spec)
    if not (port.isascii() and port.isdigit()):
        raise AddressError("%r: bad port" % spec)
    port = int(port)
    if not (0 if allow_port_zero else 1) <= port <= 65535:
        raise AddressError("%r: bad port" % spec)
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), str(ip), port
