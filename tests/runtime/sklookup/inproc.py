"""Run agility-lookup's main(argv) in this process (the test's netns): ~100x faster than a new process."""
import contextlib
import io
import json

from agility_runtime.sklookup import cli


class InprocResult(object):
    def __init__(self, rc, out, err):
        self.rc = rc
        self.out = out
        self.err = err

    @property
    def json(self):
        return json.loads(self.out)


def run(bpffs, *args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(["--bpffs", bpffs] + [str(a) for a in args])
        except SystemExit as e:  # argparse usage errors
            rc = e.code
    return InprocResult(rc, out.getvalue(), err.getvalue())


def ok(bpffs, *args):
    r = run(bpffs, *args)
    assert r.rc == 0, "agility-lookup %s failed: %s" % (" ".join(map(str, args)), r.err)
    return r
