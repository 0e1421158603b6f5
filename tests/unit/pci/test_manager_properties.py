"""Random interleavings of claims, frees and hotplug never double-book or lose a device."""

import collections

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from nova_rt import exception
from nova_rt.pci import manager, spec

from tests.unit.pci.helpers import host_devices

UNIVERSE = {d.address: d for d in host_devices()}
ADDRESSES = sorted(UNIVERSE)
SPECS = spec.parse_device_specs(['{"vendor_id": "8086", "product_id": "10ed"}',
                                 '{"vendor_id": "8086", "product_id": "10fb"}',
                                 '{"vendor_id": "10de"}'])
ALIASES = spec.parse_aliases([
    '{"name": "vf", "vendor_id": "8086", "product_id": "10ed"}',
    '{"name": "pf", "device_type": "type-PF"}',
    '{"name": "gpu", "vendor_id": "10de"}'])
INSTANCES = ['i1', 'i2', 'i3']
TRACKED = {a for a, d in UNIVERSE.items() if spec.match_spec(SPECS, d)}


class PciStateMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.tracker = manager.PciDeviceTracker(SPECS)
        self.on_bus = set(ADDRESSES)
        self.tracker.set_devices(UNIVERSE.values())
        self.owner = {}  # address -> claim key, as the caller believes
        self.claims = {}  # claim key -> instance
        self.serial = 0

    @rule(instance=st.sampled_from(INSTANCES),
          wants=st.dictionaries(st.sampled_from(sorted(ALIASES)),
                                st.integers(1, 3), min_size=1, max_size=2),
          nodes=st.one_of(st.none(), st.sets(st.integers(0, 1), min_size=1)),
          policy=st.sampled_from(list(spec.NUMA_POLICIES)))
    def claim_by_request(self, instance, wants, nodes, policy):
        requests = spec.requests_from_alias_counts(wants, ALIASES, policy)
        chosen = self.tracker.select(requests, nodes, {0: 0, 1: 0})
        if chosen is None:
            return
        assert sum(r.count for r in requests) == len(chosen)
        self._allocate(instance, chosen)

    @rule(instance=st.sampled_from(INSTANCES),
          addresses=st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=3))
    def claim_addresses(self, instance, addresses):
        before = self.tracker.to_dict()
        try:
            self._allocate(instance, addresses)
        except exception.ComputeResourcesUnavailable:
            assert self.tracker.to_dict() == before

    def _allocate(self, instance, addresses):
        self.serial += 1
        key = f'{instance}-{self.serial}'
        views = self.tracker.allocate(instance, key, addresses)
        assert sorted(v['address'] for v in views) == sorted(addresses)
        for address in addresses:
            assert address not in self.owner, f'{address} given twice'
            self.owner[address] = key
        self.claims[key] = instance

    @rule(data=st.data())
    def free_claim(self, data):
        if not self.claims:
            return
        key = data.draw(st.sampled_from(sorted(self.claims)))
        freed = self.tracker.free(claim_key=key)
        assert sorted(freed) == sorted(a for a, k in self.owner.items() if k == key)
        self._forget(freed)

    @rule(instance=st.sampled_from(INSTANCES), data=st.data())
    def free_instance_some(self, instance, data):
        held = sorted(a for a, k in self.owner.items() if self.claims[k] == instance)
        some = data.draw(st.lists(st.sampled_from(held), unique=True)) if held else []
        freed = self.tracker.free(instance_uuid=instance, addresses=some)
        assert sorted(freed) == sorted(some)
        self._forget(freed)

    def _forget(self, freed):
        for address in freed:
            del self.owner[address]
        for key in [k for k in self.claims if k not in self.owner.values()]:
            del self.claims[key]

    @rule(address=st.sampled_from(ADDRESSES))
    def unplug(self, address):
        self.on_bus.discard(address)
        self.tracker.handle_event('remove', None, address)

    @rule(address=st.sampled_from(ADDRESSES))
    def plug(self, address):
        self.on_bus.add(address)
        self.tracker.handle_event('add', UNIVERSE[address], address)

    @rule(present=st.sets(st.sampled_from(ADDRESSES)))
    def audit(self, present):
        self.on_bus = set(present)
        self.tracker.set_devices([UNIVERSE[a] for a in sorted(present)])

    @rule()
    def restart(self):
        # As the compute daemon starts: discover the bus, then restore each
        # stored claim's devices.
        held = collections.defaultdict(list)
        for dev in self.tracker.devices():
            if dev['claim_key']:
                held[dev['claim_key']].append(dev)
        claims = self.tracker.claim_keys()
        before = {d['address']: d for d in self.tracker.devices()}
        self.tracker = manager.PciDeviceTracker(SPECS)
        self.tracker.set_devices([UNIVERSE[a] for a in sorted(self.on_bus)])
        for key, devices in held.items():
            assert self.tracker.restore(self.claims[key], key, devices,
                                        claims[key]) == []
        after = {d['address']: d for d in self.tracker.devices()}
        assert {a: (d['status'], d['claim_key']) for a, d in after.items()} == \
            {a: (d['status'], d['claim_key']) for a, d in before.items()}

    @invariant()
    def nothing_lost_nor_shared(self):
        tracked = {d['address']: d for d in self.tracker.devices()}
        for address, key in self.owner.items():
            dev = tracked[address]  # a held device is never dropped
            assert dev['claim_key'] == key
            assert dev['instance_uuid'] == self.claims[key]
            expected = 'claimed' if address in self.on_bus else 'removed'
            assert dev['status'] == expected
        for address, dev in tracked.items():
            if address not in self.owner:
                assert dev['instance_uuid'] is None
                assert dev['status'] in ('available', 'unavailable')
                assert address in self.on_bus
        # Every matching device on the bus is tracked.
        assert self.on_bus & TRACKED <= set(tracked)

    @invariant()
    def pf_and_its_vfs_never_both_taken(self):
        tracked = {d['address']: d for d in self.tracker.devices()}
        for address, dev in tracked.items():
            parent = tracked.get(dev['parent_addr'] or '')
            if parent is None:
                continue
            if dev['instance_uuid'] and parent['instance_uuid']:
                raise AssertionError(f'{address} and its PF both taken')
            if parent['instance_uuid']:
                assert dev['status'] in ('unavailable', 'claimed', 'removed')
            if dev['instance_uuid'] and parent['instance_uuid'] is None:
                assert parent['status'] == 'unavailable'

    @invariant()
    def pools_count_available(self):
        available = sum(1 for d in self.tracker.devices()
                        if d['status'] == 'available')
        assert sum(p['count'] for p in self.tracker.pools()) == available


PciStateMachine.TestCase.settings = settings(max_examples=150,
                                             stateful_step_count=30,
                                             deadline=None)
TestPciStateMachine = PciStateMachine.TestCase
