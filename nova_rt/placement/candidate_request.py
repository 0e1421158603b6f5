"""``GET /allocation_candidates``: the query string, parsed and validated
as OpenStack Placement does at each microversion.

The result is a ``CandidateRequest``: request groups keyed by suffix (``''``
is the unnumbered group, whose resources may come from several providers of
one tree; every other suffix is a group satisfied by ONE provider) and the
request-wide parameters (``limit``, ``group_policy``, ``root_required``,
``same_subtree``).  Nothing here touches the database: names of traits,
classes, aggregates and providers are judged by ``candidates``.

Errors are ``BadQuery`` with Placement's detail text (clients and Placement's
own gabbi tests match on it) and error code: ``placement.query.bad_value``,
``placement.query.missing_value`` and ``placement.query.duplicate_key`` where
Placement names one, ``placement.undefined_code`` elsewhere, as it does.
"""

from __future__ import annotations

import dataclasses
import re
import uuid as uuid_mod

UNDEFINED = 'placement.undefined_code'
BAD_VALUE = 'placement.query.bad_value'
MISSING_VALUE = 'placement.query.missing_value'
DUPLICATE_KEY = 'placement.query.duplicate_key'

GROUP_PAT = r'[1-9][0-9]*'
GROUP_PAT_1_33 = r'[a-zA-Z0-9_-]{1,64}'
_PREFIXES = ('resources', 'required', 'member_of', 'in_tree')
_LIMIT_PAT = '^[1-9][0-9]*$'
_GROUP_POLICIES = ('none', 'isolate')
MAX_INT = 2 ** 31 - 1


class BadQuery(ValueError):
    """A 400 answer: ``detail`` for the client, ``code`` Placement's."""

    def __init__(self, detail: str, code: str = UNDEFINED):
        super().__init__(detail)
        self.detail = detail
        self.code = code


@dataclasses.dataclass
class RequestGroup:
    suffix: str = ''
    resources: dict = dataclasses.field(default_factory=dict)
    #: AND of ORs: each set is satisfied by any one of its traits.
    required: list = dataclasses.field(default_factory=list)
    forbidden: set = dataclasses.field(default_factory=set)
    #: AND of ORs of aggregate uuids.
    member_of: list = dataclasses.field(default_factory=list)
    forbidden_aggs: set = dataclasses.field(default_factory=set)
    in_tree: str | None = None

    @property
    def use_same_provider(self) -> bool:
        return bool(self.suffix)


@dataclasses.dataclass
class CandidateRequest:
    groups: dict
    limit: int | None = None
    group_policy: str | None = None
    root_required: set = dataclasses.field(default_factory=set)
    root_forbidden: set = dataclasses.field(default_factory=set)
    same_subtrees: list = dataclasses.field(default_factory=list)

    @property
    def resource_classes(self) -> set:
        return set().union(*(g.resources for g in self.groups.values()))


def _pairs(params) -> list:
    """``(key, value)`` pairs of a multidict (every value) or of pairs."""
    if hasattr(params, 'items'):
        return list(params.items())
    return list(params)


def _getall(pairs, key) -> list:
    return [v for k, v in pairs if k == key]


def _allowed_keys(version) -> tuple[set, list]:
    """Plain keys and key patterns the microversion's schema takes."""
    plain = {'resources'}
    if version >= (1, 16):
        plain.add('limit')
    if version >= (1, 17):
        plain.add('required')
    if version >= (1, 21):
        plain.add('member_of')
    if version < (1, 25):
        return plain, []
    plain = {'limit', 'group_policy'}
    prefixes = _PREFIXES if version >= (1, 31) else _PREFIXES[:3]
    suffix = GROUP_PAT_1_33 if version >= (1, 33) else GROUP_PAT
    if version >= (1, 35):
        plain.add('root_required')
    if version >= (1, 36):
        plain.add('same_subtree')
    return plain, [f'^{p}({suffix})?$' for p in prefixes]


def _check_schema(pairs, version) -> None:
    """What Placement's JSON schema of the query says, in its words."""
    last = dict(pairs)
    plain, patterns = _allowed_keys(version)
    for key in last:
        if key in plain or any(re.match(p, key) for p in patterns):
            continue
        if patterns:
            regexes = ', '.join(repr(p) for p in sorted(patterns))
            raise BadQuery(f'Invalid query string parameters: {key!r} does '
                           f'not match any of the regexes: {regexes}')
        raise BadQuery('Invalid query string parameters: Additional '
                       'properties are not allowed '
                       f'({key!r} was unexpected)')
    if version < (1, 25) and 'resources' not in last:
        raise BadQuery("Invalid query string parameters: 'resources' is a "
                       'required property')
    if 'limit' in last and not re.match(_LIMIT_PAT, last['limit']):
        raise BadQuery(f"Invalid query string parameters: {last['limit']!r} "
                       f'does not match {_LIMIT_PAT!r}\n\n'
                       "Failed validating 'pattern' in "
                       "schema['properties']['limit']")
    if 'group_policy' in last and last['group_policy'] not in _GROUP_POLICIES:
        raise BadQuery('Invalid query string parameters: '
                       f"{last['group_policy']!r} is not one of "
                       f'{list(_GROUP_POLICIES)!r}')


