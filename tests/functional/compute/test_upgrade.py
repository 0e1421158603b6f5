"""Rolling upgrades (issue 16 item 5): one release older and newer peers talk.

- The previous release's clients (its ``rpcapi.py`` files, read from git at
  test time, never copied into the package) call this release's compute
  daemon and placement service; so does a raw 1.0 call shaped as callers
  wrote it before ``update_migration`` took a ``migration``.
- This release's client calls a compute endpoint capped to 1.0 (its target
  says 1.0 and its table is the 1.0 table, so a 1.1 call is
  ``UnsupportedVersion`` and a 1.1 argument ``InvalidInput``) with
  ``[upgrade_levels] compute`` at ``1.0``, at the previous release's name,
  and at ``auto``; and back at this release's daemon, uncapped.
"""

import os
import subprocess
import types
import uuid

import oslo_messaging as messaging
import pytest

from nova_rt import exception
from nova_rt import rpc
from nova_rt.compute import methods
from nova_rt.compute import rpcapi
from tests.functional.compute import fixtures
from tests.functional.compute.test_rpc import instance
from tests.functional.compute.test_rpc import migration

#: The previous release: main as it was before this release's RPC changes
#: (message signatures, versions).
PREVIOUS = 'f9fdf1eaaa3ee96154057822faeae47665469eaa'
PREVIOUS_NAME = '2026.2'
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
OLD_HOST_SUFFIX = '-as-1.0'
OLD_TABLE = methods.TABLE.as_of('1.0')


def previous_release_module(path: str) -> types.ModuleType:
    """The previous release's ``path``, loaded as a module of its own."""
    shown = subprocess.run(['git', 'show', f'{PREVIOUS}:{path}'], cwd=ROOT,
                           capture_output=True, text=True)
    assert shown.returncode == 0, (
        f'the previous release comes from git history: {shown.stderr.strip()}')
    module = types.ModuleType(f'previous_{path.replace("/", "_")[:-3]}')
    exec(compile(shown.stdout, f'{PREVIOUS[:7]}:{path}', 'exec'),
         module.__dict__)
    return module


@OLD_TABLE.endpoint
class CappedAt10:
    """This release's tracker behind the 1.0 endpoint a 1.0 daemon has."""

    target = messaging.Target(version='1.0')

    def __init__(self, manager):
        self.manager = manager

    def _serve(self, name, context, arguments):
        try:
            OLD_TABLE.validate(name, arguments)
        except exception.InvalidInput:
            raise messaging.ExpectedException()
        return self.manager._serve(name, context, arguments)


@pytest.fixture
def upgraded(in_process_compute, compute_placement):
    """(service, transport, old host name): this release's daemon, and its
    tracker served a second time as a 1.0 daemon under another name."""
    placement = compute_placement
    vhost = fixtures.transport_url_of(placement)
    svc = in_process_compute(transport_url=vhost, exchange=placement.exchange)
    svc.start()
    _, transport = fixtures.compute_client(placement.exchange, url=vhost)
    old_host = svc.host + OLD_HOST_SUFFIX
    server = rpc.get_server(svc.conf, transport, rpc.compute_target(old_host),
                            [CappedAt10(svc.manager)])
    server.start()
    try:
        yield svc, transport, old_host
    finally:
        server.stop()
        server.wait()
        transport.cleanup()


def ctx():
    return {'request_id': 'req-' + str(uuid.uuid4()), 'user_id': 'u1',
            'project_id': 'p1'}


