"""Fuzz the compiler's input: whatever the zone data, reading a source raises SourceError
and nothing else, and checking a zone returns problems (never an exception, never the
"internal" problem that would mean a rule let something through to dnspython)."""

import json
import re

import dns.name
from hypothesis import given, settings, strategies as st

from agility_runtime import policy
from agility_runtime.dns import state
from agility_runtime.zonestore import rules, sources
from agility_runtime.zonestore.errors import SourceError

KEYS = list(policy.ZONE_KEYS + policy.SOA_KEYS + policy.RECORD_KEYS) + ["zones", "x"]
NAMES = st.one_of(st.sampled_from(["@", "www", "a.b", "*", "x.example.", "example.", "", ".", "-a", "a" * 64]),
                  st.text(max_size=12))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 33, 2 ** 33), st.floats(allow_nan=False),
                    st.text(max_size=20), NAMES)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)),
                                                 inner, max_size=5)), max_leaves=20)
RDATA = st.one_of(st.sampled_from(["192.0.2.1", "2001:db8::1", "10 mail", "mail", '"t"', "0 issue \"ca\"",
                                   "1 . alpn=h2", "10 5 443 target", "1 2 3", "\\# 2 0000", "a" * 300]),
                  st.text(max_size=40))
RECORD = st.fixed_dictionaries({"name": NAMES, "type": st.one_of(st.sampled_from(policy.STATIC_TYPES),
                                                                 st.text(max_size=5)),
                                "data": RDATA}, optional={"ttl": st.integers(-5, 100000)})
ZONE = st.fixed_dictionaries(
    {"account_type": st.one_of(st.just("free"), SCALARS),
     "soa": st.one_of(st.fixed_dictionaries({"mname": NAMES, "rname": NAMES, "serial": st.integers(-1, 2 ** 32)}),
                      VALUES),
     "ns": st.one_of(st.lists(NAMES, max_size=3), VALUES)},
    optional={"records": st.one_of(st.lists(RECORD, max_size=5), VALUES),
              "hostnames": st.one_of(st.lists(NAMES, max_size=4), VALUES)})
ZONE_NAME = st.one_of(NAMES, SCALARS)


def _check(name, zone):
    key, problems = rules.check_zone(name, zone)
    assert isinstance(problems, list)
    assert (key is None) == bool(problems)
    assert not any("internal:" in m for _f, m in problems), problems


@settings(max_examples=200)
@given(ZONE_NAME, st.one_of(ZONE, VALUES))
def test_check_zone_only_reports(name, zone):
    _check(name, zone)


@settings(max_examples=100)
@given(st.one_of(st.binary(max_size=200), VALUES.map(lambda v: json.dumps(v).encode()),
                 st.dictionaries(NAMES, ZONE, max_size=3).map(lambda z: json.dumps({"zones": z}).encode())),
       st.sampled_from(["src.json", "src.yaml"]))
def test_data_sources_raise_only_source_error(raw, path):
    try:
        doc, duplicates = sources.load_data(raw, path)
        items = sources.zones_of_document(doc, path, duplicates)
    except SourceError as exc:
        assert "\n" not in str(exc)
        return
    for item in items:
        if item.zone is not None and not item.problems:
            _check(item.name, item.zone)


LINES = st.sampled_from(["$TTL 300", "@ IN SOA ns1 h 1 2 3 4 5", "@ NS ns1", "www A 192.0.2.1", "www CNAME x",
                         "$ORIGIN other.", "x MX ten y", "* TXT \"w\"", "(", ")", "$INCLUDE /etc/passwd",
                         "sub NS ns.sub", "x DNSKEY 256 3 8 AwEAAQ==", "@ 99999999 TXT big", ";c", "\\"])


@settings(max_examples=150)
@given(st.lists(st.one_of(LINES, st.text(max_size=20)), max_size=8))
def test_zone_files_only_report(lines):
    item = sources.zone_file_item("\n".join(lines).encode("utf-8", "surrogatepass"), "fuzz.example.zone", "static")
    assert isinstance(item.problems, list)
    if item.zone is not None and not item.problems:
        _check(item.name, item.zone)


LABEL_RULE = re.compile(r"^(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)\Z")


@settings(max_examples=300)
@given(st.lists(st.one_of(st.text(alphabet="aZ9_-*.\n\u00e9", max_size=6),
                          st.integers(60, 66).map(lambda n: "a" * n)), max_size=6).map(".".join),
       st.booleans())
def test_name_rule_is_the_label_rule(name, dot):
    """policy._valid_name matches the whole name at once (fast for millions of hostnames); it
    must say what the per-label rule says, and text_wire what dnspython's wire form says."""
    name = name + "." if dot else name
    labels = (name[:-1] if name.endswith(".") else name).split(".")
    per_label = len(name) <= 254 and all(LABEL_RULE.match(label) for label in labels)
    assert policy._valid_name(name) == per_label
    if per_label and name not in ("", ".") and policy._valid_name(policy.normalise_name(name)):
        absolute = policy.normalise_name(name)  # the model checks names in this form
        assert state.text_wire(absolute) == state.name_wire(dns.name.from_text(absolute))
