"""PCI passthrough over RPC: a real nova-rt-compute whose udev is the
umockdev SR-IOV fixture (82599 PF with 8 VFs on NUMA 0), driven by a
conductor-side client: flavor alias claims, interface attach and detach,
pools in get_host_state, and what placement hears."""

import os
import shutil
import subprocess
import sys
import uuid

import pytest

from nova_rt import exception
from tests.functional.compute import fixtures as cf
from tests.functional.placement import fixtures as pf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTBED = os.path.join(REPO, 'tests', 'fixtures', 'pci', 'sriov-host.umockdev')
PCI = ('[pci]\n'
       'device_spec = {"vendor_id": "8086", "product_id": "10ed", '
       '"physical_network": "physnet1"}\n'
       'alias = {"name": "nic", "vendor_id": "8086", "product_id": "10ed", '
       '"device_type": "type-VF"}\n'
       'report_in_placement = true\n')

pytestmark = pytest.mark.skipif(shutil.which('umockdev-run') is None,
                                reason='umockdev is not installed')


class UdevFixtureCompute(cf.ComputeProcess):
    """The daemon, started under umockdev-run with the SR-IOV testbed."""

    def start(self, wait=True, timeout=90, env=None):
        self._log_offset = (os.path.getsize(self.log_path)
                            if os.path.exists(self.log_path) else 0)
        with open(self.log_path, 'a') as log:
            self.proc = subprocess.Popen(
                ['umockdev-run', '-d', TESTBED, '--', sys.executable, '-m',
                 'nova_rt.cmd.compute', '--config-file', self.config_file],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, 'PYTHONWARNINGS': 'ignore'}, cwd=REPO)
        if wait:
            self.wait_ready(timeout)
        return self


def _instance(alias=None):
    specs = {'pci_passthrough:alias': alias} if alias else {}
    return {'uuid': str(uuid.uuid4()), 'project_id': 'p1', 'user_id': 'u1',
            'flavor': {'name': 'pci', 'vcpus': 1, 'memory_mb': 256,
                       'root_gb': 1, 'ephemeral_gb': 0, 'swap': 0,
                       'extra_specs': specs},
            'vm_state': 'building', 'task_state': None, 'os_type': 'linux',
            'is_volume_backed': False}


def _vf_free(state):
    return sum(p['count'] for p in state['pci_pools']
               if p['dev_type'] == 'type-VF')


def test_pci_claims_over_rpc(tmp_path):
    workdir = str(tmp_path)
    db_url = f'sqlite:///{workdir}/placement.sqlite'
    with pf.running_placement(db_url, workdir) as placement:
        url = cf.transport_url_of(placement)
        daemon = UdevFixtureCompute(workdir, f'pci-{uuid.uuid4().hex[:6]}',
                                    placement.exchange, transport_url=url,
                                    sections=PCI)
        daemon.start()
        api, transport = cf.compute_client(placement.exchange, url=url)
        ctx = {'request_id': 'req-' + str(uuid.uuid4())}
        try:
            state = api.get_host_state(ctx, daemon.host)
            assert _vf_free(state) == 8
            assert all(p['tags'].get('physical_network') == 'physnet1'
                       for p in state['pci_pools'])

            inst = _instance('nic:2')
            claim = api.instance_claim(ctx, daemon.host, instance=inst)
            assert len(claim['pci_devices']) == 2
            assert {d['parent_addr'] for d in claim['pci_devices']} == {'0000:81:00.0'}
            assert {d['dev_type'] for d in claim['pci_devices']} == {'type-VF'}
            # idempotent retry: the same devices, counted once
            assert api.instance_claim(ctx, daemon.host, instance=inst) == claim
            assert _vf_free(api.get_host_state(ctx, daemon.host)) == 6

            attached = api.claim_pci_devices(ctx, daemon.host,
                                             instance_uuid=inst['uuid'],
                                             alias_counts={'nic': 1},
                                             request_id=str(uuid.uuid4()))
            assert len(attached) == 1
            state = api.get_host_state(ctx, daemon.host)
            assert _vf_free(state) == 5
            owned = {d['address'] for d in state['pci_devices']
                     if d['instance_uuid'] == inst['uuid']}
            assert owned == ({d['address'] for d in claim['pci_devices']}
                             | {attached[0]['address']})

            with pytest.raises(exception.PciDeviceNotFound):
                api.free_pci_devices(ctx, daemon.host,
                                     instance_uuid=inst['uuid'],
                                     addresses=['0000:00:00.0'])
            api.free_pci_devices(ctx, daemon.host, instance_uuid=inst['uuid'],
                                 addresses=[attached[0]['address']])
            assert _vf_free(api.get_host_state(ctx, daemon.host)) == 6

            with pytest.raises(exception.ComputeResourcesUnavailable):
                api.instance_claim(ctx, daemon.host, instance=_instance('nic:7'))
            with pytest.raises(exception.InvalidInput):
                api.instance_claim(ctx, daemon.host, instance=_instance('gpu:1'))
            assert _vf_free(api.get_host_state(ctx, daemon.host)) == 6

            # placement has the PF as a child provider with the VFs' inventory
            root = placement.api.list_resource_providers({}, name=daemon.host)[0]

            def child_allocated():
                tree = placement.api.list_resource_providers(
                    {}, in_tree=root['uuid'])
                allocs = placement.api.get_allocations(
                    {}, consumer_uuid=inst['uuid'])
                return len(tree) == 2 and len(allocs) == 2 and (tree, allocs)
            found = pf.wait_until(child_allocated, interval=0.2)
            assert found, ('PCI child provider or its allocation never reported: '
                           f"{placement.api.list_resource_providers({}, in_tree=root['uuid'])} "
                           f"{placement.api.get_allocations({}, consumer_uuid=inst['uuid'])} "
                           + '\n'.join(line for line in daemon.log_text().splitlines()
                                       if 'WARNING' in line or 'ERROR' in line)[-3000:])
            tree, allocs = found
            child = [p for p in tree if p['parent_uuid'] == root['uuid']][0]
            assert sum(allocs[child['uuid']].values()) == 2

            # The scheduler's question: the VFs' class is found on the child
            # provider, the vCPUs on the compute node (6 of 8 VFs are free).
            vf_class = next(iter(allocs[child['uuid']]))
            cands = placement.api.get_allocation_candidates(
                {}, resources={'VCPU': 1, vf_class: 6})
            assert [c['allocation'] for c in cands] == [
                {root['uuid']: {'VCPU': 1}, child['uuid']: {vf_class: 6}}]
            assert cands[0]['free'][vf_class] == 6
            assert placement.api.get_allocation_candidates(
                {}, resources={'VCPU': 1, vf_class: 7}) == []

            api.abort_instance_claim(ctx, daemon.host, instance_uuid=inst['uuid'])
            assert _vf_free(api.get_host_state(ctx, daemon.host)) == 8
        finally:
            transport.cleanup()
            code = daemon.terminate()
        assert code == 0, daemon.log_text()[-3000:]

