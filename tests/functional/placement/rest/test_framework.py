"""What every request goes through: microversions, errors, request ids,
routes, media types, authentication and policy."""

import json
import uuid as uuid_mod

import pytest

from nova_rt.placement.rest import app as app_mod
from nova_rt.placement.rest import microversion

HEADER = 'OpenStack-API-Version'


def test_root_document_without_a_token(client):
    resp = client.get('/')
    assert resp.status_int == 200
    assert resp.json == {'versions': [{
        'id': 'v1.0', 'min_version': '1.0', 'max_version': str(microversion.MAX),
        'status': 'CURRENT', 'links': [{'rel': 'self', 'href': ''}]}]}
    assert resp.headers[HEADER] == 'placement 1.0'
    assert resp.headers['Vary'] == 'openstack-api-version'
    assert resp.headers['x-openstack-request-id'].startswith('req-')


def test_latest_is_the_maximum_and_is_echoed(client):
    resp = client.get('/', headers={HEADER: 'placement latest'})
    assert resp.headers[HEADER] == f'placement {microversion.MAX}'
    assert resp.headers['Cache-Control'] == 'no-cache'
    assert 'Last-Modified' in resp.headers


@pytest.mark.parametrize('value, status', [
    ('placement 1.x', 400), ('placement 1', 400), ('placement 2.0', 406),
    ('placement 1.99', 406), ('placement 0.9', 406)])
def test_bad_microversions(client, value, status):
    resp = client.get('/traits', headers={HEADER: value,
                                          'X-Auth-Token': 'admin'},
                      status=status)
    error = resp.json['errors'][0]
    assert error['status'] == status
    assert error['request_id'] == resp.headers['x-openstack-request-id']
    if status == 406:
        assert error['min_version'] == '1.0'
        assert error['max_version'] == str(microversion.MAX)


def test_error_code_only_from_1_23(client):
    old = client.call('GET', '/traits/CUSTOM_NOPE', v='1.22', status=404)
    assert 'code' not in old.json['errors'][0]
    new = client.call('GET', '/traits/CUSTOM_NOPE', v='1.23', status=404)
    assert new.json['errors'][0]['code'] == 'placement.undefined_code'
    assert new.json['errors'][0]['title'] == 'Not Found'


def test_unknown_route_404_and_wrong_method_405_with_allow(client):
    resp = client.call('GET', '/nothing/here', status=404)
    assert resp.json['errors'][0]['status'] == 404
    resp = client.call('POST', '/traits', status=405)
    assert resp.headers['Allow'] == 'GET'
    assert resp.headers[HEADER] == f'placement {microversion.MAX}'
    resp = client.call('PATCH', '/traits/CUSTOM_A', status=405)
    assert sorted(resp.headers['Allow'].split(', ')) == ['DELETE', 'GET', 'PUT']


def test_route_below_its_microversion_is_404(client):
    client.call('GET', '/traits', v='1.5', status=404)
    client.call('GET', '/traits', v='1.6', status=200)


def test_a_callers_request_id_is_kept_a_garbled_one_replaced(client):
    given = 'req-12345678-1234-1234-1234-123456789abc'
    resp = client.get('/', headers={'X-Openstack-Request-Id': given})
    assert resp.headers['x-openstack-request-id'] == given
    resp = client.get('/', headers={'X-Openstack-Request-Id': 'evil\x01'})
    assert resp.headers['x-openstack-request-id'] != 'evil\x01'


def test_body_must_be_json(client):
    uuid = '5b7a8f2e-0000-4000-8000-000000000001'
    resp = client.put(f'/resource_providers/{uuid}/traits', 'traits=x',
                      headers={**_admin('1.6'),
                               'Content-Type': 'text/plain'},
                      status=415)
    assert 'application/json' in resp.json['errors'][0]['detail']


def test_a_body_over_the_bound_is_413_and_changes_nothing(client):
    body = json.dumps({'name': 'big', 'uuid': str(uuid_mod.uuid4()),
                       'pad': 'x' * app_mod.MAX_BODY})
    resp = client.post('/resource_providers', body,
                       headers={**_admin('1.39'),
                                'Content-Type': 'application/json'},
                       status=413)
    assert 'larger than' in resp.json['errors'][0]['detail']
    listed = client.call('GET', '/resource_providers', status=200)
    assert listed.json['resource_providers'] == []


def test_accept_other_than_json_is_406(client):
    client.get('/traits', headers={**_admin('1.6'), 'Accept': 'text/html'},
               status=406)
    client.get('/traits', headers={**_admin('1.6'),
                                   'Accept': 'text/html, application/json'},
               status=200)


def _admin(v):
    return {'X-Auth-Token': 'admin', HEADER: f'placement {v}'}


def test_no_token_is_401(client):
    resp = client.get('/traits', headers={HEADER: 'placement 1.6'},
                      status=401)
    assert resp.json['errors'][0]['status'] == 401
    assert resp.json['errors'][0]['request_id'] == resp.headers[
        'x-openstack-request-id']


def test_a_user_without_roles_is_403_and_nothing_changes(client):
    resp = client.call('PUT', '/traits/CUSTOM_DENIED', token='alice:p1',
                       status=403)
    assert 'placement:traits:update' in resp.json['errors'][0]['detail']
    client.call('GET', '/traits/CUSTOM_DENIED', status=404)
    client.call('GET', '/traits', token='bob', status=403)


def test_x_roles_names_the_roles_under_noauth2(client):
    client.call('GET', '/traits', token='svc:p1',
                headers={'X-Roles': 'service'}, status=200)


def test_x_project_id_names_the_project_under_noauth2(client):
    # GET /usages is the one read a project's reader may make, for its own
    # project only (Placement's usage-secure-rbac.yaml).
    reader = {'X-Roles': 'reader', 'X-Project-Id': 'p1'}
    client.call('GET', '/usages?project_id=p1', token='user', headers=reader,
                status=200)
    client.call('GET', '/usages?project_id=p2', token='user', headers=reader,
                status=403)
    # Without the header the token names the project.
    client.call('GET', '/usages?project_id=p1', token='user:p1',
                headers={'X-Roles': 'reader'}, status=200)
    client.call('GET', '/usages?project_id=p1', token='user',
                headers={'X-Roles': 'reader'}, status=403)


def test_errors_are_json_unless_only_html_or_text_is_accepted(client):
    for accept in (None, 'application/json', '*/*'):
        headers = {'X-Auth-Token': 'admin'}
        if accept:
            headers['Accept'] = accept
        resp = client.get('/nothing', headers=headers, status=404)
        assert resp.content_type == 'application/json'
    resp = client.get('/nothing', headers={'Accept': 'text/html',
                                           'X-Auth-Token': 'admin'},
                      status=404)
    assert resp.content_type == 'text/html'
    assert 'The resource could not be found' in resp.text
    resp = client.get('/', headers={'Accept': 'text/html',
                                    HEADER: 'placement 0.5'}, status=406)
    assert 'Unacceptable version header: 0.5' in resp.text
