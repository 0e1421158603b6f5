"""The host inventory as nova-rt-compute reads it: a pure ``inventory_report``
and ``inventory_table``, and a thin ``run_inventory`` over libvirt."""

from __future__ import annotations

import argparse
from typing import Optional

from nova_rt import objects
from nova_rt.hardware import cpu_inventory
from nova_rt.hardware import cpuset

DEFAULT_URI = 'test:///default'


def inventory_report(host: objects.HostInfo, shared_set: Optional[str] = None,
                     dedicated_set: Optional[str] = None) -> dict:
    """The totals nova-rt-compute would report for ``host`` (pure).

    ``shared_set`` and ``dedicated_set`` are ``[compute] cpu_shared_set`` and
    ``cpu_dedicated_set`` range strings; dedicated CPUs become ``PCPU``.
    """
    vcpus, pcpus = cpu_inventory.cpu_inventory(
        host.online_cpus,
        cpu_inventory.parse_cpu_set_option(cpu_inventory.SHARED_OPT, shared_set),
        cpu_inventory.parse_cpu_set_option(cpu_inventory.DEDICATED_OPT, dedicated_set))
    totals = {'VCPU': len(vcpus), 'MEMORY_MB': host.memory_mb,
              'DISK_GB': host.disk_total_gb}
    if pcpus:
        totals['PCPU'] = len(pcpus)
    cells = []
    for cell, (cell_vcpus, cell_pcpus) in zip(
            host.numa_cells, cpu_inventory.split_cells(host.numa_cells, vcpus, pcpus)):
        cells.append({
            'id': cell.id,
            'cpuset': sorted(cell_vcpus),
            'pcpuset': sorted(cell_pcpus),
            'memory_mb': cell.memory_mb,
            'mempages': [{'size_kb': p.size_kb, 'total': p.total}
                         for p in cell.mempages],
        })
    return {'uri': host.uri, 'hostname': host.hostname,
            'hypervisor_type': host.hypervisor_type,
            'inventory': totals, 'numa_cells': cells}


def _cpus(cpus: list) -> str:
    return cpuset.format_cpu_spec(cpus) or '-'


def inventory_table(report: dict) -> str:
    """``inventory_report``'s result as aligned text for a person."""
    lines = [f"Host {report['hostname']} ({report['hypervisor_type']}, "
             f"{report['uri']})", '',
             f"{'resource class':<16}{'total':>10}"]
    for rc, total in report['inventory'].items():
        lines.append(f"{rc:<16}{total:>10}")
    if report['numa_cells']:
        lines += ['', f"{'NUMA cell':<11}{'cpus':<16}{'pcpus':<12}"
                      f"{'memory_mb':>10}  pages (size_kb x total)"]
        for cell in report['numa_cells']:
            pages = ', '.join(f"{p['size_kb']}x{p['total']}" for p in cell['mempages'])
            lines.append(f"{cell['id']:<11}{_cpus(cell['cpuset']):<16}"
                         f"{_cpus(cell['pcpuset']):<12}{cell['memory_mb']:>10}  {pages}")
    else:
        lines += ['', 'No NUMA topology reported.']
    return '\n'.join(lines)


def run_inventory(args) -> dict:
    from nova_rt.virt import host as virt_host
    libvirt_host = virt_host.LibvirtHost(
        args.uri, instances_path=args.instances_path, reconnect_max_interval=1)
    try:
        host = libvirt_host.get_host_info()
    finally:
        libvirt_host.stop()
    return inventory_report(host, args.cpu_shared_set, args.cpu_dedicated_set)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--uri', default=DEFAULT_URI,
                        help='libvirt URI (default: %(default)s)')
    parser.add_argument('--instances-path', default='/',
                        help='filesystem whose size is DISK_GB (default: %(default)s)')
    parser.add_argument('--cpu-shared-set', help='as [compute] cpu_shared_set')
    parser.add_argument('--cpu-dedicated-set', help='as [compute] cpu_dedicated_set')
