# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the host runtime (runtime/src) importable for the unit tests.

Some module tests run the real runtime (agility-edge as a server for reach_probe,
the sklookup model for sk_lookup_bindings). ansible-test builds its own venv without
it, so the tests use the source tree of this collection, also in child processes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

RUNTIME_SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "runtime", "src"))

if os.path.isdir(RUNTIME_SRC) and RUNTIME_SRC not in sys.path:
    sys.path.insert(0, RUNTIME_SRC)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (RUNTIME_SRC, os.environ.get("PYTHONPATH")) if p)

try:
    from hypothesis import settings
except ImportError:  # the modules' own tests do not need it
    settings = None

if settings is not None:
    # Hypothesis' 200 ms per-example deadline is a timing assertion: on a loaded 2-core CI
    # machine a cold first example took 304 ms and failed the run. Correctness is checked
    # by the properties themselves; speed by the benchmarks.
    settings.register_profile("agility", deadline=None)
    settings.load_profile("agility")
