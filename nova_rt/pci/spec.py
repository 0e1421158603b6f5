"""``[pci] device_spec`` and ``[pci] alias``, parsed and matched as Nova does.

Pure: takes the raw option strings and returns plain objects.  Every problem is
an ``InvalidInput`` whose reason names the offending entry, so the service can
stop at start with one clear line.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Optional

from nova_rt import exception
from nova_rt.pci.device import DEV_TYPES, TYPE_VF, PciDevice

ANY = '*'
NUMA_POLICIES = ('required', 'preferred', 'legacy', 'socket')
DEFAULT_NUMA_POLICY = 'legacy'
ALIAS_EXTRA_SPEC = 'pci_passthrough:alias'
POLICY_EXTRA_SPEC = 'hw:pci_numa_affinity_policy'

# Largest value of each address field (PCI Express, as Nova checks them).
_ADDRESS_FIELDS = (('domain', 0xFFFF, 4), ('bus', 0xFF, 2), ('slot', 0x1F, 2),
                   ('function', 0x7, 1))
_ALIAS_KEYS = frozenset(('name', 'vendor_id', 'product_id', 'device_type',
                         'numa_policy', 'resource_class', 'traits',
                         'live_migratable'))
_BOOL_TAGS = ('trusted', 'remote_managed', 'managed', 'live_migratable')
_HEX_ID = re.compile(r'^(0x)?[0-9a-fA-F]{1,4}$')
_TRAIT = re.compile(r'^[A-Z0-9_]+$')


def _invalid(reason: str) -> exception.InvalidInput:
    return exception.InvalidInput(reason=reason)


def _load_json(raw: str, option: str) -> list[dict]:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise _invalid(f'[pci] {option} {raw!r} is not valid JSON: {exc}')
    entries = value if isinstance(value, list) else [value]
    if not entries or not all(isinstance(e, dict) for e in entries):
        raise _invalid(f'[pci] {option} {raw!r} must be a JSON object or a '
                       f'list of objects')
    return entries


def _hex_id(value, what: str, where: str, allow_any: bool) -> str:
    """Normalise a vendor/product id to 4 lowercase hex digits (or ``*``)."""
    if allow_any and value in (None, ANY):
        return ANY
    if not isinstance(value, str) or not _HEX_ID.match(value):
        raise _invalid(f'{where}: {what} {value!r} is not a hexadecimal id '
                       f'of at most 4 digits')
    return '%04x' % int(value, 16)


def _bool_tag(value, key: str, where: str) -> str:
    text = str(value).strip().lower()
    if text in ('true', '1', 'yes', 'on'):
        return 'true'
    if text in ('false', '0', 'no', 'off'):
        return 'false'
    raise _invalid(f'{where}: {key} {value!r} is not a boolean')


def _split_address(address: str) -> tuple[int, int, int, int]:
    domain, bus, rest = address.split(':')
    slot, function = rest.split('.')
    return int(domain, 16), int(bus, 16), int(slot, 16), int(function, 16)


class _GlobAddress:
    """``[[[domain]:]bus]:][slot][.[function]]`` with ``*`` for any field."""

    def __init__(self, text: str, where: str):
        if text.count('.') > 1 or text.count(':') > 2:
            raise _invalid(f'{where}: address {text!r} is not a PCI address')
        dbs, _, function = text.partition('.')
        parts = dbs.split(':')
        parts = [''] * (3 - len(parts)) + parts
        values = []
        for (name, maximum, _width), part in zip(_ADDRESS_FIELDS,
                                                 parts + [function]):
            if part in ('', ANY):
                values.append(None)
                continue
            try:
                number = int(part, 16)
            except ValueError:
                raise _invalid(f'{where}: address {text!r}: {name} {part!r} '
                               f'is not hexadecimal')
            if number < 0 or number > maximum:
                raise _invalid(f'{where}: address {text!r}: {name} {part!r} '
                               f'is out of range (max {maximum:#x})')
            values.append(number)
        self.fields = tuple(values)
        #: An exact address names one device; if it is a PF, its VFs match too.
        self.exact = None not in self.fields

    def match(self, address: str) -> bool:
        actual = _split_address(address)
        return all(want is None or want == got
                   for want, got in zip(self.fields, actual))


class _RegexAddress:
    """``{"domain": re, "bus": re, "slot": re, "function": re}`` (``re.match``)."""

    exact = False

    def __init__(self, spec: dict, where: str):
        names = [name for name, _max, _width in _ADDRESS_FIELDS]
        unknown = set(spec) - set(names)
        if unknown:
            raise _invalid(f'{where}: address has unknown keys '
                           f'{sorted(unknown)} (expected {names})')
        self.patterns = []
        for name, _maximum, _width in _ADDRESS_FIELDS:
            pattern = spec.get(name, '.*')
            if not isinstance(pattern, str):
                raise _invalid(f'{where}: address {name} {pattern!r} must be '
                               f'a string')
            try:
                self.patterns.append(re.compile(pattern))
            except re.error as exc:
                raise _invalid(f'{where}: address {name} {pattern!r} is not a '
                               f'valid regular expression: {exc}')

    def match(self, address: str) -> bool:
        domain, bus, rest = address.split(':')
        slot, function = rest.split('.')
        return all(p.match(v) for p, v in
                   zip(self.patterns, (domain, bus, slot, function)))


class DeviceSpec:
    """One entry of ``[pci] device_spec``: what it matches, and its tags."""

    def __init__(self, entry: dict, where: str):
        entry = dict(entry)
        self.vendor_id = _hex_id(entry.pop('vendor_id', None), 'vendor_id',
                                 where, allow_any=True)
        self.product_id = _hex_id(entry.pop('product_id', None), 'product_id',
                                  where, allow_any=True)
        address = entry.pop('address', None)
        devname = entry.pop('devname', None)
        if address is not None and devname is not None:
            raise _invalid(f'{where}: "address" and "devname" cannot both be '
                           f'given')
        if devname is not None and (not isinstance(devname, str)
                                    or not devname):
            raise _invalid(f'{where}: devname {devname!r} must be an interface '
                           f'name')
        self.devname: Optional[str] = devname
        if isinstance(address, dict):
            self.address = _RegexAddress(address, where)
        elif isinstance(address, str):
            self.address = _GlobAddress(address, where)
        elif address is None:
            self.address = _GlobAddress(ANY, where)
        else:
            raise _invalid(f'{where}: address {address!r} must be a string or '
                           f'an object of regular expressions')
        self.tags = self._tags(entry, where)

    @staticmethod
    def _tags(entry: dict, where: str) -> dict:
        tags = {}
        for key, value in entry.items():
            if key in _BOOL_TAGS:
                tags[key] = _bool_tag(value, key, where)
            elif key == 'resource_class':
                text = str(value).upper()
                if not _TRAIT.match(text):
                    raise _invalid(f'{where}: resource_class {value!r} is not '
                                   f'a resource class name')
                tags[key] = text
            elif key == 'traits':
                names = [t.strip().upper() for t in str(value).split(',')
                         if t.strip()]
                bad = [t for t in names if not _TRAIT.match(t)]
                if bad:
                    raise _invalid(f'{where}: traits {bad} are not trait names')
                tags[key] = ','.join(names)
            elif isinstance(value, (dict, list)):
                raise _invalid(f'{where}: tag {key!r} must be a plain value')
            else:
                tags[key] = value if isinstance(value, str) else json.dumps(value)
        return tags

    def match(self, dev: PciDevice, parent: Optional[PciDevice] = None) -> bool:
        if self.vendor_id not in (ANY, dev.vendor_id):
            return False
        if self.product_id not in (ANY, dev.product_id):
            return False
        if self.devname is not None:
            if dev.devname == self.devname:
                return True
            return (dev.dev_type == TYPE_VF and parent is not None
                    and parent.devname == self.devname)
        if self.address.match(dev.address):
            return True
        # As Nova: the exact address of a PF also selects every VF of it.
        parent_addr = parent.address if parent is not None else dev.parent_addr
        return (self.address.exact and dev.dev_type == TYPE_VF
                and parent_addr is not None
                and self.address.match(parent_addr))


def parse_device_specs(raw: list[str]) -> list[DeviceSpec]:
    """Parse every ``[pci] device_spec`` value; raise on the first bad one."""
    specs = []
    for index, text in enumerate(raw or []):
        for entry in _load_json(text, 'device_spec'):
            specs.append(DeviceSpec(entry, f'[pci] device_spec #{index + 1}'))
    return specs


def match_spec(specs: list[DeviceSpec], dev: PciDevice,
               parent: Optional[PciDevice] = None) -> Optional[DeviceSpec]:
    """The first spec that matches ``dev`` (Nova takes the first, too)."""
    for spec in specs:
        if spec.match(dev, parent):
            return spec
    return None


@dataclasses.dataclass(frozen=True)
class Alias:
    """An ``[pci] alias`` name; several entries with one name are OR-ed."""

    name: str
    specs: tuple  # of match dicts
    numa_policy: Optional[str] = None
    device_type: Optional[str] = None


def _alias_entry(entry: dict, where: str) -> tuple[str, dict, Optional[str],
                                                   Optional[str]]:
    unknown = set(entry) - _ALIAS_KEYS
    if unknown:
        raise _invalid(f'{where}: unknown keys {sorted(unknown)}')
    name = entry.get('name')
    if not isinstance(name, str) or not name.strip():
        raise _invalid(f'{where}: "name" is required')
    device_type = entry.get('device_type')
    if device_type is not None and device_type not in DEV_TYPES:
        raise _invalid(f'{where}: device_type {device_type!r} is not one of '
                       f'{", ".join(DEV_TYPES)}')
    policy = entry.get('numa_policy')
    if policy is not None and policy not in NUMA_POLICIES:
        raise _invalid(f'{where}: numa_policy {policy!r} is not one of '
                       f'{", ".join(NUMA_POLICIES)}')
    match = {}
    for key in ('vendor_id', 'product_id'):
        if key in entry:
            match[key] = _hex_id(entry[key], key, where, allow_any=False)
    if device_type is not None:
        match['dev_type'] = device_type
    return name.strip(), match, policy, device_type


def parse_aliases(raw: list[str]) -> dict[str, Alias]:
    """Parse every ``[pci] alias`` value into ``{name: Alias}``."""
    found: dict[str, tuple[list, Optional[str], Optional[str]]] = {}
    for index, text in enumerate(raw or []):
        for entry in _load_json(text, 'alias'):
            where = f'[pci] alias #{index + 1}'
            name, match, policy, dev_type = _alias_entry(entry, where)
            if name not in found:
                found[name] = ([match], policy, dev_type)
                continue
            matches, old_policy, old_type = found[name]
            # Nova refuses one name with two policies or types: which would win?
            if policy != old_policy:
                raise _invalid(f'{where}: alias {name!r} is already defined '
                               f'with numa_policy {old_policy!r}')
            if dev_type != old_type:
                raise _invalid(f'{where}: alias {name!r} is already defined '
                               f'with device_type {old_type!r}')
            matches.append(match)
    return {name: Alias(name, tuple(m), p, t) for name, (m, p, t) in found.items()}


@dataclasses.dataclass(frozen=True)
class PciRequest:
    """``count`` devices, each matching any one of ``specs``."""

    alias_name: str
    count: int
    specs: tuple  # of match dicts: {"vendor_id", "product_id", "dev_type"}
    numa_policy: str = DEFAULT_NUMA_POLICY

    def matches(self, dev: PciDevice) -> bool:
        return any(all(_field(dev, k) == v for k, v in spec.items())
                   for spec in self.specs)


def _field(dev: PciDevice, key: str):
    if key in ('vendor_id', 'product_id', 'dev_type', 'numa_node',
               'address', 'parent_addr', 'devname', 'dev_class'):
        return getattr(dev, key)
    return dev.tags.get(key)


def _check_policy(policy: Optional[str]) -> Optional[str]:
    if policy is not None and policy not in NUMA_POLICIES:
        raise _invalid(f'{POLICY_EXTRA_SPEC} {policy!r} is not one of '
                       f'{", ".join(NUMA_POLICIES)}')
    return policy


def requests_from_alias_counts(alias_counts: dict, aliases: dict[str, Alias],
                               policy: Optional[str] = None) -> list[PciRequest]:
    """``{"alias": n}`` -> requests; ``policy`` (the flavor's) overrides the alias's."""
    policy = _check_policy(policy)
    if not isinstance(alias_counts, dict):
        raise _invalid('PCI alias counts must be a mapping of alias to count')
    requests = []
    for name, count in alias_counts.items():
        alias = aliases.get(name)
        if alias is None:
            raise _invalid(f'PCI alias {name!r} is not defined in [pci] alias')
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _invalid(f'PCI alias {name!r}: count {count!r} must be an '
                           f'integer >= 1')
        requests.append(PciRequest(
            alias_name=name, count=count, specs=alias.specs,
            numa_policy=policy or alias.numa_policy or DEFAULT_NUMA_POLICY))
    return requests


def parse_alias_extra_spec(value) -> list[tuple[str, int]]:
    """``"a:2,b:1"`` -> ``[("a", 2), ("b", 1)]``."""
    if not isinstance(value, str):
        raise _invalid(f'{ALIAS_EXTRA_SPEC} {value!r} must be a string')
    pairs = []
    for item in value.split(','):
        name, sep, count = item.partition(':')
        name, count = name.strip(), count.strip()
        if not sep or not name or not count.isdigit() or int(count) < 1:
            raise _invalid(f'{ALIAS_EXTRA_SPEC} {value!r}: {item.strip()!r} '
                           f'is not "alias:count" with a count >= 1')
        pairs.append((name, int(count)))
    return pairs


def requests_from_flavor(extra_specs: dict,
                         aliases: dict[str, Alias]) -> list[PciRequest]:
    """The PCI requests of a flavor's ``pci_passthrough:alias`` (one per item)."""
    value = (extra_specs or {}).get(ALIAS_EXTRA_SPEC)
    if value in (None, ''):
        return []
    policy = _check_policy((extra_specs or {}).get(POLICY_EXTRA_SPEC))
    requests = []
    for name, count in parse_alias_extra_spec(value):
        requests.extend(requests_from_alias_counts({name: count}, aliases,
                                                   policy))
    return requests
