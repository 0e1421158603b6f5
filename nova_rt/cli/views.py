"""How a person reads each ``nova-rt`` command's data. Pure: data in, text out.

Each ``View`` names the columns a table shows first and turns the values
the eye reads faster another way into text: usage as bars against
capacity, NUMA cells, PCI pools and domains one per line.  The data itself
(what ``-f json`` prints) is never changed here.
"""

from __future__ import annotations

from nova_rt.cli import output
from nova_rt.hardware import cpuset

#: Resource classes in this order; other classes follow alphabetically.
MAIN_CLASSES = ('VCPU', 'PCPU', 'MEMORY_MB', 'DISK_GB')


def _classes(names) -> list:
    names = set(names)
    return [rc for rc in MAIN_CLASSES if rc in names] + sorted(
        names - set(MAIN_CLASSES))


def _cpus(cpus) -> str:
    return cpuset.format_cpu_spec(cpus or []) or '-'


def _lines(items) -> str:
    return '\n'.join(items) or '-'


def usage_bars(usages: dict, capacity: dict) -> str:
    """One ``RC [###.......] used/capacity`` line per class with capacity."""
    classes = _classes(capacity)
    width = max((len(rc) for rc in classes), default=0)
    return _lines(f'{rc.ljust(width)} '
                  f'{output.usage_bar((usages or {}).get(rc, 0), capacity[rc])}'
                  for rc in classes)


# -- hosts -------------------------------------------------------------------

def _host_row(host: dict) -> dict:
    age = host.get('heartbeat_age_s')
    return {'heartbeat_age_s': '-' if age is None else f'{age:.0f}s ago',
            'usages': usage_bars(host.get('usages'), host.get('capacity') or {})}


HOST_LIST = output.View(
    main=('host', 'alive', 'heartbeat_age_s', 'usages'), text=_host_row,
    empty='No compute hosts have reported to placement.')


def _ratio(state: dict, rc: str) -> str:
    ratio = state.get('allocation_ratios', {}).get(rc)
    return '' if ratio in (None, 1.0) else f'  (x{ratio:g} allocation ratio)'


def numa_cells(cells: list) -> str:
    lines = []
    for c in cells:
        pages = ', '.join(f"{p['size_kb']}K {p['used']}/{p['total']}"
                          for p in c.get('mempages', []))
        lines.append(
            f"cell {c['id']}: cpus {_cpus(c.get('cpuset'))}"
            f" (dedicated {_cpus(c.get('pcpuset'))}, pinned "
            f"{_cpus(c.get('pinned_cpus'))})"
            f" cpu {output.usage_bar(c.get('cpu_usage', 0), len(c.get('cpuset') or []))}"
            f" memory_mb {output.usage_bar(c.get('memory_usage_mb', 0), c.get('memory_mb', 0))}"
            + (f' pages {pages}' if pages else ''))
    return _lines(lines)


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


def pci_pools(pools: list, devices: list) -> str:
    lines = []
    for pool in pools:
        size = pool_size(pool, devices)
        tags = ','.join(f'{k}={v}' for k, v in (pool.get('tags') or {}).items())
        lines.append(f"{pool['vendor_id']}:{pool['product_id']} {pool['dev_type']}"
                     f" numa {output.cell(pool.get('numa_node'))}"
                     f" PF {output.cell(pool.get('parent_addr'))}"
                     + (f' tags {tags}' if tags else '')
                     + f' in use {output.usage_bar(size - pool["count"], size)}')
    return _lines(lines)


def pci_devices_in_use(devices: list) -> str:
    """Only the devices an instance holds: an SR-IOV host has dozens free."""
    used = [d for d in devices if d.get('instance_uuid')]
    lines = [f"{d['address']} {d['dev_type']} {d.get('status')} "
             f"{d['instance_uuid']}" for d in used]
    if len(devices) > len(used):
        lines.append(f'({len(devices) - len(used)} not in use)')
    return _lines(lines)


