"""Versioned notifications of the compute daemon (claims, moves, audits).

They go through an oslo.messaging ``Notifier``, so they are off unless the
operator sets ``[oslo_messaging_notifications] driver = messagingv2`` (the
library's default is no driver).  Payloads are versioned the way Nova's are
(``nova_object.name``/``version``/``data``) so that consumers can evolve.
Sending never fails a claim: a notification that cannot be sent is logged.
"""

from __future__ import annotations

import logging
from typing import Optional

LOG = logging.getLogger(__name__)

PUBLISHER = 'nova-rt-compute'
TOPICS = ('versioned_notifications',)
PAYLOAD_VERSION = '1.0'

#: RPC method -> (event type, payload name).
_EVENTS = {
    'instance_claim': ('compute.instance.claim', 'InstanceClaimPayload'),
    'abort_instance_claim': ('compute.instance.claim_abort', 'InstanceClaimPayload'),
    'update_instance': ('compute.instance.update', 'InstanceClaimPayload'),
    'claim_pci_devices': ('compute.instance.pci_claim', 'InstanceClaimPayload'),
    'free_pci_devices': ('compute.instance.pci_free', 'InstanceClaimPayload'),
    'resize_claim': ('compute.move.claim', 'MoveClaimPayload'),
    'rebuild_claim': ('compute.move.claim', 'MoveClaimPayload'),
    'live_migration_claim': ('compute.move.claim', 'MoveClaimPayload'),
    'update_migration': ('compute.move.update', 'MoveClaimPayload'),
    'drop_move_claim_at_source': ('compute.move.drop', 'MoveClaimPayload'),
    'drop_move_claim_at_dest': ('compute.move.drop', 'MoveClaimPayload'),
    'abort_move_claim': ('compute.move.abort', 'MoveClaimPayload'),
    'finish_move': ('compute.move.finish', 'MoveClaimPayload'),
    'run_audit': ('compute.audit', 'AuditPayload'),
}


def versioned(name: str, data: dict) -> dict:
    return {'nova_object.name': name,
            'nova_object.namespace': 'nova_rt',
            'nova_object.version': PAYLOAD_VERSION,
            'nova_object.data': data}


def _summary(method: str, arguments: dict, result) -> dict:
    """What a consumer needs, without copying whole payloads around."""
    data = {'method': method}
    instance = arguments.get('instance')
    migration = arguments.get('migration')
    if instance:
        data['instance_uuid'] = instance.get('uuid')
    if migration:
        data['migration_uuid'] = migration.get('uuid')
        data['instance_uuid'] = migration.get('instance_uuid')
        data['migration_type'] = migration.get('migration_type')
    for key in ('instance_uuid', 'migration_uuid', 'vm_state', 'task_state',
                'status', 'request_id', 'alias_counts', 'addresses'):
        if key in arguments:
            data[key] = arguments[key]
    if isinstance(result, dict):
        if 'resources' in result:
            data['resources'] = result['resources']
        if method == 'run_audit':
            data.update(result)
    return data


class ComputeNotifier:
    """``ComputeNotifier(notifier)``: ``notifier`` an oslo.messaging Notifier or None."""

    def __init__(self, notifier=None):
        self._notifier = notifier

    @classmethod
    def from_conf(cls, conf, host: str) -> 'ComputeNotifier':
        import oslo_messaging as messaging
        from nova_rt import rpc
        transport = rpc.get_notification_transport(conf)
        notifier = messaging.Notifier(
            transport, publisher_id=f'{PUBLISHER}:{host}',
            topics=list(TOPICS), serializer=rpc.ContextSerializer())
        return cls(notifier)

    @property
    def enabled(self) -> bool:
        return self._notifier is not None and self._notifier.is_enabled()

    def notify(self, context, method: str, arguments: dict, result=None,
               error: Optional[BaseException] = None) -> None:
        if not self.enabled or method not in _EVENTS:
            return
        event_type, payload_name = _EVENTS[method]
        data = _summary(method, arguments, result)
        try:
            if error is None:
                self._notifier.info(context or {}, event_type + '.end',
                                    versioned(payload_name, data))
            else:
                data['error'] = {'class': type(error).__name__,
                                 'message': str(error)}
                self._notifier.error(context or {}, event_type + '.error',
                                     versioned(payload_name, data))
        except Exception as exc:   # a lost notification must not fail a claim
            LOG.warning('Could not send notification %s: %s', event_type,
                        type(exc).__name__)

    def stop(self) -> None:
        if self._notifier is not None:
            try:
                self._notifier.transport.cleanup()
            except Exception:
                pass
