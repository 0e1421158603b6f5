"""The RPC edge's checks of arguments: bounded first, then typed, then worded.

A call's arguments are checked before anything runs, cheapest first:

``check_bounds``
    one pass over every value: nesting depth, how many values and characters
    the call holds (its ``Budget``), the length of every string and key, and
    numbers that JSON can carry (no NaN or infinity, integers within 64 bits).
    It bounds what the schema and the error messages have to look at,
    including the unknown keys that payloads accept for forward
    compatibility, which no schema describes.
``Schema``
    a JSON schema compiled by fastjsonschema for the verdict (a report of
    5,000 consumers: 35 ms, where jsonschema takes 1 s) with strict types:
    JSON has one number type, but ``1.0`` vCPU or a ``true`` generation is a
    caller's bug, not a number.  On a refusal jsonschema words the error, on
    the smallest part of the payload that holds it.
``short``
    a value as a message may quote it: cut, so that a refusal never carries a
    whole payload into a reply or a log line.

>>> Schema({'type': 'integer', 'minimum': 1}).validate(-1, ['vcpus'])
Traceback (most recent call last):
...
nova_rt.exception.InvalidInput: Invalid input: vcpus: -1 is less than the minimum of 1
"""

from __future__ import annotations

import dataclasses
import math
import reprlib

import fastjsonschema
import jsonschema
from fastjsonschema import draft04
from fastjsonschema import draft07
from fastjsonschema import ref_resolver
from jsonschema import validators

from nova_rt import exception

#: Containers nested deeper than this are refused.  The contract's deepest
#: value is five levels down (placement's allocations: consumer, resources,
#: provider, class); the rest is room for what newer callers may add.
MAX_DEPTH = 16
#: Any string, known field or not (known fields have their own, smaller,
#: ``maxLength``): Glance's limit on an image property's value.
MAX_STRING = 65535
#: Any mapping key: the contract's keys are names, uuids, classes and traits.
MAX_KEY = 255
#: What fits a 64-bit SQL integer, the widest column anything is stored in.
MIN_INT, MAX_INT = -2 ** 63, 2 ** 63 - 1


@dataclasses.dataclass(frozen=True)
class Budget:
    """What one call may hold in all: values (every item of every list and
    mapping, at any depth) and characters (of every string and key)."""
    values: int
    chars: int


#: Every call but the two placement reports (an instance claim is about a
#: hundred values).
CALL = Budget(values=20_000, chars=1 << 20)
#: A host's full reports: hundreds of PCI child providers, thousands of
#: consumers (20,000 consumers on two providers each are about 300,000
#: values and 6 MB).
REPORT = Budget(values=500_000, chars=16 << 20)

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlong = 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2


def short(value) -> str:
    """``repr(value)`` cut to a few dozen characters, saying how long it was.

    >>> short('u' * 120000)
    "'uuuuuuuuuuuuuuuuuuuuuuuuuu...uuuuuuuuuuuuuuuuuuuuuuuuuuuu' (120000 characters)"
    """
    text = _REPR.repr(value)
    if isinstance(value, str) and len(value) > _REPR.maxstring:
        text += f' ({len(value)} characters)'
    return text


def field(path) -> str:
    """``['providers', 0, 'uuid']`` -> ``providers[0].uuid`` (each part cut)."""
    name = ''
    for part in path:
        if isinstance(part, int):
            name += f'[{part}]'
        else:
            part = str(part)
            if len(part) > 64:
                part = part[:30] + '...' + part[-30:]
            name += f'.{part}' if name else part
    return name or 'arguments'


def invalid(path, reason: str) -> exception.InvalidInput:
    return exception.InvalidInput(reason=f'{field(path)}: {reason}')


# -- bounds ---------------------------------------------------------------------

def _path_of(entry) -> list:
    path = []
    while entry is not None:
        entry, key = entry
        path.append(key)
    return path[::-1]


_KINDS = (bool, str, int, float, dict, list, tuple, type(None))


