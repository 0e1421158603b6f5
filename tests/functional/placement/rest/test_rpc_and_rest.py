"""One database, one set of operations: what a host reports over RPC is
what REST shows, and the ownership rules between the two."""

import pytest

from tests.functional.placement.helpers import CTX, add_host, consumer
from tests.functional.placement.rest.helpers import (
    allocate, new_uuid, provider)


def test_a_hosts_report_is_visible_over_rest(client, rpc):
    root, gen = add_host(rpc, host='h1', vcpus=8)
    c = new_uuid()
    rpc.report_allocations(CTX, host='h1', root_uuid=root, generation=gen,
                           full=True,
                           allocations={c: consumer({root: {'VCPU': 3}})})
    shown = client.call('GET', f'/resource_providers/{root}').json
    assert shown['name'] == 'h1' and shown['root_provider_uuid'] == root
    inventories = client.call(
        'GET', f'/resource_providers/{root}/inventories').json
    assert inventories['inventories']['VCPU']['allocation_ratio'] == 4.0
    assert client.call('GET', f'/resource_providers/{root}/usages').json[
        'usages']['VCPU'] == 3
    got = client.call('GET', f'/allocations/{c}').json
    assert got['allocations'][root]['resources'] == {'VCPU': 3}
    assert got['project_id'] == 'p1'
    assert got['consumer_type'] == 'unknown'


def test_rest_writes_on_host_owned_providers_are_refused(client, rpc):
    root, _gen = add_host(rpc, host='h1')
    gen = client.call('GET', f'/resource_providers/{root}').json['generation']
    for method, path, body in (
            ('PUT', f'/resource_providers/{root}/inventories',
             {'resource_provider_generation': gen,
              'inventories': {'VCPU': {'total': 1}}}),
            ('DELETE', f'/resource_providers/{root}/inventories', None),
            ('PUT', f'/resource_providers/{root}', {'name': 'mine'}),
            ('DELETE', f'/resource_providers/{root}', None),
            ('POST', '/resource_providers',
             {'name': 'child', 'parent_provider_uuid': root})):
        resp = client.call(method, path, body, status=409)
        assert 'h1' in resp.json['errors'][0]['detail'], (method, path)
    after = client.call('GET', f'/resource_providers/{root}').json
    assert after['generation'] == gen and after['name'] == 'h1'
    assert client.call('GET', f'/resource_providers/{root}/inventories'
                       ).json['inventories']['VCPU']['total'] == 8


def test_admin_traits_and_aggregates_on_host_providers_are_kept(client, rpc):
    root, gen = add_host(rpc, host='h1')
    client.call('PUT', f'/resource_providers/{root}/traits',
                {'traits': ['HW_CPU_X86_AVX'],
                 'resource_provider_generation': gen}, status=200)
    # The host's next report (traits unset) leaves them, as for RPC writes.
    rpc.report_provider_tree(CTX, host='h1', providers=[{
        'uuid': root, 'name': 'h1', 'parent_uuid': None,
        'generation': gen + 1, 'inventories': {'VCPU': {'total': 8}}}])
    assert client.call('GET', f'/resource_providers/{root}/traits').json[
        'traits'] == ['HW_CPU_X86_AVX']


def _usage(client, rp, rc='VCPU'):
    return client.call('GET', f'/resource_providers/{rp}/usages').json[
        'usages'].get(rc, 0)


def _report(rpc, client, root, allocations, full=True):
    # The REST writes bumped the provider: the host refreshes, then reports.
    current = client.call('GET', f'/resource_providers/{root}').json[
        'generation']
    return rpc.report_allocations(
        CTX, host='h1', root_uuid=root, generation=current, full=full,
        allocations={c: consumer(r) for c, r in allocations.items()})