def parse_resources(value: str) -> dict:
    form = ('Badly formed resources parameter. Expected resources query '
            'string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. ')
    if value.strip() == '':
        raise BadQuery(form + 'Got: empty string.')
    result = {}
    for item in value.split(','):
        try:
            name, amount = item.split(':')
        except ValueError:
            raise BadQuery(form + f'Got: {item}.') from None
        try:
            number = int(amount)
        except ValueError:
            raise BadQuery(f'Requested resource {name} expected positive '
                           f'integer amount. Got: {amount}.') from None
        if number < 1:
            raise BadQuery(f'Requested resource {name} requires amount >= '
                           f'1. Got: {number}.')
        result[name] = number
    return result


def parse_traits(value: str, allow_forbidden: bool,
                 allow_any: bool) -> tuple[list, set]:
    """``([{any-of}, ...], {forbidden})`` of one ``required`` value."""
    if value.startswith('in:'):
        if not allow_any:
            raise BadQuery("Invalid query string parameters: The format "
                           "'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported "
                           f'since microversion 1.39. Got: {value}')
        any_of = {t.strip() for t in value[3:].split(',')}
        if not all(any_of):
            raise BadQuery("Invalid query string parameters: Expected "
                           "'required' parameter value of the form: "
                           'in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty '
                           f'trait in: {value}')
        if any(t.startswith('!') for t in any_of):
            raise BadQuery("Invalid query string parameters: The format "
                           "'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not "
                           f'support forbidden traits. Got: {value}')
        return [any_of], set()
    names = [t.strip() for t in value.split(',')]
    # Placement strips every leading '!' ("!!FOO" is FOO forbidden).
    forbidden = {t.lstrip('!') for t in names if t.startswith('!')}
    if not all(names) or not all(forbidden):
        form = ('HW_CPU_X86_VMX,!CUSTOM_MAGIC' if allow_forbidden
                else 'HW_CPU_X86_VMX,CUSTOM_MAGIC')
        raise BadQuery("Invalid query string parameters: Expected "
                       f"'required' parameter value of the form: {form}. "
                       f'Got an empty trait in: {value}')
    if forbidden and not allow_forbidden:
        raise BadQuery("Invalid query string parameters: Expected "
                       "'required' parameter value of the form: "
                       f'HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}')
    return [{t} for t in names if not t.startswith('!')], forbidden


def _is_uuid(value: str) -> bool:
    try:
        uuid_mod.UUID(value)
    except ValueError:
        return False
    return True


def parse_member_of(value: str) -> tuple[set, set]:
    """``(any-of required, forbidden)`` aggregate uuids of one value."""
    if ',' in value and not value.startswith(('in:', '!in:')):
        raise BadQuery("Multiple values for 'member_of' must be prefixed "
                       "with the 'in:' or '!in:' keyword using the valid "
                       f'microversion. Got: {value}')
    required, forbidden = set(), set()
    if value.startswith('!in:'):
        forbidden = set(value[4:].split(','))
    elif value.startswith('!'):
        forbidden = {value[1:]}
    elif value.startswith('in:'):
        required = set(value[3:].split(','))
    else:
        required = {value}
    for agg in sorted(required | forbidden):
        if not _is_uuid(agg):
            raise BadQuery("Invalid query string parameters: Expected "
                           "'member_of' parameter to contain valid UUID(s). "
                           f'Got: {agg}')
    return required, forbidden


def _group_items(pairs, version) -> dict:
    pattern = re.compile(r'^(%s)(%s)?$' % (
        '|'.join(_PREFIXES),
        GROUP_PAT_1_33 if version >= (1, 33) else GROUP_PAT))
    groups: dict = {}
    for key, value in pairs:
        match = pattern.match(key)
        if not match:
            continue
        prefix, suffix = match.group(1), match.group(2) or ''
        group = groups.setdefault(suffix, RequestGroup(suffix=suffix))
        if prefix == 'resources':
            group.resources = parse_resources(value)
        elif prefix == 'required':
            group.required, group.forbidden = group_traits(
                pairs, key, version)
        elif prefix == 'member_of':
            group.member_of, group.forbidden_aggs = group_member_of(
                pairs, key, version)
        else:
            group.in_tree = parse_in_tree(value)
    return groups


def parse_in_tree(value: str) -> str:
    tree = value.strip()
    if not _is_uuid(tree):
        raise BadQuery("Invalid query string parameters: Expected "
                       "'in_tree' parameter to be a format of uuid. "
                       f'Got: {value}')
    return tree


def group_traits(pairs, key, version) -> tuple[list, set]:
    """Every ``key`` (``required<suffix>``) of the query ``pairs``:
    ``([any-of sets], forbidden set)``."""
    values = _getall(pairs, key)
    if version < (1, 39):
        values = values[-1:]     # repeated: the last one, before 1.39
    required, forbidden = [], set()
    for value in values:
        r, f = parse_traits(value, version >= (1, 22), version >= (1, 39))
        required += r
        forbidden |= f
    return required, forbidden


