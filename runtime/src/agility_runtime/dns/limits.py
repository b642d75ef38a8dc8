"""Command-line options of the abuse limits: TCP limits (``tcplimits``) and response
rate limiting (``rrl``).  Defaults live here and nowhere else."""

import argparse

# dest -> (flag, type, default, help); the order is the order in --help
_OPTIONS = (
    ("tcp_timeout", "--tcp-timeout", "seconds", 10.0,
     "close a TCP connection idle this long between messages (default 10)"),
    ("tcp_msg_timeout", "--tcp-msg-timeout", "seconds", 0.5,
     "a TCP message must arrive whole within this long of its first byte, and queued answers must "
     "make progress within it (default 0.5)"),
    ("tcp_max_conns", "--tcp-max-conns", "count", 256,
     "TCP connections per worker; at the limit a newcomer closes the longest idle one (default 256)"),
    ("tcp_max_per_source", "--tcp-max-per-source", "count", 32,
     "TCP connections per worker from one IPv4 address or IPv6 /64 (default 32)"),
    ("rrl_rate", "--rrl-rate", "rate", 0.0,
     "response rate limiting: UDP answers per second per source prefix, over all workers; 0 = off "
     "(default 0)"),
    ("rrl_burst", "--rrl-burst", "rate", None,
     "answers a quiet prefix may get at once (default: the rate)"),
    ("rrl_slip", "--rrl-slip", "slip", 2,
     "send every Nth limited answer truncated (TC=1) so real clients retry over TCP; 0 = drop all, "
     "1 = truncate all (default 2)"),
    ("rrl_ipv4_prefix", "--rrl-ipv4-prefix", "v4len", 24, "IPv4 prefix length of one RRL bucket (default 24)"),
    ("rrl_ipv6_prefix", "--rrl-ipv6-prefix", "v6len", 56, "IPv6 prefix length of one RRL bucket (default 56)"),
    ("rrl_table_size", "--rrl-table-size", "count", 65536, "RRL buckets per worker (default 65536)"),
)


def _number(kind):
    def parse(text):
        try:
            value = float(text) if kind in ("seconds", "rate") else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number" % text)
        if kind == "seconds" and not 0 < value <= 3600:
            raise argparse.ArgumentTypeError("must lie in (0, 3600] seconds")
        if kind == "rate" and not 0 <= value <= 1e9:
            raise argparse.ArgumentTypeError("must lie in 0..1e9")
        if kind == "count" and value < 1:
            raise argparse.ArgumentTypeError("must be at least 1")
        if kind == "slip" and not 0 <= value <= 100:
            raise argparse.ArgumentTypeError("must lie in 0..100")
        if kind == "v4len" and not 1 <= value <= 32:
            raise argparse.ArgumentTypeError("must lie in 1..32")
        if kind == "v6len" and not 1 <= value <= 128:
            raise argparse.ArgumentTypeError("must lie in 1..128")
        return value
    return parse


def add_arguments(parser):
    for dest, flag, kind, default, help_text in _OPTIONS:
        parser.add_argument(flag, dest=dest, metavar=kind.upper(), type=_number(kind), default=default,
                            help=help_text)


def defaults():
    """The options' defaults, as attributes (what a config without these flags means)."""
    return argparse.Namespace(**{dest: default for dest, dummy, dummy2, default, dummy3 in _OPTIONS})


def copy_arguments(args, cfg):
    """Copy the parsed limit options onto the config object handed to the workers."""
    for dest, dummy, dummy2, dummy3, dummy4 in _OPTIONS:
        setattr(cfg, dest, getattr(args, dest))
