"""Concurrent claim streams against a real nova-rt-compute, and what each
durable write cost the daemon: for ``bench_rpc.py --sections concurrency``.

A stream keeps ``in_flight`` callers busy from one thread on one AMQP
connection (``amqp_caller``, about a quarter of oslo.messaging's client CPU
per call, so that what saturates is the daemon, not the benchmark): each
caller claims a new instance, aborts it when the claim is acknowledged, and
claims the next one, so both durable verbs are in the stream and the host
never fills up.  The floor is the same stream of ``abort_instance_claim``
for instances the host never saw: the same edge, validation, lock and
transition, and no write.

Per stream: claims per second, the claim's and the abort's p50/p99, the
daemon's CPU per call, and what the writes cost on disk, counted twice:

- ``fsyncs``: fsync + fdatasync system calls of the daemon (``perf stat``
  on the syscall tracepoints, which counts without stopping the process;
  needs root or ``perf_event_paranoid`` <= 1, else left out).  This is what
  the code under test cannot miscount, so it is what BEFORE and AFTER
  compare.
- ``commits``: the daemon's own count (``nova_rt_compute_store_commits``
  on its ``/metrics``), where the daemon has it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid

import amqp_caller

FLAVOR = {'name': 'tiny', 'vcpus': 1, 'memory_mb': 64, 'root_gb': 0,
          'ephemeral_gb': 0, 'swap': 0}
CTX = {'request_id': 'req-bench', 'user_id': 'bench', 'project_id': 'bench'}
_TICKS = os.sysconf('SC_CLK_TCK')


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1,
                       int(round(q / 100 * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def scrape(url: str | None, name: str) -> float | None:
    """The value of one counter on a Prometheus endpoint (None: not there)."""
    if url is None:
        return None
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return None
    match = re.search(rf'^{name}(?:_total)? ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else None


class FsyncCounter:
    """``perf stat`` on the daemon's fsync/fdatasync tracepoints."""

    EVENTS = 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync'

    def __init__(self, pid: int):
        self.pid = pid
        self.proc = None
        self.count = None

    @staticmethod
    def available() -> bool:
        if shutil.which('perf') is None:
            return False
        probe = subprocess.run(['perf', 'stat', '-x,', '-e',
                                FsyncCounter.EVENTS, 'true'],
                               capture_output=True, text=True)
        return probe.returncode == 0 and 'not supported' not in probe.stderr

    def __enter__(self):
        self.proc = subprocess.Popen(
            ['perf', 'stat', '-x,', '-e', self.EVENTS, '-p', str(self.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)         # attached to every thread before we count
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        counts = [int(line.split(',')[0]) for line in err.splitlines()
                  if 'sys_enter_f' in line and line.split(',')[0].isdigit()]
        self.count = sum(counts) if len(counts) == 2 else None


class Stream:
    """``in_flight`` callers, one thread; ``run(seconds, kind)``."""

    def __init__(self, transport_url: str, exchange: str, topic: str,
                 version: str):
        self.caller = amqp_caller.Caller(transport_url, exchange, topic,
                                         version, CTX)

    def run(self, seconds: float, in_flight: int, kind: str) -> dict:
        """kind: 'claims' (claim then abort, per caller) or 'floor'."""
        stop = time.monotonic() + seconds
        claims, aborts, errors = [], [], []

        def claim():
            inst = {'uuid': str(uuid.uuid4()), 'project_id': 'bench',
                    'user_id': 'bench', 'flavor': FLAVOR}
            sent = time.perf_counter()

            def on_reply(result, error):
                claims.append(time.perf_counter() - sent)
                if error is not None:
                    errors.append(error)
                    return next_call()
                abort(inst['uuid'])
            self.caller.call('instance_claim', {'instance': inst}, on_reply)

        def abort(instance_uuid):
            sent = time.perf_counter()

            def on_reply(result, error):
                aborts.append(time.perf_counter() - sent)
                if error is not None:
                    errors.append(error)
                next_call()
            self.caller.call('abort_instance_claim',
                             {'instance_uuid': instance_uuid}, on_reply)

        def next_call():
            if time.monotonic() >= stop:
                return
            if kind == 'claims':
                claim()
            else:
                abort(str(uuid.uuid4()))

        started = time.perf_counter()
        for _ in range(in_flight):
            next_call()
        self.caller.wait()
        elapsed = time.perf_counter() - started
        if errors:
            raise RuntimeError(f'{len(errors)} calls failed, first: '
                               f'{errors[0]}')
        return {'elapsed_s': elapsed, 'claims': claims, 'aborts': aborts}

    def close(self):
        self.caller.close()


def measure(stream: Stream, pid: int, metrics_url: str | None,
            in_flight: int, seconds: float, kind: str,
            count_fsyncs: bool) -> dict:
    """One measured stream, after one second of the same unmeasured."""
    stream.run(1.0, in_flight, kind)
    commits0 = scrape(metrics_url, 'nova_rt_compute_store_commits')
    cpu0 = cpu_seconds(pid)
    counter = FsyncCounter(pid) if count_fsyncs else None
    if counter:
        counter.__enter__()
    try:
        done = stream.run(seconds, in_flight, kind)
    finally:
        if counter:
            counter.__exit__(None, None, None)
    cpu = cpu_seconds(pid) - cpu0
    commits1 = scrape(metrics_url, 'nova_rt_compute_store_commits')
    claims, aborts = done['claims'], done['aborts']
    calls = len(claims) + len(aborts)
    writes = len(claims) if kind == 'claims' else 0
    writes += len(aborts) if kind == 'claims' else 0
    result = {'in_flight': in_flight, 'calls': calls,
              'calls_per_s': round(calls / done['elapsed_s'], 1),
              'daemon_cpu_ms_per_call': round(cpu / calls * 1000, 3)}
    for name, times in (('claim', claims), ('abort', aborts)):
        if times:
            result[f'{name}_p50_ms'] = round(percentile(times, 50) * 1000, 2)
            result[f'{name}_p99_ms'] = round(percentile(times, 99) * 1000, 2)
    if kind == 'claims':
        result['claims_per_s'] = round(len(claims) / done['elapsed_s'], 1)
        result['writes'] = writes
    if counter and counter.count is not None:
        result['fsyncs'] = counter.count
        if writes:
            result['fsyncs_per_write'] = round(counter.count / writes, 3)
    if commits0 is not None and commits1 is not None:
        result['commits'] = int(commits1 - commits0)
        if writes:
            result['commits_per_write'] = round(result['commits'] / writes, 3)
    return result
