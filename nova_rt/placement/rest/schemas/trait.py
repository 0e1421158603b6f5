"""Trait bodies and query strings."""


CUSTOM_TRAIT_PATTERN = '^CUSTOM_[A-Z0-9_]+$'

TRAIT = {'type': 'string', 'minLength': 1, 'maxLength': 255}
CUSTOM_TRAIT = {**TRAIT, 'pattern': CUSTOM_TRAIT_PATTERN}

SET_TRAITS_FOR_RP = {
    'type': 'object',
    'properties': {
        'traits': {'type': 'array', 'items': TRAIT},
        'resource_provider_generation': {'type': 'integer'},
    },
    'required': ['traits', 'resource_provider_generation'],
    'additionalProperties': False,
}

LIST_TRAITS = {
    'type': 'object',
    'properties': {'name': {'type': 'string'},
                   'associated': {'type': 'string'}},
    'additionalProperties': False,
}

