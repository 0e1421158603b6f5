"""The engine against OpenStack Placement's own expectations: its
``NUMANetworkFixture`` (placement/tests/functional/fixtures/gabbits.py)
built as REST-created providers, and the answers its
``granular-same-subtree.yaml`` expects (counts, providers, mappings), on
SQLite, PostgreSQL and MySQL/MariaDB.

Left out: the fixture's sharing provider ``ss1`` (DISK_GB shared through
aggregate A), which nova_rt does not model; no case here asks for DISK_GB.
"""

import json
import uuid as uuid_mod

import pytest
import sqlalchemy as sa

from nova_rt.placement import candidate_request as creq
from nova_rt.placement import candidates
from nova_rt.placement import common
from nova_rt.placement import db
from nova_rt.placement import models


@pytest.fixture(params=['sqlite', 'postgresql', 'mysql'])
def url(request):
    from tests.functional.placement.conftest import _emptied
    return _emptied(request, request.param)


class _Builder:
    def __init__(self, conn):
        self.conn = conn
        self.ids, self.uuids, self.roots = {}, {}, {}

    def provider(self, name, parent=None, traits=(), aggs=()):
        rp_uuid = str(uuid_mod.uuid4())
        rp_id = self.conn.execute(sa.insert(models.ResourceProvider).values(
            uuid=rp_uuid, name=name, host=None, generation=1,
            parent_provider_id=self.ids.get(parent)).returning(
                models.ResourceProvider.id)).scalar()
        root = self.roots[parent] if parent else rp_id
        self.conn.execute(sa.update(models.ResourceProvider).where(
            models.ResourceProvider.id == rp_id).values(
                root_provider_id=root))
        self.ids[name], self.uuids[name], self.roots[name] = \
            rp_id, rp_uuid, root
        for trait_id in common.ensure_traits(self.conn, traits).values():
            self.conn.execute(sa.insert(models.ProviderTrait).values(
                resource_provider_id=rp_id, trait_id=trait_id))
        for agg_id in common.ensure_aggregates(self.conn, aggs).values():
            self.conn.execute(sa.insert(models.ProviderAggregate).values(
                resource_provider_id=rp_id, aggregate_id=agg_id))

    def inventory(self, name, rc, total, min_unit=1, max_unit=None,
                  step_size=1, used=0):
        self.conn.execute(sa.insert(models.Inventory).values(
            resource_provider_id=self.ids[name],
            root_provider_id=self.roots[name], resource_class=rc,
            total=total, reserved=0, min_unit=min_unit,
            max_unit=max_unit or total, step_size=step_size,
            allocation_ratio=1.0, capacity=total, used=used))


@pytest.fixture
def numa_network(url):
    """Placement's NUMANetworkFixture (less ss1): provider name -> uuid."""
    agg_a = str(uuid_mod.uuid4())
    with db.get_engine(url).begin() as conn:
        b = _Builder(conn)
        b.provider('cn1', traits=['COMPUTE_VOLUME_MULTI_ATTACH'],
                   aggs=[agg_a])
        b.provider('numa0', 'cn1', ['HW_NUMA_ROOT'])
        b.provider('numa1', 'cn1', ['HW_NUMA_ROOT', 'CUSTOM_FOO'])
        for numa in ('numa0', 'numa1'):
            b.inventory(numa, 'VCPU', 4, used=2 if numa == 'numa0' else 0)
        b.inventory('numa0', 'MEMORY_MB', 2048, min_unit=512, step_size=256)
        b.inventory('numa1', 'MEMORY_MB', 2048, min_unit=256, max_unit=1024)
        b.provider('fpga0', 'numa0')
        b.inventory('fpga0', 'FPGA', 1)
        b.provider('pgpu0', 'numa0')
        b.inventory('pgpu0', 'VGPU', 8)
        for i in (0, 1):
            b.provider(f'fpga1_{i}', 'numa1')
            b.inventory(f'fpga1_{i}', 'FPGA', 1)
        b.provider('sriov_agent', 'cn1', ['CUSTOM_VNIC_TYPE_DIRECT'])
        for i in (1, 2):
            b.provider(f'esn{i}', 'sriov_agent', [f'CUSTOM_PHYSNET{i}'])
            b.inventory(f'esn{i}', 'NET_BW_EGR_KILOBIT_PER_SEC', 10000 * i)
        b.provider('ovs_agent', 'cn1', ['CUSTOM_VNIC_TYPE_NORMAL'])
        b.provider('br_int', 'ovs_agent', ['CUSTOM_PHYSNET0'])
        b.inventory('br_int', 'NET_BW_EGR_KILOBIT_PER_SEC', 1000)
        b.provider('cn2', traits=['CUSTOM_FOO'], aggs=[agg_a])
        b.inventory('cn2', 'VCPU', 8, used=3)
        b.inventory('cn2', 'MEMORY_MB', 2048, min_unit=1024, step_size=128)
        b.inventory('cn2', 'DISK_GB', 1000)
        for i in (1, 2, 3):
            b.provider(f'nic{i}', 'cn2', ['CUSTOM_HW_NIC_ROOT'])
        for i in (1, 2):
            b.provider(f'pf1_{i}', 'nic1', [f'CUSTOM_PHYSNET{i}'])
            b.inventory(f'pf1_{i}', 'CUSTOM_VF', 4)
        for i in range(4):
            b.provider(f'pf2_{i + 1}', 'nic2', [f'CUSTOM_PHYSNET{i % 2 + 1}'])
            b.inventory(f'pf2_{i + 1}', 'CUSTOM_VF', 2)
        b.provider('pf3_1', 'nic3', ['CUSTOM_PHYSNET1'])
        b.inventory('pf3_1', 'CUSTOM_VF', 8)
    return b.uuids


