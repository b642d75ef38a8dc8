#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per stage, what one or more lab clients saw (tools/lab_client.py --out files).

    python tools/client_summary.py NAME=client.json [NAME=client.json ...]

Prints one line per client and stage: DNS, TCP and UDP ok/failed, the PoPs that
answered, and the addresses handed out (busiest first). Exits 1 when any request
failed, so a script can stop on it.
"""

import json
import sys


def lines(name, doc):
    out, failed = [], 0
    for stage in doc.get("stages", []):
        failed += stage["dns_failed"] + stage["tcp_failed"] + stage["udp_failed"]
        addresses = sorted(stage["addresses"].items(), key=lambda kv: -kv[1])
        shown = ", ".join("%s x%d" % kv for kv in addresses[:4]) + (" ..." if len(addresses) > 4 else "")
        out.append("%-4s %-12s dns %d/%d  tcp %d/%d  udp %d/%d (ok/failed)  pops %s  answers %s" % (
            name, stage["stage"], stage["dns_ok"], stage["dns_failed"], stage["tcp_ok"], stage["tcp_failed"],
            stage["udp_ok"], stage["udp_failed"], json.dumps(stage["pops"], sort_keys=True), shown))
        out += ["       error: %s" % e for e in stage["errors"][:3]]
    return out, failed


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    failed = 0
    for arg in sys.argv[1:]:
        name, dummy, path = arg.rpartition("=")
        with open(path) as handle:
            text, bad = lines(name or path, json.load(handle))
        print("\n".join(text))
        failed += bad
    print("failed requests: %d" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
