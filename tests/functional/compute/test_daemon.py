"""The daemon's outside contracts: systemd readiness and watchdog, versioned
notifications on RabbitMQ when enabled."""

import socket
import threading
import time
import uuid

import oslo_messaging as messaging
import pytest

from nova_rt import exception
from tests.functional.compute import fixtures


def test_systemd_ready_and_watchdog(tmp_path, compute_placement):
    path = str(tmp_path / 'notify.sock')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(1)
    placement = compute_placement
    compute = fixtures.ComputeProcess(
        str(tmp_path), f'sd-{uuid.uuid4().hex[:6]}', placement.exchange,
        transport_url=fixtures.transport_url_of(placement))
    try:
        compute.start(env={'NOTIFY_SOCKET': path, 'WATCHDOG_USEC': '2000000'})
        received = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and received.count(b'WATCHDOG=1') < 2:
            try:
                received.append(sock.recv(256))
            except socket.timeout:
                pass
        # READY only once the RPC server listens, i.e. after "ready in";
        # before it only STATUS lines (tests/functional/test_sd_notify.py).
        first = next(m for m in received if not m.startswith(b'STATUS='))
        assert first.startswith(b'READY=1\n')
        assert received.count(b'WATCHDOG=1') >= 2
    finally:
        assert compute.terminate() == 0
        sock.close()



def test_an_idle_daemon_stops_within_seconds(tmp_path, compute_placement):
    # oslo.messaging's poll loops wait longer and longer on an idle
    # connection (up to 5 s each) and see a stop only between waits: before
    # nova_rt.rpc.bound_idle_poll, this daemon took 5-6 s to stop; now about
    # 1 s (4 s leaves room for a slow machine).
    placement = compute_placement
    compute = fixtures.ComputeProcess(
        str(tmp_path), f'idle-{uuid.uuid4().hex[:6]}', placement.exchange,
        transport_url=fixtures.transport_url_of(placement))
    compute.start()
    time.sleep(7)
    started = time.monotonic()
    assert compute.terminate() == 0
    assert time.monotonic() - started < 4, compute.log_text()[-2000:]


class Collector:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            self.events.append((publisher_id, event_type, payload))

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self.info(ctxt, publisher_id, event_type, payload, metadata)

    def wait_for(self, event_type, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.events if e[1] == event_type]
            if found:
                return found
            time.sleep(0.1)
        return []


@pytest.fixture
def notification_listener(compute_placement):
    from nova_rt import conf as nova_conf
    placement = compute_placement
    conf = nova_conf.CONF
    url = fixtures.transport_url_of(placement)
    if 'control_exchange' not in conf:
        messaging.get_rpc_transport(conf, url=url).cleanup()
    conf.set_override('control_exchange', placement.exchange)
    try:
        transport = messaging.get_notification_transport(conf, url=url)
    finally:
        conf.clear_override('control_exchange')
    collector = Collector()
    listener = messaging.get_notification_listener(
        transport, [messaging.Target(topic='versioned_notifications')], [collector],
        executor='threading')
    listener.start()
    try:
        yield collector
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()


def test_versioned_notifications_when_enabled(tmp_path, compute_placement,
                                              notification_listener):
    sections = '[oslo_messaging_notifications]\ndriver = messagingv2\n'
    with fixtures.running_compute_stack(str(tmp_path), placement=compute_placement,
                                        extra=sections) as stack:
        inst = {'uuid': str(uuid.uuid4()), 'project_id': 'p1', 'user_id': 'u1',
                'flavor': {'name': 'n', 'vcpus': 1, 'memory_mb': 64, 'root_gb': 0,
                           'ephemeral_gb': 0, 'swap': 0}}
        stack.api.instance_claim(stack.ctx(), stack.host, instance=inst)
        with pytest.raises(exception.NodeNotFound):
            stack.api.instance_claim(stack.ctx(), stack.host,
                                     instance=dict(inst, uuid=str(uuid.uuid4())),
                                     nodename='elsewhere')
        stack.api.run_audit(stack.ctx(), stack.host)
        claims = notification_listener.wait_for('compute.instance.claim.end')
        publisher, _, payload = claims[0]
        assert publisher == f'nova-rt-compute:{stack.host}'
        assert payload['nova_object.name'] == 'InstanceClaimPayload'
        assert payload['nova_object.version'] == '1.0'
        assert payload['nova_object.data']['instance_uuid'] == inst['uuid']
        assert payload['nova_object.data']['resources'] == {'VCPU': 1, 'MEMORY_MB': 64}
        errors = notification_listener.wait_for('compute.instance.claim.error')
        assert errors[0][2]['nova_object.data']['error']['class'] == 'NodeNotFound'
        audits = notification_listener.wait_for('compute.audit.end')
        assert 'instances' in audits[0][2]['nova_object.data']
