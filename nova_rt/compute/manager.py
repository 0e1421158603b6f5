"""The compute daemon's RPC endpoint: every compute method of the contract.

A thin edge around the tracker, derived from the table of methods
(``compute/methods.py``): validate the call (missing, unknown, oversized or
mistyped arguments are ``InvalidInput`` naming the argument, before anything
runs), call the tracker method of the same name, log the outcome (oslo.log
adds the caller's ``request_id`` to each line, see
``nova_rt.rpc.ContextSerializer``), send a notification, and nudge the service
so that placement hears of the change.  Errors are ``nova_rt.exception``
classes, which oslo.messaging carries to the caller under their own names;
an unknown method is oslo.messaging's ``NoSuchMethod``.
"""

from __future__ import annotations

import inspect
import logging
import time
from typing import Callable, Optional

import oslo_messaging as messaging

from nova_rt import exception
from nova_rt import metrics as metrics_mod
from nova_rt import rpctable
from nova_rt.compute import methods
from nova_rt.compute import notifications
from nova_rt.identity import guard as guard_mod

LOG = logging.getLogger(__name__)

#: A refusal's message as logged: the edge's own are short, and nobody's may
#: fill the log with a payload.
_LOGGED_MESSAGE = 500


@methods.TABLE.endpoint
class ComputeManager:
    """RPC endpoint. ``tracker`` has one method per RPC method.

    ``on_change()`` is called after every call that may have changed the
    node's usage; ``run_audit()`` (when given) replaces the tracker's own, so
    that the service can report to placement right after the audit.
    """

    # Serves every version up to the table's: 1.0 callers included.
    target = messaging.Target(version=methods.TABLE.version)

    def __init__(self, tracker, on_change: Optional[Callable[[], None]] = None,
                 run_audit: Optional[Callable[[], dict]] = None,
                 notifier: Optional[notifications.ComputeNotifier] = None,
                 identity: Optional[guard_mod.Guard] = None,
                 metrics: Optional[metrics_mod.RpcMetrics] = None):
        self.tracker = tracker
        self.metrics = metrics or metrics_mod.RpcMetrics('compute')
        self.identity = identity
        self._on_change = on_change
        self._run_audit = run_audit
        self.notifier = notifier or notifications.ComputeNotifier(None)
        self._parameters: dict = {}     # method -> what its handler takes

    def _serve(self, name: str, context, arguments: dict):
        with self.metrics.call(name):
            return self._call(name, context, arguments)

    def _call(self, name: str, context, sent: dict):
        method = methods.TABLE[name]
        started = time.monotonic()
        arguments = sent
        verdict = guard_mod.Verdict(name)
        try:
            verdict = guard_mod.admit(self.identity, context, method, sent)
            arguments = methods.TABLE.validate(name, sent)
            result = self._handle(method, arguments, sent)
        except exception.NovaRtException as exc:
            LOG.info('%s refused: %s: %s', name, type(exc).__name__,
                     _cut(str(exc)))
            if not isinstance(exc, exception.InvalidInput):
                self.notifier.notify(context, name, arguments, error=exc)
            verdict.seal_error(exc)
            # A refusal is part of the contract, not a server fault:
            # oslo.messaging sends it back without logging a traceback.
            raise messaging.ExpectedException()
        except Exception:
            LOG.exception('%s failed unexpectedly', name)
            raise
        elapsed_ms = (time.monotonic() - started) * 1000
        if method.read_only:
            LOG.debug('%s served in %.1f ms', name, elapsed_ms)
            return verdict.seal(result)
        # The tracker logs what a call changed at INFO; one line per call is
        # enough on the claim path.
        LOG.debug('%s %s done in %.1f ms', name, _subject(arguments), elapsed_ms)
        if self._on_change is not None and name != methods.AUDIT:
            self._on_change()
        self.notifier.notify(context, name, arguments, result)
        return verdict.seal(result)

    def _handle(self, method: rpctable.Method, arguments: dict, sent: dict):
        if method.name == methods.AUDIT and self._run_audit is not None:
            return self._run_audit()
        handler = getattr(self.tracker, method.handler)
        return handler(**self._fit(method, handler, arguments, sent))

    def _fit(self, method: rpctable.Method, handler, arguments: dict,
             sent: dict) -> dict:
        """The arguments the handler takes.

        A tracker may predate an optional argument of the table (the
        ``migration`` of ``update_migration``): it is then given only what it
        takes, and a value it could not take is refused rather than dropped.
        """
        takes = self._parameters.get(method.name)
        if takes is None:
            takes = self._parameters[method.name] = _parameters(handler)
        if takes is _ANY:
            return arguments
        fitted = {}
        for arg in method.arguments:
            value = arguments[arg.name]
            if arg.name in takes:
                fitted[arg.name] = value
            elif arg.name in sent and value != arg.default:
                raise exception.InvalidInput(
                    reason=f'{arg.name}: this nova-rt-compute cannot take it '
                           'yet (upgrade it, or leave the argument out)')
        return fitted


_ANY = frozenset(['*'])


def _parameters(handler) -> frozenset:
    """The keyword names ``handler`` takes (``_ANY`` for ``**kwargs``)."""
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return _ANY
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return _ANY
    return frozenset(p.name for p in params)


def _cut(text: str) -> str:
    if len(text) <= _LOGGED_MESSAGE:
        return text
    return f'{text[:_LOGGED_MESSAGE]}... ({len(text)} characters)'


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
