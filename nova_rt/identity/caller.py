"""The calling side: stamp each request, accept only the callee's answer.

The project's RPC clients (``compute.rpcapi.ComputeAPI``, the conductor's
library; ``placement.rpcapi.PlacementAPI``; the ``nova-rt`` CLI) take a
``Caller``.  A reply must come signed by the principal that was called (the
compute host for its own topic, ``[identity] placement_principal`` for
placement) and bound to this request's nonce.  With ``enforce`` on, any other
reply, answer or refusal, is ``NotAuthorized``; with it off, it is logged and
accepted, as during an upgrade.
"""

from __future__ import annotations

import logging
import time
from typing import Optional

from nova_rt import exception
from nova_rt import rpc
from nova_rt.identity import keys as keys_mod
from nova_rt.identity import scheme

LOG = logging.getLogger(__name__)


def stamp(identity: Optional['Caller'], context, *, topic: str,
          server: Optional[str], method: str, args: dict) -> tuple:
    """(context to send, nonce): stamped by ``identity`` when there is one."""
    if identity is None:
        return context or {}, None
    return identity.stamp(context, topic=topic, server=server, method=method,
                          args=args)


def call(identity: Optional['Caller'], send, context, *, topic: str,
         server: Optional[str], method: str, args: dict):
    """``send(context)``, the call as a client makes it, signed and its
    answer or refusal checked when ``identity`` is given.

    The answer must come from the principal called: the server addressed
    (a compute host), or placement's principal for a topic call.
    """
    context, nonce = stamp(identity, context, topic=topic, server=server,
                           method=method, args=args)
    if identity is None:
        return send(context)
    expected = server if server is not None else identity.placement_principal
    try:
        reply = send(context)
    except exception.NovaRtException as exc:
        identity.check_error(expected, method, nonce, exc)
        raise
    return identity.open_reply(expected, method, nonce, reply)


class Caller:
    def __init__(self, *, own_key: Optional[keys_mod.OwnKey],
                 keyring: Optional[keys_mod.Keyring], enforce: bool,
                 placement_principal: str, clock=time.time):
        self.own_key = own_key
        self.keyring = keyring
        self.enforce = enforce
        self.placement_principal = placement_principal
        self._clock = clock

    def stamp(self, context, *, topic: str, server: Optional[str],
              method: str, args: dict) -> tuple:
        """(context to send, nonce); the context unchanged and no nonce when
        this caller has no key."""
        sent = rpc.context_dict(context)
        if self.own_key is None:
            return sent, None
        try:
            stamp = scheme.stamp_request(
                self.own_key.get(), topic=topic, server=server, method=method,
                args=args, ts=int(self._clock() * 1000))
        except ValueError as exc:
            raise exception.InvalidInput(
                reason=f'{method}: the arguments cannot be signed: {exc}') from None
        sent[scheme.CONTEXT_KEY] = stamp
        return sent, stamp['nonce']

    def open_reply(self, expected: str, method: str, nonce: Optional[str],
                   reply):
        """The result inside a reply from ``expected``, checked."""
        if nonce is None:
            return reply
        if not (isinstance(reply, dict) and set(reply) == {scheme.REPLY_KEY,
                                                           'result'}):
            self._distrust(expected, method, 'the reply is not signed')
            return reply
        result = reply['result']
        try:
            self._verify(expected, reply[scheme.REPLY_KEY],
                         lambda principal, kid: scheme.reply_bytes(
                             method=method, request_nonce=nonce,
                             principal=principal, key_id=kid, result=result))
        except scheme.Refused as refused:
            self._distrust(expected, method, str(refused))
        return result

    def check_error(self, expected: str, method: str, nonce: Optional[str],
                    error: exception.NovaRtException) -> None:
        """Raise ``NotAuthorized`` (enforce on) if a refusal is not from
        ``expected``; it is the caller's to raise ``error`` otherwise."""
        if nonce is None:
            return
        seal = error.kwargs.pop(scheme.REPLY_KEY, None)
        name = type(error).__name__.removesuffix('_Remote')
        message = error.message
        try:
            if seal is None:
                raise scheme.Refused('the refusal is not signed')
            self._verify(expected, seal, lambda principal, kid: (
                scheme.error_bytes(method=method, request_nonce=nonce,
                                   principal=principal, key_id=kid,
                                   error_class=name, message=message)))
        except scheme.Refused as refused:
            self._distrust(expected, method,
                           f'{refused} ({name}: {message[:200]})')

    def _verify(self, expected: str, seal, data_of) -> None:
        principal, kid, sig = scheme.read_seal(seal)
        if principal != expected:
            raise scheme.Refused(f'it is signed by {principal}')
        keys = self.keyring.keys(principal) if self.keyring else {}
        scheme.verify(keys, kid, sig, lambda: data_of(principal, kid))

    def _distrust(self, expected: str, method: str, reason: str) -> None:
        if self.enforce:
            LOG.warning('Identity: refused the reply of %s to %s: %s',
                        expected, method, reason)
            raise exception.NotAuthorized(
                reason=f'the reply to {method} is not from {expected}: {reason}')
        LOG.debug('Identity: reply of %s to %s accepted only because '
                  '[identity] enforce is off: %s', expected, method, reason)
