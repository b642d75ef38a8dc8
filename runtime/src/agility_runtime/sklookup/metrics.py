"""Prometheus text exposition of the dispatcher counters."""


def _esc(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kw):
    return "{" + ",".join('%s="%s"' % (k, _esc(v)) for k, v in kw.items()) + "}"


def render(bindings, destinations, addresses):
    """bindings: [(Binding, counters)], destinations/addresses: dicts as from Dispatcher."""
    out = []

    def family(name, help_, typ="counter"):
        out.append("# HELP %s %s" % (name, help_))
        out.append("# TYPE %s %s" % (name, typ))

    family("agility_lookup_binding_lookups_total", "Socket lookups that selected this binding.")
    for b, c in bindings:
        out.append("agility_lookup_binding_lookups_total%s %d" % (
            _labels(label=b.label, protocol=b.protocol, prefix=b.prefix, port=b.port), c["lookups"]))
    family("agility_lookup_binding_drops_total", "Lookups of this binding dropped (reason: missing or incompatible socket).")
    for b, c in bindings:
        for reason in ("missing_socket", "incompatible_socket"):
            out.append("agility_lookup_binding_drops_total%s %d" % (
                _labels(label=b.label, protocol=b.protocol, prefix=b.prefix, port=b.port, reason=reason), c[reason]))
    family("agility_lookup_destination_lookups_total", "Socket lookups directed at this destination.")
    for d in destinations:
        out.append("agility_lookup_destination_lookups_total%s %d" % (
            _labels(label=d["label"], domain=d["domain"], protocol=d["protocol"]), d["lookups"]))
    family("agility_lookup_destination_drops_total", "Lookups of this destination dropped.")
    for d in destinations:
        for reason in ("missing_socket", "incompatible_socket"):
            out.append("agility_lookup_destination_drops_total%s %d" % (
                _labels(label=d["label"], domain=d["domain"], protocol=d["protocol"], reason=reason), d[reason]))
    family("agility_lookup_destination_has_socket", "1 if a socket is registered for the destination.", "gauge")
    for d in destinations:
        out.append("agility_lookup_destination_has_socket%s %d" % (
            _labels(label=d["label"], domain=d["domain"], protocol=d["protocol"]), 1 if d["socket"] else 0))
    family("agility_lookup_address_hits_total", "Lookups per local (destination) address assigned to a socket.")
    for a in addresses:
        out.append("agility_lookup_address_hits_total%s %d" % (_labels(address=a["address"]), a["hits"]))
    family("agility_lookup_address_drops_total", "Lookups per local address that matched a binding but were dropped.")
    for a in addresses:
        out.append("agility_lookup_address_drops_total%s %d" % (_labels(address=a["address"]), a["drops"]))
    return "\n".join(out) + "\n"
