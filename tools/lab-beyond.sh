#!/usr/bin/env bash
# Beyond the paper, on the built-in lab (docs/beyond-the-paper.md): route-leak detection and
# mitigation, DoS bisection, and the per-address load report, against real PoP VMs.
#   tools/lab-beyond.sh            # boots a fresh 2-PoP lab, deploys it, runs all three
#   LAB_REUSE=1 tools/lab-beyond.sh   # keep a lab that site.yml already deployed
#   BEYOND_PARTS="leak bisect" ...     # some of: leak bisect load (default all three)
#   BEYOND_SERIAL='["100%"]' ...       # batches of the mitigation's migration (default: migrate_pool's)
#   BEYOND_BISECTIONS="service address" # some of: service service6 address (default all three)
# Leaves the lab up; extensions/molecule/lab/labctl down tears it down. Writes .cache/beyond/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
labctl=extensions/molecule/lab/labctl
state=.cache/beyond
say() { printf '\n\033[1m==> %s\033[0m (%s)\n' "$*" "$(date +%T)"; }

parts=" ${BEYOND_PARTS:-leak bisect load} "
want() { [[ $parts == *" $1 "* ]]; }
bisections=" ${BEYOND_BISECTIONS:-service service6 address} "
bisection() { [[ $bisections == *" $1 "* ]]; }
[ -n "${LAB_REUSE:-}" ] || tests/run setup >/dev/null
export PATH=$root/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/collections
inv=(-i inventories/lab -i .cache/lab/inventory.yml)
play() { ansible-playbook "${inv[@]}" -l pop1,pop2 "$@"; }
serial=()
[ -z "${BEYOND_SERIAL:-}" ] || serial=(-e "{\"addressing_serial\": $BEYOND_SERIAL}")
# the verdicts of the leak playbooks, one line each (results are logged as JSON, without the
# colours Molecule forces on its children)
export ANSIBLE_CALLBACK_RESULT_FORMAT=json ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
verdicts() { sed -n 's/^ *"msg": "\(\(moving policy\|no route leak\|route leak\).*\)"$/\1/p' "$1" | sed 's/\\"/"/g'; }
client() {  # NAME DNS ZONE [lab_client options]: a client in the lab namespace, in the background
    local name=$1 dns=$2 zone=$3; shift 3
    $labctl exec "$root/.venv/bin/python" "$root/tools/lab_client.py" --dns "$dns" --zone "$zone" \
        --stage-file "$root/$state/stage" --out "$root/$state/$name.json" "$@" &
}
stop_bg() { pkill -TERM -f 'tools/lab_(client|attacker).py' 2>/dev/null || true; sleep 2; }
trap stop_bg EXIT
rm -rf $state; mkdir -p $state

if [ -z "${LAB_REUSE:-}" ]; then
    say "Booting a fresh 2-PoP lab and deploying it (site.yml)"
    $labctl image
    $labctl down >/dev/null 2>&1 || true
    $labctl up --pops 2
    play playbooks/site.yml > $state/site.log
fi

if want leak; then
    # The lab namespace is "the Internet". Its catchment for the per_pop addresses of the
    # leak-watch policy (offset 200 + PoP index, inventories/lab): each PoP's own address goes
    # to that PoP, on the dedicated pool and on the standby pool it may move to.
    for pool in 198.18.48 198.18.32; do
        $labctl route $pool.200/32 pop1 >/dev/null; $labctl route $pool.201/32 pop2 >/dev/null
    done
    for pool in 2001:db8:300:: 2001:db8:200::; do
        $labctl route ${pool}c8/128 pop1 >/dev/null; $labctl route ${pool}c9/128 pop2 >/dev/null
    done

    say "Route leaks: two clients (one per PoP's resolver) on the per_pop zone example.org."
    echo healthy > $state/stage
    client c1 198.18.0.11 example.org. --names 200 --rate 5
    client c2 198.18.0.12 example.org. --names 200 --rate 5
    sleep 15
    play playbooks/route_leak_detect.yml -e addressing_leak_policy=leak-watch > $state/leak-healthy.log
    verdicts $state/leak-healthy.log | tee $state/leak-healthy.txt

    say "Making the leak: the Internet's route for pop1's address now points at pop2"
    echo leaked > $state/stage
    $labctl route 198.18.48.200/32 pop2
    $labctl route 2001:db8:300::c8/128 pop2
    sleep 12   # the clients' cached answers (TTL 10 s) keep going to the leaked address

    say "Detect and mitigate (route_leak_mitigate.yml: keep the policy, move it to pool standby)"
    echo mitigating > $state/stage
    play playbooks/route_leak_mitigate.yml "${serial[@]}" -e addressing_leak_policy=leak-watch \
        -e addressing_gate_zone=example.org. -e addressing_ttl_margin=2 > $state/leak-mitigate.log
    verdicts $state/leak-mitigate.log | tee $state/leak-mitigate.txt
    echo mitigated > $state/stage
    sleep 15
    play playbooks/route_leak_detect.yml -e addressing_leak_policy=leak-watch > $state/leak-after.log
    verdicts $state/leak-after.log | tee $state/leak-after.txt
    stop_bg
    python tools/client_summary.py c1=$state/c1.json c2=$state/c2.json | tee $state/leak-clients.txt
