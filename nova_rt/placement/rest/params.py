"""Query string values as Placement parses them: ``resources``,
``required`` (forbidden ``!`` from 1.22, any-of ``in:`` from 1.39),
``member_of`` (repeated from 1.24, ``in:``, forbidden ``!`` from 1.32),
``in_tree``.  Shared by ``/resource_providers`` and
``/allocation_candidates``; every refusal is 400 with Placement's words.
"""

from __future__ import annotations

from nova_rt.placement import common
from nova_rt.placement.rest import errors
from nova_rt.placement.rest.handlers import util

_RESOURCES_FORM = ('Badly formed resources parameter. Expected resources '
                   'query string parameter in form: '
                   '?resources=VCPU:2,MEMORY_MB:1024.')


def resources(value: str) -> dict:
    """``'VCPU:2,MEMORY_MB:1024'`` -> ``{'VCPU': 2, 'MEMORY_MB': 1024}``."""
    if value.strip() == '':
        raise errors.bad_request(f'{_RESOURCES_FORM} Got: empty string.')
    result = {}
    for pair in value.split(','):
        rc, sep, amount = pair.partition(':')
        if not sep or ':' in amount:
            raise errors.bad_request(f'{_RESOURCES_FORM} Got: {pair}.')
        try:
            number = int(amount)
        except ValueError:
            raise errors.bad_request(
                f'Requested resource {rc} expected positive integer amount. '
                f'Got: {amount}.') from None
        if number < 1:
            raise errors.bad_request(
                f'Requested resource {rc} requires amount >= 1. Got: '
                f'{number}.')
        if number > common.MAX_INT:
            # Beyond any capacity, and beyond what the database's integers
            # hold (SQLite raised OverflowError, PostgreSQL out of range).
            raise errors.bad_request(
                f'Requested resource {rc} requires amount <= '
                f'{common.MAX_INT}. Got: {number}.')
        result[rc] = number
    return result


def traits(value: str, allow_forbidden: bool, allow_any: bool):
    """One ``required`` value: ``([set of any-of names, ...], forbidden)``."""
    if value.startswith('in:'):
        if not allow_any:
            raise errors.bad_request(
                "Invalid query string parameters: The format "
                "'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since "
                f"microversion 1.39. Got: {value}")
        any_of = {name.strip() for name in value[3:].split(',')}
        if not all(any_of):
            raise errors.bad_request(
                "Invalid query string parameters: Expected 'required' "
                "parameter value of the form: in:HW_CPU_X86_VMX,"
                f"CUSTOM_MAGIC. Got an empty trait in: {value}")
        if any(name.startswith('!') for name in any_of):
            raise errors.bad_request(
                "Invalid query string parameters: The format "
                "'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support "
                f"forbidden traits. Got: {value}")
        return [any_of], set()
    names = [name.strip() for name in value.split(',')]
    forbidden = {n[1:] for n in names if n.startswith('!')}
    if not all(names) or not all(forbidden):
        form = ('HW_CPU_X86_VMX,!CUSTOM_MAGIC' if allow_forbidden
                else 'HW_CPU_X86_VMX,CUSTOM_MAGIC')
        raise errors.bad_request(
            "Invalid query string parameters: Expected 'required' parameter "
            f"value of the form: {form}. Got an empty trait in: {value}")
    if forbidden and not allow_forbidden:
        raise errors.bad_request(
            "Invalid query string parameters: Expected 'required' parameter "
            f"value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}")
    return [{n} for n in names if not n.startswith('!')], forbidden


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
    if ',' in value and not value.startswith(('in:', '!in:')):
        raise errors.bad_request(
            "Multiple values for 'member_of' must be prefixed with the "
            f"'in:' or '!in:' keyword using the valid microversion. Got: "
            f"{value}")
    any_of, forbidden = set(), set()
    if value.startswith('!in:'):
        forbidden = set(value[4:].split(','))
    elif value.startswith('!'):
        forbidden = {value[1:]}
    elif value.startswith('in:'):
        any_of = set(value[3:].split(','))
    else:
        any_of = {value}
    for uuid in any_of | forbidden:
        if not util.is_uuid(uuid):
            raise errors.bad_request(
                "Invalid query string parameters: Expected 'member_of' "
                f"parameter to contain valid UUID(s). Got: {uuid}")
    return any_of, forbidden


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
