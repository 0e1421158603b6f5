"""``nova-rt-status upgrade check``: is this host ready to run nova_rt?

Run before starting upgraded services, as Nova's ``nova-status upgrade check``.
Exit code 0: all checks passed; 1: warnings to read; 2: a failure that will
stop a service.  Example::

    $ nova-rt-status --config-file /etc/nova_rt/nova-rt.conf upgrade check
"""

from __future__ import annotations

import os
import stat
import sys
import warnings

from oslo_upgradecheck import upgradecheck

from nova_rt import conf as nova_conf
from nova_rt import exception

Code = upgradecheck.Code
Result = upgradecheck.Result


def register_messaging_opts(conf) -> None:
    """oslo.messaging's [DEFAULT] options (transport_url), without connecting."""
    # Importing oslo.messaging imports eventlet (through oslo.service and
    # futurist) even though nothing here runs it; its deprecation warning is
    # noise in an operator's report.
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
        from oslo_messaging import opts as messaging_opts
    for group, opts in messaging_opts.list_opts():
        if group is None:
            for opt in opts:
                if opt.dest not in conf:
                    conf.register_opt(opt)


class Checks(upgradecheck.UpgradeCommands):
    """Each check reads the configuration only; none changes anything."""

    def __init__(self, conf):
        super().__init__()
        self.conf = conf

    def _check_config(self) -> Result:
        try:
            nova_conf.validate(self.conf, service='compute')
        except exception.ConfigError as exc:
            return Result(Code.FAILURE, str(exc))
        return Result(Code.SUCCESS)

    def _check_transport_url(self) -> Result:
        # oslo.messaging's default, 'rabbit://', means guest on localhost.
        if self.conf.transport_url in (None, '', 'rabbit://'):
            return Result(Code.WARNING,
                          '[DEFAULT] transport_url is unset: both services would '
                          'use oslo.messaging\'s default, a RabbitMQ on localhost '
                          'as guest.')
        return Result(Code.SUCCESS)

    def _check_state_path(self) -> Result:
        path = self.conf.state_path
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            return Result(Code.SUCCESS,
                          f'{path} does not exist yet; the compute service creates it.')
        except OSError as exc:
            return Result(Code.FAILURE, f'[DEFAULT] state_path {path}: {exc.strerror}')
        if mode & 0o077:
            return Result(Code.WARNING,
                          f'[DEFAULT] state_path {path} has mode {mode:04o}: the claim '
                          'store in it should be readable by the service user only '
                          '(chmod 0700, as StateDirectoryMode in the systemd unit).')
        return Result(Code.SUCCESS)

    _upgrade_checks = (
        ('Configuration', _check_config),
        ('Transport URL', _check_transport_url),
        ('State directory', _check_state_path),
    )


def main(argv=None, conf=None) -> int:
    conf = nova_conf.CONF if conf is None else conf
    register_messaging_opts(conf)
    return upgradecheck.main(conf, project='nova_rt', upgrade_command=Checks(conf),
                             argv=sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