fi

if want bisect; then
    services=$(python -c 'import json; print(json.dumps({"addressing_bisect_services": ["svc%d.example.edu" % i for i in range(64)]}))')
    bisect() {  # REPORT [extra -e]
        local report=$1; shift
        play playbooks/dos_bisect.yml -e addressing_bisect_policy=campus -e addressing_bisect_attacked=198.18.48.100 \
            -e "$services" -e addressing_bisect_k=4 -e addressing_bisect_ttl=5 -e addressing_bisect_window=10 \
            -e "addressing_bisect_report=$root/$state/$report.json" "$@" > "$state/$report.log"
        python -c 'import json,sys; d=json.load(open(sys.argv[1])); print("\n".join([h["line"] for h in d["history"]] + ["verdict: " + d["verdict"]]))' \
            "$state/$report.json" | tee "$state/$report.txt"
    }

    if bisection service; then
        say "DoS bisection: an attacker floods svc37.example.edu (64 services on 198.18.48.100)"
        $labctl exec "$root/.venv/bin/python" "$root/tools/lab_attacker.py" --dns 198.18.0.11 --name svc37.example.edu \
            --rate 50 --duration 600 > $state/attacker-service.json &
        sleep 5
        bisect bisect-service
        stop_bg
    fi

    if bisection service6; then
        say "DoS bisection over IPv6: an attacker floods svc21.example.edu's AAAA address (2001:db8:300::64)"
        $labctl exec "$root/.venv/bin/python" "$root/tools/lab_attacker.py" --dns 198.18.0.11 --name svc21.example.edu \
            --qtype AAAA --rate 50 --duration 600 > $state/attacker-service6.json &
        sleep 5
        bisect bisect-service6 -e addressing_bisect_attacked=2001:db8:300::64
        stop_bg
    fi

    if bisection address; then
        say "DoS bisection: an attacker floods the address 198.18.48.100 itself"
        $labctl exec "$root/.venv/bin/python" "$root/tools/lab_attacker.py" --address 198.18.48.100 \
            --rate 50 --duration 600 > $state/attacker-address.json &
        sleep 5
        bisect bisect-address
        stop_bg
    fi
fi

if want load; then
    say "Load per address: pool anycast to its /24, a client on example.com., then the report"
    play playbooks/migrate_pool.yml -e addressing_migrate_pool=anycast -e addressing_migrate_stage=narrow \
        -e addressing_ttl_margin=2 > $state/migrate-narrow.log
    # anycast catchment split over both PoPs (ECMP on the L4 hash), as the Internet would
    $labctl route 198.18.16.0/20 pop1,pop2 >/dev/null; $labctl route 2001:db8:100::/44 pop1,pop2 >/dev/null
    play playbooks/load_report.yml -e "addressing_report_dir=$root/$state/load-before" -e addressing_report_png=false >/dev/null
    echo load > $state/stage
    client load 198.18.0.11 example.com. --names 5000 --rate 20 --duration 120
    sleep 125   # the client stops after --duration
    play playbooks/load_report.yml -e "addressing_report_dir=$root/$state/load" > $state/load.log
    python tools/load_report.py $state/load/counters.json --baseline $state/load-before/counters.json \
        --expected 198.18.16.0/24 --png $state/load/anycast-24.png | tee $state/load.txt
    python tools/client_summary.py load=$state/load.json
fi

say "Done: reports in $state/; the lab is still up ('$labctl down' tears it down)"
