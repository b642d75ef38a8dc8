# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A valid policy document the tests mutate."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.agility.addressing.plugins.module_utils.policy import FORMAT, VERSION

GOOD = {
    "format": FORMAT,
    "version": VERSION,
    "pop": {"name": "pop1", "index": 1},
    "pools": {
        "edge": {"ipv4": {"announced": "198.18.16.0/20", "used": "198.18.16.0/24"},
                 "ipv6": {"announced": "2001:db8:100::/44", "used": "2001:db8:100::/64"}},
        "standby": {"ipv4": {"announced": "198.18.32.0/20", "used": "198.18.32.0/24"},
                    "ipv6": {"announced": "2001:db8:200::/44", "used": "2001:db8:200::/64"}},
    },
    "policies": [
        {"name": "free", "match": {"account_types": ["free"]}, "pool": "edge", "ttl": 300},
        {"name": "diverse", "match": {"account_types": ["pro"]}, "pool": "edge", "ttl": 60,
         "secondary_pool": "standby"},
        {"name": "leak-watch", "match": {"zones": ["leak.example."]}, "pool": "edge", "ttl": 30,
         "strategy": "per_pop"},
        {"name": "bisect", "match": {"zones": ["dos.example."]}, "pool": "standby", "ttl": 30,
         "strategy": "partition", "slices": [["a.dos.example."], ["b.dos.example.", "c.dos.example."]]},
        {"name": "fallback", "pool": "edge", "ttl": 300, "strategy": "single"},
    ],
    "default_policy": "fallback",
    "zones": {
        "example.com.": {
            "account_type": "free",
            "soa": {"mname": "ns1.example.com.", "rname": "hostmaster.example.com.", "serial": 1},
            "ns": ["ns1.example.com."],
            "records": [{"name": "ns1", "type": "A", "data": "192.0.2.53"},
                        {"name": "@", "type": "TXT", "ttl": 60, "data": "\"hello\""}],
        },
        "pro.example.": {
            "account_type": "pro",
            "soa": {"mname": "ns1.example.com.", "rname": "hostmaster.example.com.", "serial": 7},
            "ns": ["ns1.example.com."],
        },
    },
}


def good():
    return copy.deepcopy(GOOD)
