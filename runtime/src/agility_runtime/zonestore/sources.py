"""Zones read from source files: YAML/JSON zone data and RFC 1035 zone files.

``read(path, account_type)`` yields ``Item`` objects (zone name, zone data in the
policy file's zone shape, where it came from, problems found while reading).  A file
that cannot be read at all raises ``SourceError`` (one line) and nothing else.

* ``.json``, ``.yaml``, ``.yml``: a mapping with a ``zones`` mapping of zone name to
  zone, as in a policy file (a whole policy file is a valid source).  A zone name given
  twice in one file is reported (JSON keeps the last one silently otherwise).
* anything else: one RFC 1035 zone file per file; its origin is ``$ORIGIN``, or the
  file name without ``.zone``/``.db``.  Its SOA, apex NS and other records become the
  zone; it has no policy hostnames (static answers only) and ``account_type`` given by
  the caller.  Problems found while parsing carry ``file:line``.
"""

import json
import os

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.zone
import dns.zonefile

from agility_runtime import policy
from agility_runtime.zonestore.errors import SourceError

DATA_SUFFIXES = (".json", ".yaml", ".yml")
ZONE_FILE_SUFFIXES = (".zone", ".db")
# nested deeper than a zone ever is (zones.NAME.records[i].data): refused before parsing
MAX_DEPTH = policy.MAX_JSON_DEPTH


class Item:
    """One zone from a source: ``name`` as written, ``zone`` data (None when it could not
    be read), ``where`` (file, and line for zone files), ``problems``."""

    __slots__ = ("name", "zone", "where", "problems")

    def __init__(self, name, zone, where, problems=()):
        self.name = name
        self.zone = zone
        self.where = where
        self.problems = list(problems)


def read(path, account_type="static"):
    """The zones of one source file (a list of ``Item``); ``SourceError`` if unreadable."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        raise SourceError("cannot read %s: %s" % (path, exc))
    if path.endswith(DATA_SUFFIXES):
        doc, duplicates = load_data(raw, path)
        return zones_of_document(doc, path, duplicates)
    return [zone_file_item(raw, path, account_type)]


def load_data(raw, path):
    """``(document, zone names given twice)`` of a YAML/JSON source; ``SourceError`` if it
    does not parse (YAML refuses duplicate keys itself, with their line)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError("%s is not UTF-8: %s" % (path, exc))
    if path.endswith(".json"):
        try:
            doc = policy.loads(text, path)
        except policy.PolicyError as exc:
            raise SourceError(str(exc))
        return doc, _duplicate_zones(text, doc)
    try:
        import yaml
    except ImportError:
        raise SourceError("%s: YAML sources need PyYAML (pip install 'agility-runtime[zonestore]')" % path)
    if policy._json_depth(text, MAX_DEPTH) > MAX_DEPTH:
        raise SourceError("%s nests deeper than %d levels" % (path, MAX_DEPTH))
    try:
        return yaml.load(text, Loader=_duplicate_checking_loader(yaml)), []
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise SourceError("%s is not valid YAML: %s" % (path, str(exc).replace("\n", " ")))


def _duplicate_zones(text, doc):
    """Zone names given twice in the JSON text's ``zones`` object (json.loads keeps the last)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("zones"), dict):
        return []
    dupes = []

    def pairs(items):
        seen = set()
        for key, _value in items:
            if key in seen:
                dupes.append(key)
            seen.add(key)
        return dict(items)
    json.loads(text, object_pairs_hook=pairs)
    return sorted(set(d for d in dupes if d in doc["zones"]))


def _duplicate_checking_loader(yaml):
    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        keys = set()
        for key_node, _value in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                if key in keys:
                    raise yaml.constructor.ConstructorError(
                        None, None, "duplicate key %r" % (key,), key_node.start_mark)
                keys.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, "unhashable key", key_node.start_mark)
        return loader.construct_mapping(node, deep=deep)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def zones_of_document(doc, path, duplicates=()):
    """``Item`` per zone of a parsed YAML/JSON document; ``SourceError`` without a ``zones``
    mapping.  A zone in ``duplicates`` is refused (which of its copies is meant is unknown)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("zones"), dict):
        raise SourceError("%s: needs a mapping with a 'zones' mapping of zone name to zone" % path)
    items = []
    for name, zone in doc["zones"].items():
        if name in duplicates:
            items.append(Item(name, None, path, [("zones[%s]" % name, "given more than once in this file")]))
        else:
            items.append(Item(name, zone, path))
    return items


def zone_file_item(raw, path, account_type):
    """One ``Item`` for an RFC 1035 zone file (problems carry ``file:line``)."""
    origin = _origin_from_file_name(path)
    label = origin.to_text() if origin is not None else os.path.basename(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Item(label, None, path, [("zones[%s]" % label, "%s is not UTF-8: %s" % (path, exc))])
    zone = dns.zone.Zone(origin, dns.rdataclass.IN, relativize=False) if origin is not None else None
    tok = dns.tokenizer.Tokenizer(text, path)
    try:
        if zone is None:
            # no origin from the file name: the first $ORIGIN names the zone
            zone = dns.zone.from_text(text, None, relativize=False, filename=path, check_origin=True)
        else:
            with zone.writer(True) as txn:
                dns.zonefile.Reader(tok, dns.rdataclass.IN, txn, allow_include=False).read()
            zone.check_origin()
    except dns.exception.SyntaxError as exc:
        return Item(label, None, path, [("zones[%s]" % label, str(exc))])
    except Exception as exc:  # noqa: BLE001 - any other dnspython refusal, placed where the reader stopped
        # raised once the record's line was read, end of line included: the line before
        filename, line = tok.where()
        where = "%s:%d" % (filename, max(1, line - 1))
        message = str(exc) or type(exc).__name__
        return Item(label, None, where, [("zones[%s]" % label, "%s: %s" % (where, message))])
    return _zone_data(zone, path, account_type)


def _origin_from_file_name(path):
    base = os.path.basename(path)
    for suffix in ZONE_FILE_SUFFIXES:
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    else:
        return None
    try:
        return dns.name.from_text(base)
    except dns.exception.DNSException:
        return None


def _zone_data(zone, path, account_type):
    """A dnspython zone in the policy file's zone shape."""
    origin = zone.origin
    name = origin.to_text().lower()
    problems = []
    soa = zone.get_rdataset(origin, dns.rdatatype.SOA)
    ns = zone.get_rdataset(origin, dns.rdatatype.NS)
    data = {"account_type": account_type, "hostnames": [], "records": []}
    if soa is not None:
        rd = soa[0]
        data["soa"] = {"mname": rd.mname.to_text(), "rname": rd.rname.to_text(), "serial": rd.serial,
                       "refresh": rd.refresh, "retry": rd.retry, "expire": rd.expire,
                       "minimum": rd.minimum, "ttl": soa.ttl}
    if ns is not None:
        data["ns"] = [rd.target.to_text() for rd in ns]
    for owner, node in sorted(zone.nodes.items()):
        for rdataset in node:
            rtype = dns.rdatatype.to_text(rdataset.rdtype)
            if owner == origin and rtype in ("SOA", "NS"):
                continue
            if rtype not in policy.STATIC_TYPES:
                problems.append(("zones[%s].records(%s %s)" % (name, owner, rtype),
                                 "type %s is not served (types: %s)" % (rtype, ", ".join(policy.STATIC_TYPES))))
                continue
            for rd in rdataset:
                data["records"].append({"name": owner.to_text().lower(), "type": rtype, "ttl": rdataset.ttl,
                                        "data": rd.to_text(origin=origin, relativize=False)})
    return Item(name, data, path, problems)
