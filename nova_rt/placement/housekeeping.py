"""Vacuuming the tables that every report churns (PostgreSQL).

Each allocation report deletes and inserts allocation and consumer rows and
updates its root provider and inventory rows.  PostgreSQL keeps the old row
versions as dead rows until a VACUUM, and until then every later report's
index scans and inserts step over them.  Autovacuum comes to a database only
once per ``autovacuum_naptime`` (one minute by default), and some servers run
with it off.  Measured on 2 cores with autovacuum off, incremental reports
through one process for eight 5 s rounds in a row
(``bench/bench_placement.py``'s lean caller): without this,
45,000 dead allocation rows piled up, PostgreSQL's CPU per report rose from
0.66 to 1.08 ms and the rate fell from 743 to 583 reports/s; with it (every
10 s, each VACUUM taking 3-5 ms) they held at 0.64-0.68 ms and 657-749/s.

So every ``[placement_database] vacuum_interval`` seconds each placement
process reads PostgreSQL's own count of dead rows in those tables and vacuums
(and analyzes) the ones past ``max(MIN_DEAD_ROWS, DEAD_FRACTION * live
rows)``:

- one process at a time: a session advisory lock, taken without waiting, so
  that several processes on one database do not queue up behind each other;
- only tables that the database user may vacuum (it owns them), so that a
  restricted account does not produce a warning every round;
- ``SKIP_LOCKED`` (a table autovacuum is already working on is skipped) and
  ``TRUNCATE false``, so that the VACUUM never waits for a lock and never
  takes the exclusive lock that would hold up the reports.

SQLite leaves no dead row versions behind, so nothing runs there.  A failure (database away)
is logged and retried at the next round.  It never stops the service.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib

import sqlalchemy as sa

from nova_rt.placement import models

LOG = logging.getLogger(__name__)

#: The tables that every report writes to.
CHURNED_TABLES = tuple(sorted(m.__tablename__ for m in (
    models.Allocation, models.Consumer, models.Inventory,
    models.ResourceProvider)))
#: A table is vacuumed once its dead rows reach this many...
MIN_DEAD_ROWS = 1000
#: ...and this fraction of its live rows (autovacuum's default is 0.2).
DEAD_FRACTION = 0.1
#: The advisory lock that one process at a time holds while it vacuums.
LOCK_KEY = zlib.crc32(b'nova_rt.placement.housekeeping')

_DEAD_ROWS = sa.text(
    'SELECT s.relname, s.n_live_tup, s.n_dead_tup '
    'FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid '
    'WHERE s.schemaname = current_schema() AND s.relname = ANY(:tables) '
    "AND pg_has_role(c.relowner, 'USAGE') ORDER BY s.relname")


def due(stats, min_dead: int = MIN_DEAD_ROWS,
        fraction: float = DEAD_FRACTION) -> list:
    """The tables to vacuum: ``stats`` is ``(name, live rows, dead rows)``
    rows."""
    return [name for name, live, dead in stats
            if dead >= max(min_dead, fraction * live)]


def vacuum_churned_tables(engine: sa.Engine) -> list:
    """Vacuum and analyze the churned tables that are due; the names of
    those vacuumed (none: none due, not PostgreSQL, or another process is
    at it)."""
    if engine.dialect.name != 'postgresql':
        return []
    with engine.connect().execution_options(
            isolation_level='AUTOCOMMIT') as conn:
        # A fresh view of the statistics (they are cached per transaction).
        conn.execute(sa.text('SELECT pg_stat_clear_snapshot()'))
        tables = due(conn.execute(_DEAD_ROWS,
                                  {'tables': list(CHURNED_TABLES)}).all())
        if not tables:
            return []
        if not conn.execute(sa.text('SELECT pg_try_advisory_lock(:key)'),
                            {'key': LOCK_KEY}).scalar():
            return []
        try:
            quote = conn.dialect.identifier_preparer.quote
            conn.execute(sa.text(
                'VACUUM (ANALYZE, SKIP_LOCKED, TRUNCATE false) '
                + ', '.join(quote(t) for t in tables)))
        finally:
            conn.execute(sa.text('SELECT pg_advisory_unlock(:key)'),
                         {'key': LOCK_KEY})
    return tables


class Housekeeper:
    """``vacuum_churned_tables`` every ``interval`` seconds in a thread of
    its own, from ``start()`` until ``stop()``.  Nothing on SQLite or with an
    interval of 0."""

    def __init__(self, engine: sa.Engine, interval: float):
        self.engine = engine
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = None
        self._failing = False

    @property
    def enabled(self) -> bool:
        return bool(self.interval) and self.engine.dialect.name == 'postgresql'

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='placement-vacuum')
        self._thread.start()
        LOG.info('Vacuuming the churned placement tables when due, checked '
                 'every %s s', self.interval)

    def stop(self, timeout: float = 30) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            self.run_once()

    def run_once(self) -> list:
        """One round; its failure is logged (once until it works again)."""
        start = time.monotonic()
        try:
            tables = vacuum_churned_tables(self.engine)
        except Exception as error:   # the service goes on without it
            log = LOG.debug if self._failing else LOG.warning
            # The driver's first line (psycopg's never holds the password),
            # not SQLAlchemy's message with the statement and its URL.
            reason = str(getattr(error, 'orig', None) or error).splitlines()
            log('Vacuum of the placement tables failed, retried in %s s: '
                '%s: %s', self.interval, type(error).__name__,
                reason[0] if reason else '')
            self._failing = True
            return []
        if self._failing:
            LOG.info('Vacuum of the placement tables works again')
            self._failing = False
        if tables:
            LOG.debug('Vacuumed %s in %.0f ms', ', '.join(tables),
                      (time.monotonic() - start) * 1000)
        return tables
