"""Placement's error codes and the HTTP errors handlers raise.

An error body is ``{"errors": [{"status", "title", "detail", "code",
"request_id"}]}``; ``code`` only from microversion 1.23, as in Placement
(``placement.undefined_code`` when a handler names none).
"""

from __future__ import annotations

import html
import http

DEFAULT = 'placement.undefined_code'
INVENTORY_INUSE = 'placement.inventory.inuse'
CONCURRENT_UPDATE = 'placement.concurrent_update'
DUPLICATE_NAME = 'placement.duplicate_name'
PROVIDER_IN_USE = 'placement.resource_provider.inuse'
PROVIDER_CANNOT_DELETE_PARENT = (
    'placement.resource_provider.cannot_delete_parent')
RESOURCE_PROVIDER_NOT_FOUND = 'placement.resource_provider.not_found'
ILLEGAL_DUPLICATE_QUERYPARAM = 'placement.query.duplicate_key'
QUERYPARAM_BAD_VALUE = 'placement.query.bad_value'
QUERYPARAM_MISSING_VALUE = 'placement.query.missing_value'

#: The microversion from which error bodies carry ``code``.
CODE_MICROVERSION = (1, 23)


class HTTPError(Exception):
    """An answer with an error status; ``detail`` is for the client."""

    def __init__(self, status: int, detail: str, code: str | None = None,
                 headers: dict | None = None, extra: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or DEFAULT
        self.headers = headers or {}
        #: More keys of the error's dict (406's min/max_version).
        self.extra = extra or {}

    @property
    def title(self) -> str:
        return http.HTTPStatus(self.status).phrase


def bad_request(detail: str, code: str | None = None) -> HTTPError:
    return HTTPError(400, detail, code)


def not_found(detail: str, code: str | None = None) -> HTTPError:
    return HTTPError(404, detail, code)


def conflict(detail: str, code: str | None = None) -> HTTPError:
    return HTTPError(409, detail, code)


def body(error: HTTPError, request_id: str | None, microversion) -> dict:
    entry = {'status': error.status, 'title': error.title,
             'detail': error.detail}
    if microversion is not None and microversion >= CODE_MICROVERSION:
        entry['code'] = error.code
    if request_id:
        entry['request_id'] = request_id
    entry.update(error.extra)
    return {'errors': [entry]}


def text(error: HTTPError, media_type: str) -> str:
    """The error for a client that accepts only HTML or plain text."""
    title = f'{error.status} {error.title}'
    if media_type == 'text/html':
        return (f'<html>\n <head>\n  <title>{title}</title>\n </head>\n'
                f' <body>\n  <h1>{title}</h1>\n  '
                f'{html.escape(error.detail)}\n </body>\n</html>')
    return f'{title}\n\n{error.detail}\n'
