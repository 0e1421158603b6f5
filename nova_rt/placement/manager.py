"""The placement RPC endpoint: validate, one transaction, operations, log.

Derived from the table of methods (``placement/methods.py``): each method
is ``method(self, context, /, **arguments)``, so that a missing, unexpected,
oversized or mistyped argument is an ``InvalidInput`` naming it rather than
a ``TypeError`` from Python, and is refused before the database is touched.
The operation of the same name (``operations``) then runs in one
transaction.  A transaction that loses a database race (a deadlock, a
PostgreSQL serialisation failure, SQLite busy) or its connection is retried
a few times by oslo.db's ``wrap_db_retry``: it was rolled back, so nothing
of it was written.

The database's own failures reach the caller as errors of the contract,
never as a driver's class: a race still lost after the retries is the
generation conflict it is (refresh and retry), and a database that cannot
be reached or fails is ``HypervisorUnavailable``, the contract's one error
for "a back end this call needs cannot be reached now; nothing changed; try
again later", with a message that names the placement database.
"""

from __future__ import annotations

import inspect
import logging

import oslo_messaging as messaging
from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc

from nova_rt import exception
from nova_rt import metrics as metrics_mod
from nova_rt import rpc
from nova_rt import validation
from nova_rt.identity import guard as guard_mod
from nova_rt.placement import db
from nova_rt.placement import methods
from nova_rt.placement import operations as ops

LOG = logging.getLogger(__name__)

_RETRIES = 5
_retried = oslo_db_api.wrap_db_retry(
    max_retries=_RETRIES - 1, retry_interval=0.01, inc_retry_interval=True,
    max_retry_interval=0.1, retry_on_deadlock=True, retry_on_disconnect=True,
    exception_checker=db.is_retryable)


def _heartbeat(session, host, root_uuid, sent_at):
    # sent_at is the host's clock (checked to be ISO-8601 by the table):
    # never trusted for liveness, placement's own clock is.
    return ops.heartbeat(session, host, root_uuid)


#: Operations that need an adapter to the RPC method's arguments.
_ADAPTED = {'heartbeat': _heartbeat}
#: Options of this process that operations take by keyword.
_OPTIONS = ('heartbeat_timeout', 'order', 'defer_heartbeat')


@methods.TABLE.endpoint
class PlacementManager:
    """RPC endpoint of ``nova-rt-placement`` (topic ``nova-rt-placement``)."""

    target = rpc.placement_target()

    def __init__(self, engine, conf, identity=None, metrics=None,
                 heartbeats=None):
        # Core connections, not ORM sessions: the operations issue plain
        # statements and the ORM's per-statement overhead was half the cost
        # of a report (bench/bench_placement.py).
        self.engine = engine
        self._guard = db.transaction_guard(engine)
        self.conf = conf
        self.identity = identity
        self.metrics = metrics or metrics_mod.PlacementMetrics()
        # A HeartbeatCoalescer (placement/heartbeats.py), or None: every
        # heartbeat written in its own transaction.
        self.heartbeats = heartbeats

    def _option(self, name: str):
        if name == 'defer_heartbeat':
            return self.heartbeats.add if self.heartbeats else None
        if name == 'heartbeat_timeout':
            return self.conf.placement.heartbeat_timeout
        return self.conf.placement.candidate_order

    def _operation(self, method):
        """The operation and the options of ours that it takes."""
        func = _ADAPTED.get(method.name) or getattr(ops, method.handler)
        params = inspect.signature(func).parameters
        return func, {name: self._option(name) for name in _OPTIONS
                      if name in params}

    def _serve(self, name: str, context, arguments: dict):
        with self.metrics.rpc.call(name):
            return self._serve_call(name, context, arguments)

    def _serve_call(self, name: str, context, arguments: dict):
        method = methods.TABLE[name]
        verdict = guard_mod.Verdict(name)
        try:
            verdict = guard_mod.admit(self.identity, context, method,
                                      arguments)
            arguments = methods.TABLE.validate(name, arguments)
            if name == 'heartbeat' and self.heartbeats is not None:
                # Checked above, written with the next batch; counted and
                # logged there.
                self.heartbeats.add(arguments['host'], arguments['root_uuid'])
                return verdict.seal(None)
            func, options = self._operation(method)
            result = self._transaction(name, arguments, func, options)
        except exception.NovaRtException as error:
            verdict.seal_error(error)
            raise
        _log_done(name, arguments, result)
        if name == 'heartbeat':
            self.metrics.heartbeats.labels(
                'accepted' if result else 'ignored').inc()
        return verdict.seal(result)

    @_retried
    def _attempt(self, arguments: dict, func, options: dict, attempts: list):
        attempts.append(None)
        with self._guard, self.engine.begin() as conn:
            return func(conn, **arguments, **options)

    def _transaction(self, name: str, arguments: dict, func, options: dict):
        attempts: list = []
        try:
            return self._attempts(name, arguments, func, options, attempts)
        finally:
            if len(attempts) > 1:
                self.metrics.db_retries.labels(name).inc(len(attempts) - 1)

    def _attempts(self, name: str, arguments: dict, func, options: dict,
                  attempts: list):
        try:
            return self._attempt(arguments, func, options, attempts)
        except exception.NotAuthorized as error:
            LOG.warning('Refused %s from host %s: %s', name,
                        arguments.get('host'), error)
            raise
        except exception.NovaRtException:
            raise
        except Exception as error:
            if db.is_duplicate(error) or (db.is_database_error(error)
                                          and db.is_retryable(error)
                                          and not _lost(error)):
                # Two writers created the same row at once, or kept
                # deadlocking: the loser retries with fresh data, as after
                # any generation conflict.
                LOG.info('%s lost a race to a concurrent writer', name)
                if name == 'report_allocations':
                    raise exception.ConsumerGenerationConflict(
                        consumer_uuid='(one of the reported consumers)',
                        reason='changed concurrently; retry') from None
                raise exception.ResourceProviderGenerationConflict(
                    uuid='(one of the reported providers)', expected='-',
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


def _log_done(name: str, arguments: dict, result) -> None:
    if name == 'report_provider_tree':
        # At INFO only when providers appear or go (provider_ops): a busy
        # placement takes hundreds of tree reports a second.
        LOG.debug('Provider tree of host %s: %d providers', arguments['host'],
                  len(result))
    elif name == 'report_allocations':
        LOG.debug('Allocations of host %s (%d consumers, full=%s) stored',
                  arguments['host'], len(arguments['allocations']),
                  arguments['full'])
    elif name == 'heartbeat' and not result:
        LOG.warning('Ignored heartbeat from host %s for %s: not a root '
                    'provider of that host', arguments['host'],
                    arguments['root_uuid'])
    elif name in ('set_traits', 'set_aggregates'):
        what = 'traits' if name == 'set_traits' else 'aggregates'
        LOG.info('%s of provider %s set to %s', what.capitalize(),
                 arguments['uuid'], validation.short(arguments[what]))
    elif name == 'delete_resource_provider':
        LOG.info('Provider %s and its descendants deleted', arguments['uuid'])


class PlacementEndpoint(PlacementManager):
    """What the RPC server dispatches to.

    The spec's errors are answers, not failures: marked expected, so that
    oslo.messaging logs them at debug instead of an ERROR traceback per
    refused write; the caller still gets them by class name.
    """

    _serve = messaging.expected_exceptions(
        *exception.RPC_ERRORS, exception.NotAuthorized)(PlacementManager._serve)
