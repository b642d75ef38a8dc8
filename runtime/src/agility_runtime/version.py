"""The installed version of the runtime package, for the CLIs' ``--version``."""

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
