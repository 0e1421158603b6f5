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


def required(req, suffix: str = ''):
    """Every ``required<suffix>``: ``([any-of sets], forbidden set)``;
    before 1.39 only the last one counts, as in Placement."""
    return _parsed(creq.group_traits, list(req.params.items()),
                   'required' + suffix, req.microversion)


def member_of(req, suffix: str = ''):
    """Every ``member_of<suffix>``: ``([any-of sets], forbidden set)``."""
    return _parsed(creq.group_member_of, list(req.params.items()),
                   'member_of' + suffix, req.microversion)


def in_tree(value: str) -> str:
    return _parsed(creq.parse_in_tree, value)
