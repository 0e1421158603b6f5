"""``/traits``, provider traits and aggregates, ``/resource_classes``,
``/usages``."""

from tests.functional.placement.rest.helpers import (
    allocate, generation, new_uuid, provider)


def test_traits_create_list_delete(client):
    resp = client.call('PUT', '/traits/CUSTOM_GOLD', status=201)
    assert resp.headers['Location'].endswith('/traits/CUSTOM_GOLD')
    client.call('PUT', '/traits/CUSTOM_GOLD', status=204)
    client.call('PUT', '/traits/gold', status=400)
    client.call('PUT', '/traits/HW_CPU_X86_AVX', status=400)
    client.call('GET', '/traits/HW_CPU_X86_AVX', status=204)
    client.call('GET', '/traits/CUSTOM_GOLD', status=204)
    assert client.call('GET', '/traits?name=in:CUSTOM_GOLD,HW_CPU_X86_AVX,X'
                       ).json == {'traits': ['CUSTOM_GOLD', 'HW_CPU_X86_AVX']}
    assert client.call('GET', '/traits?name=startswith:CUSTOM_').json == {
        'traits': ['CUSTOM_GOLD']}
    client.call('GET', '/traits?name=CUSTOM_GOLD', status=400)
    client.call('GET', '/traits?associated=maybe', status=400)
    client.call('DELETE', '/traits/HW_CPU_X86_AVX', status=400)
    client.call('DELETE', '/traits/CUSTOM_GOLD', status=204)
    client.call('DELETE', '/traits/CUSTOM_GOLD', status=404)


def test_provider_traits_and_associated(client):
    rp = provider(client, 'rp')
    client.call('PUT', '/traits/CUSTOM_A', status=201)
    resp = client.call('PUT', f'/resource_providers/{rp}/traits',
                       {'traits': ['CUSTOM_A', 'HW_CPU_X86_AVX'],
                        'resource_provider_generation': 0}, status=200)
    assert resp.json == {'traits': ['CUSTOM_A', 'HW_CPU_X86_AVX'],
                         'resource_provider_generation': 1}
    resp = client.call('PUT', f'/resource_providers/{rp}/traits',
                       {'traits': ['CUSTOM_B'],
                        'resource_provider_generation': 1}, status=400)
    assert 'CUSTOM_B' in resp.json['errors'][0]['detail']
    client.call('PUT', f'/resource_providers/{rp}/traits',
                {'traits': [], 'resource_provider_generation': 0}, status=409)
    assert client.call('GET', '/traits?associated=true').json == {
        'traits': ['CUSTOM_A', 'HW_CPU_X86_AVX']}
    assert 'CUSTOM_A' not in client.call(
        'GET', '/traits?associated=false').json['traits']
    client.call('DELETE', '/traits/CUSTOM_A', status=409)
    client.call('DELETE', f'/resource_providers/{rp}/traits', status=204)
    assert client.call('GET', f'/resource_providers/{rp}/traits').json == {
        'traits': [], 'resource_provider_generation': 2}


def test_aggregates_per_microversion(client):
    rp, agg = provider(client, 'rp'), new_uuid()
    client.call('GET', f'/resource_providers/{rp}/aggregates', v='1.0',
                status=404)
    resp = client.call('PUT', f'/resource_providers/{rp}/aggregates', [agg],
                       v='1.1', status=200)
    assert resp.json == {'aggregates': [agg]}
    resp = client.call('GET', f'/resource_providers/{rp}/aggregates')
    gen = resp.json['resource_provider_generation']
    assert resp.json['aggregates'] == [agg]
    client.call('PUT', f'/resource_providers/{rp}/aggregates',
                {'aggregates': [], 'resource_provider_generation': gen + 5},
                status=409)
    resp = client.call('PUT', f'/resource_providers/{rp}/aggregates',
                       {'aggregates': [], 'resource_provider_generation': gen},
                       status=200)
    assert resp.json == {'aggregates': [],
                         'resource_provider_generation': gen + 1}
    client.call('PUT', f'/resource_providers/{rp}/aggregates',
                {'aggregates': ['nope'], 'resource_provider_generation':
                 gen + 1}, status=400)


