"""What a guest asks of the host's CPUs and NUMA cells, in Nova's vocabulary.

The flavor's extra specs (``hw:...``) merged with the image's properties
(``hw_...``) by Nova 34's rules: ``numa_get_constraints`` and its helpers in
``nova/virt/hardware.py``, and the scheduler's translation of CPU policies
into VCPU/PCPU amounts (``nova/scheduler/utils.py``).  Pure: plain dicts in,
a :class:`NumaRequest` (or the VCPU/PCPU amounts) out.  A combination Nova
refuses is ``InvalidInput`` naming the key or keys at fault, whether it came
from the flavor or the image.

Where the flavor and the image both speak, the flavor wins or the two must
agree, exactly where Nova says so; an image never gets pinned CPUs, a NUMA
layout or a page size that the flavor rules out.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Optional

from oslo_utils import strutils

from nova_rt import exception
from nova_rt import objects
from nova_rt.hardware import pages
from nova_rt.hardware.cpuset import parse_cpu_spec
from nova_rt.hardware.request import (  # noqa: F401  (part of this API)
    CPU_POLICIES, DEDICATED, ISOLATE, MIXED, PREFER, REQUIRE, SHARED,
    THREAD_POLICIES, GuestCell, NumaRequest)

EMULATOR_POLICIES = ('share', 'isolate')
PCI_NUMA_POLICY = 'pci_numa_affinity_policy'
HYPERTHREADING = 'HW_CPU_HYPERTHREADING'
#: As Nova's ImageMetaProps.NUMA_NODES_MAX: per-node keys beyond are not read.
NUMA_NODES_MAX = 128

_CPU_RESOURCE = re.compile(r'^resources([1-9][0-9]*)?:(VCPU|PCPU)$')
_HT_TRAIT = re.compile(r'^trait([1-9][0-9]*)?:' + HYPERTHREADING + '$')


def _invalid(reason: str) -> exception.InvalidInput:
    return exception.InvalidInput(reason=reason)


def _is_set(value) -> bool:
    return value is not None and value != ''


# --- reading the keys -------------------------------------------------------------

class _Specs:
    """The flavor's extra specs and the image's properties, side by side."""

    def __init__(self, flavor: objects.Flavor, image: Optional[Mapping]):
        self.flavor = flavor
        self.extra = flavor.extra_specs or {}
        self.image = image or {}

    def both(self, name: str) -> tuple:
        """(flavor value, image value) of ``hw:name`` / ``hw_name``; blank is unset."""
        flavor_value = self.extra.get('hw:' + name)
        image_value = self.image.get('hw_' + name)
        return (flavor_value if _is_set(flavor_value) else None,
                image_value if _is_set(image_value) else None)

    def flavor_value(self, name: str):
        value = self.extra.get('hw:' + name)
        return value if _is_set(value) else None


def _conflict(flavor_key, flavor_value, image_key, image_value, why) -> exception.InvalidInput:
    return _invalid(f"image property {image_key}={image_value!r} conflicts with "
                    f"the flavor's {flavor_key}={flavor_value!r}: {why}")


def _choice(key: str, value, allowed) -> None:
    if value is not None and value not in allowed:
        raise _invalid(f"{key} must be one of {', '.join(allowed)}, not {value!r}")


def _cpu_policy(specs: _Specs) -> Optional[str]:
    flavor_policy, image_policy = specs.both('cpu_policy')
    _choice('hw:cpu_policy', flavor_policy, CPU_POLICIES)
    _choice('hw_cpu_policy', image_policy, CPU_POLICIES)
    forbidden = {DEDICATED: (), MIXED: (DEDICATED,), SHARED: (MIXED, DEDICATED)}
    if flavor_policy is None:
        return image_policy
    if image_policy in forbidden[flavor_policy]:
        raise _conflict('hw:cpu_policy', flavor_policy, 'hw_cpu_policy',
                        image_policy, 'the flavor does not allow the image to '
                        'ask for more pinned CPUs than it gives')
    return flavor_policy


def _thread_policy(specs: _Specs) -> Optional[str]:
    flavor_policy, image_policy = specs.both('cpu_thread_policy')
    _choice('hw:cpu_thread_policy', flavor_policy, THREAD_POLICIES)
    _choice('hw_cpu_thread_policy', image_policy, THREAD_POLICIES)
    if flavor_policy in (None, PREFER):
        return flavor_policy or image_policy
    if image_policy is not None and image_policy != flavor_policy:
        raise _conflict('hw:cpu_thread_policy', flavor_policy,
                        'hw_cpu_thread_policy', image_policy,
                        'only a flavor that says nothing or prefer lets the '
                        'image choose')
    return flavor_policy


def _emulator_policy(specs: _Specs) -> Optional[str]:
    policy = specs.flavor_value('emulator_threads_policy')
    _choice('hw:emulator_threads_policy', policy, EMULATOR_POLICIES)
    return policy


def _guest_cpu_mask(key: str, mask: str, vcpus: int) -> set:
    """A guest CPU mask: ``"2-3"``, or ``"^0-1"`` meaning all vCPUs but those."""
    spec = f"0-{vcpus - 1},{mask}" if mask.strip().startswith('^') else mask
    try:
        return parse_cpu_spec(spec)
    except ValueError as err:
        raise _invalid(f"{key}: {err}") from None


def _dedicated_mask(specs: _Specs) -> Optional[set]:
    mask = specs.flavor_value('cpu_dedicated_mask')
    if mask is None:
        return None
    key, vcpus = 'hw:cpu_dedicated_mask', specs.flavor.vcpus
    pinned = _guest_cpu_mask(key, str(mask), vcpus)
    if not pinned or not set(range(vcpus)) - pinned:
        raise _invalid(f"{key}={mask!r} must leave at least one of the "
                       f"{vcpus} vCPUs dedicated and one shared")
    if not pinned <= set(range(vcpus)):
        raise _invalid(f"{key}={mask!r} names vCPUs "
                       f"{sorted(pinned - set(range(vcpus)))} that the flavor's "
                       f"{vcpus} vCPUs (0-{vcpus - 1}) do not have")
    return pinned


def _realtime_cpus(specs: _Specs, emulator_policy) -> Optional[set]:
    if not strutils.bool_from_string(specs.flavor_value('cpu_realtime')):
        return None
    flavor_mask, image_mask = specs.both('cpu_realtime_mask')
    key = 'hw_cpu_realtime_mask' if image_mask is not None else 'hw:cpu_realtime_mask'
    mask = image_mask if image_mask is not None else flavor_mask
    vcpus = specs.flavor.vcpus
    everything = set(range(vcpus))
    realtime = _guest_cpu_mask(key, str(mask), vcpus) if mask is not None else everything
    if not realtime:
        raise _invalid(f"{key}={mask!r} leaves no realtime vCPU")
    if realtime == everything and emulator_policy is None:
        raise _invalid(f"hw:cpu_realtime needs {key} to leave at least one "
                       f"vCPU for the emulator threads, or "
                       f"hw:emulator_threads_policy")
    if not realtime <= everything:
        raise _invalid(f"{key}={mask!r} names vCPUs the flavor's {vcpus} "
                       f"vCPUs do not have")
    return realtime


def _explicit_cpu_resources(specs: _Specs) -> dict:
    """``resources[N]:VCPU`` and ``resources[N]:PCPU`` summed, as Nova reads them."""
    amounts = {'VCPU': 0, 'PCPU': 0}
    for key, value in specs.extra.items():
        match = _CPU_RESOURCE.match(key)
        if match:
            amounts[match.group(2)] += _count(key, value)
    return amounts


def _count(key: str, value) -> int:
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.isdigit():
        return int(text)
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    raise _invalid(f"{key} must be a whole number, not {value!r}")


def _hyperthreading_trait(specs: _Specs) -> tuple:
    """(value, key) of the HW_CPU_HYPERTHREADING trait the guest asks for."""
    for key, value in specs.extra.items():
        if _HT_TRAIT.match(key):
            return value, key
    if specs.image.get('trait:' + HYPERTHREADING) == 'required':
        return 'required', 'trait:' + HYPERTHREADING
    required = specs.image.get('traits_required') or ()
    if isinstance(required, (list, tuple)) and HYPERTHREADING in required:
        return 'required', 'traits_required'
    return None, None


@dataclasses.dataclass(frozen=True)
class CpuConstraints:
    """The CPU half of the request: policies and which vCPUs are pinned."""
    vcpus: int
    policy: Optional[str]            # None: nobody asked (shared)
    pinned_cpus: frozenset           # guest vCPUs pinned to host CPUs
    thread_policy: Optional[str]
    emulator_threads_isolate: bool
    explicit: dict                   # resources:VCPU / resources:PCPU given

    def resources(self) -> dict:
        """VCPU and PCPU amounts, as Nova's scheduler asks placement."""
        if self.policy in (DEDICATED, MIXED):
            amounts = {'VCPU': self.vcpus - len(self.pinned_cpus),
                       'PCPU': len(self.pinned_cpus) + int(self.emulator_threads_isolate)}
        else:
            amounts = {'VCPU': self.vcpus, 'PCPU': 0}
        # An explicit amount replaces the policy's; 0 removes the class.
        for rc, amount in self.explicit.items():
            amounts[rc] = amount
        return {rc: n for rc, n in amounts.items() if n > 0}


