"""``nova-rt-status upgrade check``: is this host ready to run nova_rt?

Configuration valid, messages signed (``[identity] enforce`` on, private
keys readable by their owner only), message broker reachable, placement
database at the schema head, claim store not newer than this release, libvirt
reachable with the configured disk pool, reserved amounts within the host.

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

from oslo_config import cfg
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
        for opt in opts:
            if group is None:
                if opt.dest not in conf:
                    conf.register_opt(opt)
            elif group not in conf or opt.dest not in conf[group]:
                conf.register_opt(opt, group=group)


#: Resource class: its [DEFAULT] option, the option's unit, and how many of
#: that unit one unit of the class is (DISK_GB is reported in GB).
_RESERVED_OPTIONS = {
    'VCPU': ('reserved_host_cpus', 'CPUs', 1),
    'MEMORY_MB': ('reserved_host_memory_mb', 'MB', 1),
    'DISK_GB': ('reserved_host_disk_mb', 'MB', 1024),
}


def _reading_config(check):
    """``check``, with a bad value of an option it reads as a FAILURE line
    rather than a traceback: 'Configuration' names it, the others cannot run
    without it."""
    def guarded(self) -> Result:
        try:
            return check(self)
        except cfg.Error as exc:
            return Result(Code.FAILURE, 'cannot check with an invalid '
                          f'configuration: {" ".join(str(exc).split())}')
    guarded.__name__ = check.__name__
    return guarded


class Checks(upgradecheck.UpgradeCommands):
    """Each check reads the configuration only; none changes anything."""

    def __init__(self, conf):
        super().__init__()
        self.conf = conf
        self._host = None

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

    def _check_broker(self) -> Result:
        from nova_rt.cli import clients
        try:
            clients.probe_broker(self.conf, self.conf.transport_url, timeout=5)
        except clients.CliError as exc:   # the message masks the password
            return Result(Code.FAILURE, str(exc))
        return Result(Code.SUCCESS)

    def _placement_host(self) -> bool:
        """Whether this host runs nova-rt-placement, as its configuration says.

        Compute hosts leave ``[placement_database]`` alone, so an option of
        it set anywhere (a file, the command line) marks a placement host;
        install.rst asks placement hosts to set ``connection`` even when they
        keep the default SQLite database.
        """
        from oslo_config import cfg
        unset = (cfg.Locations.opt_default, cfg.Locations.set_default)
        return any(self.conf.get_location(name, 'placement_database').location
                   not in unset for name in ('connection', 'sync_on_startup'))

    def _check_placement_database(self) -> Result:
        from nova_rt.placement import db
        group = self.conf.placement_database
        url = group.connection
        if url.startswith('sqlite:///') and not os.path.exists(url[len('sqlite:///'):]):
            # Connecting would create the file: this check changes nothing.
            return self._no_sqlite_database(url[len('sqlite:///'):])
        try:
            current, head = db.current(url), db.head()
        except Exception as exc:
            return Result(Code.FAILURE,
                          f'[placement_database] connection {db.safe_url(url)}: '
                          f'{" ".join(str(exc).split())[:300]}')
        if current != head and group.sync_on_startup:
            return Result(Code.SUCCESS,
                          f'The placement database is at {current or "no schema"}; '
                          'nova-rt-placement upgrades it to '
                          f'{head} when it starts ([placement_database] '
                          'sync_on_startup).')
        if current != head:
            return Result(Code.FAILURE,
                          f'The placement database is at {current or "no schema"}, '
                          f'this release needs {head}: run {self._sync_command()}.')
        if (self.conf.placement_database.vacuum_interval == 0
                and not db.autovacuum_on(url)):
            return Result(Code.WARNING,
                          'PostgreSQL runs with autovacuum off and '
                          '[placement_database] vacuum_interval is 0: nothing '
                          'clears the rows that every report leaves dead, and '
                          'reports slow down as they pile up.')
        return Result(Code.SUCCESS)

    def _sync_command(self) -> str:
        files = ''.join(f' --config-file {f}' for f in self.conf.config_file)
        return f'nova-rt-manage{files} db sync'

    def _no_sqlite_database(self, path: str) -> Result:
        if not self._placement_host():
            return Result(Code.SUCCESS,
                          f'No placement database here ({path} does not exist and '
                          '[placement_database] is not configured): a '
                          'compute-only host.')
        if self.conf.placement_database.sync_on_startup:
            return Result(Code.SUCCESS,
                          f'{path} does not exist yet; nova-rt-placement creates it '
                          'when it starts ([placement_database] sync_on_startup).')
        return Result(Code.FAILURE,
                      f'[placement_database] connection: {path} does not exist, '
                      'and nova-rt-placement will not start without its schema: '
                      f'run {self._sync_command()}.')

    def _check_claim_store(self) -> Result:
        from nova_rt.compute import store
        path = os.path.join(self.conf.state_path, 'compute.sqlite')
        if not os.path.exists(path):
            return Result(Code.SUCCESS, f'{path} does not exist yet.')
        import sqlite3
        try:
            with sqlite3.connect(f'file:{path}?mode=ro', uri=True) as db:
                version = db.execute('PRAGMA user_version').fetchone()[0]
        except sqlite3.Error as exc:
            return Result(Code.FAILURE, f'{path}: {exc}')
        if version > store.SCHEMA_VERSION:
            return Result(Code.FAILURE,
                          f'{path} has schema {version}, newer than this release '
                          f'({store.SCHEMA_VERSION}): nova-rt-compute will refuse it.')
        return Result(Code.SUCCESS)

    def _host_info(self):
        """The host as libvirt shows it, or the error it gave: read once for
        every check, since an unreachable libvirt may take seconds to say so."""
        if self._host is None:
            from nova_rt.virt import host
            try:
                self._host = host.LibvirtHost(
                    self.conf.libvirt.connection_uri, self.conf.instances_path,
                    self.conf.libvirt.disk_pool).get_host_info()
            except (exception.HypervisorUnavailable,
                    exception.ConfigError) as exc:
                self._host = exc
        if isinstance(self._host, Exception):
            raise self._host
        return self._host

    def _check_libvirt(self) -> Result:
        from nova_rt.virt import host
        uri = self.conf.libvirt.connection_uri
        try:
            info = self._host_info()
        except exception.HypervisorUnavailable as exc:
            return Result(Code.FAILURE,
                          f'[libvirt] connection_uri {host.mask_uri(uri)}: {exc} '
                          '(nova-rt-compute serves claims from its last known '
                          'inventory, but a first start needs libvirt).')
        except exception.ConfigError as exc:
            return Result(Code.FAILURE, str(exc))
        return Result(Code.SUCCESS, f'{info.hypervisor_type} on {info.hostname}, '
                                    f'{len(info.online_cpus)} CPUs')

    def _check_reserved(self) -> Result:
        # The daemon starts with these (free figures go negative, claims are
        # refused, placement is sent reserved = total), so only a warning.
        from nova_rt.compute import node
        try:
            state = node.NodeState.of(self._host_info(),
                                      node.TrackerConfig.from_conf(self.conf))
        except exception.HypervisorUnavailable:
            return Result(Code.WARNING, 'Not checked: libvirt is unreachable '
                                        '(see the Libvirt check).')
        except exception.ConfigError as exc:
            return Result(Code.FAILURE, str(exc))
        over = []
        for rc, (option, unit, per_unit) in _RESERVED_OPTIONS.items():
            inventory = state.inventory.get(rc)
            value = self.conf[option]
            if inventory is not None and inventory.reserved > inventory.total:
                over.append(f'{option} = {value} is more than the host\'s '
                            f'{rc} total of {inventory.total * per_unit} {unit}')
        if over:
            return Result(Code.WARNING,
                          f'{"; ".join(over)}: nova-rt-compute starts, but no '
                          'claim of those classes fits, and placement is sent '
                          'reserved = total.')
        return Result(Code.SUCCESS)

    def _check_identity(self) -> Result:
        from nova_rt.identity import config as identity_config
        from nova_rt.identity import keys
        group = self.conf.identity
        problems = []
        for service in ('compute', 'placement'):
            path = identity_config.key_file(self.conf, service)
            if os.path.exists(path) and keys.readable_by_others(path):
                mode = stat.S_IMODE(os.stat(path).st_mode)
                problems.append(f'{path} has mode {mode:04o}: a private key '
                                'must be readable by its owner only '
                                f'(chmod 0600 {path}).')
        if not group.enforce:
            problems.append('[identity] enforce is off: messages are not '
                            'required to be signed, so any holder of the '
                            "broker's credentials can speak for any host "
                            '(doc/source/security.rst says how to turn it on).')
        if problems:
            return Result(Code.WARNING, ' '.join(problems))
        return Result(Code.SUCCESS)

    _upgrade_checks = tuple((name, _reading_config(check)) for name, check in (
        ('Configuration', _check_config),
        ('Message signatures', _check_identity),
        ('Transport URL', _check_transport_url),
        ('Message broker', _check_broker),
        ('Placement database', _check_placement_database),
        ('State directory', _check_state_path),
        ('Claim store', _check_claim_store),
        ('Libvirt', _check_libvirt),
        ('Reserved amounts', _check_reserved),
    ))


def main(argv=None, conf=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # oslo.upgradecheck's main() gives oslo.config no version to print.
    if '--version' in argv:
        from nova_rt import version
        print(version.version_string())
        return 0
    conf = nova_conf.CONF if conf is None else conf
    register_messaging_opts(conf)
    return upgradecheck.main(conf, project='nova_rt', upgrade_command=Checks(conf),
                             argv=argv)


if __name__ == '__main__':
    sys.exit(main())