def check_bounds(arguments: dict, budget: Budget) -> None:
    """Raise InvalidInput naming the first value beyond the limits.

    One pass, without recursion (a deeply nested payload must not cost a
    stack), counting a container's items when it is reached, so that a list
    of a million items is refused before any of them is looked at.  Scalars
    are checked where they are found; only containers are stacked.
    """
    values, chars = len(arguments), 0
    # (container, its entry (parent entry, key) for the path, depth): the
    # path is only built for an error message.
    stack = [(arguments, None, 0)]
    while stack:
        container, where, depth = stack.pop()
        is_dict = type(container) is dict
        for key, item in (container.items() if is_dict
                          else enumerate(container)):
            if is_dict:
                if type(key) is not str:
                    raise invalid(_path_of(where),
                                  f'key {short(key)} is not a string')
                if len(key) > MAX_KEY:
                    raise invalid(_path_of(where), f'key {short(key)} is too '
                                  f'long (at most {MAX_KEY} characters)')
                chars += len(key)
            kind = type(item)
            if kind not in _KINDS:
                # A subclass (in-process callers): judged as its base type.
                kind = next((t for t in _KINDS if isinstance(item, t)), None)
            if kind is str:
                chars += len(item)
                if len(item) > MAX_STRING:
                    raise invalid(_path_of((where, key)), f'{short(item)} is '
                                  f'too long (at most {MAX_STRING} characters)')
            elif kind is int:
                if not MIN_INT <= item <= MAX_INT:
                    raise invalid(_path_of((where, key)), f'{short(item)} is '
                                  'out of range (64-bit integers)')
            elif kind is float:
                if not math.isfinite(item):
                    raise invalid(_path_of((where, key)),
                                  f'{item!r} is not a JSON number')
            elif kind is dict or kind is list or kind is tuple:
                if item and depth + 1 >= MAX_DEPTH:
                    raise invalid(_path_of((where, key)), 'nested deeper than '
                                  f'{MAX_DEPTH} levels')
                values += len(item)
                if values > budget.values:
                    raise invalid(_path_of((where, key))[:1], 'the call holds '
                                  f'more than {budget.values} values')
                stack.append((item, (where, key), depth + 1))
            elif kind is None:
                raise invalid(_path_of((where, key)), f'{type(item).__name__} '
                              'is not a JSON value')
        if chars > budget.chars:
            raise invalid(_path_of(where)[:1], 'the call holds more than '
                          f'{budget.chars} characters')


# -- schemas --------------------------------------------------------------------

def unbounded(schema: dict, path: str = '') -> list:
    """Where ``schema`` lets a string, list or mapping grow without a limit
    (``maxLength``, ``maxItems``, ``maxProperties``): the tables' tests
    require none."""
    found = []
    types = schema.get('type', [])
    types = [types] if isinstance(types, str) else types
    if 'string' in types and 'maxLength' not in schema and 'enum' not in schema:
        found.append(f'{path}: string without maxLength')
    if 'array' in types and 'maxItems' not in schema:
        found.append(f'{path}: array without maxItems')
    if ('object' in types and 'maxProperties' not in schema
            and schema.get('additionalProperties', True) is not False):
        found.append(f'{path}: object without maxProperties')
    names = schema.get('propertyNames')
    if names is not None and 'maxLength' not in names:
        found.append(f'{path}: keys without maxLength')
    for key in ('properties', 'patternProperties'):
        for name, sub in schema.get(key, {}).items():
            found += unbounded(sub, f'{path}.{name}')
    for key in ('additionalProperties', 'items'):
        if isinstance(schema.get(key), dict):
            found += unbounded(schema[key], f'{path}[{key}]')
    for key in ('allOf', 'anyOf', 'oneOf'):
        for index, sub in enumerate(schema.get(key, ())):
            found += unbounded(sub, f'{path}<{key} {index}>')
    return found


class _StrictTypes(draft07.CodeGeneratorDraft07):
    # Draft 4's type check: an integer is an int, never a float such as 1.0
    # (draft 6 and later let 1.0 be an integer); a bool is never a number.
    # tests/unit/test_validation.py holds fastjsonschema to it.
    generate_type = draft04.CodeGeneratorDraft04.generate_type


def _compile(schema: dict):
    """fastjsonschema.compile, with the strict type check."""
    resolver = ref_resolver.RefResolver.from_schema(schema, handlers={},
                                                    store={})
    generator = _StrictTypes(schema, resolver=resolver)
    state = generator.global_state
    exec(generator.func_code, state)   # noqa: S102 (fastjsonschema's own way)
    return state[resolver.get_scope_name()]


