"""Counters of one serving loop and the Prometheus text exposition of their sum.

Each serving thread owns a ``Stats`` (plain ``defaultdict`` increments on the hot
path, no locks); a worker snapshots them as JSON for the supervisor, which sums the
snapshots of all workers and renders them.
"""

import collections


class Stats:
    __slots__ = ("queries", "answers", "dropped", "truncated", "tcp_rejected", "tcp_connections")

    def __init__(self):
        self.queries = collections.defaultdict(int)   # (qtype, rcode, policy) -> n
        self.answers = collections.defaultdict(int)   # used prefix -> addresses handed out
        self.dropped = collections.defaultdict(int)   # reason -> n
        self.truncated = 0
        self.tcp_rejected = 0
        self.tcp_connections = 0

    def snapshot(self):
        return {
            "queries": [list(k) + [v] for k, v in dict(self.queries).items()],
            "answers": dict(self.answers),
            "dropped": dict(self.dropped),
            "truncated": self.truncated,
            "tcp_rejected": self.tcp_rejected,
            "tcp_connections": self.tcp_connections,
        }


def merge(snapshots):
    """Sum several snapshots into one."""
    out = {"queries": {}, "answers": {}, "dropped": {}, "truncated": 0, "tcp_rejected": 0,
           "tcp_connections": 0}
    for snap in snapshots:
        for qtype, rcode, pol, n in snap.get("queries", []):
            key = (qtype, rcode, pol)
            out["queries"][key] = out["queries"].get(key, 0) + n
        for key in ("answers", "dropped"):
            for k, n in snap.get(key, {}).items():
                out[key][k] = out[key].get(k, 0) + n
        for key in ("truncated", "tcp_rejected", "tcp_connections"):
            out[key] += snap.get(key, 0)
    return out


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

    metric("agility_dns_queries_total", "counter", "Queries answered, by query type, response code and policy.",
           [((("qtype", q), ("rcode", r), ("policy", p)), n) for (q, r, p), n in sorted(merged["queries"].items())])
    metric("agility_dns_answers_total", "counter",
           "Addresses handed out in policy answers, by the used prefix they came from.",
           [((("prefix", p),), n) for p, n in sorted(merged["answers"].items())])
    metric("agility_dns_dropped_total", "counter", "Datagrams dropped without a response, by reason.",
           [((("reason", r),), n) for r, n in sorted(merged["dropped"].items())])
    metric("agility_dns_truncated_total", "counter", "UDP responses sent with TC set.",
           [((), merged["truncated"])])
    metric("agility_dns_tcp_connections_total", "counter", "TCP connections accepted.",
           [((), merged["tcp_connections"])])
    metric("agility_dns_tcp_rejected_total", "counter", "TCP connections closed at once (connection limit).",
           [((), merged["tcp_rejected"])])
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
