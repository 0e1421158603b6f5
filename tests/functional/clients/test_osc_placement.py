"""osc-placement (``openstack resource provider ...``) against a live server.

Every command here is osc-placement 4.9's own, run unchanged as an operator
runs it (``--os-auth-type admin_token --os-token admin --os-endpoint URL``);
what it prints is checked, and what it changed is read back through the API.
"""

import uuid

import pytest

from tests.functional.clients import osc

V = '1.39'


def _provider(url, name, *extra):
    return osc.js(url, V, 'resource', 'provider', 'create', name, *extra)


def test_provider_create_list_show_set_delete(live_server):
    url = live_server.url
    root = _provider(url, 'osc-root')
    assert root['name'] == 'osc-root' and root['generation'] == 0
    assert root['root_provider_uuid'] == root['uuid']
    child_uuid = str(uuid.uuid4())
    child = _provider(url, 'osc-child', '--uuid', child_uuid,
                      '--parent-provider', root['uuid'])
    assert child['uuid'] == child_uuid
    assert child['parent_provider_uuid'] == root['uuid']
    assert child['root_provider_uuid'] == root['uuid']

    listed = osc.js(url, V, 'resource', 'provider', 'list')
    assert sorted(p['name'] for p in listed) == ['osc-child', 'osc-root']
    by_name = osc.js(url, V, 'resource', 'provider', 'list', '--name', 'osc-child')
    assert [p['uuid'] for p in by_name] == [child_uuid]
    in_tree = osc.js(url, V, 'resource', 'provider', 'list', '--in-tree', child_uuid)
    assert {p['uuid'] for p in in_tree} == {root['uuid'], child_uuid}

    shown = osc.js(url, V, 'resource', 'provider', 'show', root['uuid'])
    assert shown['name'] == 'osc-root' and shown['generation'] == 0

    renamed = osc.js(url, V, 'resource', 'provider', 'set', child_uuid,
                     '--name', 'osc-child-renamed', '--parent-provider', root['uuid'])
    assert renamed['name'] == 'osc-child-renamed'
    # A rename is not a change of inventory, traits or aggregates.
    assert renamed['generation'] == 0

    # A parent with a child cannot go first, as in Placement.
    code, _, err = osc.run(url, V, 'resource', 'provider', 'delete', root['uuid'],
                           expect_ok=False)
    assert code != 0 and 'HTTP 409' in err, err
    osc.run(url, V, 'resource', 'provider', 'delete', child_uuid)
    osc.run(url, V, 'resource', 'provider', 'delete', root['uuid'])
    assert osc.js(url, V, 'resource', 'provider', 'list') == []
    code, _, err = osc.run(url, V, 'resource', 'provider', 'show', root['uuid'],
                           expect_ok=False)
    assert code != 0 and 'HTTP 404' in err, err
    status, _ = live_server.request('GET', f'/resource_providers/{root["uuid"]}')
    assert status == 404


def test_inventory_set_list_show_delete(live_server):
    url = live_server.url
    rp = _provider(url, 'osc-inv')
    rows = osc.js(url, V, 'resource', 'provider', 'inventory', 'set', rp['uuid'],
                  '--resource', 'VCPU=8', '--resource', 'VCPU:allocation_ratio=4.0',
                  '--resource', 'MEMORY_MB=4096', '--resource', 'MEMORY_MB:reserved=512',
                  '--resource', 'DISK_GB=100', '--resource', 'DISK_GB:max_unit=50')
    by_class = {row['resource_class']: row for row in rows}
    assert set(by_class) == {'VCPU', 'MEMORY_MB', 'DISK_GB'}
    assert by_class['VCPU']['total'] == 8
    assert by_class['VCPU']['allocation_ratio'] == 4.0
    assert by_class['MEMORY_MB']['reserved'] == 512
    assert by_class['DISK_GB']['max_unit'] == 50

    listed = osc.js(url, V, 'resource', 'provider', 'inventory', 'list', rp['uuid'])
    assert {r['resource_class']: r['total'] for r in listed} == {
        'VCPU': 8, 'MEMORY_MB': 4096, 'DISK_GB': 100}
    shown = osc.js(url, V, 'resource', 'provider', 'inventory', 'show', rp['uuid'],
                   'VCPU')
    assert shown['total'] == 8 and shown['allocation_ratio'] == 4.0
    assert shown['min_unit'] == 1 and shown['step_size'] == 1

    # --amend changes one class and keeps the others.
    osc.js(url, V, 'resource', 'provider', 'inventory', 'set', rp['uuid'],
           '--amend', '--resource', 'VCPU=16')
    status, body = live_server.request(
        'GET', f'/resource_providers/{rp["uuid"]}/inventories', version=V)
    assert status == 200
    assert {k: v['total'] for k, v in body['inventories'].items()} == {
        'VCPU': 16, 'MEMORY_MB': 4096, 'DISK_GB': 100}

    osc.run(url, V, 'resource', 'provider', 'inventory', 'delete', rp['uuid'],
            '--resource-class', 'DISK_GB')
    listed = osc.js(url, V, 'resource', 'provider', 'inventory', 'list', rp['uuid'])
    assert sorted(r['resource_class'] for r in listed) == ['MEMORY_MB', 'VCPU']
    code, _, err = osc.run(url, V, 'resource', 'provider', 'inventory', 'show',
                           rp['uuid'], 'DISK_GB', expect_ok=False)
    assert code != 0 and 'HTTP 404' in err, err
    osc.run(url, V, 'resource', 'provider', 'inventory', 'delete', rp['uuid'])
    assert osc.js(url, V, 'resource', 'provider', 'inventory', 'list',
                  rp['uuid']) == []


