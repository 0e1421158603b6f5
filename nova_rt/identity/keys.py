"""Key files: a principal's own key, and what verifies each principal.

In ``[identity] keys_dir``, one file per principal, named after it:

- ``<principal>.key``: the principal's private Ed25519 key (PEM, PKCS#8),
  mode 0600, only on the principal's own host;
- ``<principal>.pub``: what verifies it, on every receiver: one line per
  valid key, ``ed25519 <base64 of the 32 raw bytes> <key id>``, newest first.
  Two lines while a rotation is under way, so that both keys are accepted.

Ed25519 rather than a shared HMAC secret: a receiver holds nothing that
lets it sign as a sender, so a compromised placement or compute host cannot
speak for anyone else with what it has on disk.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
import tempfile
import threading
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from nova_rt.identity import scheme

LOG = logging.getLogger(__name__)

KEY_SUFFIX = '.key'
PUB_SUFFIX = '.pub'
KEY_TYPE = 'ed25519'
#: How many keys ``rotate`` leaves valid: the new one and the one before.
KEPT_ON_ROTATION = 2
#: How often a loaded key file is checked for a change (rotation), seconds.
RELOAD_INTERVAL = 1.0


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file."""


def _check_principal(principal: str) -> None:
    if not scheme.valid_principal(principal):
        raise KeyFileError(f'{principal!r} is not a valid principal name '
                           f'({scheme.PRINCIPAL_PATTERN})')


def key_path(keys_dir: str, principal: str) -> str:
    _check_principal(principal)
    return os.path.join(keys_dir, principal + KEY_SUFFIX)


def pub_path(keys_dir: str, principal: str) -> str:
    _check_principal(principal)
    return os.path.join(keys_dir, principal + PUB_SUFFIX)


# -- reading ----------------------------------------------------------------

def load_signing_key(path: str, principal: str) -> scheme.SigningKey:
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        raise KeyFileError(f'{path}: {exc.strerror}') from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f'{path}: not an unencrypted PEM private key') from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFileError(f'{path}: not an Ed25519 key')
    return scheme.SigningKey(principal, key)


def _public_keys(text: str, path: str) -> list:
    """The keys of a ``.pub`` file's text, in its order."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2 or fields[0] != KEY_TYPE:
            raise KeyFileError(f'{path}:{number}: not "{KEY_TYPE} <base64>"')
        try:
            raw = base64.b64decode(fields[1], validate=True)
            found.append(ed25519.Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError):
            raise KeyFileError(f'{path}:{number}: not an Ed25519 public '
                               'key') from None
    return found


def parse_public_keys(text: str, path: str = '<keys>') -> dict:
    """{key_id: what verifies it (``scheme.verify_key``)} of a ``.pub``
    file's text."""
    return {scheme.key_id(key): scheme.verify_key(key)
            for key in _public_keys(text, path)}


def public_line(public_key: ed25519.Ed25519PublicKey) -> str:
    raw = base64.b64encode(scheme.public_raw(public_key)).decode('ascii')
    return f'{KEY_TYPE} {raw} {scheme.key_id(public_key)}'


def readable_by_others(path: str) -> bool:
    return bool(os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO))


class Keyring:
    """What verifies each principal, read from ``keys_dir`` on demand.

    A file is read again when it changes (checked at most once a second per
    principal), so a rotation needs no restart.  A missing file is "no key":
    that principal's messages are refused.
    """

    def __init__(self, keys_dir: str, clock=time.monotonic):
        self.keys_dir = keys_dir
        self._clock = clock
        self._cache: dict = {}      # principal -> (checked_at, mtime, keys)
        self._lock = threading.Lock()

    def keys(self, principal: str) -> dict:
        now = self._clock()
        cached = self._cache.get(principal)
        if cached is not None and now - cached[0] < RELOAD_INTERVAL:
            return cached[2]
        path = pub_path(self.keys_dir, principal)
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            mtime = None
        if cached is not None and cached[1] == mtime:
            keys = cached[2]
        else:
            keys = self._read(path) if mtime is not None else {}
        with self._lock:
            self._cache[principal] = (now, mtime, keys)
        return keys

    @staticmethod
    def _read(path: str) -> dict:
        try:
            with open(path, encoding='utf-8') as f:
                return parse_public_keys(f.read(), path)
        except (OSError, UnicodeDecodeError, KeyFileError) as exc:
            LOG.warning('Identity: ignoring %s: %s', path, exc)
            return {}


