"""Faults: SIGKILL and restart, RabbitMQ away and back, libvirt away and back.

After each, every claim acknowledged before the fault is still there and
placement converges to the tracker's view.  "RabbitMQ away" cuts the
daemon's own connections through a TCP relay: stopping the real broker would
break every other test running on this machine.
"""

import signal
import threading
import time
import uuid

import pytest

from nova_rt import exception
from tests.functional.compute import fixtures
from tests.functional.placement import fixtures as pf


def new_uuid():
    return str(uuid.uuid4())


def instance(memory_mb=64):
    return {'uuid': new_uuid(), 'project_id': 'p1', 'user_id': 'u1',
            'flavor': {'name': 'small', 'vcpus': 1, 'memory_mb': memory_mb,
                       'root_gb': 0, 'ephemeral_gb': 0, 'swap': 0},
            'vm_state': 'building'}


def placement_allocations(stack, consumers):
    found = {}
    for consumer in consumers:
        alloc = stack.placement.api.get_allocations({}, consumer_uuid=consumer)
        if alloc:
            found[consumer] = list(alloc.values())[0]
    return found


def assert_converged(stack, acknowledged):
    hs = stack.api.get_host_state(stack.ctx(), stack.host)
    assert set(acknowledged) <= set(hs['instances'])
    stack.api.run_audit(stack.ctx(), stack.host)
    in_placement = placement_allocations(stack, hs['instances'])
    assert set(in_placement) == set(hs['instances'])
    for uuid_ in acknowledged:
        assert in_placement[uuid_] == {'VCPU': 1, 'MEMORY_MB': 64}


def test_sigkill_mid_run_loses_no_acknowledged_claim(tmp_path, compute_placement):
    with fixtures.running_compute_stack(str(tmp_path), placement=compute_placement,
                                        client_timeout=4) as stack:
        acknowledged, errors = [], []
        stop = threading.Event()

        def claimer():
            while not stop.is_set():
                inst = instance()
                try:
                    stack.api.instance_claim(stack.ctx(), stack.host, instance=inst)
                except Exception as exc:   # the daemon died under this call
                    errors.append(exc)
                    return
                acknowledged.append(inst['uuid'])

        threads = [threading.Thread(target=claimer) for _ in range(4)]
        for t in threads:
            t.start()
        assert pf.wait_until(lambda: len(acknowledged) >= 20, timeout=60,
                             interval=0.2)
        stack.compute.kill()                       # SIGKILL, mid-claims
        stop.set()
        for t in threads:
            t.join(60)
        assert stack.compute.proc.returncode == -signal.SIGKILL
        stack.compute.start()
        assert_converged(stack, acknowledged)


def test_rabbitmq_away_and_back(tmp_path, compute_placement):
    proxy = fixtures.RabbitProxy()
    try:
        # Reconnect attempts every second or two, not oslo's default back-off
        # up to 30 s, to keep the test short.
        extra = ('heartbeat_interval = 1\n[oslo_messaging_rabbit]\n'
                 'rabbit_retry_backoff = 1\nrabbit_interval_max = 2\n')
        with fixtures.running_compute_stack(str(tmp_path), proxy=proxy, extra=extra,
                                            placement=compute_placement) as stack:
            before = [instance() for _ in range(5)]
            for inst in before:
                stack.api.instance_claim(stack.ctx(), stack.host, instance=inst)
            # Cut before the coalesced report goes out: the daemon must keep
            # the unsent view and send it once the bus is back.
            proxy.down()
            time.sleep(5)
            assert stack.compute.proc.poll() is None
            proxy.up()
            acknowledged = [i['uuid'] for i in before]
            assert pf.wait_until(
                lambda: set(placement_allocations(stack, acknowledged))
                == set(acknowledged), timeout=60, interval=0.2), \
                stack.compute.log_text()[-3000:]
            # And it serves calls again.
            after = instance()
            stack.api.instance_claim(stack.ctx(), stack.host, instance=after)
            assert_converged(stack, acknowledged + [after['uuid']])
            assert 'unreachable' in stack.compute.log_text() or \
                'Placement' in stack.compute.log_text()
    finally:
        proxy.close()


