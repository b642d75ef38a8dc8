# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""reach_probe against the real agility-edge on loopback.

127.0.0.0/8 is routed locally, so an edge bound to 0.0.0.0 sees every address of
127.0.5.0/24 as sk_lookup would show it a pool: TCP local address and UDP replies
from the probed address (the module uses connected UDP sockets) are both checked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shutil
import subprocess

import pytest

from ansible_collections.agility.addressing.plugins.modules import reach_probe
from ansible_collections.agility.addressing.tests.unit.plugins.modules.probe_servers import (
    Edge, free_port,
)
from ansible_collections.agility.addressing.tests.unit.plugins.modules.module_harness import run_module


def run(args, check=False):
    return run_module(reach_probe.main, args, check=check)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI missing")
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "c.pem", d / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=www.example.com",
                    "-addext", "subjectAltName=DNS:www.example.com",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return str(crt), str(key)


@pytest.fixture(scope="module")
def edge(cert):
    port, tport, p6 = free_port("0.0.0.0"), free_port("0.0.0.0"), free_port("::1")
    e = Edge("lab1", ["tcp:0.0.0.0:%d" % port, "udp:0.0.0.0:%d" % port,
                      "tls:0.0.0.0:%d" % tport, "tcp:[::1]:%d" % p6, "udp:[::1]:%d" % p6],
             extra=["--tls-cert", cert[0], "--tls-key", cert[1]])
    e.port, e.tport, e.p6 = port, tport, p6
    yield e
    e.stop()


def closed_port():
    return free_port("127.0.0.1")


# (id, args builder, expect failed, checks)
CASES = [
    ("prefix-tcp-udp", lambda e, c: dict(prefix="127.0.5.0/24", count=6, seed=1, ports=[e.port],
                                         protocols=["tcp", "udp"], host="www.example.com",
                                         expect_pop="lab1", expect_local=True),
     False, dict(total=12, successes=12, pops=["lab1"])),
    ("addresses-v6", lambda e, c: dict(addresses=["::1"], ports=[e.p6], protocols=["tcp", "udp"],
                                       expect_local=True),
     False, dict(total=2, successes=2)),
    ("tls-sni", lambda e, c: dict(addresses=["127.0.0.1"], ports=[e.tport], tls=True,
                                  host="www.example.com", validate_certs=True, ca_path=c[0]),
     False, dict(successes=1)),
    ("tls-connect-only", lambda e, c: dict(addresses=["127.0.0.9"], ports=[e.tport], tls=True, http=False),
     False, dict(successes=1)),
    ("wrong-pop", lambda e, c: dict(addresses=["127.0.0.1"], ports=[e.port], expect_pop="other"),
     True, dict(successes=0, pops=["lab1"])),
    ("closed-port-tcp-udp", lambda e, c: dict(addresses=["127.0.0.1"], ports=[closed_port()],
                                              protocols=["tcp", "udp"], timeout=0.6),
     True, dict(successes=0, failures=2)),
    ("min-success-tolerates", lambda e, c: dict(addresses=["127.0.0.1"], ports=[e.port, closed_port()],
                                                min_success=1, timeout=0.6),
     False, dict(successes=1, failures=1)),
    ("tls-on-plain-port-fails", lambda e, c: dict(addresses=["127.0.0.1"], ports=[e.port], tls=True,
                                                  timeout=1),
     True, dict(successes=0)),
    ("single-address-prefix", lambda e, c: dict(prefix="127.0.6.1/32", count=5, ports=[e.port],
                                                protocols=["udp"]),
     False, dict(total=1, successes=1)),
    # a health gate in one run: IPv4 plain over TCP and UDP, IPv6, and TLS; the sets' own
    # options over the module's (host, expect_pop, expect_local come from the module)
    ("probe-sets-in-one-run", lambda e, c: dict(
        host="www.example.com", expect_pop="lab1", expect_local=True, protocols=["udp"],
        probes=[{"prefix": "127.0.8.0/24", "count": 3, "ports": [e.port], "protocols": ["tcp", "udp"]},
                {"addresses": ["::1"], "ports": [e.p6]},
                {"addresses": ["127.0.0.1"], "ports": [e.tport], "tls": True, "protocols": ["tcp"]}]),
     False, dict(total=8, successes=8, pops=["lab1"])),
    ("probe-set-prefixes", lambda e, c: dict(
        expect_local=True, probes=[{"prefixes": ["127.0.9.0/24", "127.0.10.0/30"], "count": 2, "ports": [e.port],
                                    "protocols": ["udp"]}]),
     False, dict(total=4, successes=4)),
    ("probe-set-failing-counts", lambda e, c: dict(
        probes=[{"addresses": ["127.0.0.1"], "ports": [e.port]},
                {"addresses": ["127.0.0.1"], "ports": [e.port], "tls": True}], timeout=1),
     True, dict(total=2, successes=1)),
]


