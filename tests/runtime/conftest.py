"""Settings shared by every runtime test."""

from hypothesis import settings

# No per-example deadline: runtime tests talk to real sockets and the kernel on a shared
# 2-core machine, where timing varies by an order of magnitude. Benchmarks measure speed.
settings.register_profile("agility-runtime", deadline=None)
settings.load_profile("agility-runtime")
