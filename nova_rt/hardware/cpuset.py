"""CPU range strings as Nova writes them: ``0-3,^2,8``."""

from __future__ import annotations


def parse_cpu_spec(spec: str) -> set[int]:
    """Parse a CPU range string into a set of CPU ids.

    ``"0-3,^2,8"`` gives ``{0, 1, 3, 8}``: ranges and single ids are included,
    ``^N`` or ``^N-M`` exclude.  Raises ``ValueError`` with a message naming the
    offending part; an empty string is an empty set.
    """
    included: set[int] = set()
    excluded: set[int] = set()
    for raw in spec.split(','):
        part = raw.strip()
        if not part:
            continue
        target = included
        if part.startswith('^'):
            target = excluded
            part = part[1:].strip()
        if '-' in part:
            start_s, _, end_s = part.partition('-')
            start, end = _cpu_id(start_s, raw), _cpu_id(end_s, raw)
            if start > end:
                raise ValueError(f"invalid CPU range {raw.strip()!r}: "
                                 f"{start} is greater than {end}")
            target.update(range(start, end + 1))
        else:
            target.add(_cpu_id(part, raw))
    return included - excluded


def _cpu_id(text: str, raw: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise ValueError(f"invalid CPU range {raw.strip()!r}: "
                         f"{text!r} is not a CPU number")
    value = int(text)
    if value > 65535:
        raise ValueError(f"invalid CPU range {raw.strip()!r}: "
                         f"CPU {value} is out of range")
    return value


def format_cpu_spec(cpus) -> str:
    """The shortest range string for a set of CPU ids: ``{0,1,2,5}`` -> ``0-2,5``."""
    ordered = sorted(set(cpus))
    parts = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ','.join(parts)
