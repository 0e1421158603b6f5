"""Runs ``openstack`` commands one after the other in one process of the
reference virtualenv: a JSON list of arguments per line in, a JSON object
``{"rc", "stdout", "stderr"}`` per line out.

Each command is python-openstackclient's own ``main(argv)``, exactly what
the ``openstack`` script runs, with its own shell object, output streams and
log handlers; only the interpreter and the loaded plugins are shared, which
saves the second or so that starting ``openstack`` costs every time.
"""

import io
import json
import logging
import sys

from openstackclient import shell


def run(argv: list) -> dict:
    out, err = io.StringIO(), io.StringIO()
    real = sys.stdout, sys.stderr
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    sys.stdout, sys.stderr = out, err
    try:
        rc = shell.main(argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdout, sys.stderr = real
    return {'rc': rc or 0, 'stdout': out.getvalue(), 'stderr': err.getvalue()}


def serve(lines, reply) -> None:
    for line in lines:
        reply.write(json.dumps(run(json.loads(line))) + '\n')
        reply.flush()


if __name__ == '__main__':
    serve(sys.stdin, sys.stdout)
