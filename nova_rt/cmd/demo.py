"""``python -m nova_rt.cmd.demo``: show what nova_rt sees on a host.

Run by ``tools/quickstart.sh``.  Each step of the demo is a subcommand with a
pure ``report`` part (plain data in, JSON-able dict out), a ``format_table``
part and a thin ``run`` that talks to the world, so that a new step (the full
placement + two compute daemons + claims demo) is one more entry in
``COMMANDS``.

Example::

    $ python -m nova_rt.cmd.demo inventory --uri test:///default --format table
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.hardware import cpu_inventory
from nova_rt.hardware import cpuset

DEFAULT_URI = 'test:///default'


# --- inventory -------------------------------------------------------------

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


def _inventory_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--uri', default=DEFAULT_URI,
                        help='libvirt URI (default: %(default)s)')
    parser.add_argument('--instances-path', default='/',
                        help='filesystem whose size is DISK_GB (default: %(default)s)')
    parser.add_argument('--cpu-shared-set', help='as [compute] cpu_shared_set')
    parser.add_argument('--cpu-dedicated-set', help='as [compute] cpu_dedicated_set')


#: name -> (help, add arguments, run -> JSON-able report, report -> table)
COMMANDS = {
    'inventory': ('the host inventory as nova-rt-compute reads it',
                  _inventory_args, run_inventory, inventory_table),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='nova_rt.cmd.demo', description='Show nova_rt at work on this machine.')
    parser.add_argument('--format', choices=('both', 'json', 'table'), default='both',
                        help='output: JSON, a table, or both (default)')
    subparsers = parser.add_subparsers(dest='command')
    for name, (help_text, add_args, _run, _table) in COMMANDS.items():
        add_args(subparsers.add_parser(name, help=help_text))
    return parser


def main(argv: Optional[list] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is None:
        # The bare command runs the first step, so quickstart needs no argument.
        args = parser.parse_args(argv + [next(iter(COMMANDS))])
    _help, _add, run, table = COMMANDS[args.command]
    try:
        report = run(args)
    except (exception.ConfigError, exception.HypervisorUnavailable) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    if args.format in ('both', 'json'):
        print(json.dumps(report, indent=2, sort_keys=True))
    if args.format == 'both':
        print()
    if args.format in ('both', 'table'):
        print(table(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
