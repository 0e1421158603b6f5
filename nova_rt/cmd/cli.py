"""``nova-rt``: the operator's CLI for nova-rt-compute and nova-rt-placement.

::

    nova-rt [--config-file F] [--transport-url URL] [--timeout S] COMMAND ...
            [-f table|json|yaml|value|csv] [-c COLUMN ...] [--long] [--fit-width]

A cliff application in python-openstackclient's habits; the same commands are
``openstack rt COMMAND`` when python-openstackclient is installed.  Commands:
``host list|show``, ``claim create|abort|update``, ``migration
resize|migrate|evacuate|live|finish|confirm|revert|abort|update``,
``candidates``, ``provider list|show|delete``, ``provider trait set``,
``provider aggregate set``, ``audit run``.  Where the RPC settings come from:
``nova_rt.cli.connect``.

Exit codes: 0 done, 1 a service refused or did not answer (one line
``ERROR: <Class>: <message>`` on stderr), 2 a usage or configuration error.
"""

from __future__ import annotations

import sys
from typing import Optional


def main(argv: Optional[list] = None) -> int:
    from nova_rt.cli import app
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return app.NovaRtApp().run(argv)
    except SystemExit as exc:       # argparse: usage error, --help, --version
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 2


if __name__ == '__main__':
    sys.exit(main())
