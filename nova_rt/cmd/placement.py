"""``nova-rt-placement --config-file FILE``: the central placement service.

Order matters: parse and validate the configuration (oslo.config only), pick
the oslo.service backend from ``[DEFAULT] concurrency_backend``, and only then
import oslo.service and oslo.messaging (importing oslo.messaging first would
select eventlet).
"""

from __future__ import annotations

import sys
import warnings

from nova_rt import conf as nova_conf
from nova_rt import exception
from nova_rt import log as nova_log
from nova_rt import version


def _parse(argv, prog: str):
    from nova_rt import daemon
    conf = nova_conf.CONF
    nova_log.register_options(conf)
    daemon.register_report_opts(conf)
    conf(argv, project='nova_rt', prog=prog, version=version.version_string())
    nova_conf.validate(conf, service='placement')
    return conf


def init_backend(conf) -> None:
    # futurist probes for eventlet even under threading; its deprecation
    # warning would be the first line an operator sees, about nothing we use.
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    if conf.concurrency_backend == 'eventlet':
        import eventlet
        eventlet.monkey_patch()
    from oslo_service import backend
    kind = (backend.BackendType.EVENTLET
            if conf.concurrency_backend == 'eventlet'
            else backend.BackendType.THREADING)
    try:
        backend.init_backend(kind)
    except Exception:
        # Already chosen in this process (tests launching in-process).
        pass


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        conf = _parse(argv, 'nova-rt-placement')
    except exception.ConfigError as error:
        print(f'nova-rt-placement: {error}', file=sys.stderr)
        return 1
    init_backend(conf)
    from oslo_service import opts as service_opts
    service_opts.register_service_opts(conf)
    try:
        nova_conf.check_transport_url(conf)
    except exception.ConfigError as error:
        print(f'nova-rt-placement: {error}', file=sys.stderr)
        return 1
    nova_log.setup(conf, 'nova_rt')

    from nova_rt import daemon
    from nova_rt.placement import db
    from nova_rt.placement import service

    url = conf.placement_database.connection
    try:
        if conf.placement_database.sync_on_startup:
            db.sync(url)
        elif not db.is_at_head(url):
            print('nova-rt-placement: the placement database '
                  f'{db.safe_url(url)} is not at the newest schema; run '
                  '"nova-rt-manage db sync"', file=sys.stderr)
            return 1
    except exception.InvalidInput as error:
        print(f'nova-rt-placement: {error}', file=sys.stderr)
        return 1
    except Exception as error:
        print(f'nova-rt-placement: cannot use the placement database '
              f'{db.safe_url(url)}: {type(error).__name__}', file=sys.stderr)
        return 1
    daemon.enable_reports(conf, 'nova-rt-placement')
    try:
        return daemon.run(conf, service.PlacementService(conf),
                          'nova-rt-placement')
    except Exception as error:
        print('nova-rt-placement: could not start: '
              + nova_log.mask_secrets(f'{type(error).__name__}: {error}'),
              file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
