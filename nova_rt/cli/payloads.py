"""Argument parsing and RPC payloads of the ``nova-rt`` CLI. Pure.

The ``*_arg`` functions are argparse ``type=`` callables: a bad value is a
usage error (exit code 2) before anything is sent.  The payload builders make
the contract's ``Flavor``, ``Instance`` and ``Migration`` dicts
(``shared/spec/rpc-api.md``); the daemons validate them again.

>>> resources_arg('VCPU=2,MEMORY_MB=2048')
{'VCPU': 2, 'MEMORY_MB': 2048}
"""

from __future__ import annotations

import argparse
import re
import uuid as uuidlib
from typing import Optional

_RESOURCE_CLASS = re.compile(r'^[A-Z][A-Z0-9_]*$')
_TRAIT = re.compile(r'^[A-Z][A-Z0-9_]*$')

#: ``migration <kind>`` -> the contract's migration_type.
MIGRATION_TYPES = {'resize': 'resize', 'migrate': 'migration',
                   'evacuate': 'evacuation', 'live': 'live-migration'}


def resource_arg(text: str) -> tuple[str, int]:
    """``VCPU=2`` -> ``('VCPU', 2)`` (``--resource``, as osc-placement)."""
    name, sep, amount = text.strip().partition('=')
    name = name.strip()
    if not sep or not _RESOURCE_CLASS.match(name):
        raise argparse.ArgumentTypeError(
            f'{text.strip()!r} is not RESOURCE_CLASS=N (e.g. VCPU=2)')
    try:
        value = int(amount)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f'{name}: amount {amount.strip()!r} is not a whole number >= 1')
    return name, value


def merge_resources(pairs) -> dict:
    """``[(RC, N), ...]`` -> ``{RC: N}``; a class given twice is a mistake,
    not a sum or a silent override."""
    resources: dict = {}
    for name, value in pairs:
        if name in resources:
            raise ValueError(f'{name} is given twice')
        resources[name] = value
    if not resources:
        raise ValueError('give at least one RESOURCE_CLASS=N (e.g. VCPU=2)')
    return resources


def resources_arg(text: str) -> dict:
    """``VCPU=2,MEMORY_MB=2048`` -> ``{'VCPU': 2, 'MEMORY_MB': 2048}``
    (the deprecated ``--resources``)."""
    try:
        return merge_resources(resource_arg(item) for item in text.split(','))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def trait_arg(text: str) -> str:
    if not _TRAIT.match(text):
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a trait name (e.g. HW_CPU_X86_AVX2, CUSTOM_FOO)')
    return text


def key_value_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition('=')
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f'{text!r} is not KEY=VALUE')
    return key.strip(), value


def uuid_arg(text: str) -> str:
    try:
        return str(uuidlib.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a UUID') from None


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number >= 0')
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number >= 1')
    return value


def flavor(vcpus: int, memory_mb: int, root_gb: int = 0, ephemeral_gb: int = 0,
           swap: int = 0, extra_specs: Optional[list] = None,
           name: Optional[str] = None) -> dict:
    """The contract's Flavor; ``extra_specs`` is a list of (key, value)."""
    return {'name': name or f'cli.{vcpus}c{memory_mb}m{root_gb}g',
            'vcpus': vcpus, 'memory_mb': memory_mb, 'root_gb': root_gb,
            'ephemeral_gb': ephemeral_gb, 'swap': swap,
            'extra_specs': dict(extra_specs or [])}


def instance(uuid: str, flavor: dict, project_id: str, user_id: str,
             vm_state: str = 'building') -> dict:
    return {'uuid': uuid, 'project_id': project_id, 'user_id': user_id,
            'flavor': flavor, 'vm_state': vm_state, 'task_state': None,
            'os_type': 'linux', 'is_volume_backed': False}


def migration(uuid: str, instance_uuid: str, kind: str, source: str, dest: str,
              old_flavor: Optional[dict], new_flavor: Optional[dict],
              status: str = 'pre-migrating') -> dict:
    """``kind`` is a ``migration`` subcommand (resize, migrate, evacuate, live)
    or already a contract migration_type."""
    return {'uuid': uuid, 'instance_uuid': instance_uuid,
            'migration_type': MIGRATION_TYPES.get(kind, kind), 'status': status,
            'source_compute': source, 'source_node': source,
            'dest_compute': dest, 'dest_node': dest,
            'old_flavor': old_flavor, 'new_flavor': new_flavor}


def new_uuid() -> str:
    return str(uuidlib.uuid4())
