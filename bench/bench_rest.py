"""Benchmark of nova-rt-placement's REST API beside its RPC API and
OpenStack Placement 16, on this machine, in one run.

    .venv/bin/python bench/bench_rest.py [--api-providers 1000]
        [--providers 1000,10000] [--backends sqlite,postgresql]
        [--runs 40] [--writes 200] [--no-placement] [--no-rpc] [--json]

Part 1, against Placement 16 (``--api-providers``, 1,000 by default: 10,000
through Placement's API takes many minutes): OpenStack Placement 16 from the
reference virtualenv (tools/setup-ref.sh), served by its WSGI module as its
old ``placement-api`` script served it (refserve.py: wsgiref, one thread) on
SQLite, and ``nova-rt-placement-api`` (tests/functional/clients/server.py)
on each backend, each filled through its own API with the same N
compute-like root providers (VCPU 32 at 4.0, MEMORY_MB 65536, DISK_GB 1000;
every 4th with HW_CPU_X86_AVX2, every 5th in one of 3 aggregates), then:

- ``GET /allocation_candidates`` at 1.36 (Nova's scheduler's version) for
  VCPU:2, MEMORY_MB:2048, DISK_GB:20, without a limit ("plain"), and with
  ``required=HW_CPU_X86_AVX2`` and ``limit=100`` ("trait+limit");
- ``PUT /allocations/{consumer}`` at 1.36 for a new consumer (one provider,
  VCPU 1 + MEMORY_MB 256, consumer_generation null): an allocation write;
- ``GET /`` (the root document, no database): the HTTP floor of the server.

Part 2, REST beside RPC (``--providers``): the database filled in bulk with
N host-owned, live compute nodes as bench/bench_placement.py does (0-3
instances each, the COMPUTE_NODE trait; the RPC API offers only providers a
live host owns), then the same candidates request ("plain", and
``required=COMPUTE_NODE`` with ``limit=100``) and allocation writes over
HTTP, ``PlacementAPI.get_allocation_candidates`` over RabbitMQ through one
``nova-rt-placement`` on the same database, and a call answered by an
oslo.messaging server that does nothing (bench/oslo_floor_server.py): the
RPC floor.

Every HTTP request opens its own connection (Placement's server speaks
HTTP/1.0), with ``X-Auth-Token: admin``. p50/p99 in milliseconds; the
ratios are Placement 16's p50 over ours, ours over RPC and over the floors.
The issue's target: at least 5x faster than Placement 16 (candidates over
1,000 providers, allocation write). The load average is printed before and
after: other work on this 2-CPU machine moves every figure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tests.functional.clients import server as server_mod  # noqa: E402

RESOURCES = {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20}
RES_QS = 'resources=' + ','.join(f'{k}:{v}' for k, v in RESOURCES.items())
VARIANTS = {'plain': RES_QS,
            'trait+limit': RES_QS + '&required=HW_CPU_X86_AVX2&limit=100'}
BULK_VARIANTS = {'plain': RES_QS,
                 'trait+limit': RES_QS + '&required=COMPUTE_NODE&limit=100'}
AGGREGATES = [str(uuid.UUID(int=i + 1)) for i in range(3)]
CTX = {'request_id': 'req-bench-rest'}


class Http:
    """One connection per request, as to an HTTP/1.0 server."""

    def __init__(self, url: str):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port

    def call(self, method: str, path: str, body=None, version: str = '1.36'):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        headers = {'X-Auth-Token': 'admin', 'Accept': 'application/json',
                   'OpenStack-API-Version': f'placement {version}'}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers['Content-Type'] = 'application/json'
        try:
            conn.request(method, path, data, headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        return resp.status, (json.loads(raw) if raw.strip() else None)

    def ok(self, method, path, body=None, version='1.36', expect=(200, 201, 204)):
        status, out = self.call(method, path, body, version)
        if status not in expect:
            raise RuntimeError(f'{method} {path} -> {status}: {out}')
        return out


def _one_provider(api: Http, i: int) -> str:
    rp = str(uuid.uuid4())
    api.ok('POST', '/resource_providers', {'name': f'bench-cn-{i}', 'uuid': rp},
           version='1.20')
    gen = api.ok('PUT', f'/resource_providers/{rp}/inventories', {
        'resource_provider_generation': 0,
        'inventories': {
            'VCPU': {'total': 32, 'allocation_ratio': 4.0, 'max_unit': 32},
            'MEMORY_MB': {'total': 65536, 'max_unit': 65536},
            'DISK_GB': {'total': 1000, 'max_unit': 1000}}})['resource_provider_generation']
    if i % 4 == 0:
        gen = api.ok('PUT', f'/resource_providers/{rp}/traits', {
            'resource_provider_generation': gen,
            'traits': ['HW_CPU_X86_AVX2', 'COMPUTE_NODE']})['resource_provider_generation']
    if i % 5 == 0:
        api.ok('PUT', f'/resource_providers/{rp}/aggregates', {
            'resource_provider_generation': gen,
            'aggregates': [AGGREGATES[i % 3]]}, version='1.19')
    return rp


def populate(api: Http, n: int, workers: int = 4) -> list:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda i: _one_provider(api, i), range(n)))


def timed(func, runs: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        func()
    samples, count = [], None
    for _ in range(runs):
        start = time.perf_counter()
        count = func()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {'p50_ms': round(statistics.median(samples), 2),
            'p99_ms': round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
            'runs': runs, 'count': count}


def http_candidates(api: Http, query: str):
    def one():
        status, body = api.call('GET', '/allocation_candidates?' + query)
        if status != 200:
            raise RuntimeError(f'GET /allocation_candidates -> {status}: {body}')
        return len(body['allocation_requests'])
    return one


def http_write(api: Http, providers: list):
    state = {'i': 0}
    project, user = str(uuid.uuid4()), str(uuid.uuid4())

    def one():
        rp = providers[state['i'] % len(providers)]
        state['i'] += 1
        api.ok('PUT', f'/allocations/{uuid.uuid4()}', {
            'allocations': {rp: {'resources': {'VCPU': 1, 'MEMORY_MB': 256}}},
            'project_id': project, 'user_id': user, 'consumer_generation': None})
        return 1
    return one


def http_root(api: Http):
    return lambda: len(api.ok('GET', '/')['versions'])


def measure_http(results, target, backend, n, api, providers, args,
                 variants=VARIANTS, refresh=lambda: None):
    for name, query in variants.items():
        refresh()
        row = timed(http_candidates(api, query), args.runs)
        results.append({'target': target, 'backend': backend, 'providers': n,
                        'what': f'candidates {name}', **row})
        _print_row(results[-1])
    results.append({'target': target, 'backend': backend, 'providers': n,
                    'what': 'allocation write', **timed(http_write(api, providers),
                                                        args.writes)})
    _print_row(results[-1])
    results.append({'target': target, 'backend': backend, 'providers': n,
                    'what': 'GET / (HTTP floor)', **timed(http_root(api), args.runs)})
    _print_row(results[-1])


def measure_rpc(results, backend, n, db_url, workdir, args, refresh=lambda: None):
    import oslo_messaging as messaging

    import oslo_floor_server
    from nova_rt import rpc
    from tests.functional.placement import fixtures
    with fixtures.running_placement(db_url, workdir) as placement:
        for name, kwargs in (('plain', {}),
                             ('trait+limit', {'required': ['COMPUTE_NODE'],
                                              'limit': 100})):
            refresh()
            row = timed(lambda: len(placement.api.get_allocation_candidates(
                CTX, resources=dict(RESOURCES), **kwargs)), args.runs)
            results.append({'target': 'nova-rt RPC', 'backend': backend,
                            'providers': n, 'what': f'candidates {name}', **row})
            _print_row(results[-1])
        log_path = os.path.join(workdir, 'floor.log')
        with open(log_path, 'w') as log:
            import subprocess
            proc = subprocess.Popen(
                [sys.executable, os.path.join(REPO, 'bench', 'oslo_floor_server.py'),
                 '--config-file', placement.config_file],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
        try:
            fixtures.wait_serving(proc, log_path)
            client = messaging.get_rpc_client(
                placement.transport,
                messaging.Target(topic=oslo_floor_server.TOPIC,
                                 version=rpc.RPC_VERSION)).prepare(timeout=30)
            row = timed(lambda: len(client.call(
                CTX, 'get_allocations', consumer_uuid=str(uuid.uuid4()))) + 1,
                args.runs)
            results.append({'target': 'RPC floor', 'backend': backend, 'providers': n,
                            'what': 'no-op call', **row})
            _print_row(results[-1])
        finally:
            fixtures.stop_process(proc)


def _database(backend, workdir, name):
    from tests.functional.placement import fixtures
    if backend == 'sqlite':
        return f'sqlite:///{workdir}/{name}.sqlite'
    return fixtures.fresh_database(backend)


def _drop(backend, db_url):
    if backend != 'sqlite':
        from tests.functional.placement import fixtures
        fixtures.drop_database(db_url)


def run_nova_rt_api(results, backend, n, args, workdir):
    """Part 1: providers made through the API, as for Placement 16."""
    db_url = _database(backend, workdir, f'api-{n}')
    try:
        with server_mod.Server('nova-rt', db_url=db_url,
                               workdir=_subdir(workdir, f'api-{backend}-{n}')) as srv:
            api = Http(srv.url)
            t0 = time.perf_counter()
            providers = populate(api, n)
            print(f'  nova-rt REST {backend}: {n} providers through the API in '
                  f'{time.perf_counter() - t0:.1f} s', flush=True)
            measure_http(results, 'nova-rt REST', backend, n, api, providers, args)
    finally:
        _drop(backend, db_url)


def _stamp_heartbeats(db_url) -> None:
    """Every host alive now: the bulk providers are host-owned, and both
    APIs offer a host's providers only within [placement] heartbeat_timeout
    of its last report, which a long measurement outlasts."""
    import sqlalchemy as sa

    import bench_placement
    from nova_rt.placement import db
    from nova_rt.placement import models
    with db.get_engine(db_url).begin() as conn:
        conn.execute(sa.update(models.ResourceProvider).values(
            last_heartbeat=bench_placement.fixtures_now()))


def run_nova_rt_rpc(results, backend, n, args, workdir):
    """Part 2: host-owned providers in bulk; REST beside RPC on them."""
    import bench_placement
    db_url = _database(backend, workdir, f'bulk-{n}')
    try:
        from nova_rt.placement import db
        db.sync(db_url)
        t0 = time.perf_counter()
        bench_placement.populate(db_url, n)
        db.dispose_engines()
        print(f'  {backend}: {n} host-owned providers in bulk in '
              f'{time.perf_counter() - t0:.1f} s', flush=True)
        with server_mod.Server('nova-rt', db_url=db_url,
                               workdir=_subdir(workdir, f'bulk-{backend}-{n}')) as srv:
            api = Http(srv.url)
            providers = [p['uuid'] for p in api.ok(
                'GET', '/resource_providers')['resource_providers']][:100]
            def refresh():
                _stamp_heartbeats(db_url)
            measure_http(results, 'nova-rt REST/bulk', backend, n, api,
                         providers, args, variants=BULK_VARIANTS, refresh=refresh)
            if args.rpc:
                measure_rpc(results, backend, n, db_url,
                            _subdir(workdir, f'rpc-{backend}-{n}'), args,
                            refresh=refresh)
    finally:
        _drop(backend, db_url)


def run_placement(results, n, args, workdir):
    with server_mod.Server('placement',
                           workdir=_subdir(workdir, f'placement-{n}')) as srv:
        api = Http(srv.url)
        t0 = time.perf_counter()
        providers = populate(api, n, workers=1)
        print(f'  Placement 16 sqlite: {n} providers through the API in '
              f'{time.perf_counter() - t0:.1f} s', flush=True)
        measure_http(results, 'Placement 16', 'sqlite', n, api, providers, args)


def _subdir(workdir, name):
    path = os.path.join(workdir, name)
    os.makedirs(path, exist_ok=True)
    return path


def _print_row(row):
    print(f'  {row["target"]:<17} {row["backend"]:<10} {row["providers"]:>6} '
          f'{row["what"]:<24} p50 {row["p50_ms"]:8.2f} ms  p99 {row["p99_ms"]:8.2f} ms'
          f'  ({row["count"]})', flush=True)


def ratios(results) -> list:
    """Placement 16 p50 / ours (same data, made through each API); ours over
    RPC and over the RPC floor (same host-owned data)."""
    index = {(r['target'], r['backend'], r['providers'], r['what']): r['p50_ms']
             for r in results}
    counts = {(r['target'], r['backend'], r['providers'], r['what']): r['count']
              for r in results}
    out = []

    def add(n, what, backend, ratio, value):
        out.append({'providers': n, 'what': what, 'backend': backend,
                    'ratio': ratio, 'value': round(value, 2)})
    for (target, backend, n, what), p50 in sorted(index.items(), key=str):
        if target == 'nova-rt REST':
            ref = index.get(('Placement 16', 'sqlite', n, what))
            if ref:
                add(n, what, backend, 'Placement 16 (SQLite) / nova-rt REST',
                    ref / p50)
        elif target == 'nova-rt REST/bulk':
            rpc = index.get(('nova-rt RPC', backend, n, what))
            if rpc and counts[('nova-rt RPC', backend, n, what)] != counts[
                    (target, backend, n, what)]:
                print(f'  (!) {n} {backend} {what}: RPC and REST found different '
                      'numbers of candidates: no ratio')
            elif rpc:
                add(n, what, backend, 'nova-rt REST / nova-rt RPC', p50 / rpc)
            floor = index.get(('RPC floor', backend, n, 'no-op call'))
            if floor and what.startswith('candidates'):
                add(n, what, backend, 'nova-rt REST / RPC floor', p50 / floor)
    return out


def _load() -> str:
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ints = lambda s: [int(x) for x in s.split(',') if x]  # noqa: E731
    parser.add_argument('--api-providers', default='1000', type=ints,
                        help='part 1: providers made through each API, beside '
                             'Placement 16 (empty: skip part 1)')
    parser.add_argument('--providers', default='1000,10000', type=ints,
                        help='part 2: host-owned providers in bulk, REST beside '
                             'RPC (empty: skip part 2)')
    parser.add_argument('--backends', default='sqlite,postgresql')
    parser.add_argument('--runs', type=int, default=40)
    parser.add_argument('--writes', type=int, default=200)
    parser.add_argument('--no-placement', dest='placement', action='store_false',
                        help='part 1 without Placement 16')
    parser.add_argument('--no-rpc', dest='rpc', action='store_false')
    parser.add_argument('--json', action='store_true',
                        help='print the results as one JSON document at the end')
    args = parser.parse_args(argv)
    missing = (server_mod.ref_missing()
               if args.placement and args.api_providers else None)
    if missing:
        parser.error(missing + ' (or --no-placement)')
    load_start = _load()
    print(f'{os.cpu_count()} CPUs, load average {load_start} at start', flush=True)
    results = []
    backends = args.backends.split(',')
    with tempfile.TemporaryDirectory(prefix='bench-rest-') as workdir:
        for n in args.api_providers:
            if args.placement:
                run_placement(results, n, args, workdir)
            for backend in backends:
                run_nova_rt_api(results, backend, n, args, workdir)
        for n in args.providers:
            for backend in backends:
                run_nova_rt_rpc(results, backend, n, args, workdir)
    load_end = _load()
    print(f'load average {load_end} at the end')
    print('\nratios (p50):')
    rows = ratios(results)
    for r in rows:
        print(f'  {r["providers"]:>6} {r["backend"]:<10} {r["what"]:<24} '
              f'{r["ratio"]:<28} {r["value"]:6.2f}x')
    if args.json:
        print(json.dumps({'cpus': os.cpu_count(), 'load_start': load_start,
                          'load_end': load_end, 'results': results,
                          'ratios': rows}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