def cpu_constraints(flavor: objects.Flavor,
                    image_properties: Optional[Mapping] = None) -> CpuConstraints:
    """The CPU policies of ``flavor`` with ``image_properties``, checked.

    Raises ``InvalidInput`` naming the keys of a combination Nova refuses.
    """
    specs = _Specs(flavor, image_properties)
    policy = _cpu_policy(specs)
    policy_key = 'hw:cpu_policy' if specs.flavor_value('cpu_policy') else 'hw_cpu_policy'
    thread_policy = _thread_policy(specs)
    thread_key = ('hw:cpu_thread_policy' if specs.flavor_value('cpu_thread_policy')
                  else 'hw_cpu_thread_policy')
    emulator_policy = _emulator_policy(specs)
    realtime = _realtime_cpus(specs, emulator_policy)
    mask = _dedicated_mask(specs)
    emulator_isolate = emulator_policy == 'isolate'

    explicit_keys = {k for k in specs.extra if _CPU_RESOURCE.match(k)}
    requested = _explicit_cpu_resources(specs)
    if policy and (requested['VCPU'] or requested['PCPU']):
        raise _invalid(f"{', '.join(sorted(explicit_keys))} cannot be combined "
                       f"with {policy_key}: use one or the other")
    if requested['VCPU'] and requested['PCPU']:
        raise _invalid(f"{', '.join(sorted(explicit_keys))}: ask for VCPU or "
                       f"PCPU, not both")
    if requested['PCPU']:
        wanted = flavor.vcpus + int(emulator_isolate)
        if requested['PCPU'] != wanted:
            extra = (' plus one for hw:emulator_threads_policy=isolate'
                     if emulator_isolate else '')
            raise _invalid(f"resources:PCPU={requested['PCPU']} must be exactly "
                           f"the flavor's {flavor.vcpus} vCPUs{extra} "
                           f"({wanted})")
        policy, policy_key = DEDICATED, 'resources:PCPU'
    if requested['VCPU']:
        policy, policy_key = SHARED, 'resources:VCPU'

    ht_value, ht_key = _hyperthreading_trait(specs)
    if thread_policy and ht_value is not None:
        raise _invalid(f"{ht_key} cannot be combined with {thread_key}: use "
                       f"one or the other")
    if ht_value in ('forbidden', 'required'):
        thread_policy = ISOLATE if ht_value == 'forbidden' else REQUIRE
        thread_key = f"{ht_key}={ht_value}"

    if policy in (None, SHARED):
        named = policy_key if policy else 'no hw:cpu_policy'
        if thread_policy:
            raise _invalid(f"{thread_key} needs hw:cpu_policy dedicated or "
                           f"mixed, not {named}")
        if emulator_isolate:
            raise _invalid(f"hw:emulator_threads_policy=isolate needs "
                           f"hw:cpu_policy dedicated or mixed, not {named}")
        if mask is not None:
            raise _invalid(f"hw:cpu_dedicated_mask needs hw:cpu_policy=mixed, "
                           f"not {named}")
        if realtime is not None:
            raise _invalid(f"hw:cpu_realtime needs hw:cpu_policy dedicated or "
                           f"mixed, not {named}")
        pinned = frozenset()
    elif policy == DEDICATED:
        if mask is not None:
            raise _invalid(f"hw:cpu_dedicated_mask needs hw:cpu_policy=mixed, "
                           f"not {policy_key}=dedicated")
        pinned = frozenset(range(flavor.vcpus))
    else:
        if (realtime is None) == (mask is None):
            raise _invalid(f"{policy_key}=mixed needs exactly one of "
                           f"hw:cpu_dedicated_mask and hw:cpu_realtime_mask to "
                           f"say which vCPUs are dedicated")
        pinned = frozenset(mask if mask is not None else realtime)
    return CpuConstraints(vcpus=flavor.vcpus, policy=policy, pinned_cpus=pinned,
                          thread_policy=thread_policy,
                          emulator_threads_isolate=emulator_isolate,
                          explicit={rc: n for rc, n in requested.items()
                                    if any(k.endswith(':' + rc) for k in explicit_keys)})