def test_a_hosts_reports_keep_a_rest_claim_it_does_not_report(client, rpc):
    # Review bug 3: Nova's scheduler claims through REST before the
    # conductor's RPC claim reaches the host; a full report landing in
    # between dropped the claim, and the usage with it.
    root, _gen = add_host(rpc, host='h1', vcpus=8)
    claim, own = new_uuid(), new_uuid()
    allocate(client, claim, {root: {'VCPU': 2}})
    for full in (True, False, True):
        _report(rpc, client, root, {own: {root: {'VCPU': 1}}}, full=full)
        assert client.call('GET', f'/allocations/{claim}').json[
            'allocations'][root]['resources'] == {'VCPU': 2}
        assert _usage(client, root) == 3
    # Its REST writer still owns it.
    client.call('DELETE', f'/allocations/{claim}', status=204)
    assert _usage(client, root) == 1
    _report(rpc, client, root, {own: {root: {'VCPU': 1}}})
    assert _usage(client, root) == 1


def test_an_unchanged_full_report_keeps_a_rest_claim(client, rpc,
                                                     rest_engine):
    # The path that answers a full report with no write (its heartbeat
    # deferred) sees the claim as kept, not as a difference.
    from nova_rt.placement import allocation_ops
    root, _gen = add_host(rpc, host='h1', vcpus=8)
    claim, own = new_uuid(), new_uuid()
    allocate(client, claim, {root: {'VCPU': 2}})
    _report(rpc, client, root, {own: {root: {'VCPU': 1}}})
    deferred = []
    current = client.call('GET', f'/resource_providers/{root}').json[
        'generation']
    with rest_engine.begin() as conn:
        generations = allocation_ops.unchanged_report(
            conn, 'h1', root, current,
            {own: consumer({root: {'VCPU': 1}})}, full=True,
            defer_heartbeat=lambda *args: deferred.append(args))
    assert deferred and generations[root] == current
    assert _usage(client, root) == 3


@pytest.mark.parametrize('full', [True, False])
def test_a_host_that_reports_the_consumer_takes_the_claim_over(
        client, rpc, full):
    root, _gen = add_host(rpc, host='h1', vcpus=8)
    claim = new_uuid()
    allocate(client, claim, {root: {'VCPU': 2}})
    # The conductor's claim reached the host, which reports it (the same
    # amounts): from now on it is the host's.
    _report(rpc, client, root, {claim: {root: {'VCPU': 2}}}, full=full)
    assert _usage(client, root) == 2
    _report(rpc, client, root, {})
    assert client.call('GET', f'/allocations/{claim}').json == {
        'allocations': {}}
    assert _usage(client, root) == 0


def test_a_report_never_touches_rest_created_providers(client, rpc):
    mine = provider(client, 'shared-storage', {'DISK_GB': {'total': 100}})
    root, gen = add_host(rpc, host='h1')
    rpc.report_provider_tree(CTX, host='h1', providers=[{
        'uuid': root, 'name': 'h1', 'parent_uuid': None, 'generation': gen,
        'inventories': {}}])
    assert client.call('GET', f'/resource_providers/{mine}/inventories'
                       ).json['inventories']['DISK_GB']['total'] == 100


def test_forbidden_writes_change_nothing(client):
    rp = provider(client, 'rp', {'VCPU': {'total': 4}})
    c = new_uuid()
    for method, path, body in (
            ('POST', '/resource_providers', {'name': 'x'}),
            ('PUT', f'/resource_providers/{rp}', {'name': 'y'}),
            ('DELETE', f'/resource_providers/{rp}', None),
            ('PUT', f'/resource_providers/{rp}/inventories',
             {'resource_provider_generation': 1,
              'inventories': {'VCPU': {'total': 9}}}),
            ('PUT', f'/allocations/{c}',
             {'allocations': {rp: {'resources': {'VCPU': 1}}},
              'project_id': 'p', 'user_id': 'u', 'consumer_generation': None,
              'consumer_type': 'INSTANCE'}),
            ('PUT', '/traits/CUSTOM_X', None),
            ('POST', '/resource_classes', {'name': 'CUSTOM_Y'})):
        client.call(method, path, body, token='mallory:p9', status=403)
    assert [p['name'] for p in client.call('GET', '/resource_providers').json[
        'resource_providers']] == ['rp']
    assert client.call('GET', f'/resource_providers/{rp}').json[
        'generation'] == 1
    assert client.call('GET', f'/allocations/{c}').json == {'allocations': {}}
    client.call('GET', '/traits/CUSTOM_X', status=404)
    client.call('GET', '/resource_classes/CUSTOM_Y', status=404)


