"""The placement RPC endpoint: validate, one transaction, operations, log.

Each method is ``method(self, context, **kwargs)`` so that a missing or
unexpected argument is an ``InvalidInput`` naming it (from the JSON schema)
rather than a ``TypeError`` from Python.  A transaction that loses a database
race (PostgreSQL deadlock or serialisation failure, SQLite busy) is retried a
few times: it was rolled back, so nothing of it was written.
"""

from __future__ import annotations

import datetime
import logging
import time

import oslo_messaging as messaging
from sqlalchemy import exc as sa_exc

from nova_rt import exception
from nova_rt import rpc
from nova_rt.placement import db
from nova_rt.placement import operations as ops
from nova_rt.placement import schemas

LOG = logging.getLogger(__name__)

_DEFAULTS = {
    'list_resource_providers': {'name': None, 'host': None, 'in_tree': None,
                                'member_of': None, 'required': None,
                                'resources': None},
    'get_usages': {'uuid': None, 'project_id': None},
    'get_allocation_candidates': {'required': [], 'forbidden': [],
                                  'member_of': [], 'limit': None},
}
_RETRIES = 5
RPC_METHODS = ('report_provider_tree', 'report_allocations', 'heartbeat',
               'list_resource_providers', 'get_resource_provider',
               'get_usages', 'get_allocations', 'get_allocation_candidates',
               'set_traits', 'set_aggregates', 'delete_resource_provider')
# PostgreSQL deadlock_detected and serialization_failure.
_RETRY_SQLSTATES = {'40P01', '40001'}


def _retryable(error: sa_exc.DBAPIError) -> bool:
    # A dropped connection (server restarted, idle connection cut) failed
    # before or during the transaction: it was rolled back, or if the commit
    # itself got through, the repeated write meets its own generation bump
    # and is refused as a conflict rather than applied twice.
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, 'sqlstate', None)
    return (sqlstate in _RETRY_SQLSTATES
            or 'database is locked' in str(error.orig))


class PlacementManager:
    """RPC endpoint of ``nova-rt-placement`` (topic ``nova-rt-placement``)."""

    target = rpc.placement_target()

    def __init__(self, engine, conf):
        # Core connections, not ORM sessions: the operations issue plain
        # statements and the ORM's per-statement overhead was half the cost
        # of a report (bench/bench_placement.py).
        self.engine = engine
        self._guard = db.transaction_guard(engine)
        self.conf = conf

    def _run(self, method: str, kwargs: dict, func, **extra):
        kwargs = {**_DEFAULTS.get(method, {}), **kwargs}
        schemas.validate(method, kwargs)
        for attempt in range(_RETRIES):
            try:
                with self._guard, self.engine.begin() as conn:
                    return func(conn, **kwargs, **extra)
            except exception.NotAuthorized as error:
                LOG.warning('Refused %s from host %s: %s', method,
                            kwargs.get('host'), error)
                raise
            except sa_exc.IntegrityError:
                # Two writers created the same row at once; the loser retries
                # with fresh data, as after any generation conflict.
                LOG.info('%s lost a race to a concurrent writer', method)
                if method == 'report_allocations':
                    raise exception.ConsumerGenerationConflict(
                        consumer_uuid='(one of the reported consumers)',
                        reason='changed concurrently; retry') from None
                raise exception.ResourceProviderGenerationConflict(
                    uuid='(one of the reported providers)', expected='-',
                    current='changed concurrently') from None
            except sa_exc.DBAPIError as error:
                if not _retryable(error) or attempt == _RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def _timeout(self) -> int:
        return self.conf.placement.heartbeat_timeout

    # -- writes from compute daemons ----------------------------------------

    def report_provider_tree(self, context, **kwargs):
        result = self._run('report_provider_tree', kwargs,
                           ops.report_provider_tree)
        # At INFO only when providers appear or go (provider_ops): a busy
        # placement takes hundreds of tree reports a second.
        LOG.debug('Provider tree of host %s: %d providers', kwargs['host'],
                  len(result))
        return result

    def report_allocations(self, context, **kwargs):
        result = self._run('report_allocations', kwargs,
                           ops.report_allocations)
        LOG.debug('Allocations of host %s (%d consumers, full=%s) stored',
                  kwargs['host'], len(kwargs['allocations']), kwargs['full'])
        return result

    def heartbeat(self, context, **kwargs):
        try:
            sent_at = datetime.datetime.fromisoformat(kwargs.get('sent_at', ''))
        except (TypeError, ValueError):
            LOG.warning('Ignored heartbeat from %s: sent_at is not ISO-8601',
                        kwargs.get('host'))
            return
        kwargs['sent_at'] = sent_at.isoformat()
        heard = self._run('heartbeat', kwargs, _heartbeat)
        if not heard:
            LOG.warning('Ignored heartbeat from host %s for %s: not a root '
                        'provider of that host', kwargs['host'],
                        kwargs['root_uuid'])

    # -- reads --------------------------------------------------------------

    def list_resource_providers(self, context, **kwargs):
        return self._run('list_resource_providers', kwargs,
                         ops.list_resource_providers,
                         heartbeat_timeout=self._timeout())

    def get_resource_provider(self, context, **kwargs):
        return self._run('get_resource_provider', kwargs,
                         ops.get_resource_provider,
                         heartbeat_timeout=self._timeout())

    def get_usages(self, context, **kwargs):
        return self._run('get_usages', kwargs, ops.get_usages)

    def get_allocations(self, context, **kwargs):
        return self._run('get_allocations', kwargs, ops.get_allocations)

    def get_allocation_candidates(self, context, **kwargs):
        return self._run('get_allocation_candidates', kwargs,
                         ops.get_allocation_candidates,
                         heartbeat_timeout=self._timeout(),
                         order=self.conf.placement.candidate_order)

    # -- operator writes ----------------------------------------------------

    def set_traits(self, context, **kwargs):
        result = self._run('set_traits', kwargs, ops.set_traits)
        LOG.info('Traits of provider %s set to %s', kwargs['uuid'],
                 kwargs['traits'])
        return result

    def set_aggregates(self, context, **kwargs):
        result = self._run('set_aggregates', kwargs, ops.set_aggregates)
        LOG.info('Aggregates of provider %s set to %s', kwargs['uuid'],
                 kwargs['aggregates'])
        return result

    def delete_resource_provider(self, context, **kwargs):
        self._run('delete_resource_provider', kwargs,
                  ops.delete_resource_provider)
        LOG.info('Provider %s and its descendants deleted', kwargs['uuid'])


class PlacementEndpoint(PlacementManager):
    """What the RPC server dispatches to.

    The spec's errors are answers, not failures: marked expected, so that
    oslo.messaging logs them at debug instead of an ERROR traceback per
    refused write; the caller still gets them by class name.
    """


_expected = messaging.expected_exceptions(*exception.RPC_ERRORS,
                                          exception.NotAuthorized)
for _name in RPC_METHODS:
    setattr(PlacementEndpoint, _name, _expected(getattr(PlacementManager, _name)))


def _heartbeat(session, host, root_uuid, sent_at):
    # sent_at is the host's clock: logged for skew, never trusted for liveness.
    return ops.heartbeat(session, host, root_uuid)
