"""Client and local address helpers (ipaddress objects, v4-mapped folded to IPv4)."""

import ipaddress


def _fold(ip):
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def peer_ip(peer):
    """(host, port, ...) from recvmsg/accept -> ipaddress object."""
    if peer is None:
        return None
    host = peer[0]
    if "%" in host:
        host = host.split("%", 1)[0]
    return _fold(ipaddress.ip_address(host))


def local_ip(local):
    """Packed bytes (from IP_PKTINFO), a text address or None -> ipaddress object."""
    if local is None:
        return None
    if isinstance(local, (bytes, bytearray)):
        return _fold(ipaddress.ip_address(bytes(local)))
    if "%" in local:
        local = local.split("%", 1)[0]
    return _fold(ipaddress.ip_address(local))