# --- NUMA nodes, memory pages -----------------------------------------------------

def _numa_nodes(specs: _Specs) -> Optional[int]:
    flavor_nodes, image_nodes = specs.both('numa_nodes')
    if flavor_nodes is not None and image_nodes is not None:
        raise _conflict('hw:numa_nodes', flavor_nodes, 'hw_numa_nodes',
                        image_nodes, 'only the flavor or the image may set the '
                        'NUMA nodes')
    key = 'hw:numa_nodes' if flavor_nodes is not None else 'hw_numa_nodes'
    value = flavor_nodes if flavor_nodes is not None else image_nodes
    if value is None:
        return None
    nodes = None
    if isinstance(value, int) and not isinstance(value, bool):
        nodes = value
    elif isinstance(value, str) and value.strip().isdigit():
        nodes = int(value.strip())
    if nodes is None or nodes < 1:
        raise _invalid(f"{key} must be a positive integer, not {value!r}")
    if nodes > specs.flavor.vcpus:
        raise _invalid(f"{key}={nodes} is more than the flavor's "
                       f"{specs.flavor.vcpus} vCPUs: every NUMA node needs at "
                       f"least one vCPU")
    return nodes


def _page_size(specs: _Specs) -> Optional[pages.PageSize]:
    flavor_size, image_size = specs.both('mem_page_size')

    def parse(key, value):
        try:
            return pages.parse_page_size(value)
        except ValueError as err:
            raise _invalid(f"{key}: {err}") from None

    if flavor_size is None:
        if image_size is not None:
            raise _conflict('hw:mem_page_size', None, 'hw_mem_page_size',
                            image_size, 'an image may only choose a page size '
                            'where the flavor allows any or large')
        return None
    size = parse('hw:mem_page_size', flavor_size)
    if image_size is None:
        return size
    if size in (pages.ANY, pages.LARGE):
        return parse('hw_mem_page_size', image_size)
    raise _conflict('hw:mem_page_size', flavor_size, 'hw_mem_page_size',
                    image_size, 'an image may only choose a page size where '
                    'the flavor allows any or large')


