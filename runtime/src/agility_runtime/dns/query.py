"""The query context: one per received message, filled in by the answer pipeline.

Pipeline (``handler.respond``): read the question and EDNS options into a ``Query``,
decide an outcome (``answer`` step: fast path for policy answers, dnspython path for
the rest), then encode.  Callers read the context afterwards: ``cookie_valid`` (the
client presented a valid server cookie: response rate limiting exempts it) and
``outcome``.
"""

# outcomes of the answer step
REFUSED = "REFUSED"
REFERRAL = "REFERRAL"
STATIC = "STATIC"
POLICY = "POLICY"
NODATA = "NODATA"
NXDOMAIN = "NXDOMAIN"
FORMERR = "FORMERR"
NOTIMP = "NOTIMP"
BADVERS = "BADVERS"
BADCOOKIE = "BADCOOKIE"
DROPPED = "DROPPED"


class Query:
    __slots__ = ("data", "peer", "local", "tcp", "cookie", "ecs", "nsid", "server_cookie",
                 "cookie_valid", "outcome", "cookie_verdict")

    def __init__(self, data, peer, local, tcp=False):
        self.data = data
        self.peer = peer
        self.local = local
        self.tcp = tcp
        # (cookie option data, server cookie to send, valid) of edns.check_cookie, kept across
        # passes: a bad server cookie leaves the fast path for the slow one, which would
        # otherwise hash it again (SipHash in Python, tens of microseconds)
        self.cookie_verdict = None
        self.reset()

    def reset(self):
        """Forget what an earlier (abandoned) pass read from the options."""
        self.cookie = None          # the COOKIE option's data (client + server cookie)
        self.ecs = None             # (family, source prefix length, address octets)
        self.nsid = False           # the client asked for our NSID
        self.server_cookie = None   # the server cookie to send back
        self.cookie_valid = False   # the client presented a valid server cookie
        self.outcome = None
