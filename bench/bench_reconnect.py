"""libvirtd killed and restarted under nova-rt-compute, N times, timed.

    .venv/bin/python bench/bench_reconnect.py [--cycles 6] [--cap 5]
        [--down SECONDS] [--signal TERM|KILL] [--backend threading] [--hang]

Needs root and a real libvirtd with QEMU run as tools/setup-libvirtd.sh does
(``libvirtd -d``, not under systemd); it is stopped and started again, and
left running.  Starts a placement process and a compute daemon on
qemu:///system with ``[libvirt] reconnect_max_interval = --cap``; claims
flow (claim, abort, again) through every cycle.  Each cycle: signal
libvirtd, keep it down, ``libvirtd -d``, wait until the daemon says it is
connected again.  Without ``--down`` the outages are spread from 1 s to
3 x cap, so that libvirtd comes back at every point of the back-off.
``--hang`` adds one SIGSTOP/SIGCONT cycle (only keepalive can tell).

Prints JSON: per cycle and p50/max of

- disconnect_s: the signal -> ``get_host_state`` says ``connected: false``
  (target <= 1 s);
- reconnect_s: libvirtd answers again -> ``connected: true`` (target <= cap
  + 1 s);

and the claims that succeeded and failed meanwhile (target: none failed).
Times come from polling ``get_host_state`` every 10 ms over RPC.
"""

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from oslo_service import backend as _backend  # noqa: E402

_backend.init_backend(_backend.BackendType.THREADING)

from nova_rt.virt import host as virt_host  # noqa: E402
from tests.functional.compute import fixtures  # noqa: E402
from tests.functional.virt import libvirtd  # noqa: E402
from tests.functional.virt import outage  # noqa: E402


def summary(values, target):
    values = [v for v in values if v is not None]
    if not values:
        return {'p50': None, 'max': None, 'target': target, 'met': False}
    return {'p50': round(statistics.median(values), 3),
            'max': round(max(values), 3), 'target': target,
            'met': max(values) <= target}


def down_times(args):
    if args.down is not None:
        return [args.down] * args.cycles
    if args.cycles == 1:
        return [float(args.cap)]
    low, high = 1.0, 3.0 * args.cap
    return [round(low + (high - low) * i / (args.cycles - 1), 2)
            for i in range(args.cycles)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cycles', type=int, default=6)
    parser.add_argument('--cap', type=int, default=5,
                        help='[libvirt] reconnect_max_interval')
    parser.add_argument('--down', type=float,
                        help='seconds libvirtd stays down (default: spread)')
    parser.add_argument('--signal', default='TERM', choices=['TERM', 'KILL'])
    parser.add_argument('--backend', default='threading',
                        choices=['threading', 'eventlet'])
    parser.add_argument('--hang', action='store_true',
                        help='add one SIGSTOP/SIGCONT cycle')
    args = parser.parse_args()
    reason = libvirtd.restart_unavailable_reason() or libvirtd.unavailable_reason()
    if reason is not None:
        sys.exit(f'bench_reconnect: cannot run here: {reason}')
    signo = getattr(signal, f'SIG{args.signal}')

    workdir = tempfile.mkdtemp(prefix='bench-reconnect-')
    url = f'sqlite:///{workdir}/placement.sqlite'
    from tests.functional.placement import fixtures as placement_fixtures
    results = {'backend': args.backend, 'cap_s': args.cap, 'signal': args.signal,
               'cores': os.cpu_count(), 'cycles': []}
    with placement_fixtures.running_placement(url, workdir) as placement:
        vhost = fixtures.transport_url_of(placement)
        compute = fixtures.ComputeProcess(
            workdir, f'bench-{uuid.uuid4().hex[:6]}', placement.exchange,
            args.backend, transport_url=vhost, connection_uri=libvirtd.URI,
            sections=f'reconnect_max_interval = {args.cap}\n')
        compute.start()
        api, transport = fixtures.compute_client(placement.exchange, url=vhost)
        flow_api, flow_transport = fixtures.compute_client(placement.exchange,
                                                           url=vhost)
        flow = outage.ClaimFlow(flow_api, compute.host)
        try:
            if not outage.wait_connected(api, compute.host, True, timeout=30):
                sys.exit('bench_reconnect: the daemon never connected:\n'
                         + compute.log_text()[-2000:])
            flow.start()
            for down in down_times(args):
                # Up long enough that the loss starts the back-off over, as
                # after any connection that had lasted.
                time.sleep(virt_host.STABLE_AFTER + 0.5)
                measured = outage.libvirtd_outage(api, compute.host, down,
                                                  args.cap, signo)
                results['cycles'].append({
                    'down_s': round(measured.down_s, 2),
                    'disconnect_s': _round(measured.disconnect_s),
                    'reconnect_s': _round(measured.reconnect_s)})
                print(json.dumps(results['cycles'][-1]), file=sys.stderr)
            if args.hang:
                time.sleep(virt_host.STABLE_AFTER + 0.5)
                keepalive = (virt_host.KEEPALIVE_INTERVAL
                             * (virt_host.KEEPALIVE_COUNT + 1))
                measured = outage.libvirtd_hang(api, compute.host,
                                                keepalive + 3, args.cap)
                results['hang'] = {
                    'disconnect_s': _round(measured.disconnect_s),
                    'reconnect_s': _round(measured.reconnect_s),
                    'keepalive_s': keepalive}
        finally:
            flow.stop()
            if not libvirtd.pids():
                libvirtd.start_libvirtd()
            code = compute.terminate()
            transport.cleanup()
            flow_transport.cleanup()
    cycles = results['cycles']
    results['disconnect_s'] = summary([c['disconnect_s'] for c in cycles], 1.0)
    results['reconnect_s'] = summary([c['reconnect_s'] for c in cycles],
                                     args.cap + 1.0)
    latencies = sorted(flow.latencies)
    results['claims'] = {
        'succeeded': flow.succeeded, 'failed': len(flow.failures),
        'first_failures': [f[1] for f in flow.failures[:3]],
        'p50_ms': round(statistics.median(latencies) * 1000, 2) if latencies else None,
        'max_ms': round(latencies[-1] * 1000, 2) if latencies else None}
    results['exit_code'] = code
    print(json.dumps(results, indent=2))


def _round(value):
    return None if value is None else round(value, 3)


if __name__ == '__main__':
    main()
