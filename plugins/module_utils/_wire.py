# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wire helpers shared by the dns_probe and reach_probe modules.

Standard library only: these run on managed hosts.  DNS messages are built
and parsed by hand (RFC 1035, with name compression on reading).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import random
import socket
import ssl
import struct
import time

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
QTYPE_NAMES = dict((v, k) for k, v in QTYPES.items())
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}
CLASS_IN = 1


class WireError(Exception):
    """A malformed or unexpected DNS message."""


# -- names ------------------------------------------------------------------

def encode_name(name):
    name = name.rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            raw = label.encode("idna") if any(ord(c) > 127 for c in label) else label.encode("ascii")
            if not raw or len(raw) > 63:
                raise WireError("bad label %r in %r" % (label, name))
            out += struct.pack("!B", len(raw)) + raw
    out += b"\0"
    if len(out) > 255:
        raise WireError("name too long: %r" % name)
    return out


def decode_name(msg, offset):
    """(name, offset after the name) at offset, following compression pointers."""
    labels = []
    end = None
    jumps = 0
    pos = offset
    while True:
        if pos >= len(msg):
            raise WireError("name runs past the end of the message")
        length = msg[pos] if isinstance(msg[pos], int) else ord(msg[pos])
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise WireError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | (msg[pos + 1] if isinstance(msg[pos + 1], int) else ord(msg[pos + 1]))
            if end is None:
                end = pos + 2
            jumps += 1
            if jumps > 64 or target >= len(msg):
                raise WireError("compression pointer loop or out of range")
            pos = target
            continue
        if length & 0xC0:
            raise WireError("unsupported label type 0x%02x" % length)
        pos += 1
        if length == 0:
            break
        if pos + length > len(msg):
            raise WireError("label runs past the end of the message")
        labels.append(msg[pos:pos + length].decode("ascii", "replace"))
        pos += length
    if end is None:
        end = pos
    return ".".join(labels) + ".", end


# -- messages ---------------------------------------------------------------

def build_query(name, qtype, qid=None, rd=False, edns_payload=1232):
    """A query message; returns (qid, bytes)."""
    if qid is None:
        qid = random.SystemRandom().randint(0, 0xFFFF)
    flags = 0x0100 if rd else 0
    arcount = 1 if edns_payload else 0
    msg = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, arcount)
    msg += encode_name(name) + struct.pack("!HH", QTYPES[qtype] if not isinstance(qtype, int) else qtype, CLASS_IN)
    if edns_payload:
        # OPT pseudo-RR: root name, type 41, class = payload size, ttl = 0, rdlen 0.
        msg += b"\0" + struct.pack("!HHIH", 41, edns_payload, 0, 0)
    return qid, msg


def parse_response(msg):
    """Parse a response: header fields, question and answer records."""
    if len(msg) < 12:
        raise WireError("message shorter than a header (%d bytes)" % len(msg))
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    out = {
        "id": qid, "qr": bool(flags & 0x8000), "opcode": (flags >> 11) & 0xF,
        "aa": bool(flags & 0x0400), "tc": bool(flags & 0x0200),
        "rcode": flags & 0xF, "questions": [], "answers": [],
    }
    pos = 12
    for dummy in range(qd):
        name, pos = decode_name(msg, pos)
        if pos + 4 > len(msg):
            raise WireError("truncated question")
        qtype, qclass = struct.unpack("!HH", msg[pos:pos + 4])
        pos += 4
        out["questions"].append((name.lower(), qtype, qclass))
    for dummy in range(an):
        name, pos = decode_name(msg, pos)
        if pos + 10 > len(msg):
            raise WireError("truncated resource record")
        rtype, rclass, ttl, rdlen = struct.unpack("!HHIH", msg[pos:pos + 10])
        pos += 10
        if pos + rdlen > len(msg):
            raise WireError("resource record data runs past the end")
        rdata = msg[pos:pos + rdlen]
        rec = {"name": name.lower(), "type": QTYPE_NAMES.get(rtype, str(rtype)), "ttl": ttl}
        if rtype == 1:
            if rdlen != 4:
                raise WireError("A record with %d bytes" % rdlen)
            rec["address"] = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            if rdlen != 16:
                raise WireError("AAAA record with %d bytes" % rdlen)
            rec["address"] = str(ipaddress.IPv6Address(bytes(rdata)))
        elif rtype == 5:
            rec["target"] = decode_name(msg, pos)[0].lower()
        out["answers"].append(rec)
        pos += rdlen
    return out


