"""How the CLI shows bindings: one-line text form and the ``bindings`` filters."""

import ipaddress

from ..inet import fold_mapped
from .errors import Error


def binding_text(b):
    """``tcp 198.18.0.0/20 port 80 -> web`` (port 0 shown as ``any``)."""
    return "%s %s port %s -> %s" % (b.protocol, b.prefix_text, b.port or "any", b.label)


def parse_prefix_filter(text):
    """--prefix: a prefix or a single address; IPv4-mapped IPv6 is read as the IPv4 it maps."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise Error("invalid --prefix %r: %s" % (text, e))
    if net.version == 6 and net.prefixlen >= 96 and net.network_address.ipv4_mapped is not None:
        net = ipaddress.ip_network("%s/%d" % (fold_mapped(net.network_address), net.prefixlen - 96))
    return net


def select(bindings, label=None, protocol=None, prefix=None, port=None):
    """Bindings matching every given filter.

    ``prefix`` keeps the bindings that overlap it: those inside it and those
    that cover it, i.e. every binding that can take traffic for an address in it.
    ``port`` keeps exact-port bindings for it and the any-port (0) ones.
    """
    net = parse_prefix_filter(prefix) if prefix is not None else None
    out = []
    for b in bindings:
        if label is not None and b.label != label:
            continue
        if protocol is not None and b.protocol != protocol:
            continue
        if port is not None and b.port not in (port, 0):
            continue
        if net is not None and (b.prefix.version != net.version or not b.prefix.overlaps(net)):
            continue
        out.append(b)
    return out
