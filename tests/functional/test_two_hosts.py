"""End to end (issue 6): two compute daemons report to one placement.

Claims on them show up as allocations and usages, a candidates query picks
the host that fits, and a daemon that stops heartbeating drops out of the
candidates (and comes back when it heartbeats again).
"""

import os
import signal
import uuid

from tests.functional.compute import fixtures as cf
from tests.functional.placement import fixtures as pf
from tests.functional.virt import hostxml

HEARTBEAT_TIMEOUT = 4


def _wait(predicate, timeout=30):
    return pf.wait_until(predicate, timeout, interval=0.2)


def _instance(vcpus, memory_mb, disk_gb=1):
    return {'uuid': str(uuid.uuid4()), 'project_id': 'p-e2e', 'user_id': 'u1',
            'flavor': {'name': f'e2e.{vcpus}.{memory_mb}', 'vcpus': vcpus,
                       'memory_mb': memory_mb, 'root_gb': disk_gb,
                       'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}},
            'vm_state': 'building', 'task_state': None, 'os_type': 'linux',
            'is_volume_backed': False}


def test_two_daemons_one_placement(tmp_path):
    workdir = str(tmp_path)
    db_url = f'sqlite:///{workdir}/placement.sqlite'
    extra = f'[placement]\nheartbeat_timeout = {HEARTBEAT_TIMEOUT}\n'
    with pf.running_placement(db_url, workdir, extra_conf=extra) as placement:
        url = cf.transport_url_of(placement)
        small = cf.ComputeProcess(
            workdir, f'e2e-small-{uuid.uuid4().hex[:4]}', placement.exchange,
            transport_url=url, connection_uri=hostxml.write_host_xml(
                os.path.join(workdir, 'small.xml'), n_domains=0, cpus=4,
                memory_kib=8 * 1024 * 1024))
        big = cf.ComputeProcess(
            workdir, f'e2e-big-{uuid.uuid4().hex[:4]}', placement.exchange,
            transport_url=url, connection_uri=hostxml.write_host_xml(
                os.path.join(workdir, 'big.xml'), n_domains=0, cpus=16,
                memory_kib=64 * 1024 * 1024))
        small.start()
        big.start()
        api, transport = cf.compute_client(placement.exchange, url=url)
        ctx = {'request_id': 'req-' + str(uuid.uuid4())}
        papi = placement.api
        try:
            roots = {}
            for daemon in (small, big):
                found = _wait(lambda: papi.list_resource_providers(
                    {}, name=daemon.host))
                assert found, f'{daemon.host} never reported'
                roots[daemon.host] = found[0]['uuid']

            a = _instance(2, 2048)
            b = _instance(4, 16384)
            api.instance_claim(ctx, small.host, instance=a)
            api.instance_claim(ctx, big.host, instance=b)

            def allocated():
                return (papi.get_allocations({}, consumer_uuid=a['uuid'])
                        and papi.get_allocations({}, consumer_uuid=b['uuid']))
            assert _wait(allocated), 'claims never reached placement'
            assert papi.get_allocations({}, consumer_uuid=a['uuid']) == {
                roots[small.host]: {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 1}}
            assert papi.get_allocations({}, consumer_uuid=b['uuid']) == {
                roots[big.host]: {'VCPU': 4, 'MEMORY_MB': 16384, 'DISK_GB': 1}}
            small_usage = papi.get_usages({}, uuid=roots[small.host])
            assert small_usage['VCPU'] == 2 and small_usage['MEMORY_MB'] == 2048
            assert papi.get_usages({}, project_id='p-e2e')['MEMORY_MB'] == 18432

            # 16 GiB fits only on the big host (the small one has 8 GiB).
            want = {'VCPU': 2, 'MEMORY_MB': 16384}
            picks = papi.get_allocation_candidates({}, resources=want)
            assert [c['host'] for c in picks] == [big.host]
            assert picks[0]['allocation'] == {roots[big.host]: want}
            # Both fit a small request; spread puts the emptiest first.
            picks = papi.get_allocation_candidates(
                {}, resources={'VCPU': 1, 'MEMORY_MB': 512})
            assert {c['host'] for c in picks} == {small.host, big.host}
            assert picks[0]['host'] == big.host

            # The small daemon stops heartbeating: it drops out.
            small.signal(signal.SIGSTOP)
            try:
                def gone():
                    picks = papi.get_allocation_candidates(
                        {}, resources={'VCPU': 1, 'MEMORY_MB': 512})
                    return [c['host'] for c in picks] == [big.host]
                assert _wait(gone, timeout=HEARTBEAT_TIMEOUT * 4), \
                    'a silent host is still offered'
                alive = {p['name']: p['alive']
                         for p in papi.list_resource_providers({})}
                assert alive[small.host] is False and alive[big.host] is True
            finally:
                small.signal(signal.SIGCONT)

            def back():
                picks = papi.get_allocation_candidates(
                    {}, resources={'VCPU': 1, 'MEMORY_MB': 512})
                return {c['host'] for c in picks} == {small.host, big.host}
            assert _wait(back, timeout=HEARTBEAT_TIMEOUT * 4), \
                'the host did not come back after heartbeating again'
        finally:
            transport.cleanup()
            codes = [small.terminate(), big.terminate()]
        assert codes == [0, 0], small.log_text()[-2000:] + big.log_text()[-2000:]
