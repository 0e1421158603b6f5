"""``GET /``: the version document (served without authentication)."""

from nova_rt.placement.rest import app
from nova_rt.placement.rest import microversion


def home(req: app.Request) -> app.Response:
    return app.json_response({'versions': [{
        'id': f'v{microversion.MIN}',
        'min_version': str(microversion.MIN),
        'max_version': str(microversion.MAX),
        'status': 'CURRENT',
        # Relative "this same URL", as Placement: no proxy address to know.
        'links': [{'rel': 'self', 'href': ''}],
    }]})
