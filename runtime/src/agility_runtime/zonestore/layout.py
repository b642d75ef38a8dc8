"""The on-disk format of a zone store (version 1).

A store is a directory::

    STORE/current -> gen-<id>      symlink, replaced atomically by a compile
    STORE/gen-<id>/data.mdb        LMDB environment (data.mdb + lock.mdb)
    STORE/write.lock               flock held by every writer

Inside the LMDB environment's main database:

* ``b"m"`` -> the meta record, JSON: format, version, serial, digest, zone count;
* ``b"z" + revkey(zone)`` -> the zone, canonical JSON of the same shape as a zone of a
  policy file (account_type, soa, ns, records, hostnames).

``revkey`` spells the zone name's labels in reverse, each followed by NUL
(``example.com.`` -> ``com\\0example\\0``): a zone and everything below it sort
together, and the closest enclosing zone of a query name is at most one exact B-tree
look-up per label of the name, whatever the number of zones.

The digest is the XOR of a hash of each (key, value): any two stores with the same
zones have the same digest, and a one-zone update changes it without reading the rest.
"""

import hashlib
import json

FORMAT = "agility.addressing/zonestore"
VERSION = 1
META_KEY = b"m"
ZONE_PREFIX = b"z"
DIGEST_BYTES = 16
ZERO_DIGEST = "0" * (2 * DIGEST_BYTES)


def revkey_text(name):
    """Key of a lower-case absolute zone name (``example.com.``)."""
    labels = name.rstrip(".").split(".")
    return ZONE_PREFIX + b"".join(label.encode("ascii") + b"\x00" for label in reversed(labels))


def revkeys_wire(wire):
    """Keys of every enclosing name of a lower-case wire name, longest first; empty when
    a label holds a NUL octet (no zone name does: such a name is in no zone)."""
    labels = []
    pos = 0
    length = wire[0]
    while length:
        label = wire[pos + 1:pos + 1 + length]
        if b"\x00" in label:
            return []
        labels.append(label)
        pos += length + 1
        length = wire[pos]
    keys = []
    key = ZONE_PREFIX
    for label in reversed(labels):  # shortest (the TLD) first, each key extends the last
        key += label + b"\x00"
        keys.append(key)
    keys.reverse()
    return keys


def name_of_key(key):
    """The zone name (text, absolute) of a zone key."""
    labels = key[len(ZONE_PREFIX):].split(b"\x00")[:-1]
    return ".".join(label.decode("ascii") for label in reversed(labels)) + "."


def encode_zone(zone):
    """Canonical bytes of a zone (sorted keys, no spaces): same zone, same bytes."""
    return json.dumps(zone, sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode_zone(raw):
    return json.loads(bytes(raw).decode("utf-8"))


def entry_hash(key, value):
    return int.from_bytes(hashlib.sha256(key + b"\x00\xff" + bytes(value)).digest()[:DIGEST_BYTES], "big")


def digest_xor(digest, key, value):
    """``digest`` (hex) with the entry (key, value) added or removed (XOR does both)."""
    return "%0*x" % (2 * DIGEST_BYTES, int(digest, 16) ^ entry_hash(key, value))


def encode_meta(serial, digest, zones):
    return json.dumps({"format": FORMAT, "version": VERSION, "serial": serial, "digest": digest,
                       "zones": zones}, sort_keys=True).encode("utf-8")


def decode_meta(raw, where):
    """The meta record as a dict; ``ValueError`` (one line) when it is not one this code reads."""
    if raw is None:
        raise ValueError("%s has no meta record: not a zone store, or a corrupt one" % where)
    try:
        meta = json.loads(bytes(raw).decode("utf-8"))
    except ValueError:
        raise ValueError("%s: the meta record is not JSON: corrupt store" % where)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("%s: the meta record is not a %s record: corrupt store" % (where, FORMAT))
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("%s: format version %r is not valid: corrupt store" % (where, version))
    if version > VERSION:
        raise ValueError("%s has format version %d, newer than this code reads (%d); "
                         "upgrade agility-runtime" % (where, version, VERSION))
    for key in ("serial", "zones"):
        if not isinstance(meta.get(key), int) or isinstance(meta.get(key), bool):
            raise ValueError("%s: the meta record's %s is not an integer: corrupt store" % (where, key))
    if not isinstance(meta.get("digest"), str):
        raise ValueError("%s: the meta record has no digest: corrupt store" % where)
    return meta
