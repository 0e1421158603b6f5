"""Records rebuilt from placement's allocations and libvirt's domains:
each holds exactly what placement holds, and what cannot be rebuilt is
named."""

import uuid

from nova_rt import objects
from nova_rt.compute import rebuild
from nova_rt.compute import recovery
from nova_rt.compute import reporter
from nova_rt.compute import store as store_mod
from nova_rt.compute import tracker as tracker_mod
from nova_rt.compute import usage
from tests.unit.compute.recovery_fakes import HOST, ROOT, consumer, domain, sources

FLAVOR = objects.Flavor(name='m1.small', vcpus=2, memory_mb=512, root_gb=10,
                        ephemeral_gb=0, swap=0)


def test_flavor_holds_exactly_what_placement_holds():
    cases = [{'VCPU': 2, 'MEMORY_MB': 512, 'DISK_GB': 10},
             {'VCPU': 1, 'MEMORY_MB': 128},
             {'PCPU': 4, 'MEMORY_MB': 4096, 'DISK_GB': 20},
             {'PCPU': 2, 'VCPU': 1, 'MEMORY_MB': 1024},
             {'MEMORY_MB': 64, 'CUSTOM_GOLD': 3},
             {'VCPU': 1}]
    for held in cases:
        flavor, volume_backed, _ = rebuild.flavor_for(held, None)
        assert usage.flavor_resources(flavor, volume_backed) == held, held
    flavor, volume_backed, where = rebuild.flavor_for(
        {'VCPU': 2, 'MEMORY_MB': 512}, FLAVOR)
    assert (flavor.name, volume_backed) == ('m1.small', True)
    assert 'Nova metadata' in where
    flavor, _, where = rebuild.flavor_for({'VCPU': 3, 'MEMORY_MB': 512}, FLAVOR)
    assert flavor.name == 'recovered-3vcpu-512mb-0gb' and 'synthesised' in where


NOVA_XML = """<domain type='kvm'><name>instance-0001</name>
<uuid>{uuid}</uuid><metadata>
<nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
  <nova:name>web-1</nova:name>
  <nova:flavor name="m1.small"><nova:memory>512</nova:memory>
    <nova:disk>10</nova:disk><nova:swap>0</nova:swap>
    <nova:ephemeral>0</nova:ephemeral><nova:vcpus>2</nova:vcpus></nova:flavor>
  <nova:owner><nova:user uuid="u-9">alice</nova:user>
    <nova:project uuid="p-9">demo</nova:project></nova:owner>
</nova:instance></metadata></domain>"""


def test_nova_metadata_of_a_domain():
    found = rebuild.nova_metadata(NOVA_XML.format(uuid=uuid.uuid4()))
    assert found == rebuild.NovaMetadata(flavor=FLAVOR, project_id='p-9',
                                         user_id='u-9')
    assert rebuild.nova_metadata('<domain><name>x</name></domain>') is None
    assert rebuild.nova_metadata('<not xml') is None


