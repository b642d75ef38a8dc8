#!/usr/bin/env python
"""Fleet rendering on the controller: render_policies at N PoPs x P pools (issue 14, finding 6).

Generates an inventory (N PoPs, P pools each with an IPv4 /24 and an IPv6 /48, one policy per
pool, 10 zones), then runs playbooks/render_policies.yml (one policy_files task for the fleet)
twice: cold (every file written) and warm (nothing changes). It prints wall time, the peak
total RSS of ansible-playbook and its workers (sampled every 50 ms), and whether both runs
produced byte-identical files. As the reference in the same run, it renders a smaller fleet
the old way, one policy_file module run per PoP, and prints that per-PoP cost and the ratio.

    .venv/bin/python benchmarks/render_bench.py                # 1000 PoPs x 50 pools; reference 50 PoPs
    .venv/bin/python benchmarks/render_bench.py --pops 200 --reference-pops 20
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOK = os.path.join(ROOT, "playbooks", "render_policies.yml")
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

# the old way: one policy_file module run per PoP (render_policies.yml before policy_files)
PER_HOST_PLAY = """
- hosts: pops
  gather_facts: false
  tasks:
    - name: Render the policy file of {{ inventory_hostname }}
      agility.addressing.policy_file:
        path: "%(out)s/{{ inventory_hostname }}.json"
        mode: "0640"
        policy: >-
          {{ addressing_pools | agility.addressing.pop_policy(
               inventory_hostname, addressing_pop_index | default(none),
               policies=addressing_policies | default([]),
               zones=addressing_zones | default({}),
               default_policy=addressing_default_policy | default(none),
               stages=addressing_stages | default({}),
               host=inventory_hostname) }}
      delegate_to: localhost
"""


def inventory(directory, pops, pools):
    pool_map = {}
    policies = []
    for i in range(pools):
        name = "pool%02d" % i
        pool_map[name] = {"ipv4": {"announced": "198.18.%d.0/24" % i},
                          "ipv6": {"announced": "2001:db8:%x::/48" % (0x100 + i)},
                          "stage": ("wide", "narrow", "single")[i % 3]}
        policies.append({"name": "pol%02d" % i, "match": {"account_types": ["acct%02d" % i]},
                         "pool": name, "ttl": 30})
    zones = {}
    for z in range(10):
        zones["zone%d.example." % z] = {
            "account_type": "acct%02d" % (z % pools),
            "soa": {"mname": "ns1.zone%d.example." % z, "rname": "hostmaster.zone%d.example." % z,
                    "serial": 2026113001},
            "ns": ["ns1.zone%d.example." % z]}
    os.makedirs(os.path.join(directory, "group_vars", "pops"))
    with open(os.path.join(directory, "group_vars", "pops", "addressing.yml"), "w") as handle:
        yaml.safe_dump({"addressing_pools": pool_map, "addressing_policies": policies,
                        "addressing_zones": zones}, handle)
    hosts = {"pop%04d" % i: {"addressing_pop_index": i % 256, "ansible_connection": "local",
                             "ansible_python_interpreter": sys.executable} for i in range(pops)}
    with open(os.path.join(directory, "hosts.yml"), "w") as handle:
        yaml.safe_dump({"pops": {"hosts": hosts}}, handle)


def tree_rss(pid):
    """Total resident KiB of pid and its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (IOError, OSError, IndexError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open("/proc/%d/status" % p) as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (IOError, OSError):
            pass
    return total


def play(args, cwd):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"),
               ANSIBLE_NOCOLOR="1")
    start = time.monotonic()
    proc = subprocess.Popen([PLAYBOOK_BIN] + args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.05)
    sampler = threading.Thread(target=sample)
    sampler.start()
    out = proc.communicate()[0]
    sampler.join()
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("ansible-playbook failed (rc %d):\n%s" % (proc.returncode, out[-3000:]))
    return took, peak[0] / 1024.0


def digest_dir(path):
    h = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        with open(os.path.join(path, name), "rb") as handle:
            h.update(name.encode() + b"\0" + handle.read())
    return h.hexdigest()[:16], len(os.listdir(path))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pops", type=int, default=1000)
    ap.add_argument("--pools", type=int, default=50)
    ap.add_argument("--reference-pops", type=int, default=50,
                    help="fleet size for the old per-PoP module run (0 to skip)")
    ap.add_argument("--forks", type=int, default=5, help="ansible forks (the default is 5)")
    a = ap.parse_args()
    if not 1 <= a.pools <= 256:
        ap.error("--pools must be 1..256 (one 198.18.N.0/24 each)")
    work = tempfile.mkdtemp(prefix="render-bench-")
    try:
        inv = os.path.join(work, "inv")
        inventory(inv, a.pops, a.pools)
        forks = ["--forks", str(a.forks)]
        out = os.path.join(work, "out")
        cold, cold_rss = play(["-i", inv, PLAYBOOK, "-e", "addressing_output_dir=" + out] + forks, work)
        first = digest_dir(os.path.join(out, "policies"))
        warm, warm_rss = play(["-i", inv, PLAYBOOK, "-e", "addressing_output_dir=" + out] + forks, work)
        out2 = os.path.join(work, "out2")
        play(["-i", inv, PLAYBOOK, "-e", "addressing_output_dir=" + out2] + forks, work)
        second = digest_dir(os.path.join(out2, "policies"))
        print("fleet: %d PoPs x %d pools, %d files, forks %d" % (a.pops, a.pools, first[1], a.forks))
        print("render_policies (policy_files), cold: %.1f s, peak RSS %.0f MiB" % (cold, cold_rss))
        print("render_policies (policy_files), warm (nothing changes): %.1f s, peak RSS %.0f MiB" % (warm, warm_rss))
        print("byte-identical across runs: %s (%s)" % (first == second, first[0]))
        if a.reference_pops:
            ref_inv = os.path.join(work, "ref-inv")
            inventory(ref_inv, a.reference_pops, a.pools)
            ref_play = os.path.join(work, "per_host.yml")
            ref_out = os.path.join(work, "ref-out")
            os.makedirs(ref_out)
            with open(ref_play, "w") as handle:
                handle.write(PER_HOST_PLAY % {"out": ref_out})
            ref, ref_rss = play(["-i", ref_inv, ref_play] + forks, work)
            new_ref_out = os.path.join(work, "ref-new")
            play(["-i", ref_inv, PLAYBOOK, "-e", "addressing_output_dir=" + new_ref_out] + forks, work)
            same = digest_dir(ref_out) == digest_dir(os.path.join(new_ref_out, "policies"))
            per_pop = ref / a.reference_pops
            print("reference, one policy_file run per PoP: %d PoPs in %.1f s (%.0f ms per PoP), peak RSS %.0f MiB"
                  % (a.reference_pops, ref, per_pop * 1000, ref_rss))
            print("reference files byte-identical to policy_files': %s" % same)
            print("per-PoP cost ratio, reference / policy_files cold: %.1fx" % (per_pop / (cold / a.pops)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
