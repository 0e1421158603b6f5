"""Table views of the ``nova-rt`` CLI's results. Pure: plain data in, text out.

Each function takes the data a command returns (what ``-f json`` prints) and
makes what a person reads: usage as bars where the eye is faster than the
figures, everything else as openstackclient-style tables.
"""

from __future__ import annotations

from nova_rt.cli import output
from nova_rt.hardware import cpuset

#: Columns of ``host list`` and ``provider show`` in this order; other
#: classes follow alphabetically.
MAIN_CLASSES = ('VCPU', 'PCPU', 'MEMORY_MB', 'DISK_GB')


def _classes(names) -> list:
    names = set(names)
    return [rc for rc in MAIN_CLASSES if rc in names] + sorted(
        names - set(MAIN_CLASSES))


def _cpus(cpus) -> str:
    return cpuset.format_cpu_spec(cpus or []) or '-'


def _age(seconds) -> str:
    return '-' if seconds is None else f'{seconds:.0f}s ago'


# -- hosts -------------------------------------------------------------------

def host_list(hosts: list) -> str:
    """``host list``: one row per compute node, placement's usage as bars."""
    if not hosts:
        return 'No compute hosts have reported to placement.'
    classes = _classes(rc for h in hosts for rc in h.get('capacity', {}))
    rows = []
    for host in hosts:
        row = {'host': host['host'], 'alive': host['alive'],
               'heartbeat': _age(host.get('heartbeat_age_s'))}
        for rc in classes:
            if rc in host.get('capacity', {}):
                row[rc] = output.usage_bar(host['usages'].get(rc, 0),
                                           host['capacity'][rc])
        rows.append(row)
    return output.table(rows, [('host', 'Host'), ('alive', 'Alive'),
                               ('heartbeat', 'Heartbeat')]
                        + [(rc, rc) for rc in classes])


def _ratio(state: dict, rc: str) -> str:
    ratio = state.get('allocation_ratios', {}).get(rc)
    return '' if ratio in (None, 1.0) else f'  (x{ratio:g} allocation ratio)'


def _host_fields(state: dict) -> list:
    hv = state.get('hypervisor') or {}
    pairs = [('host', state['host']), ('node', state.get('node')),
             ('hypervisor', f"{hv.get('uri', '-')} "
                            f"({'connected' if hv.get('connected') else 'NOT connected'})"),
             ('VCPU', output.usage_bar(state['vcpus_used'], state['vcpus'])
              + _ratio(state, 'VCPU'))]
    if state.get('pcpus'):
        pairs.append(('PCPU', output.usage_bar(state['pcpus_used'], state['pcpus'])))
    pairs += [
        ('MEMORY_MB', output.usage_bar(state['memory_mb_used'], state['memory_mb'])
         + _ratio(state, 'MEMORY_MB')),
        ('DISK_GB', output.usage_bar(state['local_gb_used'], state['local_gb'])
         + _ratio(state, 'DISK_GB')),
        ('running_vms', state.get('running_vms')),
        ('current_workload', state.get('current_workload')),
        ('instances', state.get('instances') or []),
        ('migrations', state.get('migrations') or []),
    ]
    audit = state.get('last_audit') or {}
    if audit:
        pairs.append(('last_audit', f"{audit.get('at')} "
                                    f"({audit.get('duration_s', 0):.3f}s)"))
    return pairs


def _numa_table(cells: list) -> str:
    rows = []
    for c in cells:
        pages = [f"{p['size_kb']}K: {p['used']}/{p['total']}"
                 for p in c.get('mempages', [])]
        rows.append({'id': c['id'], 'cpus': _cpus(c.get('cpuset')),
                     'pcpus': _cpus(c.get('pcpuset')),
                     'cpu': output.usage_bar(c.get('cpu_usage', 0),
                                             len(c.get('cpuset') or [])),
                     'memory': output.usage_bar(c.get('memory_usage_mb', 0),
                                                c.get('memory_mb', 0)),
                     'pinned': _cpus(c.get('pinned_cpus')),
                     'pages': pages})
    return output.table(rows, [('id', 'Cell'), ('cpus', 'CPUs'), ('pcpus', 'PCPUs'),
                               ('cpu', 'CPU usage'), ('memory', 'Memory MB'),
                               ('pinned', 'Pinned'), ('pages', 'Pages used/total')])


def pool_size(pool: dict, devices: list) -> int:
    """Devices of ``pool`` still on the bus (``count`` is only the free ones).

    Devices carry no tags in get_host_state, so pools that differ only by
    tags share this figure.
    """
    def same(dev):
        return (dev['vendor_id'] == pool['vendor_id']
                and dev['product_id'] == pool['product_id']
                and dev['dev_type'] == pool['dev_type']
                and dev.get('numa_node') == pool.get('numa_node')
                and (pool.get('parent_addr') is None
                     or dev.get('parent_addr') == pool['parent_addr'])
                and dev.get('status') != 'removed')
    return max(sum(1 for dev in devices if same(dev)), pool['count'])


