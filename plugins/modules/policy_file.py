#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: policy_file
short_description: Write a PoP's addressing policy file, validated and atomically
version_added: 0.1.0
author: Agility Addressing Maintainers (@agility-addressing)
description:
  - Writes the policy file the agility.addressing DNS responder serves (format
    C(agility.addressing/policy) version 1, see docs/policy-format.md).
  - The document is validated with the same code the responder uses before anything is written.
    Bad input fails with a message naming each bad field, and the file on disk is left untouched.
  - The file is written as canonical JSON to a temporary file in the same directory and renamed into
    place, so readers never see a half-written file.
  - Idempotent; supports check mode and diff.
  - A zone's C(soa.serial) of C(auto) is written as a number - the serial in the file now while the
    zone's content is unchanged, else the current time in seconds (or the serial now plus one if
    that is not after it). A numeric serial that goes backwards from the one in the file now (RFC 1982)
    is refused.
extends_documentation_fragment:
  - ansible.builtin.files
  - agility.addressing.attributes
  - agility.addressing.attributes.platform
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  path:
    description: Where the policy file lives on the host.
    type: path
    required: true
  policy:
    description:
      - The policy document, usually built with the P(agility.addressing.pop_policy#filter) filter.
    type: dict
    required: true
  validate_cmd:
    description:
      - An extra command run against the temporary file before it replaces O(path); C(%s) is replaced
        by the temporary file's path. For example the responder's C(agility-dns --check-config %s).
    type: str
  backup:
    description: Keep a timestamped copy of the previous file.
    type: bool
    default: false
notes:
  - O(mode) defaults to C(0640) so the responder's group can read the file and others cannot.
"""

EXAMPLES = r"""
- name: Render the PoP's policy file
  agility.addressing.policy_file:
    path: /etc/agility/policy.json
    owner: root
    group: agility-dns
    mode: "0640"
    policy: >-
      {{ agility_pools | agility.addressing.pop_policy(inventory_hostname, agility_pop_index,
         policies=agility_policies, zones=agility_zones) }}
    validate_cmd: /opt/agility/venv/bin/agility-dns --check-config %s
  notify: Reload agility-dns

- name: A minimal document
  agility.addressing.policy_file:
    path: /tmp/policy.json
    policy:
      format: agility.addressing/policy
      version: 1
      pop:
        name: pop1
      pools:
        edge:
          ipv4:
            announced: 198.18.16.0/20
            used: 198.18.16.0/24
      policies:
        - name: everyone
          pool: edge
          ttl: 300
"""

RETURN = r"""
path:
  description: The policy file.
  returned: always
  type: str
  sample: /etc/agility/policy.json
digest:
  description: Content digest of the document; the responder reports the same value as its policy version.
  returned: success
  type: str
  sample: 3f2a9c0d1b4e5f60
problems:
  description: Every validation problem, as field and message, when the document is invalid.
  returned: failure
  type: list
  elements: dict
  sample: [{"field": "policies[0](free).strategy", "message": "unknown strategy 'fastest'"}]
backup_file:
  description: The backup of the previous file, when O(backup=true) and it changed.
  returned: changed and backup
  type: str
"""

import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.agility.addressing.plugins.module_utils.policy import (
    PolicyError, digest, dumps, format_problems, loads, resolve_serials, validate,
)


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def _write_temp(module, directory, text):
    fd, tmp = tempfile.mkstemp(prefix=".policy-", suffix=".json.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(to_bytes(text))
            handle.flush()
            os.fsync(handle.fileno())
    except (IOError, OSError) as exc:
        os.unlink(tmp)
        module.fail_json(msg="cannot write a temporary file in %s: %s" % (directory, to_native(exc)))
    return tmp


def _run_validate(module, cmd, tmp):
    if "%s" not in cmd:
        os.unlink(tmp)
        module.fail_json(msg="validate_cmd must contain %%s (the file to check): %s" % cmd)
    rc, out, err = module.run_command(cmd % tmp)
    if rc != 0:
        os.unlink(tmp)
        module.fail_json(msg="validate_cmd rejected the policy: %s" % (err or out).strip(),
                         rc=rc, stdout=out, stderr=err)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            policy=dict(type="dict", required=True),
            validate_cmd=dict(type="str"),
            backup=dict(type="bool", default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = module.params["path"]
    doc = module.params["policy"]
    if module.params["mode"] is None:
        module.params["mode"] = "0640"

    problems = validate(doc)
    if problems:
        module.fail_json(msg="invalid addressing policy for %s: %s" % (path, format_problems(problems)),
                         path=path, problems=[{"field": f, "message": m} for f, m in problems])

    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory) and not module.check_mode:
        # in check mode an earlier task may be about to create it
        module.fail_json(msg="directory %s does not exist" % directory, path=path)

    before = _read(path)
    try:
        served = loads(before) if before is not None else None
    except PolicyError:
        served = None  # an unreadable file is replaced; nothing to compare serials with
    try:
        doc = resolve_serials(doc, served, time.time())
    except PolicyError as exc:
        module.fail_json(msg="invalid addressing policy for %s: %s" % (path, exc), path=path,
                         problems=[{"field": f, "message": m} for f, m in exc.problems])
    text = dumps(doc)
    content_changed = before != text
    result = dict(path=path, digest=digest(doc), changed=content_changed)
    if module._diff:
        result["diff"] = dict(before=before or "", after=text,
                              before_header=path if before is not None else "%s (absent)" % path,
                              after_header=path)

    if content_changed and not module.check_mode:
        tmp = _write_temp(module, directory, text)
        if module.params["validate_cmd"]:
            _run_validate(module, module.params["validate_cmd"], tmp)
        if module.params["backup"] and before is not None:
            result["backup_file"] = module.backup_local(path)
        module.atomic_move(tmp, path, unsafe_writes=module.params["unsafe_writes"])

    file_args = module.load_file_common_arguments(module.params, path=path)
    if os.path.exists(path):
        # in check mode this only predicts; a file about to be created gets its
        # attributes together with its content
        attr_diff = dict(before={}, after={})
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"],
                                                                  diff=attr_diff)
        if module._diff and (attr_diff["before"] or attr_diff["after"]):
            result["diff"] = [result["diff"], attr_diff]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
