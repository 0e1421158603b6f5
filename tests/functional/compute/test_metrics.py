"""/metrics of real daemons, and oslo.messaging's ping, over RabbitMQ.

One placement (eventlet, metrics on, ``rpc_ping_enabled`` on) and one
nova-rt-compute (threading, metrics on, ping left off) serve the module, so
that both kinds of endpoint serve; each test scrapes before and after what
it does and checks the difference.
"""

import socket
import time
import urllib.request
import uuid

import oslo_messaging as messaging
import pytest
from prometheus_client import parser

from nova_rt import exception
from nova_rt import rpc
from tests.functional.compute import fixtures
from tests.functional.placement import fixtures as placement_fixtures

REPORT_DELAY = 1.0      # nova_rt.compute.service.REPORT_DELAY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def metrics_section(port: int) -> str:
    return f'[metrics]\nenabled = true\nport = {port}\n'


def scrape(port: int) -> dict:
    """(sample name, sorted labels) -> value."""
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics',
                                timeout=5) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in parser.text_string_to_metric_families(text)
            for sample in family.samples}


def scrape_until(port: int, ready, timeout: float = 15) -> dict:
    """The first scrape for which ``ready(figures)`` holds (or the last)."""
    deadline = time.monotonic() + timeout
    figures = scrape(port)
    while not ready(figures) and time.monotonic() < deadline:
        time.sleep(0.1)
        figures = scrape(port)
    return figures


def value(figures: dict, name: str, **labels) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('metrics'))
    placement_port, compute_port = free_port(), free_port()
    url = f'sqlite:///{workdir}/placement.sqlite'
    with placement_fixtures.running_placement(
            url, workdir, extra_conf='concurrency_backend = eventlet\n'
            'rpc_ping_enabled = true\n'
            + metrics_section(placement_port)) as placement:
        # (``extra`` ends the [DEFAULT] section: [metrics] follows it.)
        with fixtures.running_compute_stack(
                workdir, placement=placement,
                extra=metrics_section(compute_port)) as stack:
            stack.placement_port = placement_port
            stack.compute_port = compute_port
            yield stack


def instance(memory_mb=128):
    return {'uuid': str(uuid.uuid4()), 'project_id': 'p1', 'user_id': 'u1',
            'flavor': {'name': 'm', 'vcpus': 1, 'memory_mb': memory_mb,
                       'root_gb': 1, 'ephemeral_gb': 0, 'swap': 0,
                       'extra_specs': {}},
            'vm_state': 'building', 'task_state': None, 'os_type': 'linux',
            'is_volume_backed': False}


def test_compute_counts_claims_refusals_audits_and_report_lag(stack):
    port = stack.compute_port
    lag = 'nova_rt_compute_report_lag_seconds_count'
    # (The first report, at start-up, is the first lag observed.)
    before = scrape_until(port, lambda f: value(f, lag))
    for _ in range(3):
        stack.api.instance_claim(stack.ctx(), stack.host, instance=instance())
    with pytest.raises(exception.ComputeResourcesUnavailable):
        stack.api.instance_claim(stack.ctx(), stack.host,
                                 instance=instance(memory_mb=10 ** 7))
    stack.api.run_audit(stack.ctx(), stack.host)
    after = scrape_until(port, lambda f: moved(before, f, lag))
    assert moved(before, after, 'nova_rt_compute_rpc_call_seconds_count',
                 method='instance_claim') == 4
    assert moved(before, after, 'nova_rt_compute_rpc_errors_total',
                 method='instance_claim',
                 error='ComputeResourcesUnavailable') == 1
    assert moved(before, after, 'nova_rt_compute_rpc_call_seconds_count',
                 method='run_audit') == 1
    assert moved(before, after, 'nova_rt_compute_audit_seconds_count') == 1
    assert moved(before, after, 'nova_rt_compute_audit_failures_total') == 0
    # The claims were reported together, at the latest REPORT_DELAY later
    # (the run_audit's report may have taken them first, sooner).
    count = moved(before, after, lag)
    mean = moved(before, after, 'nova_rt_compute_report_lag_seconds_sum') / count
    assert 0 < mean < REPORT_DELAY + 1.0, after
    for idle in ('nova_rt_compute_rpc_calls_in_flight',
                 'nova_rt_compute_rpc_calls_queued',
                 'nova_rt_compute_placement_unreachable'):
        assert value(after, idle) == 0, idle