@pytest.mark.parametrize("build,failed,checks", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_reach_probe(edge, cert, build, failed, checks, check_mode):
    result = run(build(edge, cert), check=check_mode)
    assert result["changed"] is False
    assert bool(result.get("failed")) is failed, result.get("msg")
    for key, want in checks.items():
        assert result[key] == want, (key, result[key], result["targets"])
    assert result["successes"] + result["failures"] == result["total"] == len(result["targets"])
    for t in result["targets"]:
        if t["ok"] and t["response"]:
            assert t["pop"] == "lab1"


def test_random_addresses_are_distinct_and_in_prefix(edge):
    result = run(dict(prefix="127.0.7.0/28", count=10, ports=[edge.port], protocols=["udp"],
                      expect_local=True))
    addrs = [t["address"] for t in result["targets"]]
    assert len(set(addrs)) == 10
    assert all(a.startswith("127.0.7.") and 0 <= int(a.rsplit(".", 1)[1]) < 16 for a in addrs)
    for t in result["targets"]:
        assert t["response"]["local"] == "%s:%d" % (t["address"], edge.port)


def test_tls_response_carries_sni_and_host(edge, cert):
    result = run(dict(addresses=["127.0.0.1"], ports=[edge.tport], tls=True, host="www.example.com",
                      server_name="sni.example.net"))
    resp = result["targets"][0]["response"]
    assert resp["sni"] == "sni.example.net" and resp["host"] == "www.example.com"


@pytest.mark.parametrize("args,needle", [
    (dict(), "one of the following is required"),
    (dict(prefix="127.0.0.0/24", addresses=["127.0.0.1"]), "mutually exclusive"),
    (dict(prefix="not/a/prefix"), "bad prefix"),
    (dict(addresses=["300.1.1.1"]), "bad prefix or address"),
    (dict(addresses=["127.0.0.1"], ports=[70000]), "ports must be"),
    (dict(addresses=["127.0.0.1"], protocols=["sctp"]), "value of protocols must be one or more of"),
    (dict(addresses=["127.0.0.1"], host="a\r\nX: y"), "line breaks"),
    (dict(probes=[]), "probes must not be empty"),
    (dict(probes=[{"ports": [80]}]), "probes[0]: needs prefix or addresses"),
    (dict(probes=[{"prefix": "127.0.0.0/24"}, {"prefix": "nope"}]), "probes[1]: bad prefix"),
    (dict(probes=[{"addresses": ["127.0.0.1"], "ports": [0]}]), "probes[0]: ports must be"),
    (dict(probes=[{"addresses": ["127.0.0.1"], "colour": "red"}]), "colour"),
    (dict(probes=[{"prefix": "127.0.0.0/24", "prefixes": ["127.0.1.0/24"]}]), "probes[0]: prefix, prefixes and"),
    (dict(probes=[{"prefixes": ["127.0.0.0/24", "bad"]}]), "probes[0].prefixes[1]: bad prefix"),
])
def test_bad_arguments_fail_cleanly(args, needle):
    result = run(args)
    assert result["failed"] and needle in result["msg"], result["msg"]