class FlakyHost:
    """The real test-driver host, with libvirt made unreachable on demand."""

    def __init__(self, uri):
        from nova_rt.virt import host
        self.real = host.LibvirtHost(uri)
        self.down = False

    def _check(self):
        if self.down:
            raise exception.HypervisorUnavailable(reason='test: libvirtd stopped')

    def get_host_info(self):
        self._check()
        return self.real.get_host_info()

    def list_domains(self):
        self._check()
        return self.real.list_domains()

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_libvirt_away_and_back(tmp_path, in_process_compute, compute_placement):
    placement = compute_placement
    vhost = fixtures.transport_url_of(placement)
    svc = in_process_compute(host_source=FlakyHost, transport_url=vhost,
                             exchange=placement.exchange)
    svc.start()
    api, transport = fixtures.compute_client(placement.exchange, url=vhost)
    stack = fixtures.ComputeStack(None, api, placement, svc.host, 'threading')
    try:
        first = instance()
        api.instance_claim(stack.ctx(), svc.host, instance=first)
        svc._host_source.down = True
        summary = api.run_audit(stack.ctx(), svc.host)
        assert summary['instances'] >= 1
        hs = api.get_host_state(stack.ctx(), svc.host)
        assert hs['hypervisor']['connected'] is False
        # Claims go on from the last known inventory.
        second = instance()
        api.instance_claim(stack.ctx(), svc.host, instance=second)
        svc._host_source.down = False
        api.run_audit(stack.ctx(), svc.host)
        assert api.get_host_state(stack.ctx(), svc.host)['hypervisor']['connected']
        assert_converged(stack, [first['uuid'], second['uuid']])
    finally:
        svc.stop()
        transport.cleanup()


def test_sighup_applies_mutable_options_and_sigterm_exits_zero(tmp_path, compute_placement):
    with fixtures.running_compute_stack(str(tmp_path),
                                        placement=compute_placement) as stack:
        hs = stack.api.get_host_state(stack.ctx(), stack.host)
        assert hs['allocation_ratios']['VCPU'] == 4.0
        reserved = hs['inventory']['MEMORY_MB']['reserved']
        stack.compute.write_config('cpu_allocation_ratio = 2.5\n'
                                   'reserved_host_memory_mb = 1024\n')
        stack.compute.signal(signal.SIGHUP)

        def applied():
            state = stack.api.get_host_state(stack.ctx(), stack.host)
            return (state['allocation_ratios']['VCPU'] == 2.5
                    and state['inventory']['MEMORY_MB']['reserved'] == 1024)
        assert pf.wait_until(applied, timeout=30, interval=0.2), stack.compute.log_text()[-2000:]
        assert reserved != 1024
        # A second SIGHUP must not kill the daemon.
        stack.compute.signal(signal.SIGHUP)
        time.sleep(1)
        assert stack.compute.proc.poll() is None
        providers = stack.placement.api.list_resource_providers({}, name=stack.host)
        stack.api.run_audit(stack.ctx(), stack.host)
        rp = stack.placement.api.get_resource_provider({}, uuid=providers[0]['uuid'])
        assert rp['inventories']['VCPU']['allocation_ratio'] == 2.5
        started = time.monotonic()
        assert stack.compute.terminate() == 0
        assert time.monotonic() - started < 15


@pytest.mark.parametrize('backend', ['threading', 'eventlet'])
def test_restart_keeps_root_provider(tmp_path, backend, compute_placement):
    with fixtures.running_compute_stack(str(tmp_path), backend=backend,
                                        placement=compute_placement) as stack:
        before = stack.placement.api.list_resource_providers({}, name=stack.host)
        assert stack.compute.terminate() == 0
        stack.compute.start()
        stack.api.run_audit(stack.ctx(), stack.host)
        after = stack.placement.api.list_resource_providers({}, name=stack.host)
        assert [p['uuid'] for p in after] == [p['uuid'] for p in before]
