"""The placement reporter against a fake of our own PlacementAPI interface.

The fake keeps placement's rules that matter to the reporter (generations,
full versus partial allocation writes, unknown providers); the functional
tests run the same reporter against the real placement service.
"""

import pytest

from nova_rt import exception
from nova_rt.compute import ratios as ratios_mod
from nova_rt.compute import reporter as reporter_mod


class MessagingTimeout(Exception):
    """Stands for oslo.messaging's timeout when RabbitMQ is away."""


class FakePlacement:
    def __init__(self):
        self.providers = {}       # uuid -> dict with generation
        self.allocations = {}     # consumer -> {rp: {rc: n}}
        self.calls = []
        self.down = False
        self.heartbeats = []

    def _record(self, name, kwargs):
        if self.down:
            raise MessagingTimeout('no reply')
        self.calls.append((name, kwargs))

    def report_provider_tree(self, ctx, host, providers):
        self._record('report_provider_tree', dict(host=host, providers=providers))
        for p in providers:
            current = self.providers.get(p['uuid'])
            have = None if current is None else current['generation']
            if p['generation'] != have:
                raise exception.ResourceProviderGenerationConflict(
                    uuid=p['uuid'], expected=p['generation'], current=have)
        for p in providers:
            gen = 0 if p['uuid'] not in self.providers else \
                self.providers[p['uuid']]['generation'] + 1
            self.providers[p['uuid']] = dict(p, generation=gen, host=host)
        return {u: p['generation'] for u, p in self.providers.items()}

    def report_allocations(self, ctx, host, root_uuid, generation, allocations, full):
        self._record('report_allocations', dict(allocations=allocations, full=full,
                                                generation=generation))
        if self.providers[root_uuid]['generation'] != generation:
            raise exception.ResourceProviderGenerationConflict(
                uuid=root_uuid, expected=generation,
                current=self.providers[root_uuid]['generation'])
        if full:
            self.allocations = {}
        for consumer, alloc in allocations.items():
            if alloc['resources']:
                self.allocations[consumer] = alloc['resources']
            else:
                self.allocations.pop(consumer, None)
        self.providers[root_uuid]['generation'] += 1
        return {root_uuid: self.providers[root_uuid]['generation']}

    def list_resource_providers(self, ctx, in_tree=None, **kw):
        self._record('list_resource_providers', {'in_tree': in_tree})
        return [dict(p) for p in self.providers.values()]

    def get_resource_provider(self, ctx, uuid):
        self._record('get_resource_provider', {'uuid': uuid})
        if uuid not in self.providers:
            raise exception.ResourceProviderNotFound(uuid=uuid)
        return self.providers[uuid]

    def heartbeat(self, ctx, host, root_uuid, sent_at):
        self._record('heartbeat', {})
        self.heartbeats.append((host, root_uuid, sent_at))


class MetaStore:
    def __init__(self):
        self.meta = {}

    def get_meta(self, key, default=None):
        return self.meta.get(key, default)

    def set_meta(self, key, value):
        self.meta[key] = value


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def inv(total, ratio=1.0):
    return {'total': total, 'reserved': 0, 'min_unit': 1, 'max_unit': total,
            'step_size': 1, 'allocation_ratio': ratio}


def view(allocations=None, vcpus=8, pci=()):
    return {'node': 'h1',
            'inventories': {'VCPU': inv(vcpus, 4.0), 'MEMORY_MB': inv(4096)},
            'traits': ['HW_CPU_X86_AVX2'],
            'pci_providers': list(pci),
            'allocations': allocations or {}}


def alloc(vcpu=1, mem=128):
    return {'project_id': 'p1', 'user_id': 'u1',
            'resources': {'VCPU': vcpu, 'MEMORY_MB': mem}}


@pytest.fixture
def placement():
    return FakePlacement()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store():
    return MetaStore()


@pytest.fixture
def reporter(placement, store, clock):
    return reporter_mod.PlacementReporter(placement, store, 'h1',
                                          full_refresh_interval=300, clock=clock)


def names(placement):
    return [c[0] for c in placement.calls]


