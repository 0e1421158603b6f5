"""``nova-rt-compute --config-file FILE``: the per-host compute daemon.

The concurrency backend must be chosen before oslo.service, oslo.messaging or
anything that imports them is loaded (importing oslo.messaging first would
select eventlet), and eventlet must monkey-patch before any other import.  So
this module reads ``[DEFAULT] concurrency_backend`` with the standard
library's configparser first, then sets the backend up, and only then imports
the service.
"""

import configparser
import glob
import os
import sys
import warnings

PROG = 'nova-rt-compute'
DEFAULT_CONFIG_FILES = ('/etc/nova_rt/nova-rt.conf',)


def _config_files(argv):
    """The files oslo.config will read, in its order, from the arguments."""
    files, dirs = [], []
    args = list(argv)
    for index, arg in enumerate(args):
        for flag, target in (('--config-file', files), ('--config-dir', dirs)):
            if arg == flag and index + 1 < len(args):
                target.append(args[index + 1])
            elif arg.startswith(flag + '='):
                target.append(arg.split('=', 1)[1])
    if not files and not dirs:
        files = [f for f in DEFAULT_CONFIG_FILES if os.path.exists(f)]
    for directory in dirs:
        files.extend(sorted(glob.glob(os.path.join(directory, '*.conf'))))
    return files


def early_backend(argv) -> str:
    """``concurrency_backend`` as the config files say, 'threading' if unsure.

    Only a hint for choosing the backend: oslo.config parses the files again
    and ``validate`` refuses a bad value with a proper message.
    """
    backend = 'threading'
    for path in _config_files(argv):
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        value = parser.defaults().get('concurrency_backend')
        if value:
            backend = value.strip()
    return backend


def _init_backend(name: str) -> None:
    # futurist probes for eventlet even under threading; its deprecation
    # warning would be the first line an operator sees, about nothing we use.
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    if name == 'eventlet':
        import eventlet
        eventlet.monkey_patch()
    from oslo_service import backend
    backend.init_backend(backend.BackendType.EVENTLET if name == 'eventlet'
                         else backend.BackendType.THREADING)


def _one_line(exc) -> str:
    return ' '.join(str(exc).split())


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _init_backend(early_backend(argv))

    from oslo_config import cfg
    from oslo_service import opts as service_opts

    from nova_rt import conf as nova_conf
    from nova_rt import daemon
    from nova_rt import exception
    from nova_rt import log
    from nova_rt import version

    conf = nova_conf.CONF
    log.register_options(conf)
    service_opts.register_service_opts(conf)
    daemon.register_report_opts(conf)
    try:
        conf(argv, project='nova_rt', prog=PROG, version=version.version_string(),
             default_config_files=[f for f in DEFAULT_CONFIG_FILES
                                   if os.path.exists(f)])
        nova_conf.validate(conf, service='compute')
    except (cfg.Error, exception.ConfigError, ValueError) as exc:
        sys.stderr.write(f'{PROG}: {_one_line(exc)}\n')
        return 2
    if conf.concurrency_backend != early_backend(argv):
        sys.stderr.write(f'{PROG}: [DEFAULT] concurrency_backend: could not be '
                         'read before start; set it in a --config-file\n')
        return 2
    try:
        nova_conf.check_transport_url(conf)
    except exception.ConfigError as exc:
        sys.stderr.write(f'{PROG}: {_one_line(exc)}\n')
        return 2
    log.setup(conf, 'nova_rt')
    daemon.enable_reports(conf, PROG)

    import logging

    from nova_rt.compute import service
    try:
        return service.run(conf, service.ComputeService(conf))
    except exception.NovaRtException as exc:
        sys.stderr.write(f'{PROG}: {_one_line(exc)}\n')
        return 1
    except Exception:
        # e.g. a local store newer than this code: say so and stop.
        logging.getLogger(__name__).exception('%s could not start', PROG)
        return 1


if __name__ == '__main__':
    sys.exit(main())
