#!/usr/bin/env python3
"""The floors under the compute daemon's figures and the figures themselves,
side by side, in one run.

    .venv/bin/python bench/bench_floor.py [--json] [--domains 1000]
        [--rounds 3] [--samples 300] [--audits 15]

One placement process, one real ``nova-rt-compute`` (libvirt test driver
host with ``--domains`` running and shut-off domains, none of them an
instance) and an oslo.messaging server that does nothing
(``oslo_floor_server.py``), all on one RabbitMQ vhost.  In each of
``--rounds`` interleaved rounds it measures:

- RPC no-op: one caller's call to the do-nothing server (the floor of any
  call on this broker), p50/p99;
- the daemon's own no-op: ``abort_instance_claim`` of an instance the host
  never saw, through the same client: the RPC no-op plus what nova_rt adds
  to any call (context, identity guard, validation, metrics), no write;
- claim: one caller's ``instance_claim`` round trip to the daemon (each
  followed by an untimed ``abort_instance_claim``), idle and while another
  process runs ``run_audit`` back to back;
- the floor under "claims during audits": the same claims while that other
  process sends, back to back, calls that do nothing
  (``abort_instance_claim`` of an instance the host never saw): what any
  busy second caller costs a claim on this machine (cores, broker, GIL),
  before the audit's own work;
- audit: the daemon's own duration of a steady-state audit (nothing changed
  since the last one), against libvirt's floors on a connection of this
  process to the same host file: the listing alone (``listAllDomains``) and
  the listing plus every domain's ``XMLDesc``;
- placement messages per idle audit: RPC calls and casts placement served
  (its Prometheus counters) over ``--audits`` idle audits, divided by them.

Percentiles are over the samples of all rounds; ``rounds`` in the JSON
holds each round's own.  Ratios are against the floors of the same run.
Targets (issue 19): claim p50 <= 1.25x the no-op call, claim p99 during
audits <= 1.2x idle, steady-state audit <= the listing floor, 0 messages
per idle audit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from oslo_service import backend as _backend  # noqa: E402

_backend.init_backend(_backend.BackendType.THREADING)

import libvirt  # noqa: E402
import oslo_floor_server  # noqa: E402
from bench_rpc import (  # noqa: E402
    audits_running, free_port, loadavg as load, one_claim, percentile)

from tests.functional.compute import fixtures  # noqa: E402
from tests.functional.placement import fixtures as placement_fixtures  # noqa: E402
from tests.functional.virt import hostxml  # noqa: E402

KEYS = ('rpc_noop_p50_ms', 'rpc_noop_p99_ms', 'claim_p50_ms', 'claim_p99_ms',
        'claim_p99_during_audits_ms', 'audit_1k_ms', 'list_floor_ms',
        'list_xml_floor_ms', 'idle_audit_messages')


def ms(seconds):
    return round(seconds * 1000, 3)


# ------------------------------------------------------------------ floors

def libvirt_floors(uri: str, runs: int) -> dict:
    """Median seconds of the listing alone and of the listing plus every
    domain's XML, on a connection of this process."""
    conn = libvirt.open(uri)
    try:
        def listing():
            conn.listAllDomains(0)

        def listing_xml():
            for dom in conn.listAllDomains(0):
                dom.XMLDesc(0)

        result = {}
        for name, fn in (('list', listing), ('list_xml', listing_xml)):
            fn()
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - started)
            result[name] = statistics.median(samples)
        return result
    finally:
        conn.close()


class NoopCaller:
    """Calls the do-nothing server as the compute client calls the daemon:
    an oslo.messaging RPCClient on its own transport."""

    def __init__(self, exchange: str, url: str):
        import oslo_messaging as messaging

        from nova_rt import rpc
        self.transport = placement_fixtures.make_transport(exchange, url)
        self.client = messaging.get_rpc_client(
            self.transport, messaging.Target(topic=oslo_floor_server.TOPIC,
                                             version=rpc.RPC_VERSION),
            timeout=60)

    def call(self) -> float:
        started = time.perf_counter()
        self.client.call({}, 'get_allocations',
                         consumer_uuid=str(uuid.uuid4()))
        return time.perf_counter() - started

    def close(self):
        self.transport.cleanup()


@contextlib.contextmanager
def floor_server(config_file: str, workdir: str):
    log_path = os.path.join(workdir, 'floor.log')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(REPO, 'bench', 'oslo_floor_server.py'),
             '--config-file', config_file],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    try:
        placement_fixtures.wait_serving(proc, log_path)
        yield proc
    finally:
        placement_fixtures.stop_process(proc)


# ------------------------------------------------------------------ the daemon

def steady_audits(stack, count: int) -> list:
    """Daemon-side seconds of ``count`` audits of an unchanged host."""
    stack.api.run_audit({}, stack.host, timeout=120)
    return [stack.api.run_audit({}, stack.host, timeout=120)['duration_s']
            for _ in range(count)]


_SAMPLE = re.compile(r'^nova_rt_placement_rpc_call_seconds_count\{[^}]*\} '
                     r'([0-9.e+]+)$', re.M)


