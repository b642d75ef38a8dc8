"""Policy-first authoritative DNS responder (``agility-dns``).

Modules, one purpose each:

* ``state``     - the serving state compiled from a policy file (zones, static rrsets,
                  fast-path tables); built once per (re)load, never mutated.
* ``fastpath``  - hand-written wire parser/builder for the hot A/AAAA policy answer.
* ``slowpath``  - dnspython path for everything else (errors, EDNS, ECS, static data).
* ``handler``   - one query in, one response (or nothing) out; counts statistics.
* ``stats``     - counters and their Prometheus text rendering.
* ``sockets``   - ``--listen`` parsing, socket creation, systemd socket activation.
* ``udp`` / ``tcp`` - the serving loops.
* ``worker`` / ``supervisor`` - process model, reload, metrics endpoint.
* ``log``       - structured (key=value or JSON) log lines on stderr.
* ``cli``       - the ``agility-dns`` entry point.
"""
