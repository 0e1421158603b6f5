"""Heartbeats coalesced per (host, root) and written in one statement.

A 10,000-host fleet with 10 s heartbeats sends 1,000 heartbeat casts a
second; one transaction each (an ``UPDATE`` and a commit) was most of what a
placement process could absorb.  A heartbeat is a cast: nobody waits for its
write.  So each one is checked as before (identity, arguments: by the
manager, per message) and then only remembered in memory, ``(host, root) ->
placement's clock at receipt``; every ``[placement]
heartbeat_flush_interval_ms`` the remembered ones are written in one
statement, whatever their number, and a host that beat several times in
between costs one row.

What does not change:

- liveness is judged by placement's clock at *receipt* (the stamp written is
  the time the cast arrived, not the time of the flush), against the same
  ``heartbeat_timeout``;
- a heartbeat for a provider that is not a root of the sending host is
  ignored (no write), logged and counted as before, at the flush;
- a stamp never goes backwards (two processes flushing the same host, or a
  report's own stamp in between, keep the newest).

What it costs: a heartbeat is visible in the database at most one interval
(plus the flush itself) after it arrived.  On ``stop()`` (SIGTERM) the
remembered heartbeats are written before the process exits; a process that
is killed loses at most one interval of them, which the hosts' next
heartbeats (every ``heartbeat_interval``, 10 s by default) replace, far
inside ``heartbeat_timeout`` (60 s by default).  A flush that fails (database
away) keeps its heartbeats for the next one, unless a newer one arrived.
"""

from __future__ import annotations

import logging
import threading

from nova_rt.placement import common
from nova_rt.placement import db
from nova_rt.placement import provider_ops
from nova_rt.placement import transaction

LOG = logging.getLogger(__name__)


class HeartbeatCoalescer:
    """``add(host, root_uuid)`` from the RPC workers; ``flush()`` from a
    thread of its own every ``interval`` seconds between ``start()`` and
    ``stop()``.  ``metrics``: a ``PlacementMetrics`` (its ``heartbeats``
    counter is bumped at the flush, ``accepted`` or ``ignored``)."""

    def __init__(self, engine, interval: float, metrics=None,
                 clock=common.utcnow):
        self.engine = engine
        self.interval = interval
        self.metrics = metrics
        self.clock = clock
        self._guard = db.transaction_guard(engine)
        self._pending: dict = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = None
        #: Statements run by flushes (what the tests count).
        self.writes = 0

    def add(self, host: str, root_uuid: str, now=None) -> None:
        """Remember one heartbeat (checked already), stamped now."""
        stamp = now or self.clock()
        with self._lock:
            key = (host, root_uuid)
            old = self._pending.get(key)
            if old is None or old < stamp:
                self._pending[key] = stamp

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> tuple[list, list]:
        """Write what is remembered: ``(accepted, ignored)`` ``(host,
        root_uuid)`` pairs.  A database failure keeps the batch for the next
        flush and is raised."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return [], []
        try:
            accepted = self._write(batch)
        except Exception:
            with self._lock:
                for key, stamp in batch.items():
                    newer = self._pending.get(key)
                    if newer is None or newer < stamp:
                        self._pending[key] = stamp
            raise
        ignored = sorted(set(batch) - accepted)
        for host, root_uuid in ignored:
            LOG.warning('Ignored heartbeat from host %s for %s: not a root '
                        'provider of that host', host, root_uuid)
        if self.metrics is not None:
            if accepted:
                self.metrics.heartbeats.labels('accepted').inc(len(accepted))
            if ignored:
                self.metrics.heartbeats.labels('ignored').inc(len(ignored))
        return sorted(accepted), ignored

    @transaction.retried
    def _write(self, batch: dict) -> set:
        with self._guard, self.engine.begin() as conn:
            accepted = provider_ops.heartbeats(conn, batch)
        self.writes += 1
        return accepted

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='placement-heartbeats')
        self._thread.start()
        LOG.info('Heartbeats written every %s s', self.interval)

    def stop(self, timeout: float = 30) -> None:
        """Stop the thread, then write what is left (SIGTERM loses none)."""
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(timeout)
            self._thread = None
        self._flush_logged()

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception as error:    # kept for the next round
            LOG.warning('Writing %d heartbeats failed, retried in %s s: %s',
                        self.pending(), self.interval, db.describe(error))
