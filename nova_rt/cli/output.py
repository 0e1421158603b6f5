"""Output of the ``nova-rt`` CLI: tables, JSON, YAML and usage bars. Pure.

Every command returns a ``Result``: the data (plain JSON types, what ``-f json``
and ``-f yaml`` print unchanged, so scripts never parse a table) and a function
that turns that data into the table a person reads.

>>> print(usage_bar(5, 16))
[###.......] 5/16
>>> print(table([{'a': 1, 'b': 'x'}], [('a', 'A'), ('b', 'B')]))
+---+---+
| A | B |
+---+---+
| 1 | x |
+---+---+
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Iterable, Sequence

import yaml

FORMATS = ('table', 'json', 'yaml')
BAR_WIDTH = 10


@dataclasses.dataclass
class Result:
    data: Any
    to_table: Callable[[Any], str]


def usage_bar(used: float, total: float, width: int = BAR_WIDTH) -> str:
    """``[###.......] 5/16``: filled in proportion, full (and marked ``!``)
    past 100% so overcommit stands out rather than being clipped silently."""
    if total and total > 0:
        filled = round(width * min(max(used, 0) / total, 1.0))
        if used > 0 and filled == 0:
            filled = 1     # something is used: never look empty
    else:
        filled = 0
    bar = '#' * filled + '.' * (width - filled)
    over = '!' if total is not None and used > total else ''
    return f'[{bar}]{over} {_num(used)}/{_num(total)}'


def _num(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def cell(value) -> str:
    """A value as table text: lists one per line, dicts as ``k=v`` lines."""
    if value is None:
        return '-'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, dict):
        return '\n'.join(f'{k}={cell(v)}' for k, v in value.items()) or '-'
    if isinstance(value, (list, tuple)):
        return '\n'.join(cell(v) for v in value) or '-'
    return str(value)


def table(rows: Iterable[dict], columns: Sequence[tuple[str, str]]) -> str:
    """An openstackclient-style bordered table; cells may span lines."""
    header = [title for _key, title in columns]
    body = [[cell(row.get(key)).split('\n') for key, _title in columns]
            for row in rows]
    widths = [len(title) for title in header]
    for row in body:
        for index, lines in enumerate(row):
            widths[index] = max(widths[index], *(len(line) for line in lines))
    rule = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'

    def line(parts):
        return '| ' + ' | '.join(p.ljust(w) for p, w in zip(parts, widths)) + ' |'

    out = [rule, line(header), rule]
    for row in body:
        height = max(len(lines) for lines in row)
        for i in range(height):
            out.append(line([lines[i] if i < len(lines) else '' for lines in row]))
    out.append(rule)
    return '\n'.join(out)


def fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """``show`` output: a two-column Field/Value table."""
    return table([{'field': k, 'value': v} for k, v in pairs],
                 [('field', 'Field'), ('value', 'Value')])


def render(result: Result, fmt: str) -> str:
    if fmt == 'json':
        return json.dumps(result.data, indent=2, sort_keys=True)
    if fmt == 'yaml':
        return yaml.safe_dump(result.data, default_flow_style=False,
                              sort_keys=True).rstrip('\n')
    return result.to_table(result.data)
