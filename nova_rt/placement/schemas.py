"""JSON schemas of the placement RPC arguments.

The table of methods (``placement/methods.py``) gives each argument one of
these; the edge checks every call against it before anything is read or
written, and names the offending field (``providers[0].inventories.VCPU.total:
-1 is less than the minimum of 0``).  UUIDs are the canonical lower-case
form, as Nova writes them.

Every string, list and mapping has a size limit, generous enough for the
full reports of a large host (``doc/source/rpc-api.rst``, "Limits").
"""

from __future__ import annotations

MAX_INT = 2 ** 31 - 1
#: Providers in one host's tree: the compute node and its PCI children.
MAX_PROVIDERS = 1000
#: Resource classes of one provider, traits and aggregates of one list.
MAX_CLASSES = 1000
MAX_TRAITS = 1000
MAX_AGGREGATES = 1000
#: Consumers in one host's full report of allocations.
MAX_CONSUMERS = 20000

UUID_PATTERN = ('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                '[0-9a-f]{12}$')
UUID = {'type': 'string', 'maxLength': 36, 'pattern': UUID_PATTERN,
        'description': 'a lower-case uuid'}
HOST = {'type': 'string', 'minLength': 1, 'maxLength': 255}
NAME = {'type': 'string', 'minLength': 1, 'maxLength': 200}
RC_PATTERN = '^[A-Z][A-Z0-9_]{0,254}$'
RESOURCE_CLASS = {'maxLength': 255, 'pattern': RC_PATTERN,
                  'description': 'a resource class name (A-Z, 0-9, _)'}
TRAIT = {'type': 'string', 'maxLength': 255, 'pattern': RC_PATTERN,
         'description': 'a trait name (A-Z, 0-9, _)'}
TRAITS = {'type': 'array', 'items': TRAIT, 'uniqueItems': True,
          'maxItems': MAX_TRAITS}
AGGREGATES = {'type': 'array', 'items': UUID, 'uniqueItems': True,
              'maxItems': MAX_AGGREGATES}
GENERATION = {'type': 'integer', 'minimum': 0, 'maximum': MAX_INT}
COUNT = {'type': 'integer', 'minimum': 0, 'maximum': MAX_INT}
PROJECT = {'type': 'string', 'minLength': 1, 'maxLength': 255}


def nullable(schema: dict) -> dict:
    # A list of types rather than anyOf: the error then names what is wrong
    # with the value, not that "no alternative" fits.
    return dict(schema, type=[schema['type'], 'null'])


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
        'parent_uuid': nullable(UUID),
        'generation': nullable(GENERATION),
        'inventories': {'type': 'object', 'maxProperties': MAX_CLASSES,
                        'propertyNames': RESOURCE_CLASS,
                        'additionalProperties': INVENTORY},
        'traits': nullable(TRAITS),
    },
}

PROVIDERS = {'type': 'array', 'items': PROVIDER, 'maxItems': MAX_PROVIDERS}


def amounts(max_classes: int = MAX_CLASSES, minimum: int = 0) -> dict:
    """``{resource class: n}``."""
    return {'type': 'object', 'maxProperties': max_classes,
            'propertyNames': RESOURCE_CLASS,
            'additionalProperties': {'type': 'integer', 'minimum': minimum,
                                     'maximum': MAX_INT}}


CONSUMER_ALLOCATION = {
    'type': 'object',
    'required': ['project_id', 'user_id', 'resources'],
    'additionalProperties': False,
    'properties': {
        'project_id': PROJECT,
        'user_id': PROJECT,
        # A consumer holds resources of its host's tree only.
        'resources': {'type': 'object', 'maxProperties': MAX_PROVIDERS,
                      'propertyNames': UUID,
                      'additionalProperties': amounts()},
    },
}

ALLOCATIONS = {'type': 'object', 'maxProperties': MAX_CONSUMERS,
               'propertyNames': UUID,
               'additionalProperties': CONSUMER_ALLOCATION}

SENT_AT = {'type': 'string', 'minLength': 1, 'maxLength': 64}
LIMIT = {'type': ['integer', 'null'], 'minimum': 1, 'maximum': 100000}
