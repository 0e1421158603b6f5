"""Nova 34's scheduler report client against a live Placement API.

    .venv-ref/bin/python tests/functional/clients/nova_report.py URL WORKDIR

Runs in the reference virtualenv (Nova is no dependency of nova_rt).
Configures ``[placement]`` as an operator would without Keystone
(``auth_type = admin_token``, the token and the endpoint), then does what
nova-compute and the scheduler do through ``SchedulerReportClient``: makes
two compute node providers (inventory, traits, aggregates), asks for
allocation candidates with a real ``ResourceRequest`` built from a flavor
(plain, with a required trait, with a granular group), claims with consumer
generations (and a second claim that must conflict), reads, moves and
removes allocations. It prints one JSON object of what it saw;
test_nova_report_client.py judges it.
"""

import json
import os
import sys
import uuid


def _conf(url: str, workdir: str) -> str:
    path = os.path.join(workdir, 'nova.conf')
    with open(path, 'w') as f:
        f.write('[DEFAULT]\nuse_stderr = false\n'
                '[placement]\nauth_type = admin_token\ntoken = admin\n'
                f'endpoint_override = {url}\nregion_name = RegionOne\n')
    return path


def _inventory(vcpus, memory_mb, disk_gb):
    def one(total, ratio):
        return {'total': total, 'reserved': 0, 'min_unit': 1, 'max_unit': total,
                'step_size': 1, 'allocation_ratio': ratio}
    return {'VCPU': one(vcpus, 4.0), 'MEMORY_MB': one(memory_mb, 1.0),
            'DISK_GB': one(disk_gb, 1.0)}


def _request(objects, su, extra_specs, vcpus=2, memory_mb=2048, root_gb=10):
    flavor = objects.Flavor(vcpus=vcpus, memory_mb=memory_mb, root_gb=root_gb,
                            ephemeral_gb=0, swap=0, extra_specs=extra_specs)
    spec = objects.RequestSpec(flavor=flavor, image=objects.ImageMeta.from_dict({}),
                               is_bfv=False)
    return su.ResourceRequest.from_request_spec(spec)


def _providers(areqs):
    return [sorted(a['allocations']) for a in areqs]


