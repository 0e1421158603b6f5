"""The REST API as a WSGI application, for a WSGI server.

- ``nova-rt-placement-api --port P -- --config-file F``: pbr's WSGI script
  (``wsgi_scripts`` in setup.cfg), which calls ``init_application()`` with
  the arguments after ``--``; a single-threaded development server.
- uWSGI: ``--module nova_rt.placement.rest.wsgi:application`` (or
  ``--wsgi-file`` on the installed script); mod_wsgi: ``WSGIScriptAlias``
  on the installed script.  The configuration files are then those of
  ``NOVA_RT_CONFIG_FILES`` (comma separated), else
  ``/etc/nova_rt/nova_rt.conf``.

The database must be at the newest schema (``nova-rt-manage db sync``),
unless ``[placement_database] sync_on_startup`` is set.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings

from oslo_config import cfg

from nova_rt import conf as nova_conf
from nova_rt import exception
from nova_rt import gcutil
from nova_rt import log as nova_log
from nova_rt import version

# oslo.service (through nova_rt.log) probes for eventlet; its deprecation
# warning would be the first line an operator sees, about nothing we use.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

LOG = logging.getLogger(__name__)
SCRIPT = 'nova-rt-placement-api'
DEFAULT_CONFIG_FILES = ['/etc/nova_rt/nova_rt.conf']
ENV_CONFIG_FILES = 'NOVA_RT_CONFIG_FILES'


def config_files() -> list[str]:
    given = os.environ.get(ENV_CONFIG_FILES, '')
    files = [f.strip() for f in given.split(',') if f.strip()]
    if files:
        return files
    return [f for f in DEFAULT_CONFIG_FILES if os.path.exists(f)]


def load_config(argv: list[str]) -> cfg.ConfigOpts:
    """A ConfigOpts of its own (not the global one), parsed and checked."""
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    nova_log.register_options(conf)
    conf(argv, project='nova_rt', prog=SCRIPT,
         version=version.version_string(),
         default_config_files=config_files())
    nova_conf.validate(conf, service='placement')
    return conf


def deploy(conf: cfg.ConfigOpts, engine=None):
    """The application behind its authentication, on ``engine`` (default:
    the engine of ``[placement_database] connection``)."""
    from nova_rt.placement import db
    from nova_rt.placement.rest import app
    from nova_rt.placement.rest import auth
    from nova_rt.placement.rest import policy
    if engine is None:
        url = conf.placement_database.connection
        if conf.placement_database.sync_on_startup:
            db.sync(url)
        elif not db.is_at_head(url):
            raise exception.ConfigError(
                reason=f'the placement database {db.safe_url(url)} is not '
                       'at the newest schema; run "nova-rt-manage db sync"')
        engine = db.get_engine(url)
    application = app.PlacementApp(
        engine, app.Options(conf.placement.heartbeat_timeout,
                            conf.placement.candidate_order),
        policy.Policy(conf))
    return auth.wrap(application, conf)


def _script_argv() -> list[str]:
    # pbr's script hands over what follows ``--`` as sys.argv[1:]; under
    # uWSGI or mod_wsgi sys.argv is the server's, not ours.
    if os.path.basename(sys.argv[0] or '').startswith(SCRIPT):
        return sys.argv[1:]
    return []


def init_application(argv: list[str] | None = None):
    """The application (entry point of ``nova-rt-placement-api``)."""
    conf = load_config(_script_argv() if argv is None else argv)
    nova_log.setup(conf, 'nova_rt')
    application = deploy(conf)
    # As nova-rt-placement's RPC service: collections then skip what the
    # start-up made (measured, the nested allocation candidates of 1,000
    # trees took 134 ms of CPU with it walked each time, 65 frozen).
    LOG.debug('%d start-up objects exempted from garbage collection',
              gcutil.freeze_startup_objects())
    return application


_application = None
_lock = threading.Lock()


def __getattr__(name: str):
    # ``application`` is made on first use, so that importing this module
    # (pbr's script does, for init_application) reads no configuration.
    global _application
    if name != 'application':
        raise AttributeError(name)
    with _lock:
        if _application is None:
            _application = init_application()
    return _application
