"""One transaction with retries: the path beneath both RPC and REST.

A transaction that loses a database race (a deadlock, a PostgreSQL
serialisation failure, SQLite busy) or its connection is retried a few
times by oslo.db's ``wrap_db_retry``: it was rolled back, so nothing of it
was written.  What is still lost after the retries, and a database that
cannot be used, reach the caller as errors of the contract, never as a
driver's class:

- two writers created the same row at once, or kept deadlocking: the
  generation conflict it is (``ResourceProviderGenerationConflict``, or
  ``ConsumerGenerationConflict`` when the caller says consumers raced);
- a database that cannot be reached or fails: ``HypervisorUnavailable``
  (the contract's "a back end this call needs cannot be reached now;
  nothing changed; try again later"), naming the placement database.

The RPC manager and the REST API each map those to their own answers (the
REST API gives its own exception for a lost race: ``lost_race``).
"""

from __future__ import annotations

import logging

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc

from nova_rt import exception
from nova_rt.placement import db

LOG = logging.getLogger(__name__)

RETRIES = 5
#: Retries a transaction that lost a race or its connection (used by
#: every writer of the placement database, RPC, REST and the heartbeat
#: flush alike).
retried = oslo_db_api.wrap_db_retry(
    max_retries=RETRIES - 1, retry_interval=0.01, inc_retry_interval=True,
    max_retry_interval=0.1, retry_on_deadlock=True, retry_on_disconnect=True,
    exception_checker=db.is_retryable)


class Transactions:
    """Runs ``func(conn, **kwargs)`` in one transaction on ``engine``."""

    def __init__(self, engine, db_retries=None):
        # Core connections, not ORM sessions: the operations issue plain
        # statements and the ORM's per-statement overhead was half the cost
        # of a report (bench/bench_placement.py).
        self.engine = engine
        # For statements that only read, each committed by itself: no BEGIN
        # and no COMMIT round trip (each statement sees what was committed
        # when it started, as in a READ COMMITTED transaction).  Made when
        # first needed.
        self._autocommit = None
        self._guard = db.transaction_guard(engine)
        #: A Prometheus counter by name (or None): retries taken.
        self.db_retries = db_retries

    def run(self, name: str, func, kwargs: dict,
            consumers_raced: bool = False, lost_race=None,
            reads_only: bool = False):
        """The result of ``func``; see the module's docstring for errors.

        ``name`` labels logs and metrics.  ``lost_race()``: the exception
        for a lost race instead of the contract's generation conflicts (the
        REST API's, which names no provider it does not know).
        ``reads_only``: ``func`` only reads, and needs no transaction: its
        statements run in autocommit mode.
        """
        attempts: list = []
        attempt = self._read_attempt if reads_only else self._attempt
        try:
            return self._attempts(name, attempt, func, kwargs, attempts,
                                  consumers_raced, lost_race)
        finally:
            if len(attempts) > 1 and self.db_retries is not None:
                self.db_retries.labels(name).inc(len(attempts) - 1)

    @retried
    def _attempt(self, func, kwargs: dict, attempts: list):
        attempts.append(None)
        with self._guard, self.engine.begin() as conn:
            return func(conn, **kwargs)

    @retried
    def _read_attempt(self, func, kwargs: dict, attempts: list):
        attempts.append(None)
        if self._autocommit is None:
            self._autocommit = self.engine.execution_options(
                isolation_level='AUTOCOMMIT')
        with self._guard, self._autocommit.connect() as conn:
            return func(conn, **kwargs)

    def _attempts(self, name, attempt, func, kwargs, attempts,
                  consumers_raced, lost_race):
        try:
            return attempt(func, kwargs, attempts)
        except exception.NotAuthorized as error:
            LOG.warning('Refused %s from host %s: %s', name,
                        kwargs.get('host'), error)
            raise
        except exception.NovaRtException:
            raise
        except Exception as error:
            if db.is_duplicate(error) or (db.is_database_error(error)
                                          and db.is_retryable(error)
                                          and not _lost(error)):
                # The loser retries with fresh data, as after any
                # generation conflict.
                LOG.info('%s lost a race to a concurrent writer', name)
                if lost_race is not None:
                    raise lost_race() from None
                if consumers_raced:
                    raise exception.ConsumerGenerationConflict(
                        consumer_uuid='(one of the consumers)',
                        reason='changed concurrently; retry') from None
                raise exception.ResourceProviderGenerationConflict(
                    uuid='(one of the providers)', expected='-',
                    current='changed concurrently') from None
            if not db.is_database_error(error):
                raise
            LOG.error('%s failed on the placement database: %s', name,
                      db.describe(error))
            raise exception.HypervisorUnavailable(
                message='The placement database cannot be used now (nothing '
                        f'was changed; retry later): {db.describe(error)}'
            ) from None


def _lost(error) -> bool:
    """The server went away (rather than a race that kept being lost)."""
    return isinstance(error, db_exc.DBConnectionError) or getattr(
        error, 'connection_invalidated', False)
