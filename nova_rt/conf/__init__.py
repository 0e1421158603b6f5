"""Configuration of nova_rt: one module per option group.

``CONF`` is oslo.config's global object (oslo.messaging registers its tracing
options only there).  The pure core never reads it: services read options here
and hand plain values to the core.
"""

import re

from oslo_config import cfg

from nova_rt.conf import compute
from nova_rt.conf import default
from nova_rt.conf import libvirt
from nova_rt.conf import pci
from nova_rt.conf import placement
from nova_rt import exception

CONF = cfg.CONF

_MODULES = (default, compute, libvirt, pci, placement)


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


def validate(conf=CONF, service='compute'):
    """Check the whole configuration; raise ConfigError with one line.

    Called by every service right after parsing, before anything else starts,
    so that a bad value never leaves a half-configured service running.
    """
    _check_every_value(conf)
    shared, dedicated = cpu_sets(conf)
    if shared and dedicated and shared & dedicated:
        from nova_rt.hardware import cpuset
        raise exception.ConfigError(
            reason="[compute] cpu_shared_set and cpu_dedicated_set overlap "
                   f"on CPUs {cpuset.format_cpu_spec(shared & dedicated)}")
    if service == 'compute':
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
