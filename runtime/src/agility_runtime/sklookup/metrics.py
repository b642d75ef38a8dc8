"""Prometheus text exposition of the dispatcher counters.

By default the page is bounded by the number of labels and destinations
(at most 1,024) and tracked local addresses, not by the number of bindings:
per-label totals are the sums of the label's destination counters, which the
BPF program keeps next to the per-binding ones. Per-binding series (two lines
plus one per drop reason for each binding: 36 MB at 100,000 bindings) only
with ``per_binding``.
"""

REASONS = ("missing_socket", "incompatible_socket")


def _esc(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kw):
    return "{" + ",".join('%s="%s"' % (k, _esc(v)) for k, v in kw.items()) + "}"


def label_totals(destinations):
    """{label: {lookups, missing_socket, incompatible_socket, bindings, sockets}} from destinations."""
    out = {}
    for d in destinations:
        t = out.setdefault(d["label"], {"lookups": 0, "missing_socket": 0, "incompatible_socket": 0,
                                        "bindings": 0, "sockets": 0})
        for k in ("lookups",) + REASONS:
            t[k] += d[k]
        t["bindings"] += d["bindings"]
        t["sockets"] += 1 if d["socket"] else 0
    return out


def render(destinations, addresses, bindings=None):
    """destinations/addresses: dicts as from Dispatcher; bindings: [(Binding, counters)] or None."""
    out = []

    def family(name, help_, typ="counter"):
        out.append("# HELP %s %s" % (name, help_))
        out.append("# TYPE %s %s" % (name, typ))

    totals = sorted(label_totals(destinations).items())
    family("agility_lookup_label_lookups_total", "Socket lookups that matched a binding of this label.")
    for label, t in totals:
        out.append("agility_lookup_label_lookups_total%s %d" % (_labels(label=label), t["lookups"]))
    family("agility_lookup_label_drops_total",
           "Lookups of this label's bindings dropped (reason: missing or incompatible socket).")
    for label, t in totals:
        for reason in REASONS:
            out.append("agility_lookup_label_drops_total%s %d" % (_labels(label=label, reason=reason), t[reason]))
    family("agility_lookup_label_bindings", "Bindings that point at this label.", "gauge")
    for label, t in totals:
        out.append("agility_lookup_label_bindings%s %d" % (_labels(label=label), t["bindings"]))
    family("agility_lookup_label_sockets", "Sockets registered for this label (one per family and protocol).", "gauge")
    for label, t in totals:
        out.append("agility_lookup_label_sockets%s %d" % (_labels(label=label), t["sockets"]))
    if bindings is not None:
        family("agility_lookup_binding_lookups_total", "Socket lookups that selected this binding.")
        for b, c in bindings:
            out.append("agility_lookup_binding_lookups_total%s %d" % (
                _labels(label=b.label, protocol=b.protocol, prefix=b.prefix_text, port=b.port), c["lookups"]))
        family("agility_lookup_binding_drops_total",
               "Lookups of this binding dropped (reason: missing or incompatible socket).")
        for b, c in bindings:
            for reason in REASONS:
                out.append("agility_lookup_binding_drops_total%s %d" % (
                    _labels(label=b.label, protocol=b.protocol, prefix=b.prefix_text, port=b.port, reason=reason),
                    c[reason]))
    family("agility_lookup_destination_lookups_total", "Socket lookups directed at this destination.")
    for d in destinations:
        out.append("agility_lookup_destination_lookups_total%s %d" % (
            _labels(label=d["label"], domain=d["domain"], protocol=d["protocol"]), d["lookups"]))
    family("agility_lookup_destination_drops_total", "Lookups of this destination dropped.")
    for d in destinations:
        for reason in REASONS:
            out.append("agility_lookup_destination_drops_total%s %d" % (
                _labels(label=d["label"], domain=d["domain"], protocol=d["protocol"], reason=reason), d[reason]))
    family("agility_lookup_destination_has_socket", "1 if a socket is registered for the destination.", "gauge")
    for d in destinations:
        out.append("agility_lookup_destination_has_socket%s %d" % (
            _labels(label=d["label"], domain=d["domain"], protocol=d["protocol"]), 1 if d["socket"] else 0))
    if addresses is not None:
        family("agility_lookup_address_hits_total", "Lookups per local (destination) address assigned to a socket.")
        for a in addresses:
            out.append("agility_lookup_address_hits_total%s %d" % (_labels(address=a["address"]), a["hits"]))
        family("agility_lookup_address_drops_total",
               "Lookups per local address that matched a binding but were dropped.")
        for a in addresses:
            out.append("agility_lookup_address_drops_total%s %d" % (_labels(address=a["address"]), a["drops"]))
    return "\n".join(out) + "\n"


def collect(dispatcher_factory, per_binding=False, per_address=True):
    """Open the dispatcher read-only, read the counters and render one page."""
    with dispatcher_factory() as d:
        bindings = d.bindings(counters=True) if per_binding else None
        return render(d.destinations(), d.addresses() if per_address else None, bindings)
