"""Fixtures for the agility-dns tests (helpers live in dns_helpers.py)."""

import pytest

from dns_helpers import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("dns"), args=("--tcp-timeout", "1.5", "--tcp-max-conns", "8"))
    yield srv
    srv.stop()


@pytest.fixture
def make_server(tmp_path):
    made = []

    def factory(**kw):
        srv = Server(_subdir(tmp_path, len(made)), **kw)
        made.append(srv)
        return srv
    yield factory
    for srv in made:
        srv.stop()


def _subdir(base, n):
    d = base / ("srv%d" % n)
    d.mkdir(exist_ok=True)
    return d
