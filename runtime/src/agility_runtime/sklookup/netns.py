"""Network namespace identity and switching."""
import ctypes
import os
import threading

CLONE_NEWNET = 0x40000000
SELF_NETNS = "/proc/thread-self/ns/net"


def current_ino():
    return os.stat(SELF_NETNS).st_ino


def open_current():
    return os.open(SELF_NETNS, os.O_RDONLY | os.O_CLOEXEC)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def setns(fd, nstype=CLONE_NEWNET):
    if _libc().setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: %s" % os.strerror(err))


def enter(path):
    """Move the calling thread into the network namespace at path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd)
    finally:
        os.close(fd)


def unshare():
    """Give the calling thread a fresh network namespace."""
    if _libc().unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "unshare(CLONE_NEWNET): %s" % os.strerror(err))


def call_in(path, fn, *args):
    """Call fn(*args) on a new thread inside the namespace at path; return its result.

    A thread, because setns() moves only the calling thread and the caller stays where it was;
    fn's exception is raised again in the caller.
    """
    box = {}

    def target():
        try:
            enter(path)
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: B036 - handed to the caller
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
