"""Fixtures for the agility-edge tests (helpers live in edge_helpers.py)."""

import pytest

from edge_helpers import Edge


@pytest.fixture
def edge_factory():
    started = []

    def start(*args, **kw):
        e = Edge(list(args), **kw)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()
