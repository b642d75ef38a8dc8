"""BPF sk_lookup socket dispatcher: bind whole prefixes and ports onto a few sockets.

See docs/sk-lookup.md. Entry point: ``agility-lookup`` (cli.main).
"""
from .errors import Error
from .model import Binding, plan

__all__ = ["Error", "Binding", "plan"]
