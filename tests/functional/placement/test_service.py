"""The nova-rt-placement process over RabbitMQ, and nova-rt-manage."""

import subprocess
import sys
import time

import pytest

from nova_rt.placement import db
from tests.functional.placement import fixtures
from tests.functional.placement.helpers import CTX, compute_node, consumer, new_uuid


def _remote_name(call):
    with pytest.raises(Exception) as err:
        call()
    return getattr(err.value, 'exc_type', type(err.value).__name__)


def test_rpc_round_trip_errors_and_logging(placement_rpc):
    api = placement_rpc.api
    root = new_uuid()
    ctx = {**CTX, 'request_id': 'req-0123456789abcdef'}
    gens = api.report_provider_tree(ctx, host='h1', providers=[
        compute_node(root)])
    assert gens == {root: 1}
    c = new_uuid()
    gens = api.report_allocations(ctx, host='h1', root_uuid=root,
                                  generation=1, full=True, allocations={
                                      c: consumer({root: {'VCPU': 2}})})
    assert gens == {root: 2}
    assert api.get_allocations(ctx, consumer_uuid=c) == {root: {'VCPU': 2}}
    cands = api.get_allocation_candidates(ctx, resources={'VCPU': 1})
    assert [x['root_uuid'] for x in cands] == [root]
    assert api.list_resource_providers(ctx, host='h1')[0]['alive'] is True
    api.heartbeat(ctx, host='h1', root_uuid=root,
                  sent_at='2026-11-21T04:00:00Z')

    assert _remote_name(lambda: api.report_allocations(
        ctx, host='h1', root_uuid=root, generation=1, full=True,
        allocations={})) == 'ResourceProviderGenerationConflict'
    assert _remote_name(lambda: api.get_resource_provider(
        ctx, uuid=new_uuid())) == 'ResourceProviderNotFound'
    assert _remote_name(lambda: api.report_provider_tree(
        ctx, host='h1', providers='nope')) == 'InvalidInput'
    assert _remote_name(lambda: api.report_allocations(
        ctx, host='h1', root_uuid=root, generation=2, full=True,
        allocations={c: consumer({root: {'VCPU': 8}}),
                     new_uuid(): consumer({root: {'VCPU': 8}}),
                     new_uuid(): consumer({root: {'VCPU': 8}}),
                     new_uuid(): consumer({root: {'VCPU': 8}}),
                     new_uuid(): consumer({root: {'VCPU': 1}})})
    ) == 'AllocationCapacityExceeded'
    assert _remote_name(lambda: api.report_provider_tree(
        ctx, host='intruder', providers=[compute_node(root, generation=2)])
    ) == 'NotAuthorized'
    assert _remote_name(lambda: api.delete_resource_provider(
        ctx, uuid=root)) == 'InventoryInUse'
    assert api.get_usages(ctx, uuid=root)['VCPU'] == 2

    deadline = time.monotonic() + 10
    while 'Refused report_provider_tree from host intruder' \
            not in placement_rpc.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = placement_rpc.log_text()
    assert 'Refused report_provider_tree from host intruder' in log
    assert 'req-0123456789abcdef' in log
    # Our pool size when the configuration names none; providers created
    # at INFO, the routine tree reports not.
    assert '(4 worker threads)' in log
    assert f"Providers of host h1: created ['{root}'], removed []" in log
    assert 'Provider tree of host' not in log
    assert 'guest:guest' not in log
    assert 'Traceback' not in log


def _run(args, timeout=60):
    return subprocess.run([sys.executable, '-m', *args], capture_output=True,
                          text=True, timeout=timeout)


def test_bad_config_exits_1_with_one_line(tmp_path):
    conf = tmp_path / 'bad.conf'
    conf.write_text('[placement]\nheartbeat_timeout = 0\n')
    result = _run(['nova_rt.cmd.placement', '--config-file', str(conf)])
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines()
             if line.startswith('nova-rt-placement')]
    assert len(lines) == 1 and 'heartbeat_timeout' in lines[0]


def test_unsynced_database_refused_then_manage_sync(tmp_path):
    url = f'sqlite:///{tmp_path}/p.sqlite'
    conf = fixtures.write_config(tmp_path / 'p.conf', url, 'x',
                                 str(tmp_path / 'state'))
    start = _run(['nova_rt.cmd.placement', '--config-file', conf])
    assert start.returncode == 1 and 'nova-rt-manage db sync' in start.stderr
    version = _run(['nova_rt.cmd.manage', '--config-file', conf, 'db',
                    'version'])
    assert version.returncode == 1
    sync = _run(['nova_rt.cmd.manage', '--config-file', conf, 'db', 'sync'])
    assert sync.returncode == 0, sync.stderr
    version = _run(['nova_rt.cmd.manage', '--config-file', conf, 'db',
                    'version'])
    assert version.returncode == 0 and version.stdout.strip() == db.head()


def test_manage_masks_password_of_unreachable_database(tmp_path):
    url = 'postgresql+psycopg://nova:s3cr3tpw@127.0.0.1:1/placement'
    conf = fixtures.write_config(tmp_path / 'p.conf', url, 'x',
                                 str(tmp_path / 'state'))
    result = _run(['nova_rt.cmd.manage', '--config-file', conf, 'db', 'sync'])
    assert result.returncode == 1
    assert 's3cr3tpw' not in result.stdout + result.stderr
    assert 'nova:***@127.0.0.1' in result.stderr


def test_eventlet_backend_serves_and_stops(tmp_path):
    url = f'sqlite:///{tmp_path}/p.sqlite'
    with fixtures.running_placement(
            url, str(tmp_path),
            extra_conf='concurrency_backend = eventlet\n'
                       'executor_thread_pool_size = 7') as placement:
        root = new_uuid()
        assert placement.api.report_provider_tree(
            CTX, host='h1', providers=[compute_node(root)]) == {root: 1}
        assert [c['host'] for c in placement.api.get_allocation_candidates(
            CTX, resources={'VCPU': 1})] == ['h1']
        # The operator's pool size wins over ours.
        assert '(7 worker threads)' in placement.log_text()
    # running_placement asserted exit code 0 after SIGTERM.