def ask(url, query, version=(1, 36)):
    with db.get_engine(url).begin() as conn:
        return json.loads(candidates.encoded_allocation_candidates(
            conn, creq.parse(query, version), version, heartbeat_timeout=60))


def _named(body, names):
    """Each request as sorted [(provider name, {class: amount})]."""
    by_uuid = {u: n for n, u in names.items()}
    return sorted((sorted(((by_uuid[u], r['resources'])
                           for u, r in a['allocations'].items()),
                          key=lambda item: item[0])
                   for a in body['allocation_requests']), key=repr)


def _amounts(body, names, name, rc):
    return sorted(
        a['allocations'][names[name]]['resources'][rc]
        for a in body['allocation_requests']
        if rc in a['allocations'].get(names[name], {}).get('resources', {}))


def test_no_resourceless_with_and_without_same_subtree(url, numa_network):
    n = numa_network
    q = [('resources_COMPUTE', 'VCPU:1'), ('resources_ACCEL', 'FPGA:1'),
         ('group_policy', 'none')]
    body = ask(url, q)
    assert len(body['allocation_requests']) == 6
    assert _amounts(body, n, 'numa0', 'VCPU') == [1, 1, 1]
    assert _amounts(body, n, 'fpga1_1', 'FPGA') == [1, 1]
    assert len(ask(url, q + [('same_subtree', '_COMPUTE')])[
        'allocation_requests']) == 6
    body = ask(url, q + [('same_subtree', '_COMPUTE,_ACCEL')])
    assert _named(body, n) == [
        [('fpga0', {'FPGA': 1}), ('numa0', {'VCPU': 1})],
        [('fpga1_0', {'FPGA': 1}), ('numa1', {'VCPU': 1})],
        [('fpga1_1', {'FPGA': 1}), ('numa1', {'VCPU': 1})]]


def test_same_provider_is_in_its_own_subtree(url, numa_network):
    q = [('resources_COMPUTE1', 'VCPU:1'),
         ('resources_COMPUTE2', 'MEMORY_MB:1024'),
         ('same_subtree', '_COMPUTE1,_COMPUTE2')]
    body = ask(url, q + [('group_policy', 'none')])
    assert _named(body, numa_network) == [
        [('cn2', {'VCPU': 1, 'MEMORY_MB': 1024})],
        [('numa0', {'VCPU': 1, 'MEMORY_MB': 1024})],
        [('numa1', {'VCPU': 1, 'MEMORY_MB': 1024})]]
    assert ask(url, q + [('group_policy', 'isolate')])[
        'allocation_requests'] == []


