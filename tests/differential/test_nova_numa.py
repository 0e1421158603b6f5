"""Differential test: our NUMA vocabulary and fit against Nova 34's.

Random flavors and images over the whole vocabulary (cpu, thread and
emulator policies, masks, realtime, NUMA nodes and asymmetric layouts, page
sizes, resources:VCPU/PCPU, the hyperthreading trait), on random hosts
(1-4 cells, with and without SMT, shared and dedicated CPUs, page pools) in
random states of use, are judged by both sides:

- Nova end to end: ``numa_get_constraints`` (what the API refuses), the
  scheduler's ``ResourceRequest`` (VCPU/PCPU amounts and the
  HW_CPU_HYPERTHREADING trait that the host must have or lack), then
  ``numa_fit_instance_to_host`` with the allocation ratios as limits.
- Ours: ``constraints.numa_request``, ``usage.flavor_resources`` and
  ``numa.fit_instance``.

They must agree on: refused as invalid or not; NUMA topology or none; the
VCPU/PCPU amounts; fit or no fit; where both fit, the per-guest-node counts
(vCPUs, pinned vCPUs, emulator CPUs, memory) as a multiset (Nova 34 sorts the
host cells by free memory and usage first, so the cells chosen may differ);
and, replayed on the host cells we chose, Nova must accept our assignment
with the same page sizes.

Nova is only importable in its own environment (``tox -e nova-differential``);
elsewhere this module is skipped.  As a command it runs N cases and prints
the disagreements::

    python -m tests.differential.test_nova_numa --cases 5000 --seed 1
"""

from __future__ import annotations

import argparse
import collections
import copy
import random
import sys

import pytest

if __name__ != '__main__':
    pytest.importorskip('nova')

from nova import exception as nova_exception  # noqa: E402
from nova import objects as nova_objects  # noqa: E402
from nova.scheduler import utils as nova_scheduler_utils  # noqa: E402
from nova.virt import hardware as nova_hardware  # noqa: E402

from nova_rt import exception  # noqa: E402
from nova_rt import objects  # noqa: E402
from nova_rt.compute import usage as usage_mod  # noqa: E402
from nova_rt.hardware import numa  # noqa: E402
from tests.unit.hardware import hosts  # noqa: E402

nova_objects.register_all()

PAGE_SIZES = ['small', 'large', 'any', '4', '2048', '1048576', '2MB', '1GB', '16384']


# --- random cases ---------------------------------------------------------------