def test_resource_classes(client):
    listed = client.call('GET', '/resource_classes').json['resource_classes']
    assert listed[0] == {'name': 'VCPU', 'links': [
        {'rel': 'self', 'href': '/resource_classes/VCPU'}]}
    client.call('GET', '/resource_classes', v='1.1', status=404)
    resp = client.call('POST', '/resource_classes', {'name': 'CUSTOM_FPGA'},
                       status=201)
    assert resp.headers['Location'].endswith('/resource_classes/CUSTOM_FPGA')
    client.call('POST', '/resource_classes', {'name': 'CUSTOM_FPGA'},
                status=409)
    client.call('POST', '/resource_classes', {'name': 'FPGA'}, status=400)
    client.call('GET', '/resource_classes/CUSTOM_FPGA', status=200)
    client.call('GET', '/resource_classes/CUSTOM_NOPE', status=404)
    client.call('PUT', '/resource_classes/CUSTOM_NEW', status=201)
    client.call('PUT', '/resource_classes/CUSTOM_NEW', status=204)
    client.call('PUT', '/resource_classes/VCPU', status=400)
    # 1.2-1.6: rename.
    resp = client.call('PUT', '/resource_classes/CUSTOM_NEW',
                       {'name': 'CUSTOM_RENAMED'}, v='1.6', status=200)
    assert resp.json['name'] == 'CUSTOM_RENAMED'
    client.call('GET', '/resource_classes/CUSTOM_NEW', status=404)
    rp = provider(client, 'rp', {'CUSTOM_FPGA': {'total': 2}})
    client.call('DELETE', '/resource_classes/CUSTOM_FPGA', status=409)
    client.call('DELETE', '/resource_classes/VCPU', status=400)
    client.call('DELETE', f'/resource_providers/{rp}/inventories',
                status=204)
    client.call('DELETE', '/resource_classes/CUSTOM_FPGA', status=204)
    client.call('DELETE', '/resource_classes/CUSTOM_FPGA', status=404)


def test_usages_of_provider_and_project(client):
    rp = provider(client, 'rp', {'VCPU': {'total': 8},
                                 'DISK_GB': {'total': 100}})
    allocate(client, new_uuid(), {rp: {'VCPU': 2}}, project='p1', user='u1')
    allocate(client, new_uuid(), {rp: {'VCPU': 1, 'DISK_GB': 10}},
             project='p1', user='u2', ctype='MIGRATION')
    allocate(client, new_uuid(), {rp: {'VCPU': 4}}, project='p2')
    resp = client.call('GET', f'/resource_providers/{rp}/usages').json
    assert resp == {'usages': {'VCPU': 7, 'DISK_GB': 10},
                    'resource_provider_generation': generation(client, rp)}
    assert client.call('GET', '/usages?project_id=p1', v='1.37').json == {
        'usages': {'VCPU': 3, 'DISK_GB': 10}}
    assert client.call('GET', '/usages?project_id=p1&user_id=u2',
                       v='1.9').json == {'usages': {'VCPU': 1, 'DISK_GB': 10}}
    assert client.call('GET', '/usages?project_id=p1').json == {'usages': {
        'INSTANCE': {'VCPU': 2, 'consumer_count': 1},
        'MIGRATION': {'VCPU': 1, 'DISK_GB': 10, 'consumer_count': 1}}}
    assert client.call('GET', '/usages?project_id=p1&consumer_type=all'
                       ).json == {'usages': {'all': {
                           'VCPU': 3, 'DISK_GB': 10, 'consumer_count': 2}}}
    client.call('GET', '/usages', status=400)
    client.call('GET', '/usages?project_id=p1', v='1.8', status=404)


def test_a_project_reader_reads_its_own_usages_only(client):
    client.call('GET', '/usages?project_id=p1', token='alice:p1',
                headers={'X-Roles': 'reader'}, status=200)
    client.call('GET', '/usages?project_id=p2', token='alice:p1',
                headers={'X-Roles': 'reader'}, status=403)
