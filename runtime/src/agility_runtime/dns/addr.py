"""Client and local address helpers (ipaddress objects, v4-mapped folded to IPv4).

The parsing and folding live in agility_runtime.inet; these adapt the shapes the
DNS code has at hand (a recvmsg/accept peer tuple, IP_PKTINFO bytes, text).
"""

from agility_runtime.inet import parse_ip


def peer_ip(peer):
    """(host, port, ...) from recvmsg/accept -> ipaddress object."""
    return None if peer is None else parse_ip(peer[0])


def local_ip(local):
    """Packed bytes (from IP_PKTINFO), a text address or None -> ipaddress object."""
    return None if local is None else parse_ip(local)
