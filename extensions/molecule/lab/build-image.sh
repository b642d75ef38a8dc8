#!/usr/bin/env bash
# Build the lab guest image (the "recipe": this file + packages.txt + guest/* + the lab's SSH key).
# Usage: build-image.sh OUTDIR PUBKEY_FILE MIRROR
# Writes OUTDIR/base.qcow2, OUTDIR/vmlinuz, OUTDIR/initrd.img. Needs root; no loop mounts.
set -euo pipefail
out=$1 pubkey=$2 mirror=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "$out/../build.XXXXXX")
root=$work/root
trap 'rm -rf "$work"' EXIT

pkgs=$(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$' | paste -sd, -)
echo "lab-image: debootstrap bookworm ($mirror)" >&2
debootstrap --variant=minbase --include="$pkgs" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -30 "$work/debootstrap.log" >&2; exit 1; }

echo "lab-image: configure" >&2
# No network at run time: no apt sources, no resolver.
: >"$root/etc/apt/sources.list"
printf '# lab guests have no resolver\n' >"$root/etc/resolv.conf"
rm -f "$root/etc/hostname"          # hostname comes from systemd.hostname= on the kernel command line
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
printf 'LABEL=root / ext4 rw,noatime 0 0\n' >"$root/etc/fstab"
: >"$root/etc/machine-id"           # fresh machine-id per VM at first boot

# SSH: root by key only (the lab's generated key).
install -d -m 700 "$root/root/.ssh"
install -m 600 "$pubkey" "$root/root/.ssh/authorized_keys"
cat >"$root/etc/ssh/sshd_config.d/lab.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF

# Static addresses from ip= on the kernel command line (see guest/lab-net).
install -m 755 "$here/guest/lab-net" "$root/usr/local/sbin/lab-net"
install -m 644 "$here/guest/lab-net.service" "$root/etc/systemd/system/lab-net.service"
ln -sf /etc/systemd/system/lab-net.service "$root/etc/systemd/system/multi-user.target.wants/lab-net.service"

# Bytecode cache for the modules Ansible ships in zips (guest/lab_bytecode_cache.py says why).
pythons=("$root"/usr/lib/python3.[0-9]*)   # bookworm has one: python3.11
pydir=$(basename "${pythons[-1]}")
install -d "$root/usr/local/lib/$pydir/dist-packages"
install -m 644 "$here/guest/lab_bytecode_cache.py" "$root/usr/local/lib/$pydir/dist-packages/"
echo "import lab_bytecode_cache" >"$root/usr/local/lib/$pydir/dist-packages/lab_bytecode_cache.pth"

# Nothing periodic or waiting on a network that does not exist.
for u in apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
         e2scrub_all.timer e2scrub_all.service e2scrub_reap.service fstrim.timer fstrim.service \
         systemd-networkd-wait-online.service dpkg-db-backup.timer man-db.timer \
         systemd-timesyncd.service getty@tty1.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# systemd runs every generator on each daemon-reload (and `systemctl enable` reloads too): under
# TCG they take 0.4-1.3 s each, ~10 s a reload (docs/lab.md). Keep fstab and getty; the guest
# has no encrypted, integrity or verity volumes, no GPT, no hibernation, no rc.local, no
# systemd.run=/debug on its command line, no offline updates and no init script without a unit.
install -d "$root/etc/systemd/system-generators"
for g in systemd-cryptsetup-generator systemd-integritysetup-generator systemd-veritysetup-generator \
         systemd-gpt-auto-generator systemd-hibernate-resume-generator systemd-rc-local-generator \
         systemd-run-generator systemd-debug-generator systemd-system-update-generator \
         systemd-sysv-generator; do
  ln -sf /dev/null "$root/etc/systemd/system-generators/$g"
done
# Keep later dpkg runs (roles may install .debs) from bringing docs back.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-lab-nodoc" <<'CONF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CONF

# Trim.
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian \
       "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/cache/debconf/*-old "$root"/var/log/*.log "$root"/var/log/apt/*
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true

echo "lab-image: kernel + initrd" >&2
cp -L "$root/vmlinuz" "$work/vmlinuz"
cp -L "$root/initrd.img" "$work/initrd.img"

echo "lab-image: mkfs.ext4 -d + qemu-img convert" >&2
mkfs.ext4 -q -F -L root -E root_owner=0:0 -d "$root" "$work/base.raw" 2G
qemu-img convert -c -O qcow2 "$work/base.raw" "$work/base.qcow2"
mv "$work/vmlinuz" "$work/initrd.img" "$work/base.qcow2" "$out/"
