"""GET /allocation_candidates through HTTP (webtest, noauth2) on SQLite and
PostgreSQL: shapes per microversion, granular groups, errors with
Placement's codes, policy, and liveness of host-owned and REST-created
roots."""

import datetime
import uuid as uuid_mod

import sqlalchemy as sa

from nova_rt.placement import models
from tests.functional.placement.helpers import CTX, add_host, new_uuid

URL = '/allocation_candidates'


def call(client, method, path, body=None, status=200, **kwargs):
    """``client.call`` with its status asserted (webtest checks none when
    errors are expected)."""
    resp = client.call(method, path, body, **kwargs)
    assert resp.status_int == status, (resp.status, resp.body[:500])
    return resp


def _rest_provider(engine, name, inventories, parent=None):
    """A provider as the REST API creates it: no host, no heartbeat."""
    rp_uuid = str(uuid_mod.uuid4())
    with engine.begin() as conn:
        rp_id = conn.execute(sa.insert(models.ResourceProvider).values(
            uuid=rp_uuid, name=name, host=None, generation=1,
            parent_provider_id=parent).returning(
                models.ResourceProvider.id)).scalar()
        root = rp_id
        if parent is not None:
            root = conn.execute(sa.select(
                models.ResourceProvider.root_provider_id).where(
                models.ResourceProvider.id == parent)).scalar()
        conn.execute(sa.update(models.ResourceProvider).where(
            models.ResourceProvider.id == rp_id).values(
            root_provider_id=root))
        for rc, total in inventories.items():
            conn.execute(sa.insert(models.Inventory).values(
                resource_provider_id=rp_id, root_provider_id=root,
                resource_class=rc, total=total, reserved=0, min_unit=1,
                max_unit=total, step_size=1, allocation_ratio=1.0,
                capacity=total, used=0))
    return rp_uuid, rp_id


def test_shape_at_nova_s_microversion(client, rpc):
    root, _ = add_host(rpc, host='h1', traits=['HW_CPU_X86_AVX'])
    resp = call(client, 'GET', URL + '?resources=VCPU:1,MEMORY_MB:512'
                       '&required=!COMPUTE_STATUS_DISABLED&limit=1000',
                       v='1.36', status=200)
    assert resp.headers['Content-Type'] == 'application/json'
    assert resp.headers['Cache-Control'] == 'no-cache'
    assert resp.json == {
        'allocation_requests': [{
            'allocations': {root: {'resources': {'VCPU': 1,
                                                 'MEMORY_MB': 512}}},
            'mappings': {'': [root]}}],
        'provider_summaries': {root: {
            'resources': {'VCPU': {'capacity': 32, 'used': 0},
                          'MEMORY_MB': {'capacity': 3584, 'used': 0},
                          'DISK_GB': {'capacity': 100, 'used': 0}},
            'traits': ['HW_CPU_X86_AVX'],
            'parent_provider_uuid': None, 'root_provider_uuid': root}}}
    old = call(client, 'GET', URL + '?resources=VCPU:1', v='1.10', status=200)
    assert old.json['allocation_requests'] == [{'allocations': [
        {'resource_provider': {'uuid': root}, 'resources': {'VCPU': 1}}]}]
    assert old.json['provider_summaries'] == {root: {'resources': {
        'VCPU': {'capacity': 32, 'used': 0}}}}
    # Not a route before 1.10.
    call(client, 'GET', URL + '?resources=VCPU:1', v='1.9', status=404)


def test_granular_isolate_over_http(client, rpc):
    root, gen = add_host(rpc, host='h1')
    numa = [new_uuid(), new_uuid()]
    rpc.report_provider_tree(CTX, host='h1', providers=[
        {'uuid': root, 'name': 'h1', 'parent_uuid': None, 'generation': gen,
         'inventories': {'DISK_GB': {'total': 100}}, 'traits': None},
        *({'uuid': u, 'name': f'numa{i}', 'parent_uuid': root,
           'generation': None, 'traits': None,
           'inventories': {'VCPU': {'total': 4}}}
          for i, u in enumerate(numa))])
    q = '?resources=DISK_GB:1&resources1=VCPU:2&resources2=VCPU:2'
    resp = call(client, 'GET', URL + q, status=400)
    assert 'The "group_policy" parameter is required' in \
        resp.json['errors'][0]['detail']
    resp = call(client, 'GET', URL + q + '&group_policy=isolate', status=200)
    got = sorted((a['mappings']['1'], a['mappings']['2'])
                 for a in resp.json['allocation_requests'])
    assert got == sorted([([numa[0]], [numa[1]]), ([numa[1]], [numa[0]])])
    first = resp.json['allocation_requests'][0]
    assert first['mappings'][''] == [root]
    assert first['allocations'][root] == {'resources': {'DISK_GB': 1}}
    assert set(resp.json['provider_summaries']) == {root, *numa}
    # A client that knows no trees (before 1.29) gets none of these.
    resp = call(client, 'GET', URL + '?resources=DISK_GB:1,VCPU:1', v='1.28',
                       status=200)
    assert resp.json == {'allocation_requests': [],
                         'provider_summaries': {}}