def test_ports_with_and_without_a_resourceless_nic(url, numa_network):
    n = numa_network
    ports = [('resources', 'VCPU:1'),
             ('resources_PORT1', 'CUSTOM_VF:4'),
             ('required_PORT1', 'CUSTOM_PHYSNET1'),
             ('resources_PORT2', 'CUSTOM_VF:4'),
             ('required_PORT2', 'CUSTOM_PHYSNET2'), ('group_policy', 'none')]
    body = ask(url, ports)
    assert len(body['allocation_requests']) == 2
    assert _amounts(body, n, 'pf1_2', 'CUSTOM_VF') == [4, 4]
    body = ask(url, ports + [('required_NIC', 'CUSTOM_HW_NIC_ROOT'),
                             ('same_subtree', '_NIC,_PORT1,_PORT2')])
    assert _named(body, n) == [[
        ('cn2', {'VCPU': 1}), ('pf1_1', {'CUSTOM_VF': 4}),
        ('pf1_2', {'CUSTOM_VF': 4})]]
    assert body['allocation_requests'][0]['mappings'] == {
        '': [n['cn2']], '_NIC': [n['nic1']], '_PORT1': [n['pf1_1']],
        '_PORT2': [n['pf1_2']]}


@pytest.mark.parametrize('policy, count', [('none', 5), ('isolate', 5)])
def test_two_vfs_per_port(url, numa_network, policy, count):
    body = ask(url, [
        ('resources', 'VCPU:1'), ('required_NIC', 'CUSTOM_HW_NIC_ROOT'),
        ('resources_PORT1', 'CUSTOM_VF:2'),
        ('required_PORT1', 'CUSTOM_PHYSNET1'),
        ('resources_PORT2', 'CUSTOM_VF:2'),
        ('required_PORT2', 'CUSTOM_PHYSNET2'),
        ('same_subtree', '_NIC,_PORT1,_PORT2'), ('group_policy', policy)])
    assert len(body['allocation_requests']) == count
    for pf in ('pf2_1', 'pf2_2', 'pf2_3', 'pf2_4'):
        assert _amounts(body, numa_network, pf, 'CUSTOM_VF') == [2, 2]


@pytest.mark.parametrize('policy, count, one_vf, two_vfs', [
    ('none', 9, [1, 1, 1, 1], [2, 2]), ('isolate', 4, [1, 1, 1, 1], [])])
def test_two_plus_one_plus_one_vfs(url, numa_network, policy, count, one_vf,
                                   two_vfs):
    body = ask(url, [
        ('resources', 'VCPU:1'), ('required_NIC', 'CUSTOM_HW_NIC_ROOT'),
        ('resources_PORT1', 'CUSTOM_VF:2'),
        ('required_PORT1', 'CUSTOM_PHYSNET1'),
        ('resources_PORT2A', 'CUSTOM_VF:1'),
        ('required_PORT2A', 'CUSTOM_PHYSNET2'),
        ('resources_PORT2B', 'CUSTOM_VF:1'),
        ('required_PORT2B', 'CUSTOM_PHYSNET2'),
        ('same_subtree', '_NIC,_PORT1,_PORT2A,_PORT2B'),
        ('group_policy', policy)])
    assert len(body['allocation_requests']) == count
    for pf in ('pf2_2', 'pf2_4'):
        amounts = _amounts(body, numa_network, pf, 'CUSTOM_VF')
        assert [a for a in amounts if a == 1] == one_vf
        assert [a for a in amounts if a == 2] == two_vfs


def test_resourceless_groups_on_the_same_provider(url, numa_network):
    n = numa_network
    q = [('resources_PORT1', 'CUSTOM_VF:8'),
         ('required_PORT2', 'CUSTOM_PHYSNET1'),
         ('same_subtree', '_PORT1,_PORT2')]
    body = ask(url, q + [('group_policy', 'none')])
    assert body['allocation_requests'] == [{
        'allocations': {n['pf3_1']: {'resources': {'CUSTOM_VF': 8}}},
        'mappings': {'_PORT1': [n['pf3_1']], '_PORT2': [n['pf3_1']]}}]
    assert ask(url, q + [('group_policy', 'isolate')])[
        'allocation_requests'] == []
    q = [('resources_COMPUTE1', 'VCPU:1'), ('required_COMPUTE2', 'CUSTOM_FOO'),
         ('required_COMPUTE3', 'HW_NUMA_ROOT'),
         ('same_subtree', '_COMPUTE1,_COMPUTE2,_COMPUTE3')]
    body = ask(url, q + [('group_policy', 'none')])
    assert body['allocation_requests'] == [{
        'allocations': {n['numa1']: {'resources': {'VCPU': 1}}},
        'mappings': {s: [n['numa1']] for s in
                     ('_COMPUTE1', '_COMPUTE2', '_COMPUTE3')}}]
    assert ask(url, q + [('group_policy', 'isolate')])[
        'allocation_requests'] == []


