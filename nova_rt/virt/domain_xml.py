"""The parts of a libvirt domain XML the tracker accounts for (pure).

``parse_domain_xml(xml)`` gives a ``DomainXml`` with the fields of
``objects.DomainInfo`` that only the XML knows: vCPUs, memory, CPU pinning,
NUMA memory nodes, huge pages and assigned PCI devices.  The state comes from
libvirt's API, not from here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional
from xml.etree.ElementTree import Element

from nova_rt.hardware.cpuset import parse_cpu_spec
from nova_rt.virt.xmlutil import InvalidXML, int_attr, parse, to_int

__all__ = ['DomainXml', 'InvalidXML', 'parse_domain_xml', 'memory_bytes']

#: What ``<hugepages/>`` with no ``<page>`` means: the default large page.
DEFAULT_HUGEPAGE_KB = 2048

# libvirt's scaled integers: k/M/G are binary, KB/MB/GB decimal.
_UNIT_BYTES = {
    'b': 1, 'bytes': 1,
    'kb': 1000, 'k': 1024, 'kib': 1024,
    'mb': 1000 ** 2, 'm': 1024 ** 2, 'mib': 1024 ** 2,
    'gb': 1000 ** 3, 'g': 1024 ** 3, 'gib': 1024 ** 3,
    'tb': 1000 ** 4, 't': 1024 ** 4, 'tib': 1024 ** 4,
    'pb': 1000 ** 5, 'p': 1024 ** 5, 'pib': 1024 ** 5,
    'eb': 1000 ** 6, 'e': 1024 ** 6, 'eib': 1024 ** 6,
}


@dataclasses.dataclass(frozen=True)
class DomainXml:
    uuid: str
    name: str
    vcpus: int
    memory_mb: int
    cpu_pinning: dict = dataclasses.field(default_factory=dict)
    numa_memory_nodes: frozenset = frozenset()
    hugepage_kb: Optional[int] = None
    hostdev_addresses: tuple = ()

    def fields(self) -> dict:
        """Keyword arguments for ``objects.DomainInfo`` (with state and active)."""
        return dataclasses.asdict(self)


def memory_bytes(value: int, unit: Optional[str], what: str = 'memory') -> int:
    """``value`` in ``unit`` (libvirt's names; default KiB) as bytes."""
    try:
        return value * _UNIT_BYTES[(unit or 'KiB').lower()]
    except KeyError:
        raise InvalidXML(f"{what}: unknown unit {unit!r}") from None


def parse_domain_xml(xml: str) -> DomainXml:
    """Parse a domain XML string; raises ``InvalidXML`` (a ValueError)."""
    root = parse(xml, 'domain XML')
    if root.tag != 'domain':
        raise InvalidXML(f"domain XML: root element is <{root.tag}>, not <domain>")
    name = (root.findtext('name') or '').strip()
    uuid = (root.findtext('uuid') or '').strip()
    what = f"domain {name or '?'} ({uuid or 'no uuid'})"
    if not name or not uuid:
        raise InvalidXML(f"{what}: <name> and <uuid> are required")
    return DomainXml(
        uuid=uuid, name=name,
        vcpus=_vcpus(root, what),
        memory_mb=_memory_mb(root, what),
        cpu_pinning=_pinning(root, what),
        numa_memory_nodes=_numa_nodes(root, what),
        hugepage_kb=_hugepage_kb(root, what),
        hostdev_addresses=_pci_addresses(root, what))


def _vcpus(root: Element, what: str) -> int:
    vcpu = root.find('vcpu')
    if vcpu is None:
        return 1   # libvirt's default when <vcpu> is absent
    # 'current' is what the guest runs with; the element text is the maximum.
    text = vcpu.get('current') or vcpu.text
    count = to_int(text, f"{what}: <vcpu>")
    if count < 1:
        raise InvalidXML(f"{what}: <vcpu> must be at least 1, got {count}")
    return count


def _memory_mb(root: Element, what: str) -> int:
    memory = root.find('memory')
    if memory is None:
        raise InvalidXML(f"{what}: no <memory> element")
    amount = memory_bytes(to_int(memory.text, f"{what}: <memory>"), memory.get('unit'),
                          f"{what}: <memory>")
    # Rounded up: a guest with 512.5 MiB really holds 513 MiB of the host.
    return math.ceil(amount / 1024 ** 2)


def _cpu_set(text: Optional[str], where: str) -> frozenset:
    try:
        return frozenset(parse_cpu_spec(text or ''))
    except ValueError as exc:
        raise InvalidXML(f"{where}: {exc}") from exc


def _pinning(root: Element, what: str) -> dict:
    pinning = {}
    for pin in root.findall('cputune/vcpupin'):
        vcpu = int_attr(pin, 'vcpu', what)
        pinning[vcpu] = _cpu_set(pin.get('cpuset'), f"{what}: vcpupin {vcpu}")
    return pinning


def _numa_nodes(root: Element, what: str) -> frozenset:
    nodes = set()
    numatune = root.find('numatune')
    if numatune is None:
        return frozenset()
    # memnode entries (per guest cell) narrow memory further; the union is
    # every host node the guest's memory may live on.
    for elem in [numatune.find('memory'), *numatune.findall('memnode')]:
        if elem is not None and elem.get('nodeset'):
            nodes |= _cpu_set(elem.get('nodeset'), f"{what}: numatune nodeset")
    return frozenset(nodes)


def _hugepage_kb(root: Element, what: str) -> Optional[int]:
    hugepages = root.find('memoryBacking/hugepages')
    if hugepages is None:
        return None
    pages = hugepages.findall('page')
    if not pages:
        return DEFAULT_HUGEPAGE_KB
    # Nova gives a guest one page size; per-nodeset pages repeat it.
    page = pages[0]
    size = memory_bytes(int_attr(page, 'size', what), page.get('unit'), f"{what}: page")
    return size // 1024


def _pci_addresses(root: Element, what: str) -> tuple:
    sources = []
    for device in root.findall('devices/*'):
        if ((device.tag == 'hostdev' and device.get('type') == 'pci'
             and device.get('mode', 'subsystem') == 'subsystem')
                # SR-IOV ports are attached as <interface type='hostdev'>.
                or (device.tag == 'interface' and device.get('type') == 'hostdev')):
            sources.append(device.find('source'))
    addresses = []
    for source in sources:
        address = source.find('address') if source is not None else None
        if address is None or address.get('type', 'pci') != 'pci':
            continue
        addresses.append(_pci_address(address, what))
    return tuple(addresses)


def _pci_address(address: Element, what: str) -> str:
    where = f"{what}: hostdev address"
    parts = []
    for field in ('domain', 'bus', 'slot', 'function'):
        text = address.get(field, '0' if field == 'domain' else None)
        if text is None:
            raise InvalidXML(f"{where}: no {field!r}")
        parts.append(to_int(text, where, base=0 if text.lower().startswith('0x') else 10))
    domain, bus, slot, function = parts
    if min(parts) < 0 or domain > 0xffff or bus > 0xff or slot > 0x1f or function > 0x7:
        raise InvalidXML(f"{where}: {domain:x}:{bus:x}:{slot:x}.{function:x} is out of range")
    return f"{domain:04x}:{bus:02x}:{slot:02x}.{function:x}"
