"""The embedded zone store: zones in an LMDB file, opened read-only and memory-mapped.

Modules, one job each:

* ``layout``  - the format: keys (reversed-label names), the meta record, zone values;
* ``rules``   - one zone checked with the policy model's rules plus the record rules;
* ``sources`` - zones read from YAML/JSON zone data and RFC 1035 zone files;
* ``writer``  - a whole store compiled into a new generation, and one-zone updates;
* ``reader``  - the read-only view the responder uses (closest enclosing zone);
* ``cli``     - ``agility-zones compile|set|delete|info|get``.

Needs the ``zonestore`` extra (``lmdb``; PyYAML for YAML sources). docs/zone-store.md
describes the format and its guarantees.
"""
