"""Resource class bodies."""

CUSTOM_RC_PATTERN = '^CUSTOM_[A-Z0-9_]+$'

NAME = {'type': 'object',
        'properties': {'name': {'type': 'string',
                                'pattern': CUSTOM_RC_PATTERN,
                                'maxLength': 255}},
        'required': ['name'], 'additionalProperties': False}
