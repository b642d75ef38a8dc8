"""The binding model of agility-lookup.

Its one home is plugins/module_utils/sk_lookup_model.py, shared with the
sk_lookup_bindings module; the runtime ships it as agility_runtime.sklookup_model.
"""
from ..sklookup_model import (
    LABEL_LEN, LABEL_RE, Binding, check_label, parse_port, parse_prefix, parse_protocol, parse_set, plan, sort_key)

__all__ = ["LABEL_LEN", "LABEL_RE", "Binding", "check_label", "parse_port", "parse_prefix", "parse_protocol",
           "parse_set", "plan", "sort_key"]