def _is_integer(checker, value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_Wording = validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        'integer', _is_integer))


def _types(value) -> str:
    return ', '.join(repr(t) for t in (value if isinstance(value, list)
                                       else [value]))


#: keyword -> what to say of the value that broke it (``v``: the keyword's
#: value in the schema).
_PHRASES = {
    'minimum': 'is less than the minimum of {v!r}',
    'maximum': 'is greater than the maximum of {v!r}',
    'exclusiveMinimum': 'is less than or equal to the minimum of {v!r}',
    'exclusiveMaximum': 'is greater than or equal to the maximum of {v!r}',
    'minLength': 'is too short (at least {v} characters)',
    'maxLength': 'is too long (at most {v} characters)',
    'minItems': 'has too few items (at least {v})',
    'maxItems': 'has too many items (at most {v})',
    'minProperties': 'has too few entries (at least {v})',
    'maxProperties': 'has too many entries (at most {v})',
    'uniqueItems': 'has repeated items',
}


def _phrase(keyword: str, value, schema: dict):
    if keyword == 'type':
        return f'is not of type {_types(value)}'
    if keyword == 'enum':
        return f'is not one of {", ".join(map(repr, value))}'
    if keyword == 'pattern':
        # A pattern's schema says what it stands for ("a uuid").
        if 'description' in schema:
            return f'is not {schema["description"]}'
        return f'does not match {value!r}'
    phrase = _PHRASES.get(keyword)
    return phrase.format(v=value) if phrase else None


def _describe(error: jsonschema.ValidationError, prefix: list) -> str:
    path = prefix + list(error.absolute_path)
    keyword, value, instance = error.validator, error.validator_value, error.instance
    if keyword == 'required':
        missing = next((name for name in value if name not in instance), '?')
        return f'{field(path + [missing])}: is required'
    if keyword == 'additionalProperties' and value is False:
        known = error.schema.get('properties', {})
        unknown = next((k for k in instance if k not in known), '?')
        return f'{field(path + [unknown])}: is not a known field'
    phrase = _phrase(keyword, value, error.schema)
    if phrase is None:
        return f'{field(path)}: {short(instance)} is not valid here'
    # propertyNames checks each key as the value itself.
    what = 'key ' if 'propertyNames' in error.schema_path else ''
    return f'{field(path)}: {what}{short(instance)} {phrase}'


def _child(schema: dict, value, part: str):
    """The (schema, value, key) one step down ``part``, if plainly there."""
    if isinstance(value, dict) and part in value:
        if part in schema.get('properties', {}):
            return schema['properties'][part], value[part], part
        extra = schema.get('additionalProperties')
        if isinstance(extra, dict) and 'patternProperties' not in schema:
            return extra, value[part], part
    elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
        if isinstance(schema.get('items'), dict):
            return schema['items'], value[int(part)], int(part)
    return None


class Schema:
    """One JSON schema: ``validate(value, path)`` raises InvalidInput."""

    def __init__(self, schema: dict):
        self.schema = schema
        self._fast = _compile(schema)

    def validate(self, value, path=()) -> None:
        try:
            self._fast(value)
        except fastjsonschema.JsonSchemaValueException as error:
            raise self._worded(value, list(path), error) from None

    def _worded(self, value, path: list, fast_error) -> exception.InvalidInput:
        # Word the error with jsonschema on the part fastjsonschema points at
        # (one consumer of a report, not the report): the cost of wording
        # stays that of one small payload.  Its path splits keys at dots, so
        # it is followed only as far as it plainly leads.
        trail = [(self.schema, value, [])]
        for part in fast_error.path[1:]:
            schema, sub, where = trail[-1]
            step = _child(schema, sub, part)
            if step is None:
                break
            trail.append((step[0], step[1], where + [step[2]]))
        for schema, sub, where in reversed(trail):
            error = jsonschema.exceptions.best_match(
                _Wording(schema).iter_errors(sub))
            if error is not None:
                return exception.InvalidInput(
                    reason=_describe(error, path + where))
        message = fast_error.message.removeprefix('data').lstrip('.')
        return invalid(path, message[:200])
