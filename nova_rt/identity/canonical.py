"""The canonical JSON form that signatures cover: RFC 8785 (JCS).

A signature cannot cover the bytes on the wire: oslo.messaging decodes the
message and the receiver sees only the decoded values.  Both ends therefore
sign and check the canonical form of the *values*, which any JSON library in
any language can reproduce from RFC 8785: object keys sorted by their UTF-16
code units, no white space, strings with only ``"``, ``\\`` and control
characters escaped (UTF-8 otherwise), numbers as ECMAScript writes them
(``4.0`` is ``4``, ``1e-7`` is ``1e-7``, ``0.000001`` is ``0.000001``).

Python's own ``json`` differs in its numbers (``4.0``, ``1e-07``), which is
why this is a walk of its own; a round trip through JSON never changes the
canonical form of a value, whichever language wrote it.

>>> dumps({'b': [1, 2.0, 'é'], 'a': None, 'c': 1e-07})
b'{"a":null,"b":[1,2,"\\xc3\\xa9"],"c":1e-7}'
"""

from __future__ import annotations

import functools
import json
import json.encoder
import math
import re

_escape = json.encoder.encode_basestring     # the C one where available
_c_encode = functools.partial(json.dumps, sort_keys=True,
                              separators=(',', ':'), ensure_ascii=False,
                              allow_nan=False)


#: Where Python's C encoder may have written a float, whose form differs
#: from RFC 8785's (``4.0``, ``1e-07``): every float repr has a point before
#: a digit or ends in an exponent.  Two plain patterns, because one with
#: alternatives scans slower than the walk it saves; a match inside a
#: string (an IP address) only costs the walk.
_DECIMAL = re.compile(r'\.[0-9]')
_EXPONENT = re.compile(r'e[-+][0-9]+(?:[,\]}]|\Z)')


def dumps(value) -> bytes:
    """The UTF-8 bytes of ``value``'s canonical form.

    ``ValueError`` for what has no canonical form: NaN or infinity, a string
    with a lone surrogate, a type JSON lacks.  Lists and tuples are both
    arrays, and keys that are not strings are written as strings, as JSON
    carries them.
    """
    # Python's C encoder writes exactly RFC 8785 for what holds no float and
    # only ASCII (strings escaped alike, ASCII keys sort alike in UTF-16),
    # at twice the speed of the walk below: most payloads are such.
    try:
        text = _c_encode(value)
    except (TypeError, ValueError):
        text = None
    if (text is not None and text.isascii() and not _DECIMAL.search(text)
            and not _EXPONENT.search(text)):
        return text.encode('ascii')
    parts: list = []
    _write(value, parts)
    try:
        return ''.join(parts).encode('utf-8')
    except UnicodeEncodeError:
        raise ValueError('a string holds a lone surrogate') from None


def _write(value, out: list) -> None:
    # Ordered by how often each type occurs in a payload.
    if isinstance(value, str):
        out.append(_escape(value))
    elif value is None:
        out.append('null')
    elif value is True:
        out.append('true')
    elif value is False:
        out.append('false')
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, dict):
        keys = [key if isinstance(key, str) else _key(key) for key in value]
        value = dict(zip(keys, value.values()))
        if all(map(str.isascii, keys)):
            keys.sort()
        else:
            keys.sort(key=_utf16)
        out.append('{')
        first = True
        for key in keys:
            if not first:
                out.append(',')
            first = False
            out.append(_escape(key))
            out.append(':')
            _write(value[key], out)
        out.append('}')
    elif isinstance(value, (list, tuple)):
        out.append('[')
        first = True
        for item in value:
            if not first:
                out.append(',')
            first = False
            _write(item, out)
        out.append(']')
    elif isinstance(value, float):
        out.append(number(value))
    else:
        raise ValueError(f'{type(value).__name__} is not a JSON type')


def _key(key) -> str:
    """A key that is not a string, as JSON writes it."""
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key) if not isinstance(key, float) else number(key)
    raise ValueError(f'an object key is not a string: {key!r:.40}')


def _utf16(key: str) -> bytes:
    return key.encode('utf-16-be', 'surrogatepass')


def number(value: float) -> str:
    """ECMAScript's Number::toString of a finite float (RFC 8785, 3.2.2.3).

    >>> [number(x) for x in (4.0, -0.0, 1.5, 1e21, 1e-7, 0.000001, 123e-20)]
    ['4', '0', '1.5', '1e+21', '1e-7', '0.000001', '1.23e-18']
    """
    if not math.isfinite(value):
        raise ValueError('NaN and infinity have no JSON form')
    if value == 0:
        return '0'
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    sign = '-' if value < 0 else ''
    # repr is the shortest string that reads back as the same float, as
    # ECMAScript's digits are; only where the point goes differs.
    mantissa, _, exponent = repr(abs(value)).partition('e')
    whole, _, fraction = mantissa.partition('.')
    all_digits = whole + fraction
    leading = len(all_digits) - len(all_digits.lstrip('0'))
    digits = all_digits.strip('0')
    k = len(digits)
    # value = 0.<digits> * 10**n
    n = len(whole) + (int(exponent) if exponent else 0) - leading
    if k <= n <= 21:
        text = digits + '0' * (n - k)
    elif 0 < n <= 21:
        text = f'{digits[:n]}.{digits[n:]}'
    elif -6 < n <= 0:
        text = '0.' + '0' * -n + digits
    else:
        e = n - 1
        head = digits if k == 1 else f'{digits[0]}.{digits[1:]}'
        text = f'{head}e{"+" if e >= 0 else "-"}{abs(e)}'
    return sign + text
