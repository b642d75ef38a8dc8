#!/usr/bin/env bash
# The main job on the built-in lab: build the VM image if needed, boot a 3-PoP fleet in a
# network namespace, deploy it (site.yml), migrate the anycast pool /20 -> /24 -> /32 while a
# client keeps resolving and connecting, and print a report. The lab stays up afterwards:
#   extensions/molecule/lab/labctl ssh pop1        # look around
#   extensions/molecule/lab/labctl down            # tear it down
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pops=${LAB_POPS:-3}
labctl=extensions/molecule/lab/labctl

say() { printf '\n\033[1m==> %s\033[0m (%s)\n' "$*" "$(date +%T)"; }

say "Installing what the lab needs (Debian packages, Python venv)"
tests/run setup
export PATH=$root/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/collections

say "Building the PoP image (cached) and booting $pops PoPs"
$labctl image
$labctl up --pops "$pops"

inv=(-i inventories/lab -i .cache/lab/inventory.yml)
lab_vars=(-e "@extensions/molecule/shared/lab_vars.yml")
play() { ansible-playbook "${inv[@]}" "${lab_vars[@]}" -l "$(seq -s, -f 'pop%g' 1 "$pops")" "$@"; }

say "Deploying the fleet (site.yml)"
play playbooks/site.yml

state=.cache/demo
mkdir -p $state
echo "wide /20" > $state/stage
say "Starting a client in the lab namespace (DNS -> TCP/UDP to the answer, continuously)"
$labctl exec "$root/.venv/bin/python" "$root/tools/lab_client.py" --dns 198.18.0.11 \
    --stage-file "$root/$state/stage" --out "$root/$state/client.json" --rate 10 &
client=$!
trap 'kill $client 2>/dev/null || true' EXIT
sleep 15

for stage in narrow single; do
    case $stage in narrow) label="narrow /24";; single) label="single /32";; esac
    say "Migrating pool anycast to $label (rolling, gated)"
    echo "migrating to $label" > $state/stage
    play playbooks/migrate_pool.yml -e addressing_migrate_pool=anycast -e addressing_migrate_stage=$stage \
        -e addressing_ttl_margin=2
    echo "$label" > $state/stage
    sleep 15
done

kill $client; wait $client 2>/dev/null || true
trap - EXIT
say "Report"
play playbooks/lab_report.yml -e "addressing_client_report=$root/$state/client.json"
say "The lab is still up: '$labctl ssh pop1' to explore, '$labctl down' to tear it down"
