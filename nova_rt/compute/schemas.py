"""JSON schemas of the compute RPC payloads (``shared/spec/rpc-api.md``).

Every call is checked here, at the edge, before the tracker sees it: the
tracker then only has to judge meaning (capacity, state), never types.  Payload
dicts allow unknown keys so that a newer conductor can talk to an older
daemon, but a known key with a wrong type or value is refused.

>>> validate('abort_instance_claim', {'instance_uuid': 'nope'})
Traceback (most recent call last):
...
nova_rt.exception.InvalidInput: Invalid input: instance_uuid: 'nope' is not a uuid
"""

from __future__ import annotations

import jsonschema
from jsonschema import validators

from nova_rt import exception
from nova_rt import objects

UUID_PATTERN = ('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
                '[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
PCI_ADDRESS_PATTERN = ('^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}'
                       '\\.[0-7]$')

#: Nova's migration statuses (nova/objects/migration.py and the API docs).
MIGRATION_STATUSES = (
    'queued', 'preparing', 'running', 'accepted', 'pre-migrating',
    'migrating', 'post-migrating', 'finished', 'confirming', 'confirmed',
    'reverting', 'reverted', 'completed', 'cancelled', 'failed', 'error',
    'done')

_UUID = {'type': 'string', 'pattern': UUID_PATTERN}
_NAME = {'type': 'string', 'minLength': 1, 'maxLength': 255}
_NULLABLE_STRING = {'type': ['string', 'null'], 'maxLength': 255}

FLAVOR = {
    'type': 'object',
    'properties': {
        'name': _NAME,
        'vcpus': {'type': 'integer', 'minimum': 1},
        'memory_mb': {'type': 'integer', 'minimum': 1},
        'root_gb': {'type': 'integer', 'minimum': 0},
        'ephemeral_gb': {'type': 'integer', 'minimum': 0},
        'swap': {'type': 'integer', 'minimum': 0},
        'extra_specs': {
            'type': 'object',
            'additionalProperties': {'type': 'string', 'maxLength': 255},
        },
    },
    'required': ['name', 'vcpus', 'memory_mb', 'root_gb', 'ephemeral_gb',
                 'swap'],
    'additionalProperties': True,
}

# ``required`` and ``properties`` only apply to objects, so null passes.
_NULLABLE_FLAVOR = dict(FLAVOR, type=['object', 'null'])

INSTANCE = {
    'type': 'object',
    'properties': {
        'uuid': _UUID,
        'project_id': _NAME,
        'user_id': _NAME,
        'flavor': FLAVOR,
        'vm_state': {'type': 'string', 'enum': list(objects.VM_STATES)},
        'task_state': _NULLABLE_STRING,
        'os_type': _NULLABLE_STRING,
        'is_volume_backed': {'type': 'boolean'},
    },
    'required': ['uuid', 'project_id', 'user_id', 'flavor'],
    'additionalProperties': True,
}

MIGRATION = {
    'type': 'object',
    'properties': {
        'uuid': _UUID,
        'instance_uuid': _UUID,
        'migration_type': {'type': 'string',
                           'enum': list(objects.MIGRATION_TYPES)},
        'status': {'type': 'string', 'enum': list(MIGRATION_STATUSES)},
        'source_compute': _NAME,
        'source_node': _NAME,
        'dest_compute': _NAME,
        'dest_node': _NAME,
        'old_flavor': _NULLABLE_FLAVOR,
        'new_flavor': _NULLABLE_FLAVOR,
    },
    'required': ['uuid', 'instance_uuid', 'migration_type', 'status',
                 'source_compute', 'source_node', 'dest_compute',
                 'dest_node'],
    'additionalProperties': True,
}

# A resize claims the new flavor: without it there is nothing to claim.
MIGRATION_WITH_NEW_FLAVOR = {
    'allOf': [MIGRATION, {'properties': {'new_flavor': FLAVOR},
                          'required': ['new_flavor']}],
}


def _arguments(required: dict, optional: dict | None = None) -> dict:
    return {
        'type': 'object',
        'properties': {**required, **(optional or {})},
        'required': sorted(required),
        # Unknown arguments never get this far: the endpoint's signature
        # makes oslo.messaging refuse them first.
        'additionalProperties': True,
    }


METHODS = {
    'instance_claim': _arguments({'instance': INSTANCE},
                                 {'nodename': _NULLABLE_STRING}),
    'abort_instance_claim': _arguments({'instance_uuid': _UUID}),
    'update_instance': _arguments(
        {'instance_uuid': _UUID,
         'vm_state': {'type': 'string', 'enum': list(objects.VM_STATES)}},
        {'task_state': _NULLABLE_STRING}),
    'resize_claim': _arguments({'instance': INSTANCE,
                                'migration': MIGRATION_WITH_NEW_FLAVOR}),
    'rebuild_claim': _arguments({'instance': INSTANCE,
                                 'migration': MIGRATION}),
    'live_migration_claim': _arguments({'instance': INSTANCE,
                                        'migration': MIGRATION}),
    'update_migration': _arguments(
        {'migration_uuid': _UUID,
         'status': {'type': 'string', 'enum': list(MIGRATION_STATUSES)}}),
    'drop_move_claim_at_source': _arguments({'migration': MIGRATION}),
    'drop_move_claim_at_dest': _arguments({'migration_uuid': _UUID}),
    'abort_move_claim': _arguments({'migration_uuid': _UUID}),
    'finish_move': _arguments({'migration_uuid': _UUID}),
    'claim_pci_devices': _arguments(
        {'instance_uuid': _UUID,
         'alias_counts': {
             'type': 'object', 'minProperties': 1,
             'propertyNames': {'minLength': 1, 'maxLength': 255},
             'additionalProperties': {'type': 'integer', 'minimum': 1,
                                      'maximum': 64}},
         'request_id': _UUID}),
    'free_pci_devices': _arguments(
        {'instance_uuid': _UUID,
         'addresses': {'type': 'array',
                       'items': {'type': 'string',
                                 'pattern': PCI_ADDRESS_PATTERN}}}),
    'get_host_state': _arguments({}),
    'run_audit': _arguments({}),
}


def _is_strict_integer(checker, value):
    # JSON has one number type, but 1.0 vCPU is a caller's bug, not a 1;
    # and True is not 1 either.
    return isinstance(value, int) and not isinstance(value, bool)


_Validator = validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        'integer', _is_strict_integer))

_VALIDATORS = {name: _Validator(schema) for name, schema in METHODS.items()}


def _field(path) -> str:
    return '.'.join(str(part) for part in path)


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the field: ``instance.flavor.vcpus: -1 is ...``."""
    path = list(error.absolute_path)
    if error.validator == 'required':
        # jsonschema reports the parent; the caller wants the missing field.
        missing = error.message.split("'")[1] if "'" in error.message else ''
        return f"{_field(path + [missing])}: is required"
    if error.validator == 'pattern' and error.schema.get('pattern') == UUID_PATTERN:
        return f"{_field(path)}: {error.instance!r} is not a uuid"
    if error.validator == 'pattern' and error.schema.get('pattern') == PCI_ADDRESS_PATTERN:
        return (f"{_field(path)}: {error.instance!r} is not a PCI address "
                "like 0000:81:00.1")
    message = error.message
    return f"{_field(path)}: {message}" if path else message


def validate(method: str, arguments: dict) -> None:
    """Raise InvalidInput naming the first bad field of ``arguments``."""
    validator = _VALIDATORS.get(method)
    if validator is None:
        raise exception.InvalidInput(reason=f"unknown method {method!r}")
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is not None:
        raise exception.InvalidInput(reason=_describe(error))
