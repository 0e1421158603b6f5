"""JSON schemas of the compute RPC payloads (``shared/spec/rpc-api.md``).

The table of methods (``compute/methods.py``) gives each argument one of
these; the edge checks every call against it before the tracker sees it, so
the tracker only has to judge meaning (capacity, state), never types.
Payload mappings allow unknown keys, so that a newer conductor can talk to an
older daemon, but a known key with a wrong type or value is refused.

Every string, list and mapping has a size limit (``doc/source/rpc-api.rst``,
"Limits"); what unknown keys may hold is bounded by ``validation``'s
per-call budget and depth.
"""

from __future__ import annotations

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

#: Nova's own bounds on a flavor's figures (its API and database columns).
MAX_FLAVOR_INT = 2 ** 31 - 1
#: Nova's flavor extra specs: keys and values of at most 255 characters; we
#: take at most this many of them.
MAX_EXTRA_SPECS = 500
#: Glance's image_property_quota is 128 by default; twice that.
MAX_IMAGE_PROPERTIES = 256
#: Keys a payload mapping may carry, its known fields included: Nova's
#: Instance object has about 80 fields.
MAX_FIELDS = 256
#: Aliases one interface attach may ask for, devices one call may free.
MAX_ALIASES = 64
MAX_ADDRESSES = 1024

UUID = {'type': 'string', 'maxLength': 36, 'pattern': UUID_PATTERN,
        'description': 'a uuid'}
NAME = {'type': 'string', 'minLength': 1, 'maxLength': 255}
NULLABLE_STRING = {'type': ['string', 'null'], 'maxLength': 255}
VM_STATE = {'type': 'string', 'maxLength': 32, 'enum': list(objects.VM_STATES)}
MIGRATION_STATUS = {'type': 'string', 'maxLength': 32,
                    'enum': list(MIGRATION_STATUSES)}
PCI_ADDRESS = {'type': 'string', 'maxLength': 12,
               'pattern': PCI_ADDRESS_PATTERN,
               'description': 'a PCI address like 0000:81:00.1'}


EXTRA_SPEC = {'type': 'string', 'maxLength': 255}
_DIGITS = '[0-9]+'
#: The syntax of the extra specs whose numbers the tracker reads, as Nova's
#: API checks it (nova/api/validation/extra_specs): ASCII digits, since
#: str.isdigit() takes '²' and int() does not.  What the numbers mean
#: (enough vCPUs for the NUMA nodes, a known alias) is the tracker's to say.
EXTRA_SPEC_SYNTAX = {
    '^hw:numa_nodes$': dict(EXTRA_SPEC, pattern=f'^\\s*{_DIGITS}\\s*$',
                            description='a count of NUMA nodes'),
    '^resources:': dict(EXTRA_SPEC, pattern=f'^\\s*{_DIGITS}\\s*$',
                        description='an amount (digits)'),
    '^pci_passthrough:alias$': dict(
        EXTRA_SPEC,
        pattern=f'^[^:,]+:\\s*{_DIGITS}\\s*(,[^:,]+:\\s*{_DIGITS}\\s*)*$',
        description='"alias:count" items separated by commas'),
}


def _count(minimum: int) -> dict:
    return {'type': 'integer', 'minimum': minimum, 'maximum': MAX_FLAVOR_INT}


FLAVOR = {
    'type': 'object',
    'maxProperties': MAX_FIELDS,
    'properties': {
        'name': NAME,
        'vcpus': _count(1),
        'memory_mb': _count(1),
        'root_gb': _count(0),
        'ephemeral_gb': _count(0),
        'swap': _count(0),
        'extra_specs': {
            'type': 'object',
            'maxProperties': MAX_EXTRA_SPECS,
            'propertyNames': {'minLength': 1, 'maxLength': 255},
            'patternProperties': EXTRA_SPEC_SYNTAX,
            'additionalProperties': EXTRA_SPEC,
        },
    },
    'required': ['name', 'vcpus', 'memory_mb', 'root_gb', 'ephemeral_gb',
                 'swap'],
    'additionalProperties': True,
}

# ``required`` and ``properties`` only apply to objects, so null passes.
NULLABLE_FLAVOR = dict(FLAVOR, type=['object', 'null'])

#: The image's properties (``hw_*`` and the rest): strings as Glance keeps
#: them, or the typed values of Nova's ImageMetaProps; lists of those.
_IMAGE_VALUE = {'type': ['string', 'integer', 'number', 'boolean', 'null',
                         'array'],
                'maxLength': 65535, 'maxItems': 1024,
                'items': {'type': ['string', 'integer', 'number', 'boolean',
                                   'null', 'array'],
                          'maxLength': 255, 'maxItems': 1024}}

INSTANCE = {
    'type': 'object',
    'maxProperties': MAX_FIELDS,
    'properties': {
        'uuid': UUID,
        'project_id': NAME,
        'user_id': NAME,
        'flavor': FLAVOR,
        'vm_state': VM_STATE,
        'task_state': NULLABLE_STRING,
        'os_type': NULLABLE_STRING,
        'is_volume_backed': {'type': 'boolean'},
        'image_properties': {
            'type': 'object',
            'maxProperties': MAX_IMAGE_PROPERTIES,
            'propertyNames': {'minLength': 1, 'maxLength': 255},
            'additionalProperties': _IMAGE_VALUE,
        },
    },
    'required': ['uuid', 'project_id', 'user_id', 'flavor'],
    'additionalProperties': True,
}

MIGRATION = {
    'type': 'object',
    'maxProperties': MAX_FIELDS,
    'properties': {
        'uuid': UUID,
        'instance_uuid': UUID,
        'migration_type': {'type': 'string', 'maxLength': 32,
                           'enum': list(objects.MIGRATION_TYPES)},
        'status': MIGRATION_STATUS,
        'source_compute': NAME,
        'source_node': NAME,
        'dest_compute': NAME,
        'dest_node': NAME,
        'old_flavor': NULLABLE_FLAVOR,
        'new_flavor': NULLABLE_FLAVOR,
    },
    'required': ['uuid', 'instance_uuid', 'migration_type', 'status',
                 'source_compute', 'source_node', 'dest_compute',
                 'dest_node'],
    'additionalProperties': True,
}

NULLABLE_MIGRATION = dict(MIGRATION, type=['object', 'null'])

# A resize claims the new flavor: without it there is nothing to claim.
MIGRATION_WITH_NEW_FLAVOR = dict(
    MIGRATION, properties=dict(MIGRATION['properties'], new_flavor=FLAVOR),
    required=MIGRATION['required'] + ['new_flavor'])

ALIAS_COUNTS = {
    'type': 'object', 'minProperties': 1, 'maxProperties': MAX_ALIASES,
    'propertyNames': {'minLength': 1, 'maxLength': 255},
    'additionalProperties': {'type': 'integer', 'minimum': 1, 'maximum': 64},
}

ADDRESSES = {'type': 'array', 'maxItems': MAX_ADDRESSES, 'items': PCI_ADDRESS}