def _per_node(specs: _Specs, name: str) -> tuple:
    """``hw:name.K`` (or ``hw_name.K``) for K = 0, 1 ... up to the first gap.

    Returns (values, key prefix) or (None, None).  As Nova, keys after a gap
    are not read, and the flavor and the image may not both give them.
    """
    def read(prefix, source):
        values = []
        for node in range(NUMA_NODES_MAX):
            key = f"{prefix}.{node}"
            if key not in source:
                break
            values.append((key, source[key]))
        return values

    flavor_values = read(f"hw:{name}", specs.extra)
    image_values = read(f"hw_{name}", specs.image)
    if flavor_values and image_values:
        raise _invalid(f"image properties hw_{name}.K conflict with the "
                       f"flavor's hw:{name}.K: only one of them may lay out "
                       f"the guest's NUMA nodes")
    if flavor_values:
        return flavor_values, f"hw:{name}"
    if image_values:
        return image_values, f"hw_{name}"
    return None, None


def _manual_cells(specs: _Specs, nodes: int) -> tuple:
    """The asymmetric layout, checked with Nova's rules; (None, None) if none."""
    cpu_values, cpu_prefix = _per_node(specs, 'numa_cpus')
    mem_values, mem_prefix = _per_node(specs, 'numa_mem')
    if cpu_values is None and mem_values is None:
        return None, None
    cpu_prefix = cpu_prefix or mem_prefix.replace('mem', 'cpus')
    mem_prefix = mem_prefix or cpu_prefix.replace('cpus', 'mem')
    if (cpu_values is None or mem_values is None or len(cpu_values) != nodes
            or len(mem_values) != nodes):
        raise _invalid(f"{cpu_prefix}.K and {mem_prefix}.K must both be given "
                       f"for every guest NUMA node K = 0..{nodes - 1} (NUMA "
                       f"nodes: {nodes}); got {len(cpu_values or ())} and "
                       f"{len(mem_values or ())}")
    vcpus, memory_mb = specs.flavor.vcpus, specs.flavor.memory_mb
    unassigned = set(range(vcpus))
    node_cpus = []
    for key, value in cpu_values:
        try:
            cpus = parse_cpu_spec(str(value))
        except ValueError as err:
            raise _invalid(f"{key}: {err}") from None
        if not cpus:
            raise _invalid(f"{key}={value!r}: every guest NUMA node needs at "
                           f"least one vCPU")
        beyond = sorted(c for c in cpus if c >= vcpus)
        if beyond:
            raise _invalid(f"{key}={value!r} names vCPU {beyond[0]}, beyond "
                           f"the flavor's {vcpus} vCPUs (0-{vcpus - 1})")
        twice = sorted(cpus - unassigned)
        if twice:
            raise _invalid(f"{key}={value!r} names vCPU {twice[0]}, already "
                           f"in another guest NUMA node")
        unassigned -= cpus
        node_cpus.append(frozenset(cpus))
    if unassigned:
        raise _invalid(f"{cpu_prefix}.K leave vCPUs {sorted(unassigned)} in "
                       f"no guest NUMA node")
    cell_memory = []
    for key, value in mem_values:
        amount = _count(key, value)
        if amount < 1:
            raise _invalid(f"{key}={value!r}: every guest NUMA node needs "
                           f"memory")
        cell_memory.append(amount)
    if sum(cell_memory) != memory_mb:
        raise _invalid(f"{mem_prefix}.K add up to {sum(cell_memory)} MiB, "
                       f"not the flavor's {memory_mb} MiB")
    return tuple(node_cpus), tuple(cell_memory)


