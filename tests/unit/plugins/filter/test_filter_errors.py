# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to a filter is an AnsibleFilterError that says what was wrong, never a traceback."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.agility.addressing.plugins.filter.addressing import bisect_round, partition_slices

SLICES = ["192.0.2.1", "192.0.2.2"]


@pytest.mark.parametrize("call, message", [
    (lambda: bisect_round("a.example", 2, {}, SLICES, "192.0.2.10"), "expected a list of hostnames"),
    (lambda: bisect_round(["a.example"], 2, [("192.0.2.1", 3)], SLICES, "192.0.2.10"), "hits must map addresses"),
    (lambda: bisect_round(["a.example"], 2, {"192.0.2.1": "many"}, SLICES, "192.0.2.10"), "bisect_round: invalid literal"),
    (lambda: bisect_round(["a.example"], 2, {"not-an-address": 3}, SLICES, "192.0.2.10"), "bisect_round:"),
    (lambda: bisect_round([""], 2, {}, SLICES, "192.0.2.10"), "is not a domain name"),
    (lambda: partition_slices("a.example", 2), "expected a list of hostnames"),
    (lambda: partition_slices(["a.example"], 0), "at least 1"),
])
def test_bad_input_is_a_filter_error(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()