def _recv_exact(sock, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise WireError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def dns_exchange(server, port, name, qtype, protocol="udp", timeout=2.0):
    """Send one query, return (parsed response, protocol used).

    Over UDP a truncated answer is retried over TCP, as a resolver would.
    """
    qid, query = build_query(name, qtype)
    infos = socket.getaddrinfo(server, port, 0, socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM)
    family, sockaddr = infos[0][0], infos[0][4]
    deadline = time.monotonic() + timeout
    if protocol == "udp":
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.connect(sockaddr)
            sock.send(query)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("timed out")
                sock.settimeout(left)
                data = sock.recv(65535)
                try:
                    resp = parse_response(data)
                except WireError:
                    continue  # garbage on our port: keep waiting for the real answer
                if resp["id"] == qid and resp["qr"]:
                    break
        finally:
            sock.close()
        if resp["tc"]:
            return dns_exchange(server, port, name, qtype, "tcp", max(deadline - time.monotonic(), 0.1))
    else:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            sock.sendall(struct.pack("!H", len(query)) + query)
            length = struct.unpack("!H", _recv_exact(sock, 2, deadline))[0]
            resp = parse_response(_recv_exact(sock, length, deadline))
        finally:
            sock.close()
        if resp["id"] != qid or not resp["qr"]:
            raise WireError("answer id %d does not match query id %d" % (resp["id"], qid))
    if resp["questions"] and resp["questions"][0][0] != (name.rstrip(".") + ".").lower():
        raise WireError("answer is for %s, not %s" % (resp["questions"][0][0], name))
    return resp, protocol


# -- addresses --------------------------------------------------------------

def to_networks(prefixes):
    return [ipaddress.ip_network(u"%s" % p, strict=False) for p in prefixes]


def in_networks(address, networks):
    ip = ipaddress.ip_address(u"%s" % address)
    return any(ip.version == n.version and ip in n for n in networks)


def random_addresses(prefix, count, rng=None):
    """`count` distinct random addresses of `prefix` (all of them if it is smaller)."""
    rng = rng or random.SystemRandom()
    net = ipaddress.ip_network(u"%s" % prefix, strict=False)
    size = net.num_addresses
    base = int(net.network_address)
    if count >= size:
        offsets = list(range(size))
    elif size <= 4 * count:
        offsets = rng.sample(range(size), count)
    else:
        seen = set()
        while len(seen) < count:
            seen.add(rng.randrange(size))
        offsets = sorted(seen)
        rng.shuffle(offsets)
    return [str(ipaddress.ip_address(base + o)) for o in offsets]


def random_label(rng=None, length=12):
    rng = rng or random.SystemRandom()
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for dummy in range(length))


# -- the edge service -------------------------------------------------------

def _sockaddr(address, port, stype):
    return socket.getaddrinfo(address, port, 0, stype)[0]


def _parse_json(raw):
    try:
        doc = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def probe_tcp(address, port, timeout=3.0, http=True, host=None, path="/", tls=False,
              server_name=None, validate_certs=False, ca_path=None):
    """Connect (and optionally speak HTTP/HTTPS); returns a result dict."""
    family, stype, proto, dummy, sockaddr = _sockaddr(address, port, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    sock = socket.socket(family, stype, proto)
    result = {"status": None, "response": None}
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
        result["local"] = "%s:%d" % sock.getsockname()[:2]
        if tls:
            if validate_certs:
                ctx = ssl.create_default_context(cafile=ca_path)
            else:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            sni = server_name or host
            sock = ctx.wrap_socket(sock, server_hostname=sni or None)
        if not http:
            return result
        hostname = host or (("[%s]" % address) if ":" in address else address)
        req = "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: agility.addressing reach_probe\r\nConnection: close\r\n\r\n" % (path, hostname)
        sock.sendall(req.encode("ascii"))
        buf = b""
        while len(buf) < 65536:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out reading the response")
            sock.settimeout(left)
            chunk = sock.recv(16384)
            if not chunk:
                break
            buf += chunk
        head, sep, body = buf.partition(b"\r\n\r\n")
        if not sep:
            raise WireError("no complete HTTP response (%d bytes)" % len(buf))
        status_line = head.split(b"\r\n", 1)[0].split(b" ")
        try:
            result["status"] = int(status_line[1])
        except (IndexError, ValueError):
            raise WireError("bad HTTP status line")
        result["response"] = _parse_json(body)
        return result
    finally:
        sock.close()


def probe_udp(address, port, timeout=3.0, retries=2, token=None):
    """Send the edge's 'ping' over connected UDP (so only a reply from the very
    address and port we sent to is accepted); returns a result dict."""
    family, stype, proto, dummy, sockaddr = _sockaddr(address, port, socket.SOCK_DGRAM)
    token = token or random_label()
    sock = socket.socket(family, stype, proto)
    try:
        sock.connect(sockaddr)
        per_try = timeout / (retries + 1)
        last = None
        for dummy in range(retries + 1):
            sock.send(("ping %s" % token).encode("ascii"))
            end = time.monotonic() + per_try
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    last = socket.timeout("no reply in %.1fs" % per_try)
                    break
                sock.settimeout(left)
                try:
                    data = sock.recv(65535)
                except socket.timeout as exc:
                    last = exc
                    break
                doc = _parse_json(data)
                if doc is not None and doc.get("token", token) == token:
                    return {"status": None, "response": doc}
        raise last or socket.timeout("no reply")
    finally:
        sock.close()
