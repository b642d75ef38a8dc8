# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sk_lookup_bindings: idempotence, check mode, diff, ordering, refusal of bad input.

agility-lookup is replaced by a fake that keeps the binding set in memory and
answers the subcommands the module uses with the CLI's JSON shapes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.agility.addressing.plugins.modules import sk_lookup_bindings as M
from ansible_collections.agility.addressing.tests.unit.plugins.modules.module_harness import run_module


class FakeLookup(object):
    def __init__(self, loaded=True, bindings=None):
        self.loaded = loaded
        self.bindings = list(bindings or [])
        self.calls = []

    def __call__(self, module, args, **kw):
        assert args[0] == "/usr/bin/agility-lookup"
        args = list(args[1:])
        while args and args[0] in ("--bpffs", "--netns"):
            args = args[2:]
        self.calls.append(args)
        cmd = args[0]
        if cmd == "bindings":
            if not self.loaded:
                return 1, "", "agility-lookup: error: sk_lookup dispatcher not loaded in this network namespace"
            return 0, json.dumps({"bindings": self.bindings}), ""
        if cmd == "load":
            changed = not self.loaded
            self.loaded = True
            return 0, json.dumps({"changed": changed}), ""
        if cmd == "load-bindings":
            with open(args[1]) as f:
                desired = json.load(f)["bindings"]
            steps = M.plan_steps(M.from_host(self.bindings), M.from_host(desired))
            before, self.bindings = self.bindings, desired
            return 0, json.dumps({"changed": bool(steps), "steps": steps, "before": before, "after": desired}), ""
        raise AssertionError("unexpected command %r" % args)


def run(monkeypatch, fake, args, check=False, diff=False):
    def run_command(module, cmd, **kw):
        return fake(module, cmd, **kw)
    monkeypatch.setattr(M.AnsibleModule, "run_command", run_command)
    args = dict({"executable": "/usr/bin/agility-lookup"}, **args)
    return run_module(M.main, args, check=check, diff=diff)


def B(proto, prefix, port, label):
    return {"protocol": proto, "prefix": prefix, "port": port, "label": label}


WEB = B("tcp", "198.18.0.0/20", 0, "web")
WEB443 = B("tcp", "198.18.0.0/20", 443, "tls")
HOST = B("tcp", "198.18.1.7/32", 0, "host")
DNS6 = B("udp", "2001:db8:1::/48", 53, "dns")

# (name, loaded, current, args, changed, expected bindings after, expected ops)
CASES = [
    ("fresh host loads and binds", False, [], {"bindings": [WEB, DNS6]}, True, [WEB, DNS6],
     ["put", "put"]),
    ("same set is unchanged", True, [WEB, DNS6], {"bindings": [DNS6, WEB]}, False, [WEB, DNS6], []),
    ("relabel is a put", True, [WEB], {"bindings": [dict(WEB, label="web2")]}, True,
     [dict(WEB, label="web2")], ["put"]),
    ("replace: add specific first, remove wide last", True, [WEB],
     {"bindings": [HOST, WEB443]}, True, [WEB443, HOST], ["put", "put", "delete"]),
    ("absent removes listed", True, [WEB, HOST, DNS6],
     {"state": "absent", "bindings": [dict(HOST, label="whatever")]}, True, [WEB, DNS6], ["delete"]),
    ("absent with empty list removes all", True, [WEB, HOST], {"state": "absent"}, True, [],
     ["delete", "delete"]),
    ("absent on unloaded host is a no-op", False, [], {"state": "absent"}, False, [], []),
    ("port defaults to any", True, [], {"bindings": [{"protocol": "tcp", "prefix": "198.18.0.0/20",
                                                      "label": "web"}]}, True, [WEB], ["put"]),
    ("prefix is normalised", True, [DNS6], {"bindings": [B("udp", "2001:DB8:1:0::/48", 53, "dns")]},
     False, [DNS6], []),
]


