"""One zone checked with every rule the responder applies: the policy model's zone rules
(``policy.validate_zone``, the same ones the controller runs on a policy file's zones)
and the record rules that need dnspython (``dns.records``: data parses, CNAME alone,
record fits the wire).  Never raises: problems come back as ``(field, message)``."""

import dns.name

from agility_runtime import policy
from agility_runtime.dns import records


def check_zone(name, zone):
    """``(canonical_name or None, problems)`` for zone ``name`` with data ``zone``."""
    problems = policy.validate_zone(name, zone)
    if problems:
        return None, problems
    key = policy.normalise_name(name)
    try:
        parsed = policy.Zone(key, zone)
        origin = dns.name.from_text(key)
        problems = records.parse(parsed, origin, "zones[%s]" % key)[2]
    except Exception as exc:  # noqa: BLE001 - the fuzz tests assert this never happens
        problems = [("zones[%s]" % key, "internal: %s: %s" % (type(exc).__name__, exc))]
    return (None if problems else key), problems
