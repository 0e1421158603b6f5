"""The signature scheme, version 1: what is signed, and how it is checked.

Pure: no files, no clock, no configuration; the caller passes keys and the
time.  ``doc/source/security.rst`` describes the same scheme for a
third-party implementation; the two must not drift (``tests/unit/identity``
checks the examples of that page against this module).

A request carries, in its context under ``nova_rt_identity``, a *stamp*::

    {"v": 1, "principal": "host-a", "key_id": "3f1c…", "ts": 1765100000123,
     "nonce": "9b2e…(32 hex)", "sig": "<base64 Ed25519 signature>"}

signed over ``b"nova-rt-rpc-v1\\n"`` followed by the canonical form
(``canonical.dumps``, RFC 8785) of::

    {"v": 1, "kind": "request", "topic": "nova-rt-compute", "server": "host-a",
     "method": "instance_claim", "args": {...as sent...},
     "principal": "host-a", "key_id": "3f1c…", "ts": 1765100000123,
     "nonce": "9b2e…"}

A reply to a stamped request, from a receiver that has a key, is the
envelope ``{"nova_rt_reply": {"v", "principal", "key_id", "sig"},
"result": <the method's result>}``, signed over the same prefix and the
canonical form of ``{"v": 1, "kind": "reply", "method", "request_nonce",
"principal", "key_id", "result"}``.  A refusal carries the same
``nova_rt_reply`` object among the remote exception's keyword arguments,
signed over ``{"v": 1, "kind": "error", "method", "request_nonce",
"principal", "key_id", "error": {"class": <name>, "message": <text>}}``.
The request's nonce binds a reply to its request, so a reply cannot be
replayed to another call.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import hashlib
import re
import secrets
import threading
from typing import Iterable, Mapping, Optional

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from nova_rt import validation
from nova_rt.identity import canonical

VERSION = 1
#: Where the stamp travels in the request context.
CONTEXT_KEY = 'nova_rt_identity'
#: Where a reply's signature travels: the reply envelope, an error's kwargs.
REPLY_KEY = 'nova_rt_reply'
_DOMAIN = b'nova-rt-rpc-v1\n'

#: A principal's name is also a file name in ``[identity] keys_dir``.
PRINCIPAL_PATTERN = r'[A-Za-z0-9][A-Za-z0-9._@-]{0,127}'
_PRINCIPAL = re.compile(PRINCIPAL_PATTERN + r'\Z')
_NONCE = re.compile(r'[0-9a-f]{32}\Z')
_KEY_ID = re.compile(r'[0-9a-f]{16}\Z')
#: An Ed25519 signature in base64.
_SIG_LENGTH = 88


class Refused(Exception):
    """Why a message or reply is not accepted, in words for the log.

    Never carries a key or a signature.
    """


def valid_principal(name) -> bool:
    return isinstance(name, str) and _PRINCIPAL.match(name) is not None


def public_raw(public_key: ed25519.Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw,
                                   serialization.PublicFormat.Raw)


def key_id(public_key: ed25519.Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(public_raw(public_key)).hexdigest()[:16]


def verify_key(public_key: ed25519.Ed25519PublicKey) -> nacl.signing.VerifyKey:
    """What ``verify`` checks with.

    Signing and checking run in libsodium (PyNaCl), twice as fast as
    OpenSSL's Ed25519 here (``bench/bench_identity.py``); the key files are
    read with ``cryptography``.  Both are Ed25519 (RFC 8032): same keys,
    same signatures.
    """
    return nacl.signing.VerifyKey(public_raw(public_key))


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """A principal's own key."""

    principal: str
    private_key: ed25519.Ed25519PrivateKey
    key_id: str = dataclasses.field(init=False)
    _signer: nacl.signing.SigningKey = dataclasses.field(init=False,
                                                         repr=False)

    def __post_init__(self):
        seed = self.private_key.private_bytes_raw()
        object.__setattr__(self, '_signer', nacl.signing.SigningKey(seed))
        object.__setattr__(self, 'key_id', key_id(self.private_key.public_key()))

    @property
    def verify_key(self) -> nacl.signing.VerifyKey:
        return self._signer.verify_key

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self._signer.sign(data).signature).decode('ascii')


