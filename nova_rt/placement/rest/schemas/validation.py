"""Checking a body or a query string against a schema, with one compiled
validator per schema (``jsonschema.validate`` checks the schema itself at
every call, which cost more than the write it guarded).

Schemas built per microversion come from ``functools.cache``d builders, so
that a schema is one object for the life of the process.
"""

from __future__ import annotations

import threading
import uuid as uuid_mod

import jsonschema

FORMAT_CHECKER = jsonschema.FormatChecker()
_validators: dict[int, tuple] = {}
_lock = threading.Lock()


@FORMAT_CHECKER.checks('uuid')
def _is_uuid(value) -> bool:
    if not isinstance(value, str):
        return True
    try:
        uuid_mod.UUID(value)
    except ValueError:
        return False
    return True


def _validator(schema: dict):
    entry = _validators.get(id(schema))
    if entry is None or entry[0] is not schema:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        entry = (schema, cls(schema, format_checker=FORMAT_CHECKER))
        with _lock:
            _validators[id(schema)] = entry
    return entry[1]


def error(instance, schema: dict) -> str | None:
    """What is wrong with ``instance`` (None: nothing), in jsonschema's
    words as Placement gives them (clients match on "Failed validating
    'required'")."""
    try:
        best = jsonschema.exceptions.best_match(
            _validator(schema).iter_errors(instance))
    except UnicodeDecodeError as exc:
        return str(exc)
    return None if best is None else str(best)
