"""[compute] options."""

from oslo_config import cfg

compute_group = cfg.OptGroup('compute', title='Compute node options')

compute_opts = [
    cfg.StrOpt(
        'cpu_shared_set',
        help='Host CPUs for shared (unpinned) guest vCPUs, as a range string '
             'like "0-3,^2,8". Unset: every online CPU not in '
             'cpu_dedicated_set. These CPUs make the VCPU inventory.'),
    cfg.StrOpt(
        'cpu_dedicated_set',
        help='Host CPUs for pinned guest CPUs (hw:cpu_policy=dedicated), as '
             'a range string. These CPUs make the PCPU inventory and must not '
             'overlap cpu_shared_set.'),
    cfg.IntOpt(
        'resource_provider_association_refresh', default=300, min=0,
        max=2 ** 31 - 1,
        mutable=True,
        help='Seconds between full resyncs of this node\'s provider tree and '
             'allocations with placement. 0 disables the periodic full '
             'resync (a restart still does one).'),
    cfg.IntOpt(
        'audit_full_reread_interval', default=600, min=0, max=86400,
        help='Seconds within which the audit reads every domain\'s XML from '
             'libvirt again. Between those reads an audit reads only the '
             'domains that libvirt events (lifecycle, device, tunable) or its '
             'domain listing (ids and names) say may have changed, plus a '
             'share of the others in proportion to the time since the last '
             'audit, oldest first. A change libvirt sends no event for (a '
             'shut-off domain\'s vCPUs or memory, vCPU pinning) is therefore '
             'seen at the latest at the first audit after this many seconds, '
             'that is within this plus update_resources_interval. A domain '
             'that stops, starts or disappears is seen at the next audit '
             'whatever this is. The PCI bus is enumerated again through udev '
             'at the same bound, and at the first audit after any uevent. 0 '
             'reads every domain and the whole PCI bus at every audit.'),
]


def register_opts(conf):
    conf.register_group(compute_group)
    conf.register_opts(compute_opts, group=compute_group)


def list_opts():
    return {compute_group: compute_opts}
