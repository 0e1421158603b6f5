"""Serve OpenStack Placement 16 as its old ``placement-api`` script did.

    .venv-ref/bin/python tests/functional/clients/refserve.py --port P

Runs in the reference virtualenv (tools/setup-ref.sh), never in nova_rt's.
Placement 16's wheel ships the WSGI module ``placement.wsgi.api`` but no
longer a ``placement-api`` script; until it was dropped, that script was
pbr's ``wsgi_scripts`` template: ``wsgiref.simple_server`` on one thread,
which is what this does too, so that Placement is measured as its own
development server served it. The configuration is read the way
``placement.wsgi`` reads it: ``$OS_PLACEMENT_CONFIG_DIR/placement.conf``.
"""

import argparse
import sys
import wsgiref.simple_server


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):      # Placement logs each request itself
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    args = parser.parse_args()
    from placement.wsgi import api
    server = wsgiref.simple_server.make_server(
        args.host, args.port, api.application, handler_class=_QuietHandler)
    print(f'serving Placement on http://{args.host}:{args.port}/', flush=True)
    server.serve_forever()
    return 0


if __name__ == '__main__':
    sys.exit(main())
