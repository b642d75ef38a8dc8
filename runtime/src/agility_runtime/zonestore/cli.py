"""``agility-zones``: compile, update and inspect a zone store.

    agility-zones compile SRC... --out STORE [--account-type NAME] [--jobs N]
    agility-zones set STORE ZONE --data FILE     # FILE: one zone (JSON or YAML); '-' = stdin
    agility-zones delete STORE ZONE
    agility-zones info STORE                      # format, serial, digest, zone count
    agility-zones get STORE NAME                  # the zone that holds NAME, as JSON

Exit status: 0 done; 1 something refused (each problem on its own line on stderr:
the zone's name, its file, and the line for zone files); 2 usage.
"""

import argparse
import json
import os
import sys

from agility_runtime import policy
from agility_runtime.zonestore.errors import SourceError, StoreError


def _store_modules():
    """(layout, reader, writer), imported on use: lmdb is an optional extra."""
    from agility_runtime.zonestore import layout, reader, writer
    return layout, reader, writer


def build_parser():
    p = argparse.ArgumentParser(prog="agility-zones", description="Compile, update and inspect a zone store.")
    sub = p.add_subparsers(dest="command")
    sub.required = True
    c = sub.add_parser("compile", help="build a new store from YAML/JSON zone data and RFC 1035 zone files")
    c.add_argument("sources", nargs="+", metavar="SRC")
    c.add_argument("--out", required=True, metavar="STORE", help="store directory (created if missing)")
    c.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="processes that check sources, one file each at a time (default: one per CPU)")
    c.add_argument("--account-type", default="static",
                   help="account type of zones read from zone files (default: static)")
    s = sub.add_parser("set", help="add or replace one zone (one transaction)")
    s.add_argument("store")
    s.add_argument("zone")
    s.add_argument("--data", required=True, metavar="FILE", help="the zone (JSON or YAML mapping); - for stdin")
    d = sub.add_parser("delete", help="remove one zone (one transaction)")
    d.add_argument("store")
    d.add_argument("zone")
    i = sub.add_parser("info", help="format version, serial, digest and zone count")
    i.add_argument("store")
    g = sub.add_parser("get", help="the zone that holds NAME (closest enclosing), as JSON")
    g.add_argument("store")
    g.add_argument("name")
    return p


def _err(text):
    sys.stderr.write("agility-zones: %s\n" % str(text).replace("\n", "\\n"))


def cmd_compile(args):
    writer = _store_modules()[2]
    report = writer.compile_store(args.out, args.sources, args.account_type, max(1, args.jobs))
    for line in report.lines():
        _err(line)
    if not report.written:
        _err("nothing written: %d source(s) could not be read; %s is unchanged"
             % (len(report.source_errors), args.out))
        return 1
    sys.stdout.write("compiled %d zones into %s (serial %s, digest %s); refused %d zones\n"
                     % (report.compiled, args.out, report.serial, report.digest, len(report.refused)))
    return 1 if report.refused else 0


def _read_zone(path):
    raw = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError:
        import yaml
        doc = yaml.safe_load(raw.decode("utf-8"))
    return doc


def cmd_set(args):
    try:
        zone = _read_zone(args.data)
    except (OSError, ValueError, ImportError) as exc:
        _err("cannot read %s: %s" % (args.data, exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - yaml's errors, without importing yaml up front
        _err("%s is not valid JSON or YAML: %s" % (args.data, exc))
        return 1
    problems, meta = _store_modules()[2].update_zone(args.store, args.zone, zone)
    return _report_update(args, problems, meta, "set")


def cmd_delete(args):
    problems, meta = _store_modules()[2].update_zone(args.store, args.zone, None)
    return _report_update(args, problems, meta, "deleted")


def _report_update(args, problems, meta, verb):
    if problems:
        _err("refused zone %s: %s (store unchanged)" % (args.zone, policy.format_problems(problems)))
        return 1
    sys.stdout.write("%s zone %s in %s (serial %d, digest %s, %d zones)\n"
                     % (verb, policy.normalise_name(args.zone), args.store, meta["serial"], meta["digest"],
                        meta["zones"]))
    return 0


def cmd_info(args):
    r = _store_modules()[1].Reader(args.store)
    try:
        meta = dict(r.meta, generation=r.generation)
    finally:
        r.close()
    sys.stdout.write(json.dumps(meta, sort_keys=True) + "\n")
    return 0


def cmd_get(args):
    try:
        wire = policy.normalise_name(args.name)
        import dns.name
        found_wire = dns.name.from_text(wire).to_wire().lower()
    except Exception as exc:  # noqa: BLE001 - any bad name
        _err("%r is not a domain name: %s" % (args.name, exc))
        return 1
    layout, reader, _writer = _store_modules()
    r = reader.Reader(args.store)
    try:
        hit = r.find(found_wire)
    finally:
        r.close()
    if hit is None:
        _err("no zone in %s holds %s" % (args.store, wire))
        return 1
    sys.stdout.write(json.dumps({"zone": hit[0], "data": layout.decode_zone(hit[1])}, sort_keys=True) + "\n")
    return 0


COMMANDS = {"compile": cmd_compile, "set": cmd_set, "delete": cmd_delete, "info": cmd_info, "get": cmd_get}


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        _store_modules()
    except ImportError as exc:
        _err("needs the zonestore extra (pip install 'agility-runtime[zonestore]'): %s" % exc)
        return 1
    try:
        return COMMANDS[args.command](args)
    except (StoreError, SourceError) as exc:
        _err(exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