class OwnKey:
    """This principal's signing key, read again when its file changes."""

    def __init__(self, path: str, principal: str, clock=time.monotonic):
        self.path = path
        self.principal = principal
        self._clock = clock
        self._mtime = os.stat(path).st_mtime_ns
        self._key = load_signing_key(path, principal)
        self._checked = clock()

    def get(self) -> scheme.SigningKey:
        now = self._clock()
        if now - self._checked >= RELOAD_INTERVAL:
            self._checked = now
            try:
                mtime = os.stat(self.path).st_mtime_ns
                if mtime != self._mtime:
                    self._key = load_signing_key(self.path, self.principal)
                    self._mtime = mtime
                    LOG.info('Identity: key of %s reloaded from %s (key %s)',
                             self.principal, self.path, self._key.key_id)
            except (OSError, KeyFileError) as exc:
                LOG.error('Identity: keeping the loaded key of %s: %s',
                          self.principal, exc)
        return self._key


# -- writing ----------------------------------------------------------------

def _write_atomic(path: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _private_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _existing_public(path: str) -> list:
    """The keys a ``.pub`` file holds now (a damaged file is not rotated)."""
    try:
        with open(path, encoding='utf-8') as f:
            return _public_keys(f.read(), path)
    except FileNotFoundError:
        return []


def _write_pair(keys_dir: str, principal: str, key_file: str | None,
                new_key, public_keys: list) -> tuple:
    os.makedirs(keys_dir, mode=0o755, exist_ok=True)
    private = key_file or key_path(keys_dir, principal)
    public = pub_path(keys_dir, principal)
    lines = ''.join(public_line(k) + '\n' for k in public_keys)
    # The public file first: a receiver must know the key before the
    # sender can use it.
    _write_atomic(public, lines.encode('ascii'), 0o644)
    _write_atomic(private, _private_pem(new_key), 0o600)
    return private, public


def create_key(keys_dir: str, principal: str,
               key_file: str | None = None) -> tuple:
    """Write a new key pair for ``principal``; (key path, pub path).

    Refuses to overwrite an existing key: that is what ``rotate_key`` is for.
    """
    private = key_file or key_path(keys_dir, principal)
    if os.path.exists(private):
        raise KeyFileError(f'{private} exists: use rotate-key to replace it')
    key = ed25519.Ed25519PrivateKey.generate()
    return _write_pair(keys_dir, principal, key_file, key, [key.public_key()])


def rotate_key(keys_dir: str, principal: str,
               key_file: str | None = None) -> tuple:
    """A new key for ``principal``; the previous one stays valid.

    (key path, pub path, the key ids now valid, newest first).
    """
    public = pub_path(keys_dir, principal)
    previous = _existing_public(public)
    key = ed25519.Ed25519PrivateKey.generate()
    kept = [key.public_key(), *previous][:KEPT_ON_ROTATION]
    private, public = _write_pair(keys_dir, principal, key_file, key, kept)
    return private, public, [scheme.key_id(k) for k in kept]


def retire_old_keys(keys_dir: str, principal: str,
                    key_file: str | None = None) -> tuple:
    """Keep only the principal's current key valid; (pub path, key id)."""
    private = key_file or key_path(keys_dir, principal)
    current = load_signing_key(private, principal)
    public = pub_path(keys_dir, principal)
    line = public_line(current.private_key.public_key()) + '\n'
    _write_atomic(public, line.encode('ascii'), 0o644)
    return public, current.key_id
