"""The general allocation candidates engine (``candidates``) on SQLite,
PostgreSQL and MySQL/MariaDB: nested trees (NUMA nodes with PFs below), numbered groups,
isolate, same_subtree, traits, aggregates, liveness, limits and the answer's
shape per microversion."""

import datetime
import json

import pytest
import sqlalchemy as sa

from nova_rt.placement import candidate_request as creq
from nova_rt.placement import candidates
from nova_rt.placement import db
from nova_rt.placement import models
from tests.functional.placement.helpers import (
    CTX, add_host, compute_node, new_uuid)


@pytest.fixture(params=['sqlite', 'postgresql', 'mysql'])
def url(request):
    from tests.functional.placement.conftest import _emptied
    return _emptied(request, request.param)


@pytest.fixture
def mgr(url, conf):
    from nova_rt.placement import manager
    return manager.PlacementManager(db.get_engine(url), conf)


# What the handler sent before the engine wrote JSON itself: every body
# asked for here must be byte for byte what it encodes.
_STDLIB = json.JSONEncoder(separators=(',', ':'), check_circular=False)


def ask(url, query, version=(1, 39), order='spread', timeout=60):
    request = creq.parse(query, version)
    with db.get_engine(url).begin() as conn:
        encoded = candidates.encoded_allocation_candidates(
            conn, request, version, heartbeat_timeout=timeout, order=order)
    body = json.loads(encoded)
    assert encoded == _STDLIB.encode(body).encode()
    return body


def _child(uuid, parent, name, inventories, traits=None):
    return {'uuid': uuid, 'name': name, 'parent_uuid': parent,
            'generation': None, 'traits': traits,
            'inventories': inventories}


@pytest.fixture
def numa_host(mgr):
    """cn (DISK_GB) -> numa0, numa1 (VCPU 4, MEMORY_MB 2048 each) -> pf0
    below numa0 (CUSTOM_PHYSNET_A), pf1 below numa1 (CUSTOM_PHYSNET_B),
    4 VFs each.  The root has HW_CPU_X86_AVX2."""
    ids = {name: new_uuid() for name in ('cn', 'numa0', 'numa1', 'pf0',
                                          'pf1')}
    cn = compute_node(ids['cn'], 'numa', traits=['HW_CPU_X86_AVX2'])
    cn['inventories'] = {'DISK_GB': {'total': 100}}
    numa = {'VCPU': {'total': 4}, 'MEMORY_MB': {'total': 2048}}
    vfs = {'SRIOV_NET_VF': {'total': 4}}
    mgr.report_provider_tree(CTX, host='numa', providers=[
        cn,
        _child(ids['numa0'], ids['cn'], 'numa0', numa),
        _child(ids['numa1'], ids['cn'], 'numa1', numa),
        _child(ids['pf0'], ids['numa0'], 'pf0', vfs, ['CUSTOM_PHYSNET_A']),
        _child(ids['pf1'], ids['numa1'], 'pf1', vfs, ['CUSTOM_PHYSNET_B'])])
    return ids


def _sets(body, ids):
    """Each allocation request as {name: resources} (names of the fixture)."""
    names = {u: n for n, u in ids.items()}
    return sorted(
        sorted((names[u], sorted(r['resources'].items()))
               for u, r in a['allocations'].items())
        for a in body['allocation_requests'])


def test_compute_hosts_shapes_per_microversion(mgr, url):
    root, _ = add_host(mgr, host='h1', traits=['HW_CPU_X86_AVX'])
    q = [('resources', 'VCPU:1,MEMORY_MB:512')]
    body = ask(url, q, (1, 10))
    assert body == {
        'allocation_requests': [{'allocations': [
            {'resource_provider': {'uuid': root},
             'resources': {'VCPU': 1, 'MEMORY_MB': 512}}]}],
        'provider_summaries': {root: {'resources': {
            'VCPU': {'capacity': 32, 'used': 0},
            'MEMORY_MB': {'capacity': 3584, 'used': 0}}}}}
    body = ask(url, q, (1, 12))
    assert body['allocation_requests'] == [{'allocations': {
        root: {'resources': {'VCPU': 1, 'MEMORY_MB': 512}}}}]
    assert ask(url, q, (1, 17))['provider_summaries'][root]['traits'] == [
        'HW_CPU_X86_AVX']
    summary = ask(url, q, (1, 29))['provider_summaries'][root]
    assert summary['resources']['DISK_GB'] == {'capacity': 100, 'used': 0}
    assert (summary['parent_provider_uuid'],
            summary['root_provider_uuid']) == (None, root)
    body = ask(url, q, (1, 34))
    assert body['allocation_requests'][0]['mappings'] == {'': [root]}


