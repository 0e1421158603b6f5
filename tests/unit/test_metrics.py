"""nova_rt.metrics: error classes, report lag, the endpoint's refusals."""

import socket
import urllib.request

import oslo_messaging as messaging
import pytest

from nova_rt import exception
from nova_rt import metrics


def test_a_refusal_is_counted_under_the_contract_class_it_carries():
    rpc = metrics.RpcMetrics('compute')
    with pytest.raises(messaging.ExpectedException):
        with rpc.call('instance_claim'):
            try:
                raise exception.ClaimConflict(reason='x')
            except exception.ClaimConflict:
                raise messaging.ExpectedException()
    with pytest.raises(KeyError):
        with rpc.call('instance_claim'):
            raise KeyError('x')
    with rpc.call('instance_claim'):
        pass
    def sample(name, **labels):
        return rpc.registry.get_sample_value(name, labels)

    assert sample('nova_rt_compute_rpc_errors_total', method='instance_claim',
                  error='ClaimConflict') == 1
    assert sample('nova_rt_compute_rpc_errors_total', method='instance_claim',
                  error='KeyError') == 1
    assert sample('nova_rt_compute_rpc_call_seconds_count',
                  method='instance_claim') == 3
    assert sample('nova_rt_compute_rpc_calls_in_flight') == 0


def test_report_lag_runs_from_the_first_change_to_the_acknowledgement():
    clock = iter([10.0, 13.5, 20.0, 21.0]).__next__
    observed = []
    lag = metrics.ReportLag(type('H', (), {'observe': observed.append}),
                            clock=clock)
    lag.changed()            # 10.0
    lag.changed()            # a later change: the first one counts
    lag.acknowledged()       # 13.5
    lag.acknowledged()       # nothing pending: nothing observed
    lag.changed()            # 20.0
    lag.nothing_new()
    lag.acknowledged()
    assert observed == [3.5]


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_the_endpoint_serves_its_registry_and_stops():
    own = metrics.PlacementMetrics()
    own.heartbeats.labels('accepted').inc(3)
    endpoint = metrics.Endpoint(own.registry, '127.0.0.1', _free_port())
    endpoint.start()
    try:
        with urllib.request.urlopen(
                f'http://127.0.0.1:{endpoint.port}/metrics', timeout=5) as r:
            text = r.read().decode()
    finally:
        endpoint.stop()
    assert 'nova_rt_placement_heartbeats_total{result="accepted"} 3.0' in text
    # Only this service's registry: nothing of the process-wide one.
    assert 'python_gc' not in text and 'nova_rt_compute' not in text
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', endpoint.port), timeout=1)


@pytest.mark.parametrize('host, option', [
    ('192.0.2.1', '[metrics] bind_host'),          # not an address of ours
    ('no-such-host.invalid', '[metrics] bind_host'),
])
def test_an_address_it_cannot_listen_on_names_bind_host(host, option):
    endpoint = metrics.Endpoint(metrics.ComputeMetrics().registry, host,
                                _free_port())
    with pytest.raises(exception.ConfigError) as info:
        endpoint.start()
    message = str(info.value)
    assert message.count(option) == 1 and '\n' not in message


def test_a_port_in_use_names_port():
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        endpoint = metrics.Endpoint(metrics.ComputeMetrics().registry,
                                    '127.0.0.1', taken.getsockname()[1])
        with pytest.raises(exception.ConfigError) as info:
            endpoint.start()
    assert '[metrics] port' in str(info.value)
    assert 'in use' in str(info.value)
