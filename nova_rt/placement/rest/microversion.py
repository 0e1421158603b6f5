"""Microversion negotiation as OpenStack Placement does it.

The header is ``OpenStack-API-Version: placement X.Y`` (other services'
entries in the same header, comma separated, are ignored; the last entry for
placement wins).  No header means the minimum; ``latest`` the maximum.  A
value that is not ``X.Y`` is 400; a well-formed version outside the range is
406.  The chosen version is echoed in every response with
``Vary: OpenStack-API-Version``.
"""

from __future__ import annotations

SERVICE_TYPE = 'placement'
#: As microversion_parse writes it (clients match ``Vary`` on it).
HEADER = 'openstack-api-version'
MIN_VERSION = (1, 0)
#: The highest microversion every route implements fully (doc/source/rest-api.rst).
MAX_VERSION = (1, 39)


class Version(tuple):
    """``(major, minor)``, comparable with tuples: ``req.microversion >= (1, 28)``."""

    def __new__(cls, major: int, minor: int):
        return super().__new__(cls, (major, minor))

    @property
    def major(self) -> int:
        return self[0]

    @property
    def minor(self) -> int:
        return self[1]

    def __str__(self) -> str:
        return f'{self[0]}.{self[1]}'

    def __repr__(self) -> str:
        return f'Version({self[0]}, {self[1]})'

    def matches(self, min_version=None, max_version=None) -> bool:
        return ((min_version or MIN_VERSION) <= self
                <= (max_version or MAX_VERSION))


MIN = Version(*MIN_VERSION)
MAX = Version(*MAX_VERSION)


class Malformed(ValueError):
    """Not a version string (400)."""


class Unacceptable(ValueError):
    """A version outside ``[MIN, MAX]`` (406)."""


def requested(header_value: str | None) -> str | None:
    """The placement entry of the header's value (None: not given)."""
    if not header_value:
        return None
    for entry in reversed(header_value.split(',')):
        parts = entry.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == SERVICE_TYPE:
            return parts[1].strip()
    return None


def parse_version_string(text: str) -> Version:
    """``'1.28' -> Version(1, 28)``; ``Malformed`` otherwise."""
    major, dot, minor = text.strip().partition('.')
    try:
        if not dot:
            raise ValueError
        return Version(int(major), int(minor))
    except ValueError:
        raise Malformed(f'invalid version string: {text}') from None


def negotiate(header_value: str | None) -> Version:
    """The version a request asks for; ``Malformed`` or ``Unacceptable``."""
    text = requested(header_value)
    if text is None:
        return MIN
    if text.strip() == 'latest':
        return MAX
    version = parse_version_string(text)
    if not MIN <= version <= MAX:
        raise Unacceptable(f'Unacceptable version header: {text}')
    return version


def response_header(version: Version) -> str:
    return f'{SERVICE_TYPE} {version}'
