"""The local store is never lost silently (issue 14, item 8), end to end.

Real nova-rt-placement and nova-rt-compute processes on RabbitMQ: claims
are made, the daemon is stopped, its store deleted (or damaged); the next
start is refused with one line that names the cause and the fix, placement
keeps every allocation, ``nova-rt-manage store recover`` rebuilds the
store, and the daemon starts again with the same claims and usage and
reports the same allocations.  A full state file system is a named error
that changes nothing.
"""

import os
import subprocess
import sys
import time
import uuid

import pytest

from nova_rt import exception
from tests.functional.compute import fixtures
from tests.functional.placement import fixtures as pf
from tests.functional.virt import hostxml


def new_uuid():
    return str(uuid.uuid4())


def instance(uuid_=None, vcpus=1, memory_mb=128, root_gb=1, project='p1'):
    return {'uuid': uuid_ or new_uuid(), 'project_id': project,
            'user_id': f'user-of-{project}',
            'flavor': {'name': f'f{vcpus}-{memory_mb}', 'vcpus': vcpus,
                       'memory_mb': memory_mb, 'root_gb': root_gb,
                       'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}},
            'vm_state': 'building'}


def ctx():
    return {'request_id': f'req-{new_uuid()}', 'user_id': 'u1',
            'project_id': 'p1'}


def manage(*args, timeout=120):
    return subprocess.run(
        [sys.executable, '-m', 'nova_rt.cmd.manage', *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, 'PYTHONWARNINGS': 'ignore'})


def refused_start(compute, timeout=120):
    """Start the daemon, which must exit 1; its output since the start."""
    compute.start(wait=False)
    code = compute.proc.wait(timeout)
    output = compute.log_text(since_start=True)
    assert code == 1, output[-3000:]
    return output


def remove_store(compute):
    for suffix in ('', '-wal', '-shm'):
        path = os.path.join(compute.state_path, 'compute.sqlite' + suffix)
        if os.path.exists(path):
            os.unlink(path)


def allocations(placement, consumers):
    return {c: placement.api.get_allocations({}, consumer_uuid=c)
            for c in consumers}


def figures(host_state):
    return {k: host_state[k] for k in (
        'vcpus_used', 'memory_mb_used', 'local_gb_used', 'running_vms',
        'stats')} | {'instances': sorted(host_state['instances'])}


@pytest.fixture
def stack(tmp_path):
    """placement (SQLite) + one compute daemon (not started) + a client."""
    workdir = str(tmp_path)
    db_url = f'sqlite:///{workdir}/placement.sqlite'
    with pf.running_placement(db_url, workdir) as placement:
        host = f'cmp-store-{uuid.uuid4().hex[:6]}'
        # Three domains run here; instances 0 and 1 are claimed for two of
        # them (vCPUs 1+i%4, memory 256*(1+i%8) MiB, as hostxml makes them).
        uri = hostxml.write_host_xml(os.path.join(workdir, 'host.xml'),
                                     n_domains=3, shutoff_every=100)
        compute = fixtures.ComputeProcess(
            workdir, host, placement.exchange,
            transport_url=fixtures.transport_url_of(placement),
            connection_uri=uri)
        api, transport = fixtures.compute_client(
            placement.exchange, url=fixtures.transport_url_of(placement))
        db_conf = os.path.join(workdir, 'placement-db.conf')
        with open(db_conf, 'w') as f:
            f.write(f'[placement_database]\nconnection = {db_url}\n')
        try:
            yield compute, api, placement, db_conf
        finally:
            compute.terminate()
            transport.cleanup()


def make_claims(compute, api):
    on_domains = [instance(hostxml.domain_uuid(i), vcpus=1 + i,
                           memory_mb=256 * (1 + i), project='p1')
                  for i in range(2)]
    without = [instance(vcpus=2, memory_mb=512, root_gb=5, project='p2'),
               instance(project='p3'), instance(memory_mb=64, root_gb=0)]
    claimed = on_domains + without
    for inst in claimed:
        api.instance_claim(ctx(), compute.host, instance=inst)
    api.update_instance(ctx(), compute.host, instance_uuid=claimed[0]['uuid'],
                        vm_state='active')
    return claimed


def claims_then_stop(compute, api, placement):
    """Start, claim, report, stop: (uuids, placement's allocations of them,
    the host's figures)."""
    compute.start()
    uuids = [i['uuid'] for i in make_claims(compute, api)]
    api.run_audit(ctx(), compute.host)
    before = figures(api.get_host_state(ctx(), compute.host))
    in_placement = allocations(placement, uuids)
    assert all(in_placement.values())
    assert compute.terminate() == 0
    return uuids, in_placement, before


def test_lost_store_refused_then_recovered_from_placement_database(stack):
    compute, api, placement, db_conf = stack
    uuids, in_placement, before = claims_then_stop(compute, api, placement)

    remove_store(compute)
    output = refused_start(compute)
    assert 'Traceback' not in output
    lines = [line for line in output.splitlines() if 'refuses to start' in line]
    assert len(lines) == 1, output
    assert 'compute.sqlite: is missing, but placement holds allocations' \
        in lines[0]
    assert f'nova-rt-manage --config-file {compute.config_file} store ' \
           'recover' in lines[0]
    # Nothing was erased, nothing was left behind for the next start.
    assert allocations(placement, uuids) == in_placement
    assert not os.path.exists(os.path.join(compute.state_path,
                                           'compute.sqlite'))

    dry = manage('--config-file', compute.config_file, '--config-file',
                 db_conf, 'store', 'recover', '--dry-run')
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert 'Dry run: nothing was written.' in dry.stdout
    assert not os.path.exists(os.path.join(compute.state_path,
                                           'compute.sqlite'))
    recovered = manage('--config-file', compute.config_file, '--config-file',
                       db_conf, 'store', 'recover')
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert 'Rebuilt (5 instances)' in recovered.stdout
    assert 'from the placement database sqlite:///' in recovered.stdout
    for line in ('flavors:', 'migrations:', 'placement has no allocation for it'):
        assert line in recovered.stdout

    compute.start()
    after = figures(api.get_host_state(ctx(), compute.host))
    # As before, as far as recoverable: every claim, usage and owner; the
    # instances without a domain are active now (their state is not in
    # placement).
    assert after['instances'] == before['instances']
    for key in ('vcpus_used', 'memory_mb_used', 'local_gb_used',
                'running_vms'):
        assert after[key] == before[key], key
    for project in ('p1', 'p2', 'p3'):
        assert after['stats'][f'num_proj_{project}'] == \
            before['stats'][f'num_proj_{project}']
    summary = api.run_audit(ctx(), compute.host)
    assert summary['unmanaged_domains'] == 1
    assert allocations(placement, uuids) == in_placement
    # The rebuilt claims are live ones: freed, claimed anew.
    api.abort_instance_claim(ctx(), compute.host, instance_uuid=uuids[2])
    api.instance_claim(ctx(), compute.host, instance=instance())
    assert pf.wait_until(lambda: not placement.api.get_allocations(
        {}, consumer_uuid=uuids[2]), timeout=30)


def test_recovery_over_rpc_then_a_damaged_store(stack):
    compute, api, placement, _db_conf = stack
    uuids, in_placement, _ = claims_then_stop(compute, api, placement)

    # A zero-length store is refused like a missing one, and kept.
    remove_store(compute)
    open(os.path.join(compute.state_path, 'compute.sqlite'), 'w').close()
    output = refused_start(compute)
    assert 'compute.sqlite: is empty (0 bytes), but placement holds' in output

    # Without placement's database, only the consumers running a domain
    # here can be found: a partial store is written only when asked for.
    partial = manage('--config-file', compute.config_file, 'store', 'recover')
    assert partial.returncode == 1
    assert 'placement counts' in partial.stdout
    assert '--allow-partial' in partial.stderr
    partial = manage('--config-file', compute.config_file, 'store', 'recover',
                     '--allow-partial')
    assert partial.returncode == 0, partial.stdout + partial.stderr
    assert 'Rebuilt (2 instances)' in partial.stdout
    assert 'previous file is kept as' in partial.stdout
    compute.start()
    state = api.get_host_state(ctx(), compute.host)
    assert sorted(state['instances']) == sorted(uuids[:2])
    api.run_audit(ctx(), compute.host)
    assert allocations(placement, uuids[:2]) == {
        u: in_placement[u] for u in uuids[:2]}
    assert compute.terminate() == 0

    # A damaged store: one clear line, no traceback, the fix named.
    store = os.path.join(compute.state_path, 'compute.sqlite')
    with open(store, 'r+b') as f:
        f.write(b'garbage!' * 16)
    output = refused_start(compute)
    assert 'Traceback' not in output
    assert f'Local state store {store}: is damaged' in output
    assert 'store recover' in output
    again = manage('--config-file', compute.config_file, 'store', 'recover',
                   '--allow-partial')
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'Local state store' in again.stdout and 'damaged' in again.stdout
    compute.start()
    assert sorted(api.get_host_state(ctx(), compute.host)['instances']) == \
        sorted(uuids[:2])
    # A store that is not lost is not replaced.
    assert compute.terminate() == 0
    kept = manage('--config-file', compute.config_file, 'store', 'recover')
    assert kept.returncode == 1 and 'it is not lost' in kept.stderr


def test_full_state_file_system_is_a_named_error(tmp_path):
    """state_path on a small tmpfs, filled up: a claim is refused with the
    contract's ComputeResourcesUnavailable and changes nothing; once there
    is room, the same call goes through."""
    state = tmp_path / 'state-mount'
    state.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs',
                              str(state)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip('cannot mount a tmpfs here')
    try:
        # DISK_GB comes from instances_path: not the file system filled.
        with fixtures.running_compute_stack(
                str(tmp_path), extra=f'state_path = {state}\n'
                                     f'instances_path = {tmp_path}') as stack:
            kept = [instance(memory_mb=1, root_gb=0) for _ in range(2)]
            for inst in kept:
                stack.api.instance_claim(stack.ctx(), stack.host, instance=inst)
            before = stack.api.get_host_state(stack.ctx(), stack.host)
            with open(state / 'ballast', 'wb', buffering=0) as f:
                try:
                    while True:
                        f.write(b'\0' * 65536)
                except OSError:
                    pass
            refused = None
            for _ in range(200):
                inst = instance(memory_mb=1, root_gb=0)
                try:
                    stack.api.instance_claim(stack.ctx(), stack.host,
                                             instance=inst)
                except exception.ComputeResourcesUnavailable as exc:
                    refused = (inst, exc)
                    break
            assert refused is not None, 'the file system never filled up'
            inst, exc = refused
            assert 'local state store' in str(exc) and str(state) in str(exc)
            assert 'free space' in str(exc)
            during = stack.api.get_host_state(stack.ctx(), stack.host)
            assert inst['uuid'] not in during['instances']
            assert set(before['instances']) <= set(during['instances'])
            assert during['memory_mb_used'] == before['memory_mb_used'] + \
                len(during['instances']) - len(before['instances'])
            os.unlink(state / 'ballast')
            stack.api.instance_claim(stack.ctx(), stack.host, instance=inst)
            after = stack.api.get_host_state(stack.ctx(), stack.host)
            assert inst['uuid'] in after['instances']
            assert after['memory_mb_used'] == during['memory_mb_used'] + 1
    finally:
        subprocess.run(['umount', '-l', str(state)], check=False)


def test_lost_store_of_an_idle_host_keeps_its_provider(stack):
    compute, api, placement, _db_conf = stack
    compute.start()
    api.run_audit(ctx(), compute.host)
    before = placement.api.list_resource_providers({}, name=compute.host)
    assert compute.terminate() == 0
    remove_store(compute)
    compute.start()
    assert 'nothing allocated: keeping that provider' in \
        compute.log_text(since_start=True)
    api.run_audit(ctx(), compute.host)
    after = placement.api.list_resource_providers({}, name=compute.host)
    assert [p['uuid'] for p in after] == [p['uuid'] for p in before]


def test_lost_store_with_the_broker_away_is_refused_in_bounded_time(
        in_process_compute, monkeypatch):
    """RabbitMQ cut off: the start cannot ask placement; it waits the bound
    (shortened here), then refuses, instead of hanging or starting empty."""
    from nova_rt.compute import recovery
    monkeypatch.setattr(recovery, 'START_WAIT', 3.0)
    proxy = fixtures.RabbitProxy()
    proxy.down()
    svc = in_process_compute(transport_url=proxy.url_for(fixtures.RABBIT_URL))
    started = time.monotonic()
    try:
        with pytest.raises(exception.LocalStoreLost) as err:
            svc.start()
        assert time.monotonic() - started < 60
        assert 'placement did not answer within 3s' in str(err.value)
        assert 'is missing' in str(err.value)
        assert not os.path.exists(os.path.join(svc.conf.state_path,
                                               'compute.sqlite'))
    finally:
        # Not svc._transport.cleanup(): it would wait for the question still
        # trying to reach the broker (the daemon just exits).
        proxy.close()
