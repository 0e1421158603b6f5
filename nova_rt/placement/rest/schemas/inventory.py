"""Inventory bodies, as Placement's."""

MAX_INT = 2 ** 31 - 1
SQL_SP_FLOAT_MAX = 3.40282e+38
RC_PATTERN = '^[A-Z0-9_]+$'


def _int(minimum: int) -> dict:
    return {'type': 'integer', 'maximum': MAX_INT, 'minimum': minimum}


_FIELDS = {
    'resource_provider_generation': {'type': 'integer'},
    'total': _int(1), 'reserved': _int(0), 'min_unit': _int(1),
    'max_unit': _int(1), 'step_size': _int(1),
    'allocation_ratio': {'type': 'number', 'maximum': SQL_SP_FLOAT_MAX},
}

BASE = {'type': 'object', 'properties': _FIELDS,
        'required': ['total', 'resource_provider_generation'],
        'additionalProperties': False}

POST = {'type': 'object',
        'properties': {**_FIELDS, 'resource_class': {
            'type': 'string', 'pattern': RC_PATTERN}},
        'required': ['total', 'resource_class'],
        'additionalProperties': False}

_RECORD = {**BASE, 'required': ['total']}

PUT_ALL = {
    'type': 'object',
    'properties': {
        'resource_provider_generation': {'type': 'integer'},
        'inventories': {'type': 'object',
                        'patternProperties': {RC_PATTERN: _RECORD}},
    },
    'required': ['resource_provider_generation', 'inventories'],
    'additionalProperties': False,
}