def _host_state(state: dict) -> dict:
    hv = state.get('hypervisor') or {}
    audit = state.get('last_audit') or {}
    devices = state.get('pci_devices') or []
    return {
        'hypervisor': f"{hv.get('uri', '-')} "
                      f"({'connected' if hv.get('connected') else 'NOT connected'})",
        'vcpus_used': output.usage_bar(state.get('vcpus_used', 0), state.get('vcpus'))
        + _ratio(state, 'VCPU'),
        'pcpus_used': (output.usage_bar(state.get('pcpus_used', 0), state['pcpus'])
                       if state.get('pcpus') else '-'),
        'memory_mb_used': output.usage_bar(state.get('memory_mb_used', 0),
                                           state.get('memory_mb'))
        + _ratio(state, 'MEMORY_MB'),
        'local_gb_used': output.usage_bar(state.get('local_gb_used', 0),
                                          state.get('local_gb'))
        + _ratio(state, 'DISK_GB'),
        'numa_topology': numa_cells((state.get('numa_topology') or {})
                                    .get('cells') or []),
        'pci_pools': pci_pools(state.get('pci_pools') or [], devices),
        'pci_devices': pci_devices_in_use(devices),
        'unmanaged_domains': _lines(
            f"{d.get('name')} {d.get('uuid')}: {d.get('vcpus')} vCPU, "
            f"{d.get('memory_mb')} MB" for d in state.get('unmanaged_domains') or []),
        'last_audit': (f"{audit.get('at')} ({audit.get('duration_s', 0):.3f}s)"
                       if audit else '-'),
    }


#: Unmanaged domains are running but not tracked, and counted as used.
HOST_SHOW = output.View(
    main=('host', 'node', 'hypervisor', 'vcpus_used', 'pcpus_used',
          'memory_mb_used', 'local_gb_used', 'running_vms', 'instances',
          'migrations', 'numa_topology', 'pci_pools', 'pci_devices',
          'unmanaged_domains', 'last_audit'),
    text=_host_state)


# -- claims, moves, audit ----------------------------------------------------

def _claim(claim: dict) -> dict:
    numa = (claim.get('numa_topology') or {}).get('cells') or []
    return {
        'numa_topology': _lines(f"cell {c['id']}: cpus {_cpus(c.get('cpuset'))}, "
                                f"{c.get('memory_mb')} MB" for c in numa),
        'pci_devices': _lines(f"{d['address']} {d['vendor_id']}:{d['product_id']} "
                              f"{d['dev_type']}" for d in claim.get('pci_devices') or []),
    }


_CLAIM_FIELDS = ('instance_uuid', 'migration_uuid', 'host', 'node', 'resources',
                 'numa_topology', 'pci_devices')
CLAIM = output.View(main=_CLAIM_FIELDS, known=_CLAIM_FIELDS, text=_claim)


def _move(result: dict) -> dict:
    mig = result['migration']
    return {'migration': output.cell({
        'uuid': mig['uuid'], 'instance_uuid': mig['instance_uuid'],
        'migration_type': mig['migration_type'], 'status': mig.get('status'),
        'source': mig['source_compute'], 'dest': mig['dest_compute']}),
        'claim': output.cell((result.get('claim') or {}).get('resources') or {})}


#: ``migration resize|migrate|evacuate|live``: the move and what the
#: destination now holds for it.
MOVE = output.View(main=('migration', 'claim'), known=('migration', 'claim'),
                   text=_move)

#: Calls that return nothing: the sentence saying what was done (the
#: fields it names are in ``--long`` and the document).
DONE = output.View(main=('message',), known=(
    'message', 'host', 'dest', 'uuid', 'instance_uuid', 'migration_uuid',
    'vm_state', 'task_state', 'status'))
AUDIT = output.View()


# -- placement ---------------------------------------------------------------

def _candidate(cand: dict) -> dict:
    return {'allocation': output.cell(
        {rc: n for alloc in (cand.get('allocation') or {}).values()
         for rc, n in alloc.items()})}


CANDIDATES = output.View(
    main=('host', 'root_uuid', 'allocation', 'free'), text=_candidate,
    empty='No allocation candidates: no live host can take that.')

PROVIDER_LIST = output.View(
    main=('uuid', 'name', 'host', 'parent_uuid', 'generation', 'alive'))


def inventories(invs: dict, usages: dict) -> str:
    return _lines(
        f"{rc}: total {inv['total']}, reserved {inv['reserved']}, "
        f"ratio {inv['allocation_ratio']}, units {inv['min_unit']}.."
        f"{inv['max_unit']} step {inv['step_size']}, used "
        f"{output.usage_bar(usages.get(rc, 0), inv.get('capacity', inv['total']))}"
        for rc, inv in ((rc, invs[rc]) for rc in _classes(invs)))


def _provider(rp: dict) -> dict:
    return {'inventories': inventories(rp.get('inventories') or {},
                                       rp.get('usages') or {})}


_PROVIDER_FIELDS = ('uuid', 'name', 'host', 'parent_uuid', 'root_uuid',
                    'generation', 'alive', 'last_heartbeat', 'traits',
                    'aggregates', 'inventories')
PROVIDER_SHOW = output.View(main=_PROVIDER_FIELDS,
                            known=_PROVIDER_FIELDS + ('usages',), text=_provider)