def placement_messages(metrics_url: str) -> float:
    """Every RPC call and cast placement has served (all methods)."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    return sum(float(v) for v in _SAMPLE.findall(text))


def idle_audit_messages(stack, metrics_url: str, audits: int) -> dict:
    stack.api.run_audit({}, stack.host, timeout=120)
    time.sleep(0.5)              # anything still in flight is counted before
    before = placement_messages(metrics_url)
    reported = [stack.api.run_audit({}, stack.host, timeout=120)['reported']
                for _ in range(audits)]
    time.sleep(0.5)
    after = placement_messages(metrics_url)
    return {'audits': audits, 'messages': after - before,
            'reported': sum(bool(r) for r in reported)}


# ------------------------------------------------------------------ run

def daemon_noop(stack) -> float:
    started = time.perf_counter()
    stack.api.abort_instance_claim({}, stack.host,
                                   instance_uuid=str(uuid.uuid4()))
    return time.perf_counter() - started


def one_round(stack, noop: NoopCaller, samples: int) -> dict:
    for _ in range(20):          # warm connections and caches
        noop.call()
        one_claim(stack)
    noop_times = [noop.call() for _ in range(samples)]
    daemon_noop_times = [daemon_noop(stack) for _ in range(samples)]
    claim_times = [one_claim(stack) for _ in range(samples)]
    with audits_running(stack, 'noops'):
        during_noops = [one_claim(stack) for _ in range(samples)]
    with audits_running(stack) as audit_durations:
        during = [one_claim(stack) for _ in range(samples)]
    return {'noop': noop_times, 'daemon_noop': daemon_noop_times,
            'claim': claim_times, 'during': during,
            'during_noops': during_noops,
            'audits_under_claims': list(audit_durations),
            'load': load()}


def summarize(rounds: list, audits: list, floors: dict, messages: dict,
              args) -> dict:
    pooled = {k: [x for r in rounds for x in r[k]]
              for k in ('noop', 'daemon_noop', 'claim', 'during',
                        'during_noops',
                        'audits_under_claims')}
    result = {
        'rpc_noop_p50_ms': ms(percentile(pooled['noop'], 50)),
        'rpc_noop_p99_ms': ms(percentile(pooled['noop'], 99)),
        'daemon_noop_p50_ms': ms(percentile(pooled['daemon_noop'], 50)),
        'claim_p50_ms': ms(percentile(pooled['claim'], 50)),
        'claim_p99_ms': ms(percentile(pooled['claim'], 99)),
        'claim_p50_during_audits_ms': ms(percentile(pooled['during'], 50)),
        'claim_p99_during_audits_ms': ms(percentile(pooled['during'], 99)),
        'claim_p99_during_noops_ms': ms(percentile(pooled['during_noops'],
                                                   99)),
        'audit_1k_ms': ms(statistics.median(audits)),
        'audit_1k_p95_ms': ms(percentile(audits, 95)),
        'audit_under_claims_ms': ms(statistics.median(
            pooled['audits_under_claims'])),
        'list_floor_ms': ms(floors['list']),
        'list_xml_floor_ms': ms(floors['list_xml']),
        'idle_audit_messages': round(messages['messages']
                                     / messages['audits'], 3),
    }
    result['ratios'] = {
        'claim_p50_over_noop_p50': round(result['claim_p50_ms']
                                         / result['rpc_noop_p50_ms'], 2),
        'daemon_noop_p50_over_noop_p50': round(
            result['daemon_noop_p50_ms'] / result['rpc_noop_p50_ms'], 2),
        'claim_p50_over_daemon_noop_p50': round(
            result['claim_p50_ms'] / result['daemon_noop_p50_ms'], 2),
        'claim_p99_over_noop_p99': round(result['claim_p99_ms']
                                         / result['rpc_noop_p99_ms'], 2),
        'claim_p99_during_audits_over_idle': round(
            result['claim_p99_during_audits_ms'] / result['claim_p99_ms'], 2),
        'claim_p99_during_noops_over_idle': round(
            result['claim_p99_during_noops_ms'] / result['claim_p99_ms'], 2),
        'claim_p99_during_audits_over_during_noops': round(
            result['claim_p99_during_audits_ms']
            / result['claim_p99_during_noops_ms'], 2),
        'audit_over_list_floor': round(result['audit_1k_ms']
                                       / result['list_floor_ms'], 2),
        'audit_over_list_xml_floor': round(result['audit_1k_ms']
                                           / result['list_xml_floor_ms'], 2),
    }
    result['rounds'] = [{
        'noop_p50_ms': ms(percentile(r['noop'], 50)),
        'noop_p99_ms': ms(percentile(r['noop'], 99)),
        'daemon_noop_p50_ms': ms(percentile(r['daemon_noop'], 50)),
        'claim_p50_ms': ms(percentile(r['claim'], 50)),
        'claim_p99_ms': ms(percentile(r['claim'], 99)),
        'claim_p99_during_audits_ms': ms(percentile(r['during'], 99)),
        'claim_p99_during_noops_ms': ms(percentile(r['during_noops'], 99)),
        'audits_under_claims': len(r['audits_under_claims']),
        'load': r['load']} for r in rounds]
    result['idle_audits'] = messages
    result['setup'] = {'domains': args.domains, 'rounds': args.rounds,
                       'samples_per_round': args.samples,
                       'steady_audits': args.audits, 'cores': os.cpu_count(),
                       'python': sys.version.split()[0]}
    return result


def table(result: dict) -> str:
    r = result['ratios']
    rows = [
        ('RPC no-op call p50', result['rpc_noop_p50_ms'], 'ms', 'floor'),
        ('RPC no-op call p99', result['rpc_noop_p99_ms'], 'ms', 'floor'),
        ('daemon no-op p50 (abort, unknown)', result['daemon_noop_p50_ms'],
         'ms', f"{r['daemon_noop_p50_over_noop_p50']}x no-op p50"),
        ('claim p50 (idle)', result['claim_p50_ms'], 'ms',
         f"{r['claim_p50_over_noop_p50']}x no-op p50 (target <= 1.25x), "
         f"{r['claim_p50_over_daemon_noop_p50']}x daemon no-op"),
        ('claim p99 (idle)', result['claim_p99_ms'], 'ms',
         f"{r['claim_p99_over_noop_p99']}x no-op p99"),
        ('claim p99 during audits', result['claim_p99_during_audits_ms'],
         'ms', f"{r['claim_p99_during_audits_over_idle']}x idle "
               '(target <= 1.2x), '
               f"{r['claim_p99_during_audits_over_during_noops']}x "
               'during no-ops'),
        ('claim p99 during back-to-back no-ops',
         result['claim_p99_during_noops_ms'], 'ms',
         f"{r['claim_p99_during_noops_over_idle']}x idle (floor of the "
         'line above)'),
        ('libvirt list (floor)', result['list_floor_ms'], 'ms', 'floor'),
        ('libvirt list + XMLDesc (floor)', result['list_xml_floor_ms'], 'ms',
         'floor'),
        (f"audit, {result['setup']['domains']} unchanged domains",
         result['audit_1k_ms'], 'ms',
         f"{r['audit_over_list_floor']}x list floor (target <= 1x), "
         f"{r['audit_over_list_xml_floor']}x list+XML"),
        ('audit under a claim stream', result['audit_under_claims_ms'], 'ms',
         ''),
        ('placement messages per idle audit', result['idle_audit_messages'],
         '', 'target 0'),
    ]
    width = max(len(name) for name, *_ in rows)
    lines = [f"{name:<{width}}  {value:>9} {unit:<2}  {note}"
             for name, value, unit, note in rows]
    lines.append(f"load at start {result['load_start']}, at end "
                 f"{result['load_end']}; {result['setup']['cores']} cores")
    return '\n'.join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object instead of the table')
    parser.add_argument('--domains', type=int, default=1000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--samples', type=int, default=300,
                        help='timed calls of each kind per round')
    parser.add_argument('--audits', type=int, default=15,
                        help='steady-state and idle audits measured')
    args = parser.parse_args(argv)
    load_start = load()
    workdir = tempfile.mkdtemp(prefix='bench-floor-')
    uri = hostxml.write_host_xml(os.path.join(workdir, 'host.xml'),
                                 n_domains=args.domains, cpus=64,
                                 memory_kib=4 * 1024 ** 3)
    metrics_port = free_port()
    url = f'sqlite:///{workdir}/placement.sqlite'
    with placement_fixtures.running_placement(
            url, workdir, extra_conf=f'[metrics]\nenabled = true\n'
                                     f'port = {metrics_port}\n') as placement:
        vhost = fixtures.transport_url_of(placement)
        compute = fixtures.ComputeProcess(
            workdir, f'bench-floor-{uuid.uuid4().hex[:6]}',
            placement.exchange, 'threading', transport_url=vhost,
            connection_uri=uri,
            extra='cpu_allocation_ratio = 64.0\n'
                  'update_resources_interval = 3600\n'
                  'heartbeat_interval = 3600\n')
        compute.start()
        api, transport = fixtures.compute_client(placement.exchange, url=vhost,
                                                 timeout=60)
        stack = fixtures.ComputeStack(compute, api, placement, compute.host,
                                      'threading')
        noop = None
        try:
            with floor_server(placement.config_file, workdir):
                noop = NoopCaller(placement.exchange, vhost)
                rounds = [one_round(stack, noop, args.samples)
                          for _ in range(args.rounds)]
            audits = steady_audits(stack, args.audits)
            floors = libvirt_floors(uri, args.audits)
            messages = idle_audit_messages(
                stack, f'http://127.0.0.1:{metrics_port}/metrics', args.audits)
        finally:
            if noop is not None:
                noop.close()
            code = compute.terminate()
            transport.cleanup()
    if code != 0:
        raise SystemExit(f'nova-rt-compute exited {code}')
    result = summarize(rounds, audits, floors, messages, args)
    result['load_start'], result['load_end'] = load_start, load()
    missing = [k for k in KEYS if k not in result]
    assert not missing, missing
    print(json.dumps(result, indent=2) if args.json else table(result))
    return result


if __name__ == '__main__':
    main()
