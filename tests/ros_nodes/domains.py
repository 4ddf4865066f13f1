"""DDS domain ids for tests that pick one: never the same twice in a pytest process.

Cyclone keeps a domain's configuration (loopback, sample-size cap, DDS Security) for as long as
the process holds the domain (``ros_nodes.dds.cap_domain`` holds them for good), so a test that
reused another test's domain id would inherit its configuration. Ids 100-229: above the fixed
ones of test_stack and test_wire (91-94), inside what Cyclone's default port mapping and the
keystore's governance allow."""

from __future__ import annotations

import random

_used: set[int] = set()


def fresh_domain() -> int:
    free = [d for d in range(100, 230) if d not in _used]
    domain = random.choice(free)
    _used.add(domain)
    return domain