def test_root_uuid_is_generated_once_and_kept(store, placement):
    first = reporter_mod.PlacementReporter(placement, store, 'h1')
    second = reporter_mod.PlacementReporter(placement, store, 'h1')
    assert first.root_uuid == second.root_uuid == store.meta['root_provider_uuid']


def test_first_report_is_full_with_node_traits(reporter, placement):
    assert reporter.report(1, view({'i1': alloc()}))
    root = placement.providers[reporter.root_uuid]
    assert root['name'] == 'h1' and root['parent_uuid'] is None
    assert 'COMPUTE_NODE' in root['traits'] and 'HW_CPU_X86_AVX2' in root['traits']
    assert root['inventories']['VCPU']['allocation_ratio'] == 4.0
    assert placement.allocations == {'i1': {reporter.root_uuid: {'VCPU': 1, 'MEMORY_MB': 128}}}
    assert placement.calls[-1][1]['full'] is True


def test_idle_audit_sends_nothing(reporter, placement, clock):
    reporter.report(1, view({'i1': alloc()}))
    before = len(placement.calls)
    clock.now += 60
    assert reporter.report(1, view({'i1': alloc()})) is False
    assert len(placement.calls) == before


def test_only_changed_consumers_are_sent(reporter, placement, clock):
    reporter.report(1, view({'i1': alloc(), 'i2': alloc(2)}))
    placement.calls.clear()
    clock.now += 10
    assert reporter.report(2, view({'i1': alloc(), 'i3': alloc(4)}))
    # Inventory unchanged: no provider tree write, one partial allocation write.
    assert names(placement) == ['report_allocations']
    sent = placement.calls[0][1]
    assert sent['full'] is False
    assert set(sent['allocations']) == {'i2', 'i3'}
    assert sent['allocations']['i2']['resources'] == {}
    assert set(placement.allocations) == {'i1', 'i3'}


def test_full_replace_after_refresh_interval(reporter, placement, clock):
    reporter.report(1, view({'i1': alloc()}))
    placement.allocations['leaked'] = {reporter.root_uuid: {'VCPU': 3}}
    placement.calls.clear()
    clock.now += 301
    assert reporter.report(1, view({'i1': alloc()}))
    assert placement.calls[-1][1]['full'] is True
    assert set(placement.allocations) == {'i1'}


def test_generation_conflict_refreshes_and_retries(reporter, placement, clock):
    reporter.report(1, view())
    # Someone else (an operator setting traits) bumped the generation.
    placement.providers[reporter.root_uuid]['generation'] += 5
    clock.now += 1
    assert reporter.report(2, view({'i1': alloc()}))
    assert 'list_resource_providers' in names(placement)
    assert placement.allocations == {'i1': {reporter.root_uuid: {'VCPU': 1, 'MEMORY_MB': 128}}}


def test_persistent_conflicts_give_up_after_bounded_retries(store, clock):
    class AlwaysConflict(FakePlacement):
        def report_allocations(self, ctx, **kw):
            self._record('report_allocations', kw)
            raise exception.ResourceProviderGenerationConflict(
                uuid='x', expected=1, current=2)

    placement = AlwaysConflict()
    reporter = reporter_mod.PlacementReporter(placement, store, 'h1',
                                              max_conflict_retries=2, clock=clock)
    assert reporter.report(1, view({'i1': alloc()})) is False
    assert names(placement).count('report_allocations') == 3
    assert reporter.pending


def test_placement_down_keeps_latest_view_and_sends_it_later(reporter, placement, clock):
    reporter.report(1, view({'i1': alloc()}))
    placement.down = True
    for version in range(2, 50):
        clock.now += 1
        assert reporter.report(version, view({'i1': alloc(), f'i{version}': alloc()})) is False
    assert reporter.pending
    # Only the latest view is kept, not a queue of 48.
    assert reporter._latest[0] == 49
    placement.down = False
    clock.now += 1
    assert reporter.report()
    assert set(placement.allocations) == {'i1', 'i49'}
    assert placement.calls[-1][1]['full'] is True
    assert not reporter.pending


