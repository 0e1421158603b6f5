"""The host as libvirt's capabilities XML describes it (pure).

``parse_capabilities(xml)`` turns ``virConnectGetCapabilities()`` output into
plain facts: NUMA cells with their CPUs, SMT siblings, memory and page pools,
the host CPU model and features, and the host uuid.
"""

from __future__ import annotations

import dataclasses
from typing import Optional
from xml.etree.ElementTree import Element

from nova_rt import objects
from nova_rt.hardware.cpuset import parse_cpu_spec
from nova_rt.virt.xmlutil import InvalidXML, int_attr, parse, to_int

__all__ = ['HostCapabilities', 'InvalidXML', 'parse_capabilities', 'restrict_to_cpus']

_WHAT = 'capabilities XML'


@dataclasses.dataclass(frozen=True)
class HostCapabilities:
    uuid: Optional[str]
    arch: Optional[str]
    cpu_model: Optional[str]
    cpu_vendor: Optional[str]
    cpu_features: frozenset
    numa_cells: tuple          # of objects.HostNumaCell, by cell id
    #: CPUs libvirt lists without topology: it cannot read their sysfs
    #: topology, which is what happens to offline CPUs.
    cpus_without_topology: frozenset = frozenset()


def parse_capabilities(xml: str) -> HostCapabilities:
    """Parse capabilities XML; raises ``InvalidXML`` (a ValueError)."""
    root = parse(xml, _WHAT)
    if root.tag != 'capabilities':
        raise InvalidXML(f"{_WHAT}: root element is <{root.tag}>, not <capabilities>")
    host = root.find('host')
    if host is None:
        raise InvalidXML(f"{_WHAT}: no <host> element")
    cpu = host.find('cpu')
    cells, no_topology = [], set()
    for cell_elem in host.findall('topology/cells/cell'):
        cell, missing = _cell(cell_elem)
        cells.append(cell)
        no_topology |= missing
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise InvalidXML(f"{_WHAT}: duplicate NUMA cell ids {sorted(ids)}")
    return HostCapabilities(
        uuid=_text(host, 'uuid'),
        arch=_text(cpu, 'arch'),
        cpu_model=_text(cpu, 'model'),
        cpu_vendor=_text(cpu, 'vendor'),
        cpu_features=_features(cpu),
        numa_cells=tuple(sorted(cells, key=lambda c: c.id)),
        cpus_without_topology=frozenset(no_topology))


def restrict_to_cpus(cells, cpus) -> tuple:
    """The cells with only ``cpus`` (e.g. the online ones) kept.

    Siblings shrink the same way; a sibling set left empty disappears.
    """
    keep = frozenset(cpus)
    out = []
    for cell in cells:
        siblings = tuple(s & keep for s in cell.siblings if s & keep)
        out.append(dataclasses.replace(cell, cpus=cell.cpus & keep, siblings=siblings))
    return tuple(out)


def _cell(elem: Element) -> tuple[objects.HostNumaCell, set]:
    cell_id = int_attr(elem, 'id', _WHAT)
    where = f"{_WHAT}: cell {cell_id}"
    memory = elem.find('memory')
    memory_kb = _kib(memory, where) if memory is not None else 0
    cpus, sockets, sibling_sets, no_topology = set(), set(), set(), set()
    for cpu in elem.findall('cpus/cpu'):
        cpu_id = int_attr(cpu, 'id', where)
        cpus.add(cpu_id)
        if cpu.get('socket_id') is None and cpu.get('siblings') is None:
            no_topology.add(cpu_id)
            continue
        if cpu.get('socket_id') is not None:
            sockets.add(int_attr(cpu, 'socket_id', where))
        siblings = cpu.get('siblings')
        try:
            sibling_sets.add(frozenset(parse_cpu_spec(siblings)) if siblings
                             else frozenset({cpu_id}))
        except ValueError as exc:
            raise InvalidXML(f"{where}: cpu {cpu_id} siblings: {exc}") from exc
    # Siblings may name CPUs outside the cell's online list; keep the cell's own.
    siblings = sorted((s & cpus for s in sibling_sets if s & cpus), key=min)
    for cpu_id in sorted(no_topology):
        siblings.append(frozenset({cpu_id}))
    pools = []
    for page in elem.findall('pages'):
        size_kb = _kib_value(int_attr(page, 'size', where), page.get('unit', 'KiB'), where)
        pools.append(objects.MemPagePool(size_kb=size_kb,
                                         total=to_int(page.text or '0', f"{where}: <pages>")))
    cell = objects.HostNumaCell(
        id=cell_id, cpus=frozenset(cpus), memory_mb=memory_kb // 1024,
        siblings=tuple(sorted(set(siblings), key=min)),
        mempages=tuple(sorted(pools, key=lambda p: p.size_kb)),
        # As Nova: a cell has a socket only when all its CPUs agree on one.
        socket_id=sockets.pop() if len(sockets) == 1 else None)
    return cell, no_topology


def _kib(elem: Element, where: str) -> int:
    return _kib_value(to_int(elem.text, f"{where}: <{elem.tag}>"),
                      elem.get('unit', 'KiB'), where)


_KIB_PER_UNIT = {'kib': 1, 'k': 1, 'mib': 1024, 'm': 1024, 'gib': 1024 ** 2, 'g': 1024 ** 2}


def _kib_value(value: int, unit: str, where: str) -> int:
    try:
        return value * _KIB_PER_UNIT[unit.lower()]
    except KeyError:
        raise InvalidXML(f"{where}: unknown unit {unit!r}") from None


def _text(parent: Optional[Element], path: str) -> Optional[str]:
    if parent is None:
        return None
    elem = parent.find(path)
    if elem is None or elem.text is None:
        return None
    return elem.text.strip() or None


def _features(cpu: Optional[Element]) -> frozenset:
    if cpu is None:
        return frozenset()
    # Real hosts list <feature name='x'/>; older drivers (and the test
    # driver) use <features><x/></features>.
    names = {f.get('name') for f in cpu.findall('feature') if f.get('name')}
    names |= {child.tag for child in cpu.findall('features/*')}
    return frozenset(names)