def random_host(rng: random.Random):
    """(libvirt cells, tracker cells, usage) of a random host in a random state."""
    threads = rng.choice([1, 1, 2, 2, 4])
    one_thread_dedicated = threads > 1 and rng.random() < 0.2

    def role_of(cell_id, core):
        if one_thread_dedicated:
            return 'first'
        role = rng.random()
        return 'dedicated' if role < 0.6 else 'shared' if role < 0.95 else None

    cores = [rng.randint(2, 6) for _ in range(rng.choice([1, 2, 2, 3, 4]))]
    siblings, shared, dedicated = hosts.smt_cpus(cores, threads, role_of)
    libvirt_cells = []
    for cell_id, cell_siblings in enumerate(siblings):
        memory_mb = rng.choice([1024, 2048, 4096, 8192])
        huge_1g = rng.choice([0, 0, 1, 2]) if memory_mb >= 4096 else 0
        huge_2m = rng.choice([0, 0, 128, 512])
        small_mb = memory_mb - huge_1g * 1024 - huge_2m * 2
        pools = [objects.MemPagePool(4, small_mb * 256, reserved=rng.choice([0, 0, 2560]))]
        pools.append(objects.MemPagePool(2048, huge_2m, reserved=rng.choice([0, 0, 8])
                                         if huge_2m else 0))
        if huge_1g:
            pools.append(objects.MemPagePool(1048576, huge_1g))
        if rng.random() < 0.1:
            pools = []          # a host that reports no page pools
        libvirt_cells.append(hosts.libvirt_cell(cell_id, cell_siblings, memory_mb, pools))
    cells = numa.host_cells(libvirt_cells, shared, dedicated)
    usage = {}
    for cell in cells:
        used = numa.CellUsage()
        pcpus = sorted(cell.pcpuset)
        used.pinned_cpus = set(rng.sample(pcpus, rng.choice(
            [0, 0, rng.randint(0, len(pcpus) // 2), rng.randint(0, len(pcpus))])))
        used.cpu_usage = rng.randint(0, len(cell.cpuset) * 3)
        paged_mb = 0
        for pool in cell.mempages:
            if pool.size_kb == 4:
                pages = rng.choice([0, 0, 256 * rng.randint(0, 512)])
            else:
                pages = rng.randint(0, max(0, pool.total - pool.reserved))
            pages = min(pages, max(0, pool.total - pool.reserved))
            if pool.size_kb == 4:
                pages -= pages % 256
            if pages:
                used.pages_used[pool.size_kb] = pages
                paged_mb += pages * pool.size_kb // 1024
        small_mb = next((p.total * p.size_kb // 1024 for p in cell.mempages
                         if p.size_kb == 4), cell.memory_mb)
        unpaged = rng.choice([0, 0, rng.randint(0, max(0, small_mb - paged_mb))])
        used.memory_usage_mb = paged_mb + unpaged
        usage[cell.id] = used
    return libvirt_cells, cells, usage


def _mask(rng, vcpus):
    if rng.random() < 0.1:
        return rng.choice(['', 'x', f'0-{vcpus}', f'^0-{vcpus - 1}'])
    pinned = sorted(rng.sample(range(vcpus), rng.randint(1, max(1, vcpus - 1))))
    if rng.random() < 0.5:
        rest = [c for c in range(vcpus) if c not in pinned]
        return '^' + ','.join(map(str, rest)) if rest else ','.join(map(str, pinned))
    return ','.join(map(str, pinned))


def _layout(rng, vcpus, memory_mb, nodes, prefix, sep):
    """hw:numa_cpus.K / hw:numa_mem.K (or the image's), mostly valid."""
    order = list(range(vcpus))
    rng.shuffle(order)
    cuts = sorted(rng.sample(range(1, vcpus), nodes - 1)) if vcpus >= nodes > 1 else []
    bounds = [0] + cuts + [vcpus]
    memory = [memory_mb // nodes] * nodes
    memory[-1] += memory_mb - sum(memory)
    specs = {}
    for node in range(nodes):
        specs[f'{prefix}{sep}numa_cpus.{node}'] = ','.join(
            map(str, sorted(order[bounds[node]:bounds[node + 1]]))) if node < len(
                bounds) - 1 else '0'
        specs[f'{prefix}{sep}numa_mem.{node}'] = str(memory[node])
    if rng.random() < 0.15:
        key = rng.choice(sorted(specs))
        specs[key] = rng.choice(['0', '1', '5-7', str(int(specs[key].split(',')[0]) + 1)
                                 if 'mem' in key else '0-1'])
    if rng.random() < 0.05:
        specs.pop(rng.choice(sorted(specs)))
    return specs


def random_request(rng: random.Random):
    """(flavor, image properties) over Nova's vocabulary."""
    nodes = rng.choice([None, None, None, 1, 2, 2, 2, 3, 4])
    vcpus = rng.randint(1, 8)
    memory_mb = rng.choice([256, 512, 1024, 1536, 2048, 3072, 4096])
    if nodes and rng.random() < 0.85:
        # Mostly an even split, which hw:numa_nodes alone needs.
        vcpus = nodes * rng.randint(1, max(1, 8 // nodes))
        memory_mb = nodes * rng.choice([128, 256, 512, 1024])
    specs, image = {}, {}
    policy = rng.choice([None, None, 'shared', 'dedicated', 'dedicated', 'dedicated',
                         'mixed', 'mixed', 'mixed'])
    if policy:
        specs['hw:cpu_policy'] = policy
    if rng.random() < 0.1:
        image['hw_cpu_policy'] = rng.choice(['shared', 'dedicated', 'mixed'])
    if policy == 'mixed' and vcpus == 1 and rng.random() < 0.9:
        policy = specs['hw:cpu_policy'] = 'dedicated'
    if policy == 'mixed' or rng.random() < 0.03:
        if rng.random() < 0.95:
            specs['hw:cpu_dedicated_mask'] = _mask(rng, vcpus)
    if rng.random() < 0.04:
        specs['hw:cpu_realtime'] = 'yes'
        if rng.random() < 0.7:
            specs['hw:cpu_realtime_mask'] = _mask(rng, vcpus)
    pinned = policy in ('dedicated', 'mixed')
    if rng.random() < (0.5 if pinned else 0.03):
        specs['hw:cpu_thread_policy'] = rng.choice(['prefer', 'isolate', 'require'])
    if rng.random() < 0.08:
        image['hw_cpu_thread_policy'] = rng.choice(['prefer', 'isolate', 'require'])
    if rng.random() < (0.35 if pinned else 0.03):
        specs['hw:emulator_threads_policy'] = rng.choice(['share', 'isolate', 'isolate'])
    if nodes:
        if rng.random() < 0.9:
            specs['hw:numa_nodes'] = str(nodes)
        else:
            image['hw_numa_nodes'] = str(nodes)
        if rng.random() < 0.4:
            if rng.random() < 0.8:
                specs.update(_layout(rng, vcpus, memory_mb, nodes, 'hw', ':'))
            else:
                image.update(_layout(rng, vcpus, memory_mb, nodes, 'hw', '_'))
    if rng.random() < 0.03:
        image['hw_numa_nodes'] = str(rng.randint(1, 2))
    if rng.random() < 0.35:
        specs['hw:mem_page_size'] = rng.choice(PAGE_SIZES)
    if rng.random() < 0.06:
        image['hw_mem_page_size'] = rng.choice(PAGE_SIZES)
    if rng.random() < (0.3 if policy is None else 0.02):
        emulator = int(specs.get('hw:emulator_threads_policy') == 'isolate')
        specs['resources:PCPU'] = str(vcpus + emulator + rng.choice([0, 0, 0, 1]))
    elif rng.random() < (0.1 if policy is None else 0.01):
        specs['resources:VCPU'] = str(rng.randint(1, vcpus))
    if rng.random() < 0.05:
        specs['trait:HW_CPU_HYPERTHREADING'] = rng.choice(['required', 'forbidden'])
    if rng.random() < 0.03:
        image['trait:HW_CPU_HYPERTHREADING'] = 'required'
    flavor = objects.Flavor(name='f', vcpus=vcpus, memory_mb=memory_mb, root_gb=1,
                            ephemeral_gb=0, swap=0, extra_specs=specs)
    return flavor, image


# --- the two sides --------------------------------------------------------------

Outcome = collections.namedtuple('Outcome', 'invalid topology cpu_resources fits cells')


def _cell_counts(cells) -> list:
    return sorted(cells)


def ours(flavor, image, libvirt_cells, cells, usage, ratios) -> Outcome:
    try:
        request = numa.request_for(flavor, image)
        resources = usage_mod.flavor_resources(flavor, False, image)
    except exception.InvalidInput:
        return Outcome(True, None, None, None, None)
    cpu_resources = {rc: resources[rc] for rc in ('VCPU', 'PCPU') if rc in resources}
    if request is None:
        return Outcome(False, False, cpu_resources, None, None)
    try:
        topology = numa.fit_instance(request, cells, usage, *ratios,
                                     host_smt=numa.host_has_smt(libvirt_cells))
    except numa.NumaFitError:
        return Outcome(False, True, cpu_resources, False, None)
    return Outcome(False, True, cpu_resources, True, topology['cells'])


def nova_host(cells, usage):
    result = []
    for cell in cells:
        used = usage.get(cell.id) or numa.CellUsage()
        pages = []
        smallest = min((p.size_kb for p in cell.mempages), default=None)
        paged_kb = sum(s * n for s, n in used.pages_used.items())
        unpaged_kb = used.memory_usage_mb * 1024 - paged_kb
        for pool in cell.mempages:
            count = used.pages_used.get(pool.size_kb, 0)
            if pool.size_kb == smallest:
                count += unpaged_kb // pool.size_kb
            pages.append(nova_objects.NUMAPagesTopology(
                size_kb=pool.size_kb, total=pool.total, used=count, reserved=pool.reserved))
        result.append(nova_objects.NUMACell(
            id=cell.id, cpuset=set(cell.cpuset), pcpuset=set(cell.pcpuset),
            memory=cell.memory_mb, cpu_usage=used.cpu_usage,
            memory_usage=used.memory_usage_mb, pinned_cpus=set(used.pinned_cpus),
            siblings=[set(s) for s in cell.siblings], mempages=pages,
            network_metadata=nova_objects.NetworkMetadata(physnets=set(), tunneled=False),
            socket=None))
    return nova_objects.NUMATopology(cells=result)


def _nova_cells(nova_cells) -> list:
    cells = []
    for cell in nova_cells:
        pinning = cell.cpu_pinning or {}
        cells.append({'id': cell.id,
                      'cpus': len(cell.cpuset) + len(cell.pcpuset),
                      'pinned': len(pinning),
                      'reserved': len(cell.cpuset_reserved or ()),
                      'memory_mb': cell.memory,
                      'pagesize_kb': cell.pagesize})
    return cells


def _our_cells(cells) -> list:
    return [{'id': c['id'], 'cpus': len(c['cpuset']), 'pinned': len(c.get('cpu_pinning', {})),
             'reserved': len(c.get('cpuset_reserved', ())), 'memory_mb': c['memory_mb'],
             'pagesize_kb': c['pagesize_kb']} for c in cells]


def nova(flavor, image, libvirt_cells, cells, usage, ratios):
    """Nova's outcome, and its instance topology to replay."""
    nova_flavor = nova_objects.Flavor(
        name='f', vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, root_gb=1,
        ephemeral_gb=0, swap=0, extra_specs=dict(flavor.extra_specs))
    try:
        image_meta = nova_objects.ImageMeta.from_dict({'properties': dict(image)})
        requested = nova_hardware.numa_get_constraints(nova_flavor, image_meta)
        spec = nova_objects.RequestSpec(flavor=nova_flavor, image=image_meta, is_bfv=False)
        resource_request = nova_scheduler_utils.ResourceRequest.from_request_spec(spec)
        merged = resource_request.merged_resources()
    except (nova_exception.NovaException, ValueError) as exc:
        return Outcome(True, None, None, None, None), exc
    cpu_resources = {rc: merged[rc] for rc in ('VCPU', 'PCPU') if merged.get(rc)}
    if requested is None:
        return Outcome(False, False, cpu_resources, None, None), None
    required, forbidden = set(), set()
    for group in resource_request._rg_by_id.values():
        required |= group.required_traits
        forbidden |= group.forbidden_traits
    smt = numa.host_has_smt(libvirt_cells)
    ht = 'HW_CPU_HYPERTHREADING'
    if (ht in required and not smt) or (ht in forbidden and smt):
        return Outcome(False, True, cpu_resources, False, None), requested
    limits = nova_objects.NUMATopologyLimits(
        cpu_allocation_ratio=ratios[0], ram_allocation_ratio=ratios[1])
    fitted = nova_hardware.numa_fit_instance_to_host(
        nova_host(cells, usage), copy.deepcopy(requested), None, limits=limits)
    if fitted is None:
        return Outcome(False, True, cpu_resources, False, None), requested
    return Outcome(False, True, cpu_resources, True, fitted.cells), requested


def nova_replay(chosen, usage, requested, ratios):
    """Nova's judgement of one assignment: guest node *i* on ``chosen[i]``.

    With exactly as many host cells as guest nodes Nova does not sort them,
    and the first permutation it tries is this one, on a fresh copy of the
    request: its per-cell rules alone decide.  The fitted cells, or None.
    """
    fitted = nova_hardware.numa_fit_instance_to_host(
        nova_host(chosen, usage), copy.deepcopy(requested), None,
        limits=nova_objects.NUMATopologyLimits(cpu_allocation_ratio=ratios[0],
                                               ram_allocation_ratio=ratios[1]))
    if fitted is None or [c.id for c in fitted.cells] != [c.id for c in chosen]:
        return None
    return fitted.cells


def compare(rng: random.Random) -> list:
    """Run one random case; the kinds of disagreement found (empty: agree).

    ``nova-search`` is not a disagreement: Nova's search refused a guest
    whose placement Nova's own per-cell rules accept (or returned a guest
    cell pinned for another host cell, or not pinned at all), because
    ``numa_fit_instance_to_host`` rewrites each instance cell's id (and page
    size) as it tries it, while its fit caches are keyed by that id; guest
    nodes that are not alike (asymmetric, mixed, emulator threads) then get
    each other's verdicts.
    """
    libvirt_cells, cells, usage = random_host(rng)
    flavor, image = random_request(rng)
    ratios = (rng.choice([1.0, 2.0, 4.0, 16.0]), rng.choice([1.0, 1.5]))
    mine = ours(flavor, image, libvirt_cells, cells, usage, ratios)
    theirs, requested = nova(flavor, image, libvirt_cells, cells, usage, ratios)
    kinds = []
    if mine.invalid != theirs.invalid:
        return ['valid' if theirs.invalid else 'invalid']
    if mine.invalid:
        return ['agree:invalid']
    if mine.topology != theirs.topology:
        return ['topology']
    if mine.cpu_resources != theirs.cpu_resources:
        kinds.append('resources')
    if not mine.topology:
        return kinds or ['agree:no-topology']
    by_id = {c.id: c for c in cells}
    if mine.fits and not theirs.fits:
        chosen = [by_id[gc['id']] for gc in mine.cells]
        if theirs.cells is None and nova_replay(chosen, usage, requested, ratios):
            return kinds + ['nova-search']
        return kinds + ['fit']
    if theirs.fits and not mine.fits:
        chosen = [by_id[c.id] for c in theirs.cells]
        if nova_replay(chosen, usage, requested, ratios) is None:
            return kinds + ['nova-search']
        return kinds + ['no-fit']
    if not mine.fits:
        return kinds or ['agree:no-fit']
    ours_cells, nova_cells = _our_cells(mine.cells), _nova_cells(theirs.cells)

    def counts(cells_):
        return sorted((c['cpus'], c['pinned'], c['reserved'], c['memory_mb']) for c in cells_)

    if counts(ours_cells) != counts(nova_cells):
        # On a cache hit Nova returns the instance cell as an earlier
        # permutation left it (pinned elsewhere, or not at all).
        fresh = nova_replay([by_id[c.id] for c in theirs.cells], usage, requested, ratios)
        if fresh is not None and counts(_nova_cells(fresh)) == counts(ours_cells):
            kinds.append('nova-search')
        else:
            kinds.append('counts')
    # Replay: Nova must accept our assignment, with our page sizes.
    replayed = nova_replay([by_id[gc['id']] for gc in mine.cells], usage, requested, ratios)
    if replayed is None or _nova_cells(replayed) != ours_cells:
        kinds.append('replay')
    return kinds or ['agree:fit']


def run(cases: int, seed: int, show: int = 5) -> collections.Counter:
    tally = collections.Counter()
    shown = 0
    for case in range(cases):
        rng = random.Random(f'{seed}-{case}')
        kinds = compare(rng)
        tally.update(kinds)
        if show and shown < show and not all(k.startswith(AGREEMENTS) for k in kinds):
            shown += 1
            rng = random.Random(f'{seed}-{case}')
            libvirt_cells, cells, usage = random_host(rng)
            flavor, image = random_request(rng)
            print(f'case {case}: {kinds}\n  flavor {flavor.vcpus} vCPUs '
                  f'{flavor.memory_mb} MiB {flavor.extra_specs}\n  image {image}\n'
                  f'  cells {cells}\n  usage {usage}', file=sys.stderr)
    return tally


#: Outcomes that are not disagreements (see :func:`compare`).
AGREEMENTS = ('agree:', 'nova-search')


def disagreements(tally: collections.Counter) -> int:
    return sum(n for kind, n in tally.items() if not kind.startswith(AGREEMENTS))


def test_agrees_with_nova_34():
    tally = run(cases=600, seed=20, show=3)
    assert disagreements(tally) == 0, dict(tally)
    # The generator reaches every outcome.
    assert {'agree:invalid', 'agree:no-topology', 'agree:no-fit', 'agree:fit'} <= set(tally)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', type=int, default=5000)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--show', type=int, default=5,
                        help='how many disagreeing cases to print')
    args = parser.parse_args(argv)
    tally = run(args.cases, args.seed, args.show)
    for kind, count in sorted(tally.items()):
        print(f'{kind:20} {count}')
    print(f'cases: {args.cases}, disagreements: {disagreements(tally)}')
    return 1 if disagreements(tally) else 0


if __name__ == '__main__':
    sys.exit(main())