@pytest.mark.parametrize('subtree', ['_NUMA,_ACCEL1,_ACCEL2',
                                     '_NUMA,_ACCEL1,_ACCEL2,_NUMA,_ACCEL1'])
def test_two_fpgas_below_one_numa_node(url, numa_network, subtree):
    n = numa_network
    q = [('required_NUMA', 'HW_NUMA_ROOT'), ('resources_ACCEL1', 'FPGA:1'),
         ('resources_ACCEL2', 'FPGA:1'), ('same_subtree', subtree),
         ('group_policy', 'isolate')]
    body = ask(url, q)
    assert sorted((a['mappings']['_NUMA'], a['mappings']['_ACCEL1'],
                   a['mappings']['_ACCEL2'])
                  for a in body['allocation_requests']) == sorted([
        ([n['numa1']], [n['fpga1_0']], [n['fpga1_1']]),
        ([n['numa1']], [n['fpga1_1']], [n['fpga1_0']])])
    q[0] = ('required_NUMA', 'HW_NUMA_ROOT,!CUSTOM_FOO')
    assert ask(url, q)['allocation_requests'] == []


def test_multiple_same_subtrees(url, numa_network):
    n = numa_network
    body = ask(url, [
        ('required_NUMA', 'HW_NUMA_ROOT'),
        ('resources_COMPUTE', 'VCPU:2,MEMORY_MB:512'),
        ('resources_FPGA', 'FPGA:1'), ('resources_GPU', 'VGPU:1'),
        ('required_SRIOV', 'CUSTOM_VNIC_TYPE_DIRECT'),
        ('resources_NET1', 'NET_BW_EGR_KILOBIT_PER_SEC:100'),
        ('required_NET1', 'CUSTOM_PHYSNET1'),
        ('resources_NET2', 'NET_BW_EGR_KILOBIT_PER_SEC:100'),
        ('required_NET2', 'CUSTOM_PHYSNET2'),
        ('same_subtree', '_NUMA,_COMPUTE,_GPU,_FPGA'),
        ('same_subtree', '_SRIOV,_NET1,_NET2'), ('group_policy', 'none')])
    assert _named(body, n) == [[
        ('esn1', {'NET_BW_EGR_KILOBIT_PER_SEC': 100}),
        ('esn2', {'NET_BW_EGR_KILOBIT_PER_SEC': 100}),
        ('fpga0', {'FPGA': 1}), ('numa0', {'VCPU': 2, 'MEMORY_MB': 512}),
        ('pgpu0', {'VGPU': 1})]]
    assert body['allocation_requests'][0]['mappings'] == {
        '_NUMA': [n['numa0']], '_COMPUTE': [n['numa0']],
        '_FPGA': [n['fpga0']], '_GPU': [n['pgpu0']],
        '_SRIOV': [n['sriov_agent']], '_NET1': [n['esn1']],
        '_NET2': [n['esn2']]}


@pytest.mark.parametrize('subtrees, count', [
    (['_NIC,_COMPUTE', '_NIC,_PORT1'], 4), (['_NIC,_COMPUTE,_PORT1'], 12)])
def test_overlapping_or_combined_same_subtree(url, numa_network, subtrees,
                                              count):
    n = numa_network
    body = ask(url, [
        ('resources_COMPUTE', 'VCPU:1'), ('required_NIC', 'CUSTOM_HW_NIC_ROOT'),
        ('resources_PORT1', 'CUSTOM_VF:2'),
        ('required_PORT1', 'CUSTOM_PHYSNET1'), ('group_policy', 'none'),
        *(('same_subtree', s) for s in subtrees)])
    assert len(body['provider_summaries']) == 11       # cn2's tree
    assert len(body['allocation_requests']) == count
    assert all(a['mappings']['_COMPUTE'] == [n['cn2']]
               for a in body['allocation_requests'])


