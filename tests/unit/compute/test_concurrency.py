"""200 threads racing for the last slots admit exactly the capacity."""

import threading

from nova_rt import exception
from tests.unit.compute import helpers as h


def test_racing_claims_admit_exactly_capacity(tmp_path):
    rt = h.make_tracker(str(tmp_path / 'compute.sqlite'),
                        host=h.host_info(vcpus=8, memory_mb=1 << 20,
                                         disk_gb=1 << 20),
                        allocation_ratios={'VCPU': 4.0, 'MEMORY_MB': 1.0,
                                           'DISK_GB': 1.0})
    # 32 VCPU of capacity; fill 27 first so that 200 threads race for 5.
    for _ in range(27):
        rt.instance_claim(instance=h.instance(h.FLAVOR_1))
    start = threading.Barrier(200)
    admitted, refused, errors = [], [], []

    def racer():
        inst = h.instance(h.FLAVOR_1)
        start.wait()
        try:
            rt.instance_claim(instance=inst)
            admitted.append(inst['uuid'])
        except exception.ComputeResourcesUnavailable:
            refused.append(inst['uuid'])
        except Exception as exc:   # anything else is a bug
            errors.append(exc)

    threads = [threading.Thread(target=racer) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(admitted) == 5 and len(refused) == 195
    state = rt.get_host_state()
    assert state['vcpus_used'] == 32
    assert set(admitted) <= set(state['instances'])
    # what the store holds is what the callers were told
    rt.store.close()
    again = h.make_tracker(str(tmp_path / 'compute.sqlite'),
                           host=h.host_info(vcpus=8, memory_mb=1 << 20,
                                            disk_gb=1 << 20))
    assert set(again.get_host_state()['instances']) == set(state['instances'])
