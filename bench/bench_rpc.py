"""RPC claim round trip to a real nova-rt-compute over RabbitMQ on loopback.

    .venv/bin/python bench/bench_rpc.py [--domains 1000] [--samples 400]
        [--duration 8] [--callers 8] [--backend threading]
        [--sections audits,concurrency] [--in-flight 1,4,16]
        [--stream-seconds 8] [--repeat 1] [--profile FILE]

Starts a placement process and a compute daemon (libvirt test driver host with
``--domains`` running/shut-off domains), then measures, in section ``audits``:

- p50/p99 of one caller's ``instance_claim`` round trip, alone and while a
  background caller runs audits back to back (each walks every domain);
- claims per second from ``--callers`` concurrent callers, alone and during
  audits;
- messages sent to placement by an idle audit (root provider generation and
  the audit's ``reported`` flag).

Targets (issue 5): p50 < 5 ms, p99 < 20 ms, p99 during audits within 1.5x.

In section ``concurrency`` (issue 19, group commit; ``claim_stream``): for
each of ``--in-flight`` concurrent callers, a stream of claims (each aborted
once acknowledged) and, in the same run, the floor: the same stream of
no-op calls (aborts of unknown instances, no write).  Per stream: calls and
claims per second, the claim's p50/p99, the daemon's CPU per call, and the
daemon's fsyncs (``perf``) and commits (its ``/metrics``) per durable write.
``claim_vs_floor`` is the claim stream's p50 and calls/s over the floor's at
the same concurrency.  ``--repeat`` runs the whole section that many times
(streams interleaved, so that the machine's load falls on all alike), and
``/proc/loadavg`` is noted before and after.
"""

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from oslo_service import backend as _backend  # noqa: E402

_backend.init_backend(_backend.BackendType.THREADING)

