"""Byte layouts of the BPF maps (mirror of the structs in bpf/dispatcher.bpf.c)."""
import ipaddress
import socket
import struct

from ..sklookup_model import network_of, v6_space

MAX_PREFIX_LEN = 128          # address prefix lengths in the common 128-bit space
MAX_PROTOCOL = 17             # ag_prefix_lens entries: protocol numbers up to UDP
FILTER_BITS = 21              # ag_prefix_filter: 2^21 u32 counters, two per array element (8 MiB)
FILTER_SIZE = 1 << FILTER_BITS
_FILTER_MUL = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1
_ADDR_WORDS = struct.Struct("=4I")  # the address as the program loads it: host-order words of network bytes
MAX_DESTINATIONS = 1024
MAX_BINDINGS = 131072
MAX_ADDRESSES = 65536

# map name in the object -> pin file name
MAP_NAMES = ("ag_binding_hash", "ag_prefix_lens", "ag_prefix_filter", "ag_sockets", "ag_dests", "ag_dest_metrics",
             "ag_bind_metrics", "ag_addr_hits")
# The maps a binding-layout change replaces; the others are kept across it.
BINDING_MAPS = ("ag_binding_hash", "ag_prefix_lens", "ag_prefix_filter")
# The layout before issue 10 item 5: one LPM trie of bindings (see lpm_* below and state.migrate).
LPM_MAP = "ag_bindings"
PROG_NAME = "agility_dispatch"
# Which binding ids (counter slots of ag_bind_metrics) are in use: a bitmap, the one value of a
# one-entry array map that the writers keep and the program never reads (dispatcher.py)
BIND_IDS_MAP = "ag_bind_ids"
BIND_IDS_SIZE = MAX_BINDINGS // 8
PERCPU_MAPS = ("ag_dest_metrics",)

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
DOMAINS = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}

_BIND_KEY = struct.Struct("=BBH16s")      # 20 bytes: protocol, prefix length, port (be), masked address
_LPM_BIND_KEY = struct.Struct("=IBH16s")  # the old LPM trie key, packed: 23 bytes
_LPM_KEY_HEAD_BITS = 24                   # protocol (8) + port (16) bits before the address
LEN_WORDS = 3                             # 129 "length in use" bits, 64 per u64
_PREFIX_LENS = struct.Struct("=%dQ%dQ%dI%dI" % (LEN_WORDS, LEN_WORDS, MAX_PREFIX_LEN + 1, MAX_PREFIX_LEN + 1))
_BIND_VAL = struct.Struct("=III")
_COUNTERS = struct.Struct("=QQQ")
_ADDR_VAL = struct.Struct("=QQ")
_DEST_KEY = struct.Struct("=64sBB2x")
_DEST_VAL = struct.Struct("=II")
U32 = struct.Struct("=I")
U64 = struct.Struct("=Q")

BIND_KEY_SIZE = _BIND_KEY.size
BIND_VAL_SIZE = _BIND_VAL.size
LPM_BIND_KEY_SIZE = _LPM_BIND_KEY.size
PREFIX_LENS_SIZE = _PREFIX_LENS.size
COUNTERS_SIZE = _COUNTERS.size
ADDR_KEY_SIZE = 16
ADDR_VAL_SIZE = _ADDR_VAL.size
DEST_KEY_SIZE = _DEST_KEY.size
DEST_VAL_SIZE = _DEST_VAL.size


def to_v6_space(network):
    """(16 address bytes, prefix length in the 128-bit space) of a network."""
    _version, addr, bits = v6_space(network)
    return addr, bits


def from_v6_space(addr16, bits):
    return network_of(addr16, bits)


def address_from_key(addr16):
    a = ipaddress.IPv6Address(addr16)
    return a.ipv4_mapped or a


def pack_bind_key(protocol, port, network):
    addr, bits = to_v6_space(network)
    return _BIND_KEY.pack(protocol, bits, socket.htons(port), addr)


def unpack_bind_key(raw):
    proto, bits, port_be, addr = _BIND_KEY.unpack(raw)
    return proto, socket.ntohs(port_be), from_v6_space(addr, bits)


def binding_key(b):
    """The hash key of a model Binding: its identity, ``key`` (the model packs it the same way)."""
    return b.key


def unpack_bind_key_raw(raw):
    """(protocol number, port, 16 address bytes, length in the 128-bit space) of a hash key."""
    proto, bits, port_be, addr = _BIND_KEY.unpack(raw)
    return proto, socket.ntohs(port_be), addr, bits


def pack_lpm_bind_key(protocol, port, network):
    """A key of the old LPM layout (tests build such a state to migrate)."""
    addr, bits = to_v6_space(network)
    return _LPM_BIND_KEY.pack(_LPM_KEY_HEAD_BITS + bits, protocol, socket.htons(port), addr)


def unpack_lpm_bind_key(raw):
    plen, proto, port_be, addr = _LPM_BIND_KEY.unpack(raw)
    return proto, socket.ntohs(port_be), from_v6_space(addr, plen - _LPM_KEY_HEAD_BITS)