def _pci_table(pools: list, devices: list) -> str:
    rows = []
    for pool in pools:
        size = pool_size(pool, devices)
        rows.append({'device': f"{pool['vendor_id']}:{pool['product_id']}",
                     'type': pool['dev_type'], 'numa': pool.get('numa_node'),
                     'parent': pool.get('parent_addr'),
                     'tags': pool.get('tags') or None,
                     'used': output.usage_bar(size - pool['count'], size)})
    return output.table(rows, [('device', 'Vendor:product'), ('type', 'Type'),
                               ('numa', 'NUMA'), ('parent', 'PF'),
                               ('tags', 'Tags'), ('used', 'In use')])


def host_show(state: dict) -> str:
    """``host show``: the node as its daemon sees it, then its parts."""
    parts = [output.fields(_host_fields(state))]
    cells = (state.get('numa_topology') or {}).get('cells') or []
    parts.append('NUMA cells:\n' + (_numa_table(cells) if cells else '  none'))
    pools = state.get('pci_pools') or []
    parts.append('PCI pools:\n' + (_pci_table(pools, state.get('pci_devices') or [])
                                   if pools else '  none'))
    used = [d for d in state.get('pci_devices') or [] if d.get('instance_uuid')]
    if used:
        parts.append('PCI devices in use:\n' + output.table(
            used, [('address', 'Address'), ('dev_type', 'Type'),
                   ('status', 'Status'), ('instance_uuid', 'Instance')]))
    domains = state.get('unmanaged_domains') or []
    parts.append('Unmanaged domains (running, not tracked; counted as used):\n'
                 + (output.table(domains, [('name', 'Name'), ('uuid', 'UUID'),
                                           ('vcpus', 'vCPUs'),
                                           ('memory_mb', 'Memory MB')])
                    if domains else '  none'))
    return '\n\n'.join(parts)


# -- claims, moves, audit ----------------------------------------------------

def claim(claim: dict) -> str:
    numa = (claim.get('numa_topology') or {}).get('cells') or []
    return output.fields([
        ('instance_uuid', claim.get('instance_uuid')),
        ('migration_uuid', claim.get('migration_uuid')),
        ('host', claim.get('host')), ('node', claim.get('node')),
        ('resources', claim.get('resources') or {}),
        ('numa_cells', [f"cell {c['id']}: cpus {_cpus(c.get('cpuset'))}, "
                        f"{c.get('memory_mb')} MB" for c in numa]),
        ('pci_devices', [f"{d['address']} {d['vendor_id']}:{d['product_id']} "
                         f"{d['dev_type']}" for d in claim.get('pci_devices') or []]),
    ])


def move(result: dict) -> str:
    mig = result['migration']
    return output.fields([
        ('migration_uuid', mig['uuid']), ('instance_uuid', mig['instance_uuid']),
        ('migration_type', mig['migration_type']),
        ('source', mig['source_compute']), ('dest', mig['dest_compute']),
        ('claimed on dest', (result.get('claim') or {}).get('resources') or {}),
    ])


def done(result: dict) -> str:
    """Calls that return nothing: one sentence saying what was done."""
    return result['message']


def audit(summary: dict) -> str:
    return output.fields(sorted(summary.items()))


# -- placement ---------------------------------------------------------------

def candidates(cands: list) -> str:
    if not cands:
        return 'No allocation candidates: no live host can take that.'
    rows = [{'host': c['host'], 'root': c['root_uuid'],
             'allocation': {rc: n for alloc in c['allocation'].values()
                            for rc, n in alloc.items()},
             'free': c.get('free', {})} for c in cands]
    return output.table(rows, [('host', 'Host'), ('root', 'Root provider'),
                               ('allocation', 'Allocation'), ('free', 'Free before')])


def provider_list(providers: list) -> str:
    return output.table(providers, [
        ('uuid', 'UUID'), ('name', 'Name'), ('host', 'Host'),
        ('parent_uuid', 'Parent'), ('generation', 'Generation'),
        ('alive', 'Alive')])


def provider_show(rp: dict) -> str:
    head = output.fields([(k, rp.get(k)) for k in (
        'uuid', 'name', 'host', 'parent_uuid', 'root_uuid', 'generation',
        'alive', 'last_heartbeat', 'traits', 'aggregates')])
    invs = rp.get('inventories') or {}
    if not invs:
        return head + '\n\nInventories: none'
    rows = [{'rc': rc, 'total': inv['total'], 'reserved': inv['reserved'],
             'ratio': inv['allocation_ratio'],
             'units': f"{inv['min_unit']}..{inv['max_unit']} step {inv['step_size']}",
             'used': output.usage_bar(rp.get('usages', {}).get(rc, 0),
                                      inv.get('capacity', inv['total']))}
            for rc, inv in ((rc, invs[rc]) for rc in _classes(invs))]
    return head + '\n\nInventories:\n' + output.table(rows, [
        ('rc', 'Resource class'), ('total', 'Total'), ('reserved', 'Reserved'),
        ('ratio', 'Ratio'), ('units', 'Units'), ('used', 'Used/capacity')])