def test_a_report_that_takes_allocations_away_moves_the_consumers_generation(
        client, rpc):
    # Review bug 5: a host's report removed the consumer's allocations in
    # its tree but left its generation, so a REST client's stale view was
    # still accepted.
    storage = provider(client, 'shared-storage', {'DISK_GB': {'total': 100}})
    root, _gen = add_host(rpc, host='h1', vcpus=8)
    c = new_uuid()
    allocate(client, c, {root: {'VCPU': 1}, storage: {'DISK_GB': 10}})
    _report(rpc, client, root, {c: {root: {'VCPU': 1}}}, full=False)
    seen = client.call('GET', f'/allocations/{c}').json
    _report(rpc, client, root, {})
    now = client.call('GET', f'/allocations/{c}').json
    assert now['allocations'] == {storage: {
        'generation': now['allocations'][storage]['generation'],
        'resources': {'DISK_GB': 10}}}
    assert now['consumer_generation'] > seen['consumer_generation']
    allocate(client, c, {storage: {'DISK_GB': 20}},
             generation=seen['consumer_generation'], status=409)
    allocate(client, c, {storage: {'DISK_GB': 20}},
             generation=now['consumer_generation'])


def test_a_class_in_a_hosts_inventory_cannot_be_renamed(client, rpc):
    # Review bug 6: the rename rewrote the host's inventory and
    # allocations; its next report (of the old name) then met its own
    # allocations under the new one (InventoryInUse), for good.
    root, gen = add_host(rpc, host='h1')
    gens = rpc.report_provider_tree(CTX, host='h1', providers=[{
        'uuid': root, 'name': 'h1', 'parent_uuid': None, 'generation': gen,
        'inventories': {'VCPU': {'total': 8}, 'CUSTOM_FPGA': {'total': 2}}}])
    c = new_uuid()
    rpc.report_allocations(CTX, host='h1', root_uuid=root,
                           generation=gens[root], full=True,
                           allocations={c: consumer({root: {
                               'CUSTOM_FPGA': 1}})})
    resp = client.call('PUT', '/resource_classes/CUSTOM_FPGA',
                       {'name': 'CUSTOM_GPU'}, v='1.6', status=409)
    assert 'h1' in resp.json['errors'][0]['detail']
    client.call('GET', '/resource_classes/CUSTOM_GPU', v='1.6', status=404)
    assert client.call('GET', f'/allocations/{c}').json['allocations'][
        root]['resources'] == {'CUSTOM_FPGA': 1}
    # A class only REST-created providers hold is still renamed.
    client.call('PUT', '/resource_classes/CUSTOM_ASIC', status=201)
    mine = provider(client, 'mine', {'CUSTOM_ASIC': {'total': 1}})
    client.call('PUT', '/resource_classes/CUSTOM_ASIC',
                {'name': 'CUSTOM_TPU'}, v='1.6', status=200)
    assert list(client.call('GET', f'/resource_providers/{mine}/inventories'
                            ).json['inventories']) == ['CUSTOM_TPU']


def test_a_kept_claim_counts_in_the_capacity_a_report_grows_into(client,
                                                                  rpc):
    from nova_rt import exception
    # MEMORY_MB: 2048 total, 512 reserved, capacity 1536.
    root, _gen = add_host(rpc, host='h1', memory_mb=2048)
    claim, own = new_uuid(), new_uuid()
    allocate(client, claim, {root: {'MEMORY_MB': 1024}})
    with pytest.raises(exception.AllocationCapacityExceeded):
        _report(rpc, client, root, {own: {root: {'MEMORY_MB': 1024}}})
    assert _usage(client, root, 'MEMORY_MB') == 1024
    _report(rpc, client, root, {own: {root: {'MEMORY_MB': 512}}})
    assert _usage(client, root, 'MEMORY_MB') == 1536
    # Taking the claim over, smaller, makes room again.
    _report(rpc, client, root, {own: {root: {'MEMORY_MB': 1024}},
                                claim: {root: {'MEMORY_MB': 512}}})
    assert _usage(client, root, 'MEMORY_MB') == 1536