import claim_stream  # noqa: E402
from nova_rt import rpc  # noqa: E402
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
def audits_running(stack, calls: str = 'audits'):
    """Audits (or, ``calls='noops'``, calls that do nothing) back to back,
    from another process (``audit_driver.py``), while the body runs; yields
    the list their durations land in when the body is done."""
    driver = subprocess.Popen(
        [sys.executable, os.path.join(REPO, 'bench', 'audit_driver.py'),
         '--exchange', stack.placement.exchange,
         '--url', fixtures.transport_url_of(stack.placement),
         '--host', stack.host, '--calls', calls],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    durations = []
    try:
        if driver.stdout.readline().strip() != 'started':
            raise RuntimeError('the audit driver did not start')
        yield durations
    finally:
        out, _ = driver.communicate(input='', timeout=300)
    if driver.returncode != 0:
        raise RuntimeError(f'the audit driver exited {driver.returncode}')
    durations.extend(json.loads(out.strip().splitlines()[-1]))


def idle_audit_messages(stack):
    api = stack.placement.api
    root = api.list_resource_providers({}, name=stack.host)[0]
    stack.api.run_audit({}, stack.host)
    before = api.get_resource_provider({}, uuid=root['uuid'])['generation']
    reported = [stack.api.run_audit({}, stack.host)['reported'] for _ in range(5)]
    after = api.get_resource_provider({}, uuid=root['uuid'])['generation']
    return {'idle_audits': len(reported), 'reported': sum(reported),
            'generation_bumps': after - before}


def audits(stack, args, results):
    """Section ``audits`` (module docstring)."""
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


def loadavg() -> str:
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def concurrency(stack, args, metrics_url) -> dict:
    """Claim streams and their floor at each concurrency (module docstring)."""
    stream = claim_stream.Stream(
        fixtures.transport_url_of(stack.placement), stack.placement.exchange,
        f'{rpc.COMPUTE_TOPIC}.{stack.host}', rpc.RPC_VERSION)
    pid = stack.compute.proc.pid
    fsyncs = claim_stream.FsyncCounter.available()
    levels = [int(n) for n in args.in_flight.split(',')]
    runs = []
    try:
        for _ in range(args.repeat):
            for in_flight in levels:
                row = {}
                for kind in ('floor', 'claims'):
                    row[kind] = claim_stream.measure(
                        stream, pid, metrics_url, in_flight,
                        args.stream_seconds, kind, fsyncs)
                claims, floor = row['claims'], row['floor']
                row['claim_vs_floor'] = {
                    'p50': round(claims['claim_p50_ms']
                                 / floor['abort_p50_ms'], 2),
                    'calls_per_s': round(claims['calls_per_s']
                                         / floor['calls_per_s'], 2)}
                row['loadavg'] = loadavg()
                runs.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        if args.profile:
            profile(stream, pid, max(levels), args)
    finally:
        stream.close()
    return {'fsyncs_counted': fsyncs, 'runs': runs}


def profile(stream, pid, in_flight, args):
    """py-spy on the daemon during two more claim streams (not measured):
    collapsed stacks of every thread that is not idle (waits on locks
    included) in ``args.profile``, and of the thread holding the GIL (what
    costs CPU) in ``args.profile``.gil; for flamegraph.pl or speedscope."""
    for out, extra in ((args.profile, []), (args.profile + '.gil', ['--gil'])):
        spy = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), 'py-spy'),
             'record', '-p', str(pid), '-f', 'raw', '-o', out, '-r', '200',
             '-d', str(int(args.stream_seconds) + 1), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        stream.run(args.stream_seconds, in_flight, 'claims')
        spy.wait(60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', type=int, default=1000)
    parser.add_argument('--samples', type=int, default=400)
    parser.add_argument('--duration', type=float, default=8.0)
    parser.add_argument('--callers', type=int, default=8)
    parser.add_argument('--backend', default='threading',
                        choices=['threading', 'eventlet'])
    parser.add_argument('--sections', default='audits,concurrency')
    parser.add_argument('--in-flight', default='1,4,16')
    parser.add_argument('--stream-seconds', type=float, default=8.0)
    parser.add_argument('--repeat', type=int, default=1)
    parser.add_argument('--profile', metavar='FILE',
                        help='py-spy the daemon under the largest claim '
                             'stream; collapsed stacks to FILE')
    args = parser.parse_args()
    sections = set(args.sections.split(','))

    workdir = tempfile.mkdtemp(prefix='bench-rpc-')
    uri = hostxml.write_host_xml(os.path.join(workdir, 'host.xml'),
                                 n_domains=args.domains, cpus=64,
                                 memory_kib=4 * 1024 ** 3)
    url = f'sqlite:///{workdir}/placement.sqlite'
    from tests.functional.placement import fixtures as placement_fixtures
    with placement_fixtures.running_placement(url, workdir) as placement:
        vhost = fixtures.transport_url_of(placement)
        metrics_port = free_port()
        compute = fixtures.ComputeProcess(
            workdir, f'bench-{uuid.uuid4().hex[:6]}', placement.exchange,
            args.backend, transport_url=vhost, connection_uri=uri,
            extra='cpu_allocation_ratio = 64.0\nupdate_resources_interval = 3600\n',
            sections=f'[metrics]\nenabled = true\nport = {metrics_port}\n')
        compute.start()
        api, transport = fixtures.compute_client(placement.exchange, url=vhost,
                                                 timeout=60)
        stack = fixtures.ComputeStack(compute, api, placement, compute.host,
                                      args.backend)
        try:
            results = {'backend': args.backend, 'domains': args.domains,
                       'cores': os.cpu_count(), 'loadavg_before': loadavg()}
            if 'concurrency' in sections:
                results['concurrency'] = concurrency(
                    stack, args, f'http://127.0.0.1:{metrics_port}/metrics')
            if 'audits' in sections:
                audits(stack, args, results)
            results['loadavg_after'] = loadavg()
        finally:
            code = compute.terminate()
            transport.cleanup()
    results['exit_code'] = code
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
