"""libvirtd killed, restarted and hung under a running nova-rt-compute on a
real libvirtd with QEMU (qemu:///system), while claims flow (issue 15).

Targets: ``hypervisor.connected`` false within 1 s of libvirtd going away,
true again within ``reconnect_max_interval`` + 1 s of it answering again,
and not one claim refused meanwhile (they are served from the last known
inventory).  A hung libvirtd (SIGSTOP) is noticed by keepalive.

bench/bench_reconnect.py repeats the kill and restart and prints the times.
"""

from __future__ import annotations

import time
import uuid

import libvirt
import pytest

from nova_rt.virt import host as virt_host
from tests.functional.compute import fixtures as cf
from tests.functional.placement import fixtures as pf
from tests.functional.virt import libvirtd
from tests.functional.virt import outage

pytestmark = pytest.mark.libvirtd

CAP = 3
DISCONNECT_TARGET = 1.0
RECONNECT_TARGET = CAP + 1.0
# Long enough for the back-off to reach the cap: attempts at once, then
# 1, 2, 3, 3 ... s.
DOWN_FOR = 5.0
# From a domain's start to get_host_state listing it: event, hand-off, audit
# (polled, it was up to a second under eventlet; delivered, ~20 ms here).
EVENT_TARGET = 0.5
# About KEEPALIVE_INTERVAL * (KEEPALIVE_COUNT + 1); a little more for the
# first probe's timing.
HANG_TARGET = virt_host.KEEPALIVE_INTERVAL * (virt_host.KEEPALIVE_COUNT + 1) + 2.0


@pytest.fixture
def may_restart():
    reason = libvirtd.restart_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    try:
        yield
    finally:
        # Whatever the test did, libvirtd runs when it ends: other tests on
        # this machine need it.
        if not libvirtd.pids():
            libvirtd.start_libvirtd()


@pytest.fixture(params=['threading', 'eventlet'])
def daemon(request, tmp_path, may_restart, compute_placement):
    placement = compute_placement
    url = cf.transport_url_of(placement)
    compute = cf.ComputeProcess(
        str(tmp_path), f'lvre-{request.param}-{uuid.uuid4().hex[:6]}',
        placement.exchange, request.param, transport_url=url,
        connection_uri=libvirtd.URI,
        sections=f'reconnect_max_interval = {CAP}\n')
    compute.start()
    api, transport = cf.compute_client(placement.exchange, url=url)
    flow_api, flow_transport = cf.compute_client(placement.exchange, url=url)
    try:
        assert outage.wait_connected(api, compute.host, True, timeout=30)
        yield compute, api, flow_api
    finally:
        transport.cleanup()
        flow_transport.cleanup()
        code = compute.terminate()
    assert code == 0, compute.log_text()[-3000:]


def _seconds(value) -> str:
    return 'never' if value is None else f'{value:.3f}s'


def _measured_while_claims_flow(kind: str, daemon, measure) -> outage.Outage:
    """``measure(api, host)`` with claims flowing; checks the targets and
    that no claim was refused."""
    compute, api, flow_api = daemon
    flow = outage.ClaimFlow(flow_api, compute.host)
    flow.start()
    try:
        measured = measure(api, compute.host)
    finally:
        flow.stop()
    # Shown with -s; the figures the issue asks for.
    print(f'\n{kind}: connected false after {_seconds(measured.disconnect_s)}, '
          f'true again {_seconds(measured.reconnect_s)} after libvirtd answered '
          f'(down {measured.down_s:.1f}s, cap {CAP}s, {flow.succeeded} claims)')
    log = compute.log_text()
    assert measured.disconnect_s is not None, log[-3000:]
    assert measured.reconnect_s is not None, log[-3000:]
    assert measured.reconnect_s <= RECONNECT_TARGET, measured
    # Served from the last known inventory: never waiting for libvirtd.
    assert flow.failures == [], flow.failures[:3]
    assert flow.succeeded > 0
    return measured


def test_libvirtd_killed_and_restarted_while_claims_flow(daemon):
    compute, api, _ = daemon
    measured = _measured_while_claims_flow(
        'killed (SIGTERM)', daemon,
        lambda api, host: outage.libvirtd_outage(api, host, DOWN_FOR, CAP))
    assert measured.disconnect_s <= DISCONNECT_TARGET, measured
    log = compute.log_text()
    assert 'lost connection to qemu:///system' in log
    assert 'libvirt is back; auditing now' in log
    # The libvirtd started again carries none of this process's preload
    # (umockdev's): with it, its forked children deadlock and every later
    # domain start hangs.
    assert all(libvirtd.preloads(pid) == [] for pid in libvirtd.pids())
    # The audit it brought forward read the host again.
    state = api.get_host_state(outage.ctx(), compute.host)
    assert state['hypervisor'] == {**state['hypervisor'], 'connected': True,
                                   'uri': libvirtd.URI, 'type': 'QEMU'}

    # Events come again, on the new connection: a domain started now is
    # seen by the audit it brings forward, not the periodic one (60 s).
    # (A connection of the test's own, opened after the restart.)
    conn = libvirt.open(libvirtd.URI)
    dom = libvirtd.start_domain(conn)
    try:
        started = time.monotonic()
        seen = pf.wait_until(lambda: dom.UUIDString() in {
            d['uuid'] for d in api.get_host_state(
                outage.ctx(), compute.host)['unmanaged_domains']},
            timeout=10, interval=0.01)
        took = time.monotonic() - started
    finally:
        libvirtd.remove_domain(dom)
        conn.close()
    print(f'domain started after the restart: seen in {took:.3f}s')
    assert seen, log[-3000:]
    assert took < EVENT_TARGET


# One backend is enough: keepalive runs in libvirt's own thread, and what
# follows its close is what the kill test checks under both.
@pytest.mark.parametrize('daemon', ['threading'], indirect=True)
def test_libvirtd_hung_is_given_up_by_keepalive(daemon):
    measured = _measured_while_claims_flow(
        'hung (SIGSTOP)', daemon,
        lambda api, host: outage.libvirtd_hang(api, host, HANG_TARGET + 1, CAP))
    assert measured.disconnect_s <= HANG_TARGET, measured
    assert 'closed by libvirt (keepalive timeout)' in daemon[0].log_text()
