"""Group commit in a real nova-rt-compute, over RabbitMQ: claims that arrive
together share a commit, and every acknowledged one is on disk.

Each test runs its own daemon (threading backend, ``/metrics`` on, so that
the commits can be counted) against the session's placement, and ends with
SIGKILL and a restart: what the restarted daemon loads is what was durable.
"""

import os
import subprocess
import threading
import uuid

import pytest

from nova_rt import exception
from tests.functional.compute import fixtures
from tests.functional.compute import test_metrics

COMMITS = 'nova_rt_compute_store_commits_total'
WRITES = 'nova_rt_compute_store_writes_total'
FAILURES = 'nova_rt_compute_store_write_failures_total'


def instance(vcpus=1):
    return {'uuid': str(uuid.uuid4()), 'project_id': 'p1', 'user_id': 'u1',
            'flavor': {'name': f'f{vcpus}', 'vcpus': vcpus, 'memory_mb': 1,
                       'root_gb': 0, 'ephemeral_gb': 0, 'swap': 0,
                       'extra_specs': {}}}


class Daemon:
    """One nova-rt-compute with metrics, and a client."""

    def __init__(self, workdir, placement, extra=''):
        self.port = test_metrics.free_port()
        vhost = fixtures.transport_url_of(placement)
        self.compute = fixtures.ComputeProcess(
            str(workdir), f'gc-{uuid.uuid4().hex[:6]}', placement.exchange,
            transport_url=vhost, extra=extra,
            sections=test_metrics.metrics_section(self.port))
        self.compute.start()
        self.api, self.transport = fixtures.compute_client(
            placement.exchange, url=vhost, timeout=30)

    def ctx(self):
        return {'request_id': f'req-{uuid.uuid4()}', 'user_id': 'u1',
                'project_id': 'p1'}

    def claim(self, inst):
        return self.api.instance_claim(self.ctx(), self.compute.host,
                                       instance=inst)

    def instances(self) -> set:
        return set(self.api.get_host_state(
            self.ctx(), self.compute.host)['instances'])

    def counter(self, name) -> float:
        return test_metrics.value(test_metrics.scrape(self.port), name)

    def kill_and_restart(self):
        """SIGKILL, then start again: only what was durable comes back."""
        self.compute.kill()
        self.compute.start()

    def close(self):
        if self.transport is not None:
            self.transport.cleanup()
            self.transport = None
            assert self.compute.terminate() == 0, self.compute.log_text()[-3000:]


@pytest.fixture
def daemon(tmp_path, compute_placement):
    made = []

    def make(extra=''):
        made.append(Daemon(tmp_path, compute_placement, extra))
        return made[-1]
    yield make
    for each in made:
        each.close()


def concurrently(count, call):
    """``call(index)`` from ``count`` threads released together;
    ({index: result or exception})."""
    start = threading.Barrier(count)
    outcome = {}

    def run(index):
        start.wait()
        try:
            outcome[index] = call(index)
        except Exception as exc:
            outcome[index] = exc
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcome


def test_concurrent_claims_share_commits_and_survive_sigkill(daemon):
    node = daemon('cpu_allocation_ratio = 64.0\n')
    # One after the other: one commit each, nobody to share it with.
    before = node.counter(COMMITS)
    serial = [instance() for _ in range(10)]
    for inst in serial:
        node.claim(inst)
    assert node.counter(COMMITS) - before == 10

    # Sixteen callers at once, six claims each.
    before = node.counter(COMMITS), node.counter(WRITES)
    insts = [[instance() for _ in range(6)] for _ in range(16)]

    def six_claims(index):
        for inst in insts[index]:
            node.claim(inst)
        return 'acknowledged'
    outcome = concurrently(16, six_claims)
    assert set(outcome.values()) == {'acknowledged'}, outcome
    commits = node.counter(COMMITS) - before[0]
    writes = node.counter(WRITES) - before[1]
    assert writes == 96
    assert commits < writes, 'no two claims shared a commit'

    node.kill_and_restart()
    acknowledged = {i['uuid'] for i in serial} | {
        i['uuid'] for each in insts for i in each}
    assert node.instances() == acknowledged


def test_racing_for_the_last_slots_over_rpc_admits_exactly_them(daemon):
    # 8 CPUs at 1.0: 8 VCPU; 5 taken, 16 callers race for the 3 left.
    node = daemon('cpu_allocation_ratio = 1.0\n')
    for _ in range(5):
        node.claim(instance())
    racers = [instance() for _ in range(16)]
    outcome = concurrently(16, lambda i: node.claim(racers[i]))
    admitted = {racers[i]['uuid'] for i, r in outcome.items()
                if isinstance(r, dict)}
    refused = [r for r in outcome.values() if not isinstance(r, dict)]
    assert len(admitted) == 3
    assert len(refused) == 13 and all(
        isinstance(r, exception.ComputeResourcesUnavailable) for r in refused)
    state = node.api.get_host_state(node.ctx(), node.compute.host)
    assert state['vcpus_used'] == 8
    held = set(state['instances'])
    assert admitted <= held and len(held) == 8
    node.kill_and_restart()
    assert node.instances() == held


def test_claims_on_a_full_disk_are_acknowledged_only_when_durable(
        daemon, tmp_path):
    """state_path on a small tmpfs, filled up, then bursts of 16 concurrent
    claims: each is acknowledged and on disk, or refused with the
    contract's error and gone from memory too."""
    state = tmp_path / 'state-mount'
    state.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m',
                              'tmpfs', str(state)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip('cannot mount a tmpfs here')
    try:
        node = daemon(f'cpu_allocation_ratio = 64.0\nstate_path = {state}\n'
                      f'instances_path = {tmp_path}\n')
        kept = [instance() for _ in range(2)]
        for inst in kept:
            node.claim(inst)
        with open(state / 'ballast', 'wb', buffering=0) as f:
            try:
                while True:
                    f.write(b'\0' * 65536)
            except OSError:
                pass
        acknowledged = {i['uuid'] for i in kept}
        refused = set()
        for _ in range(20):
            burst = [instance() for _ in range(16)]
            outcome = concurrently(16, lambda i: node.claim(burst[i]))
            for index, result in outcome.items():
                if isinstance(result, dict):
                    acknowledged.add(burst[index]['uuid'])
                else:
                    assert isinstance(
                        result, exception.ComputeResourcesUnavailable), result
                    assert 'free space' in str(result)
                    refused.add(burst[index]['uuid'])
            if refused:
                break
        assert refused, 'the file system never filled up'
        assert node.counter(FAILURES) == len(refused)
        # Memory is what the store holds: the restart finds the same.
        in_memory = node.instances()
        assert in_memory == acknowledged
        os.unlink(state / 'ballast')
        node.kill_and_restart()
        assert node.instances() == in_memory
        # Room again: a refused claim goes through.
        again = dict(instance(), uuid=sorted(refused)[0])
        node.claim(again)
        assert again['uuid'] in node.instances()
        node.close()
    finally:
        subprocess.run(['umount', '-l', str(state)], check=False)