# -- what is signed -----------------------------------------------------------

def _signed(document: dict) -> bytes:
    return _DOMAIN + canonical.dumps(document)


def request_bytes(*, topic: str, server: Optional[str], method: str,
                  args: Mapping, principal: str, key_id: str, ts: int,
                  nonce: str) -> bytes:
    return _signed({'v': VERSION, 'kind': 'request', 'topic': topic,
                    'server': server, 'method': method, 'args': args,
                    'principal': principal, 'key_id': key_id, 'ts': ts,
                    'nonce': nonce})


def reply_bytes(*, method: str, request_nonce: str, principal: str,
                key_id: str, result) -> bytes:
    return _signed({'v': VERSION, 'kind': 'reply', 'method': method,
                    'request_nonce': request_nonce, 'principal': principal,
                    'key_id': key_id, 'result': result})


def error_bytes(*, method: str, request_nonce: str, principal: str,
                key_id: str, error_class: str, message: str) -> bytes:
    return _signed({'v': VERSION, 'kind': 'error', 'method': method,
                    'request_nonce': request_nonce, 'principal': principal,
                    'key_id': key_id,
                    'error': {'class': error_class, 'message': message}})


# -- the sender's side -------------------------------------------------------

def new_nonce() -> str:
    return secrets.token_hex(16)


def stamp_request(key: SigningKey, *, topic: str, server: Optional[str],
                  method: str, args: Mapping, ts: int,
                  nonce: Optional[str] = None) -> dict:
    """The stamp for a request; ``ts`` in milliseconds since the epoch.

    ``ValueError`` if ``args`` have no canonical form (NaN, a non-string
    key): such a call could not be checked by anyone.
    """
    nonce = nonce or new_nonce()
    kid = key.key_id
    data = request_bytes(topic=topic, server=server, method=method, args=args,
                         principal=key.principal, key_id=kid, ts=ts,
                         nonce=nonce)
    return {'v': VERSION, 'principal': key.principal, 'key_id': kid,
            'ts': ts, 'nonce': nonce, 'sig': key.sign(data)}


def seal(key: SigningKey, data_of) -> dict:
    """A reply's signature object: ``data_of(principal, key_id)`` gives the
    bytes (``reply_bytes`` or ``error_bytes`` with those filled in)."""
    kid = key.key_id
    return {'v': VERSION, 'principal': key.principal, 'key_id': kid,
            'sig': key.sign(data_of(key.principal, kid))}


# -- the receiver's side -----------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Stamp:
    principal: str
    key_id: str
    ts: int
    nonce: str
    sig: bytes


def read_stamp(raw) -> Stamp:
    """The stamp of a request context, or ``Refused`` saying what is wrong."""
    if raw is None:
        raise Refused('the message is not signed')
    if not isinstance(raw, dict):
        raise Refused('the signature is not an object')
    if raw.get('v') != VERSION:
        raise Refused(f'signature scheme {validation.short(raw.get("v"))} is not '
                      f'version {VERSION}')
    principal, kid = raw.get('principal'), raw.get('key_id')
    ts, nonce, sig = raw.get('ts'), raw.get('nonce'), raw.get('sig')
    if not valid_principal(principal):
        raise Refused('the principal is not a valid name')
    if not (isinstance(kid, str) and _KEY_ID.match(kid)):
        raise Refused('the key id is malformed')
    if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
        raise Refused('the time stamp is not a whole number of milliseconds')
    if not (isinstance(nonce, str) and _NONCE.match(nonce)):
        raise Refused('the nonce is not 32 lowercase hex digits')
    return Stamp(principal, kid, ts, nonce, _signature(sig))


