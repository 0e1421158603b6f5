"""Nova 34's SchedulerReportClient against a live server (nova_report.py
runs it in the reference virtualenv; this judges what it saw)."""

import json
import subprocess

from tests.functional.clients import server as server_mod


def test_report_client_candidates_and_claims(live_server):
    result = subprocess.run(
        [server_mod.ref_bin('python'), str(server_mod.HERE / 'nova_report.py'),
         live_server.url, live_server.workdir],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout)
    cn1, cn2, agg = out['cn1'], out['cn2'], out['agg']

    # What nova-compute's provider set-up wrote reads back.
    assert out['cn1_traits'] == ['COMPUTE_NODE', 'HW_CPU_X86_AVX2']
    assert out['cn1_aggregates'] == [agg]
    assert out['cn1_name'] == 'nova-cn1'
    assert out['cn1_tree'] == [cn1]
    assert out['cn1_inventory']['VCPU']['allocation_ratio'] == 4.0
    assert out['cn1_inventory']['MEMORY_MB']['total'] == 16384

    # Candidates from a flavor's ResourceRequest, at the scheduler's version.
    plain = out['plain']
    assert plain['version'] == '1.36'
    assert sorted(plain['providers']) == sorted([[cn1], [cn2]])
    assert plain['summaries'] == sorted([cn1, cn2])
    assert plain['cn1_summary']['resources']['VCPU'] == {'capacity': 32, 'used': 0}
    assert plain['cn1_summary']['traits'] == ['COMPUTE_NODE', 'HW_CPU_X86_AVX2']
    assert out['required'] == [[cn1]]
    assert out['forbidden'] == [[cn2]]
    assert out['too_big'] == []
    granular = out['granular']
    assert 'resources1=VCPU%3A2' in granular['querystring']
    assert granular['providers'] == [[cn1]]
    assert granular['mappings'] == [{'': [cn1], '1': [cn1]}]

    # The claim, and two conflicting ones that change nothing.
    assert out['claim1'] is True
    allocs1 = out['allocs1']
    assert allocs1['consumer_generation'] == 1
    assert allocs1['allocations'][cn1]['resources'] == {
        'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 10}
    assert out['stale_put']['status'] == 409
    assert out['stale_put']['code'] == 'placement.concurrent_update'
    assert 'consumer generation conflict' in out['stale_put']['detail']
    assert out['stale_claim'] == 'AllocationUpdateFailed'
    assert out['allocs1_after_conflicts'] == allocs1
    assert out['claim_over_capacity'] is False

    # A move doubles the allocation up, then the source tree is removed.
    assert out['claim_move'] is True
    assert set(out['allocs_move']['allocations']) == {cn1, cn2}
    assert out['allocs_move']['consumer_generation'] == 2
    assert set(out['allocs_after_remove']['allocations']) == {cn2}
    assert out['allocs_after_remove']['consumer_generation'] == 3
    assert out['usages_cn1'] == {}
    assert out['quota_usage'] == {'project': {'cores': 2, 'ram': 2048},
                                  'user': {'cores': 2, 'ram': 2048}}
    assert out['delete'] is True
    assert out['allocs_after_delete'] == {'allocations': {}}
    assert out['delete_again'] is False