def test_root_required(url, numa_network):
    """allocation-candidates-root-required.yaml, the cases without the
    sharing provider."""
    n = numa_network
    assert ask(url, [('resources', 'VCPU:1'),
                     ('root_required', 'HW_NUMA_ROOT')], (1, 35))[
        'allocation_requests'] == []
    multi = [('root_required', 'COMPUTE_VOLUME_MULTI_ATTACH')]
    body = ask(url, [('resources', 'VCPU:1,MEMORY_MB:1024')] + multi)
    assert len(body['allocation_requests']) == 4
    assert _amounts(body, n, 'numa0', 'VCPU') == [1, 1]
    assert _amounts(body, n, 'numa1', 'MEMORY_MB') == [1024, 1024]
    assert body['provider_summaries'][n['numa1']]['traits'] == [
        'CUSTOM_FOO', 'HW_NUMA_ROOT']
    granular = [('resources1', 'VCPU:1'), ('resources2', 'MEMORY_MB:1024')]
    body = ask(url, granular + multi + [('group_policy', 'none')])
    assert len(body['allocation_requests']) == 4
    summaries = body['provider_summaries']
    assert summaries[n['numa0']]['resources']['VCPU']['capacity'] == 4
    assert summaries[n['numa1']]['resources']['MEMORY_MB']['capacity'] == 2048
    body = ask(url, granular + multi + [('group_policy', 'isolate')])
    assert _named(body, n) == [
        [('numa0', {'MEMORY_MB': 1024}), ('numa1', {'VCPU': 1})],
        [('numa0', {'VCPU': 1}), ('numa1', {'MEMORY_MB': 1024})]]
    body = ask(url, [('resources', 'VCPU:3'), ('root_required', '!HW_NUMA_ROOT')])
    assert _named(body, n) == [[('cn2', {'VCPU': 3})],
                               [('numa1', {'VCPU': 3})]]
    # A required trait follows the resources, in the unnumbered group too.
    body = ask(url, [('resources', 'VCPU:1'), ('required', 'CUSTOM_FOO')])
    assert _named(body, n) == [[('cn2', {'VCPU': 1})],
                               [('numa1', {'VCPU': 1})]]
    body = ask(url, [('resources', 'VCPU:1'), ('root_required', 'CUSTOM_FOO')])
    assert _named(body, n) == [[('cn2', {'VCPU': 1})]]


def test_aggregates_of_nested_providers(url):
    """Placement's NUMAAggregateFixture (less its sharing providers) and
    allocation-candidates-bug-1792503.yaml: an aggregate of the root spans
    its tree for the unnumbered group, not for a numbered one."""
    agg = {k: str(uuid_mod.uuid4()) for k in 'ABC'}
    with db.get_engine(url).begin() as conn:
        b = _Builder(conn)
        b.provider('cn1', aggs=[agg['A']])
        b.provider('cn2', aggs=[agg['A'], agg['B']])
        b.provider('numa1_1', 'cn1', aggs=[agg['C']])
        b.provider('numa1_2', 'cn1')
        b.provider('numa2_1', 'cn2')
        b.provider('numa2_2', 'cn2')
        for numa in ('numa1_1', 'numa1_2', 'numa2_1', 'numa2_2'):
            b.inventory(numa, 'VCPU', 24)

    def numas(query):
        body = ask(url, query, (1, 32))
        return sorted(name for request in _named(body, b.uuids)
                      for name, _ in request)
    every = ['numa1_1', 'numa1_2', 'numa2_1', 'numa2_2']
    assert numas([('resources', 'VCPU:1')]) == every
    assert numas([('resources', 'VCPU:1'), ('member_of', agg['A'])]) == every
    assert numas([('resources1', 'VCPU:1'), ('member_of1', agg['A'])]) == []
    assert numas([('resources', 'VCPU:1'), ('member_of', agg['B'])]) == [
        'numa2_1', 'numa2_2']
    assert numas([('resources', 'VCPU:1'), ('member_of', agg['C'])]) == [
        'numa1_1']
    assert numas([('resources1', 'VCPU:1'), ('member_of1', agg['C'])]) == [
        'numa1_1']
    assert numas([('resources', 'VCPU:1'), ('member_of', '!' + agg['C'])]) \
        == ['numa1_2', 'numa2_1', 'numa2_2']
    assert numas([('resources', 'VCPU:1'),
                  ('member_of', f"in:{agg['A']},{agg['B']}"),
                  ('member_of', '!' + agg['B'])]) == ['numa1_1', 'numa1_2']
