"""The body of ``GET /allocation_candidates``, written as JSON directly.

The same bytes as the stdlib encoder with compact separators gives for the
answer as dicts (``allocation_requests`` and ``provider_summaries`` in the
shape of each microversion, keys in the order Placement writes them), made
without those dicts: over a thousand candidates, building them and encoding
them was half the time of the request (bench/bench_candidates_rest.py).
The fragments that recur (a provider's uuid, the amounts a thousand
requests share, a set of traits, a mapping's providers) are encoded once
per answer.

Input: ``candidates.find``'s allocation requests, ``({rp id: {class:
amount}}, {suffix: frozenset(rp id)}, root id, ...)``, and its trees
(``uuid``, ``parent``, ``root``, ``inventory`` ``{rp: {class: (capacity,
used)}}``, ``traits`` ``{rp: frozenset(name)}``).
"""

from __future__ import annotations

import json

_STR = json.encoder.encode_basestring_ascii
_ENCODER = json.JSONEncoder(separators=(',', ':'), check_circular=False)
_NONE = frozenset()
EMPTY = b'{"allocation_requests":[],"provider_summaries":{}}'


def encode(areqs, trees, classes, version, nested_aware_only) -> bytes:
    """The body; ``classes``: the request's resource classes;
    ``nested_aware_only``: before 1.29 on a cloud with trees (summaries of
    the requests' providers only)."""
    if not areqs:
        return EMPTY
    uuid = {rp: _STR(u) for rp, u in trees.uuid.items()}
    return ''.join((
        '{"allocation_requests":[',
        ','.join(_allocation_requests(areqs, uuid, version)),
        '],"provider_summaries":{',
        ','.join(_summaries(areqs, trees, uuid, classes, version,
                            nested_aware_only)),
        '}}')).encode()


def _allocation_requests(areqs, uuid: dict, version) -> list:
    # The amounts' JSON by the dict (they outlive this), then by content:
    # Nova's thousand requests share one dict, the combined ones repeat
    # a few contents in thousands of dicts.
    by_dict: dict = {}
    by_content: dict = {}

    def resources(r: dict) -> str:
        text = by_dict.get(id(r))
        if text is None:
            content = tuple(r.items())
            text = by_content.get(content)
            if text is None:
                text = by_content[content] = _ENCODER.encode(r)
            by_dict[id(r)] = text
        return text

    if version < (1, 12):
        return [''.join((
            '{"allocations":[', ','.join(
                f'{{"resource_provider":{{"uuid":{uuid[rp]}}},'
                f'"resources":{resources(r)}}}' for rp, r in by_rp.items()),
            ']}')) for by_rp, *_ in areqs]
    result = []
    append = result.append
    if version < (1, 34):
        for by_rp, *_ in areqs:
            append(''.join(('{"allocations":{', ','.join(
                f'{uuid[rp]}:{{"resources":{resources(r)}}}'
                for rp, r in by_rp.items()), '}}')))
        return result
    listed: dict = {}    # frozenset(rp) -> JSON list of sorted uuids
    suffixes: dict = {}
    for by_rp, mappings, *_ in areqs:
        if len(by_rp) == 1 and len(mappings) == 1:
            # Nova's: all from one provider, the unnumbered group's.
            (rp, r), = by_rp.items()
            (suffix, rps), = mappings.items()
            if suffix == '' and len(rps) == 1:
                only, = rps
                append(f'{{"allocations":{{{uuid[rp]}:{{"resources":'
                       f'{resources(r)}}}}},"mappings":{{"":[{uuid[only]}]}}}}')
                continue
        parts = []
        for suffix, rps in mappings.items():
            uuids = listed.get(rps)
            if uuids is None:
                uuids = listed[rps] = '[' + ','.join(sorted(
                    uuid[rp] for rp in rps)) + ']'
            key = suffixes.get(suffix)
            if key is None:
                key = suffixes[suffix] = _STR(suffix)
            parts.append(f'{key}:{uuids}')
        append(''.join(('{"allocations":{', ','.join(
            f'{uuid[rp]}:{{"resources":{resources(r)}}}'
            for rp, r in by_rp.items()), '},"mappings":{', ','.join(parts),
            '}}')))
    return result


def _summaries(areqs, trees, uuid: dict, classes, version,
               nested_aware_only) -> list:
    if nested_aware_only:
        shown = sorted({rp for a in areqs for rp in a[0]})
    else:
        kept = {a[2] for a in areqs}
        shown = sorted(rp for rp, root in trees.root.items() if root in kept)
    every_class = version >= (1, 27)
    names: dict = {}     # class -> its JSON string
    trait_lists: dict = {}
    inventory, traits = trees.inventory, trees.traits
    parent, root = trees.parent, trees.root
    result = []
    append = result.append
    for rp in shown:
        parts = []
        for rc, row in inventory.get(rp, {}).items():
            if every_class or rc in classes:
                name = names.get(rc)
                if name is None:
                    name = names[rc] = _STR(rc)
                parts.append(f'{name}:{{"capacity":{row[0]},'
                             f'"used":{row[1]}}}')
        if version < (1, 17):
            append(f'{uuid[rp]}:{{"resources":{{{",".join(parts)}}}}}')
            continue
        have = traits.get(rp, _NONE)
        text = trait_lists.get(have)
        if text is None:
            text = trait_lists[have] = _ENCODER.encode(sorted(have))
        if version < (1, 29):
            append(f'{uuid[rp]}:{{"resources":{{{",".join(parts)}}},'
                   f'"traits":{text}}}')
            continue
        up = parent[rp]
        append(f'{uuid[rp]}:{{"resources":{{{",".join(parts)}}},'
               f'"traits":{text},"parent_provider_uuid":'
               f'{uuid[up] if up else "null"},'
               f'"root_provider_uuid":{uuid[root[rp]]}}}')
    return result
