"""agility-edge: the edge service that terminates connections on the pool.

It answers HTTP (optionally TLS) and a UDP "ping" with a small JSON document
naming the PoP and what the client reached (Host, SNI, the local address the
client connected to), so a client can prove which PoP and service it reached.

Standard library only, Python 3.9+.
"""

from .sockets import Listener, parse_listen, activated_listeners  # noqa: F401
from .server import EdgeServer  # noqa: F401
