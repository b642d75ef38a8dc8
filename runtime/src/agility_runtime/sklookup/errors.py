"""The one exception type the CLI turns into a one-line error."""


class Error(Exception):
    """A user-facing failure of an agility-lookup operation (message is one line)."""