@pytest.mark.parametrize("name,loaded,current,args,changed,after,ops", CASES, ids=[c[0] for c in CASES])
def test_apply(monkeypatch, name, loaded, current, args, changed, after, ops):
    fake = FakeLookup(loaded, current)
    res = run(monkeypatch, fake, args)
    assert res["changed"] is changed
    assert res["bindings"] == M.as_dicts(M.from_host(after))
    assert [s["op"] for s in res["steps"]] == ops
    assert fake.bindings == (M.as_dicts(M.from_host(after)) if changed and ops else current)
    # Second run: idempotent.
    res2 = run(monkeypatch, fake, args)
    assert res2["changed"] is False and res2["steps"] == []


@pytest.mark.parametrize("name,loaded,current,args,changed,after,ops", CASES, ids=[c[0] for c in CASES])
def test_check_mode_changes_nothing(monkeypatch, name, loaded, current, args, changed, after, ops):
    fake = FakeLookup(loaded, current)
    res = run(monkeypatch, fake, args, check=True, diff=True)
    assert res["changed"] is changed
    assert res["bindings"] == M.as_dicts(M.from_host(after))
    assert [s["op"] for s in res["steps"]] == ops
    assert fake.loaded is loaded and fake.bindings == current
    assert [c[0] for c in fake.calls] == ["bindings"]
    assert res["diff"]["after"] == M.render(M.from_host(after))


def test_diff_text(monkeypatch):
    res = run(monkeypatch, FakeLookup(True, [WEB]), {"bindings": [WEB, HOST]}, diff=True)
    assert res["diff"]["before"] == "tcp 198.18.0.0/20 port any -> web\n"
    assert res["diff"]["after"] == "tcp 198.18.0.0/20 port any -> web\ntcp 198.18.1.7/32 port any -> host\n"


def test_load_passes_group_bpffs_netns(monkeypatch):
    fake = FakeLookup(False, [])
    run(monkeypatch, fake, {"bindings": [WEB], "group": "metrics", "bpffs": "/sys/fs/bpf",
                            "netns": "/run/netns/edge"})
    assert fake.calls[1] == ["load", "--json", "--group", "metrics"]


def test_not_loaded_and_load_false_fails(monkeypatch):
    res = run(monkeypatch, FakeLookup(False, []), {"bindings": [WEB], "load": False})
    assert res["failed"] and "not loaded" in res["msg"]


BAD = [
    (B("tcp", "::ffff:198.18.0.0/112", 0, "x"), "IPv4-mapped"),
    (B("tcp", "::/0", 0, "x"), "IPv4-mapped"),
    (B("tcp", "198.18.0.1/24", 0, "x"), "host bits"),
    (B("tcp", "not-a-prefix", 0, "x"), "invalid prefix"),
    (B("tcp", "198.18.0.0/24", 65536, "x"), "invalid port"),
    (B("tcp", "::/64", 0, "x"), "IPv4-mapped"),
    (B("tcp", "198.18.0.0/24", 0, "web\n"), "invalid label"),
    (B("tcp", "198.18.0.0/24", 0, "web\x00"), "invalid label"),
    (B("tcp", "198.18.0.0/24", 0, "bad label"), "invalid label"),
    (B("tcp", "198.18.0.0/24", 0, "x" * 64), "invalid label"),
]


@pytest.mark.parametrize("binding,text", BAD, ids=[b[1] + ":" + b[0]["prefix"] for b in BAD])
def test_bad_binding_fails_before_touching_host(monkeypatch, binding, text):
    fake = FakeLookup(True, [WEB])
    res = run(monkeypatch, fake, {"bindings": [HOST, binding]})
    assert res["failed"] and text in res["msg"] and res["msg"].startswith("bindings[1]")
    assert fake.calls == [] and fake.bindings == [WEB]


def test_conflicting_labels_for_one_key_fail(monkeypatch):
    res = run(monkeypatch, FakeLookup(True, []), {"bindings": [WEB, dict(WEB, label="other")]})
    assert res["failed"] and "already bound" in res["msg"]


def test_cli_failure_is_reported(monkeypatch):
    def broken(module, args, **kw):
        return 1, "", "agility-lookup: error: permission denied reading /sys/fs/bpf/agility/1"
    res = run(monkeypatch, broken, {"bindings": [WEB]})
    assert res["failed"] and "permission denied" in res["msg"]
