"""Allocation bodies per microversion, as Placement's."""

import copy
import functools

# Hex digits where a UUID has them, dashes where it has them: a key of 36
# dashes passed '^[0-9a-fA-F-]{36}$' and failed uuid.UUID() later (500).
UUID_PATTERN = ('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
                '[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
RC_PATTERN = '^[A-Z0-9_]+$'
CONSUMER_TYPE_PATTERN = '^[A-Z0-9_]+$'
GROUP_PATTERN = '^(_[a-zA-Z0-9_-]{1,64})?$'

_RESOURCES = {'type': 'object', 'minProperties': 1,
              'patternProperties': {RC_PATTERN: {'type': 'integer',
                                                 'minimum': 1}},
              'additionalProperties': False}
_ID = {'type': 'string', 'minLength': 1, 'maxLength': 255}

_LIST_FORM = {
    'type': 'object',
    'properties': {'allocations': {
        'type': 'array', 'minItems': 1,
        'items': {'type': 'object', 'properties': {
            'resource_provider': {
                'type': 'object',
                'properties': {'uuid': {'type': 'string', 'format': 'uuid'}},
                'additionalProperties': False, 'required': ['uuid']},
            'resources': _RESOURCES},
            'required': ['resource_provider', 'resources'],
            'additionalProperties': False}}},
    'required': ['allocations'],
    'additionalProperties': False,
}


def _dict_form(min_providers: int) -> dict:
    return {
        'type': 'object',
        'properties': {
            'allocations': {
                'type': 'object', 'minProperties': min_providers,
                'patternProperties': {UUID_PATTERN: {
                    'type': 'object',
                    'properties': {'generation': {'type': 'integer'},
                                   'resources': _RESOURCES},
                    'required': ['resources'],
                    'additionalProperties': False}},
                'additionalProperties': False},
            'project_id': _ID, 'user_id': _ID},
        'required': ['allocations', 'project_id', 'user_id'],
        'additionalProperties': False,
    }


@functools.cache
def _one_consumer(version, min_providers: int) -> dict:
    schema = _dict_form(min_providers)
    if version >= (1, 28):
        schema['properties']['consumer_generation'] = {
            'type': ['integer', 'null']}
        schema['required'].append('consumer_generation')
    if version >= (1, 34):
        schema['properties']['mappings'] = {
            'type': 'object', 'minProperties': 1,
            'patternProperties': {GROUP_PATTERN: {
                'type': 'array', 'minItems': 1,
                'items': {'type': 'string', 'format': 'uuid'}}}}
    if version >= (1, 38):
        schema['properties']['consumer_type'] = {
            'type': 'string', 'pattern': CONSUMER_TYPE_PATTERN,
            'minLength': 1, 'maxLength': 255}
        schema['required'].append('consumer_type')
    return schema


@functools.cache
def put(version) -> dict:
    """``PUT /allocations/{consumer}``."""
    if version < (1, 8):
        return _LIST_FORM
    if version < (1, 12):
        schema = copy.deepcopy(_LIST_FORM)
        schema['properties'].update(project_id=_ID, user_id=_ID)
        schema['required'] += ['project_id', 'user_id']
        return schema
    # Empty allocations (remove them all) from 1.28, as in Placement.
    return _one_consumer(version, 0 if version >= (1, 28) else 1)


@functools.cache
def post(version) -> dict:
    """``POST /allocations`` (1.13)."""
    return {'type': 'object', 'minProperties': 1,
            'additionalProperties': False,
            'patternProperties': {UUID_PATTERN: _one_consumer(version, 0)}}