def _compute(url, name, vcpus=8, memory=4096):
    rp = _provider(url, name)
    osc.js(url, V, 'resource', 'provider', 'inventory', 'set', rp['uuid'],
           '--resource', f'VCPU={vcpus}', '--resource', f'MEMORY_MB={memory}')
    return rp['uuid']


def test_allocation_set_show_unset_and_usages(live_server):
    url = live_server.url
    rp1, rp2 = _compute(url, 'osc-cn1'), _compute(url, 'osc-cn2')
    consumer, project, user = (str(uuid.uuid4()) for _ in range(3))
    rows = osc.js(url, V, 'resource', 'provider', 'allocation', 'set', consumer,
                  '--allocation', f'rp={rp1},VCPU=2,MEMORY_MB=1024',
                  '--allocation', f'rp={rp2},VCPU=1',
                  '--project-id', project, '--user-id', user,
                  '--consumer-type', 'INSTANCE')
    by_rp = {row['resource_provider']: row for row in rows}
    assert by_rp[rp1]['resources'] == {'VCPU': 2, 'MEMORY_MB': 1024}
    assert by_rp[rp2]['resources'] == {'VCPU': 1}
    shown = osc.js(url, V, 'resource', 'provider', 'allocation', 'show', consumer)
    assert {r['resource_provider']: r['resources'] for r in shown} == {
        rp1: {'VCPU': 2, 'MEMORY_MB': 1024}, rp2: {'VCPU': 1}}
    assert {r['project_id'] for r in shown} == {project}

    usage = osc.js(url, V, 'resource', 'provider', 'usage', 'show', rp1)
    assert {u['resource_class']: u['usage'] for u in usage} == {
        'VCPU': 2, 'MEMORY_MB': 1024}
    # From 1.38 the totals are per consumer type.
    totals = osc.js(url, V, 'resource', 'usage', 'show', project)
    assert totals == [{'resource_class': 'INSTANCE', 'usage': {
        'VCPU': 3, 'MEMORY_MB': 1024, 'consumer_count': 1}}]
    totals = osc.js(url, '1.9', 'resource', 'usage', 'show', project)
    assert {u['resource_class']: u['usage'] for u in totals} == {
        'VCPU': 3, 'MEMORY_MB': 1024}
    by_user = osc.js(url, '1.9', 'resource', 'usage', 'show', project,
                     '--user-id', str(uuid.uuid4()))
    assert by_user == []

    # More than the inventory can hold: refused, nothing changes.
    code, _, err = osc.run(url, V, 'resource', 'provider', 'allocation', 'set',
                           str(uuid.uuid4()), '--allocation', f'rp={rp1},VCPU=100',
                           '--project-id', project, '--user-id', user,
                           '--consumer-type', 'INSTANCE', expect_ok=False)
    assert code != 0 and 'HTTP 409' in err, err

    # unset (1.12+) takes the allocations on one provider away.
    osc.js(url, V, 'resource', 'provider', 'allocation', 'unset', consumer,
           '--provider', rp2)
    shown = osc.js(url, V, 'resource', 'provider', 'allocation', 'show', consumer)
    assert [r['resource_provider'] for r in shown] == [rp1]
    usage = osc.js(url, V, 'resource', 'provider', 'usage', 'show', rp2)
    assert {u['resource_class']: u['usage'] for u in usage} == {
        'VCPU': 0, 'MEMORY_MB': 0}

    osc.run(url, V, 'resource', 'provider', 'allocation', 'delete', consumer)
    assert osc.js(url, V, 'resource', 'provider', 'allocation', 'show',
                  consumer) == []
    # A provider with allocations cannot be deleted; without, it can.
    osc.run(url, V, 'resource', 'provider', 'delete', rp1)


