"""THE route table of the REST API: (method, path) -> handler.

``min``/``max``: the microversions a route exists at; below ``min`` it
answers 404 as an unknown route (405 where Placement does), as Placement's
``version_handler`` does.  ``body``: the route takes a JSON body (415 for
another media type).  A path that matches no template is 404; a path
whose methods do not include the request's is 405 with ``Allow``.
Handlers choose their behaviour per microversion themselves.
"""

from __future__ import annotations

import dataclasses
import re

from nova_rt.placement.rest import microversion
from nova_rt.placement.rest.handlers import aggregate
from nova_rt.placement.rest.handlers import allocation
from nova_rt.placement.rest.handlers import allocation_candidate as ac
from nova_rt.placement.rest.handlers import inventory
from nova_rt.placement.rest.handlers import reshaper
from nova_rt.placement.rest.handlers import resource_class
from nova_rt.placement.rest.handlers import resource_provider
from nova_rt.placement.rest.handlers import root
from nova_rt.placement.rest.handlers import trait
from nova_rt.placement.rest.handlers import usage

RP = '/resource_providers/{uuid}'
BODY = {'body': True}
_ROUTES = [
    # method   path                                  handler              min    extras
    ('GET',    '/',                                  root.home),
    ('GET',    '',                                   root.home),
    ('GET',    '/resource_classes',                  resource_class.list_classes, '1.2'),
    ('POST',   '/resource_classes',                  resource_class.create, '1.2', BODY),
    ('GET',    '/resource_classes/{name}',           resource_class.show, '1.2'),
    ('PUT',    '/resource_classes/{name}',           resource_class.update, '1.2'),
    ('DELETE', '/resource_classes/{name}',           resource_class.delete, '1.2'),
    ('GET',    '/resource_providers',                resource_provider.list_providers),
    ('POST',   '/resource_providers',                resource_provider.create, '1.0', BODY),
    ('GET',    RP,                                   resource_provider.show),
    ('PUT',    RP,                                   resource_provider.update, '1.0', BODY),
    ('DELETE', RP,                                   resource_provider.delete),
    ('GET',    RP + '/inventories',                  inventory.list_inventories),
    ('POST',   RP + '/inventories',                  inventory.create, '1.0', BODY),
    ('PUT',    RP + '/inventories',                  inventory.set_all, '1.0', BODY),
    ('DELETE', RP + '/inventories',                  inventory.delete_all, '1.5', {'too_old': 405}),
    ('GET',    RP + '/inventories/{resource_class}', inventory.show),
    ('PUT',    RP + '/inventories/{resource_class}', inventory.update, '1.0', BODY),
    ('DELETE', RP + '/inventories/{resource_class}', inventory.delete),
    ('GET',    RP + '/usages',                       usage.provider_usages),
    ('GET',    RP + '/aggregates',                   aggregate.show, '1.1'),
    ('PUT',    RP + '/aggregates',                   aggregate.update, '1.1', BODY),
    ('GET',    RP + '/allocations',                  allocation.for_provider),
    ('GET',    RP + '/traits',                       trait.provider_traits, '1.6'),
    ('PUT',    RP + '/traits',                       trait.set_provider_traits, '1.6', BODY),
    ('DELETE', RP + '/traits',                       trait.delete_provider_traits, '1.6'),
    ('POST',   '/allocations',                       allocation.post_many, '1.13', BODY),
    ('GET',    '/allocations/{consumer_uuid}',       allocation.for_consumer),
    ('PUT',    '/allocations/{consumer_uuid}',       allocation.put, '1.0', BODY),
    ('DELETE', '/allocations/{consumer_uuid}',       allocation.delete),
    ('GET',    '/traits',                            trait.list_traits, '1.6'),
    ('GET',    '/traits/{name}',                     trait.show, '1.6'),
    ('PUT',    '/traits/{name}',                     trait.create, '1.6'),
    ('DELETE', '/traits/{name}',                     trait.delete, '1.6'),
    ('GET',    '/usages',                            usage.total_usages, '1.9'),
    ('POST',   '/reshaper',                          reshaper.reshape, '1.30', BODY),
    ('GET',    '/allocation_candidates',             ac.list_allocation_candidates, '1.10'),
]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: object
    min_version: microversion.Version
    max_version: microversion.Version
    takes_body: bool
    too_old_status: int

    @property
    def name(self) -> str:
        return f'{self.method} {self.template or "/"}'


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r'\{(\w+)\}', template)
    regex = ''.join(re.escape(p) if i % 2 == 0 else f'(?P<{p}>[^/]+)'
                    for i, p in enumerate(parts))
    return re.compile(f'^{regex}$')


class RouteTable:
    def __init__(self, entries):
        self._paths: dict[str, tuple[re.Pattern, dict]] = {}
        for entry in entries:
            method, template, handler = entry[:3]
            low = entry[3] if len(entry) > 3 else '1.0'
            extras = entry[4] if len(entry) > 4 else {}
            route = Route(method, template, handler,
                          microversion.parse_version_string(low),
                          microversion.MAX, extras.get('body', False),
                          extras.get('too_old', 404))
            pattern, methods = self._paths.setdefault(
                template, (_pattern(template), {}))
            if method in methods:
                raise ValueError(f'route {route.name} listed twice')
            methods[method] = route

    def _find(self, path: str):
        for pattern, methods in self._paths.values():
            found = pattern.match(path)
            if found:
                return found.groupdict(), methods
        return None, {}

    def match(self, path: str, method: str):
        """``(route, urlvars)``; ``(None, {})`` when nothing serves it."""
        urlvars, methods = self._find(path)
        route = methods.get(method)
        return (route, urlvars) if route else (None, {})

    def allowed(self, path: str) -> list[str]:
        """The methods of the path (empty: an unknown path)."""
        return list(self._find(path)[1])

    def routes(self):
        for _pattern_, methods in self._paths.values():
            yield from methods.values()


TABLE = RouteTable(_ROUTES)
