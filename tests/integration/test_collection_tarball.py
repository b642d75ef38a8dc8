# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as a user gets it: built into a tarball, installed, used.

Builds with ``ansible-galaxy collection build`` (after the rest of the suite has
left its caches, venvs and compiled objects in the checkout), installs the
tarball into an empty collections path, then runs ``ansible-doc`` and the
``render_policies`` playbook from the installed copy, outside this checkout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)


def _run(argv, cwd, env, timeout=120):
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, timeout=timeout)
    return proc.returncode, proc.stdout


def _clean_env(collections_path):
    """No trace of the checkout: its ansible.cfg, collections path and PYTHONPATH are not used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_HOME=os.path.join(collections_path, "..", "home"))
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("tarball")
    build = work / "build"
    collections = work / "collections"
    collections.mkdir()
    env = _clean_env(str(collections))
    # the suite's leftovers, present in any checkout that ran tests/run (the finding)
    leftovers = [os.path.join(ROOT, ".hypothesis", "examples", "leftover"),
                 os.path.join(ROOT, "tests", "unit", "__pycache__", "leftover.pyc"),
                 os.path.join(ROOT, "runtime", "src", "leftover.egg-info", "PKG-INFO"),
                 os.path.join(ROOT, "runtime", "src", "agility_runtime", "leftover.bpf.o")]
    made = []  # files, and the directories made for them, to remove afterwards
    for path in leftovers:
        if os.path.exists(path):
            continue
        top = os.path.dirname(path)
        while not os.path.exists(os.path.dirname(top)):
            top = os.path.dirname(top)
        new_dir = None if os.path.exists(top) else top
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("left by a test run\n")
        made.append((path, new_dir))
    link = os.path.join(ROOT, "collections", "ansible_collections", "agility", "addressing")
    made_link = not os.path.lexists(link)
    if made_link:
        os.makedirs(os.path.dirname(link))
        os.symlink("../../../..", link)
    try:
        rc, out = _run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", ROOT,
                        "--output-path", str(build)], cwd=str(work), env=env)
    finally:
        for path, new_dir in made:
            if new_dir:
                shutil.rmtree(new_dir)
            else:
                os.unlink(path)
        if made_link:
            shutil.rmtree(os.path.join(ROOT, "collections"))
    assert rc == 0, out
    tarballs = list(build.glob("agility-addressing-*.tar.gz"))
    assert len(tarballs) == 1, out
    rc, out = _run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", str(tarballs[0]),
                    "-p", str(collections)], cwd=str(work), env=env)
    assert rc == 0, out
    home = collections / "ansible_collections" / "agility" / "addressing"
    assert (home / "MANIFEST.json").is_file(), out
    return {"work": work, "tarball": tarballs[0], "home": home, "env": env}


def _git_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    return set(out.splitlines())


def test_tarball_holds_only_what_git_would_track(installed):
    with tarfile.open(str(installed["tarball"])) as tar:
        members = tar.getmembers()
    # a symlink is kept only when git tracks it and it points inside the collection
    names = set(m.name for m in members)
    for link in (m for m in members if m.issym() or m.islnk()):
        target = os.path.normpath(os.path.join(os.path.dirname(link.name), link.linkname))
        assert target in names, (link.name, link.linkname)
    files = set(m.name for m in members if not m.isdir()) - {"MANIFEST.json", "FILES.json"}
    stray = sorted(files - _git_files())
    assert stray == []
    for needed in ("LICENSE", "plugins/modules/policy_file.py", "playbooks/render_policies.yml",
                   "roles/addressing_dns/meta/argument_specs.yml", "runtime/pyproject.toml"):
        assert needed in files


def test_ansible_doc_from_installed_copy(installed):
    rc, out = _run([os.path.join(BIN, "ansible-doc"), "agility.addressing.policy_file"],
                   cwd=str(installed["work"]), env=installed["env"])
    assert rc == 0, out
    assert "agility.addressing.policy_file" in out
    assert str(installed["home"]) in out  # documented from the installed copy, not the checkout


def _tree(path):
    return sorted(os.path.relpath(os.path.join(d, f), str(path)) for d, dummy, fs in os.walk(str(path)) for f in fs)


def test_render_policies_from_installed_copy(installed, tmp_path):
    inventory = tmp_path / "inventory"
    shutil.copytree(os.path.join(ROOT, "inventories", "lab"), str(inventory))
    before = _tree(installed["home"])
    rc, out = _run([os.path.join(BIN, "ansible-playbook"), "-i", str(inventory),
                    "agility.addressing.render_policies"], cwd=str(tmp_path), env=installed["env"], timeout=180)
    assert rc == 0, out
    assert "failed=0" in out
    # outputs land beside the inventory by default, never inside the installed collection
    assert _tree(installed["home"]) == before
    rendered = sorted((inventory / "addressing-output" / "policies").glob("*.json"))
    assert [p.name for p in rendered] == ["pop1.json", "pop2.json", "pop3.json"]
    doc = json.loads(rendered[0].read_text())
    assert doc["pop"]["name"] == "pop1" and len(doc["policies"]) == 4


def test_runtime_wheels_build_from_installed_copy(installed, tmp_path):
    """Issue 14, finding 2: the runtime role's controller build worked only from a checkout where
    `pip install -e runtime` had run, and wrote into the collection. Now it builds from a copy."""
    import yaml
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"pop1": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Runtime role, controller side", "hosts": "pop1", "gather_facts": False,
        "roles": ["agility.addressing.addressing_runtime"]}]))
    before = _tree(installed["home"])
    rc, out = _run([os.path.join(BIN, "ansible-playbook"), "-i", "hosts.yml", "play.yml", "--tags", "preflight"],
                   cwd=str(tmp_path), env=installed["env"], timeout=300)
    assert rc == 0, out
    assert _tree(installed["home"]) == before  # nothing written into the installed collection
    built = list((tmp_path / "addressing-output" / "wheels").glob("*/agility_runtime-*.whl"))
    assert len(built) == 1, out
    with __import__("zipfile").ZipFile(str(built[0])) as wheel:
        names = wheel.namelist()
    assert "agility_runtime/sklookup/bpf/dispatcher.bpf.o" in names and "agility_runtime/policy.py" in names