def group_member_of(pairs, key, version) -> tuple[list, set]:
    """Every ``key`` (``member_of<suffix>``) of the query ``pairs``:
    ``([any-of sets], forbidden set)``."""
    values = _getall(pairs, key)
    suffix = key[len('member_of'):]
    if version < (1, 24) and len(values) > 1:
        raise BadQuery(f'Multiple member_of{suffix} parameters are not '
                       'supported')
    required, forbidden = [], set()
    for value in values:
        r, f = parse_member_of(value)
        if r:
            required.append(r)
        if f:
            if version < (1, 32):
                raise BadQuery(f'Forbidden member_of{suffix} parameters are '
                               'not supported in the specified microversion')
            forbidden |= f
    return required, forbidden


def _request_wide(pairs) -> CandidateRequest:
    request = CandidateRequest(groups={})
    limit = _getall(pairs, 'limit')
    if limit:
        # More than any database integer takes is "no limit" in effect.
        request.limit = min(int(limit[0]), MAX_INT)
    policy = _getall(pairs, 'group_policy')
    if policy:
        request.group_policy = policy[0]
    root = _getall(pairs, 'root_required')
    if len(root) > 1:
        raise BadQuery("Query parameter 'root_required' may be specified "
                       'only once.', DUPLICATE_KEY)
    if root:
        required, forbidden = parse_traits(root[0], True, False)
        request.root_required = {next(iter(s)) for s in required}
        request.root_forbidden = forbidden
        conflicts = request.root_required & forbidden
        if conflicts:
            raise BadQuery('Conflicting required and forbidden traits found '
                           'in root_required: ' + ', '.join(sorted(conflicts)),
                           BAD_VALUE)
    for value in _getall(pairs, 'same_subtree'):
        suffixes = {s.strip() for s in value.split(',')}
        if '' in suffixes:
            raise BadQuery('Empty string (unsuffixed group) can not be '
                           'specified in `same_subtree` ', BAD_VALUE)
        request.same_subtrees.append(suffixes)
    return request


def _check_groups(groups: dict, request: CandidateRequest, version) -> None:
    if version >= (1, 36):
        resourceless = [s for s, g in groups.items() if not g.resources]
        if len(resourceless) == len(groups):
            raise BadQuery('There must be at least one resources or '
                           'resources[$S] parameter.', MISSING_VALUE)
        in_subtree = set().union(*request.same_subtrees)
        bad = [s for s in resourceless if s not in in_subtree]
        if bad:
            raise BadQuery('Resourceless suffixed group request should be '
                           'specified in `same_subtree` query param: bad '
                           f'group(s) - {bad}.', BAD_VALUE)
        bad = sorted(s for s in in_subtree if s not in groups)
        if bad:
            raise BadQuery('Real suffixes should be specified in '
                           f'`same_subtree`: {bad} not found in '
                           f'{list(groups)}.', BAD_VALUE)
    else:
        orphans = [f'required{s}' for s, g in groups.items()
                   if g.required and not g.resources]
        if orphans:
            raise BadQuery('All traits parameters must be associated with '
                           'resources.  Found the following orphaned traits '
                           'keys: ' + ', '.join(orphans))
        orphans = [f'member_of{s}' for s, g in groups.items()
                   if not g.resources and (g.member_of or g.forbidden_aggs)]
        if orphans:
            raise BadQuery('All member_of parameters must be associated with '
                           'resources. Found the following orphaned '
                           'member_of keys: ' + ', '.join(orphans))
        if not all(g.resources for g in groups.values()):
            raise BadQuery('All request groups must specify resources.')
        if not groups:
            raise BadQuery('At least one request group (`resources` or '
                           '`resources{$S}`) is required.')
    if version >= (1, 22):
        conflicts = sorted(
            f"required{s}: ({', '.join(sorted(any_of))})"
            for s, g in groups.items() for any_of in g.required
            if all(t in g.forbidden for t in any_of))
        if conflicts:
            raise BadQuery('Conflicting required and forbidden traits found '
                           'in the following traits keys: '
                           + ', '.join(conflicts))


def parse(params, version) -> CandidateRequest:
    """The request of a query string (a multidict or ``(key, value)``
    pairs) at ``version`` (a ``(major, minor)`` tuple, at least 1.10)."""
    version = tuple(version)
    pairs = _pairs(params)
    _check_schema(pairs, version)
    request = _request_wide(pairs)
    groups = _group_items(pairs, version)
    _check_groups(groups, request, version)
    numbered = [s for s in groups if s]
    if request.group_policy is None and len(numbered) > 1:
        raise BadQuery('The "group_policy" parameter is required when '
                       'specifying more than one "resources{N}" parameter.')
    # The unnumbered group first, then the others as given.
    request.groups = dict(sorted(groups.items(), key=lambda kv: kv[0] != ''))
    return request
