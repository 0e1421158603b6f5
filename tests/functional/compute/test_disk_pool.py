"""``[libvirt] disk_pool`` naming no pool: a real nova-rt-compute refuses to
start, in one line naming the option, the pool and the pools there are;
unless libvirt is away at start (the daemon serves from its last known
inventory), when it starts, warns, and says so at ERROR once libvirt is back.
"""

from __future__ import annotations

import time
import uuid

from tests.functional.compute import fixtures as cf
from tests.functional.virt import hostxml


def _compute(tmp_path, placement, uri):
    return cf.ComputeProcess(
        str(tmp_path), f'pool-{uuid.uuid4().hex[:6]}', placement.exchange,
        transport_url=cf.transport_url_of(placement), connection_uri=uri,
        sections='disk_pool = nosuchpool\nreconnect_max_interval = 1\n')


def test_missing_disk_pool_stops_the_start_in_one_line(tmp_path, compute_placement):
    compute = _compute(tmp_path, compute_placement, 'test:///default')
    compute.start(wait=False)
    code = compute.proc.wait(60)
    output = compute.log_text(since_start=True)
    assert code == 1, output[-3000:]
    assert output.splitlines()[-1] == (
        "nova-rt-compute: Invalid configuration: [libvirt] disk_pool: no "
        "storage pool 'nosuchpool' on test:///default (its pools: default-pool)")
    assert 'Traceback' not in output


def test_missing_disk_pool_with_libvirt_away_starts_and_is_logged_when_back(
        tmp_path, compute_placement):
    path = tmp_path / 'host.xml'               # not there yet: libvirt away
    compute = _compute(tmp_path, compute_placement, f'test://{path}')
    compute.start()
    try:
        log = compute.log_text()
        assert "disk_pool 'nosuchpool' not checked, libvirt is unreachable" in log
        hostxml.write_host_xml(str(path), n_domains=0)
        expected = ("ERROR nova_rt.virt.host [-] Invalid configuration: [libvirt] "
                    f"disk_pool: no storage pool 'nosuchpool' on test://{path} "
                    "(its pools: none)")
        deadline = time.monotonic() + 10
        while expected not in compute.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert expected in compute.log_text(), compute.log_text()[-3000:]
        assert compute.proc.poll() is None      # still serving
    finally:
        code = compute.terminate()
    assert code == 0, compute.log_text()[-3000:]
