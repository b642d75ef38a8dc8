#!/usr/bin/env bash
# Check roles/addressing_dns's agility-dns.service on this host's systemd (not in CI; needs root):
# render the unit, boot a private systemd (PID 1 of new pid/mount/uts namespaces, only this
# unit loaded), then start it on loopback port 53 as the unprivileged user, query it, reload a
# good file (exit 0), a bad and a 100,000-deep file (reload fails, answers unchanged), kill a
# worker, print `systemd-analyze security`, stop, clean up. Usage: tests/tools/dns_unit_check.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=$root/.venv/bin/python
user=agility-dns
addr=127.0.0.153                    # port 53 on a loopback address of its own
work=$(mktemp -d /opt/agility-unit-check.XXXXXX)   # not /tmp: the unit has PrivateTmp=yes
chmod 755 "$work"
made_user=
sd_pid=

# cgroups the private systemd creates (it runs no other unit); removed again if new
new_cgroups=$(for d in /sys/fs/cgroup/*/init.scope /sys/fs/cgroup/*/system.slice /sys/fs/cgroup/init.scope \
              /sys/fs/cgroup/system.slice; do [ -e "$d" ] || echo "$d"; done)

cleanup() {
    # SIGTERM would make a systemd PID 1 re-execute itself; SIGKILL ends the namespace
    [ -n "$sd_pid" ] && kill -KILL "$sd_pid" 2>/dev/null && sleep 1
    for d in $new_cgroups; do
        [ -d "$d" ] && { find "$d" -mindepth 1 -depth -type d -exec rmdir {} \; ; rmdir "$d"; } 2>/dev/null
    done
    [ -n "$made_user" ] && userdel "$user"
    rm -rf "$work"
}
trap cleanup EXIT
if ! id "$user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
    made_user=1
fi

/usr/bin/python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$root/runtime" 2>&1 | grep -v WARNING || true
rm -rf "$root/runtime/build"
mkdir -p "$work/etc" "$work/units/agility-dns.service.d"
"$py" - "$root" "$work" "$user" "$addr" <<'PY'
import sys, jinja2, yaml
root, work, user, addr = sys.argv[1:]
sys.path.insert(0, root + "/tests/runtime/dns")
from dns_helpers import policy_doc, write_doc
good, bad = policy_doc(), policy_doc()
good["policies"][-1]["ttl"] = 77
bad["zones"]["pro.example"]["hostnames"] = ["a..b"]
write_doc(work + "/etc/policy.json", policy_doc())
write_doc(work + "/etc/good.json", good)
write_doc(work + "/etc/bad.json", bad)
open(work + "/etc/deep.json", "w").write("[" * 100000 + "]" * 100000)
v = yaml.safe_load(open(root + "/roles/addressing_dns/defaults/main.yml"))
v.update(ansible_managed="dns_unit_check", addressing_dns_venv=work + "/venv", addressing_dns_user=user,
         addressing_dns_policy_path=work + "/etc/policy.json", addressing_dns_workers=2,
         addressing_dns_listen=[addr + ":53"], addressing_dns_metrics=addr + ":9153")
t = jinja2.Template(open(root + "/roles/addressing_dns/templates/agility-dns.service.j2").read())
open(work + "/units/agility-dns.service", "w").write(t.render(**v) + "\n")
PY
chgrp -R "$user" "$work/etc"
chmod 750 "$work/etc"
chmod 640 "$work"/etc/*
# test harness only: nothing else runs in this systemd, so no sysinit ordering; log to a file
cat > "$work/units/agility-dns.service.d/check.conf" <<X
[Unit]
DefaultDependencies=no
[Service]
StandardOutput=append:$work/service.log
StandardError=append:$work/service.log
X
printf '[Unit]\nDescription=dns_unit_check\nDefaultDependencies=no\n' > "$work/units/check.target"
cat > "$work/init.sh" <<X
#!/bin/bash
set -e
mount -t proc proc /proc
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system /run/lock
cp -r $work/units/. /run/systemd/system/
for u in network-online.target sysinit.target basic.target systemd-journald.socket systemd-journald.service \
         systemd-journald-dev-log.socket systemd-udevd.service systemd-tmpfiles-setup.service systemd-sysctl.service \
         systemd-networkd.service systemd-networkd-wait-online.service systemd-timesyncd.service getty.target; do
    ln -sf /dev/null /run/systemd/system/\$u
done
exec /lib/systemd/systemd --system --unit=check.target --log-target=console --log-level=warning
X
chmod +x "$work/init.sh"
setsid unshare --pid --fork --mount --uts --propagation private env container=dns-unit-check "$work/init.sh" \
    >"$work/systemd.log" 2>&1 &
unshare_pid=$!
for _ in $(seq 50); do sd_pid=$(pgrep -P "$unshare_pid" || true); [ -n "$sd_pid" ] && break; sleep 0.1; done
[ -n "$sd_pid" ] || { cat "$work/systemd.log"; exit 1; }
ns() { nsenter -t "$sd_pid" -m -p -- "$@"; }
for _ in $(seq 50); do ns systemctl is-system-running >/dev/null 2>&1 && break; sleep 0.2; done
ttl() { dig +norec "$@" @"$addr" www.example.com A | awk '$1 == "www.example.com." {print $2}'; }
use() { install -m 640 -g "$user" "$work/etc/$1" "$work/etc/policy.json"; }
check() { if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: got '$2', want '$3'"; fail=1; fi; }
fail=

systemd --version | head -1
ns systemctl start agility-dns.service; check "start (Type=notify)" "$?" 0
check "state after start" "$(ns systemctl is-active agility-dns.service)" active
check "UDP answer on $addr:53" "$(ttl)" 300
check "TCP answer" "$(ttl +tcp)" 300
main=$(ns systemctl show -p MainPID --value agility-dns.service)
echo "     main pid: $(ns grep -E '^(Uid|CapEff|Seccomp):' /proc/"$main"/status | tr -s '\t\n' '  ')"
use good.json
ns systemctl reload agility-dns.service; check "reload of a good file" "$?" 0
check "new TTL right after the reload" "$(ttl)" 77
for f in bad.json deep.json; do
    use "$f"
    rc=0; ns systemctl reload agility-dns.service 2>/dev/null || rc=$?
    check "reload of $f fails" "$rc" 1
    check "still active after $f" "$(ns systemctl is-active agility-dns.service)" active
    check "last good policy still answers" "$(ttl)" 77
done
tail -n 2 "$work/service.log" | sed 's/^/     log: /'
check "status line" "$(ns systemctl show -p StatusText --value agility-dns.service | cut -c1-13)" "reload failed"
use good.json
ns kill -9 "$(ns pgrep -P "$main" | head -1)"; sleep 1.5
check "worker restarted in the sandbox" "$(ttl)" 77
ns systemctl show -p MemoryMax -p TasksMax -p LimitNOFILE agility-dns.service | sed 's/^/     /'
echo "     $(ns systemd-analyze security agility-dns.service --no-pager | tail -n 1)"
echo "     offline: $(cd "$work/units" && systemd-analyze security --offline=yes --no-pager agility-dns.service | tail -n 1)"
ns systemctl stop agility-dns.service; check "stop" "$(ns systemctl is-active agility-dns.service || true)" inactive
use bad.json
rc=0; ns systemctl start agility-dns.service 2>/dev/null || rc=$?
check "start with a bad file fails" "$rc" 1
tail -n 1 "$work/service.log" | cut -c1-160 | sed 's/^/     log: /'
ns systemctl stop agility-dns.service
if [ -n "$fail" ]; then echo "some checks failed"; exit 1; fi
echo "all checks passed"
