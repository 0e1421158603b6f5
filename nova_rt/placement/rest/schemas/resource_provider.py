"""Provider bodies and the query string of ``GET /resource_providers``."""

import copy
import functools

_UUID = {'type': 'string', 'format': 'uuid'}
_NAME = {'type': 'string', 'maxLength': 200}
_PARENT = {'anyOf': [_UUID, {'type': 'null'}]}


@functools.cache
def post(version) -> dict:
    properties = {'name': _NAME, 'uuid': _UUID}
    if version >= (1, 14):
        properties['parent_provider_uuid'] = _PARENT
    return {'type': 'object', 'properties': properties,
            'required': ['name'], 'additionalProperties': False}


@functools.cache
def put(version) -> dict:
    schema = copy.deepcopy(post(version))
    del schema['properties']['uuid']
    return schema


@functools.cache
def list_query(version) -> dict:
    properties = {'name': {'type': 'string'}, 'uuid': _UUID}
    if version >= (1, 3):
        properties['member_of'] = {'type': 'string'}
    if version >= (1, 4):
        properties['resources'] = {'type': 'string'}
    if version >= (1, 14):
        properties['in_tree'] = _UUID
    if version >= (1, 18):
        properties['required'] = {'type': 'string'}
    return {'type': 'object', 'properties': properties,
            'additionalProperties': False}
