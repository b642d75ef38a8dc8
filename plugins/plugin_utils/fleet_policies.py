# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every PoP's policy file in one controller-side pass (the policy_files action plugin).

Pure parts (``host_inputs``, ``render``, ``changes``) and the one writer (``write_all``).
Rendering a fleet host by host costs a module run per PoP; here the documents are built
in-process with the same ``build_pop_policy`` and ``dumps`` the ``pop_policy`` filter and the
``policy_file`` module use, so a file rendered either way is byte-identical.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible.errors import AnsibleError

from ansible_collections.agility.addressing.plugins.module_utils.policy import PolicyError, dumps
from ansible_collections.agility.addressing.plugins.module_utils.pop_policy import build_pop_policy, describe

# build_pop_policy argument <- inventory variable (the same ones render_policies always read)
INPUTS = (
    ("pools", "addressing_pools"),
    ("index", "addressing_pop_index"),
    ("policies", "addressing_policies"),
    ("zones", "addressing_zones"),
    ("default_policy", "addressing_default_policy"),
    ("stages", "addressing_stages"),
)
FILE_SUFFIX = ".json"


def host_inputs(host, variables):
    """build_pop_policy's arguments for one host from its variables (a mapping)."""
    kwargs = {arg: variables[name] for arg, name in INPUTS if name in variables}
    kwargs["pop"] = variables["addressing_pop_name"] if "addressing_pop_name" in variables else host
    return kwargs


class HoldsTemplate(Exception):
    """The value holds a Jinja template: it must be rendered for its host."""


def plain(value, memo):
    """``value`` as plain dict/list/str/int/float/bool/None, without Ansible's data tags.

    Inventory data comes tagged (origin, trust); copying and validating tagged objects for every
    PoP costs more than rendering. Values shared by many hosts (group_vars) are converted once:
    ``memo`` maps id() of a converted object to its plain form (the caller keeps them alive).
    Raises ``HoldsTemplate`` for a string with ``{{``, ``{%`` or ``{#`` and ``TypeError`` for
    anything else.
    """
    key = id(value)
    if key not in memo:
        memo[key] = _plain(value, memo)
    return memo[key]


def _plain(value, memo):
    if value is None or value.__class__ in (str, int, float, bool):
        if value.__class__ is str and ("{{" in value or "{%" in value or "{#" in value):
            raise HoldsTemplate()
        return value
    if isinstance(value, str):
        return _plain(str.__str__(value), memo)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {plain(k, memo): plain(v, memo) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, memo) for v in value]
    raise TypeError("unsupported value of type %s" % type(value).__name__)


def host_variables(hostvars, host, names, memo, keepalive):
    """The host's variables among ``names`` as plain data, or the error text for that host.

    Read raw (one get_vars per host) and templated only where a value holds a template:
    templating 1,000 hosts' copies of the same group_vars costs seconds per hundred hosts.
    ``memo`` is keyed by id(), so ``keepalive`` holds every value read until the caller is done.
    """
    if host not in hostvars:
        return "host %s: not in the inventory" % host
    raw = hostvars.raw_get(host)
    out = {}
    for name in names:
        if name not in raw:
            continue
        value = raw[name]
        keepalive.append(value)
        try:
            try:
                out[name] = plain(value, memo)
            except HoldsTemplate:
                out[name] = plain(hostvars[host][name], {})
        except AnsibleError as exc:
            return "host %s: %s cannot be templated: %s" % (host, name, exc)
        except (TypeError, HoldsTemplate) as exc:
            return "host %s: %s: %s" % (host, name, exc or "still a template after templating")
    return out


def render(inputs):
    """``({host: file text}, [error text])`` for ``{host: build_pop_policy kwargs}``.

    Every host is tried, so one run reports every broken PoP, each by host and inventory variable.
    """
    texts = {}
    errors = []
    for host in sorted(inputs):
        kwargs = dict(inputs[host])
        if kwargs.get("pools") is None:
            errors.append("host %s: addressing_pools is not set" % host)
            continue
        try:
            texts[host] = dumps(build_pop_policy(**kwargs))
        except PolicyError as exc:
            errors.append(describe(host, exc))
        except (TypeError, ValueError, AttributeError) as exc:
            # a variable of the wrong shape altogether (a list where a mapping belongs, ...)
            errors.append("host %s: invalid addressing inventory: %s" % (host, exc))
    return texts, errors


def path_of(dest, host):
    return os.path.join(dest, host + FILE_SUFFIX)


def read_text(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def changes(dest, texts):
    """``[(host, text now on disk or None, new text)]`` for the files that differ, sorted by host."""
    out = []
    for host in sorted(texts):
        before = read_text(path_of(dest, host))
        if before != texts[host]:
            out.append((host, before, texts[host]))
    return out


def write_all(dest, changed, mode):
    """Write each changed file atomically (temporary file in ``dest``, fsync, rename)."""
    for host, _before, text in changed:
        fd, tmp = tempfile.mkstemp(prefix=".policy-", suffix=".json.tmp", dir=dest)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.rename(tmp, path_of(dest, host))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def check_host_name(host):
    """A host name that is safe as a file name in ``dest``, or the reason it is not."""
    if not host or host in (".", "..") or "/" in host or "\0" in host:
        return "host %r: its name cannot be a file name in the render directory" % host
    return None
