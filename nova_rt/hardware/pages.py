"""Memory page sizes: reading ``hw:mem_page_size`` and choosing a host pool.

Pure: pools are ``objects.MemPagePool`` values and usage is a plain
``{size_kb: pages}`` dict, so the NUMA fitter and its tests share one rule.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence, Union

from nova_rt import objects

SMALL = 'small'
LARGE = 'large'
ANY = 'any'
KEYWORDS = (SMALL, LARGE, ANY)

#: A page size request: one of KEYWORDS or a size in KiB.
PageSize = Union[str, int]

# Nova reads suffixed sizes with oslo's IEC units (K, M, G, T all powers of
# 1024, "B" required); a bare number is KiB.  Lower-case "b" means bits there,
# which nobody means for a page size, so it is refused rather than guessed.
_SUFFIXED = re.compile(r'^(\d+)\s*([KMGTkmgt]?)(i?)B$')
_UNIT_BYTES = {'': 1, 'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3, 'T': 1024 ** 4}


def parse_page_size(value) -> PageSize:
    """``hw:mem_page_size`` as ``'small'``, ``'large'``, ``'any'`` or KiB.

    ``"2048"``, ``2048``, ``"2MB"``, ``"2MiB"`` and ``"2097152B"`` all give
    ``2048``; ``"1GB"`` gives ``1048576``.  Raises ``ValueError`` saying what
    is accepted.
    """
    if isinstance(value, bool):
        raise ValueError(_bad_size(value))
    if isinstance(value, int):
        size_kb = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lower() in KEYWORDS:
            return text.lower()
        size_kb = _size_kb(text)
        if size_kb is None:
            raise ValueError(_bad_size(value))
    else:
        raise ValueError(_bad_size(value))
    if size_kb <= 0:
        raise ValueError(_bad_size(value))
    return size_kb


def _size_kb(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    match = _SUFFIXED.match(text)
    if not match:
        return None
    size_bytes = int(match.group(1)) * _UNIT_BYTES[match.group(2).upper()]
    if size_bytes % 1024:
        return None
    return size_bytes // 1024


def _bad_size(value) -> str:
    return (f"{value!r} is not a page size: use small, large, any, a size in "
            f"KiB such as 2048, or a size with a unit such as 2MB or 1GB")


def free_pages(pool: objects.MemPagePool, pages_used: Mapping[int, int]) -> int:
    return pool.total - pool.reserved - pages_used.get(pool.size_kb, 0)


def select_page_size(pools: Sequence[objects.MemPagePool],
                     pages_used: Mapping[int, int], memory_mb: int,
                     request: PageSize,
                     unpaged_kb: int = 0) -> tuple[int | None, str | None]:
    """The page size a guest cell of ``memory_mb`` gets on a host cell.

    Returns ``(size_kb, None)`` or ``(None, reason)``.  As Nova:
    ``small`` is the smallest pool only, ``large`` every pool but the
    smallest (largest first), ``any`` every pool largest first, and an
    explicit size must be a pool of this cell.  The memory must be a whole
    number of pages and that many pages must be free.  ``unpaged_kb`` is
    the memory of guests without a page size, which Nova counts in the
    smallest pages.
    """
    by_size = {pool.size_kb: pool for pool in pools}
    if not by_size:
        return None, "reports no memory page pools"
    largest_first = sorted(by_size, reverse=True)
    if request == SMALL:
        candidates = largest_first[-1:]
    elif request == LARGE:
        candidates = largest_first[:-1]
        if not candidates:
            return None, (f"has no large pages (only {largest_first[0]} KiB "
                          f"pages)")
    elif request == ANY:
        candidates = largest_first
    elif request in by_size:
        candidates = [request]
    else:
        sizes = ', '.join(str(size) for size in sorted(by_size))
        return None, f"has no {request} KiB pages (has {sizes} KiB)"

    memory_kb = memory_mb * 1024
    problems = []
    for size_kb in candidates:
        if memory_kb % size_kb:
            problems.append(f"{memory_mb} MiB is not a whole number of "
                            f"{size_kb} KiB pages")
            continue
        needed = memory_kb // size_kb
        free = free_pages(by_size[size_kb], pages_used)
        if size_kb == largest_first[-1]:
            free -= -(-unpaged_kb // size_kb)
        if needed <= free:
            return size_kb, None
        problems.append(f"needs {memory_mb} MiB of {size_kb} KiB pages "
                        f"({needed} pages), {max(free, 0)} free")
    return None, ' or '.join(problems)
