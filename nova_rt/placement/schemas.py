"""JSON schemas of the placement RPC methods' arguments.

``validate(method, kwargs)`` raises ``InvalidInput`` naming the offending
field (``providers[0].inventories.VCPU.total: -1 is less than the minimum
of 0``), before anything is read or written.  UUIDs are the canonical
lower-case form, as Nova writes them.
"""

from __future__ import annotations

import fastjsonschema
import jsonschema

from nova_rt import exception

MAX_INT = 2 ** 31 - 1
UUID = {'type': 'string',
        'pattern': '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'}
UUID_PATTERN = UUID['pattern']
NULLABLE_UUID = {'anyOf': [UUID, {'type': 'null'}]}
HOST = {'type': 'string', 'minLength': 1, 'maxLength': 255}
NAME = {'type': 'string', 'minLength': 1, 'maxLength': 200}
RC_PATTERN = '^[A-Z][A-Z0-9_]{0,254}$'
TRAIT = {'type': 'string', 'pattern': '^[A-Z][A-Z0-9_]{0,254}$'}
TRAITS = {'type': 'array', 'items': TRAIT, 'uniqueItems': True,
          'maxItems': 1000}
AGGREGATES = {'type': 'array', 'items': UUID, 'uniqueItems': True,
              'maxItems': 1000}
GENERATION = {'type': 'integer', 'minimum': 0, 'maximum': MAX_INT}
COUNT = {'type': 'integer', 'minimum': 0, 'maximum': MAX_INT}

INVENTORY = {
    'type': 'object',
    'required': ['total'],
    'additionalProperties': False,
    'properties': {
        'total': COUNT,
        'reserved': COUNT,
        'min_unit': {'type': 'integer', 'minimum': 1, 'maximum': MAX_INT},
        'max_unit': {'type': 'integer', 'minimum': 1, 'maximum': MAX_INT},
        'step_size': {'type': 'integer', 'minimum': 1, 'maximum': MAX_INT},
        'allocation_ratio': {'type': 'number', 'exclusiveMinimum': 0,
                             'maximum': 1e6},
    },
}

PROVIDER = {
    'type': 'object',
    'required': ['uuid', 'name'],
    'additionalProperties': False,
    'properties': {
        'uuid': UUID,
        'name': NAME,
        'parent_uuid': NULLABLE_UUID,
        'generation': {'anyOf': [GENERATION, {'type': 'null'}]},
        'inventories': {'type': 'object', 'maxProperties': 1000,
                        'propertyNames': {'pattern': RC_PATTERN},
                        'additionalProperties': INVENTORY},
        'traits': {'anyOf': [TRAITS, {'type': 'null'}]},
    },
}

AMOUNTS = {'type': 'object', 'propertyNames': {'pattern': RC_PATTERN},
           'additionalProperties': COUNT}

CONSUMER_ALLOCATION = {
    'type': 'object',
    'required': ['project_id', 'user_id', 'resources'],
    'additionalProperties': False,
    'properties': {
        'project_id': {'type': 'string', 'minLength': 1, 'maxLength': 255},
        'user_id': {'type': 'string', 'minLength': 1, 'maxLength': 255},
        'resources': {'type': 'object',
                      'propertyNames': {'pattern': UUID_PATTERN},
                      'additionalProperties': AMOUNTS},
    },
}


def _args(properties, required=()):
    return {'type': 'object', 'properties': properties,
            'required': list(required), 'additionalProperties': False}


def _nullable(schema):
    return {'anyOf': [schema, {'type': 'null'}]}


SCHEMAS = {
    'report_provider_tree': _args(
        {'host': HOST,
         'providers': {'type': 'array', 'items': PROVIDER, 'maxItems': 1000}},
        ['host', 'providers']),
    'report_allocations': _args(
        {'host': HOST, 'root_uuid': UUID, 'generation': GENERATION,
         'allocations': {'type': 'object',
                         'propertyNames': {'pattern': UUID_PATTERN},
                         'additionalProperties': CONSUMER_ALLOCATION},
         'full': {'type': 'boolean'}},
        ['host', 'root_uuid', 'generation', 'allocations', 'full']),
    'heartbeat': _args(
        {'host': HOST, 'root_uuid': UUID,
         'sent_at': {'type': 'string', 'minLength': 1, 'maxLength': 64}},
        ['host', 'root_uuid', 'sent_at']),
    'list_resource_providers': _args(
        {'name': _nullable(NAME), 'host': _nullable(HOST),
         'in_tree': NULLABLE_UUID, 'member_of': _nullable(AGGREGATES),
         'required': _nullable(TRAITS),
         'resources': _nullable({**AMOUNTS, 'maxProperties': 50})}),
    'get_resource_provider': _args({'uuid': UUID}, ['uuid']),
    'get_usages': _args({'uuid': NULLABLE_UUID,
                         'project_id': _nullable(
                             {'type': 'string', 'minLength': 1,
                              'maxLength': 255})}),
    'get_allocations': _args({'consumer_uuid': UUID}, ['consumer_uuid']),
    'get_allocation_candidates': _args(
        {'resources': {'type': 'object', 'minProperties': 1,
                       'maxProperties': 20,
                       'propertyNames': {'pattern': RC_PATTERN},
                       'additionalProperties': {'type': 'integer',
                                                'minimum': 1,
                                                'maximum': MAX_INT}},
         'required': TRAITS, 'forbidden': TRAITS, 'member_of': AGGREGATES,
         'limit': _nullable({'type': 'integer', 'minimum': 1,
                             'maximum': 100000})},
        ['resources']),
    'set_traits': _args({'uuid': UUID, 'traits': TRAITS,
                         'generation': GENERATION},
                        ['uuid', 'traits', 'generation']),
    'set_aggregates': _args({'uuid': UUID, 'aggregates': AGGREGATES,
                             'generation': GENERATION},
                            ['uuid', 'aggregates', 'generation']),
    'delete_resource_provider': _args({'uuid': UUID}, ['uuid']),
}

# fastjsonschema (compiled) answers "valid?" fast on every call; jsonschema
# words the error when it is not.
_FAST = {name: fastjsonschema.compile(schema)
         for name, schema in SCHEMAS.items()}
_VALIDATORS = {name: jsonschema.Draft202012Validator(schema)
               for name, schema in SCHEMAS.items()}


def _field(error) -> str:
    path = ''
    for part in error.absolute_path:
        path += f'[{part}]' if isinstance(part, int) else (
            f'.{part}' if path else str(part))
    return path or 'arguments'


def validate(method: str, kwargs: dict) -> None:
    """Raise ``InvalidInput`` naming the first bad field of ``kwargs``."""
    try:
        _FAST[method](kwargs)
        return
    except fastjsonschema.JsonSchemaValueException as fast_error:
        fallback = fast_error.message
    validator = _VALIDATORS[method]
    error = jsonschema.exceptions.best_match(validator.iter_errors(kwargs))
    if error is None:
        raise exception.InvalidInput(reason=fallback)
    if error is not None:
        message = error.message
        if len(message) > 200:
            message = message[:200] + '...'
        raise exception.InvalidInput(reason=f'{_field(error)}: {message}')
