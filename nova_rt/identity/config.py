"""``[identity]`` read into a ``Guard`` (receiving) and a ``Caller`` (calling).

``service`` is ``compute``, ``placement`` or ``cli``: only the principal's
default depends on it.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from nova_rt import exception
from nova_rt.identity import caller as caller_mod
from nova_rt.identity import guard as guard_mod
from nova_rt.identity import keys
from nova_rt.identity import scheme

LOG = logging.getLogger(__name__)


def principal(conf, service: str) -> str:
    if conf.identity.principal:
        return conf.identity.principal
    if service == 'placement':
        return conf.identity.placement_principal
    return conf.host


def key_file(conf, service: str) -> str:
    return conf.identity.key_file or keys.key_path(
        conf.identity.keys_dir, principal(conf, service))


def _error(option: str, reason: str) -> exception.ConfigError:
    return exception.ConfigError(reason=f'[identity] {option}: {reason}')


def check(conf, service: str) -> None:
    """``ConfigError`` (one line naming the option) for what cannot work."""
    group = conf.identity
    name = principal(conf, service)
    if not scheme.valid_principal(name):
        option = 'principal' if group.principal else (
            'placement_principal' if service == 'placement' else
            'principal (default [DEFAULT] host)')
        raise _error(option, f'{name!r} is not a valid principal name '
                             f'({scheme.PRINCIPAL_PATTERN})')
    for option in ('operators', 'conductors', 'placement_principal'):
        value = getattr(group, option)
        for item in (value if isinstance(value, list) else [value]):
            if not scheme.valid_principal(item):
                raise _error(option, f'{item!r} is not a valid principal name')
    if service == 'compute' and name != conf.host:
        # Placement takes a host's reports only from that host's principal.
        raise _error('principal', f'nova-rt-compute signs as its [DEFAULT] '
                     f'host {conf.host!r}, not {name!r}: leave it unset')
    if service == 'placement' and name != group.placement_principal:
        raise _error('principal', f'nova-rt-placement signs as {name!r} but '
                     f'clients expect placement_principal '
                     f'{group.placement_principal!r}')
    path = key_file(conf, service)
    if os.path.exists(path) or group.enforce:
        try:
            keys.load_signing_key(path, name)
        except keys.KeyFileError as exc:
            fix = (f'; create it with "nova-rt-manage identity create-key '
                   f'{name}"' if not os.path.exists(path) else '')
            raise _error('key_file', f'{exc}{fix}') from None
        if keys.readable_by_others(path):
            LOG.warning('Identity: %s can be read by other users; '
                        'chmod 600 it', path)
    if group.enforce and not os.path.isdir(group.keys_dir):
        raise _error('keys_dir', f'{group.keys_dir} is not a directory')


def _own_key(conf, service: str) -> Optional[keys.OwnKey]:
    path = key_file(conf, service)
    if not os.path.exists(path):
        return None
    return keys.OwnKey(path, principal(conf, service))


def caller(conf, service: str) -> caller_mod.Caller:
    """Stamps this process's calls (when it has a key) and checks replies."""
    return caller_mod.Caller(
        own_key=_own_key(conf, service),
        keyring=keys.Keyring(conf.identity.keys_dir),
        enforce=conf.identity.enforce,
        placement_principal=conf.identity.placement_principal)


def guard(conf, service: str, *, topic: str,
          server: Optional[str]) -> guard_mod.Guard:
    group = conf.identity
    return guard_mod.Guard(
        topic=topic, server=server, keyring=keys.Keyring(group.keys_dir),
        policy=scheme.Policy.of(group.operators, group.conductors),
        enforce=group.enforce, window_s=group.replay_window,
        own_key=_own_key(conf, service), open_reads=group.open_reads)
