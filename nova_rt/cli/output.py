"""What the ``nova-rt`` CLI shows, before cliff formats it. Pure.

Every command's data is a JSON document (what ``-f json`` and ``-f yaml``
print unchanged, so scripts never parse a table): a list of records or one
record.  Its columns are the records' keys, as in osc-placement.  A ``View``
says which of them a person reads first (``-f table|value|csv`` show those
unless ``--long`` or ``-c``) and how a value reads as text: usage as bars,
lists one per line.

>>> print(usage_bar(5, 16))
[###.......] 5/16
>>> Column({'VCPU': 2, 'MEMORY_MB': 512}).human_readable()
'VCPU=2\\nMEMORY_MB=512'
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Sequence

from cliff import columns as cliff_columns

#: The ``-f`` choices this CLI documents (cliff also offers ``shell``).
FORMATS = ('table', 'json', 'yaml', 'value', 'csv')
#: Formats that print the whole document unless ``-c`` narrows it.
DOCUMENT_FORMATS = ('json', 'yaml', 'shell')
BAR_WIDTH = 10


class UsageError(ValueError):
    """Bad arguments found after parsing: exit code 2, nothing sent."""


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


class Column(cliff_columns.FormattableColumn):
    """A document value and the text a person reads for it.

    cliff's table uses ``human_readable``; json, yaml, value and csv use
    ``machine_readable``, the value unchanged.
    """

    def __init__(self, value: Any, text: str | None = None):
        super().__init__(value)
        self._text = cell(value) if text is None else text

    def human_readable(self) -> str:
        return self._text


def _no_text(record: dict) -> dict:
    return {}


@dataclasses.dataclass(frozen=True)
class View:
    """How a person reads one command's records.

    ``main``: the columns shown first, in this order (empty: all of them);
    ``known``: every column the document can have, where the contract fixes
    them, so that a wrong ``-c`` is refused before a write is sent;
    ``text(record)``: ``{column: text}`` where the plain ``cell`` text is
    not the best reading; ``empty``: said in a table when a list is empty.
    """

    main: Sequence[str] = ()
    known: Sequence[str] = ()
    text: Callable[[dict], dict] = _no_text
    empty: str = ''


def _normal(name: str) -> str:
    # cliff's own normalisation for -c, so 'Heartbeat Age S' finds it too.
    return name.lower().strip().replace(' ', '_')


def keys_of(records: Iterable[dict]) -> list:
    """Every key of ``records``, in the order first seen."""
    seen: dict = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def check_columns(requested: Sequence[str], keys: Sequence[str]) -> None:
    """A ``UsageError`` for a ``-c`` that names no column, rather than
    cliff's error that does not say which option was wrong."""
    known = {_normal(k) for k in keys}
    unknown = [c for c in requested if _normal(c) not in known]
    if unknown and keys:
        raise UsageError(f'-c/--column: no column {unknown[0]!r} '
                         f'(columns: {", ".join(keys)})')


def pick_columns(keys: Sequence[str], view: View, fmt: str, long: bool,
                 requested: Sequence[str]) -> list:
    """The columns to hand to cliff, which then applies ``-c`` itself."""
    check_columns(requested, keys)
    main = [k for k in view.main if k in keys]
    rest = [k for k in keys if k not in main]
    if requested or long or fmt in DOCUMENT_FORMATS or not main:
        return main + rest
    return main


def row(record: dict, columns: Sequence[str], view: View) -> tuple:
    texts = view.text(record)
    return tuple(Column(record.get(c), texts.get(c)) for c in columns)