def main(url: str, workdir: str) -> int:
    import nova.conf
    from nova import context as nova_context
    from nova import exception
    from nova import objects
    from nova.scheduler.client import report
    from nova.scheduler import utils as su

    conf = nova.conf.CONF
    conf([], project='nova', default_config_files=[_conf(url, workdir)])
    objects.register_all()
    ctx = nova_context.get_admin_context()
    client = report.SchedulerReportClient()
    out = {}

    cn1, cn2, agg = (str(uuid.uuid4()) for _ in range(3))
    client._ensure_resource_provider(ctx, cn1, 'nova-cn1')
    client._ensure_resource_provider(ctx, cn2, 'nova-cn2')
    client.set_inventory_for_provider(ctx, cn1, _inventory(8, 16384, 100))
    client.set_inventory_for_provider(ctx, cn2, _inventory(4, 8192, 100))
    client.set_traits_for_provider(ctx, cn1, ['COMPUTE_NODE', 'HW_CPU_X86_AVX2'])
    client.set_traits_for_provider(ctx, cn2, ['COMPUTE_NODE'])
    client.set_aggregates_for_provider(ctx, cn1, [agg])
    client.clear_provider_cache()
    out['cn1'], out['cn2'], out['agg'] = cn1, cn2, agg
    out['cn1_traits'] = sorted(client.get_provider_traits(ctx, cn1).traits)
    out['cn1_aggregates'] = sorted(client._get_provider_aggregates(ctx, cn1).aggregates)
    out['cn1_name'] = client.get_resource_provider_name(ctx, cn1)
    out['cn1_tree'] = [p['uuid'] for p in client.get_providers_in_tree(ctx, cn1)]
    out['cn1_inventory'] = client._get_inventory(ctx, cn1)['inventories']

    plain = _request(objects, su, {})
    areqs, summaries, version = client.get_allocation_candidates(ctx, plain)
    out['plain'] = {'providers': _providers(areqs), 'version': version,
                    'summaries': sorted(summaries),
                    'cn1_summary': summaries.get(cn1),
                    'querystring': plain.to_querystring()}
    with_trait = _request(objects, su, {'trait:HW_CPU_X86_AVX2': 'required'})
    areqs_t, _, _ = client.get_allocation_candidates(ctx, with_trait)
    out['required'] = _providers(areqs_t)
    forbidden = _request(objects, su, {'trait:HW_CPU_X86_AVX2': 'forbidden'})
    out['forbidden'] = _providers(client.get_allocation_candidates(ctx, forbidden)[0])
    granular = _request(objects, su, {'resources1:VCPU': '2',
                                      'trait1:HW_CPU_X86_AVX2': 'required',
                                      'group_policy': 'isolate'})
    areqs_g, _, _ = client.get_allocation_candidates(ctx, granular)
    out['granular'] = {'providers': _providers(areqs_g),
                       'mappings': [a.get('mappings') for a in areqs_g],
                       'querystring': granular.to_querystring()}
    too_big = _request(objects, su, {}, vcpus=1000)
    out['too_big'] = _providers(client.get_allocation_candidates(ctx, too_big)[0])

    # The scheduler's claim: a new consumer, generation None.
    project, user = str(uuid.uuid4()), str(uuid.uuid4())
    inst1 = str(uuid.uuid4())
    areq_cn1 = next(a for a in areqs if cn1 in a['allocations'])
    out['claim1'] = client.claim_resources(ctx, inst1, areq_cn1, project, user,
                                           version, consumer_generation=None)
    out['allocs1'] = client.get_allocs_for_consumer(ctx, inst1)
    # The same consumer claimed as new again by another scheduler: the
    # consumer exists, so "generation None" is a conflict placement refuses.
    areq_cn2 = next(a for a in areqs if cn2 in a['allocations'])
    payload = dict(areq_cn2, project_id=project, user_id=user,
                   consumer_generation=None)
    resp = client.put(f'/allocations/{inst1}', payload, version=version)
    out['stale_put'] = {'status': resp.status_code,
                        'code': resp.json()['errors'][0]['code'],
                        'detail': resp.json()['errors'][0]['detail']}
    # A claim with a stale generation: AllocationUpdateFailed from Nova.
    try:
        client.claim_resources(ctx, inst1, dict(areq_cn2, consumer_generation=0),
                               project, user, version, consumer_generation=0)
        out['stale_claim'] = 'no error'
    except exception.AllocationUpdateFailed:
        out['stale_claim'] = 'AllocationUpdateFailed'
    out['allocs1_after_conflicts'] = client.get_allocs_for_consumer(ctx, inst1)

    # A second instance that does not fit on cn2 (4 VCPU * 4.0, 8192 MB).
    inst2 = str(uuid.uuid4())
    big = {'allocations': {cn2: {'resources': {'MEMORY_MB': 9000}}}}
    out['claim_over_capacity'] = client.claim_resources(
        ctx, inst2, big, project, user, version, consumer_generation=None)

    # A move: the claim on the destination doubles the allocation up (the
    # report client reads the consumer generation itself), then the source
    # tree is taken out of it.
    out['claim_move'] = client.claim_resources(ctx, inst1, areq_cn2, project, user,
                                               version)
    out['allocs_move'] = client.get_allocs_for_consumer(ctx, inst1)
    client.remove_provider_tree_from_instance_allocation(ctx, inst1, cn1)
    out['allocs_after_remove'] = client.get_allocs_for_consumer(ctx, inst1)
    out['usages_cn1'] = client.get_allocations_for_resource_provider(
        ctx, cn1).allocations
    out['quota_usage'] = client.get_usages_counts_for_quota(ctx, project, user)

    out['delete'] = client.delete_allocation_for_instance(ctx, inst1)
    out['allocs_after_delete'] = client.get_allocs_for_consumer(ctx, inst1)
    out['delete_again'] = client.delete_allocation_for_instance(ctx, inst1)
    print(json.dumps(out, sort_keys=True, default=str))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2]))