def test_errors_carry_placement_codes(client, rpc):
    add_host(rpc, host='h1')
    resp = call(client, 'GET', URL + '?resources1=VCPU:1&same_subtree=1,',
                       status=400)
    error = resp.json['errors'][0]
    assert error['code'] == 'placement.query.bad_value'
    assert 'Empty string (unsuffixed group)' in error['detail']
    resp = call(client, 'GET', URL + '?resources=VCPU:1&root_required=CUSTOM_A'
                       '&root_required=CUSTOM_B', status=400)
    assert resp.json['errors'][0]['code'] == 'placement.query.duplicate_key'
    resp = call(client, 'GET', URL + '?resources=VCPU:1&required=CUSTOM_NOPE',
                       status=400)
    assert resp.json['errors'][0]['detail'] == 'No such trait(s): CUSTOM_NOPE.'
    resp = call(client, 'GET', URL + '?resources=CUSTOM_NOPE:1', status=400)
    assert resp.json['errors'][0]['detail'].startswith(
        'Invalid resource class in resources parameter')
    resp = call(client, 'GET', URL + '?resources=VCPU:1&bogus=1', v='1.24',
                       status=400)
    assert "'bogus' was unexpected" in resp.json['errors'][0]['detail']
    # Amounts and limits past any database integer: no candidate, no
    # error (and the limit is no limit).
    resp = call(client, 'GET', URL + '?resources=VCPU:99999999999999999999')
    assert resp.json['allocation_requests'] == []
    resp = call(client, 'GET', URL + '?resources=VCPU:1&limit=9' + '9' * 20)
    assert len(resp.json['allocation_requests']) == 1
    resp = call(client, 'GET', URL + '?resources=VCPU:1&required=%ff',
                status=400)
    assert 'Invalid query string parameters' in \
        resp.json['errors'][0]['detail']
    # A reader without the role gets 403, whatever the query.
    call(client, 'GET', URL + '?resources=VCPU:1', token='user', status=403)


def test_rest_created_roots_need_no_heartbeat(client, rpc, rest_engine):
    host_root, _ = add_host(rpc, host='h1')
    rest_root, rest_id = _rest_provider(rest_engine, 'rest-root',
                                        {'VCPU': 8})
    child, _ = _rest_provider(rest_engine, 'rest-child',
                              {'SRIOV_NET_VF': 2}, parent=rest_id)
    old = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) \
        - datetime.timedelta(hours=1)
    with rest_engine.begin() as conn:
        conn.execute(sa.update(models.ResourceProvider)
                     .where(models.ResourceProvider.host == 'h1')
                     .values(last_heartbeat=old))
    resp = call(client, 'GET', URL + '?resources=VCPU:1', status=200)
    assert [list(a['allocations']) for a in
            resp.json['allocation_requests']] == [[rest_root]]
    assert resp.json['provider_summaries'][child]['parent_provider_uuid'] \
        == rest_root
    resp = call(client, 'GET', URL + '?resources=VCPU:1,SRIOV_NET_VF:1',
                       status=200)
    assert resp.json['allocation_requests'][0]['allocations'] == {
        rest_root: {'resources': {'VCPU': 1}},
        child: {'resources': {'SRIOV_NET_VF': 1}}}
    assert host_root not in resp.json['provider_summaries']


def test_scheduler_flow_over_rest_created_providers(client):
    """Providers, inventories and traits written through REST; a claim
    made with an allocation request as the candidates gave it (Nova's
    scheduler does this); the next answer counts the claim."""
    cn, pf = str(uuid_mod.uuid4()), str(uuid_mod.uuid4())
    call(client, 'POST', '/resource_providers', {'name': 'cn', 'uuid': cn},
                status=200)
    call(client, 'POST', '/resource_providers', {
        'name': 'pf', 'uuid': pf, 'parent_provider_uuid': cn}, status=200)
    for rp, inventories in ((cn, {'VCPU': {'total': 4}}),
                            (pf, {'SRIOV_NET_VF': {'total': 1}})):
        gen = call(client, 'GET', f'/resource_providers/{rp}').json[
            'generation']
        call(client, 'PUT', f'/resource_providers/{rp}/inventories', {
            'resource_provider_generation': gen,
            'inventories': inventories}, status=200)
    gen = call(client, 'GET', f'/resource_providers/{pf}').json['generation']
    call(client, 'PUT', '/traits/CUSTOM_PHYSNET_A', status=201)
    call(client, 'PUT', f'/resource_providers/{pf}/traits', {
        'resource_provider_generation': gen,
        'traits': ['CUSTOM_PHYSNET_A']}, status=200)
    q = (URL + '?resources=VCPU:2&resources_NET=SRIOV_NET_VF:1'
         '&required_NET=CUSTOM_PHYSNET_A&limit=1')
    body = call(client, 'GET', q, status=200).json
    assert body['allocation_requests'] == [{
        'allocations': {cn: {'resources': {'VCPU': 2}},
                        pf: {'resources': {'SRIOV_NET_VF': 1}}},
        'mappings': {'': [cn], '_NET': [pf]}}]
    claim = dict(body['allocation_requests'][0], project_id='p',
                 user_id='u', consumer_generation=None)
    # At Nova's microversion for claims with mappings (consumer_type is
    # wanted from 1.38).
    call(client, 'PUT', f'/allocations/{uuid_mod.uuid4()}', claim, v='1.36',
         status=204)
    # The only VF is taken.
    assert call(client, 'GET', q, status=200).json[
        'allocation_requests'] == []
    summary = call(client, 'GET', URL + '?resources=VCPU:2',
                          status=200).json['provider_summaries']
    assert summary[cn]['resources']['VCPU'] == {'capacity': 4, 'used': 2}
    assert summary[pf]['resources']['SRIOV_NET_VF'] == {'capacity': 1,
                                                        'used': 1}
