"""Structured log lines on stderr: ``key=value`` (default) or JSON, one event per line.

Written with a single ``os.write`` so lines from several processes never interleave
and no lock is held (safe after ``fork``).
"""

import json
import os
import time

_FORMAT = {"value": "kv"}


def set_format(fmt):
    if fmt not in ("kv", "json"):
        raise ValueError("log format must be kv or json")
    _FORMAT["value"] = fmt


def _kv_value(value):
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


def format_line(level, event, fields):
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
              "level": level, "event": event, "pid": os.getpid()}
    record.update(fields)
    if _FORMAT["value"] == "json":
        return json.dumps(record, sort_keys=False, default=str) + "\n"
    return " ".join("%s=%s" % (k, _kv_value(v)) for k, v in record.items()) + "\n"


def log(level, event, **fields):
    line = format_line(level, event, fields).encode("utf-8", "replace")
    try:
        os.write(2, line)
    except OSError:
        pass


def info(event, **fields):
    log("info", event, **fields)


def warning(event, **fields):
    log("warning", event, **fields)


def error(event, **fields):
    log("error", event, **fields)
