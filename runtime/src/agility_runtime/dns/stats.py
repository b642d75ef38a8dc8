"""Counters of one serving loop and the Prometheus text exposition of their sum.

Each serving thread owns a ``Stats`` (plain ``defaultdict`` increments on the hot
path, no locks) that knows its transport (``udp``/``tcp``, the ``proto`` label); a
worker snapshots them as JSON for the supervisor, which sums the snapshots of all
workers and renders them.

Label values come from fixed sets: the ``qtype`` label is one of ``QTYPES`` or
``other`` (a query's type is attacker-chosen; 65536 values would make the page huge).
"""

import collections

# query types worth a series of their own; every other type is counted as "other"
QTYPES = frozenset(("A", "AAAA", "ANY", "AXFR", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "IXFR", "MX",
                    "NAPTR", "NS", "PTR", "SOA", "SRV", "SVCB", "TXT", "none"))


def qtype_label(qtype):
    """The ``qtype`` label value for a query type name."""
    return qtype if qtype in QTYPES else "other"


class Stats:
    __slots__ = ("proto", "queries", "answers", "dropped", "truncated", "tcp_connections", "tcp_open",
                 "tcp_closed", "rrl")

    def __init__(self, proto="udp"):
        self.proto = proto
        self.queries = collections.defaultdict(int)   # (qtype, rcode, policy) -> n
        self.answers = collections.defaultdict(int)   # used prefix -> addresses handed out
        self.dropped = collections.defaultdict(int)   # reason -> n
        self.truncated = 0
        self.tcp_connections = 0                      # accepted
        self.tcp_open = 0                             # open now (a gauge)
        self.tcp_closed = collections.defaultdict(int)  # reason (a limit) -> n
        self.rrl = collections.defaultdict(int)       # "dropped"/"slipped" -> n

    def snapshot(self):
        queries = collections.defaultdict(int)
        for (qtype, rcode, pol), n in list(self.queries.items()):
            queries[(qtype_label(qtype), rcode, pol, self.proto)] += n
        return {
            "queries": [list(k) + [v] for k, v in queries.items()],
            "answers": dict(self.answers),
            "dropped": [[r, self.proto, n] for r, n in list(self.dropped.items())],
            "truncated": self.truncated,
            "tcp_connections": self.tcp_connections,
            "tcp_open": self.tcp_open,
            "tcp_closed": dict(self.tcp_closed),
            "rrl": dict(self.rrl),
        }


_LABELED = ("queries", "dropped")       # lists of [label values..., n]
_KEYED = ("answers", "tcp_closed", "rrl")  # {label value: n}
_PLAIN = ("truncated", "tcp_connections", "tcp_open")


def merge(snapshots):
    """Sum several snapshots into one (labeled series as {label tuple: n})."""
    out = {key: {} for key in _LABELED + _KEYED}
    out.update((key, 0) for key in _PLAIN)
    for snap in snapshots:
        for key in _LABELED:
            for row in snap.get(key, []):
                labels = tuple(row[:-1])
                out[key][labels] = out[key].get(labels, 0) + row[-1]
        for key in _KEYED:
            for k, n in snap.get(key, {}).items():
                out[key][k] = out[key].get(k, 0) + n
        for key in _PLAIN:
            out[key] += snap.get(key, 0)
    return out


def retired(snap):
    """The snapshot of a worker that died: its counters stay, its gauges do not."""
    return dict(snap, tcp_open=0)


def to_json(merged):
    """A merged snapshot in snapshot form (JSON has no tuple keys)."""
    snap = dict(merged)
    for key in _LABELED:
        snap[key] = [list(k) + [v] for k, v in merged[key].items()]
    return snap


def _esc(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(merged, info):
    """Prometheus text format 0.0.4.  ``info``: supervisor-side facts (reloads, digest...)."""
    lines = []

    def metric(name, mtype, help_text, samples):
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s %s" % (name, mtype))
        for labels, value in samples:
            if labels:
                lab = ",".join('%s="%s"' % (k, _esc(v)) for k, v in labels)
                lines.append("%s{%s} %s" % (name, lab, value))
            else:
                lines.append("%s %s" % (name, value))

    metric("agility_dns_queries_total", "counter",
           "Queries answered, by query type, response code, policy and transport.",
           [((("qtype", q), ("rcode", r), ("policy", p), ("proto", t)), n)
            for (q, r, p, t), n in sorted(merged["queries"].items())])
    metric("agility_dns_answers_total", "counter",
           "Addresses handed out in policy answers, by the used prefix they came from.",
           [((("prefix", p),), n) for p, n in sorted(merged["answers"].items())])
    metric("agility_dns_dropped_total", "counter", "Queries dropped without a response, by reason and transport.",
           [((("reason", r), ("proto", t)), n) for (r, t), n in sorted(merged["dropped"].items())])
    metric("agility_dns_truncated_total", "counter", "UDP responses sent with TC set.",
           [((), merged["truncated"])])
    metric("agility_dns_tcp_connections_total", "counter", "TCP connections accepted.",
           [((), merged["tcp_connections"])])
    metric("agility_dns_tcp_open_connections", "gauge", "TCP connections open now.",
           [((), merged["tcp_open"])])
    metric("agility_dns_tcp_closed_total", "counter",
           "TCP connections closed by a limit: idle_timeout, message_timeout, write_timeout, "
           "evicted_idle (oldest idle one, for a newcomer at the connection cap), per_source_limit.",
           [((("reason", r),), n) for r, n in sorted(merged["tcp_closed"].items())])
    metric("agility_dns_rrl_limited_total", "counter",
           "UDP answers held back by response rate limiting: dropped, or slipped (sent truncated).",
           [((("action", a),), merged["rrl"].get(a, 0)) for a in ("dropped", "slipped")])
    metric("agility_dns_reloads_total", "counter", "Policy reloads, by result.",
           [((("result", "ok"),), info["reloads_ok"]), ((("result", "failed"),), info["reloads_failed"])])
    metric("agility_dns_policy_info", "gauge", "The policy in use (digest = policy version).",
           [((("digest", info["digest"]), ("pop", info["pop"]), ("path", info["path"])), 1)])
    metric("agility_dns_policy_loaded_timestamp_seconds", "gauge", "When the policy in use was loaded.",
           [((), "%.3f" % info["loaded_at"])])
    metric("agility_dns_last_reload_success", "gauge", "1 if the last reload attempt succeeded.",
           [((), info["last_ok"])])
    metric("agility_dns_workers", "gauge", "Worker processes running.", [((), info["workers"])])
    metric("agility_dns_worker_restarts_total", "counter", "Worker processes restarted after they died.",
           [((), info["restarts"])])
    return "\n".join(lines) + "\n"