def test_previous_release_clients_against_this_release(upgraded,
                                                        compute_placement):
    svc, transport, _ = upgraded
    old_compute = previous_release_module('nova_rt/compute/rpcapi.py')
    old = old_compute.ComputeAPI(transport, timeout=15)
    inst = instance()
    claim = old.instance_claim(ctx(), svc.host, instance=inst)
    assert claim['resources'] == {'VCPU': 1, 'MEMORY_MB': 128, 'DISK_GB': 1}
    mig = migration(inst, svc.host, svc.host)
    old.resize_claim(ctx(), svc.host, instance=inst, migration=mig)
    old.update_migration(ctx(), svc.host, mig['uuid'], 'migrating')
    # The shape callers sent before the table: a plain 1.0 target and no
    # ``migration`` argument.
    raw = messaging.get_rpc_client(transport, messaging.Target(
        topic='nova-rt-compute', server=svc.host, version='1.0'))
    raw.call(ctx(), 'update_migration', migration_uuid=mig['uuid'],
             status='post-migrating')
    state = old.get_host_state(ctx(), svc.host)
    assert inst['uuid'] in state['instances']
    assert mig['uuid'] in state['migrations']
    with pytest.raises(old_compute.exception.ComputeResourcesUnavailable):
        old.instance_claim(ctx(), svc.host, instance=instance(
            flavor={**inst['flavor'], 'vcpus': 10 ** 6}))

    old_placement = previous_release_module('nova_rt/placement/rpcapi.py')
    papi = old_placement.PlacementAPI(compute_placement.transport, timeout=15)
    providers = papi.list_resource_providers({}, name=svc.host)
    assert [p['name'] for p in providers] == [svc.host]
    assert papi.get_resource_provider({}, uuid=providers[0]['uuid'])[
        'inventories']['VCPU']['total'] >= 1


def _moving(api, host, node):
    inst = instance()
    mig = migration(inst, node, node)
    api.resize_claim(ctx(), host, instance=inst, migration=mig)
    return mig


@pytest.mark.parametrize('cap', ['1.0', PREVIOUS_NAME])
def test_this_release_capped_against_a_1_0_daemon(upgraded, cap):
    svc, transport, old_host = upgraded
    uncapped = rpcapi.ComputeAPI(transport, timeout=15)
    capped = rpcapi.ComputeAPI(transport, version_cap=cap, timeout=15)
    mig = _moving(capped, old_host, svc.host)
    # Without the cap, the 1.1 argument reaches a daemon that cannot take it.
    with pytest.raises(messaging.RemoteError) as info:
        uncapped.update_migration(ctx(), old_host, mig['uuid'], 'migrating',
                                  migration=mig)
    assert info.value.exc_type == 'UnsupportedVersion'
    capped.update_migration(ctx(), old_host, mig['uuid'], 'migrating',
                            migration=mig)
    assert mig['uuid'] in capped.get_host_state(ctx(), old_host)['migrations']
    # What the cap left out, the 1.0 daemon would have refused.
    with pytest.raises(exception.InvalidInput,
                       match='migration: is not an argument'):
        messaging.get_rpc_client(transport, rpc.compute_target(old_host)).call(
            ctx(), 'update_migration', migration_uuid=mig['uuid'],
            status='migrating', migration=mig)


def test_auto_steps_down_for_the_old_daemon_only(upgraded):
    svc, transport, old_host = upgraded
    auto = rpcapi.ComputeAPI(transport, version_cap='auto', timeout=15)
    old_mig = _moving(auto, old_host, svc.host)
    new_mig = _moving(auto, svc.host, svc.host)
    auto.update_migration(ctx(), old_host, old_mig['uuid'], 'migrating',
                          migration=old_mig)
    assert not auto.can_send_version('1.1', old_host)
    # And back: this release's daemon takes 1.1, the full payload included.
    auto.update_migration(ctx(), svc.host, new_mig['uuid'], 'migrating',
                          migration=new_mig)
    assert auto.can_send_version('1.1', svc.host)
    # The argument arrived: the source of a cross-host move hears of a
    # migration it never claimed (a 1.0 daemon: MigrationNotFound).
    inst = instance()
    auto.instance_claim(ctx(), svc.host, instance=inst)
    away = migration(inst, svc.host, 'elsewhere', status='finished')
    auto.update_migration(ctx(), svc.host, away['uuid'], 'finished',
                          migration=away)
    assert away['uuid'] in auto.get_host_state(ctx(), svc.host)['migrations']
