"""[DEFAULT] options of both services.

``transport_url`` and ``control_exchange`` are oslo.messaging's own options
(``transport_url`` is registered there with ``secret=True``); they are listed in
the sample config through the ``oslo.messaging`` namespace, not re-registered here.
"""

import socket

from oslo_config import cfg

#: Placement's largest amount (its integer columns): a reserved amount
#: above it could never be reported.
MAX_AMOUNT = 2 ** 31 - 1

service_opts = [
    cfg.HostDomainOpt(
        'host', default=socket.gethostname(),
        sample_default='<current_hostname>',
        help='Name of this host: the compute daemon\'s RPC server name and '
             'its node (resource provider) name. Must be unique in the cloud '
             'and stable: changing it makes the daemon a new node.'),
    cfg.StrOpt(
        'state_path', default='/var/lib/nova_rt',
        help='Directory where the compute daemon keeps its own state (the '
             'claim store, the provider uuid).'),
    cfg.StrOpt(
        'concurrency_backend', default='threading',
        choices=[('threading', 'Native threads (the default, as in Nova 34)'),
                 ('eventlet', 'Green threads; libvirt calls stay in native '
                              'threads')],
        help='oslo.service backend, chosen at start before oslo.service is '
             'imported.'),
    cfg.IntOpt(
        'update_resources_interval', default=60, min=1, max=86400,
        mutable=True,
        help='Seconds between periodic audits of the host. The audit also '
             'runs early when libvirt or udev report a change.'),
    cfg.IntOpt(
        'heartbeat_interval', default=10, min=1, max=3600,
        help='Seconds between liveness casts to placement.'),
    cfg.StrOpt(
        'instances_path', default='$state_path/instances',
        help='Where instance disks live; DISK_GB is this filesystem\'s size '
             'unless [libvirt] disk_pool is set.'),
]

resource_opts = [
    cfg.IntOpt(
        'reserved_host_memory_mb', default=512, min=0, max=MAX_AMOUNT, mutable=True,
        help='Memory (MiB) kept for the host; counted as used.'),
    cfg.IntOpt(
        'reserved_host_disk_mb', default=0, min=0, max=MAX_AMOUNT, mutable=True,
        help='Disk (MiB) kept for the host; counted as used, rounded up to '
             'whole GiB.'),
    cfg.IntOpt(
        'reserved_host_cpus', default=0, min=0, max=MAX_AMOUNT, mutable=True,
        help='Host CPUs kept for the host; counted as used vCPUs.'),
]

_RATIO_HELP = ('Virtual %s per physical on this node. Unset: a new provider '
               'gets initial_%s_allocation_ratio, an existing one keeps the '
               'ratio placement has.')
allocation_ratio_opts = [
    cfg.FloatOpt('cpu_allocation_ratio', min=0.0001, mutable=True,
                 help=_RATIO_HELP % ('CPUs', 'cpu')),
    cfg.FloatOpt('ram_allocation_ratio', min=0.0001, mutable=True,
                 help=_RATIO_HELP % ('memory', 'ram')),
    cfg.FloatOpt('disk_allocation_ratio', min=0.0001, mutable=True,
                 help=_RATIO_HELP % ('disk', 'disk')),
    cfg.FloatOpt('initial_cpu_allocation_ratio', default=4.0, min=0.0001,
                 help='VCPU allocation ratio of a new provider when '
                      'cpu_allocation_ratio is unset.'),
    cfg.FloatOpt('initial_ram_allocation_ratio', default=1.0, min=0.0001,
                 help='MEMORY_MB allocation ratio of a new provider when '
                      'ram_allocation_ratio is unset.'),
    cfg.FloatOpt('initial_disk_allocation_ratio', default=1.0, min=0.0001,
                 help='DISK_GB allocation ratio of a new provider when '
                      'disk_allocation_ratio is unset.'),
]

ALL_OPTS = service_opts + resource_opts + allocation_ratio_opts


def register_opts(conf):
    conf.register_opts(ALL_OPTS)


def list_opts():
    return {'DEFAULT': ALL_OPTS}