def test_spread_pack_limit_and_liveness(mgr, url, conf):
    roots = {}
    for name, used in (('h1', 28), ('h2', 4), ('h3', 12)):
        root, gen = add_host(mgr, host=name)
        roots[name] = root
        mgr.report_allocations(
            CTX, host=name, root_uuid=root, generation=gen, full=True,
            allocations={new_uuid(): {'project_id': 'p', 'user_id': 'u',
                                      'resources': {root: {'VCPU': 4}}}
                         for _ in range(used // 4)})
    by_root = {r: n for n, r in roots.items()}

    def hosts(body):
        return [by_root[next(iter(a['allocations']))]
                for a in body['allocation_requests']]
    q = [('resources', 'VCPU:4')]
    assert hosts(ask(url, q)) == ['h2', 'h3', 'h1']
    assert hosts(ask(url, q, order='pack')) == ['h1', 'h3', 'h2']
    body = ask(url, q + [('limit', '2')])
    assert hosts(body) == ['h2', 'h3']
    assert set(body['provider_summaries']) == {roots['h2'], roots['h3']}
    assert body['provider_summaries'][roots['h3']]['resources']['VCPU'] == {
        'capacity': 32, 'used': 12}
    # h1 has 4 free.
    assert hosts(ask(url, [('resources', 'VCPU:5')])) == ['h2', 'h3']
    old = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) \
        - datetime.timedelta(seconds=61)
    with db.get_engine(url).begin() as conn:
        conn.execute(sa.update(models.ResourceProvider)
                     .where(models.ResourceProvider.host == 'h2')
                     .values(last_heartbeat=old))
    assert hosts(ask(url, q)) == ['h3', 'h1']
    assert hosts(ask(url, q, timeout=3600)) == ['h2', 'h3', 'h1']


def test_unnumbered_group_spreads_over_a_tree(mgr, url, numa_host):
    plain, _ = add_host(mgr, host='plain')
    ids = dict(numa_host, plain=plain)
    body = ask(url, [('resources', 'VCPU:1,MEMORY_MB:512,DISK_GB:1')])
    got = _sets(body, ids)
    assert len(got) == 5
    assert [('plain', [('DISK_GB', 1), ('MEMORY_MB', 512), ('VCPU', 1)])] \
        in got
    # VCPU and memory from either NUMA node, independently.
    assert [('cn', [('DISK_GB', 1)]), ('numa0', [('MEMORY_MB', 512)]),
            ('numa1', [('VCPU', 1)])] in got
    # Every provider of both trees is summarised, children included.
    assert set(body['provider_summaries']) == set(ids.values())
    pf0 = body['provider_summaries'][ids['pf0']]
    assert pf0['parent_provider_uuid'] == ids['numa0']
    assert pf0['root_provider_uuid'] == ids['cn']
    assert pf0['traits'] == ['CUSTOM_PHYSNET_A']
    # Before 1.29 a request may not take from two providers of a tree.
    assert _sets(ask(url, [('resources', 'VCPU:1,DISK_GB:1')], (1, 28)),
                 ids) == [[('plain', [('DISK_GB', 1), ('VCPU', 1)])]]
    old = ask(url, [('resources', 'SRIOV_NET_VF:1')], (1, 28))
    assert set(old['provider_summaries']) == {ids['pf0'], ids['pf1']}


def test_numbered_groups_isolate_and_capacity(mgr, url, numa_host):
    ids = numa_host
    one = ask(url, [('resources1', 'VCPU:1,MEMORY_MB:512')])
    assert _sets(one, ids) == [
        [('numa0', [('MEMORY_MB', 512), ('VCPU', 1)])],
        [('numa1', [('MEMORY_MB', 512), ('VCPU', 1)])]]
    assert one['allocation_requests'][0]['mappings'] == {
        '1': [next(iter(one['allocation_requests'][0]['allocations']))]}
    two = [('resources1', 'VCPU:2'), ('resources2', 'VCPU:2')]
    with pytest.raises(creq.BadQuery):
        ask(url, two)           # group_policy is required
    isolated = ask(url, two + [('group_policy', 'isolate')])
    assert _sets(isolated, ids) == [[('numa0', [('VCPU', 2)]),
                                     ('numa1', [('VCPU', 2)])]] * 2
    assert sorted((a['mappings']['1'], a['mappings']['2'])
                  for a in isolated['allocation_requests']) == sorted([
        ([ids['numa0']], [ids['numa1']]), ([ids['numa1']], [ids['numa0']])])
    # "none": the same node may serve both, 4 of its 4 vCPUs.
    together = _sets(ask(url, two + [('group_policy', 'none')]), ids)
    assert [('numa0', [('VCPU', 4)])] in together
    assert len(together) == 4
    # 3 + 3 from one node is more than it has: only across the two.
    over = [('resources1', 'VCPU:3'), ('resources2', 'VCPU:3'),
            ('group_policy', 'none')]
    assert len(ask(url, over)['allocation_requests']) == 2


def test_same_subtree_and_resourceless_group(mgr, url, numa_host):
    ids = numa_host
    q = [('resources1', 'VCPU:1'), ('resources2', 'SRIOV_NET_VF:1'),
         ('group_policy', 'none')]
    assert len(ask(url, q)['allocation_requests']) == 4
    got = _sets(ask(url, q + [('same_subtree', '1,2')]), ids)
    assert got == [[('numa0', [('VCPU', 1)]), ('pf0', [('SRIOV_NET_VF', 1)])],
                   [('numa1', [('VCPU', 1)]), ('pf1', [('SRIOV_NET_VF', 1)])]]
    # A group without resources names the provider the others hang below.
    q = [('resources1', 'SRIOV_NET_VF:1'), ('required2', 'CUSTOM_PHYSNET_B'),
         ('same_subtree', '2,1'), ('group_policy', 'none')]
    body = ask(url, q)
    assert _sets(body, ids) == [[('pf1', [('SRIOV_NET_VF', 1)])]]
    assert body['allocation_requests'][0]['mappings'] == {
        '1': [ids['pf1']], '2': [ids['pf1']]}


def test_traits_on_the_providers_that_give(mgr, url, numa_host):
    ids = numa_host
    q = [('resources', 'SRIOV_NET_VF:1')]
    assert _sets(ask(url, q + [('required', 'CUSTOM_PHYSNET_A')]), ids) == [
        [('pf0', [('SRIOV_NET_VF', 1)])]]
    assert _sets(ask(url, q + [('required', '!CUSTOM_PHYSNET_A')]), ids) == [
        [('pf1', [('SRIOV_NET_VF', 1)])]]
    assert _sets(ask(url, q + [('required', 'in:CUSTOM_PHYSNET_A,'
                                            'CUSTOM_PHYSNET_B')]), ids) == [
        [('pf0', [('SRIOV_NET_VF', 1)])], [('pf1', [('SRIOV_NET_VF', 1)])]]
    # The root's trait counts only where the root gives resources ...
    assert ask(url, q + [('required', 'HW_CPU_X86_AVX2')])[
        'allocation_requests'] == []
    assert len(ask(url, [('resources', 'SRIOV_NET_VF:1,DISK_GB:1'),
                         ('required', 'HW_CPU_X86_AVX2')])[
        'allocation_requests']) == 2
    # ... or through root_required.
    assert len(ask(url, q + [('root_required', 'HW_CPU_X86_AVX2')])[
        'allocation_requests']) == 2
    assert ask(url, q + [('root_required', '!HW_CPU_X86_AVX2')])[
        'allocation_requests'] == []
    # Known to os-traits but on nobody: no candidate, no error.
    assert ask(url, q + [('required', 'HW_CPU_X86_SSE42')])[
        'allocation_requests'] == []
    with pytest.raises(creq.BadQuery, match='No such trait'):
        ask(url, q + [('required', 'CUSTOM_NOBODY')])
    with pytest.raises(creq.BadQuery, match='Invalid resource class'):
        ask(url, [('resources', 'vcpu:1')])


def test_aggregates_and_in_tree(mgr, url, numa_host):
    ids = numa_host
    plain, gen = add_host(mgr, host='plain')
    agg, other = new_uuid(), new_uuid()
    mgr.set_aggregates(CTX, uuid=ids['cn'], aggregates=[agg], generation=1)
    mgr.set_aggregates(CTX, uuid=plain, aggregates=[other], generation=gen)
    q = [('resources', 'VCPU:1')]
    # The root's aggregate spans its tree for the unnumbered group ...
    got = ask(url, q + [('member_of', agg)])
    assert {u for a in got['allocation_requests'] for u in a['allocations']
            } == {ids['numa0'], ids['numa1']}
    assert ask(url, q + [('member_of', f'in:{agg},{other}')])[
        'allocation_requests'].__len__() == 3
    assert _sets(ask(url, q + [('member_of', f'!{agg}')]),
                 dict(ids, plain=plain)) == [[('plain', [('VCPU', 1)])]]
    # ... but a numbered group wants the provider itself in it.
    assert ask(url, [('resources1', 'VCPU:1'), ('member_of1', agg)])[
        'allocation_requests'] == []
    assert ask(url, q + [('member_of', new_uuid())])[
        'allocation_requests'] == []
    got = ask(url, q + [('in_tree', ids['pf1'])])
    assert len(got['allocation_requests']) == 2
    assert set(got['provider_summaries']) == set(ids.values())
    assert ask(url, q + [('in_tree', new_uuid())])[
        'allocation_requests'] == []
