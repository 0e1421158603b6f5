"""oslo.messaging plumbing shared by both services and their clients.

Targets name no exchange: the transport's ``control_exchange`` applies.  The
request context travels as a plain dict; on the server side it becomes an
oslo.context ``RequestContext`` stored for the worker thread, so that oslo.log
writes its ``request_id`` on every line logged while serving the call.
"""

from __future__ import annotations

import logging

import oslo_messaging as messaging
from oslo_context import context as oslo_context
from oslo_messaging._drivers import amqpdriver
# Imported before the bound below is set: it derives an option's maximum
# (kombu_reconnect_delay) from the unbounded value.
from oslo_messaging._drivers import impl_rabbit  # noqa: F401
from oslo_messaging.rpc import dispatcher as rpc_dispatcher

from nova_rt import rpctable
from nova_rt.conf import upgrade_levels
from nova_rt.identity import scheme as identity_scheme

LOG = logging.getLogger(__name__)

COMPUTE_TOPIC = 'nova-rt-compute'
PLACEMENT_TOPIC = 'nova-rt-placement'
#: The version clients' targets name (the spec's): a call names its own
#: version, the lowest its arguments need (``VersionCaps.prepare``).
RPC_VERSION = rpctable.BASE_VERSION

#: Longest wait, in seconds, of oslo.messaging's AMQP poll loops (an RPC
#: server's listener, a client's reply waiter) on an idle connection.
#: oslo.messaging doubles the wait while nothing arrives, up to 5 s, and sees
#: a stop only between two waits: an idle daemon took up to 6 s to stop (and
#: every client as long to clean up its transport).  With 0.5 s an idle
#: compute daemon stops in under a second (measured: 6.0 s before, 0.87 s
#: after); the price is two wake-ups a second per idle connection, inside
#: the process, with nothing sent on the wire.
IDLE_POLL_MAX_S = 0.5


def bound_idle_poll(seconds: float = IDLE_POLL_MAX_S) -> None:
    """Bound oslo.messaging's idle poll wait (``ACK_REQUEUE_EVERY_SECONDS_MAX``
    of its AMQP driver, read by its poll loops at each wait)."""
    if not hasattr(amqpdriver, 'ACK_REQUEUE_EVERY_SECONDS_MAX'):
        LOG.warning('oslo.messaging has no ACK_REQUEUE_EVERY_SECONDS_MAX: '
                    'stopping may wait for an idle poll of up to 5 s')
        return
    amqpdriver.ACK_REQUEUE_EVERY_SECONDS_MAX = min(
        seconds, amqpdriver.ACK_REQUEUE_EVERY_SECONDS_MAX)


bound_idle_poll()

#: Context keys a caller may send, by the type their value must have;
#: anything else is dropped.
_CONTEXT_STRINGS = ('request_id', 'global_request_id', 'user_id',
                    'project_id', 'domain_id', 'user_domain_id',
                    'project_domain_id')
_CONTEXT_FLAGS = ('is_admin', 'read_only', 'show_deleted')
#: oslo.context calls them user_id/project_id, older callers user/project.
_CONTEXT_RENAMED = {'user': 'user_id', 'project': 'project_id'}
#: An id longer than this is no id: it would be written on every log line
#: of the call.
_CONTEXT_STRING_LENGTH = 255


class ContextSerializer(messaging.NoOpSerializer):
    """Context dict on the wire, ``RequestContext`` in the server's thread.

    A context is the caller's word, checked like an argument but never a
    reason to refuse the call: a value of the wrong type or size is dropped
    (oslo.context then makes up its own ``request_id``), so that no context
    can make the dispatcher fail with a TypeError.  ``auth_token`` and
    ``roles`` are never kept, so never logged.  The sender's signature
    (``identity.scheme.CONTEXT_KEY``) is kept apart, as the context's
    ``nova_rt_identity``, for the endpoint's guard to check.
    """

    def serialize_context(self, context):
        return context_dict(context)

    def deserialize_context(self, context):
        context = context if isinstance(context, dict) else {}
        kwargs = {}
        for key in (*_CONTEXT_STRINGS, *_CONTEXT_RENAMED):
            value = _context_string(context.get(key))
            if value is not None:
                kwargs.setdefault(_CONTEXT_RENAMED.get(key, key), value)
        for key in _CONTEXT_FLAGS:
            if isinstance(context.get(key), bool):
                kwargs[key] = context[key]
        request = oslo_context.RequestContext(overwrite=True, **kwargs)
        request.nova_rt_identity = context.get(identity_scheme.CONTEXT_KEY)
        return request


