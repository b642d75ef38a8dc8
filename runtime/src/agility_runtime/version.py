"""The installed version of the runtime package, for the CLIs' ``--version``."""
import argparse
import sys

DIST = "agility-runtime"


def package_version():
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python < 3.8
        return "unknown"
    try:
        return version(DIST)
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


class VersionAction(argparse.Action):
    """``--version`` that reads the package metadata only when asked: importlib.metadata costs
    about 2 s of every CLI call on a small emulated host, and argparse's own ``version`` action
    needs the text while the parser is built."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help or "show the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write("%s %s\n" % (parser.prog, package_version()))  # stdout, as argparse's own
        parser.exit()
