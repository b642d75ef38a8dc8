"""The one exception type the CLI turns into a one-line error.

Defined in the shared binding model (which must not import the runtime), so
that its validation errors are this type too.
"""
from ..sklookup_model import Error

__all__ = ["Error"]