def test_traits_and_aggregates(live_server):
    url = live_server.url
    rp = _provider(url, 'osc-traits')['uuid']
    traits = {t['name'] for t in osc.js(url, V, 'trait', 'list')}
    assert {'HW_CPU_X86_AVX2', 'COMPUTE_NODE'} <= traits
    assert 'CUSTOM_OSC_GOLD' not in traits
    osc.run(url, V, 'trait', 'create', 'CUSTOM_OSC_GOLD')
    customs = {t['name'] for t in osc.js(url, V, 'trait', 'list', '--name',
                                         'startswith:CUSTOM_')}
    assert customs == {'CUSTOM_OSC_GOLD'}
    code, _, err = osc.run(url, V, 'trait', 'create', 'NOT_CUSTOM', expect_ok=False)
    assert code != 0 and 'HTTP 400' in err, err

    osc.js(url, V, 'resource', 'provider', 'trait', 'set', rp,
           '--trait', 'CUSTOM_OSC_GOLD', '--trait', 'HW_CPU_X86_AVX2')
    listed = {t['name'] for t in osc.js(url, V, 'resource', 'provider', 'trait',
                                        'list', rp)}
    assert listed == {'CUSTOM_OSC_GOLD', 'HW_CPU_X86_AVX2'}
    with_trait = osc.js(url, V, 'resource', 'provider', 'list', '--required',
                        'CUSTOM_OSC_GOLD')
    assert [p['uuid'] for p in with_trait] == [rp]
    assert osc.js(url, V, 'resource', 'provider', 'list', '--forbidden',
                  'CUSTOM_OSC_GOLD') == []
    # A trait in use cannot be deleted.
    code, _, err = osc.run(url, V, 'trait', 'delete', 'CUSTOM_OSC_GOLD',
                           expect_ok=False)
    assert code != 0 and 'HTTP 409' in err, err

    gen = osc.js(url, V, 'resource', 'provider', 'show', rp)['generation']
    agg1, agg2 = str(uuid.uuid4()), str(uuid.uuid4())
    osc.js(url, V, 'resource', 'provider', 'aggregate', 'set', rp,
           '--aggregate', agg1, '--aggregate', agg2, '--generation', str(gen))
    listed = {a['uuid'] for a in osc.js(url, V, 'resource', 'provider',
                                        'aggregate', 'list', rp)}
    assert listed == {agg1, agg2}
    # A stale generation is a conflict (1.19+), and changes nothing.
    code, _, err = osc.run(url, V, 'resource', 'provider', 'aggregate', 'set', rp,
                           '--aggregate', agg1, '--generation', str(gen),
                           expect_ok=False)
    assert code != 0 and 'HTTP 409' in err, err
    member = osc.js(url, V, 'resource', 'provider', 'list', '--member-of', agg2)
    assert [p['uuid'] for p in member] == [rp]
    assert {a['uuid'] for a in osc.js(url, V, 'resource', 'provider', 'aggregate',
                                      'list', rp)} == {agg1, agg2}


@pytest.fixture
def candidate_cloud(live_server):
    """Two computes in one aggregate (one with AVX2), one outside it, and a
    compute with a nested NUMA child carrying the VCPUs."""
    url = live_server.url
    agg = str(uuid.uuid4())
    cn1, cn2, cn3 = (_compute(url, f'osc-cand-{i}', vcpus=8) for i in (1, 2, 3))
    for rp in (cn1, cn2):
        gen = osc.js(url, V, 'resource', 'provider', 'show', rp)['generation']
        osc.js(url, V, 'resource', 'provider', 'aggregate', 'set', rp,
               '--aggregate', agg, '--generation', str(gen))
    osc.js(url, V, 'resource', 'provider', 'trait', 'set', cn1,
           '--trait', 'HW_CPU_X86_AVX2')
    nested = _provider(url, 'osc-cand-nested')['uuid']
    osc.js(url, V, 'resource', 'provider', 'inventory', 'set', nested,
           '--resource', 'MEMORY_MB=8192')
    numa = _provider(url, 'osc-cand-numa', '--parent-provider', nested)['uuid']
    osc.js(url, V, 'resource', 'provider', 'inventory', 'set', numa,
           '--resource', 'VCPU=4')
    return {'agg': agg, 'cn1': cn1, 'cn2': cn2, 'cn3': cn3, 'nested': nested,
            'numa': numa}


