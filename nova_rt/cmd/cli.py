"""``nova-rt``: the operator's CLI for nova-rt-compute and nova-rt-placement.

::

    nova-rt [--config-file F] [--transport-url URL] [-f table|json|yaml]
            [--timeout S] COMMAND ...

Commands: ``host list|show``, ``claim create|abort|update``, ``migration
resize|migrate|evacuate|live|finish|confirm|revert|abort|update``,
``candidates``, ``provider list|show``, ``audit run``.  The transport URL and
``control_exchange`` come from the config file (``--config-file``, else
``$NOVA_RT_CONFIG_FILE``, else ``/etc/nova_rt/nova-rt.conf``); ``--transport-url``
(or ``$NOVA_RT_TRANSPORT_URL``) overrides the URL.

Exit codes: 0 done, 1 a service refused or did not answer (one line
``ERROR: <Class>: <message>`` on stderr), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from typing import Optional

PROG = 'nova-rt'
DEFAULT_CONFIG_FILES = ('/etc/nova_rt/nova-rt.conf',)
DEFAULT_TIMEOUT = 10.0


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number of seconds '
                                         'in (0, 3600]')
    return value


def build_parser() -> argparse.ArgumentParser:
    from nova_rt.cli import commands
    from nova_rt.cli import output
    from nova_rt import version
    parser = argparse.ArgumentParser(
        prog=PROG, description='Look at and drive nova-rt-compute and '
        'nova-rt-placement over RPC.', epilog=commands.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--version', action='version',
                        version=version.version_string())
    parser.add_argument('--config-file', action='append', metavar='FILE',
                        help='oslo.config file with transport_url and '
                             'control_exchange (repeatable; default '
                             '$NOVA_RT_CONFIG_FILE or /etc/nova_rt/nova-rt.conf)')
    parser.add_argument('--transport-url', metavar='URL',
                        default=os.environ.get('NOVA_RT_TRANSPORT_URL'),
                        help='overrides [DEFAULT] transport_url '
                             '(default $NOVA_RT_TRANSPORT_URL)')
    parser.add_argument('-f', '--format', choices=output.FORMATS, default='table',
                        help='output format (default: table)')
    parser.add_argument('--timeout', type=_timeout, default=DEFAULT_TIMEOUT,
                        metavar='SECONDS',
                        help='how long to wait for an answer (default: %(default)s)')
    parser.add_argument('--debug', action='store_true',
                        help='log RPC and show tracebacks')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.add_commands(subparsers)
    return parser


def config_files(given: Optional[list]) -> list:
    if given:
        return list(given)
    env = os.environ.get('NOVA_RT_CONFIG_FILE')
    if env:
        return [env]
    return [f for f in DEFAULT_CONFIG_FILES if os.path.exists(f)]


def _init_process(debug: bool) -> int:
    # oslo.messaging pulls in oslo.service, which would pick (and warn about)
    # eventlet unless a backend is chosen first; a CLI wants plain threads.
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    from oslo_service import backend
    try:
        backend.init_backend(backend.BackendType.THREADING)
    except Exception:
        pass        # already chosen in this process (in-process callers)
    from nova_rt import log as nova_log
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(nova_log.MaskingFormatter(
            logging.Formatter('%(levelname)s %(name)s: %(message)s')))
        root.addHandler(handler)
    # The outcome is the one ERROR line; the driver's own complaints about
    # the same failure would only repeat it.  The caller restores the level:
    # main() may run inside another program (the demo, tests).
    previous = root.level
    root.setLevel(logging.DEBUG if debug else logging.CRITICAL)
    return previous


def _load_conf(files: list):
    from oslo_config import cfg

    from nova_rt import conf as nova_conf
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise ValueError(f'config file {missing[0]} not found')
    conf = nova_conf.CONF
    try:
        conf([], project='nova_rt', prog=PROG, default_config_files=files,
             default_config_dirs=[])
    except cfg.Error as exc:
        raise ValueError(' '.join(str(exc).split())) from None
    return conf


def main(argv: Optional[list] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # usage error or --help
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    log_level = _init_process(args.debug)
    try:
        return _run(args)
    finally:
        logging.getLogger().setLevel(log_level)


def _run(args) -> int:
    from nova_rt.cli import clients as clients_mod
    from nova_rt.cli import output
    try:
        conf = _load_conf(config_files(args.config_file))
    except ValueError as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 2
    clients = clients_mod.Clients(conf, args.transport_url, args.timeout)
    try:
        result = args.handler(clients, args)
    except clients_mod.CliError as exc:
        print(exc.line(), file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            raise
        error = clients_mod.remote_error(exc) or clients_mod.CliError(
            ' '.join(str(exc).split()) or 'no details', type(exc).__name__)
        print(error.line(), file=sys.stderr)
        return 1
    finally:
        clients.close()
    print(output.render(result, getattr(args, 'format', 'table')))
    return 0


if __name__ == '__main__':
    sys.exit(main())
