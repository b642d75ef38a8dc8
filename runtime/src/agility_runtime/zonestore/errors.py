"""The errors of the zone store; each message is one line."""


class StoreError(Exception):
    """A store that cannot be opened, read or written (corrupt, newer format, missing)."""

    def __init__(self, message):
        super(StoreError, self).__init__(_one_line(message))


class SourceError(Exception):
    """A source file that cannot be read at all (not the problems of single zones)."""

    def __init__(self, message):
        super(SourceError, self).__init__(_one_line(message))


def _one_line(text):
    return str(text).replace("\r", "\\r").replace("\n", "\\n")
