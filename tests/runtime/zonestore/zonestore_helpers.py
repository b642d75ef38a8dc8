"""Zone data for the zone store tests."""

import copy
import json


def zone(serial=1, records=(), hostnames=None, account_type="free"):
    z = {"account_type": account_type,
         "soa": {"mname": "ns1.example.net", "rname": "hostmaster.example.net", "serial": serial, "minimum": 60},
         "ns": ["ns1.example.net"], "records": [dict(r) for r in records]}
    if hostnames is not None:
        z["hostnames"] = list(hostnames)
    return z


def txt(name, text):
    return {"name": name, "type": "TXT", "data": '"%s"' % text}


def write_source(path, zones):
    with open(path, "w") as handle:
        json.dump({"zones": copy.deepcopy(zones)}, handle)
    return str(path)


# The list of bad zones, each with the good zone it sits beside
BAD_ZONES = {
    "badrdata.example": zone(records=[{"name": "@", "type": "MX", "data": "ten mail"}]),
    "cname-beside.example": zone(records=[{"name": "www", "type": "CNAME", "data": "a.example.net."},
                                          txt("www", "also here")]),
    "outside.example": zone(records=[{"name": "www.elsewhere.example.", "type": "A", "data": "192.0.2.1"}]),
    "bigtxt.example": zone(records=[{"name": "t", "type": "TXT",
                                     "data": " ".join(['"%s"' % ("a" * 250)] * 42000)}]),  # 10.5 MB
}
