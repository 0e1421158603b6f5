"""Query string values as Placement parses them: ``resources``,
``required`` (forbidden ``!`` from 1.22, any-of ``in:`` from 1.39),
``member_of`` (repeated from 1.24, ``in:``, forbidden ``!`` from 1.32),
``in_tree``, for ``/resource_providers``; each value is parsed by
``candidate_request``, as for ``/allocation_candidates``, and every refusal
is 400 with Placement's words.
"""

from __future__ import annotations

from nova_rt.placement import candidate_request as creq
from nova_rt.placement import common
from nova_rt.placement.rest import errors
from nova_rt.placement.rest.handlers import util

def _parsed(parse, *args):
    """``parse(*args)`` of ``candidate_request``, its refusal as a 400."""
    try:
        return parse(*args)
    except creq.BadQuery as error:
        raise errors.bad_request(error.detail, error.code) from None


def resources(value: str) -> dict:
    """``'VCPU:2,MEMORY_MB:1024'`` -> ``{'VCPU': 2, 'MEMORY_MB': 1024}``."""
    result = _parsed(creq.parse_resources, value)
    for rc, number in result.items():
        if number > common.MAX_INT:
            # Beyond any capacity, and beyond what the database's integers
            # hold (SQLite raised OverflowError, PostgreSQL out of range).
            raise errors.bad_request(
                f'Requested resource {rc} requires amount <= '
                f'{common.MAX_INT}. Got: {number}.')
    return result


def traits(value: str, allow_forbidden: bool, allow_any: bool):
    """One ``required`` value: ``([set of any-of names, ...], forbidden)``."""
    return _parsed(creq.parse_traits, value, allow_forbidden, allow_any)


def required(req, suffix: str = ''):
    """Every ``required<suffix>``: ``([any-of sets], forbidden set)``;
    before 1.39 only the last one counts, as in Placement."""
    values = req.params.getall('required' + suffix)
    allow_any = req.microversion >= (1, 39)
    if not allow_any:
        values = values[-1:]
    all_of, forbidden = [], set()
    for value in values:
        more, less = traits(value, req.microversion >= (1, 22), allow_any)
        all_of += more
        forbidden |= less
    return all_of, forbidden


def member_of_value(value: str):
    """One ``member_of`` value: ``(any-of set, forbidden set)``."""
    return _parsed(creq.parse_member_of, value)


def member_of(req, suffix: str = ''):
    """Every ``member_of<suffix>``: ``([any-of sets], forbidden set)``."""
    values = req.params.getall('member_of' + suffix)
    if req.microversion < (1, 24) and len(values) > 1:
        raise errors.bad_request(
            f'Multiple member_of{suffix} parameters are not supported')
    all_of, forbidden = [], set()
    for value in values:
        any_of, none_of = member_of_value(value)
        if any_of:
            all_of.append(any_of)
        if none_of:
            if req.microversion < (1, 32):
                raise errors.bad_request(
                    f'Forbidden member_of{suffix} parameters are not '
                    'supported in the specified microversion')
            forbidden |= none_of
    return all_of, forbidden


def in_tree(value: str) -> str:
    uuid = value.strip()
    if not util.is_uuid(uuid):
        raise errors.bad_request(
            "Invalid query string parameters: Expected 'in_tree' parameter "
            f"to be a format of uuid. Got: {value}")
    return uuid