def context_dict(context) -> dict:
    """A caller's context (None, a dict or a ``RequestContext``) as the dict
    that goes on the wire, a copy."""
    if context is None:
        return {}
    if isinstance(context, dict):
        return dict(context)
    return context.to_dict()


def _context_string(value):
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)      # a numeric id, as callers used to send
    if isinstance(value, str) and 0 < len(value) <= _CONTEXT_STRING_LENGTH:
        return value
    return None


def get_transport(conf):
    return messaging.get_rpc_transport(conf)


def get_notification_transport(conf):
    return messaging.get_notification_transport(conf)


def executor_for(conf) -> str:
    return 'eventlet' if conf.concurrency_backend == 'eventlet' else 'threading'


class TableAccessPolicy(messaging.ExplicitRPCAccessPolicy):
    """Only the methods an endpoint marks ``exposed`` (those of its table,
    ``nova_rt.rpctable``), and oslo.messaging's own ping.

    The default policy lets a caller name any public attribute, and calling
    ``tracker`` or ``target`` came back as a remote TypeError.  The ping
    endpoint exists only while ``[DEFAULT] rpc_ping_enabled`` is set (the
    dispatcher adds it then), so admitting it changes nothing otherwise; it
    answers 'pong' and reads nothing, so it needs no signature.
    """

    def is_allowed(self, endpoint, method):
        if isinstance(endpoint, rpc_dispatcher.PingEndpoint):
            return method == PING_METHOD
        return super().is_allowed(endpoint, method)


#: oslo.messaging's ping (``rpc_dispatcher.PingEndpoint``).
PING_METHOD = 'oslo_rpc_server_ping'


def get_server(conf, transport, target, endpoints):
    return messaging.get_rpc_server(
        transport, target, endpoints, executor=executor_for(conf),
        serializer=ContextSerializer(), access_policy=TableAccessPolicy)


def get_client(transport, target, version_cap=None, timeout=None):
    return messaging.get_rpc_client(
        transport, target, version_cap=version_cap, timeout=timeout,
        serializer=ContextSerializer())


def compute_target(host=None):
    return messaging.Target(topic=COMPUTE_TOPIC, server=host,
                            version=RPC_VERSION)


def placement_target():
    return messaging.Target(topic=PLACEMENT_TOPIC, version=RPC_VERSION)


class VersionCaps:
    """What a client may send to each peer of one API (``[upgrade_levels]``).

    ``cap``: None (the newest), ``'auto'``, a release name or ``'X.Y'``.
    With ``auto`` the client sends the newest version; a peer that answers
    ``UnsupportedVersion`` (oslo.messaging's dispatcher refuses the call
    before anything runs, so sending it again is safe) is remembered at the
    next older version until this process restarts, as Nova's ``auto``
    holds until a restart.
    """

    def __init__(self, table: rpctable.Table, api: str, cap=None):
        self.table = table
        self.api = api
        cap = upgrade_levels.version_cap(cap, api)
        self.auto = cap == upgrade_levels.AUTO
        #: The fixed cap, for oslo.messaging's own check too.
        self.cap = None if self.auto else cap
        self._learned: dict = {}

    def cap_for(self, peer=None):
        return self._learned.get(peer, self.cap)

    def can_send_version(self, version: str, peer=None) -> bool:
        cap = self.cap_for(peer)
        return cap is None or (rpctable.version_tuple(version)
                               <= rpctable.version_tuple(cap))

    def prepare(self, peer, method: str, arguments: dict) -> tuple:
        """(version, arguments) to send ``method`` to ``peer``."""
        return self.table.downgrade(method, arguments, self.cap_for(peer))

    def call(self, peer, method: str, arguments: dict, send):
        """``send(version, arguments)`` at the lowest version the arguments
        need, and once more at an older one when ``auto`` learns it must."""
        while True:
            version, sent = self.prepare(peer, method, arguments)
            try:
                return send(version, sent)
            except messaging.RemoteError as exc:
                if not self.step_down(peer, version, exc):
                    raise

    def step_down(self, peer, version: str, error: Exception) -> bool:
        """True when a call sent at ``version`` that failed with ``error``
        should be sent again, at the older version now remembered."""
        refused = getattr(error, 'exc_type', type(error).__name__)
        if not self.auto or not refused.startswith('UnsupportedVersion'):
            return False
        older = [v for v in self.table.versions
                 if rpctable.version_tuple(v) < rpctable.version_tuple(version)]
        if not older:
            return False
        self._learned[peer] = older[-1]
        LOG.warning('[upgrade_levels] %s = auto: %s does not serve %s; '
                    'sending it %s until this service restarts', self.api,
                    peer or self.api, version, older[-1])
        return True
