"""The audit gives way to the calls being served.

A claim and an audit in one process take turns on Python's GIL.  The audit's
gathering is thousands of short libvirt calls, each one giving up the GIL and
taking it back; every time it takes it back it makes a running claim give it
up (after ``sys.getswitchinterval()``).  Measured with ``bench/bench_rpc.py``
(1,000 domains, audits back to back, 2 cores, four runs): the claim round
trip's p50 went from 1.9-2.0 ms alone to 3.0-4.2 ms during audits, its p99
from 2.6-3.2 to 7.8-12 ms.

So the RPC endpoint marks each call it serves, and the audit's gathering calls
``give_way()`` between domains: while a call is being served, or for a short
grace after it (its reply is still being sent), the audit waits, at most
``max_wait`` each time, so that a stream of calls slows the audit down but
never stops it.  Five runs with it: p50 during audits 2.1-2.8 ms, p99
3.0-8.9 ms (median 5.4); an audit of 1,000 domains under that stream of
claims took 0.5-1.0 s instead of 0.04 s, at most ``max_wait`` per
``give_way()`` longer (``virt/host.py`` calls it every 4 domains).
"""

from __future__ import annotations

import contextlib
import threading
import time


class CallGate:
    def __init__(self, grace: float = 0.002, max_wait: float = 0.005):
        self.grace = grace
        self.max_wait = max_wait
        self._cond = threading.Condition()
        self._serving = 0
        self._quiet_at = 0.0

    @contextlib.contextmanager
    def serving(self):
        """Around a call served to a client."""
        with self._cond:
            self._serving += 1
        try:
            yield
        finally:
            with self._cond:
                self._serving -= 1
                self._quiet_at = time.monotonic() + self.grace
                self._cond.notify_all()

    def busy(self) -> bool:
        return bool(self._serving) or time.monotonic() < self._quiet_at

    def give_way(self) -> float:
        """Wait while a call is served (at most ``max_wait``); the seconds
        waited."""
        if not self.busy():          # the usual case: no lock taken
            return 0.0
        start = time.monotonic()
        deadline = start + self.max_wait
        with self._cond:
            while True:
                now = time.monotonic()
                if now >= deadline or not self.busy():
                    return now - start
                until = deadline if self._serving else min(
                    deadline, self._quiet_at)
                self._cond.wait(until - now)