def read_seal(raw) -> tuple:
    """(principal, key_id, signature) of a reply's signature object."""
    if not isinstance(raw, dict) or raw.get('v') != VERSION:
        raise Refused('the reply is not signed')
    principal, kid = raw.get('principal'), raw.get('key_id')
    if not valid_principal(principal):
        raise Refused('the reply\'s principal is not a valid name')
    if not (isinstance(kid, str) and _KEY_ID.match(kid)):
        raise Refused('the reply\'s key id is malformed')
    return principal, kid, _signature(raw.get('sig'))


def _signature(sig) -> bytes:
    if not isinstance(sig, str) or len(sig) != _SIG_LENGTH:
        raise Refused('the signature is malformed')
    try:
        return base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise Refused('the signature is malformed') from None


def check_window(ts_ms: int, now_ms: int, window_s: int) -> None:
    skew_s = (now_ms - ts_ms) / 1000
    if abs(skew_s) > window_s:
        when = 'old' if skew_s > 0 else 'in the future'
        raise Refused(f'the time stamp is {abs(skew_s):.0f}s {when}, outside '
                      f'the replay window of {window_s}s')


def verify(public_keys: Mapping, kid: str, sig: bytes, data) -> None:
    """Check ``sig`` over ``data()`` with the principal's key ``kid``.

    ``data`` is a callable so that nothing is canonicalised for a message
    whose key is unknown anyway.
    """
    if not public_keys:
        raise Refused('no key is known for this principal')
    public_key = public_keys.get(kid)
    if public_key is None:
        raise Refused(f'key {kid} is not one of this principal\'s')
    try:
        public_key.verify(data(), sig)
    except nacl.exceptions.BadSignatureError:
        raise Refused('the signature does not match') from None
    except ValueError:
        # What has no canonical form was not signed by anyone.
        raise Refused('the signed values have no canonical form') from None


class NonceCache:
    """Nonces seen within the replay window, so that each is accepted once.

    Entries leave once their message would be outside the window anyway;
    ``limit`` bounds memory under a flood (the oldest go first).
    """

    def __init__(self, limit: int = 1_000_000):
        self._seen: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, nonce: str, expires_ms: int, now_ms: int) -> bool:
        """True if ``nonce`` is new (and now remembered), False if seen."""
        seen = self._seen
        with self._lock:
            while seen:
                oldest, expiry = next(iter(seen.items()))
                if expiry > now_ms and len(seen) < self.limit:
                    break
                del seen[oldest]
            if nonce in seen:
                return False
            seen[nonce] = expires_ms
            return True


# -- who may do what ---------------------------------------------------------

#: Method.who values (``nova_rt.rpctable``).
ANYONE = 'anyone'           # reads
OWN_HOST = 'own-host'       # the compute host named by the ``host`` argument
OPERATOR = 'operator'       # [identity] operators
CONDUCTOR = 'conductor'     # [identity] conductors, and operators

WHO = (ANYONE, OWN_HOST, OPERATOR, CONDUCTOR)


@dataclasses.dataclass(frozen=True)
class Policy:
    operators: frozenset = frozenset()
    conductors: frozenset = frozenset()

    @classmethod
    def of(cls, operators: Iterable[str] = (), conductors: Iterable[str] = ()):
        return cls(frozenset(operators), frozenset(conductors))

    def check(self, who: str, principal: str, arguments: Mapping) -> None:
        """``Refused`` unless ``principal`` may call a method of ``who``."""
        if who == ANYONE or principal in self.operators:
            return
        if who == OWN_HOST:
            host = arguments.get('host')
            if principal == host:
                return
            raise Refused(f'{principal} may write only for its own host, '
                          f'not for {validation.short(host)}')
        if who == CONDUCTOR and principal in self.conductors:
            return
        allowed = 'operators' if who == OPERATOR else 'conductors or operators'
        raise Refused(f'{principal} is not one of the {allowed} '
                      '([identity] operators, conductors)')
