"""[libvirt] options."""

from oslo_config import cfg

libvirt_group = cfg.OptGroup('libvirt', title='Libvirt connection options')

libvirt_opts = [
    cfg.StrOpt(
        'connection_uri', default='qemu:///system',
        help='Libvirt URI of this host\'s hypervisor. test:///default and '
             'test:///path/host.xml are libvirt\'s test driver.'),
    cfg.StrOpt(
        'disk_pool',
        help='Name of a libvirt storage pool whose capacity gives DISK_GB. '
             'Unset: the filesystem of [DEFAULT] instances_path.'),
    cfg.IntOpt(
        'reconnect_max_interval', default=60, min=1, max=3600,
        help='Upper bound, in seconds, of the exponential back-off between '
             'reconnection attempts to libvirt.'),
]


def register_opts(conf):
    conf.register_group(libvirt_group)
    conf.register_opts(libvirt_opts, group=libvirt_group)


def list_opts():
    return {libvirt_group: libvirt_opts}
