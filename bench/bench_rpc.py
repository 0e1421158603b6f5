"""RPC claim round trip to a real nova-rt-compute over RabbitMQ on loopback.

    .venv/bin/python bench/bench_rpc.py [--domains 1000] [--samples 400]
        [--duration 8] [--callers 8] [--backend threading]

Starts a placement process and a compute daemon (libvirt test driver host with
``--domains`` running/shut-off domains), then measures:

- p50/p99 of one caller's ``instance_claim`` round trip, alone and while a
  background caller runs audits back to back (each walks every domain);
- claims per second from ``--callers`` concurrent callers, alone and during
  audits;
- messages sent to placement by an idle audit (root provider generation and
  the audit's ``reported`` flag).

Targets (issue 5): p50 < 5 ms, p99 < 20 ms, p99 during audits within 1.5x.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from oslo_service import backend as _backend  # noqa: E402

_backend.init_backend(_backend.BackendType.THREADING)

from tests.functional.compute import fixtures  # noqa: E402
from tests.functional.virt import hostxml  # noqa: E402


def instance():
    return {'uuid': str(uuid.uuid4()), 'project_id': 'bench', 'user_id': 'bench',
            'flavor': {'name': 'tiny', 'vcpus': 1, 'memory_mb': 64, 'root_gb': 0,
                       'ephemeral_gb': 0, 'swap': 0}}


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def one_claim(stack):
    inst = instance()
    started = time.perf_counter()
    stack.api.instance_claim({'request_id': 'req-' + inst['uuid']}, stack.host,
                             instance=inst)
    elapsed = time.perf_counter() - started
    stack.api.abort_instance_claim({}, stack.host, instance_uuid=inst['uuid'])
    return elapsed


def latencies(stack, samples):
    for _ in range(20):            # warm up connections and caches
        one_claim(stack)
    times = [one_claim(stack) for _ in range(samples)]
    return {'p50_ms': round(percentile(times, 50) * 1000, 2),
            'p99_ms': round(percentile(times, 99) * 1000, 2),
            'mean_ms': round(statistics.mean(times) * 1000, 2),
            'samples': samples}


def throughput(stack, callers, duration):
    counts = [0] * callers
    stop = time.monotonic() + duration

    def caller(index):
        while time.monotonic() < stop:
            one_claim(stack)
            counts[index] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {'claims_per_s': round(sum(counts) / (time.monotonic() - started), 1),
            'callers': callers}


@contextlib.contextmanager
def audits_running(stack):
    stop = threading.Event()
    durations = []

    def loop():
        while not stop.is_set():
            summary = stack.api.run_audit({}, stack.host, timeout=120)
            durations.append(summary['duration_s'])

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        while not durations:        # the first audit has started and finished
            time.sleep(0.05)
        yield durations
    finally:
        stop.set()
        thread.join()


def idle_audit_messages(stack):
    api = stack.placement.api
    root = api.list_resource_providers({}, name=stack.host)[0]
    stack.api.run_audit({}, stack.host)
    before = api.get_resource_provider({}, uuid=root['uuid'])['generation']
    reported = [stack.api.run_audit({}, stack.host)['reported'] for _ in range(5)]
    after = api.get_resource_provider({}, uuid=root['uuid'])['generation']
    return {'idle_audits': len(reported), 'reported': sum(reported),
            'generation_bumps': after - before}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', type=int, default=1000)
    parser.add_argument('--samples', type=int, default=400)
    parser.add_argument('--duration', type=float, default=8.0)
    parser.add_argument('--callers', type=int, default=8)
    parser.add_argument('--backend', default='threading',
                        choices=['threading', 'eventlet'])
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix='bench-rpc-')
    uri = hostxml.write_host_xml(os.path.join(workdir, 'host.xml'),
                                 n_domains=args.domains, cpus=64,
                                 memory_kib=4 * 1024 ** 3)
    url = f'sqlite:///{workdir}/placement.sqlite'
    from tests.functional.placement import fixtures as placement_fixtures
    with placement_fixtures.running_placement(url, workdir) as placement:
        vhost = fixtures.transport_url_of(placement)
        compute = fixtures.ComputeProcess(
            workdir, f'bench-{uuid.uuid4().hex[:6]}', placement.exchange,
            args.backend, transport_url=vhost, connection_uri=uri,
            extra='cpu_allocation_ratio = 64.0\nupdate_resources_interval = 3600\n')
        compute.start()
        api, transport = fixtures.compute_client(placement.exchange, url=vhost,
                                                 timeout=60)
        stack = fixtures.ComputeStack(compute, api, placement, compute.host,
                                      args.backend)
        try:
            results = {'backend': args.backend, 'domains': args.domains,
                       'cores': os.cpu_count()}
            results['alone'] = latencies(stack, args.samples)
            results['alone'].update(throughput(stack, args.callers, args.duration))
            with audits_running(stack) as audit_durations:
                results['during_audits'] = latencies(stack, args.samples)
                results['during_audits'].update(
                    throughput(stack, args.callers, args.duration))
            results['audit_s'] = {
                'runs': len(audit_durations),
                'p50': round(percentile(audit_durations, 50), 4)}
            results['idle_audit'] = idle_audit_messages(stack)
            results['p99_ratio'] = round(results['during_audits']['p99_ms']
                                         / results['alone']['p99_ms'], 2)
        finally:
            code = compute.terminate()
            transport.cleanup()
    results['exit_code'] = code
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