def test_rebuilt_store_loads_and_reports_the_same_allocations(tmp_path):
    plain = consumer({'VCPU': 2, 'MEMORY_MB': 512, 'DISK_GB': 10})
    stopped = consumer({'VCPU': 1, 'MEMORY_MB': 128, 'DISK_GB': 1}, 'p2', 'u2')
    building = consumer({'VCPU': 1, 'MEMORY_MB': 256})
    found = sources([plain, stopped, building],
                    [domain(plain.uuid), domain(stopped.uuid, 'shutoff', 1, 128),
                     domain(str(uuid.uuid4()))])
    recovered = rebuild.plan(found, now=0)
    assert recovered.complete
    assert len(recovered.records) == 3
    assert recovered.meta[reporter.ROOT_UUID_KEY] == ROOT
    assert recovered.meta[reporter.RATIOS_KEY] == {
        'VCPU': 4.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}
    assert any('placement has no allocation for it' in n for n in recovered.not_rebuilt)
    assert any(n.startswith('flavors:') for n in recovered.not_rebuilt)
    assert any(n.startswith('migrations:') for n in recovered.not_rebuilt)

    path = str(tmp_path / 'compute.sqlite')
    recovery.write(path, recovered)
    store = store_mod.ClaimStore(path)
    config = tracker_mod.TrackerConfig(host=HOST, node=HOST,
                                       reserved_host_memory_mb=0)
    rt = tracker_mod.ResourceTracker(config, store)
    rt.load()
    _, view = rt.placement_view()
    assert {c: (a['project_id'], a['user_id'], a['resources'])
            for c, a in view['allocations'].items()} == {
        c.uuid: (c.project_id, c.user_id, c.resources[ROOT])
        for c in (plain, stopped, building)}
    state = rt.get_host_state()
    assert sorted(state['instances']) == sorted(
        c.uuid for c in (plain, stopped, building))
    assert state['vcpus_used'] == 4 and state['memory_mb_used'] == 896
    states = {r.uuid: r.instance.vm_state for r in recovered.records}
    assert states == {plain.uuid: 'active', stopped.uuid: 'stopped',
                      building.uuid: 'active'}


def test_owner_and_flavor_from_nova_metadata_over_rpc():
    held = {'VCPU': 2, 'MEMORY_MB': 512, 'DISK_GB': 10}
    found = consumer(held, project=None, user=None)
    nova = {found.uuid: rebuild.NovaMetadata(FLAVOR, 'p-9', 'u-9')}
    recovered = rebuild.plan(sources([found], [domain(found.uuid)],
                                     listed_all=False, nova=nova))
    inst = recovered.records[0].instance
    assert (inst.project_id, inst.user_id, inst.flavor) == ('p-9', 'u-9', FLAVOR)
    anonymous = consumer(held, project=None, user=None)
    recovered = rebuild.plan(sources([anonymous], [domain(anonymous.uuid)],
                                     listed_all=False))
    inst = recovered.records[0].instance
    assert inst.project_id == rebuild.UNKNOWN_OWNER
    assert any('nothing says who owns it' in n for n in recovered.not_rebuilt)


def test_consumers_not_found_make_the_plan_partial():
    found = consumer({'VCPU': 1, 'MEMORY_MB': 128})
    recovered = rebuild.plan(sources(
        [found], listed_all=False,
        usages={'VCPU': 3, 'MEMORY_MB': 640, 'DISK_GB': 5}))
    assert not recovered.complete
    assert recovered.missing == {'VCPU': 2, 'MEMORY_MB': 512, 'DISK_GB': 5}
    assert any('[placement_database] connection' in n
               for n in recovered.not_rebuilt)


def test_what_cannot_be_rebuilt_is_named():
    pinned = consumer({'PCPU': 2, 'MEMORY_MB': 1024})
    passthrough = consumer({'VCPU': 1, 'MEMORY_MB': 128})
    child = str(uuid.uuid4())
    passthrough.resources[child] = {'CUSTOM_PCI_8086_10ED': 1}
    recovered = rebuild.plan(sources(
        [pinned, passthrough],
        [domain(pinned.uuid, cpu_pinning={0: frozenset({4}), 1: frozenset({5})},
                hugepage_kb=2048, memory_mb=1024),
         domain(passthrough.uuid, vcpus=1, memory_mb=128,
                hostdev_addresses=('0000:81:10.0',))]))
    notes = '\n'.join(recovered.not_rebuilt)
    assert f'instance {pinned.uuid}: its NUMA placement is not rebuilt ' \
           '(pinned to host CPUs [4, 5], 2048 KiB pages)' in notes
    assert f'instance {passthrough.uuid}: its PCI devices are not rebuilt ' \
           '(its domain uses 0000:81:10.0)' in notes
    assert 'removes its allocations on PCI providers' in notes
    flavors = {r.uuid: r.instance.flavor for r in recovered.records}
    assert flavors[pinned.uuid].extra_specs == {'hw:cpu_policy': 'dedicated'}