def numa_request(flavor: objects.Flavor,
                 image_properties: Optional[Mapping] = None) -> NumaRequest | None:
    """The NUMA placement a flavor and image ask for, or None if none.

    As Nova, pinned CPUs (dedicated or mixed), a page size or a NUMA node
    count each ask for a NUMA topology, of one node unless said otherwise.
    Raises ``InvalidInput`` naming the keys at fault.
    """
    specs = _Specs(flavor, image_properties)
    cpu = cpu_constraints(flavor, image_properties)
    nodes = _numa_nodes(specs)
    page_size = _page_size(specs)
    pinned = cpu.policy in (DEDICATED, MIXED)
    if not (nodes or page_size is not None or pinned):
        return None
    nodes = nodes or 1
    node_cpus, cell_memory = _manual_cells(specs, nodes)
    if node_cpus is None and (flavor.vcpus % nodes or flavor.memory_mb % nodes):
        raise _invalid(f"hw:numa_nodes={nodes}: the flavor's {flavor.vcpus} "
                       f"vCPUs and {flavor.memory_mb} MiB must both divide "
                       f"evenly by {nodes}, or hw:numa_cpus.K and "
                       f"hw:numa_mem.K must lay the nodes out")
    return NumaRequest(
        vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, numa_nodes=nodes,
        dedicated=cpu.policy == DEDICATED, page_size=page_size,
        dedicated_mask=cpu.pinned_cpus if cpu.policy == MIXED else None,
        thread_policy=cpu.thread_policy,
        emulator_threads_isolate=cpu.emulator_threads_isolate,
        node_cpus=node_cpus, node_memory_mb=cell_memory)


# --- PCI --------------------------------------------------------------------------

def pci_numa_policy(flavor: objects.Flavor,
                    image_properties: Optional[Mapping] = None) -> Optional[str]:
    """``hw:pci_numa_affinity_policy``, or the image's when the flavor has none."""
    flavor_policy, image_policy = _Specs(flavor, image_properties).both(PCI_NUMA_POLICY)
    if flavor_policy and image_policy and flavor_policy != image_policy:
        raise _conflict('hw:' + PCI_NUMA_POLICY, flavor_policy,
                        'hw_' + PCI_NUMA_POLICY, image_policy,
                        'the two must agree')
    return flavor_policy or image_policy


def pci_extra_specs(flavor: objects.Flavor,
                    image_properties: Optional[Mapping] = None) -> dict:
    """The flavor's extra specs with the merged PCI NUMA affinity policy."""
    specs = dict(flavor.extra_specs or {})
    policy = pci_numa_policy(flavor, image_properties)
    if policy:
        specs['hw:' + PCI_NUMA_POLICY] = policy
    return specs