def filter_slot(protocol, bits, addr16, port):
    """ag_prefix_filter index of a binding: prefix_hash() then filter_slot() in
    bpf/dispatcher.bpf.c, step for step (the port as the program holds it: network byte order)."""
    w0, w1, w2, w3 = _ADDR_WORDS.unpack(addr16)
    h = ((protocol << 8 | bits) + 1) & _M64  # unrolled: a load-bindings hashes every binding
    h = ((h ^ w0) * _FILTER_MUL) & _M64
    h = ((h ^ w1) * _FILTER_MUL) & _M64
    h = ((h ^ w2) * _FILTER_MUL) & _M64
    h = ((h ^ w3) * _FILTER_MUL) & _M64
    return (((h ^ socket.htons(port)) * _FILTER_MUL) & _M64) >> (64 - FILTER_BITS)


def binding_filter_slot(protocol, port, network):
    addr, bits = to_v6_space(network)
    return filter_slot(protocol, bits, addr, port)


def filter_counts(bindings):
    """{slot: count} of ag_prefix_filter for bindings given as (protocol, port, network)."""
    return filter_counts_raw((proto, port) + to_v6_space(net) for proto, port, net in bindings)


def filter_counts_raw(keys):
    """{slot: count} of ag_prefix_filter for bindings given as (protocol, port, addr16, bits)."""
    out = {}
    for proto, port, addr, bits in keys:
        slot = filter_slot(proto, bits, addr, port)
        out[slot] = out.get(slot, 0) + 1
    return out


class PrefixLens(object):
    """One protocol's ag_prefix_lens value: the lengths in use, for exact-port and any-port bindings.

    ``refs[kind][bits]`` counts the bindings of that kind (0 = exact port, 1 = any port) and
    address prefix length; the program reads only the bits, set where a count is non-zero.
    """

    def __init__(self, exact_refs=None, any_refs=None):
        self.refs = (list(exact_refs or [0] * (MAX_PREFIX_LEN + 1)), list(any_refs or [0] * (MAX_PREFIX_LEN + 1)))

    @staticmethod
    def kind(port):
        return 1 if port == 0 else 0

    def pack(self):
        words = []
        for refs in self.refs:
            w = [0] * LEN_WORDS
            for bits, n in enumerate(refs):
                if n:  # bit 128 - length: the program takes the lowest set bit as the longest length
                    pos = MAX_PREFIX_LEN - bits
                    w[pos >> 6] |= 1 << (pos & 63)
            words += w
        return _PREFIX_LENS.pack(*(words + self.refs[0] + self.refs[1]))

    @classmethod
    def unpack(cls, raw):
        v = _PREFIX_LENS.unpack(raw)
        n = MAX_PREFIX_LEN + 1
        refs = v[2 * LEN_WORDS:]
        return cls(refs[:n], refs[n:]), v[:LEN_WORDS], v[LEN_WORDS:2 * LEN_WORDS]

    def lengths(self):
        """{(kind, bits)} with bindings."""
        return {(k, b) for k in (0, 1) for b, n in enumerate(self.refs[k]) if n}


def lens_from_bindings(keys):
    """{protocol: PrefixLens} counted from (protocol, port, bits) of every binding."""
    out = {}
    for proto, port, bits in keys:
        out.setdefault(proto, PrefixLens()).refs[PrefixLens.kind(port)][bits] += 1
    return out


def pack_bind_val(dest_id, binding_id, addr_bits):
    return _BIND_VAL.pack(dest_id, binding_id, addr_bits)


def unpack_bind_val(raw):
    return _BIND_VAL.unpack(raw)


def pack_dest_key(label, domain, protocol):
    return _DEST_KEY.pack(label.encode(), domain, protocol)


def unpack_dest_key(raw):
    label, domain, proto = _DEST_KEY.unpack(raw)
    return label.rstrip(b"\0").decode(), domain, proto


def pack_dest_val(dest_id, refs):
    return _DEST_VAL.pack(dest_id, refs)


def unpack_dest_val(raw):
    return _DEST_VAL.unpack(raw)


def sum_percpu(raw, st, ncpus):
    """Sum a per-CPU value (each CPU's slot is rounded up to 8 bytes)."""
    slot = (st.size + 7) // 8 * 8
    totals = [0] * len(st.unpack(raw[:st.size]))
    for cpu in range(ncpus):
        vals = st.unpack_from(raw, cpu * slot)
        totals = [a + b for a, b in zip(totals, vals)]
    return totals


COUNTERS = _COUNTERS
ADDR_VAL = _ADDR_VAL


def percpu_size(st, ncpus):
    return (st.size + 7) // 8 * 8 * ncpus


def pack_id_bitmap(ids):
    """The ag_bind_ids value: bit i (byte i // 8, bit i % 8) set for each id in use."""
    bits = bytearray(BIND_IDS_SIZE)
    for i in ids:
        bits[i >> 3] |= 1 << (i & 7)
    return bits


def unpack_id_bitmap(raw):
    return {(j << 3) + k for j, byte in enumerate(raw) if byte for k in range(8) if byte >> k & 1}
