"""Benchmark of the general allocation candidates engine (``candidates``,
what ``GET /allocation_candidates`` runs) against the RPC path's one
statement (``query_ops.get_allocation_candidates``), measured in the same
run on the same data: the floor the ratio is against.

    .venv/bin/python bench/bench_candidates_rest.py [--backends sqlite,postgresql]
        [--providers 1000,10000] [--runs 40]

Data: ``bench_placement.populate``: N compute nodes (a root each with VCPU,
MEMORY_MB, DISK_GB, the COMPUTE_NODE trait, 0-3 instances).  Request:
Nova's (VCPU:2, MEMORY_MB:2048, DISK_GB:20, required COMPUTE_NODE) at
microversion 1.36, without a limit and with limit 1000 (Nova's default
``max_placement_results``); "engine" is the query, the combinations and the
reads of the trees (``candidates.find``), "+json" adds the body, written
as the handler sends it; one transaction each, as the handler's; "wsgi"
is the whole REST application (noauth2, microversion, policy, handler,
encoding) called in process without a socket; "http" is the same over
HTTP, served as ``nova-rt-placement-api`` serves it (``init_application``
under wsgiref, a process of its own, a connection per request).  Also
the case of real compute nodes: 40 more traits on each provider (Nova's
request with limit 1000).  And a nested case (the general path): two NUMA
children (VCPU, MEMORY_MB) under each root, which keeps its own, a
numbered group for each of the two classes
with ``group_policy=isolate`` and limit 1000: six combinations per tree.
The start-up objects are exempted from garbage collection, as
the services do.  p50/p99 in ms; the load average before and after is
printed (2 cores shared with other work move every figure).
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sqlalchemy as sa  # noqa: E402

import bench_placement  # noqa: E402
from nova_rt import gcutil  # noqa: E402
from nova_rt.placement import candidate_request  # noqa: E402
from nova_rt.placement import candidates  # noqa: E402
from nova_rt.placement import common  # noqa: E402
from nova_rt.placement import db  # noqa: E402
from nova_rt.placement import models  # noqa: E402
from nova_rt.placement import query_ops  # noqa: E402
from tests.functional.placement import fixtures  # noqa: E402

VERSION = (1, 36)
QUERY = [('resources', 'VCPU:2,MEMORY_MB:2048,DISK_GB:20'),
         ('required', 'COMPUTE_NODE')]
NUMA_QUERY = [('resources', 'DISK_GB:20'), ('resources1', 'VCPU:2'),
              ('resources2', 'MEMORY_MB:1024'), ('group_policy', 'isolate'),
              ('limit', '1000')]
TIMEOUT = 600


def _load() -> str:
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def _engine_call(engine, query, with_json: bool):
    request = candidate_request.parse(query, VERSION)

    def call():
        with engine.begin() as conn:
            if with_json:
                body = candidates.encoded_allocation_candidates(
                    conn, request, VERSION, TIMEOUT)
                return range(body.count(b'"allocations"'))
            return candidates.find(conn, request, TIMEOUT)[0]
    return call


def _wsgi_call(engine, query):
    import types
    from nova_rt.placement.rest import app as app_mod
    from nova_rt.placement.rest import auth
    conf = types.SimpleNamespace(api=types.SimpleNamespace(
        auth_strategy='noauth2'))
    application = auth.wrap(app_mod.PlacementApp(
        engine, app_mod.Options(heartbeat_timeout=TIMEOUT)), conf)
    query_string = urllib.parse.urlencode(query)

    def call():
        environ = {'REQUEST_METHOD': 'GET',
                   'PATH_INFO': '/allocation_candidates',
                   'QUERY_STRING': query_string, 'SERVER_NAME': 'bench',
                   'SERVER_PORT': '80', 'wsgi.url_scheme': 'http',
                   'HTTP_X_AUTH_TOKEN': 'admin',
                   'HTTP_OPENSTACK_API_VERSION': 'placement %d.%d' % VERSION}
        status = []
        body = b''.join(application(
            environ, lambda s, h, *a: status.append(s)))
        assert status[0].startswith('200'), (status, body[:300])
        return range(body.count(b'"allocations"'))
    return call


class _Served:
    """The WSGI application as ``nova-rt-placement-api`` serves it
    (``init_application``, wsgiref), in a process of its own on ``url``."""

    def __init__(self, url: str, tmp: str):
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            self.port = sock.getsockname()[1]
        conf = os.path.join(tmp, 'bench-api.conf')
        with open(conf, 'w') as f:
            f.write(f'[DEFAULT]\nstate_path = {tmp}\n'
                    '[api]\nauth_strategy = noauth2\n'
                    f'[placement]\nheartbeat_timeout = {TIMEOUT}\n'
                    f'[placement_database]\nconnection = {url}\n')
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), '--serve', conf,
             str(self.port)], stdout=subprocess.DEVNULL,
            env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
        deadline = time.monotonic() + 60
        while True:
            try:
                self._get('/', {})
                return
            except OSError:
                if self.proc.poll() is not None or \
                        time.monotonic() > deadline:
                    raise RuntimeError('the API server did not start')
                time.sleep(0.2)

    def _get(self, path, headers):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=60)
        try:
            conn.request('GET', path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        assert resp.status == 200, (resp.status, body[:300])
        return body

    def call(self, query):
        path = '/allocation_candidates?' + urllib.parse.urlencode(query)
        headers = {'X-Auth-Token': 'admin',
                   'OpenStack-API-Version': 'placement %d.%d' % VERSION}

        def call():
            return range(self._get(path, headers).count(b'"allocations"'))
        return call

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _serve(conf: str, port: int) -> None:
    import wsgiref.simple_server
    from nova_rt.placement.rest import wsgi

    class Quiet(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, *args):
            pass

    application = wsgi.init_application(['--config-file', conf])
    wsgiref.simple_server.make_server(
        '127.0.0.1', port, application, handler_class=Quiet).serve_forever()


def _floor_call(engine, limit):
    def call():
        with engine.begin() as conn:
            return query_ops.get_allocation_candidates(
                conn, bench_placement.REQUEST['resources'], TIMEOUT,
                required=bench_placement.REQUEST['required'], limit=limit)
    return call


def _add_traits(url: str, count: int) -> None:
    """``count`` more standard traits on every provider, as a real compute
    node reports (CPU flags, COMPUTE_* capabilities)."""
    engine = db.get_engine(url)
    with engine.begin() as conn:
        known = dict(conn.execute(sa.select(models.Trait.name,
                                            models.Trait.id)).all())
        names = [t for t in sorted(common.standard_traits())
                 if t not in known][:count]
        conn.execute(sa.insert(models.Trait), [{'name': t} for t in names])
        ids = [i for (i,) in conn.execute(sa.select(models.Trait.id).where(
            models.Trait.name.in_(names)))]
        rps = [i for (i,) in conn.execute(sa.select(
            models.ResourceProvider.id))]
        conn.execute(sa.insert(models.ProviderTrait), [
            {'resource_provider_id': rp, 'trait_id': t}
            for rp in rps for t in ids])
    if engine.dialect.name == 'postgresql':
        with engine.connect().execution_options(
                isolation_level='AUTOCOMMIT') as conn:
            conn.execute(sa.text('VACUUM ANALYZE'))


def _add_numa_children(url: str, n: int) -> None:
    """Two NUMA children with VCPU and MEMORY_MB under each root."""
    engine = db.get_engine(url)
    with engine.begin() as conn:
        rps, invs = [], []
        for root in range(1, n + 1):
            for node in range(2):
                rp_id = n + 2 * (root - 1) + node + 1
                rps.append({'id': rp_id, 'uuid': f'{rp_id:08d}-0000-4000-8000'
                            f'-{root:012d}', 'name': f'numa-{rp_id}',
                            'host': f'bench-{root - 1}', 'generation': 1,
                            'parent_provider_id': root,
                            'root_provider_id': root, 'last_heartbeat': None})
                for rc, total in (('VCPU', 16), ('MEMORY_MB', 65536)):
                    invs.append({'resource_provider_id': rp_id,
                                 'root_provider_id': root,
                                 'resource_class': rc, 'total': total,
                                 'reserved': 0, 'min_unit': 1,
                                 'max_unit': total, 'step_size': 1,
                                 'allocation_ratio': 1.0, 'capacity': total,
                                 'used': 0})
        conn.execute(sa.insert(models.ResourceProvider), rps)
        conn.execute(sa.insert(models.Inventory), invs)
    if engine.dialect.name == 'postgresql':
        with engine.connect().execution_options(
                isolation_level='AUTOCOMMIT') as conn:
            conn.execute(sa.text('VACUUM ANALYZE'))


def run(backend: str, url: str, sizes, runs: int) -> None:
    engine = db.get_engine(url)
    with tempfile.TemporaryDirectory() as tmp:
        served = _Served(url, tmp)
        try:
            _run(backend, url, sizes, runs, engine, served)
        finally:
            served.stop()


def _run(backend, url, sizes, runs, engine, served) -> None:
    for n in sizes:
        bench_placement.populate(url, n)
        # As the services at start-up (nova-rt-placement, the WSGI
        # application): collections skip the modules' objects.
        gcutil.freeze_startup_objects()
        print(f'{backend} {n} providers (load {_load()})')
        for limit in (None, 1000):
            query = QUERY + ([('limit', str(limit))] if limit else [])
            floor, _, count = bench_placement.timed(
                _floor_call(engine, limit), runs)
            eng, eng99, count2 = bench_placement.timed(
                _engine_call(engine, query, False), runs)
            full, full99, _ = bench_placement.timed(
                _engine_call(engine, query, True), runs)
            wsgi, wsgi99, count3 = bench_placement.timed(
                _wsgi_call(engine, query), runs)
            over, over99, count4 = bench_placement.timed(
                served.call(query), runs)
            assert count == count2 == count3 == count4, (
                count, count2, count3, count4)
            print(f'  limit={str(limit):5s} rpc-statement p50 {floor:6.1f} | '
                  f'engine p50 {eng:6.1f} p99 {eng99:6.1f} | +json p50 '
                  f'{full:6.1f} p99 {full99:6.1f} | wsgi p50 {wsgi:6.1f} '
                  f'p99 {wsgi99:6.1f} | http p50 {over:6.1f} p99 '
                  f'{over99:6.1f} ms  ({count} candidates; engine/floor '
                  f'{eng / floor:4.2f}, wsgi/floor {wsgi / floor:4.2f}, '
                  f'http/floor {over / floor:4.2f})')
        _add_traits(url, 40)
        query = QUERY + [('limit', '1000')]
        wsgi, wsgi99, count = bench_placement.timed(
            _wsgi_call(engine, query), runs)
        over, over99, _ = bench_placement.timed(served.call(query), runs)
        print(f'  41 traits each, limit=1000: wsgi p50 {wsgi:6.1f} p99 '
              f'{wsgi99:6.1f} | http p50 {over:6.1f} p99 {over99:6.1f} ms  '
              f'({count} candidates)')
        _add_numa_children(url, n)
        p50, p99, count = bench_placement.timed(
            _engine_call(engine, NUMA_QUERY, True), max(runs // 4, 5))
        print(f'  nested isolate limit=1000 (3n providers) +json p50 {p50:6.1f} '
              f'p99 {p99:6.1f} ms  ({count} candidates)')
    print(f'  load after {_load()}')


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--backends', default='sqlite,postgresql')
    parser.add_argument('--providers', default='1000,10000')
    parser.add_argument('--runs', type=int, default=40)
    parser.add_argument('--serve', nargs=2, metavar=('CONFIG', 'PORT'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.serve[0], int(args.serve[1]))
    sizes = [int(x) for x in args.providers.split(',')]
    print(f'CPUs {os.cpu_count()}, load {_load()}')
    for backend in args.backends.split(','):
        if backend == 'sqlite':
            with tempfile.TemporaryDirectory() as tmp:
                url = f'sqlite:///{tmp}/bench.sqlite'
                db.sync(url)
                run(backend, url, sizes, args.runs)
                db.dispose_engines()
        else:
            url = fixtures.fresh_database(backend)
            try:
                db.sync(url)
                run(backend, url, sizes, args.runs)
            finally:
                fixtures.drop_database(url)


if __name__ == '__main__':
    main()
