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
]


def register_opts(conf):
    conf.register_group(compute_group)
    conf.register_opts(compute_opts, group=compute_group)


def list_opts():
    return {compute_group: compute_opts}
