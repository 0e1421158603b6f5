"""Configuration of nova_rt: one module per option group.

``CONF`` is oslo.config's global object (oslo.messaging registers its tracing
options only there).  The pure core never reads it: services read options here
and hand plain values to the core.
"""

import math
import os
import re

from oslo_config import cfg

from nova_rt.conf import api
from nova_rt.conf import compute
from nova_rt.conf import default
from nova_rt.conf import identity
from nova_rt.conf import libvirt
from nova_rt.conf import metrics
from nova_rt.conf import pci
from nova_rt.conf import placement
from nova_rt.conf import upgrade_levels
from nova_rt import exception

CONF = cfg.CONF

_MODULES = (default, compute, libvirt, pci, placement, identity,
            upgrade_levels, metrics, api)


def register_opts(conf):
    for module in _MODULES:
        module.register_opts(conf)


register_opts(CONF)


def _check_every_value(conf):
    """Read every registered option so that a bad value fails here, at start."""
    for name, opt in list(conf._opts.items()):  # [DEFAULT]
        _read(conf, None, name)
    for group_name in list(conf._groups):
        group = conf._groups[group_name]
        for name in list(group._opts):
            _read(conf, group_name, name)


def _read(conf, group, name):
    label = f"[{group or 'DEFAULT'}] {name}"
    try:
        if group is None:
            getattr(conf, name)
        else:
            getattr(getattr(conf, group), name)
    except (cfg.ConfigFileValueError, ValueError) as exc:
        raise exception.ConfigError(
            reason=f"{label}: {_one_line(exc)}") from None
    except cfg.Error as exc:
        raise exception.ConfigError(
            reason=f"{label}: {_one_line(exc)}") from None


# oslo.config names the file as "from LocationInfo(location=..., detail='/x.conf')";
# an operator needs only the file.
_LOCATION = re.compile(r"from LocationInfo\(.*?detail='(?P<file>[^']*)'\)")


def _one_line(exc):
    return _LOCATION.sub(r'in \g<file>', ' '.join(str(exc).split()))


def cpu_sets(conf):
    """(shared, dedicated) CPU id sets from [compute], None where unset."""
    from nova_rt.hardware import cpu_inventory
    return (cpu_inventory.parse_cpu_set_option(
                cpu_inventory.SHARED_OPT, conf.compute.cpu_shared_set),
            cpu_inventory.parse_cpu_set_option(
                cpu_inventory.DEDICATED_OPT, conf.compute.cpu_dedicated_set))


_RATIOS = ('cpu_allocation_ratio', 'ram_allocation_ratio',
           'disk_allocation_ratio', 'initial_cpu_allocation_ratio',
           'initial_ram_allocation_ratio', 'initial_disk_allocation_ratio')
# libvirt's URI form: driver[+transport]://[host]/path (test:///default,
# qemu:///system, qemu+ssh://host/system).
_LIBVIRT_URI = re.compile(r'^[a-z][a-z0-9]*(\+[a-z0-9]+)?://[^\s]*$')
_DIALECTS = ('sqlite', 'postgresql', 'mysql')


def _check_ratios(conf):
    # oslo.config's min= lets nan and inf through (nan < min is False).
    for name in _RATIOS:
        value = getattr(conf, name)
        if value is not None and not math.isfinite(value):
            raise exception.ConfigError(
                reason=f"[DEFAULT] {name}: {value!r} is not a finite number")


def _check_directory(label, path):
    """The directory exists or can be made (the service makes it)."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise exception.ConfigError(
            reason=f"{label}: cannot create {path!r}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise exception.ConfigError(
            reason=f"{label}: {path!r} is not writable by this user")


def check_transport_url(conf):
    """Refuse a garbled ``transport_url`` with one line naming the option.

    Not part of :func:`validate`: it needs oslo.messaging, whose import picks
    oslo.service's backend, so the services call it once they have chosen
    theirs (``nova_rt.cmd``).
    """
    import oslo_messaging as messaging
    if 'transport_url' not in conf:
        from oslo_messaging import opts as messaging_opts
        for group, opts in messaging_opts.list_opts():
            if group is None or group == 'DEFAULT':
                conf.register_opts(opts)
    if not conf.transport_url:
        return
    try:
        url = messaging.TransportURL.parse(conf, conf.transport_url)
        bad_port = any(h.port is not None and not 0 < h.port < 65536
                       for h in url.hosts)
    except (messaging.InvalidTransportURL, ValueError):
        bad_port = None
    if bad_port is not False:
        # The URL holds the broker's password: name the option, not the value.
        raise exception.ConfigError(
            reason="[DEFAULT] transport_url: not a transport URL like "
                   "rabbit://user:password@host:5672/vhost")


def _check_database(conf):
    from sqlalchemy.engine import url as sa_url
    try:
        url = sa_url.make_url(conf.placement_database.connection)
    except Exception:
        raise exception.ConfigError(
            reason="[placement_database] connection: not an SQLAlchemy URL "
                   "like postgresql+psycopg://user:password@host/db or "
                   "mysql+pymysql://user:password@host/db") from None
    if url.get_backend_name() not in _DIALECTS:
        raise exception.ConfigError(
            reason=f"[placement_database] connection: database "
                   f"{url.get_backend_name()!r} is not one of "
                   f"{', '.join(_DIALECTS)}")


def validate(conf=CONF, service='compute'):
    """Check the whole configuration; raise ConfigError with one line.

    Called by every service right after parsing, before anything else starts,
    so that a bad value never leaves a half-configured service running.
    """
    _check_every_value(conf)
    _check_ratios(conf)
    shared, dedicated = cpu_sets(conf)
    if shared and dedicated and shared & dedicated:
        from nova_rt.hardware import cpuset
        raise exception.ConfigError(
            reason="[compute] cpu_shared_set and cpu_dedicated_set overlap "
                   f"on CPUs {cpuset.format_cpu_spec(shared & dedicated)}")
    from nova_rt.identity import config as identity_config
    identity_config.check(conf, service)
    upgrade_levels.check(conf)
    if service == 'placement':
        _check_database(conf)
    if service == 'compute':
        if not _LIBVIRT_URI.match(conf.libvirt.connection_uri or ''):
            from nova_rt.virt import host as virt_host
            raise exception.ConfigError(
                reason=f"[libvirt] connection_uri: "
                       f"{virt_host.mask_uri(conf.libvirt.connection_uri)!r} "
                       f"is not a libvirt URI like qemu:///system")
        _check_directory('[DEFAULT] state_path', conf.state_path)
        _check_directory('[DEFAULT] instances_path', conf.instances_path)
        from nova_rt.pci import spec as pci_spec
        try:
            pci_spec.parse_device_specs(conf.pci.device_spec)
        except exception.InvalidInput as exc:
            raise exception.ConfigError(
                reason=f"[pci] device_spec: {exc.kwargs.get('reason', exc)}"
            ) from None
        try:
            pci_spec.parse_aliases(conf.pci.alias)
        except exception.InvalidInput as exc:
            raise exception.ConfigError(
                reason=f"[pci] alias: {exc.kwargs.get('reason', exc)}"
            ) from None