def test_restart_with_unknown_generations_reads_them_first(store, placement, clock):
    first = reporter_mod.PlacementReporter(placement, store, 'h1', clock=clock)
    first.report(1, view({'i1': alloc()}))
    second = reporter_mod.PlacementReporter(placement, store, 'h1', clock=clock)
    assert second.report(1, view({'i1': alloc()}))
    assert len(placement.providers) == 1


def test_pci_child_providers_only_when_enabled(placement, store, clock):
    pci = [{'name': 'h1_0000:81:00.0', 'inventories': {'CUSTOM_NIC': inv(4)},
            'traits': ['CUSTOM_PHYSNET1']}]
    allocs = {'i1': {'project_id': 'p', 'user_id': 'u',
                     'resources': {'VCPU': 1, 'CUSTOM_NIC': 1}}}
    off = reporter_mod.PlacementReporter(placement, store, 'h1', clock=clock)
    off.report(1, view(allocs, pci=pci))
    assert list(placement.providers) == [off.root_uuid]

    placement2 = FakePlacement()
    on = reporter_mod.PlacementReporter(placement2, MetaStore(), 'h1',
                                        report_pci=True, clock=clock)
    on.report(1, view(allocs, pci=pci))
    child = reporter_mod.pci_provider_uuid(on.root_uuid, 'h1_0000:81:00.0')
    assert placement2.providers[child]['parent_uuid'] == on.root_uuid
    assert placement2.allocations['i1'] == {on.root_uuid: {'VCPU': 1},
                                            child: {'CUSTOM_NIC': 1}}
    # Parents are sent before their children.
    sent = [p['uuid'] for p in placement2.calls[1][1]['providers']]
    assert sent.index(on.root_uuid) < sent.index(child)


@pytest.mark.parametrize('configured, placement_has, expected', [
    ({'VCPU': 2.0, 'MEMORY_MB': None, 'DISK_GB': None}, None,
     {'VCPU': 2.0, 'MEMORY_MB': 1.5, 'DISK_GB': 1.0}),
    ({'VCPU': None, 'MEMORY_MB': None, 'DISK_GB': None},
     {'VCPU': 8.0, 'MEMORY_MB': 1.0, 'DISK_GB': 3.0},
     {'VCPU': 8.0, 'MEMORY_MB': 1.0, 'DISK_GB': 3.0}),
    ({'VCPU': 16.0, 'MEMORY_MB': None, 'DISK_GB': None},
     {'VCPU': 8.0, 'MEMORY_MB': 1.0, 'DISK_GB': 3.0},
     {'VCPU': 16.0, 'MEMORY_MB': 1.0, 'DISK_GB': 3.0}),
])
def test_allocation_ratio_rule(configured, placement_has, expected):
    initial = {'VCPU': 4.0, 'MEMORY_MB': 1.5, 'DISK_GB': 1.0}
    assert ratios_mod.effective(configured, initial, placement_has) == expected


def test_resolve_ratios_reads_placement_for_unset_options(reporter, placement, store):
    unset = {'VCPU': None, 'MEMORY_MB': None, 'DISK_GB': None}
    initial = {'VCPU': 4.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}
    # New provider: initial values.
    assert reporter.resolve_ratios(unset, initial)['VCPU'] == 4.0
    reporter.report(1, view())
    placement.providers[reporter.root_uuid]['inventories']['VCPU']['allocation_ratio'] = 7.0
    assert reporter.resolve_ratios(unset, initial)['VCPU'] == 7.0
    assert store.meta['allocation_ratios']['VCPU'] == 7.0
    # Placement away: the last known ratios stay.
    placement.down = True
    assert reporter.resolve_ratios(unset, initial)['VCPU'] == 7.0


def test_heartbeat_failure_is_not_raised(reporter, placement):
    assert reporter.heartbeat()
    assert placement.heartbeats[0][:2] == ('h1', reporter.root_uuid)
    placement.down = True
    assert reporter.heartbeat() is False


def test_error_name_strips_remote_suffix():
    remote = type('InvalidInput_Remote', (exception.InvalidInput,), {})
    assert reporter_mod.error_name(remote(reason='x')) == 'InvalidInput'

    class RemoteError(Exception):
        exc_type = 'ResourceProviderGenerationConflict'
    assert reporter_mod.error_name(RemoteError()) == 'ResourceProviderGenerationConflict'
