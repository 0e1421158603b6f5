"""The placement RPC endpoint: validate, one transaction, operations, log.

Derived from the table of methods (``placement/methods.py``): each method
is ``method(self, context, /, **arguments)``, so that a missing, unexpected,
oversized or mistyped argument is an ``InvalidInput`` naming it rather than
a ``TypeError`` from Python, and is refused before the database is touched.
The operation of the same name (``operations``) then runs in one
transaction, on the path the REST API shares (``transaction``: retries of
lost races and connections, and the database's failures as errors of the
contract).
"""

from __future__ import annotations

import inspect
import logging

import oslo_messaging as messaging

from nova_rt import exception
from nova_rt import metrics as metrics_mod
from nova_rt import rpc
from nova_rt import validation
from nova_rt.identity import guard as guard_mod
from nova_rt.placement import allocation_ops
from nova_rt.placement import methods
from nova_rt.placement import operations as ops
from nova_rt.placement import provider_ops
from nova_rt.placement import transaction

LOG = logging.getLogger(__name__)

def _heartbeat(session, host, root_uuid, sent_at):
    # sent_at is the host's clock (checked to be ISO-8601 by the table):
    # never trusted for liveness, placement's own clock is.
    return ops.heartbeat(session, host, root_uuid)


#: Operations that need an adapter to the RPC method's arguments.
_ADAPTED = {'heartbeat': _heartbeat}
#: Reports answered without a write when they change nothing (with
#: heartbeats coalesced): the check, run before the operation, and which
#: reports it may find unchanged (an incremental allocation report never
#: is: it is not checked, and costs no connection for it).
_NO_WRITE_CHECKS = {
    'report_provider_tree': (provider_ops.unchanged_report, lambda a: True),
    'report_allocations': (allocation_ops.unchanged_report,
                           lambda a: a['full']),
}
#: Options of this process that operations take by keyword.
_OPTIONS = ('heartbeat_timeout', 'order')


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
        self.conf = conf
        self.identity = identity
        self.metrics = metrics or metrics_mod.PlacementMetrics()
        # A HeartbeatCoalescer (placement/heartbeats.py), or None: every
        # heartbeat written in its own transaction.
        self.heartbeats = heartbeats
        self._transactions = transaction.Transactions(
            engine, db_retries=self.metrics.db_retries)
        # method -> (operation, names of our options it takes): looked up
        # once, not per call (inspect.signature was 2.5% of the process's
        # samples under a stream of reports).  The options' values are read
        # per call, from the configuration as it is then.
        self._operations: dict = {}

    def _option(self, name: str):
        if name == 'heartbeat_timeout':
            return self.conf.placement.heartbeat_timeout
        return self.conf.placement.candidate_order

    def _operation(self, method):
        """The operation and the options of ours that it takes."""
        found = self._operations.get(method.name)
        if found is None:
            func = _ADAPTED.get(method.name) or getattr(ops, method.handler)
            params = inspect.signature(func).parameters
            found = self._operations[method.name] = (
                func, [name for name in _OPTIONS if name in params])
        func, names = found
        return func, {name: self._option(name) for name in names}

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
            result = self._unchanged(name, arguments)
            if result is None:
                result = self._transaction(name, arguments, func, options)
        except exception.NovaRtException as error:
            verdict.seal_error(error)
            raise
        _log_done(name, arguments, result)
        if name == 'heartbeat':
            self.metrics.heartbeats.labels(
                'accepted' if result else 'ignored').inc()
        return verdict.seal(result)

    def _unchanged(self, name: str, arguments: dict):
        """A report's answer when it changes nothing (its heartbeat
        deferred), from reads outside any transaction: no BEGIN and COMMIT
        round trips for the periodic resync; None to write it.  Only with
        heartbeats coalesced: without, every report writes its heartbeat."""
        check, applies = _NO_WRITE_CHECKS.get(name, (None, None))
        if (check is None or self.heartbeats is None
                or not applies(arguments)):
            return None
        return self._transactions.run(
            name, check, {**arguments, 'defer_heartbeat': self.heartbeats.add},
            reads_only=True)

    def _transaction(self, name: str, arguments: dict, func, options: dict):
        return self._transactions.run(
            name, func, {**arguments, **options},
            consumers_raced=name == 'report_allocations')


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