def _candidate_providers(rows):
    """The set of providers of each candidate (one row per provider and class)."""
    by_candidate = {}
    for row in rows:
        by_candidate.setdefault(row['#'], set()).add(row['resource provider'])
    return sorted(by_candidate.values(), key=sorted)


def test_allocation_candidate_list(live_server, candidate_cloud):
    url, c = live_server.url, candidate_cloud
    rows = osc.js(url, V, 'allocation', 'candidate', 'list',
                  '--resource', 'VCPU=2', '--resource', 'MEMORY_MB=1024')
    cands = _candidate_providers(rows)
    assert {c['cn1']} in cands and {c['cn2']} in cands and {c['cn3']} in cands
    assert {c['nested'], c['numa']} in cands
    assert len(cands) == 4
    row = next(r for r in rows if r['resource provider'] == c['cn1']
               and 'VCPU' in r['allocation'])
    # The classes' order is the JSON object's: none is promised.
    assert sorted(row['allocation'].split(',')) == ['MEMORY_MB=1024', 'VCPU=2']
    assert 'VCPU=0/8' in row['inventory used/capacity']

    required = osc.js(url, V, 'allocation', 'candidate', 'list',
                      '--resource', 'VCPU=2', '--required', 'HW_CPU_X86_AVX2')
    assert _candidate_providers(required) == [{c['cn1']}]
    forbidden = osc.js(url, V, 'allocation', 'candidate', 'list',
                       '--resource', 'VCPU=2', '--forbidden', 'HW_CPU_X86_AVX2',
                       '--member-of', c['agg'])
    assert _candidate_providers(forbidden) == [{c['cn2']}]
    member = osc.js(url, V, 'allocation', 'candidate', 'list',
                    '--resource', 'VCPU=2', '--member-of', c['agg'])
    assert _candidate_providers(member) == sorted([{c['cn1']}, {c['cn2']}], key=sorted)
    limited = osc.js(url, V, 'allocation', 'candidate', 'list',
                     '--resource', 'VCPU=2', '--limit', '2')
    assert len(_candidate_providers(limited)) == 2
    too_big = osc.js(url, V, 'allocation', 'candidate', 'list',
                     '--resource', 'VCPU=1000')
    assert too_big == []


def test_allocation_candidate_list_granular(live_server, candidate_cloud):
    url, c = live_server.url, candidate_cloud
    # One unsuffixed request for memory, a numbered group for the CPUs.
    rows = osc.js(url, V, 'allocation', 'candidate', 'list',
                  '--resource', 'MEMORY_MB=1024',
                  '--group', '1', '--resource', 'VCPU=2',
                  '--group-policy', 'none')
    cands = _candidate_providers(rows)
    assert {c['nested'], c['numa']} in cands
    assert {c['cn1']} in cands
    nested_rows = [r for r in rows if r['resource provider'] == c['numa']]
    assert [r['allocation'] for r in nested_rows] == ['VCPU=2']

    # Two groups that must land on different providers: only the nested
    # tree has two providers with VCPU and MEMORY_MB apart.
    isolated = osc.js(url, V, 'allocation', 'candidate', 'list',
                      '--group', '1', '--resource', 'VCPU=2',
                      '--group', '2', '--resource', 'MEMORY_MB=1024',
                      '--group-policy', 'isolate')
    assert _candidate_providers(isolated) == [{c['nested'], c['numa']}]
    grouped_trait = osc.js(url, V, 'allocation', 'candidate', 'list',
                           '--group', '1', '--resource', 'VCPU=2',
                           '--required', 'HW_CPU_X86_AVX2',
                           '--group-policy', 'none')
    assert _candidate_providers(grouped_trait) == [{c['cn1']}]
