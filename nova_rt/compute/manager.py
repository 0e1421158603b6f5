"""The compute daemon's RPC endpoint: every compute method of the contract.

A thin edge around the tracker: validate the payload (``schemas``), call the
tracker method of the same name, log the outcome (oslo.log adds the caller's
``request_id`` to each line, see ``nova_rt.rpc.ContextSerializer``), send a
notification, and nudge the service so that placement hears of the change.
Errors are ``nova_rt.exception`` classes, which oslo.messaging carries to the
caller under their own names.  Unknown methods or arguments are refused by
oslo.messaging itself (``NoSuchMethod``, or a ``TypeError`` from the signature).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

import oslo_messaging as messaging

from nova_rt import exception
from nova_rt import rpc
from nova_rt.compute import gate as gate_mod
from nova_rt.compute import notifications
from nova_rt.compute import schemas

LOG = logging.getLogger(__name__)

#: Methods that only read: no report, no notification.
_READ_ONLY = frozenset(('get_host_state',))


class ComputeManager:
    """RPC endpoint. ``tracker`` has one method per RPC method.

    ``on_change()`` is called after every call that may have changed the
    node's usage; ``run_audit()`` (when given) replaces the tracker's own, so
    that the service can report to placement right after the audit.
    """

    target = messaging.Target(version=rpc.RPC_VERSION)

    def __init__(self, tracker, on_change: Optional[Callable[[], None]] = None,
                 run_audit: Optional[Callable[[], dict]] = None,
                 notifier: Optional[notifications.ComputeNotifier] = None,
                 gate: Optional[gate_mod.CallGate] = None):
        self.tracker = tracker
        self.gate = gate or gate_mod.CallGate()
        self._on_change = on_change
        self._run_audit = run_audit
        self.notifier = notifier or notifications.ComputeNotifier(None)

    def _call(self, method: str, context, **arguments):
        if method == 'run_audit':
            return self._serve(method, context, arguments)
        with self.gate.serving():
            return self._serve(method, context, arguments)

    def _serve(self, method: str, context, arguments: dict):
        started = time.monotonic()
        try:
            schemas.validate(method, arguments)
            if method == 'run_audit' and self._run_audit is not None:
                result = self._run_audit()
            else:
                result = getattr(self.tracker, method)(**arguments)
        except exception.NovaRtException as exc:
            LOG.info('%s refused: %s: %s', method, type(exc).__name__, exc)
            if not isinstance(exc, exception.InvalidInput):
                self.notifier.notify(context, method, arguments, error=exc)
            # A refusal is part of the contract, not a server fault:
            # oslo.messaging sends it back without logging a traceback.
            raise messaging.ExpectedException()
        except Exception:
            LOG.exception('%s failed unexpectedly', method)
            raise
        elapsed_ms = (time.monotonic() - started) * 1000
        if method in _READ_ONLY:
            LOG.debug('%s served in %.1f ms', method, elapsed_ms)
            return result
        # The tracker logs what a call changed at INFO; one line per call is
        # enough on the claim path.
        LOG.debug('%s %s done in %.1f ms', method, _subject(arguments), elapsed_ms)
        if self._on_change is not None and method != 'run_audit':
            self._on_change()
        self.notifier.notify(context, method, arguments, result)
        return result

    # -- claims of instances -------------------------------------------------

    def instance_claim(self, context, instance, nodename=None):
        return self._call('instance_claim', context, instance=instance,
                          nodename=nodename)

    def abort_instance_claim(self, context, instance_uuid):
        return self._call('abort_instance_claim', context,
                          instance_uuid=instance_uuid)

    def update_instance(self, context, instance_uuid, vm_state, task_state=None):
        return self._call('update_instance', context,
                          instance_uuid=instance_uuid, vm_state=vm_state,
                          task_state=task_state)

    # -- moves ---------------------------------------------------------------

    def resize_claim(self, context, instance, migration):
        return self._call('resize_claim', context, instance=instance,
                          migration=migration)

    def rebuild_claim(self, context, instance, migration):
        return self._call('rebuild_claim', context, instance=instance,
                          migration=migration)

    def live_migration_claim(self, context, instance, migration):
        return self._call('live_migration_claim', context, instance=instance,
                          migration=migration)

    def update_migration(self, context, migration_uuid, status):
        return self._call('update_migration', context,
                          migration_uuid=migration_uuid, status=status)

    def drop_move_claim_at_source(self, context, migration):
        return self._call('drop_move_claim_at_source', context,
                          migration=migration)

    def drop_move_claim_at_dest(self, context, migration_uuid):
        return self._call('drop_move_claim_at_dest', context,
                          migration_uuid=migration_uuid)

    def abort_move_claim(self, context, migration_uuid):
        return self._call('abort_move_claim', context,
                          migration_uuid=migration_uuid)

    def finish_move(self, context, migration_uuid):
        return self._call('finish_move', context, migration_uuid=migration_uuid)

    # -- PCI -------------------------------------------------------------------

    def claim_pci_devices(self, context, instance_uuid, alias_counts, request_id):
        return self._call('claim_pci_devices', context,
                          instance_uuid=instance_uuid,
                          alias_counts=alias_counts, request_id=request_id)

    def free_pci_devices(self, context, instance_uuid, addresses):
        return self._call('free_pci_devices', context,
                          instance_uuid=instance_uuid, addresses=addresses)

    # -- node ------------------------------------------------------------------

    def get_host_state(self, context):
        return self._call('get_host_state', context)

    def run_audit(self, context):
        return self._call('run_audit', context)


def _subject(arguments: dict) -> str:
    """The uuids a log line is about, never a whole payload."""
    instance = arguments.get('instance') or {}
    migration = arguments.get('migration') or {}
    parts = []
    uuid = instance.get('uuid') or arguments.get('instance_uuid') or \
        migration.get('instance_uuid')
    if uuid:
        parts.append(f'instance {uuid}')
    mig = migration.get('uuid') or arguments.get('migration_uuid')
    if mig:
        parts.append(f'migration {mig}')
    return ' '.join(parts) or 'node'