def test_placement_counts_calls_errors_and_heartbeats(stack):
    port = stack.placement_port
    api = stack.placement.api
    before = scrape(port)
    missing = str(uuid.uuid4())
    for _ in range(2):
        with pytest.raises(messaging.RemoteError) as info:
            api.get_resource_provider({}, uuid=missing)
        assert info.value.exc_type == 'ResourceProviderNotFound'
    # A heartbeat for no provider of ours is served and ignored.
    api.heartbeat({}, host='nobody', root_uuid=missing,
                  sent_at='2026-01-01T00:00:00+00:00')
    ignored = 'nova_rt_placement_heartbeats_total'
    # The compute daemon beats every 2 s (heartbeat_interval).
    after = scrape_until(
        port, lambda f: moved(before, f, ignored, result='ignored')
        and value(f, ignored, result='accepted'))
    assert moved(before, after, ignored, result='ignored') == 1
    assert moved(before, after, 'nova_rt_placement_rpc_call_seconds_count',
                 method='get_resource_provider') == 2
    assert moved(before, after, 'nova_rt_placement_rpc_errors_total',
                 method='get_resource_provider',
                 error='ResourceProviderNotFound') == 2
    assert value(after, ignored, result='accepted') >= 1
    assert value(after, 'nova_rt_placement_rpc_call_seconds_count',
                 method='report_provider_tree') >= 1


def _raw_call(transport, target, method: str, timeout: float = 5):
    client = messaging.get_rpc_client(transport, target, timeout=timeout)
    return client.call({}, method)


def test_ping_answers_pong_where_enabled_and_nothing_else_opens(stack):
    transport = stack.placement.transport
    target = rpc.placement_target()
    assert _raw_call(transport, target, rpc.PING_METHOD) == 'pong'
    # Methods outside the table stay refused with the ping on.
    for method in ('_serve', 'target', 'engine'):
        with pytest.raises(messaging.RemoteError) as info:
            _raw_call(transport, target, method)
        assert info.value.exc_type == 'NoSuchMethod'


def test_ping_is_refused_where_disabled(stack):
    transport = placement_fixtures.make_transport(
        stack.placement.exchange, stack.placement.transport_url)
    try:
        with pytest.raises(messaging.RemoteError) as info:
            _raw_call(transport, rpc.compute_target(stack.host),
                      rpc.PING_METHOD)
        assert info.value.exc_type == 'NoSuchMethod'
    finally:
        transport.cleanup()


def test_placement_gone_shows_as_unreachable(stack):
    # Stops the module's placement: the last test of the module that uses it.
    gauge = 'nova_rt_compute_placement_unreachable'
    port = stack.compute_port
    assert value(scrape(port), gauge) == 0
    assert placement_fixtures.stop_process(stack.placement.processes[0]) == 0
    stack.api.instance_claim(stack.ctx(), stack.host, instance=instance())
    # Reported REPORT_DELAY later; the call then waits for its timeout.
    after = scrape_until(port, lambda f: value(f, gauge) == 1, timeout=30)
    assert value(after, gauge) == 1


def test_a_metrics_port_in_use_stops_the_daemon_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        compute = fixtures.ComputeProcess(
            str(tmp_path), 'metrics-busy', fixtures.unique_exchange(),
            extra=metrics_section(port))
        started = time.monotonic()
        compute.start(wait=False)
        try:
            code = compute.proc.wait(30)
        finally:
            compute.kill()
    elapsed = time.monotonic() - started
    lines = [line for line in compute.log_text().splitlines()
             if '[metrics] port' in line]
    assert code != 0
    assert len(lines) == 1 and 'already in use' in lines[0], \
        compute.log_text()[-2000:]
    assert elapsed < 15
