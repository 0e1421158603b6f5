"""Garbage-collector tuning shared by the long-running services.

A service imports oslo, SQLAlchemy, libvirt bindings and builds its caches at
start: hundreds of thousands of objects that live as long as the process.
CPython's generational collector walks every one of them at each full
collection, and a call that builds many containers (a candidates answer of
10,000 hosts, an audit of 1,000 domains) triggers several: measured on
placement, 10,000 candidates took 93 ms with the default collector and 45 ms
once the start-up objects were frozen (bench/bench_placement.py).

``gc.freeze()`` moves everything alive now into a permanent generation that
collections skip; objects made later are collected as usual, so reference
cycles created while serving are still freed.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect once, then exempt what survived from later collections.

    Returns how many objects were frozen (for the start-up log line).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
