"""nova-rt-compute started while libvirt is unreachable, on the test driver
(no libvirtd needed): the configured URI is shown at once, masked, and the
daemon connects and audits as soon as libvirt is there, within
``reconnect_max_interval``, not at its next periodic audit.

libvirtd itself killed and restarted under the daemon:
test_libvirtd_reconnect.py.
"""

from __future__ import annotations

import time
import uuid

import pytest

from nova_rt import exception
from tests.functional.compute import fixtures as cf
from tests.functional.virt import hostxml
from tests.functional.virt import outage

CAP = 2
PASSWORD = 's3cret'


@pytest.mark.parametrize('backend', ['threading', 'eventlet'])
def test_started_with_libvirt_away_then_back(tmp_path, backend, compute_placement):
    placement = compute_placement
    url = cf.transport_url_of(placement)
    path = tmp_path / 'host.xml'              # not there yet: libvirt "down"
    compute = cf.ComputeProcess(
        str(tmp_path), f'away-{backend}-{uuid.uuid4().hex[:6]}',
        placement.exchange, backend, transport_url=url,
        connection_uri=f'test://operator:{PASSWORD}@{path}',
        # A periodic audit this far away cannot be what brings it back.
        sections=f'reconnect_max_interval = {CAP}\n')
    compute.start()
    api, transport = cf.compute_client(placement.exchange, url=url)
    try:
        state = api.get_host_state(outage.ctx(), compute.host)
        assert state['hypervisor']['uri'] == f'test://operator:***@{path}'
        assert state['hypervisor']['connected'] is False
        # No inventory was ever known: nothing to serve claims from.
        with pytest.raises(exception.HypervisorUnavailable):
            api.instance_claim(outage.ctx(), compute.host, instance=outage.small_instance())

        hostxml.write_host_xml(str(path), n_domains=0)
        back = time.monotonic()
        deadline = back + CAP + 5
        while time.monotonic() < deadline:
            state = api.get_host_state(outage.ctx(), compute.host)
            if state['hypervisor']['connected'] and state['inventory']:
                break
            time.sleep(0.02)
        took = time.monotonic() - back
        assert state['hypervisor']['connected'], compute.log_text()[-3000:]
        assert took <= CAP + 1, f'connected {took:.2f}s after libvirt was back'
        assert state['inventory']['VCPU']['total'] == 8
        assert state['hypervisor']['uri'] == f'test://operator:***@{path}'
        api.instance_claim(outage.ctx(), compute.host, instance=outage.small_instance())
        assert 'libvirt is back; auditing now' in compute.log_text()
    finally:
        transport.cleanup()
        code = compute.terminate()
    log = compute.log_text()
    assert code == 0, log[-3000:]
    assert PASSWORD not in log
