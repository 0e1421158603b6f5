"""Where the CLI's RPC settings come from, for ``nova-rt`` and ``openstack rt``.

The transport URL and ``control_exchange`` come from the config file
(``--config-file``, else ``$NOVA_RT_CONFIG_FILE``, else
``/etc/nova_rt/nova-rt.conf``); ``--transport-url`` (or
``$NOVA_RT_TRANSPORT_URL``) overrides the URL.  With no config file at all
the CLI says so and what it will use, rather than quietly trying guest on
localhost.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Optional, Sequence

from nova_rt.cli import output

DEFAULT_CONFIG_FILES = ('/etc/nova_rt/nova-rt.conf',)
CONFIG_ENV = 'NOVA_RT_CONFIG_FILE'
TRANSPORT_URL_ENV = 'NOVA_RT_TRANSPORT_URL'
DEFAULT_TIMEOUT = 10.0
#: What oslo.messaging connects to when ``transport_url`` is unset.
IMPLICIT_TRANSPORT_URL = 'rabbit://guest:guest@localhost:5672/'


def timeout_arg(text: str) -> float:
    """argparse ``type=`` for ``--timeout``."""
    import argparse
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number of seconds '
                                         'in (0, 3600]')
    return value


def add_options(parser, prefix: str = '--') -> None:
    """``--config-file``, ``--transport-url``, ``--timeout``; under osc
    (``prefix='--os-rt-'``) one config file, as osc takes one of each."""
    parser.add_argument(
        f'{prefix}config-file', action='append' if prefix == '--' else 'store',
        metavar='FILE',
        help='nova_rt config file with transport_url and control_exchange '
             f'(default ${CONFIG_ENV}, else {", ".join(DEFAULT_CONFIG_FILES)}'
             + ('; repeatable)' if prefix == '--' else ')'))
    parser.add_argument(
        f'{prefix}transport-url', metavar='URL',
        default=os.environ.get(TRANSPORT_URL_ENV),
        help=f'overrides [DEFAULT] transport_url (default ${TRANSPORT_URL_ENV})')
    parser.add_argument(
        f'{prefix}timeout', type=timeout_arg, default=DEFAULT_TIMEOUT,
        metavar='SECONDS',
        help='how long to wait for an answer (default: %(default)s)')


def config_files(given: Optional[Sequence[str]]) -> tuple[list, list]:
    """``(files to read, places looked)``; a file named by the operator is
    read (and must exist), the system default only if it is there."""
    if given:
        return list(given), list(given)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return [env], [env]
    looked = [f'${CONFIG_ENV} (unset)', *DEFAULT_CONFIG_FILES]
    return [f for f in DEFAULT_CONFIG_FILES if os.path.exists(f)], looked


def init_backend() -> None:
    # oslo.messaging pulls in oslo.service, which would pick (and warn about)
    # eventlet unless a backend is chosen first; a CLI wants plain threads.
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    from oslo_service import backend
    try:
        backend.init_backend(backend.BackendType.THREADING)
    except Exception:
        pass        # already chosen in this process (in-process callers)


def init_logging(debug: bool, stream) -> int:
    """Masked logging to ``stream``; returns the root level to restore."""
    from nova_rt import log as nova_log
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(nova_log.MaskingFormatter(
            logging.Formatter('%(levelname)s %(name)s: %(message)s')))
        root.addHandler(handler)
    # The outcome is the one ERROR line; the driver's own complaints about
    # the same failure would only repeat it.  The caller restores the level:
    # main() may run inside another program (the demo, tests).
    previous = root.level
    root.setLevel(logging.DEBUG if debug else logging.CRITICAL)
    return previous


def load_conf(files: list, prog: str):
    from oslo_config import cfg

    from nova_rt import conf as nova_conf
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise output.UsageError(f'config file {missing[0]} not found')
    conf = nova_conf.CONF
    try:
        conf([], project='nova_rt', prog=prog, default_config_files=files,
             default_config_dirs=[])
    except cfg.Error as exc:
        raise output.UsageError(' '.join(str(exc).split())) from None
    return conf


def no_config_notice(prog: str, looked: list, transport_url: str | None,
                     conf, options: str = '--') -> str:
    """The one line said when no config file was found."""
    import oslo_messaging as messaging

    from nova_rt import log as nova_log
    # parse() also registers control_exchange, which only a transport would.
    parsed = messaging.TransportURL.parse(conf, transport_url)
    if transport_url:
        url = (f'{nova_log.mask_secrets(transport_url)} ({options}transport-url '
               f'or ${TRANSPORT_URL_ENV})')
    elif parsed.hosts:      # no file: only oslo.config's environment source
        url = f'{nova_log.mask_secrets(conf.transport_url)} (the environment)'
    else:
        url = (f'{nova_log.mask_secrets(IMPLICIT_TRANSPORT_URL)} '
               "(oslo.messaging's default)")
    return (f'{prog}: no config file found (looked for {options}config-file, '
            f'{", ".join(looked)}); using transport_url {url} and '
            f'control_exchange {conf.control_exchange}')


def make_clients(prog: str, given_files, transport_url: str | None,
                 timeout: float, stderr=None, options: str = '--'):
    """Load the config and return the project's RPC ``Clients``;
    ``options`` prefixes the option names said (``--os-rt-`` under osc)."""
    from nova_rt.cli import clients as clients_mod
    files, looked = config_files(given_files)
    conf = load_conf(files, prog)
    if not files:
        print(no_config_notice(prog, looked, transport_url, conf, options),
              file=stderr or sys.stderr)
    return clients_mod.Clients(conf, transport_url, timeout)
