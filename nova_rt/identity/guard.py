"""The receiving side: who sent this call, may they, and a signed answer.

Every RPC endpoint asks its ``Guard`` first, before validation or any other
check, so that an unauthorized call is ``NotAuthorized`` even where it would
also be a conflict or an invalid argument.  With ``[identity] enforce`` off
(an upgrade turning it on host by host), nothing is refused: a message that
would be is logged, at WARNING when it is signed wrongly, at DEBUG when it is
simply unsigned (every message of a host not yet upgraded is).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Optional

from nova_rt import exception
from nova_rt import validation
from nova_rt.identity import keys as keys_mod
from nova_rt.identity import scheme

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the guard found of one call; seals its answer."""

    method: str
    principal: Optional[str] = None     # checked, when the call was signed
    nonce: Optional[str] = None         # the request's, when it had a stamp
    key: Optional[scheme.SigningKey] = None
    #: The NotAuthorized to answer with instead of serving the call.
    refusal: Optional[exception.NotAuthorized] = None

    def seal(self, result):
        """The answer as it goes back: enveloped and signed when the call
        was stamped and this receiver has a key, else unchanged."""
        if self.nonce is None or self.key is None:
            return result
        try:
            signature = scheme.seal(self.key, lambda principal, kid: (
                scheme.reply_bytes(method=self.method,
                                   request_nonce=self.nonce,
                                   principal=principal, key_id=kid,
                                   result=result)))
        except ValueError:
            LOG.error('Identity: the result of %s has no canonical form; '
                      'sent unsigned', self.method)
            return result
        return {scheme.REPLY_KEY: signature, 'result': result}

    def seal_error(self, error: exception.NovaRtException) -> None:
        """Sign a refusal in place: the signature rides in its kwargs."""
        if (self.nonce is None or self.key is None
                or scheme.REPLY_KEY in error.kwargs):
            return
        name, message = type(error).__name__, error.message
        error.kwargs[scheme.REPLY_KEY] = scheme.seal(
            self.key, lambda principal, kid: scheme.error_bytes(
                method=self.method, request_nonce=self.nonce,
                principal=principal, key_id=kid, error_class=name,
                message=message))


def admit(guard: Optional['Guard'], context, method,
          arguments: dict) -> Verdict:
    """What every endpoint does first: the verdict on the call, or its
    refusal raised, signed (no guard: every call admitted, nothing signed).

    First, so that an unauthorized call is ``NotAuthorized`` whatever else
    is wrong with it (an invalid argument, a generation conflict).
    """
    if guard is None:
        return Verdict(method.name)
    verdict = guard.check(context, method, arguments)
    if verdict.refusal is not None:
        verdict.seal_error(verdict.refusal)
        raise verdict.refusal
    return verdict


class Guard:
    """Checks each call to one RPC server (``topic``, ``server``).

    ``server`` is the name callers address (the compute host), or None for a
    topic served by competing consumers (placement).
    """

    def __init__(self, *, topic: str, server: Optional[str],
                 keyring: keys_mod.Keyring, policy: scheme.Policy,
                 enforce: bool, window_s: int,
                 own_key: Optional[keys_mod.OwnKey] = None,
                 open_reads: bool = True, clock=time.time):
        self.topic = topic
        self.server = server
        self.keyring = keyring
        self.policy = policy
        self.enforce = enforce
        self.window_s = window_s
        self.own_key = own_key
        self.open_reads = open_reads
        self.nonces = scheme.NonceCache()
        self._clock = clock

    def check(self, context, method, arguments: dict) -> Verdict:
        """The verdict on a call of ``method`` (a ``rpctable.Method``);
        with ``enforce`` on, its ``refusal`` says when the call may not run."""
        raw = getattr(context, 'nova_rt_identity', None)
        # A cast has no answer to sign.
        key = (self.own_key.get() if self.own_key is not None
               and not method.cast else None)
        if raw is None and method.who == scheme.ANYONE and self.open_reads:
            return Verdict(method.name, key=key)
        claimed = raw.get('principal') if isinstance(raw, dict) else None
        nonce = None
        try:
            stamp = scheme.read_stamp(raw)
            nonce = stamp.nonce
            self._authenticate(stamp, method.name, arguments)
            self.policy.check(method.who, stamp.principal, arguments)
        except scheme.Refused as refused:
            refusal = self._refuse(method.name, claimed, str(refused),
                                   signed=raw is not None)
            return Verdict(method.name, nonce=nonce, key=key, refusal=refusal)
        return Verdict(method.name, stamp.principal, nonce, key)

    def _authenticate(self, stamp: scheme.Stamp, method: str,
                      arguments: dict) -> None:
        now_ms = int(self._clock() * 1000)
        scheme.check_window(stamp.ts, now_ms, self.window_s)
        scheme.verify(
            self.keyring.keys(stamp.principal), stamp.key_id, stamp.sig,
            lambda: scheme.request_bytes(
                topic=self.topic, server=self.server, method=method,
                args=arguments, principal=stamp.principal,
                key_id=stamp.key_id, ts=stamp.ts, nonce=stamp.nonce))
        # Only a genuine message is remembered: junk cannot fill the cache.
        if not self.nonces.add(stamp.nonce, stamp.ts + self.window_s * 1000,
                               now_ms):
            raise scheme.Refused('the message was seen before (replayed)')

    def _refuse(self, method: str, claimed, reason: str,
                signed: bool) -> Optional[exception.NotAuthorized]:
        who = _shown(claimed)
        if self.enforce:
            LOG.warning('Identity: refused %s from %s: %s', method, who, reason)
            return exception.NotAuthorized(reason=f'{method}: {reason}')
        LOG.log(logging.WARNING if signed else logging.DEBUG,
                'Identity: %s from %s accepted only because [identity] '
                'enforce is off: %s', method, who, reason)
        return None


def _shown(principal) -> str:
    if scheme.valid_principal(principal):
        return principal
    if principal is None:
        return '(no principal)'
    # repr, cut: a claimed name is the sender's word, of any size or type.
    return f'(invalid principal {validation.short(principal)})'
