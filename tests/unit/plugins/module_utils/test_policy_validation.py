# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every class of bad policy input is refused with the field it concerns."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.agility.addressing.plugins.module_utils import policy as P
from ansible_collections.agility.addressing.tests.unit.plugins.module_utils.policy_samples import good


def test_sample_is_valid():
    assert P.validate(good()) == []


def _set(path, value):
    def mutate(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return mutate


DELETE = object()

BAD = [
    ("overlapping pools", _set(["pools", "standby", "ipv4", "announced"], "198.18.16.0/21"),
     "pools.standby.ipv4.announced", "overlaps pool edge"),
    ("used outside announced", _set(["pools", "edge", "ipv4", "used"], "198.18.40.0/24"),
     "pools.edge.ipv4.used", "outside the announced prefix"),
    ("host bits", _set(["pools", "edge", "ipv4", "announced"], "198.18.16.1/20"),
     "pools.edge.ipv4.announced", "not a valid prefix"),
    ("wrong family", _set(["pools", "edge", "ipv6", "used"], "198.18.16.0/24"),
     "pools.edge.ipv6.used", "not an IPv6 prefix"),
    ("v4-mapped", _set(["pools", "edge", "ipv6"], {"announced": "::ffff:198.18.0.0/112", "used": "::ffff:198.18.0.0/120"}),
     "pools.edge.ipv6.announced", "v4-mapped"),
    ("unknown strategy", _set(["policies", 0, "strategy"], "fastest"),
     "policies[0](free).strategy", "unknown strategy 'fastest'"),
    ("ttl too high", _set(["policies", 0, "ttl"], 86401), "policies[0](free).ttl", "out of range"),
    ("ttl zero", _set(["policies", 0, "ttl"], 0), "policies[0](free).ttl", "out of range"),
    ("ttl not int", _set(["policies", 0, "ttl"], "300"), "policies[0](free).ttl", "must be an integer"),
    ("unknown pool", _set(["policies", 0, "pool"], "nope"), "policies[0](free).pool", "names no pool"),
    ("secondary same pool", _set(["policies", 1, "secondary_pool"], "edge"),
     "policies[1](diverse).secondary_pool", "must differ"),
    ("qtype", _set(["policies", 0, "match"], {"qtypes": ["MX"]}), "policies[0](free).match.qtypes[0]",
     "only A and AAAA"),
    ("bad client subnet", _set(["policies", 0, "match"], {"client_subnets": ["10.0.0.0/33"]}),
     "policies[0](free).match.client_subnets[0]", "not a prefix"),
    ("unknown match key", _set(["policies", 0, "match"], {"hostname": ["x"]}),
     "policies[0](free).match.hostname", "unknown key"),
    ("duplicate policy", _set(["policies", 1, "name"], "free"), "policies[1](free).name", "duplicate"),
    ("default names nothing", _set(["default_policy"], "nope"), "default_policy", "names no policy"),
    ("per_pop without index", _set(["pop"], {"name": "pop1"}), "policies[2](leak-watch).strategy",
     "needs pop.index"),
    ("per_pop index beyond prefix", _set(["pools", "edge", "ipv4", "used"], "198.18.16.0/32"),
     "pools.edge.ipv4.used", "needs 2"),
    ("overlapping slices", _set(["policies", 3, "slices"], [["a.dos.example."], ["A.dos.example"]]),
     "policies[3](bisect).slices[1]", "disjoint"),
    ("slices on random", _set(["policies", 0, "slices"], [["a."]]), "policies[0](free).slices",
     "only the partition strategy"),
    ("missing soa", _set(["zones", "example.com.", "soa"], DELETE), "zones[example.com.].soa", "is required"),
    ("bad record type", _set(["zones", "example.com.", "records"], [{"name": "x", "type": "BOGUS", "data": "1"}]),
     "zones[example.com.].records[0].type", "unsupported type"),
    ("bad A data", _set(["zones", "example.com.", "records"], [{"name": "x", "type": "A", "data": "2001:db8::1"}]),
     "zones[example.com.].records[0].data", "not an IPv4 address"),
    ("bad version", _set(["version"], 2), "version", "unsupported version 2"),
    ("unknown top key", _set(["polices"], []), "polices", "unknown key"),
    ("no pools", _set(["pools"], {}), "pools", "non-empty"),
    ("missing pop name", _set(["pop"], {"index": 1}), "pop.name", "is required"),
    ("cname loop", _set(["zones", "example.com.", "records"], [
        {"name": "a", "type": "CNAME", "data": "b"}, {"name": "b", "type": "CNAME", "data": "c.example.com."},
        {"name": "c", "type": "CNAME", "data": "a"}]),
     "zones[example.com.].records[0].data", "CNAME loop: a.example.com. -> b.example.com. -> c.example.com. -> a"),
    ("cname to itself", _set(["zones", "example.com.", "records"], [{"name": "a", "type": "CNAME", "data": "@"},
                                                                    {"name": "@", "type": "TXT", "data": "x"},
                                                                    {"name": "x", "type": "CNAME", "data": "x"}]),
     "zones[example.com.].records[2].data", "CNAME loop: x.example.com. -> x.example.com."),
    ("data below a cut", _set(["zones", "example.com.", "records"], [
        {"name": "sub", "type": "NS", "data": "ns.sub"}, {"name": "ns.sub", "type": "A", "data": "192.0.2.1"},
        {"name": "www.sub", "type": "TXT", "data": "x"}]),
     "zones[example.com.].records[2].name", "occluded by the delegation sub.example.com."),
    ("data at a cut", _set(["zones", "example.com.", "records"], [
        {"name": "sub", "type": "NS", "data": "ns.other.example."}, {"name": "sub", "type": "MX", "data": "1 x"}]),
     "zones[example.com.].records[1].name", "occluded by the delegation sub.example.com."),
    ("hostname below a cut", _set(["zones", "example.com."], {
        "account_type": "free", "soa": {"mname": "ns1.example.com.", "rname": "h.example.com.", "serial": 1},
        "ns": ["ns1.example.com."], "hostnames": ["www.sub"],
        "records": [{"name": "sub", "type": "NS", "data": "ns.other.example."}]}),
     "zones[example.com.].hostnames[0]", "occluded by the delegation sub.example.com."),
    ("DS away from a cut", _set(["zones", "example.com.", "records"], [
        {"name": "www", "type": "DS", "data": "1 13 2 " + "00" * 32}]),
     "zones[example.com.].records[0].type", "DS belongs at a delegation"),
    ("wildcard NS", _set(["zones", "example.com.", "records"], [{"name": "*.w", "type": "NS", "data": "ns1"}]),
     "zones[example.com.].records[0].name", "wildcard"),
]


@pytest.mark.parametrize("mutate, field, text", [pytest.param(m, f, t, id=i) for i, m, f, t in BAD])
def test_bad_input_names_the_field(mutate, field, text):
    doc = good()
    mutate(doc)
    problems = P.validate(doc)
    assert any(f == field and text in m for f, m in problems), problems
    with pytest.raises(P.PolicyError) as err:
        P.compile_policy(doc)
    assert field in str(err.value)


def test_not_a_mapping():
    assert P.validate([]) == [("(document)", "must be a mapping, got list")]


def test_load_file_reports_bad_json(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(P.PolicyError) as err:
        P.load_file(str(path))
    assert "not valid JSON" in str(err.value)


@pytest.mark.parametrize("raw, field", [
    ('{"format": 1, "format": 2}', "format"),
    ('{"zones": {"example.com": {"soa": {"serial": 1, "serial": 2}}}}', "zones.example.com.soa.serial"),
    ('{"policies": [{"name": "a"}, {"name": "b", "ttl": 1, "ttl": 2}]}', "policies[1].ttl"),
])
def test_duplicate_json_keys_refused(raw, field):
    """json.loads keeps the last of two equal keys silently; the policy file refuses them."""
    with pytest.raises(P.PolicyError) as err:
        P.loads(raw)
    assert err.value.problems == [(field, "appears twice in one JSON object (JSON would keep only the last silently)")]
    assert "\n" not in str(err.value)


def test_glue_below_a_cut_and_ds_at_it_are_valid():
    doc = good()
    doc["zones"]["example.com."]["records"] += [
        {"name": "sub", "type": "NS", "data": "ns.sub"}, {"name": "sub", "type": "DS", "data": "1 13 2 " + "00" * 32},
        {"name": "ns.sub", "type": "A", "data": "192.0.2.9"}, {"name": "ns.sub", "type": "AAAA", "data": "2001:db8::9"},
        {"name": "www", "type": "CNAME", "data": "ns1"}, {"name": "w2", "type": "CNAME", "data": "www"}]
    assert P.validate(doc) == []


def test_load_file_round_trip(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(P.dumps(good()))
    compiled = P.load_file(str(path))
    assert compiled.digest == P.digest(good())
    assert compiled.pop_name == "pop1"


def _serial(doc, zone="example.com."):
    return doc["zones"][zone]["soa"]["serial"]


def test_serial_auto_is_stable_without_change_and_increases_with_one():
    doc = good()
    doc["zones"]["example.com."]["soa"]["serial"] = "auto"
    assert P.validate(doc) == []
    first = P.resolve_serials(doc, None, now=1700000000)
    assert _serial(first) == 1700000000 and _serial(first, "pro.example.") == 7
    assert doc["zones"]["example.com."]["soa"]["serial"] == "auto"  # the input is not changed
    assert P.resolve_serials(doc, first, now=1700000500) == first   # same content: same serial
    doc["zones"]["example.com."]["records"].append({"name": "new", "type": "TXT", "data": "x"})
    second = P.resolve_serials(doc, first, now=1700000000)          # clock behind the last serial
    assert _serial(second) == 1700000001
    assert _serial(P.resolve_serials(doc, first, now=1800000000)) == 1800000000


def test_backwards_serial_is_refused():
    before = good()
    doc = good()
    doc["zones"]["pro.example."]["soa"]["serial"] = 6
    with pytest.raises(P.PolicyError) as err:
        P.resolve_serials(doc, before, now=0)
    assert err.value.problems == [("zones[pro.example.].soa.serial",
                                   "6 goes backwards from 7, the serial served now (RFC 1982); raise it or use 'auto'")]
    doc["zones"]["pro.example."]["soa"]["serial"] = 7 + 2 ** 31 - 1   # forward in serial arithmetic
    assert _serial(P.resolve_serials(doc, before, now=0), "pro.example.") == 7 + 2 ** 31 - 1
    doc["zones"]["pro.example."]["soa"]["serial"] = "auto"
    before["zones"]["pro.example."]["soa"]["serial"] = 2 ** 32 - 1  # auto wraps as RFC 1982 allows
    before["zones"]["pro.example."]["records"] = [{"name": "old", "type": "TXT", "data": "x"}]
    assert _serial(P.resolve_serials(doc, before, now=5), "pro.example.") == 5
