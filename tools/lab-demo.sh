#!/usr/bin/env bash
# The main job on the built-in lab: build the VM image if needed, boot a PoP fleet in a
# network namespace, deploy it (site.yml), migrate the anycast pool /20 -> /24 -> /32 while a
# client keeps resolving and connecting, and print a report. The lab stays up afterwards:
#   extensions/molecule/lab/labctl ssh pop1        # look around
#   extensions/molecule/lab/labctl down            # tear it down
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pops=${LAB_POPS:-2}   # inventories/lab describes 3; LAB_POPS=3 boots them all
labctl=extensions/molecule/lab/labctl

say() { printf '\n\033[1m==> %s\033[0m (%s)\n' "$*" "$(date +%T)"; }

say "Installing what the lab needs (Debian packages, Python venv)"
tests/run setup
export PATH=$root/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/collections

say "Building the PoP image (cached) and booting $pops PoPs"
$labctl image
$labctl down >/dev/null 2>&1 || true   # start from a fresh fleet, whatever ran before
$labctl up --pops "$pops"

inv=(-i inventories/lab -i .cache/lab/inventory.yml)
play() { ansible-playbook "${inv[@]}" -l "$(seq -s, -f 'pop%g' 1 "$pops")" "$@"; }
snapshot() {  # per-address counters of every PoP's loader at the end of stage $1
    # announced scope: a stage's diff keeps the addresses of the stage being left
    play playbooks/load_report.yml -e "addressing_report_dir=$root/$state/$1" -e addressing_report_png=false \
        -e addressing_report_scope=announced >/dev/null
}

say "Deploying the fleet (site.yml)"
play playbooks/site.yml

state=.cache/demo
rm -rf $state; mkdir -p $state
echo "wide" > $state/stage
say "Starting a client in the lab namespace (DNS -> TCP/UDP to the answer, continuously)"
for prefix in 198.18.16.0/20 2001:db8:100::/44; do $labctl route $prefix pop1 >/dev/null; done
$labctl exec "$root/.venv/bin/python" "$root/tools/lab_client.py" --dns 198.18.0.11 --names 100 \
    --stage-file "$root/$state/stage" --out "$root/$state/client.json" --rate 5 &
stop_client() { pkill -TERM -f tools/lab_client.py 2>/dev/null || true; }
trap stop_client EXIT
sleep 20
snapshot wide

for stage in narrow single; do
    say "Migrating pool anycast to stage $stage (rolling, canary first, health-gated)"
    echo "to-$stage" > $state/stage
    play playbooks/migrate_pool.yml -e addressing_migrate_pool=anycast -e addressing_migrate_stage=$stage \
        -e addressing_ttl_margin=2
    snapshot "to-$stage"
    echo "$stage" > $state/stage
    sleep 20
    snapshot "$stage"
done

stop_client; sleep 2
trap - EXIT
say "Report"
python tools/demo_report.py $state wide to-narrow narrow to-single single
say "The lab is still up: '$labctl ssh pop1' to explore, '$labctl down' to tear it down"
